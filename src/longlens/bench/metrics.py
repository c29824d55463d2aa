"""A run's numbers as its benchmark defines them, computed from result records alone.

`summarize(records, bench)` needs nothing but the records of ``results.jsonl`` (each carries its
categories, task, option count, truth spans and predicted span), so a report can be made from a run folder
without the dataset.

Returned shape::

    {"bench": "videomme", "policy": "wrong", "questions": 120,
     "headline": {"name": "accuracy", "value": 0.61, "se": 0.03, "n": 120},
     "metrics": {"accuracy": {"value": .61, "n": 120, "se": .03, "unparsed": 3}, ...},  # all the benchmark reports
     "tables": {"duration": {"short": {"accuracy": .7, "n": 40, "se": .05, "unparsed": 1}, ...}, ...},
     "extractor": "robust", "missing_predictions": 0,
     "unparsed": 3, "errors": 1, "errors_by_kind": {"input": 1}, "failed": [{"id", "kind", "error"}],
     "guessed": 5, "without_guesses": {"accuracy": .64, "n": 115, "se": .03}, "retries": 2, "retried_questions": 1}

``unparsed`` counts replies the scorer could not read; ``errors`` the questions that got no reply (an error
record: a broken video, a server that failed after its retries), which the headline counts like unparsed
replies (wrong under the default policy). ``guessed`` counts answers the backend itself called guesses.

Every number is a fraction in [0, 1], never a percentage (papers print these x100). Standard errors are
clustered by video. Table rows always carry ``accuracy``, ``n``, ``se`` and ``unparsed`` (for the letter);
grounded benchmarks add their own columns (NExT-GQA ``Acc@GQA``, ``mIoP``, ``mIoU``; CG-Bench ``mIoU``,
``rec@IoU``, ``acc@IoU``). The unparsed `policy` applies to letters only: a missing span always scores 0.
"""

from __future__ import annotations

import math
import re

from longlens.bench import grounding
from longlens.bench.benchmark import Benchmark
from longlens.bench.benchmarks import BENCHMARKS
from longlens.bench.benchmarks.lvbench import COLUMNS as LVBENCH_COLUMNS
from longlens.bench.scorers import Accuracy, Score, accuracy
from longlens.bench.stats import mean_metric, metric

CG_THRESHOLDS = BENCHMARKS["cgbench"].thresholds


def _spec(bench: str) -> Benchmark:
    return BENCHMARKS.get(bench) or Benchmark(bench, bench, load=lambda data, videos: None)


def summarize(records: list[dict], bench: str, *, policy: str = "wrong", seed: int = 0,
              extractor: str = "robust") -> dict:
    """The summary of a run's (or a predictions file's) records. With ``extractor="official"`` the metrics are
    the official script's, with its denominators (`Benchmark.official_metrics`, or the letter accuracy under
    the benchmark's official unparsed policy); the tables stay ours."""
    spec = _spec(bench)
    if extractor == "official" and spec.official_metrics is None:
        policy = spec.official_policy
    if records and all(r.get("task") == "grounding" for r in records):
        summary = _grounding_summary(records, bench, policy)
    else:
        summary = _choice_summary(records, bench, policy, seed, spec)
    summary["extractor"] = extractor
    summary["missing_predictions"] = sum(1 for r in records if r.get("missing"))
    summary.update(_failures_and_guesses(records, policy, seed))
    if extractor == "official" and spec.official_metrics is not None:
        metrics = spec.official_metrics(records)
        name = next(iter(metrics))
        summary.update(policy="official", metrics=metrics,
                       headline={"name": name, "value": metrics[name]["value"], "se": metrics[name].get("se"),
                                 "n": metrics[name]["n"]})
    return summary


