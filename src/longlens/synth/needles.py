"""Needle planning: when each needle is shown, what it shows, where it goes, and the question about it.

Needles last 2-8 s, stay clear of the first and last 2 s and of each other; each is a word or number
label or a coloured shape, at a random place below the frame code band and outside the bottom-right
corner, with a 4-option question whose distractors come from the same pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from longlens.errors import LongLensError
from longlens.synth.key import LETTERS, Needle
from longlens.synth.patches import COLOURS, SHAPES, TEXT_CAP, _object_patch, _Patch, _text_patch
from longlens.synth.texture import _even


class SynthError(LongLensError, ValueError):
    """Arguments that cannot make a synthetic video."""


# --- content pools -------------------------------------------------------------------------------------

# Short common English words (4-8 letters) shown in upper case. No colour or shape names, so that a
# label never reads like the answer to an object question.
WORDS: tuple[str, ...] = tuple(
    """
    ACORN ALMOND ANCHOR APPLE ARROW BADGER BAKER BALLOON BAMBOO BANANA BARREL BASKET BEACH BEAKER BEAVER
    BEETLE BICYCLE BISCUIT BLANKET BLENDER BLOSSOM BONNET BOTTLE BRANCH BREAD BRICK BRIDGE BRUSH BUCKET
    BUTTER BUTTON CABIN CABLE CACTUS CAMEL CAMERA CANDLE CANOE CANVAS CANYON CARPET CARROT CASHEW CASTLE
    CEDAR CELERY CEREAL CHAIR CHEESE CHERRY CHIMNEY CIRCUS CLOCK CLOUD COBRA COCONUT COFFEE COMET COMPASS
    COPPER COTTON CRANE CRAYON CRICKET CRYSTAL DESERT DINNER DOLPHIN DONKEY DRAGON EAGLE ENGINE FALCON
    FARMER FEATHER FENCE FERRY FIDDLE FLUTE FOLDER FOREST FOSSIL FOUNTAIN FROST GALAXY GARDEN GARLIC
    GIRAFFE GLACIER GLOVE GOBLIN GRAVEL GUITAR HAMMER HAMSTER HARBOR HAZEL HELMET HERON HIPPO HOCKEY
    HONEY HORSE IGLOO ISLAND JACKET JELLY JIGSAW JUNGLE KAYAK KETTLE KITTEN KNIGHT KOALA LADDER LANTERN
    LAPTOP LEMON LETTER LIBRARY LIZARD LLAMA LOBSTER LOCKER MAGNET MAGPIE MANGO MAPLE MARBLE MARKET
    MEADOW MEDAL MIRROR MITTEN MONKEY MOOSE MUFFIN NAPKIN NOODLE NUTMEG OCEAN OLIVE ONION ORCHARD OTTER
    OYSTER PADDLE PALACE PANDA PARCEL PARROT PASTA PEANUT PEBBLE PENCIL PEPPER PICNIC PIGEON PILLOW PILOT
    PIRATE PLANET POCKET POTATO PUZZLE QUILT RABBIT RACCOON RADIO RAVEN RIBBON RIVER ROCKET SADDLE SAILOR
    SALMON SANDAL SATURN SCARF SCOOTER SHELF SHOVEL SPIDER SPINACH SPOON SQUIRREL STAPLER STORM SUMMIT
    SUNSET SWEATER TABLE TEAPOT TENNIS THUNDER TICKET TIGER TOASTER TOFFEE TOMATO TOWEL TRACTOR TRUMPET
    TULIP TUNNEL TURTLE UMBRELLA VALLEY VELVET VIOLIN WAFFLE WAGON WALLET WALNUT WALRUS WHISTLE WINDOW
    WIZARD YOGURT ZEBRA
    """.split()
)

# 3-4 digit numbers, used as labels about one time in five (distractors then come from this pool).
NUMBERS: tuple[str, ...] = tuple(
    """
    137 204 358 419 562 671 738 845 926 1024 1296 1387 1450 1593 1768 1842 1975 2048 2163 2371 2539 2680
    2794 3015 3142 3367 3521 3690 4096 4218 4475 5130 5286 5712 6054 6381 7243 7468 8125 8652 9037 9314
    """.split()
)


# --- planning ------------------------------------------------------------------------------------------

MAX_DEFAULT_NEEDLES = 60
NEEDLE_MIN_S, NEEDLE_MAX_S = 2.0, 8.0
EDGE_S = 2.0  # no needle in the first or last 2 s
NEEDLE_GAP_S = 1.0  # at least this much between two needles
TOP_BAND = 0.12  # needles stay below the top 12 % (frame code)
CORNER_X, CORNER_Y = 0.70, 0.75  # ... and out of the bottom-right corner (timestamps)
OBJECT_AREA = (0.02, 0.04)  # object bounding box, fraction of the frame area
TEXT_QUESTION = "Which {what} appears on the small white label shown in the video?"
COLOUR_QUESTION = "What colour is the {shape} that briefly appears{when} in the video?"
SHAPE_QUESTION = "What shape is the {colour} object that briefly appears{when} in the video?"


def default_needle_count(duration_s: float) -> int:
    """One needle per full minute, at least one, at most 60 (fewer if they do not fit)."""
    return min(MAX_DEFAULT_NEEDLES, max(1, int(duration_s // 60)))


@dataclass(frozen=True)
class _NeedlePlan:
    start: int  # first frame
    end: int  # frame after the last
    x: int
    y: int
    patch: _Patch
    needle: Needle


def _needle_capacity(n: int, fps: float) -> int:
    edge, min_len, gap = math.ceil(EDGE_S * fps), math.ceil(NEEDLE_MIN_S * fps), round(NEEDLE_GAP_S * fps)
    room = n - 2 * edge
    if room < min_len:
        return 0
    return 1 + (room - min_len) // (min_len + gap)


def _when(t: float) -> str:
    return f" at about {int(t // 60)}:{int(t % 60):02d}"


def _plan_needles(
    rng: np.random.Generator,
    n_frames: int,
    fps: float,
    count: int | None,
    kinds: tuple[str, ...],
    width: int,
    height: int,
    text_cap: float = TEXT_CAP,
) -> list[_NeedlePlan]:
    capacity = _needle_capacity(n_frames, fps)
    if count is None:
        count = min(default_needle_count(n_frames / fps), capacity)
    else:
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise SynthError(f"needles must be a non-negative integer, got {count!r}")
        if count > capacity:
            raise SynthError(
                f"{count} needles of {NEEDLE_MIN_S:g}-{NEEDLE_MAX_S:g} s do not fit in a "
                f"{n_frames / fps:g} s video (at most {capacity}; none in the first or last {EDGE_S:g} s)"
            )
    if count == 0:
        return []
    if not kinds:
        raise SynthError("needle kinds must name at least one of text, object")

    # when: lengths 2-8 s, shrunk together if needed, then the slack spread at random over the gaps
    edge, gap = math.ceil(EDGE_S * fps), round(NEEDLE_GAP_S * fps)
    min_len, max_len = math.ceil(NEEDLE_MIN_S * fps), math.floor(NEEDLE_MAX_S * fps)
    room = n_frames - 2 * edge - (count - 1) * gap
    lengths = rng.integers(min_len, max_len + 1, count)
    if lengths.sum() > room:
        extra = lengths - min_len
        lengths = min_len + np.floor(extra * (room - count * min_len) / max(1, extra.sum())).astype(int)
    slack = room - int(lengths.sum())
    cuts = np.sort(rng.integers(0, slack + 1, count))
    spans, pos = [], edge
    for k in range(count):
        start = pos + int(cuts[k]) - (int(cuts[k - 1]) if k else 0)
        spans.append((start, start + int(lengths[k])))
        pos = start + int(lengths[k]) + gap

    # what: balanced kinds, unique words/numbers, distinct (colour, shape) pairs spread over the shapes
    kind_list = [kinds[k % len(kinds)] for k in range(count)]
    rng.shuffle(kind_list)
    n_text = kind_list.count("text")
    texts = []
    words, numbers = list(WORDS), list(NUMBERS)
    for _ in range(n_text):
        pool = numbers if (rng.random() < 0.2 and numbers) or not words else words
        texts.append(pool.pop(int(rng.integers(0, len(pool)))))
    n_obj = count - n_text
    shapes = [SHAPES[k % len(SHAPES)] for k in rng.permutation(max(n_obj, len(SHAPES)))][:n_obj]
    colour_names = list(COLOURS)
    used: set[tuple[str, str]] = set()
    objects = []
    for shape in shapes:
        free = [c for c in colour_names if (c, shape) not in used] or colour_names
        counts = {c: sum(1 for cc, _ in used if cc == c) for c in free}
        least = min(counts.values())
        choices = [c for c in free if counts[c] == least]
        colour = choices[int(rng.integers(0, len(choices)))]
        used.add((colour, shape))
        objects.append((colour, shape))

    all_texts = set(texts)
    plans: list[_NeedlePlan] = []
    t_iter, o_iter = iter(texts), iter(objects)
    for k, ((start, end), kind) in enumerate(zip(spans, kind_list, strict=True)):
        if kind == "text":
            content = next(t_iter)
            patch = _text_patch(content, height, text_cap)
            pool = NUMBERS if content in NUMBERS else WORDS
            others = [w for w in pool if w not in all_texts]
            picks = [others[j] for j in rng.choice(len(others), 3, replace=False)]
            what = "number" if content in NUMBERS else "word"
            question, truth = TEXT_QUESTION.format(what=what), content
        else:
            colour, shape = next(o_iter)
            side = _even(math.sqrt(rng.uniform(*OBJECT_AREA) * width * height))
            patch = _object_patch(shape, colour, max(8, side))
            content = f"{colour} {shape}"
            other_colours = [c for c in COLOURS if c != colour and (c, shape) not in used]
            other_shapes = [s for s in SHAPES if s != shape and (colour, s) not in used]
            modes = [m for m, pool in (("colour", other_colours), ("shape", other_shapes)) if len(pool) >= 3]
            when = ""
            if not modes:  # too many look-alikes in this video: say when, to keep the question unambiguous
                modes, when = ["colour"], _when((start + end) / 2 / fps)
                other_colours = [c for c in COLOURS if c != colour]
            mode = modes[int(rng.integers(0, len(modes)))]
            if mode == "colour":
                question = COLOUR_QUESTION.format(shape=shape, when=when)
                truth, pool = colour, other_colours
            else:
                question = SHAPE_QUESTION.format(colour=colour, when=when)
                truth, pool = shape, other_shapes
            picks = [pool[j] for j in rng.choice(len(pool), 3, replace=False)]
        options = [truth, *picks]
        order = rng.permutation(4)
        options = [options[j] for j in order]
        answer = LETTERS[options.index(truth)]
        x, y = _place(rng, patch.w, patch.h, width, height)
        box = (x / width, y / height, patch.w / width, patch.h / height)
        needle = Needle(
            id=f"n{k + 1:02d}",
            kind=kind,  # type: ignore[arg-type]
            start_s=start / fps,
            end_s=end / fps,
            content=content,
            box=tuple(round(v, 6) for v in box),  # type: ignore[arg-type]
            question=question,
            options=tuple(options),  # type: ignore[arg-type]
            answer=answer,
        )
        plans.append(_NeedlePlan(start, end, x, y, patch, needle))
    return plans


def _place(rng: np.random.Generator, w: int, h: int, width: int, height: int) -> tuple[int, int]:
    """Random even (x, y) for a w x h patch below the top band and outside the bottom-right corner."""
    top = _even(math.ceil(TOP_BAND * height) + 1)
    max_x, max_y = max(0, width - w), max(top, height - h)
    for _ in range(1000):
        x = int(rng.integers(0, max_x // 2 + 1)) * 2
        y = int(rng.integers(top // 2, max_y // 2 + 1)) * 2
        if not (x + w > CORNER_X * width and y + h > CORNER_Y * height):
            return x, y
    return 0, top  # pragma: no cover - only for patches nearly as big as the frame
