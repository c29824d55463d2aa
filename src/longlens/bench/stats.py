"""Means and their standard errors, clustered by video."""

from __future__ import annotations

import math
from collections import defaultdict


def clustered_se(values: list[tuple[str, float]], mean: float) -> float | None:
    """Standard error of a mean, clustered by the first item (the video); None when fewer than two videos
    (not estimable: one video's questions say nothing about how another video would go)."""
    by_cluster: dict[str, float] = defaultdict(float)
    for cluster, v in values:
        by_cluster[cluster] += v - mean
    g = len(by_cluster)
    if g < 2:
        return None
    n = len(values)
    return math.sqrt(sum(r * r for r in by_cluster.values()) / (n * n) * g / (g - 1))


def metric(value: float, n: int, se: float | None = None, unparsed: int | None = None) -> dict:
    """One entry of a summary's ``metrics``: a fraction, its denominator and standard error."""
    out = {"value": value, "n": n, "se": se}
    if unparsed is not None:
        out["unparsed"] = unparsed
    return out


def mean_metric(pairs: list[tuple[str, float]]) -> dict:
    """The mean of ``(video_id, value)`` pairs as a metric (0 over none)."""
    mean = sum(v for _, v in pairs) / len(pairs) if pairs else 0.0
    return metric(mean, len(pairs), clustered_se(pairs, mean))
