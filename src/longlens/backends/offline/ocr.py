"""Text reading with RapidOCR, whose ONNX models ship inside its PyPI wheel (nothing is downloaded)."""

from __future__ import annotations

import re
import threading
from difflib import SequenceMatcher

import numpy as np

from longlens._imports import require

_engine = None
_lock = threading.Lock()


def engine():
    global _engine
    with _lock:
        if _engine is None:
            rapidocr = require("rapidocr_onnxruntime", "ocr", "the offline backend's text reader")
            _engine = rapidocr.RapidOCR()
    return _engine


def read_text(image: np.ndarray) -> list[tuple[str, float]]:
    """[(text, confidence)] of the lines found in an RGB image."""
    reader = engine()
    with _lock:  # one image at a time: the engine is not thread-safe
        result, _ = reader(np.ascontiguousarray(image[..., ::-1]))  # it expects BGR, as OpenCV
    return [(str(text), float(conf)) for _, text, conf in (result or [])]


def read_line(image: np.ndarray) -> tuple[str, float]:
    """(text, confidence) of an RGB image that is one line of text (a label crop): recognition alone, no text
    detection (about 30x cheaper on a small crop, which the detector would upscale to 736 px first)."""
    reader = engine()
    with _lock:
        result, _ = reader(np.ascontiguousarray(image[..., ::-1]), use_det=False, use_cls=False, use_rec=True)
    if not result:
        return "", 0.0
    text, conf = result[0][0], result[0][1]
    return str(text), float(conf)


def normalise(text: str) -> str:
    """Upper-case letters and digits only: RapidOCR joins English words, so spaces never count."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def match_score(option: str, text: str) -> float:
    """How well `option` is found in `text` (both normalised): 1.0 if contained, else best window similarity."""
    o, t = normalise(option), normalise(text)
    if not o or not t:
        return 0.0
    if o in t:
        return 1.0
    n = len(o)
    if len(t) <= n:
        return SequenceMatcher(None, o, t).ratio()
    return max(SequenceMatcher(None, o, t[i : i + n]).ratio() for i in range(len(t) - n + 1))
