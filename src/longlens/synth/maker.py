"""Synthetic long H.264 videos with known answers.

A video is a sequence of scenes (10-60 s each by default) cut hard into one another. Each scene has its
own procedural look (clouds, stripes, tiles, bokeh or a horizon), a camera that pans over it, and a few
muted shapes moving across it. "Needles" are short segments (2-8 s) in which a small white label with a
word or number, or a clearly coloured shape, is shown; the answer key records where and when, and a
4-option question about each.

Frames are made directly as yuv420p planes: a scene's texture is computed once, larger than the frame,
and every frame is a slice of it plus a few small precomputed patches. A producer thread makes frames
while the main thread feeds x264 (PyAV's ``libx264``), so encoding sets the pace.

Everything the encoder is fed depends only on the arguments (the seed included): the same arguments
give the same frames and the same answer key.
"""

from __future__ import annotations

import colorsys
import math
import os
import queue
import threading
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from longlens.errors import LongLensError, VideoError
from longlens.synth.code import MAX_INDEX, FrameCodePainter
from longlens.synth.key import LETTERS, AnswerKey, Needle

__all__ = [
    "COLOURS",
    "NUMBERS",
    "SHAPES",
    "WORDS",
    "FrameMaker",
    "SynthError",
    "default_needle_count",
    "make_video",
]


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

# Saturated needle colours (RGB). Scene backgrounds and moving shapes stay muted, so these stand out.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30),
    "green": (30, 185, 50),
    "blue": (30, 75, 225),
    "yellow": (250, 220, 30),
    "magenta": (225, 40, 205),
    "cyan": (30, 215, 225),
    "orange": (250, 135, 20),
    "purple": (125, 45, 190),
}

# Needle shapes. Moving background shapes are elongated ellipses, rectangles and bars, never these.
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "cross")

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip

MAX_DEFAULT_NEEDLES = 60
NEEDLE_MIN_S, NEEDLE_MAX_S = 2.0, 8.0
EDGE_S = 2.0  # no needle in the first or last 2 s
NEEDLE_GAP_S = 1.0  # at least this much between two needles
TOP_BAND = 0.12  # needles stay below the top 12 % (frame code)
CORNER_X, CORNER_Y = 0.70, 0.75  # ... and out of the bottom-right corner (timestamps)
# Text cap height, as a fraction of the frame height. Measured with RapidOCR on 1280x720 videos at crf 28
# (bicubic downscale): at 0.024 it read 156/156 labels at 336x588 and at 252x448, and 5/156 at 112x196;
# at 0.035 it still read about 70 % at 112x196.
TEXT_CAP = 0.024
OBJECT_AREA = (0.02, 0.04)  # object bounding box, fraction of the frame area
TEXT_QUESTION = "Which {what} appears on the small white label shown in the video?"
COLOUR_QUESTION = "What colour is the {shape} that briefly appears{when} in the video?"
SHAPE_QUESTION = "What shape is the {colour} object that briefly appears{when} in the video?"


