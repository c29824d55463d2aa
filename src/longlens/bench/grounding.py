"""Time spans: reading them from replies and traces, and comparing them with annotated spans.

A span is ``(start, end)`` in seconds. Every measure here is a fraction in [0, 1] (never a percentage).

* `parse_span`: ours, for any reply (each benchmark's official reader lives in its module):
  ``\\boxed{[s, e]}``, ``[s, e]``, "from 12.5 to 20 seconds", "12.5 - 20",
  clock times; fractions of the video when every end is <= 1 and the duration is known.
* `iou`, `iop`, `max_over`, `union_iou`: the overlap measures of Charades-STA, NExT-GQA and CG-Bench.
* `predicted_span`: the span an agent's trace predicts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from longlens.agents.actions import last_boxed, parse_interval, parse_time

Span = tuple[float, float]


def ordered(a: float, b: float) -> Span:
    return (a, b) if a <= b else (b, a)


# ---------------------------------------------------------------- our reader
_TIME = r"\d++(?::\d{1,2}){0,2}(?:\.\d++)?(?:\s*(?:seconds|second|secs|sec|s)\b)?"  # possessive: linear on digit runs
_RANGE = re.compile(rf"({_TIME})\s*(?:-|–|—|~|\bto\b|\buntil\b|\band\b)\s*({_TIME})", re.IGNORECASE)
_BRACKET = re.compile(r"\[[^\[\]]*\]")


def parse_span(text: str, duration_s: float | None = None) -> Span | None:
    """The span a reply names (the boxed one first, else the last one written), or None.

    Ends are seconds or clock times; when both are <= 1 and `duration_s` is given they are fractions of
    the video and are scaled by it. Reversed ends are swapped."""
    if not text:
        return None
    boxed = last_boxed(text)
    for chunk in ([boxed] if boxed else []) + [text]:
        span = _last_span(chunk)
        if span is not None:
            a, b = span
            if duration_s and a <= 1 and b <= 1:
                a, b = a * duration_s, b * duration_s
            return ordered(a, b)
    return None


def _last_span(text: str) -> Span | None:
    for m in reversed(list(_BRACKET.finditer(text))):
        got = parse_interval(m.group(0))
        if not isinstance(got, str):
            return got
    for m in reversed(list(_RANGE.finditer(text))):
        a, b = parse_time(m[1]), parse_time(m[2])
        if a is not None and b is not None:
            return a, b
    return None


# ---------------------------------------------------------------- overlap measures
def _overlap(a: Span, b: Span) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def iou(a: Span, b: Span) -> float:
    """Intersection over union of two spans (0 when they do not overlap or both are empty). The union of
    overlapping spans is computed as their hull, ``max(ends) - min(starts)``, as NExT-GQA's ``get_tIoU``
    (code/TempGQA/eval_ground.py, doc-doc/NExT-GQA@63772e0) does: the same number in exact arithmetic, but
    lenA + lenB - inter rounds differently in floating point (0.49999999999999994 instead of 0.5)."""
    inter = _overlap(a, b)
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def iop(pred: Span, gt: Span) -> float:
    """Intersection over the predicted span's length (NExT-GQA); a zero-length prediction scores 1 inside `gt`."""
    length = pred[1] - pred[0]
    if length <= 0:
        return 1.0 if gt[0] <= pred[0] <= gt[1] else 0.0
    return _overlap(pred, gt) / length


def max_over(pred: Span | None, gts: Iterable[Span], fn: Callable[[Span, Span], float]) -> float:
    """The best `fn(pred, gt)` over the annotated spans; 0 without a prediction or spans."""
    if pred is None:
        return 0.0
    return max((fn(pred, tuple(g)) for g in gts), default=0.0)


def merge(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans joined, sorted."""
    out: list[list[float]] = []
    for s, e in sorted(ordered(*sp) for sp in spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def union_iou(preds: Iterable[Span], gts: Iterable[Span]) -> float:
    """CG-Bench's IoU of two span sets: each merged, total intersection / total union."""
    p, g = merge(preds), merge(gts)
    inter = sum(_overlap(a, b) for a in p for b in g)
    union = sum(e - s for s, e in p) + sum(e - s for s, e in g) - inter
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------- traces
def predicted_span(trace) -> Span | None:
    """The span a trace predicts: its final answer read by `parse_span`; else the last interval it asked to
    zoom into (the forced answer step included: for the zoom agent that clip is its evidence); else None."""
    duration = (trace.video or {}).get("duration_s")
    span = parse_span(trace.answer or "", duration)
    if span is not None:
        return span
    for step in reversed(trace.steps):
        action = step.action or {}
        if action.get("kind") == "zoom" and action.get("start_s") is not None and action.get("end_s") is not None:
            return ordered(float(action["start_s"]), float(action["end_s"]))
    return None
