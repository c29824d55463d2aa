"""MLVU dev multiple choice: the folder of ``{k}_{task}.json`` files (answers are option texts); videos under
``videos/{k}_{task}/``.

Official scorer: JUNJIE99/MLVU@fd060c1 ``evaluation/multiple_choice_evaluation/choice_bench.py``. Its letters:
the *last* candidate equal to the answer (16 dev records repeat a candidate; ``MLVU.qa_template``) and ``@``
(``chr(ord('A') - 1)``) when none is (2_needle.json records 34 and 338), kept and never right. Its verdict
(``check_ans``): `mlvu_official`. Its numbers: the accuracy per task over every question of the task, and
``Avg`` (M-Avg) the plain mean of those. The open-ended 8_sub_scene and 9_summary are not part of M-Avg.
"""

from __future__ import annotations

from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.loading import Loaded, folder, letter_of, odd_note, read_records, record, video_path
from longlens.bench.sample import Sample
from longlens.bench.stats import metric
from longlens.errors import LongLensError

TASKS = ("plotQA", "needle", "ego", "count", "order", "anomaly_reco", "topic_reasoning")


def mlvu_official(reply: str) -> str:
    """``check_ans``: with a ")" in the reply, the one character before the first ")" (nothing when the reply
    starts with it); else the whole reply, unstripped. It must equal the answer letter exactly ("B) x" and
    "(B) x" read B; " B", "B." and "The answer is B" do not)."""
    if ")" in reply:
        i = reply.index(")")
        return reply[i - 1 : i]
    return reply


def load(data: str | Path, videos: str | Path | None) -> Loaded:
    root = Path(data)
    if not root.is_dir():
        raise LongLensError(f"{root}: give the MLVU json folder (1_plotQA.json ... 7_topic_reasoning.json)")
    missing: list[str] = []
    out = []
    odd: list[str] = []
    for k, task in enumerate(TASKS, 1):
        f = root / f"{k}_{task}.json"
        if not f.is_file():
            raise LongLensError(f"{f}: missing MLVU task file")
        for i, r in enumerate(read_records(f)):
            with record(f"{f}: record {i}"):
                options = tuple(r["candidates"])
                letter = letter_of(r["answer"], options, f"{f.name}#{i}", odd)
                path = video_path(folder(videos, f"{k}_{task}"), r["video"], missing)
                out.append(Sample("mlvu", f"{task}-{i}", path, r["question"], options, letter, video_id=r["video"],
                                  duration_s=float(r["duration"]) if r.get("duration") else None,
                                  categories={"task": task}, raw=r, source={"file": f.name, "index": i}))
    return Loaded(out, sorted(set(missing)), odd_note("MLVU", odd, "whose answer is none of their candidates"))


def _official(sample: Sample, reply: str | None, spans=None) -> dict:
    got = mlvu_official(reply or "")  # no prediction: an empty reply, as a failed model call would leave
    return {"parsed": got, "correct": got == sample.answer}


def official_metrics(records: list[dict]) -> dict:
    """``M-Avg`` (choice_bench.py's ``Avg``) then the accuracy of each task, in the official task order."""
    per = {}
    for task in TASKS:
        group = [r for r in records if (r.get("categories") or {}).get("task") == task]
        if group:
            per[task] = metric(sum(bool(r.get("correct")) for r in group) / len(group), len(group))
    avg = sum(m["value"] for m in per.values()) / len(per) if per else 0.0
    return {"M-Avg": metric(avg, len(records)), **per}


BENCHMARK = Benchmark(
    name="mlvu", title="MLVU (dev, multiple choice)", load=load, official=_official,
    official_metrics=official_metrics, rules={"mlvu": lambda reply, s: mlvu_official(reply) or None},
    breakdowns=("task",), macro="M-Avg",
    official_source="JUNJIE99/MLVU@fd060c1 evaluation/multiple_choice_evaluation/choice_bench.py",
    data_help="the folder of 1_plotQA.json ... 7_topic_reasoning.json")
