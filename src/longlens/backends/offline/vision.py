"""Cheap, honest vision for the offline backend: short-lived bright labels and vivid objects.

Scope: this finds things that *appear* on screen for a while — a white label with text, a brightly
coloured object — against the rest of the video, names colours and simple shapes, and locates text
for OCR. It knows nothing else about what a video shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from longlens.video.stamps import stamp_font, stamp_layout

# colour prototypes (RGB) for naming a vivid region; hue decides first, brightness second
COLOUR_NAMES: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "orange": (250, 140, 20),
    "yellow": (245, 220, 30),
    "green": (30, 180, 50),
    "cyan": (30, 210, 225),
    "blue": (30, 70, 230),
    "purple": (130, 40, 200),
    "magenta": (225, 40, 205),
    "pink": (250, 130, 190),
}


def stamp_mask(h: int, w: int) -> np.ndarray:
    """True where the red timestamp may be drawn (bottom-right), so it is never mistaken for content."""
    x, y, _ = stamp_layout("8888", w, h)
    mask = np.zeros((h, w), dtype=bool)
    mask[max(0, int(y) - 2) :, max(0, int(x) - 4) :] = True
    return mask


def extremes(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's smallest and largest channel value, uint8 (T, H, W) each. (Element-wise over the three channel
    planes: numpy's min/max reduction over an axis of length 3 is ten times slower.)"""
    r, g, b = frames[..., 0], frames[..., 1], frames[..., 2]
    return np.minimum(np.minimum(r, g), b), np.maximum(np.maximum(r, g), b)


