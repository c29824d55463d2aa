"""Predictions made elsewhere (another harness, a model we do not run), scored with our metrics.

A predictions file is JSON lines ``{"id", "reply", "span": [s, e]?, "spans": [[s, e], ...]?}``; ``id`` is the
benchmark's question id as `template` lists it. A span given as data wins over a span read from the reply.
A question without a line is a missing prediction: reported, and counted as the official script counts it
(with ``--extractor official``) or as an unparsed reply (otherwise).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from longlens.bench.sample import Sample
from longlens.bench.scorers import score_reply
from longlens.errors import LongLensError


@dataclass(frozen=True)
class Prediction:
    id: str
    reply: str
    spans: tuple[tuple[float, float], ...] | None = None
    """Spans given as data (None: none given; an empty list given is kept: CG-Bench scores it 0)."""


@dataclass
class Predictions:
    by_id: dict[str, Prediction]
    duplicates: list[str] = field(default_factory=list)
    """Ids given more than once (the last line wins, as a dict keyed by id in the official scripts)."""


def _span(value, where: str) -> tuple[float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)
    if not ok:
        raise LongLensError(f"{where}: a span is [start, end] in seconds (two numbers), got {value!r}")
    return float(value[0]), float(value[1])


def read_predictions(path: str | Path) -> Predictions:
    path = Path(path)
    if not path.is_file():
        raise LongLensError(f"{path}: no such predictions file; give JSON lines with 'id' and 'reply'")
    out: dict[str, Prediction] = {}
    duplicates = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}: line {n}"
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise LongLensError(f"{where}: not a JSON object ({exc}); one prediction per line") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), (str, int)) or isinstance(obj.get("id"), bool):
            raise LongLensError(f"{where}: each line needs an 'id' (the question id, as `--template` lists it)")
        reply = obj.get("reply", "")
        if reply is None:
            reply = ""
        if not isinstance(reply, str):
            raise LongLensError(f"{where}: 'reply' must be text, got {type(reply).__name__}")
        spans = None
        if obj.get("span") is not None:
            spans = (_span(obj["span"], where),)
        elif obj.get("spans") is not None:
            if not isinstance(obj["spans"], list):
                raise LongLensError(f"{where}: 'spans' is a list of [start, end]")
            spans = tuple(_span(s, where) for s in obj["spans"])
        key = str(obj["id"])
        if key in out:
            duplicates.append(key)
        out[key] = Prediction(key, reply, spans)
    return Predictions(out, duplicates)


def score_predictions(samples: list[Sample], predictions: Predictions, extractor: str) -> list[dict]:
    """One result record per question (in the benchmark's order), as `runner.run_eval` writes them."""
    records = []
    for s in samples:
        p = predictions.by_id.get(s.id)
        spans = list(p.spans) if p is not None and p.spans is not None else None
        fields = score_reply(s, p.reply if p else None, spans, extractor)
        records.append({"id": s.id, "video_id": s.video_id, "benchmark": s.benchmark, "task": s.task,
                        "categories": s.categories, "n_options": len(s.options), "truth": s.answer,
                        "truth_spans": [list(sp) for sp in s.spans], **fields, "error": None})
    return records


def template(samples: list[Sample]) -> list[dict]:
    """One line per question: its id, question, options and where it is in the official files."""
    return [{"id": s.id, "question": s.question, "options": list(s.options), "source": s.source} for s in samples]
