"""Time spans and their overlap measures: ``(start, end)`` in seconds, every measure a fraction in [0, 1].

The measures of Charades-STA, NExT-GQA and CG-Bench (`iou`, `iop`, `max_over`, `union_iou`), used by the
benchmarks' scorers, the zoom agent's interval policy and the training rewards alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Span = tuple[float, float]


def ordered(a: float, b: float) -> Span:
    return (a, b) if a <= b else (b, a)


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
