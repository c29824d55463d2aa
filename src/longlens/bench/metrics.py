"""A run's numbers as its benchmark defines them, computed from result records alone.

`summarize(records, bench)` needs nothing but the records of ``results.jsonl`` (each carries its
categories, task and option count), so a report can be made from a run folder without the dataset.

Returned shape::

    {"bench": "videomme", "policy": "wrong", "questions": 120, "unparsed": 3, "errors": 0,
     "headline": {"name": "accuracy", "value": 0.61, "se": 0.03, "n": 120},
     "metrics": {"accuracy": {...}, ...},          # every number the benchmark reports
     "tables": {"duration": {"short": {"accuracy": .7, "n": 40, "se": .05, "unparsed": 1}, ...}, ...}}
"""

from __future__ import annotations

from longlens.bench.scorers import Accuracy, Score, accuracy

BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "videomme": ("duration", "domain", "task_type"),
    "lvbench": ("capability",),
    "mlvu": ("task",),
    "needles": ("kind",),
}


def _scores(records: list[dict]) -> list[Score]:
    return [Score(r["id"], r.get("video_id", ""), r.get("parsed"), bool(r.get("correct"))) for r in records]


def _row(acc: Accuracy) -> dict:
    return {"accuracy": acc.accuracy, "n": acc.n, "se": acc.se, "unparsed": acc.unparsed}


def summarize(records: list[dict], bench: str, *, policy: str = "wrong", seed: int = 0) -> dict:
    choice = [r for r in records if r.get("task", "choice") in ("choice", "grounded_choice")]
    acc = accuracy(_scores(choice), policy=policy, seed=seed) if policy != "random" else \
        accuracy(_scores(choice), _option_counts(choice), policy=policy, seed=seed)
    tables = {}
    for key in BREAKDOWNS.get(bench, ()):
        groups: dict[str, list[dict]] = {}
        for r in choice:
            value = (r.get("categories") or {}).get(key)
            for label in value if isinstance(value, (list, tuple)) else [value]:
                groups.setdefault(str(label), []).append(r)
        tables[key] = {label: _row(accuracy(_scores(g), policy="wrong" if policy == "random" else policy))
                       for label, g in sorted(groups.items())}
    return {"bench": bench, "policy": policy, "questions": len(records), "unparsed": acc.unparsed,
            "errors": sum(1 for r in records if r.get("error")),
            "headline": {"name": "accuracy", "value": acc.accuracy, "se": acc.se, "n": acc.n},
            "metrics": {"accuracy": _row(acc)}, "tables": tables}


def _option_counts(records: list[dict]) -> dict:
    """Stand-in samples for the random policy: what it needs is each question's options and answer."""
    from longlens.bench.sample import Sample

    return {r["id"]: Sample("", r["id"], "", "", ("",) * int(r.get("n_options") or 4), r.get("truth"))
            for r in records}