def _choice_summary(records: list[dict], bench: str, policy: str, seed: int, spec: Benchmark) -> dict:
    choice = [r for r in records if r.get("task", "choice") in ("choice", "grounded_choice")]
    acc = _accuracy(choice, policy, seed)
    tables = {key: {label: _row(_accuracy(g, policy, seed)) for label, g in _groups(choice, key, bench).items()}
              for key in spec.breakdowns}
    metrics = {"accuracy": metric(acc.accuracy, acc.n, acc.se, acc.unparsed)}
    headline = {"name": "accuracy", "value": acc.accuracy, "se": acc.se, "n": acc.n}
    if spec.macro and tables.get("task"):
        rows = list(tables["task"].values())
        value = sum(r["accuracy"] for r in rows) / len(rows)
        se = None if any(r["se"] is None for r in rows) else math.sqrt(sum(r["se"] ** 2 for r in rows)) / len(rows)
        metrics[spec.macro] = metric(value, acc.n, se, acc.unparsed)
        headline = {"name": spec.macro, "value": value, "se": se, "n": acc.n}
    summary = {"bench": bench, "policy": policy, "questions": len(records), "headline": headline, "metrics": metrics,
               "tables": tables}
    if bench == "nextgqa":
        _add_grounded(summary, choice, _nextgqa_values, "Acc@GQA", bench)
    elif bench == "cgbench":
        _add_grounded(summary, choice, _cgbench_values, "long_acc", bench)
    return summary


FAILED_LISTED = 100


def failed(record: dict) -> bool:
    """A question that got no reply: its video or the server failed (an error record)."""
    return bool(record.get("error_kind"))


def unparsed(record: dict) -> bool:
    """A reply with nothing the scorer could read (no letter; grounding: no span)."""
    if record.get("task") == "grounding":
        return _span(record) is None
    return record.get("parsed") is None


def _failures_and_guesses(records: list[dict], policy: str, seed: int) -> dict:
    """``unparsed`` (replies only), ``errors`` (questions that failed: counted by kind and listed, the first
    `FAILED_LISTED`), ``guessed`` (answers the backend said were guesses) with the accuracy without them,
    and ``retries`` (failed model calls retried before a reply)."""
    errs = [r for r in records if failed(r)]
    kinds: dict[str, int] = {}
    for r in errs:
        kinds[r["error_kind"]] = kinds.get(r["error_kind"], 0) + 1
    guessed = [r for r in records if r.get("guessed")]
    out = {"unparsed": sum(1 for r in records if not failed(r) and unparsed(r)), "errors": len(errs),
           "errors_by_kind": kinds,
           "failed": [{"id": r.get("id"), "kind": r.get("error_kind"), "error": r.get("error")}
                      for r in errs[:FAILED_LISTED]],
           "guessed": len(guessed),
           "retries": sum(int(r.get("retries") or 0) for r in records),
           "retried_questions": sum(1 for r in records if r.get("retries"))}
    if guessed:
        sure = [r for r in records if not r.get("guessed") and r.get("task", "choice") in ("choice", "grounded_choice")]
        acc = _accuracy(sure, policy, seed)
        out["without_guesses"] = {"accuracy": acc.accuracy, "n": acc.n, "se": acc.se}
    return out


def accounting(records: list[dict], questions: int, missing_videos: int) -> dict:
    """What a summary adds once the run's question count is known: ``answered + errors + missing_videos +
    not_run == questions`` (``errors``, ``unparsed`` and ``guessed`` are `summarize`'s)."""
    errors = sum(1 for r in records if failed(r))
    return {"questions": questions, "answered": len(records) - errors, "missing_videos": missing_videos,
            "not_run": max(questions - len(records) - missing_videos, 0)}


def crr(long_acc: float, clue_acc: float) -> float | None:
    """CG-Bench's clue recovery rate min(long_acc, clue_acc) / clue_acc (None when clue_acc is 0).

    clue_acc comes from a second run over the clue clips (``cg_clue_videos/<qid>.mp4``), so it is not in
    one run's summary."""
    return min(long_acc, clue_acc) / clue_acc if clue_acc > 0 else None


# ---------------------------------------------------------------- letters
def _scores(records: list[dict]) -> list[Score]:
    return [Score(r["id"], r.get("video_id", ""), r.get("parsed"), bool(r.get("correct"))) for r in records]


def _accuracy(records: list[dict], policy: str, seed: int) -> Accuracy:
    samples = _option_counts(records) if policy == "random" else None
    return accuracy(_scores(records), samples, policy=policy, seed=seed)


def _row(acc: Accuracy) -> dict:
    return {"accuracy": acc.accuracy, "n": acc.n, "se": acc.se, "unparsed": acc.unparsed}


