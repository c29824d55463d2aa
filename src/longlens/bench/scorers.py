"""Scorers are plain functions ``(prediction, sample) -> Score``; `accuracy` aggregates them.

A reply whose letter cannot be read is *unparsed*, never silently a letter. How unparsed replies count
is an explicit policy: ``"wrong"`` (in the denominator, scored 0: lmms-eval), ``"drop"`` (out of the
denominator: the official Video-MME and LVBench scorers) or ``"random"`` (a seeded random option: the
LongVideoBench and EgoSchema reference code). The count of unparsed replies is always reported.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from longlens.bench import extract, grounding
from longlens.bench.sample import LETTERS, Sample

POLICIES = ("wrong", "drop", "random")
EXTRACTORS: dict[str, Callable] = {
    "robust": lambda reply, s: extract.robust(reply, s.options),
    "videomme": lambda reply, s: extract.videomme_official(reply, LETTERS[: max(len(s.options), 4)]) or None,
    # LVBench's test_acc.py takes the Video-MME family's letter and skips any answer outside A-E (policy "drop")
    "lvbench": lambda reply, s: extract.videomme_official(reply, "ABCDE") or None,
    "mlvu": lambda reply, s: extract.mlvu_official(reply) or None,
    "longvideobench": lambda reply, s: extract.longvideobench_official(reply),
    "mvbench": lambda reply, s: extract.mvbench_official(reply, LETTERS[: len(s.options) or 5]),
    "egoschema": lambda reply, s: extract.egoschema_official(reply, s.options),
    "cgbench": lambda reply, s: extract.cgbench_official(reply),
    "cgbench-lenient": lambda reply, s: extract.cgbench_official(reply, credit=s.answer),
    # Charades-STA's official rule reads spans (see score_trace); letters, if any, are read as robust does
    "charades": lambda reply, s: extract.robust(reply, s.options),
}
"""Extractor name -> ``(reply, sample) -> letter or None``: the names ``--extractor`` accepts."""


@dataclass(frozen=True)
class Score:
    id: str
    video_id: str
    parsed: str | None
    """The letter read from the reply (None: unparsed)."""
    correct: bool
    """Whether the read letter is the answer (False when unparsed)."""


def score_choice(prediction: str, sample: Sample, extractor: str = "robust") -> Score:
    """Multiple choice: read a letter with `extractor` and compare it with the sample's letter."""
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; use one of {', '.join(EXTRACTORS)}")
    got = EXTRACTORS[extractor](prediction or "", sample)
    return Score(sample.id, sample.video_id, got, got is not None and got == sample.answer)


def score_trace(trace, sample: Sample, extractor: str = "robust") -> dict:
    """The scored fields of one result record for `sample` answered by `trace` (an agent's `Trace`).

    Always ``prediction`` (the final answer text), ``parsed`` and ``correct``. By task:

    * ``choice``: ``parsed`` is the letter read (None: unparsed), ``correct`` whether it is the answer.
    * ``grounding``: ``span`` (the predicted [start, end] in seconds, or None), ``iou`` and ``iop`` (fractions,
      best over the truth spans; 0 without a span); ``parsed`` is "span" or None, ``correct`` is always False
      (grounding is measured by ``iou``, not right or wrong).
    * ``grounded_choice``: the letter fields of ``choice`` plus ``span``, ``iou`` and ``iop``.

    The span is `grounding.predicted_span(trace)`; with the ``charades`` extractor it is Charades-STA's
    official reader applied to the last reply of the trace (the raw text, box and all).
    """
    out: dict = {"prediction": trace.answer}
    if sample.task in ("choice", "grounded_choice"):
        s = score_choice(trace.answer, sample, extractor)
        out.update(parsed=s.parsed, correct=s.correct)
    if sample.task in ("grounding", "grounded_choice"):
        if extractor == "charades":
            span = grounding.charades_official(trace.steps[-1].completion if trace.steps else trace.answer or "")
        else:
            span = grounding.predicted_span(trace)
        out.update(span=list(span) if span else None, iou=grounding.max_over(span, sample.spans, grounding.iou),
                   iop=grounding.max_over(span, sample.spans, grounding.iop))
        if sample.task == "grounding":
            out.update(parsed="span" if span else None, correct=False)
    return out


@dataclass(frozen=True)
class Accuracy:
    accuracy: float
    n: int
    """Questions in the denominator."""
    unparsed: int
    se: float | None
    """Standard error, clustered by video (None with fewer than two videos)."""
    policy: str


def accuracy(scores: Iterable[Score], samples: dict[str, Sample] | None = None, *, policy: str = "wrong",
             seed: int = 0) -> Accuracy:
    """Accuracy under an unparsed `policy`; `samples` (by id) are needed for ``"random"``."""
    if policy not in POLICIES:
        raise ValueError(f"unknown unparsed policy {policy!r}; use one of {', '.join(POLICIES)}")
    scores = list(scores)
    unparsed = sum(s.parsed is None for s in scores)
    values: list[tuple[str, float]] = []
    for s in scores:
        if s.parsed is not None:
            values.append((s.video_id, float(s.correct)))
        elif policy == "wrong":
            values.append((s.video_id, 0.0))
        elif policy == "random":
            if samples is None:
                raise ValueError("the random policy needs the samples (their options and answers)")
            sample = samples[s.id]
            k = max(len(sample.options), 1)
            h = int(hashlib.sha256(f"{seed}:{s.id}".encode()).hexdigest(), 16)
            values.append((s.video_id, float(LETTERS[h % k] == sample.answer)))
    n = len(values)
    acc = sum(v for _, v in values) / n if n else 0.0
    return Accuracy(acc, n, unparsed, clustered_se(values, acc), policy)


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


def breakdown(scores: list[Score], samples: dict[str, Sample], key: str, *, policy: str = "wrong") -> dict:
    """Accuracy per value of `samples[id].categories[key]` (a list value counts for each of its labels)."""
    groups: dict[str, list[Score]] = defaultdict(list)
    for s in scores:
        value = samples[s.id].categories.get(key)
        for label in (value if isinstance(value, (list, tuple)) else [value]):
            groups[str(label)].append(s)
    return {label: accuracy(group, samples, policy=policy) for label, group in sorted(groups.items())}


def macro_average(per_group: dict[str, Accuracy]) -> float:
    """The plain mean of group accuracies (MLVU's M-Avg over its tasks)."""
    return sum(a.accuracy for a in per_group.values()) / len(per_group) if per_group else 0.0
