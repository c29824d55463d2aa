"""The offline backend's caption and video_qa replies (the navigate agent's vision roles).

What it can say about a set of frames, and nothing more: the on-screen text it reads (OCR on bright
labels, or on the middle frame when there is none), vivid objects (colour and outline) that appear,
and the scene's dominant colour, each with its time. Every reply says that it comes from the offline
describer and what it covers, so a reader of the caption tree knows what it is looking at.
"""

from __future__ import annotations

import numpy as np

from longlens.backends.offline import labels, ocr, vision

SCOPE = "[offline describer: on-screen text, vivid objects and colours only]"


def _label_texts(frames: np.ndarray, times: list[float], max_labels: int) -> list[tuple[str, float]]:
    """(text, time) of each distinct label read in `frames` (at most `max_labels` label tracks)."""
    return [(lb.text, lb.time_s) for lb in labels.read_labels(frames, times, limit=max_labels)
            if lb.confidence >= 0.6 and len(ocr.normalise(lb.text)) >= 2]


def _objects(frames: np.ndarray, times: list[float]) -> list[str]:
    t, h, w, _ = frames.shape
    vivid = vision.vivid_mask(frames) & ~vision.stamp_mask(h, w)
    area = vivid.reshape(t, -1).sum(axis=1)
    if area.max() < 0.002 * h * w:
        return []
    i = int(np.argmax(area))
    box = vision.largest_region(vivid[i])
    if box is None:
        return []
    x, y, bw, bh = box
    colour = vision.name_colour(frames[i, y:y + bh, x:x + bw][vivid[i, y:y + bh, x:x + bw]].mean(axis=0))
    shape, score = vision.name_shape(vivid[i], list(vision.SHAPE_NAMES))
    what = f"a vivid {colour} {shape}" if shape and score >= 0.5 else f"a vivid {colour} object"
    return [f"{what} at {times[i]:.1f}s"]


def describe(frames: np.ndarray, times: list[float], *, max_labels: int = 64) -> dict:
    """What the offline backend can tell about `frames`: texts, objects, dominant colour."""
    texts = _label_texts(frames, times, max_labels)
    if not texts and len(frames):
        mid = len(frames) // 2
        texts = [(txt, times[mid]) for txt, conf in ocr.read_text(frames[mid]) if conf >= 0.8
                 and len(ocr.normalise(txt)) >= 2]
    colour = vision.name_colour(frames.reshape(-1, 3).mean(axis=0)) if len(frames) else None
    return {"texts": texts, "objects": _objects(frames, times), "colour": colour}


def caption(frames: np.ndarray, times: list[float], *, max_labels: int = 64) -> str:
    d = describe(frames, times, max_labels=max_labels)
    span = f"from {times[0]:.1f}s to {times[-1]:.1f}s" if times else ""
    said = []
    if d["texts"]:
        said.append("on-screen text " + ", ".join(f"\"{t}\" at {w:.1f}s" for t, w in d["texts"]))
    said += d["objects"]
    if d["colour"]:
        said.append(f"mostly {d['colour']} scenes")
    body = "; ".join(said) if said else "nothing the offline describer can name"
    return f"<caption>This clip (video) {span} shows {body}. {SCOPE}</caption>"


def answer(query: str, frames: np.ndarray, times: list[float], *, max_labels: int = 64) -> str:
    d = describe(frames, times, max_labels=max_labels)
    if d["texts"]:
        said = "; ".join(f"the on-screen text at {w:.1f}s reads \"{t}\"" for t, w in d["texts"])
        what = said[0].upper() + said[1:] + "."
    elif d["objects"]:
        what = "No on-screen text; there is " + ", ".join(d["objects"]) + "."
    else:
        what = "The offline describer finds no on-screen text or vivid object in this segment."
    return (f"<reasoning>{SCOPE} Query: {query}</reasoning>"
            f"<answer>{what}</answer>")
