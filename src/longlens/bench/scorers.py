"""Scorers are plain functions ``(prediction, sample) -> Score``; `accuracy` aggregates them.

A reply whose letter cannot be read is *unparsed*, never silently a letter. How unparsed replies count
is an explicit policy: ``"wrong"`` (in the denominator, scored 0: lmms-eval), ``"drop"`` (out of the
denominator: the official Video-MME and LVBench scorers) or ``"random"`` (a seeded random option: the
LongVideoBench and EgoSchema reference code). The count of unparsed replies is always reported.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from longlens.bench import extract, grounding
from longlens.bench.benchmarks import BENCHMARKS, get
from longlens.bench.sample import LETTERS, Sample
from longlens.bench.stats import clustered_se
from longlens.errors import LongLensError

POLICIES = ("wrong", "drop", "random")
EXTRACTORS: dict[str, Callable] = {
    "robust": lambda reply, s: extract.robust(reply, s.options),
    **{name: rule for b in BENCHMARKS.values() for name, rule in b.rules.items()},
}
"""Extractor name -> ``(reply, sample) -> letter or None``: with ``official`` (each benchmark's own scorer,
reproduced in its module), the names ``--extractor`` accepts."""
EXTRACTOR_CHOICES = ("official", *sorted(EXTRACTORS))


@dataclass(frozen=True)
class Score:
    id: str
    video_id: str
    parsed: str | None
    """The letter read from the reply (None: unparsed)."""
    correct: bool
    """Whether the read letter is the answer (False when unparsed)."""


def check_extractor(name: str, bench: str | None = None) -> None:
    """Raise `LongLensError` unless `name` can score `bench` (``official`` needs the benchmark's scorer)."""
    if name == "official":
        if bench is not None and not get(bench).has_official:
            raise LongLensError(f"{bench} has no official scorer to reproduce; use --extractor robust")
        return
    if name not in EXTRACTORS:
        raise LongLensError(f"unknown extractor {name!r}; use one of {', '.join(EXTRACTOR_CHOICES)}")


def score_choice(prediction: str, sample: Sample, extractor: str = "robust") -> Score:
    """Multiple choice: read a letter with `extractor` and compare it with the sample's letter."""
    if extractor == "official":
        got = score_reply(sample, prediction or "", None, "official")
        return Score(sample.id, sample.video_id, got["parsed"], bool(got["correct"]))
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; use one of {', '.join(EXTRACTOR_CHOICES)}")
    got = EXTRACTORS[extractor](prediction or "", sample)
    return Score(sample.id, sample.video_id, got, got is not None and got == sample.answer)


def score_reply(sample: Sample, reply: str | None, spans: list | None = None, extractor: str = "robust") -> dict:
    """The scored fields of one result record: `reply` (None: no prediction) and `spans` given as data (a
    predictions file's ``span``/``spans``, an agent's zoom; they win over spans read from the reply).

    Always ``prediction``, ``parsed`` and ``correct`` (and ``missing`` without a reply). With ``official``, the
    benchmark's own scorer decides the rest (NExT-GQA ``iou``/``iop``/``grounded``, CG-Bench ``long_acc``/
    ``miou``, Charades-STA ``iou``). Otherwise, by task:

    * ``choice``: ``parsed`` is the letter read (None: unparsed), ``correct`` whether it is the answer.
    * ``grounding``: ``span`` (the predicted [start, end] in seconds, or None), ``iou`` and ``iop`` (fractions,
      best over the truth spans; 0 without a span); ``parsed`` is "span" or None, ``correct`` is always False.
    * ``grounded_choice``: the letter fields of ``choice`` plus ``span``, ``iou`` and ``iop`` (and ``spans``
      when several were given: CG-Bench scores the set).
    """
    check_extractor(extractor, sample.benchmark if extractor == "official" else None)
    out: dict = {"prediction": reply}
    if reply is None:
        out["missing"] = True
    if extractor == "official":
        out.update(get(sample.benchmark).official(sample, reply, spans))
        return out
    if sample.task in ("choice", "grounded_choice"):
        got = EXTRACTORS[extractor](reply, sample) if reply is not None else None
        out.update(parsed=got, correct=got is not None and got == sample.answer)
    if sample.task in ("grounding", "grounded_choice"):
        given = [grounding.ordered(*sp) for sp in spans or ()]
        span = given[0] if given else None
        if spans is None and reply:
            span = grounding.parse_span(reply, sample.duration_s)
        out.update(span=list(span) if span else None, iou=grounding.max_over(span, sample.spans, grounding.iou),
                   iop=grounding.max_over(span, sample.spans, grounding.iop))
        if len(given) > 1:
            out["spans"] = [list(sp) for sp in given]
        if sample.task == "grounding":
            out.update(parsed="span" if span else None, correct=False)
    return out


def score_trace(trace, sample: Sample, extractor: str = "robust") -> dict:
    """The scored fields of one result record for `sample` answered by `trace` (an agent's `Trace`): its final
    answer is the reply and `grounding.predicted_span` the span given as data, except under an official
    grounding scorer (Charades-STA), which reads the last reply of the trace as written (box and all)."""
    if extractor == "official" and sample.task == "grounding":
        reply = trace.steps[-1].completion if trace.steps else trace.answer or ""
        out = score_reply(sample, reply or "", None, extractor)
    else:
        span = grounding.predicted_span(trace) if sample.task != "choice" else None
        out = score_reply(sample, trace.answer or "", [span] if span else None, extractor)
    out["prediction"] = trace.answer
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
