"""Every label in a set of frames, read once: find label-like regions, follow each across frames, read its text.

A label that stays on screen shows in many frames at about the same place; it is one *track* here, read once
(in the frame where it is largest) with the OCR's recognition model alone: a label crop is already one line of
text, so the text detector (which upscales any image to 736 px before looking for lines) is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from longlens.backends.offline import ocr, vision

MIN_HEIGHT = 48
"""Crops are scaled up to at least this many pixels tall before they are read (small text reads better)."""


@dataclass(frozen=True)
class Label:
    text: str
    confidence: float
    time_s: float
    """When it was read (the frame where it is largest)."""
    box: tuple[int, int, int, int]
    """(x, y, w, h) in that frame."""


def _same_place(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Two boxes (x, y, w, h) that overlap by at least half of the smaller one."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy >= 0.5 * min(a[2] * a[3], b[2] * b[3])


def tracks(frames: np.ndarray, min_fraction: float = 0.0008, max_gap: int = 2) -> list[tuple[int, tuple]]:
    """(frame index, (x, y, w, h, area)) of each label track's largest instance, in order of first appearance.
    A track goes on while a label region at the same place shows again within `max_gap` frames."""
    t, h, w, _ = frames.shape
    if t == 0:
        return []
    white = vision.white_mask(frames) & ~vision.stamp_mask(h, w)
    live: list[list] = []  # [last frame, best frame, best region, first frame]
    done: list[list] = []
    for i in range(t):
        regions = vision.label_regions(white[i], frames[i], min_area=max(8, int(min_fraction * h * w)))
        still = []
        for tr in live:
            if i - tr[0] > max_gap:
                done.append(tr)
            else:
                still.append(tr)
        live = still
        for r in regions:
            tr = next((tr for tr in live if tr[0] < i and _same_place(tr[2][:4], r[:4])), None)
            if tr is None:
                live.append([i, i, r, i])
                continue
            tr[0] = i
            if r[4] > tr[2][4]:
                tr[1], tr[2] = i, r
    done += live
    return [(tr[1], tuple(tr[2])) for tr in sorted(done, key=lambda tr: (tr[3], tr[2][0]))]


def crop(frame: np.ndarray, box: tuple) -> np.ndarray:
    """The label's paper, at least `MIN_HEIGHT` pixels tall. The recognition model reads a tight crop best (with a
    margin of the scene around it, it drops letters: measured on generated labels)."""
    x, y, bw, bh = box[:4]
    out = frame[y : y + bh, x : x + bw]
    if out.shape[0] < MIN_HEIGHT:
        scale = MIN_HEIGHT / out.shape[0]
        out = np.asarray(PILImage.fromarray(out).resize((max(1, round(out.shape[1] * scale)), MIN_HEIGHT),
                                                        PILImage.Resampling.BICUBIC))
    return out


def read_labels(frames: np.ndarray, times_s, *, limit: int = 64) -> list[Label]:
    """Each distinct label text in `frames` (at most `limit` tracks read), in order of appearance; a text read in
    several tracks is kept once, with its most confident reading."""
    found: dict[str, Label] = {}
    for i, region in tracks(frames)[:limit]:
        text, conf = ocr.read_line(crop(frames[i], region))
        key = ocr.normalise(text)
        if not key:
            continue
        label = Label(text, conf, float(times_s[i]), tuple(int(v) for v in region[:4]))
        if key not in found or conf > found[key].confidence:
            found[key] = label
    return sorted(found.values(), key=lambda lb: lb.time_s)