def default_needle_count(duration_s: float) -> int:
    """One needle per full minute, at least one, at most 60 (fewer if they do not fit)."""
    return min(MAX_DEFAULT_NEEDLES, max(1, int(duration_s // 60)))


# --- colour helpers ------------------------------------------------------------------------------------


def _even(x: float) -> int:
    return 2 * round(x / 2)


def _rgb_to_yuv_float(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HxWx3 RGB -> float32 Y, U, V planes of the same size, BT.601 limited range."""
    rgb = np.asarray(rgb, dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    return y, u, v


def _to_u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HxWx3 RGB (H, W even) -> uint8 Y (H, W) and U, V (H/2, W/2), BT.601 limited range."""
    y, u, v = _rgb_to_yuv_float(rgb)
    h, w = y.shape
    u = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    v = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return _to_u8(y), _to_u8(u), _to_u8(v)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32) * 255.0


# --- scene looks ---------------------------------------------------------------------------------------


def _smooth(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> np.ndarray:
    """Smooth noise in [0, 1] with about ``cells`` features across the shorter side."""
    th, tw = shape
    cy = max(2, round(cells * th / min(th, tw)))
    cx = max(2, round(cells * tw / min(th, tw)))
    grid = rng.random((cy + 1, cx + 1), dtype=np.float32)
    img = Image.fromarray(grid).resize((tw, th), Image.Resampling.BICUBIC)
    out = np.asarray(img, dtype=np.float32)
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[..., None]
    return a * (1.0 - t) + b * t


def _palette(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    base, spread = rng.random(), rng.uniform(0.04, 0.3)
    return [
        _hsv(base + k * spread + rng.normal(0, 0.02), rng.uniform(0.15, 0.5), rng.uniform(0.3, 0.85)) for k in range(n)
    ]


def _look_clouds(rng, shape, scale, pal):
    n1 = _smooth(rng, shape, rng.uniform(2, 5))
    n2 = _smooth(rng, shape, rng.uniform(8, 20))
    rgb = _lerp(pal[0], pal[1], n1)
    return _lerp(rgb, pal[2], 0.6 * n2 * n2)


def _look_stripes(rng, shape, scale, pal):
    th, tw = shape
    yy = np.arange(th, dtype=np.float32)[:, None]
    xx = np.arange(tw, dtype=np.float32)[None, :]
    theta = rng.uniform(0, math.pi)
    period = rng.uniform(40, 220) * scale
    warp = _smooth(rng, shape, rng.uniform(1.5, 4)) * rng.uniform(0.5, 3.0)
    phase = (xx * math.cos(theta) + yy * math.sin(theta)) * (2 * math.pi / period) + warp * 2 * math.pi
    s = np.clip(0.5 + rng.uniform(0.5, 2.0) * np.sin(phase), 0, 1)
    rgb = _lerp(pal[0], pal[1], s)
    shade = _smooth(rng, shape, rng.uniform(2, 5))
    return _lerp(rgb, pal[2], 0.5 * shade)


def _look_tiles(rng, shape, scale, pal):
    th, tw = shape
    ts = max(6, round(rng.uniform(30, 140) * scale))
    gy, gx = th // ts + 2, tw // ts + 2
    idx = rng.integers(0, len(pal), (gy, gx))
    cols = np.stack(pal)[idx] * rng.uniform(0.85, 1.15, (gy, gx, 1)).astype(np.float32)
    tiles = np.repeat(np.repeat(cols, ts, axis=0), ts, axis=1)
    if rng.random() < 0.5:  # brick bond: shift every other row of tiles by half a tile
        rows = (np.arange(tiles.shape[0]) // ts) % 2 == 1
        tiles[rows] = np.roll(tiles[rows], ts // 2, axis=1)
    rgb = tiles[:th, :tw].astype(np.float32)
    lw = max(1, round(ts * rng.uniform(0.04, 0.1)))
    yy = np.arange(th)[:, None] % ts < lw
    xx = np.arange(tw)[None, :] % ts < lw
    rgb[yy | xx] *= 0.45
    shade = _smooth(rng, shape, rng.uniform(1.5, 4))
    return rgb * (0.7 + 0.5 * shade[..., None])


def _look_bokeh(rng, shape, scale, pal):
    th, tw = shape
    t = np.linspace(0, 1, th, dtype=np.float32)[:, None] * np.ones((1, tw), np.float32)
    base = _lerp(pal[0], pal[1], t)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(25, 70))):
        r = rng.uniform(8, 70) * scale
        cx, cy = rng.uniform(0, tw), rng.uniform(0, th)
        c = pal[int(rng.integers(0, len(pal)))] * rng.uniform(0.8, 1.3)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in np.clip(c, 0, 255)))
    img = img.filter(ImageFilter.GaussianBlur(max(1.0, rng.uniform(2, 7) * scale)))
    return _lerp(base, np.asarray(img, np.float32), np.full((th, tw), 0.75, np.float32))


def _look_horizon(rng, shape, scale, pal):
    th, tw = shape
    knots = rng.random(int(rng.integers(4, 12)))
    hills = np.interp(np.linspace(0, len(knots) - 1, tw), np.arange(len(knots)), knots).astype(np.float32)
    horizon = th * (rng.uniform(0.35, 0.6) + (hills - 0.5) * rng.uniform(0.05, 0.2))
    yy = np.arange(th, dtype=np.float32)[:, None]
    sky_t = np.clip(yy / th / 0.6, 0, 1) * np.ones((1, tw), np.float32)
    sky = _lerp(pal[0] * 1.15, pal[1], sky_t)
    grain = _smooth(rng, shape, rng.uniform(20, 50))
    ground = _lerp(pal[2], pal[2] * 0.6, grain)
    depth = np.clip((yy - horizon[None, :]) / th, 0, 1)
    ground = ground * (1.0 - 0.4 * depth[..., None])
    sky_mask = (yy < horizon[None, :]).astype(np.float32)
    return _lerp(ground, sky, sky_mask)


_LOOKS = (_look_clouds, _look_stripes, _look_tiles, _look_bokeh, _look_horizon)


def _scene_texture(rng: np.random.Generator, th: int, tw: int, scale: float):
    """Y, U, V planes of one scene's look, ``th`` x ``tw`` (even), never pure white or black.

    The look is drawn at chroma resolution (half size, few and small temporaries: fresh memory is slow
    to touch in some sandboxes) and only luma is upscaled, then given a fine film grain.
    """
    look = _LOOKS[int(rng.integers(0, len(_LOOKS)))]
    rgb = look(rng, (th // 2, tw // 2), scale / 2, _palette(rng, 3))
    np.clip(rgb, 0, 255, out=rgb)
    rgb *= 0.8
    rgb += 10.0  # keep away from the white of labels and frame code
    y, u, v = _rgb_to_yuv_float(rgb)
    del rgb
    y = np.array(Image.fromarray(y).resize((tw, th), Image.Resampling.BICUBIC), dtype=np.float32)
    y += rng.standard_normal((th, tw), dtype=np.float32) * 2.0  # film grain
    return _to_u8(y), _to_u8(u), _to_u8(v)


# --- patches (moving shapes and needles) ---------------------------------------------------------------


@dataclass
class _Patch:
    """A precomputed yuv420p sprite: planes, and masks (None for an opaque rectangle)."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    ymask: np.ndarray | None
    cmask: np.ndarray | None

    @property
    def h(self) -> int:
        return self.y.shape[0]

    @property
    def w(self) -> int:
        return self.y.shape[1]

    def draw(self, Y: np.ndarray, U: np.ndarray, V: np.ndarray, x: int, y: int) -> None:
        """Paint at even (x, y), clipped to the frame."""
        H, W = Y.shape
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + self.w, W), min(y + self.h, H)
        if x1 <= x0 or y1 <= y0:
            return
        sy, sx = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
        cy, cx = slice(sy.start // 2, sy.stop // 2), slice(sx.start // 2, sx.stop // 2)
        dy, dx = slice(y0, y1), slice(x0, x1)
        dcy, dcx = slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2)
        if self.ymask is None:
            Y[dy, dx] = self.y[sy, sx]
            U[dcy, dcx] = self.u[cy, cx]
            V[dcy, dcx] = self.v[cy, cx]
        else:
            np.copyto(Y[dy, dx], self.y[sy, sx], where=self.ymask[sy, sx])
            np.copyto(U[dcy, dcx], self.u[cy, cx], where=self.cmask[cy, cx])
            np.copyto(V[dcy, dcx], self.v[cy, cx], where=self.cmask[cy, cx])


def _patch_from_rgba(rgb: np.ndarray, alpha: np.ndarray | None) -> _Patch:
    y, u, v = _rgb_to_yuv(rgb)
    if alpha is None:
        return _Patch(y, u, v, None, None)
    h, w = alpha.shape
    ymask = alpha >= 0.5
    cmask = alpha.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) >= 0.5
    return _Patch(y, u, v, ymask, cmask)


def _polygon(shape: str, size: float, inset: float) -> list[tuple[float, float]] | None:
    """Outline of a needle shape in a ``size`` box, shrunk by ``inset`` pixels (None for the circle)."""
    c = size / 2
    r = c - inset
    if shape == "circle":
        return None
    if shape == "square":
        a = r * 0.86
        return [(c - a, c - a), (c + a, c - a), (c + a, c + a), (c - a, c + a)]
    if shape == "triangle":
        pts = [(-90 + 120 * k) for k in range(3)]
        return [(c + r * math.cos(math.radians(t)), c + 0.12 * size + r * math.sin(math.radians(t))) for t in pts]
    if shape == "hexagon":
        return [(c + r * math.cos(math.radians(60 * k)), c + r * math.sin(math.radians(60 * k))) for k in range(6)]
    if shape == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * 0.42
            t = math.radians(-90 + 36 * k)
            pts.append((c + rr * math.cos(t), c + 0.05 * size + rr * math.sin(t)))
        return pts
    if shape == "cross":
        a, b = r * 0.95, r * 0.34
        return [
            (c - b, c - a), (c + b, c - a), (c + b, c - b), (c + a, c - b), (c + a, c + b), (c + b, c + b),
            (c + b, c + a), (c - b, c + a), (c - b, c + b), (c - a, c + b), (c - a, c - b), (c - b, c - b),
        ]  # fmt: skip
    raise ValueError(f"unknown shape {shape!r}")


def _shape_mask(shape: str, size: int, inset: float, ss: int = 4) -> np.ndarray:
    """Anti-aliased coverage (0..1) of a needle shape in a ``size`` x ``size`` box."""
    big = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(big)
    poly = _polygon(shape, size * ss, inset * ss)
    if poly is None:
        a = inset * ss
        draw.ellipse((a, a, size * ss - a, size * ss - a), fill=255)
    else:
        draw.polygon(poly, fill=255)
    small = big.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255.0


def _object_patch(shape: str, colour: str, size: int) -> _Patch:
    ow = max(1.0, 0.05 * size)
    outer = _shape_mask(shape, size, 0.0)
    inner = _shape_mask(shape, size, ow)
    fill = np.array(COLOURS[colour], np.float32)
    white = np.full(3, 255.0, np.float32)
    rgb = _lerp(white, fill, np.clip(inner / np.maximum(outer, 1e-6), 0, 1))
    return _patch_from_rgba(rgb, outer)


@lru_cache(maxsize=16)
def _font(cap: int) -> tuple[ImageFont.ImageFont | ImageFont.FreeTypeFont, float]:
    """A font whose capital letters are about ``cap`` pixels tall, and the upscale factor it needs."""
    try:
        probe = ImageFont.load_default(size=100)
        if isinstance(probe, ImageFont.FreeTypeFont):
            _, top, _, bottom = probe.getbbox("H", anchor="ls")
            ratio = (bottom - top) / 100.0
            return ImageFont.load_default(size=max(4, round(cap / ratio))), 1.0
    except (OSError, ImportError, TypeError):  # pragma: no cover - Pillow without FreeType
        pass
    font = ImageFont.load_default()  # pragma: no cover
    _, top, _, bottom = font.getbbox("H")  # pragma: no cover
    return font, cap / max(1, bottom - top)  # pragma: no cover


def _text_patch(text: str, frame_h: int, text_cap: float = TEXT_CAP) -> _Patch:
    cap = max(4, round(text_cap * frame_h))
    font, scale = _font(cap)
    left, top, right, bottom = font.getbbox(text)
    tw, th = right - left, bottom - top
    canvas = Image.new("L", (tw + 4, th + 4), 255)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, fill=0, font=font)
    if scale != 1.0:  # pragma: no cover - bitmap font fallback
        canvas = canvas.resize((max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale))))
    pad_x, pad_y = round(0.6 * cap), round(0.45 * cap)
    w, h = _even(canvas.width + 2 * pad_x), _even(canvas.height + 2 * pad_y)
    label = Image.new("L", (w, h), 255)
    label.paste(canvas, ((w - canvas.width) // 2, (h - canvas.height) // 2))
    grey = np.asarray(label, np.float32)
    return _patch_from_rgba(np.repeat(grey[..., None], 3, axis=2), None)


def _moving_shape_patch(rng: np.random.Generator, frame_h: int) -> _Patch:
    kind = ("ellipse", "rect", "bar")[int(rng.integers(0, 3))]
    if kind == "bar":
        h = max(2, _even(rng.uniform(0.025, 0.05) * frame_h))
        w = max(4, _even(h * rng.uniform(4, 8)))
    else:
        h = max(2, _even(rng.uniform(0.06, 0.14) * frame_h))
        w = max(4, _even(h * rng.uniform(1.8, 3.0)))
    if rng.random() < 0.3:
        w, h = h, w
    colour = _hsv(rng.random(), rng.uniform(0.1, 0.4), rng.uniform(0.25, 0.9))
    img = Image.new("L", (w * 2, h * 2), 0)
    draw = ImageDraw.Draw(img)
    if kind == "ellipse":
        draw.ellipse((0, 0, w * 2 - 1, h * 2 - 1), fill=255)
    else:
        draw.rectangle((0, 0, w * 2 - 1, h * 2 - 1), fill=255)
    alpha = np.asarray(img.resize((w, h), Image.Resampling.BOX), np.float32) / 255.0
    shade = np.linspace(1.1, 0.85, h, dtype=np.float32)[:, None, None]
    rgb = np.clip(colour * shade * np.ones((h, w, 1), np.float32), 0, 255)
    return _patch_from_rgba(rgb, alpha)


def _reflect(p: int, span: int) -> int:
    """Bounce ``p`` back and forth in [0, span]."""
    if span <= 0:
        return 0
    m = p % (2 * span)
    return m if m <= span else 2 * span - m


# --- plan ----------------------------------------------------------------------------------------------


@dataclass
class _Mover:
    patch: _Patch
    x0: int
    y0: int
    vx: int  # even, px per frame; 2 mod 4 so that the shape moves on every frame
    vy: int

    def draw(self, Y, U, V, k: int) -> None:
        H, W = Y.shape
        x = _reflect(self.x0 + self.vx * k, W - self.patch.w)
        y = _reflect(self.y0 + self.vy * k, H - self.patch.h)
        self.patch.draw(Y, U, V, x & ~1, y & ~1)


class _Scene:
    """Textures, camera path and moving shapes of one scene (built on first use)."""

    def __init__(self, seed: int, index: int, start: int, width: int, height: int, fps: float):
        self.start = start
        rng = np.random.default_rng([seed, 2, index])
        self.mx, self.my = max(2, _even(0.12 * width)), max(2, _even(0.12 * height))
        scale = height / 720.0
        self.y, self.u, self.v = _scene_texture(rng, height + 2 * self.my, width + 2 * self.mx, scale)
        self.fps = fps

        def path(m: int) -> tuple[float, ...]:
            a1 = m * rng.uniform(0.5, 0.85)
            a2 = (m - a1) * rng.uniform(0.2, 0.9)
            return (
                a1,
                rng.uniform(8, 30),
                rng.uniform(0, 2 * math.pi),
                a2,
                rng.uniform(2.5, 7),
                rng.random() * 6,
            )

        self.px, self.py = path(self.mx), path(self.my)
        self.movers = []
        for _ in range(int(rng.integers(2, 5))):
            patch = _moving_shape_patch(rng, height)
            speed = rng.uniform(1.5, 6.0) * scale * 30.0 / fps
            angle = rng.uniform(-0.9, 0.9)
            vx = 2 + 4 * max(0, round((speed * math.cos(angle) - 2) / 4))
            vx = vx if rng.random() < 0.5 else -vx
            vy = 2 * round(speed * math.sin(angle) / 2)
            x0 = int(rng.integers(0, max(1, width - patch.w) // 2 + 1)) * 2
            y0 = int(rng.integers(0, max(1, height - patch.h) // 2 + 1)) * 2
            self.movers.append(_Mover(patch, x0, y0, vx, vy))

    def offset(self, i: int) -> tuple[int, int]:
        t = (i - self.start) / self.fps
        out = []
        for m, (a1, p1, f1, a2, p2, f2) in ((self.mx, self.px), (self.my, self.py)):
            o = m + a1 * math.sin(2 * math.pi * t / p1 + f1) + a2 * math.sin(2 * math.pi * t / p2 + f2)
            out.append(min(2 * m, max(0, round(o))))
        return out[0], out[1]


@dataclass(frozen=True)
class _NeedlePlan:
    start: int  # first frame
    end: int  # frame after the last
    x: int
    y: int
    patch: _Patch
    needle: Needle


def _fps_fraction(fps: float | Fraction) -> Fraction:
    f = Fraction(fps)
    if f.denominator > 1001:
        f = f.limit_denominator(1001)
    return f


class FrameMaker:
    """The frames and answer key of one synthetic video, without encoding (random access by index).

    ``render(i)`` returns frame ``i`` as a uint8 array of shape (H*3//2, W): the Y, U and V planes of
    yuv420p one after another, as ``av.VideoFrame.from_ndarray(..., format="yuv420p")`` takes it.
    """

    def __init__(
        self,
        *,
        duration_s: float,
        width: int = 1280,
        height: int = 720,
        fps: float = 30,
        gop_s: float = 5.0,
        seed: int = 0,
        needles: int | None = None,
        needle_kinds: Sequence[str] = ("text", "object"),
        frame_code: bool = False,
        scene_s: tuple[float, float] = (10.0, 60.0),
        text_cap: float = TEXT_CAP,
    ):
        _check_geometry(duration_s, width, height, fps, gop_s, scene_s)
        if not isinstance(text_cap, int | float) or not 0.005 <= text_cap <= 0.2:
            raise SynthError(f"text_cap must be a fraction of the frame height from 0.005 to 0.2, got {text_cap!r}")
        self.width, self.height = int(width), int(height)
        self.rate = _fps_fraction(fps)
        self.fps = float(self.rate)
        self.gop_s = float(gop_s)
        self.seed = int(seed)
        self.frame_count = round(duration_s * self.fps)
        if self.frame_count < 1:
            raise SynthError(f"duration {duration_s:g} s is shorter than one frame at {self.fps:g} fps")
        self.frame_code = bool(frame_code)
        if self.frame_code and self.frame_count - 1 > MAX_INDEX:
            raise SynthError(
                f"frame codes support at most {MAX_INDEX + 1} frames "
                f"({(MAX_INDEX + 1) / self.fps / 60:.1f} min at {self.fps:g} fps); "
                f"this video has {self.frame_count}"
            )
        kinds = tuple(dict.fromkeys(needle_kinds))
        bad = [k for k in kinds if k not in ("text", "object")]
        if bad:
            raise SynthError(f"unknown needle kind {bad[0]!r} (choose from text, object)")
        self.scene_starts = _plan_scenes(np.random.default_rng([self.seed, 0]), self.frame_count, self.fps, scene_s)
        self.needles = _plan_needles(
            np.random.default_rng([self.seed, 1]), self.frame_count, self.fps, needles, kinds,
            self.width, self.height, text_cap,
        )  # fmt: skip
        self._needle_starts = [n.start for n in self.needles]
        self._painter = FrameCodePainter(self.width, self.height) if self.frame_code else None
        self._scene: _Scene | None = None
        self._scene_index = -1
        self._lock = threading.Lock()

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def key(self, video: str) -> AnswerKey:
        """The answer key, naming the video file ``video``."""
        return AnswerKey(
            video=video,
            duration_s=self.duration_s,
            width=self.width,
            height=self.height,
            fps=self.fps,
            seed=self.seed,
            gop_s=self.gop_s,
            needles=tuple(n.needle for n in self.needles),
            frame_code=self.frame_code,
            scene_starts_s=tuple(s / self.fps for s in self.scene_starts),
        )

    def _scene_for(self, i: int) -> _Scene:
        k = bisect_right(self.scene_starts, i) - 1
        if k != self._scene_index or self._scene is None:
            self._scene = _Scene(self.seed, k, self.scene_starts[k], self.width, self.height, self.fps)
            self._scene_index = k
        return self._scene

    def render(self, i: int) -> np.ndarray:
        """Frame ``i`` as yuv420p planes, shape (H*3//2, W), uint8."""
        W, H = self.width, self.height
        buf = np.empty(W * H * 3 // 2, np.uint8)
        Y = buf[: W * H].reshape(H, W)
        U = buf[W * H : W * H * 5 // 4].reshape(H // 2, W // 2)
        V = buf[W * H * 5 // 4 :].reshape(H // 2, W // 2)
        self.render_into(i, Y, U, V)
        return buf.reshape(H * 3 // 2, W)

    def render_into(self, i: int, Y: np.ndarray, U: np.ndarray, V: np.ndarray) -> None:
        """Paint frame ``i`` into existing planes: ``Y`` (H, W), ``U`` and ``V`` (H/2, W/2), uint8."""
        if not 0 <= i < self.frame_count:
            raise IndexError(f"frame {i} outside 0..{self.frame_count - 1}")
        W, H = self.width, self.height
        with self._lock:
            scene = self._scene_for(i)
        ox, oy = scene.offset(i)
        Y[:] = scene.y[oy : oy + H, ox : ox + W]
        U[:] = scene.u[oy // 2 : oy // 2 + H // 2, ox // 2 : ox // 2 + W // 2]
        V[:] = scene.v[oy // 2 : oy // 2 + H // 2, ox // 2 : ox // 2 + W // 2]
        for mover in scene.movers:
            mover.draw(Y, U, V, i - scene.start)
        k = bisect_right(self._needle_starts, i) - 1
        if k >= 0 and i < self.needles[k].end:
            n = self.needles[k]
            n.patch.draw(Y, U, V, n.x, n.y)
        if self._painter is not None:
            self._painter.draw(Y, U, V, i)


def _check_geometry(duration_s, width, height, fps, gop_s, scene_s) -> None:
    def positive(name: str, value) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise SynthError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(v) or v <= 0:
            raise SynthError(f"{name} must be positive, got {value!r}")
        return v

    positive("duration", duration_s)
    positive("fps", fps)
    positive("gop", gop_s)
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool):
            raise SynthError(f"{name} must be an integer, got {v!r}")
        if v < 64 or v % 2:
            raise SynthError(f"{name} must be even and at least 64 pixels, got {v}")
        if v > 8192:
            raise SynthError(f"{name} must be at most 8192 pixels, got {v}")
    lo, hi = (positive("scene length", s) for s in scene_s)
    if hi < lo:
        raise SynthError(f"scene length range {scene_s} is reversed")


def _plan_scenes(rng: np.random.Generator, n: int, fps: float, scene_s: tuple[float, float]) -> list[int]:
    """First frame of each scene; the last scene absorbs a remainder shorter than half the minimum."""
    lo, hi = scene_s
    starts, pos = [0], 0
    while True:
        length = max(1, round(rng.uniform(lo, hi) * fps))
        if pos + length >= n - round(lo * fps / 2):
            return starts
        pos += length
        starts.append(pos)


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


# --- encoding ------------------------------------------------------------------------------------------

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _x264_params(keyint: int, fps: float, bframes: int | None) -> str:
    min_keyint = max(1, min(round(fps), keyint))
    params = [f"keyint={keyint}", f"min-keyint={min_keyint}", "scenecut=40"]
    if bframes is not None:
        params.append(f"bframes={bframes}")
    return ":".join(params)


def make_video(
    path: str | os.PathLike[str],
    *,
    duration_s: float,
    width: int = 1280,
    height: int = 720,
    fps: float = 30,
    gop_s: float = 5.0,
    seed: int = 0,
    needles: int | None = None,
    needle_kinds: Sequence[str] = ("text", "object"),
    preset: str = "ultrafast",
    crf: int = 28,
    frame_code: bool = False,
    bframes: int | None = None,
    key_path: str | os.PathLike[str] | None = None,
    scene_s: tuple[float, float] = (10.0, 60.0),
    text_cap: float = TEXT_CAP,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerKey:
    """Write a synthetic H.264 video with needles, and its answer key; return the key.

    The video has exactly ``round(duration_s * fps)`` frames at a constant rate, a keyframe at least
    every ``gop_s`` seconds and at every scene cut. ``needles`` defaults to one per minute (1-60);
    ``bframes`` None keeps the preset's default. ``frame_code`` draws each frame's index in a band at
    the top (see ``read_frame_code``). The key goes to ``key_path`` (default: the video path with suffix
    ``.json``). ``scene_s`` is the range of scene lengths in seconds; ``text_cap`` the cap height of
    label text as a fraction of the frame height. ``progress(done, total)`` is called about once per
    second of video.
    """
    import av
    from av.video.frame import PictureType

    if preset not in X264_PRESETS:
        raise SynthError(f"unknown x264 preset {preset!r} (choose from {', '.join(X264_PRESETS)})")
    if isinstance(crf, bool) or not isinstance(crf, int | float) or not 0 <= crf <= 51:
        raise SynthError(f"crf must be a number from 0 to 51, got {crf!r}")
    if bframes is not None and (isinstance(bframes, bool) or not isinstance(bframes, int) or not 0 <= bframes <= 16):
        raise SynthError(f"bframes must be an integer from 0 to 16, got {bframes!r}")
    maker = FrameMaker(
        duration_s=duration_s, width=width, height=height, fps=fps, gop_s=gop_s, seed=seed,
        needles=needles, needle_kinds=needle_kinds, frame_code=frame_code, scene_s=scene_s, text_cap=text_cap,
    )  # fmt: skip
    path = Path(path)
    key_path = Path(key_path) if key_path is not None else path.with_suffix(".json")
    if path.is_dir():
        raise VideoError(path, "is a folder; give a file name such as out.mp4")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VideoError(path, f"cannot create its folder ({exc.strerror or exc})") from None
    tmp = path.with_name(f".{path.name}.partial{path.suffix}")
    keyint = max(1, round(maker.gop_s * maker.fps))
    n = maker.frame_count
    cut_frames = set(maker.scene_starts[1:])

    # Frames go round a fixed pool: the producer paints into a free frame, the encoder hands it back
    # once x264 has copied it. Reusing buffers avoids touching fresh memory for every frame.
    pool_size = 12
    ready: queue.Queue = queue.Queue()
    free: queue.Queue = queue.Queue()
    for _ in range(pool_size):
        frame = av.VideoFrame(maker.width, maker.height, "yuv420p")
        planes = tuple(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)
        free.put((frame, planes))
    stop = threading.Event()
    time_base = 1 / maker.rate

    def produce() -> None:
        try:
            for i in range(n):
                while True:
                    if stop.is_set():
                        return
                    try:
                        frame, planes = free.get(timeout=0.1)
                        break
                    except queue.Empty:
                        continue
                maker.render_into(i, *planes)
                frame.pts = i
                frame.time_base = time_base
                # a hard cut starts a new GOP
                frame.pict_type = PictureType.I if i in cut_frames else PictureType.NONE
                ready.put((frame, planes))
        except BaseException as exc:  # handed to the encoding thread
            ready.put(exc)

    try:
        container = av.open(str(tmp), "w", format=_FORMATS.get(path.suffix.lower(), "mp4"))
    except (OSError, av.FFmpegError) as exc:
        raise VideoError(path, f"cannot write ({exc})") from None
    producer = threading.Thread(target=produce, name="longlens-synth-frames", daemon=True)
    ok = False
    try:
        stream = container.add_stream("libx264", rate=maker.rate)
        stream.width, stream.height, stream.pix_fmt = maker.width, maker.height, "yuv420p"
        stream.codec_context.time_base = 1 / maker.rate
        stream.codec_context.options = {
            "preset": preset,
            "crf": f"{crf:g}",
            "forced-idr": "1",
            "x264-params": _x264_params(keyint, maker.fps, bframes),
        }
        producer.start()
        step = max(1, round(maker.fps))
        for done in range(1, n + 1):
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            for packet in stream.encode(item[0]):
                container.mux(packet)
            free.put(item)
            if progress is not None and (done % step == 0 or done == n):
                progress(done, n)
        for packet in stream.encode(None):
            container.mux(packet)
        ok = True
    finally:
        stop.set()
        if producer.is_alive():
            producer.join()
        try:
            container.close()
        finally:
            if not ok:
                tmp.unlink(missing_ok=True)
    tmp.replace(path)
    key = maker.key(path.name)
    key.save(key_path)
    return key