def _groups(records: list[dict], key: str, bench: str) -> dict[str, list[dict]]:
    """Records per label of ``categories[key]``; a list value counts for each of its labels."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        value = (r.get("categories") or {}).get(key)
        for label in value if isinstance(value, (list, tuple)) else [value]:
            if bench == "lvbench":
                label = LVBENCH_COLUMNS.get(str(label).lower(), label)
            groups.setdefault(str(label), []).append(r)
    return dict(sorted(groups.items(), key=lambda kv: _natural(kv[0])))


def _option_counts(records: list[dict]) -> dict:
    """Stand-in samples for the random policy: what it needs is each question's options and answer."""
    from longlens.bench.sample import Sample

    return {r["id"]: Sample("", r["id"], "", "", ("",) * int(r.get("n_options") or 4), r.get("truth"))
            for r in records}


# ---------------------------------------------------------------- spans
def _span(r: dict):
    sp = r.get("span")
    return (float(sp[0]), float(sp[1])) if sp else None


def _truth(r: dict) -> list[tuple[float, float]]:
    return [(float(s), float(e)) for s, e in r.get("truth_spans") or ()]


def _mean(records: list[dict], value) -> dict:
    return mean_metric([(r.get("video_id", ""), float(value(r))) for r in records])


def _grounding_summary(records: list[dict], bench: str, policy: str) -> dict:
    """Charades-STA: mIoU (headline) and R@t = share of queries with IoU >= t; a missing span is IoU 0."""
    ious = {r["id"]: grounding.max_over(_span(r), _truth(r), grounding.iou) for r in records}
    metrics = {"mIoU": _mean(records, lambda r: ious[r["id"]])}
    for t in _spec(bench).thresholds or (0.3, 0.5, 0.7):
        metrics[f"R@{t}"] = _mean(records, lambda r, t=t: ious[r["id"]] >= t)
    head = metrics["mIoU"]
    return {"bench": bench, "policy": policy, "questions": len(records),
            "headline": {"name": "mIoU", "value": head["value"], "se": head["se"], "n": head["n"]},
            "metrics": metrics, "tables": {}}


def _nextgqa_values(r: dict) -> dict[str, float]:
    span, truth = _span(r), _truth(r)
    u, p = grounding.max_over(span, truth, grounding.iou), grounding.max_over(span, truth, grounding.iop)
    out = {"Acc@GQA": float(bool(r.get("correct")) and p >= 0.5), "mIoP": p}
    out.update({f"IoP@{t}": float(p >= t) for t in BENCHMARKS["nextgqa"].thresholds})
    out["mIoU"] = u
    out.update({f"IoU@{t}": float(u >= t) for t in BENCHMARKS["nextgqa"].thresholds})
    return out


def _cgbench_values(r: dict) -> dict[str, float]:
    spans = [tuple(sp) for sp in r.get("spans") or ()] or ([_span(r)] if _span(r) else [])
    u = grounding.union_iou(spans, _truth(r)) if spans else 0.0
    right = bool(r.get("correct"))
    # thresholds are inclusive, as CG-Bench's run/stat_with_key.py (CG-Bench/CG-Bench@f826608) counts them
    return {"mIoU": u, "rec@IoU": sum(u >= t for t in CG_THRESHOLDS) / len(CG_THRESHOLDS),
            "acc@IoU": sum(right and u >= t for t in CG_THRESHOLDS) / len(CG_THRESHOLDS)}


def _add_grounded(summary: dict, records: list[dict], values, headline: str, bench: str) -> None:
    """NExT-GQA and CG-Bench: span measures over every question (mean of per-question values), in the metrics
    and as extra columns of each table row; the letter accuracy is renamed ``Acc@QA`` / ``long_acc``."""
    per = {r["id"]: values(r) for r in records}
    names = list(next(iter(per.values()), {}))
    letter_name = "Acc@QA" if bench == "nextgqa" else "long_acc"
    metrics = {letter_name: summary["metrics"].pop("accuracy")}
    metrics.update({name: _mean(records, lambda r, k=name: per[r["id"]][k]) for name in names})
    summary["metrics"] = metrics
    summary["unparsed_spans"] = sum(1 for r in records if _span(r) is None)
    head = metrics[headline]
    summary["headline"] = {"name": headline, "value": head["value"], "se": head["se"], "n": head["n"]}
    for key, rows in summary["tables"].items():
        for label, group in _groups(records, key, bench).items():
            rows[label].update({name: _mean(group, lambda r, k=name: per[r["id"]][k])["value"]
                                for name in names if not name.startswith(("IoP@", "IoU@"))})


def _natural(label: str) -> list:
    """Sort key that puts "5 min" before "10 min" and "0-10" before "10-20"."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(label)) if t]
