"""LVBench ``video_info.meta.jsonl``: one video per line, options inline in each question.

Official scorer (THUDM/LVBench@dd7d99d ``lvbench/metrics/compute_accuracy.py``, ``lvbench/utils/answer_util.py``
@1dd4612): the saved answer is compared with the letter *exactly*; the repository's ``polish_answer`` is how a
reply becomes that answer (`polish_answer` here). Only questions with an answer count (compute_accuracy skips a
uid it has no answer for), a reply polished to anything but the letter is wrong; per category the same, a
question counting for each of its ``question_type`` labels.
"""

from __future__ import annotations

import re
from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.benchmarks.videomme import videomme_official
from longlens.bench.loading import Loaded, folder, read_records, record, video_path
from longlens.bench.sample import Sample
from longlens.bench.stats import metric

INLINE = re.compile(r"\n\(([A-J])\)\s*(.*)")
COLUMNS = {"entity recognition": "ER", "event understanding": "EU", "key information retrieval": "KIR",
           "temporal grounding": "TG", "reasoning": "Rea", "summarization": "Sum"}
"""Category -> the column name of LVBench's leaderboard (scripts/test_acc.py's name map)."""


def polish_answer(reply: str) -> str:
    """LVBench's ``polish_answer`` (answer_util.py): strip; the part before the first ")"; the part after the
    first "(" if any; the first space-separated word; its first character ("" when there is none)."""
    answer = reply.strip().split(")")[0].strip()
    if "(" in answer:
        answer = answer.split("(")[1].strip()
    answer = answer.split(" ")[0]
    return answer[0] if answer else answer


def load(data: str | Path, videos: str | Path | None) -> Loaded:
    missing: list[str] = []
    out = []
    path = Path(data)
    for i, v in enumerate(read_records(path)):
        with record(f"{path}: line {i + 1}"):
            vpath = video_path(folder(videos), v["key"], missing)
            for qa in v["qa"]:
                q = qa["question"]
                options = tuple(m.group(2).strip() for m in INLINE.finditer(q))
                stem = INLINE.split(q)[0].strip() if options else q
                spans = ()
                ref = qa.get("time_reference") or ""
                m = re.match(r"(\d+):(\d+)(?::(\d+))?-(\d+):(\d+)(?::(\d+))?", ref)
                if m:
                    a = [int(x) for x in m.groups() if x is not None]
                    half = len(a) // 2
                    spans = ((_clock(a[:half]), _clock(a[half:])),)
                out.append(Sample("lvbench", str(qa["uid"]), vpath, stem, options, str(qa["answer"]).strip(),
                                  video_id=v["key"], spans=spans, raw=qa, source={"file": path.name, "index": i},
                                  categories={"capability": list(qa.get("question_type") or []),
                                              "type": v.get("type")}))
    return Loaded(out, sorted(set(missing)))


def _clock(parts: list[int]) -> float:
    t = 0.0
    for p in parts:
        t = t * 60 + p
    return t


def _official(sample: Sample, reply: str | None, spans=None) -> dict:
    if reply is None:
        return {"parsed": None, "correct": False}
    got = polish_answer(reply)
    return {"parsed": got, "correct": got == sample.answer}


def official_metrics(records: list[dict]) -> dict:
    """compute_accuracy: over the questions with a prediction; ``acc`` then each category (its raw name)."""
    answered = [r for r in records if not r.get("missing")]
    n = len(answered)
    out = {"acc": metric(sum(bool(r.get("correct")) for r in answered) / n if n else 0.0, n)}
    per: dict[str, list[bool]] = {}
    for r in answered:
        for label in (r.get("categories") or {}).get("capability") or ():
            per.setdefault(label, []).append(bool(r.get("correct")))
    for label, got in per.items():
        out[label] = metric(sum(got) / len(got), len(got))
    return out


BENCHMARK = Benchmark(
    name="lvbench", title="LVBench", load=load, official=_official, official_metrics=official_metrics,
    rules={"lvbench": lambda reply, s: polish_answer(reply),
           # VLMEvalKit scores LVBench with the Video-MME family's letter (A-E)
           "lvbench-vlmevalkit": lambda reply, s: videomme_official(reply, "ABCDE") or None},
    breakdowns=("capability",),
    official_source="THUDM/LVBench@dd7d99d lvbench/metrics/compute_accuracy.py + @1dd4612 utils/answer_util.py",
    data_help="video_info.meta.jsonl")
