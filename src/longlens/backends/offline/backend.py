"""The offline backend: LOVE-R1's protocol, spoken by OCR and a few honest heuristics.

What it does with a prompt (and all it can do):

* **Overview** (the fast view): it finds spans where a bright label or a vivid object appears for a
  while (`vision.find_candidates`), ranks them by how well they fit the question (a label for a text
  question, a vivid region of the named colour for a colour or shape question), skips spans already
  zoomed, and replies ``I need to zoom in on the video.`` with its reason and ``\\boxed{[s, e]}``.
* **High-resolution frames** (a zoom-in clip, or a uniform sample): it reads labels with OCR (and the whole
  frame when there is no label), names the colour and shape of vivid regions, and answers
  ``\\boxed{letter}`` when the evidence matches an option — or with the text it read for an open question.
* At the forced answer step with no evidence, it says it is guessing, and guesses (seeded by the question).

It does not understand scenes, actions, speech or anything else; questions outside on-screen text and
salient colours/shapes get a stated guess.

For the navigate agent's vision roles (recognised by their system prompts) it captions a tree node or
answers a video_qa query with the on-screen text it reads, vivid objects and dominant colours, and says
that this is all it covers (`describe.py`).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from longlens.backends.base import DEFAULT_GEN, Backend, Completion, GenConfig
from longlens.backends.memo import ByArray
from longlens.backends.offline import describe, labels, ocr, vision
from longlens.prompts.messages import Image, Message, Text, Video, forced_prefix
from longlens.video import FrameSet

ZOOM_PREFIX = "I need to zoom in on the video.\n\n"
ANSWER_PREFIX = "I get the answer.\n\n"
_SPAN = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*\]")
_OPTION = re.compile(r"^([A-J])\.\s?(.*)$")
HIGH_RES = 200  # frames at least this tall are read in detail; smaller ones are an overview
CLIP_FRAMES = 32
"""Frames a zoom clip shows (the protocol's): spread evenly over the clip."""
CLIP_PAD_S = 5.0
"""What the agent may add on each side of the asked span before sampling it."""
MIN_SHOW_S = 2.0
"""The shortest a thing is taken to stay on screen when the overview cannot tell (seen in one frame)."""
MAX_CLIP_S = 180.0
LIKENESS_SCALE = 0.05
"""A label whose pixels single out one option's text by 0.05 more (its correlation with that option's rendering
over its mean with the others') than another label's is e (2.7) times likelier to be the one asked about (on
development suites the asked label correlated best with its own text of ~40 words in 19 of 23 cases)."""


def _fits_one_clip(group: list, step: float) -> bool:
    """Whether one clip over `group` (candidates sorted by start) still puts a frame inside each of them: its frames
    are (span + padding) / 31 apart, which must stay under what each was seen to last (with a margin)."""
    span = max(c.end_s for c in group) - group[0].start_s + 2 * CLIP_PAD_S
    lasts = min(max(c.end_s - c.start_s - step, MIN_SHOW_S) for c in group)
    return span <= MAX_CLIP_S and span / (CLIP_FRAMES - 1) <= 0.85 * lasts


@dataclass
class _View:
    label: str
    span: tuple[float, float] | None
    frames: np.ndarray
    times_s: tuple[float, ...]


@dataclass
class _Prompt:
    views: list[_View] = field(default_factory=list)
    question: str = ""
    options: list[str] = field(default_factory=list)
    forced: bool = False


def _read_prompt(messages: tuple[Message, ...]) -> _Prompt:
    p = _Prompt(forced=forced_prefix(messages) is not None)
    label = ""
    last_text = ""
    images: list[tuple[np.ndarray, float | None]] = []
    for m in messages:
        if m.role != "user":
            continue
        for part in m.parts:
            if isinstance(part, Text):
                label = last_text = part.text
            elif isinstance(part, Video):
                fs: FrameSet = part.frames
                sm = _SPAN.search(label)
                span = (float(sm.group(1)), float(sm.group(2))) if sm else None
                p.views.append(_View(label, span, fs.frames, tuple(fs.times_s)))  # the same array every step
                label = ""
            elif isinstance(part, Image):
                images.append((part.pixels, part.time_s))
    if images:  # loose frames: group the ones of one size into a view
        by_size: dict = {}
        for px, t in images:
            by_size.setdefault(px.shape, []).append((px, t if t is not None else 0.0))
        for group in by_size.values():
            p.views.append(_View("images", None, np.stack([g[0] for g in group]), tuple(g[1] for g in group)))
    lines = last_text.split("\n")
    p.question = lines[0].strip()
    for line in lines[1:]:
        m = _OPTION.match(line.strip())
        if m:
            p.options.append(m.group(2).strip())
    return p


def _kind(p: _Prompt) -> str:
    q = p.question.lower()
    opts = [o.lower() for o in p.options]
    if re.search(r"\bcolou?r\b", q) or (opts and all(o in vision.COLOUR_NAMES for o in opts)):
        return "colour"
    if re.search(r"\bshape\b", q) or (opts and all(vision.shape_template(o, 8, 8) is not None for o in opts)):
        return "shape"
    return "text"


def _named(p: _Prompt) -> tuple[str | None, str | None]:
    """The colour and the shape the question names, if it names one ("the blue object", "the star")."""
    q = p.question.lower()
    colour = next((c for c in vision.COLOUR_NAMES if re.search(rf"\b{c}\b", q)), None)
    shape = next((s for s in vision.SHAPE_NAMES if re.search(rf"\b{s}\b", q)), None)
    return colour, shape


def _navigate_role(messages: tuple[Message, ...]) -> str | None:
    """"caption" or "videoqa" for the navigate agent's vision requests (known by their system prompt)."""
    system = messages[0].plain_text if messages and messages[0].role == "system" else ""
    if "You are a video understanding expert" in system:
        return "caption"
    if "You are a video question-answering model" in system:
        return "videoqa"
    return None


def _images(messages: tuple[Message, ...]) -> tuple[np.ndarray, list[float], str]:
    """The frames (one size), their times and the first text of the user turn."""
    pixels, times, query = [], [], ""
    for m in messages:
        if m.role != "user":
            continue
        for part in m.parts:
            if isinstance(part, Image):
                pixels.append(part.pixels)
                times.append(part.time_s if part.time_s is not None else 0.0)
            elif isinstance(part, Text) and not query:
                query = part.text
    if not pixels:
        return np.zeros((0, 1, 1, 3), np.uint8), [], query
    shape = pixels[0].shape
    keep = [i for i, p in enumerate(pixels) if p.shape == shape]
    return np.stack([pixels[i] for i in keep]), [times[i] for i in keep], query


class OfflineBackend(Backend):
    name = "offline"

    def __init__(self, *, max_labels: int = 64, min_match: float = 0.75, seed: int = 0):
        self.model = "longlens-offline-1"
        self.max_labels = max_labels
        """Label tracks read at most in one view (each distinct label on screen is one track)."""
        self.min_match = min_match
        self.seed = seed
        self._found: ByArray[list] = ByArray()  # overview frames -> their candidates (see `_candidates`)

    def check(self) -> None:
        ocr.engine()  # fails with an install hint if the 'ocr' extra is missing

    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        t0 = time.perf_counter()
        role = _navigate_role(messages)
        if role is not None:  # a caption or video_qa request of the navigate agent
            frames, times, query = _images(messages)
            text = (describe.caption(frames, times, max_labels=self.max_labels) if role == "caption"
                    else describe.answer(query, frames, times, max_labels=self.max_labels))
            return Completion(text=text, latency_s=time.perf_counter() - t0, model=self.model, finish_reason="stop")
        prompt = _read_prompt(messages)
        text, guess = self._reply(prompt)
        prefix = forced_prefix(messages) or ""
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :]
        return Completion(text=text, prefix=prefix, latency_s=time.perf_counter() - t0, model=self.model,
                          finish_reason="stop", guess=guess)

    # ------------------------------------------------------------------ deciding
    def _reply(self, p: _Prompt) -> tuple[str, bool]:
        """The reply, and whether its answer is a guess."""
        kind = _kind(p)
        detail = [v for v in p.views if v.frames.shape[1] >= HIGH_RES]
        overview = next((v for v in p.views if v.frames.shape[1] < HIGH_RES), None)
        for view in detail:
            found = self._evidence(view, kind, p)
            if found:
                letter_or_text, reason = found
                return f"{ANSWER_PREFIX}{reason} \\boxed{{{letter_or_text}}}", False
        if not p.forced and overview is not None:
            target = self._zoom_target(overview, kind, p, [v.span for v in detail if v.span])
            if target:
                (s, e), reason = target
                return f"{ZOOM_PREFIX}{reason} \\boxed{{[{s}, {e}]}}", False
        return ANSWER_PREFIX + self._guess(p, looked=bool(detail)), True

    def _candidates(self, view: _View) -> list:
        """`vision.find_candidates` of an overview, once per frame array: every step of a question, and every
        question on the video, shows the same fast view."""
        return self._found.get(view.frames, view.times_s, lambda: vision.find_candidates(view.frames, view.times_s))

    def _zoom_target(self, view: _View, kind: str, p: _Prompt, seen: list[tuple[float, float]]):
        cands = self._candidates(view)
        cands = [c for c in cands if not any(a <= (c.start_s + c.end_s) / 2 <= b for a, b in seen)]
        if not cands:
            return None
        wanted = "text" if kind == "text" else "object"
        colour_named, shape_named = _named(p)
        option_colours = {o.lower() for o in p.options} & set(vision.COLOUR_NAMES) if kind == "colour" else set()
        texts = sorted({n for n in (ocr.normalise(o) for o in p.options) if n}) if kind == "text" else []
        widths = [vision.text_em(n) for n in texts]
        sized = [c.size for c in cands if c.kind == "text" and c.size]
        label_h = float(np.mean([h for _, h in sized])) if sized else 0.0

        def weight(c) -> float:
            """How likely the candidate is the thing asked about: its kind, then the named colour and shape, a colour
            among the options, and for a label how close its width is to an option's text's."""
            if c.kind != wanted:
                return 0.0
            w = 1.0
            if colour_named and c.colour == colour_named:
                w *= 8
            if shape_named and c.mask is not None and vision.name_shape(c.mask, list(vision.SHAPE_NAMES))[0] \
                    == shape_named:
                w *= 3
            if c.colour in option_colours:
                w *= 3
            if widths and c.size:
                off = min(abs(vision.label_em(c.size[0], label_h) - em) for em in widths)
                w *= max(math.exp(-0.5 * (off / 0.35) ** 2), 0.02)  # as wide as an option's text, within ~half a letter
            if len(texts) > 1 and c.patch is not None:
                # its blurred strokes where one option's letters would put them, more than the other options': any
                # small label looks somewhat like any short text, the one asked about like its own in particular
                like = sorted((vision.text_likeness(c.patch, o) for o in texts), reverse=True)
                w *= math.exp((like[0] - sum(like[1:]) / len(like[1:])) / LIKENESS_SCALE)
            return w

        weights = {id(c): weight(c) for c in cands}
        top = max(weights.values())
        if top <= 0:
            return None
        # the ones worth a frame of the clip (others may fall inside it, but need not be seen)
        likely = sorted((c for c in cands if weights[id(c)] >= 0.1 * top), key=lambda c: c.start_s)
        step = (view.times_s[-1] - view.times_s[0]) / max(len(view.times_s) - 1, 1)
        # the clip that most likely holds the thing asked about: the run of candidates with the most weight that one
        # clip's frames can all land in (the strongest such run when they tie)
        groups = []
        for i in range(len(likely)):
            group = [likely[i]]
            for d in likely[i + 1:]:
                if not _fits_one_clip([*group, d], step):
                    break
                group.append(d)
            groups.append(group)
        best = max(groups, key=lambda g: (round(sum(weights[id(d)] for d in g), 6), sum(d.strength for d in g)))
        s, e = int(math.floor(best[0].start_s)), int(math.ceil(max(d.end_s for d in best)))
        one = best[0]
        what = ("a small bright label" if one.kind == "text" else f"a vivid {one.colour or 'coloured'} object") \
            if len(best) == 1 else f"{len(best)} small {'labels' if one.kind == 'text' else 'vivid objects'}"
        reason = (f"Around {s}-{e} s {what} appear{'s' if len(best) == 1 else ''} that "
                  f"{'is' if len(best) == 1 else 'are'} too small to make out in the overview; "
                  f"I will look at that interval closely.")
        return (s, e), reason

    def _evidence(self, view: _View, kind: str, p: _Prompt) -> tuple[str, str] | None:
        frames = view.frames
        t, h, w, _ = frames.shape
        keep = ~vision.stamp_mask(h, w)
        if kind == "text":
            return self._read(view, p)
        seen = vision.sightings(frames, keep)
        if not seen:
            return None
        options = [o.lower() for o in p.options]
        colour, shape = _named(p)
        if kind == "colour":  # about the object of the shape the question names, if it names one
            fits = [s for s in seen if s.shape == shape and s.shape_fit >= 0.5] if shape else seen
            if not fits:
                return None
            it = max(fits, key=lambda s: (s.shape_fit, s.area) if shape else (s.area,))
            x, y, bw, bh = it.box
            colour = vision.name_colour(frames[it.frame, y : y + bh, x : x + bw][it.region].mean(axis=0),
                                        options or None)
            what = f"the {shape}" if shape else "the object"
            return (self._letter(p, colour) or colour), (f"In the close-up at {view.times_s[it.frame]:.0f} s "
                                                         f"{what} is {colour}.")
        fits = [s for s in seen if s.colour == colour] if colour else seen
        if not fits:
            return None
        it = max(fits, key=lambda s: s.area)
        shape, score = vision.name_shape(it.region, options or list(vision.SHAPE_NAMES))
        if shape is None or score < 0.5:
            return None
        what = f"the {colour} object's" if colour else "the object's"
        return (self._letter(p, shape) or shape), (f"In the close-up at {view.times_s[it.frame]:.0f} s {what} outline "
                                                   f"is a {shape} (overlap {score:.2f}).")

    def _read(self, view: _View, p: _Prompt) -> tuple[str, str] | None:
        frames = view.frames
        t = len(frames)
        # every label of every frame, each read once (not only the largest few)
        readings = [(lb.text, lb.confidence, lb.time_s)
                    for lb in labels.read_labels(frames, view.times_s, limit=self.max_labels)]
        if not readings:
            mid = t // 2
            readings = [(txt, conf, view.times_s[mid]) for txt, conf in ocr.read_text(frames[mid])]
        if not readings:
            return None
        if p.options:
            scored = sorted(((max(ocr.match_score(o, r[0]) for r in readings), i) for i, o in enumerate(p.options)),
                            reverse=True)
            best, i = scored[0]
            runner_up = scored[1][0] if len(scored) > 1 else 0.0
            if best >= self.min_match and best - runner_up >= 0.1:
                seen = max(readings, key=lambda r: ocr.match_score(p.options[i], r[0]))
                reason = (f"At high resolution the label at {seen[2]:.0f} s reads \"{seen[0]}\", which matches "
                          f"option {chr(65 + i)} ({p.options[i]}).")
                return chr(65 + i), reason
            return None
        readings = [r for r in readings if r[1] >= 0.8 and len(ocr.normalise(r[0])) >= 2]
        if not readings:
            return None
        text, conf, when = max(readings, key=lambda r: r[1])
        return ocr.normalise(text), f"At high resolution the text at {when:.0f} s reads \"{text}\"."

    def _letter(self, p: _Prompt, name: str) -> str | None:
        for i, o in enumerate(p.options):
            if o.lower() == name:
                return chr(65 + i)
        return None

    def _guess(self, p: _Prompt, looked: bool) -> str:
        why = ("I looked closely but found nothing that matches an option" if looked
               else "I found no on-screen evidence for this question")
        if not p.options:
            return f"{why}, so I cannot answer. \\boxed{{unknown}}"
        h = int(hashlib.sha256(f"{self.seed}:{p.question}".encode()).hexdigest(), 16)
        letter = chr(65 + h % len(p.options))
        return f"{why}; this is a guess. \\boxed{{{letter}}}"