def white_mask(frames: np.ndarray, ext: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Label-paper pixels: bright and nearly grey. (T, H, W) bool."""
    mn, mx = ext or extremes(frames)
    return (mn >= 210) & (mx - mn <= 20)  # uint8: mx >= mn, so the difference does not wrap


def vivid_mask(frames: np.ndarray, ext: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Strongly saturated, reasonably bright pixels. (T, H, W) bool."""
    mn, mx = ext or extremes(frames)
    mx16 = mx.astype(np.int16)
    return (mx >= 120) & ((mx16 - mn) * 100 >= 55 * np.maximum(mx16, 1))


@dataclass(frozen=True)
class Candidate:
    """A span of the overview where something appears for a while."""

    start_s: float
    end_s: float
    kind: str
    """"text" (a bright label) or "object" (a vivid region)."""
    strength: float
    colour: str | None = None
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    """For objects: the region's pixels in the frame where it is largest (for naming its shape)."""
    patch: np.ndarray | None = field(default=None, repr=False, compare=False)
    """For labels: the largest label region's pixels, grey (too small to read, not to compare with a text)."""

    @property
    def size(self) -> tuple[int, int] | None:
        """For labels: (width, height) in pixels of the largest label region."""
        return None if self.patch is None else (self.patch.shape[1], self.patch.shape[0])


def _segments(active: np.ndarray, max_gap: int = 1) -> list[tuple[int, int]]:
    segs: list[tuple[int, int]] = []
    start = None
    gap = 0
    for i, a in enumerate(active):
        if a:
            if start is None:
                start = i
            gap = 0
            end = i
        elif start is not None:
            gap += 1
            if gap > max_gap:
                segs.append((start, end))
                start = None
    if start is not None:
        segs.append((start, end))
    return segs


def label_regions(mask: np.ndarray, frame: np.ndarray, min_area: int = 8) -> list[tuple[int, int, int, int, int]]:
    """(x, y, w, h, area) of regions shaped like a label: a wide, mostly bright rectangle with dark ink inside."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = []
    for x, y, w, h, area in stats[1:]:
        if area < min_area or not 1.2 <= w / max(h, 1) <= 15 or area < 0.45 * w * h:
            continue
        box = frame[y : y + h, x : x + w].max(axis=-1).astype(np.int16)
        paper = int(np.percentile(box, 90))
        ink = float((box < paper - 45).mean())  # text strokes: clearly darker than the label's paper
        if 0.02 <= ink <= 0.6:
            out.append((int(x), int(y), int(w), int(h), int(area)))
    return out


def find_candidates(
    frames: np.ndarray, times_s: tuple[float, ...], min_fraction: float = 0.0015, max_span_s: float = 20.0
) -> list[Candidate]:
    """Spans where bright labels or vivid objects appear that are not there most of the time.

    Spans longer than `max_span_s` are scenery, not something that appears, and are left out.
    """
    t, h, w, _ = frames.shape
    if t == 0:
        return []
    keep = ~stamp_mask(h, w)
    step = (times_s[-1] - times_s[0]) / max(t - 1, 1)
    out: list[Candidate] = []
    ext = extremes(frames)
    for kind, masks in (("text", white_mask(frames, ext)), ("object", vivid_mask(frames, ext))):
        persistent = masks.mean(axis=0) > 0.3  # present most of the time: part of the scene, not news
        transient = masks & ~persistent & keep
        if kind == "text":
            regions = [label_regions(m, f) for m, f in zip(transient, frames, strict=True)]
            score = np.array([sum(r[4] for r in rs) for rs in regions], dtype=np.float64) / (h * w)
        else:
            score = transient.reshape(t, -1).sum(axis=1) / float(h * w)
        floor = max(min_fraction, 4 * float(np.median(score)))
        for a, b in _segments(score > floor):
            if (b - a + 1) * step > max_span_s:
                continue
            strength = float(score[a : b + 1].mean())  # how clearly, not how long, it shows
            colour, region, patch = None, None, None
            if kind == "text":
                at, largest = max(((a + k, r) for k, rs in enumerate(regions[a : b + 1]) for r in rs),
                                  key=lambda ir: ir[1][4])
                x, y, bw, bh = (int(v) for v in largest[:4])
                patch = frames[at, y : y + bh, x : x + bw].mean(axis=-1).astype(np.float32)
            if kind == "object":
                pix = frames[a : b + 1][transient[a : b + 1]]
                colour = name_colour(pix.mean(axis=0)) if len(pix) else None
                region = transient[a + int(np.argmax(score[a : b + 1]))]
            out.append(Candidate(float(times_s[a]), float(times_s[b]) + step, kind, strength, colour, region,
                                 patch))
    return sorted(out, key=lambda c: -c.strength)


def name_colour(rgb: np.ndarray, names: list[str] | None = None) -> str:
    """The closest colour name (by hue, then RGB distance) among `names` (default: all known)."""
    choices = [n for n in (names or COLOUR_NAMES) if n in COLOUR_NAMES] or list(COLOUR_NAMES)
    rgb = np.asarray(rgb, dtype=np.float64)

    def hue(c):
        r, g, b = (np.asarray(c, dtype=np.float64) / 255).tolist()
        mx, mn = max(r, g, b), min(r, g, b)
        if mx == mn:
            return 0.0
        if mx == r:
            return ((g - b) / (mx - mn)) % 6 * 60
        if mx == g:
            return ((b - r) / (mx - mn) + 2) * 60
        return ((r - g) / (mx - mn) + 4) * 60

    h0 = hue(rgb)

    def dist(name):
        proto = COLOUR_NAMES[name]
        dh = abs(h0 - hue(proto))
        dh = min(dh, 360 - dh)
        return dh * 3 + float(np.linalg.norm(rgb - np.asarray(proto)))

    return min(choices, key=dist)


def largest_region(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the largest 8-connected region of a 2-D mask, or None."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, _ = stats[i]
    return int(x), int(y), int(w), int(h)


def shape_template(name: str, w: int, h: int) -> np.ndarray | None:
    """Our own canonical masks of simple shapes, fitted to a w x h box (None if the name is unknown)."""
    ss = 4
    img = Image.new("L", (w * ss, h * ss), 0)
    d = ImageDraw.Draw(img)
    W, H = w * ss - 1, h * ss - 1
    cx, cy = W / 2, H / 2
    if name == "circle":
        d.ellipse((0, 0, W, H), fill=255)
    elif name == "square" or name == "rectangle":
        d.rectangle((0, 0, W, H), fill=255)
    elif name == "triangle":
        d.polygon([(cx, 0), (W, H), (0, H)], fill=255)
    elif name == "diamond":
        d.polygon([(cx, 0), (W, cy), (cx, H), (0, cy)], fill=255)
    elif name == "hexagon":
        d.polygon([(0, cy), (W / 4, 0), (3 * W / 4, 0), (W, cy), (3 * W / 4, H), (W / 4, H)], fill=255)
    elif name == "cross" or name == "plus":
        a = 0.18
        d.rectangle((cx - a * W, 0, cx + a * W, H), fill=255)
        d.rectangle((0, cy - a * H, W, cy + a * H), fill=255)
    elif name == "star":
        pts = []
        for k in range(10):
            r = 1.0 if k % 2 == 0 else 0.42
            ang = np.radians(-90 + 36 * k)
            pts.append((cx + r * cx * np.cos(ang), cy * 1.1 + r * cy * 1.05 * np.sin(ang)))
        d.polygon(pts, fill=255)
    else:
        return None
    return np.asarray(img.resize((w, h), Image.Resampling.BOX)) > 127


SHAPE_NAMES = ("circle", "square", "triangle", "star", "hexagon", "cross", "diamond")


# advance widths of a common sans-serif (Helvetica's published metrics, thousandths of an em): text of the same
# number of characters differs in width by a character or more (MEADOW against PIRATE), and a label's width
# follows its text's width, not its length
_ADVANCE = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", (667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833,
                                                  722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611),
                    strict=True)) | dict.fromkeys("0123456789", 556) | {" ": 278, "-": 333, ".": 278}


def text_em(text: str) -> float:
    """Width of `text` set in upper case in a common sans-serif, in ems."""
    return sum(_ADVANCE.get(ch, 600) for ch in text.upper()) / 1000


@lru_cache(maxsize=4096)
def _rendered(text: str, w: int, h: int) -> np.ndarray:
    """`text` in black on a white label (the paper around it as wide as labels have), shrunk to w x h pixels."""
    font = _label_font()
    left, top, right, bottom = font.getbbox(text)
    cap = bottom - top
    img = Image.new("L", (right - left + round(1.2 * cap), cap + round(0.9 * cap)), 255)
    ImageDraw.Draw(img).text((round(0.6 * cap) - left, round(0.45 * cap) - top), text, fill=0, font=font)
    return np.asarray(img.resize((w, h), Image.Resampling.BOX), np.float32)


def _label_font():
    return stamp_font(100)  # the packaged Liberation Sans (Arial's widths): not the font any test video uses


def text_likeness(patch: np.ndarray, text: str) -> float:
    """How much a label's pixels look like `text` set on it (normalised correlation, -1 to 1). A label a few pixels
    tall cannot be read, but its dark strokes fall where one option's letters put them and not another's."""
    h, w = patch.shape
    if h < 3 or w < 3 or not text:
        return 0.0
    a = patch - patch.mean()
    b = _rendered(text.upper(), w, h)
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


LABEL_EM_OFFSET, LABEL_EM_SLOPE = 1.03, 0.543
"""A label's width over the height of the video's labels is about OFFSET + SLOPE x its text's width in ems (the
paper around the text, then the text): fitted on 34 generated labels in 196x112 fast views, residual 0.28 em (half
a character)."""


def label_em(width: float, label_height: float) -> float:
    """About how wide (in ems) the text on a label `width` pixels wide is, where the video's labels are
    `label_height` pixels tall (their mean: one label's own height is a pixel or two off in an overview)."""
    return (width / max(label_height, 1e-6) - LABEL_EM_OFFSET) / LABEL_EM_SLOPE


@dataclass(frozen=True)
class Sighting:
    """One vivid object in one frame: where, its colour and the simple shape its outline fits best."""

    frame: int
    box: tuple[int, int, int, int]
    area: int
    colour: str
    shape: str | None
    shape_fit: float
    """IoU of the outline with the shape's template."""
    region: np.ndarray = field(repr=False, compare=False)
    """The region's pixels within `box` (bool)."""


def sightings(frames: np.ndarray, keep: np.ndarray, min_fraction: float = 0.002) -> list[Sighting]:
    """Every vivid region of at least `min_fraction` of a frame, in every frame (`keep`: where content may be)."""
    import cv2

    t, h, w, _ = frames.shape
    vivid = vivid_mask(frames) & keep
    out = []
    for i in np.flatnonzero(vivid.reshape(t, -1).sum(axis=1) >= min_fraction * h * w):
        n, lab, stats, _ = cv2.connectedComponentsWithStats(vivid[i].astype(np.uint8), connectivity=8)
        for k in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[k])
            if area < min_fraction * h * w:
                continue
            region = lab[y : y + bh, x : x + bw] == k
            colour = name_colour(frames[i, y : y + bh, x : x + bw][region].mean(axis=0))
            shape, fit = name_shape(region, list(SHAPE_NAMES))
            out.append(Sighting(int(i), (x, y, bw, bh), area, colour, shape, fit, region))
    return out


def name_shape(mask: np.ndarray, names: list[str]) -> tuple[str | None, float]:
    """The option name whose template best overlaps the largest region of `mask` (IoU), and the IoU."""
    box = largest_region(mask)
    if box is None:
        return None, 0.0
    x, y, w, h = box
    region = mask[y : y + h, x : x + w]
    best, best_iou = None, 0.0
    for name in names:
        tpl = shape_template(name, w, h)
        if tpl is None:
            continue
        iou = (tpl & region).sum() / max((tpl | region).sum(), 1)
        if iou > best_iou:
            best, best_iou = name, float(iou)
    return best, best_iou
