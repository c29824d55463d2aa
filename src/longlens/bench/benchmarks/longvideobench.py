"""LongVideoBench ``lvb_val.json`` (``candidates`` lists) or its parquet/JSONL rows (``option0``..``option4``,
trailing "N/A" pads dropped); `videos` is the folder of ``<video_path>`` files.

Official rule: lmms-eval's ``parse_multi_choice_response`` (`longvideobench_official`); a reply with no
letter gets a random option there (the ``random`` policy).
"""

from __future__ import annotations

import re
from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.loading import UNANSWERABLE, Loaded, folder, odd_note, read_records, record, video_path
from longlens.bench.sample import LETTERS, Sample

PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer", "The best option is",
            "The correct option is", "Best answer:", "Best option:")


def longvideobench_official(reply: str) -> str | None:
    """The Video-MME prefixes deleted, then the first capital A-E anywhere; None without one."""
    s = reply.strip()
    for prefix in PREFIXES:
        s = s.replace(prefix, "")
    m = re.search("[ABCDE]", s)
    return m.group(0) if m else None


def load(data: str | Path, videos: str | Path | None) -> Loaded:
    missing: list[str] = []
    out = []
    odd: list[str] = []
    path = Path(data)
    for i, r in enumerate(read_records(path)):
        with record(f"{path}: record {i}"):
            opts = list(r["candidates"]) if "candidates" in r else [r.get(f"option{k}") for k in range(5)]
            while opts and (opts[-1] is None or opts[-1] == "N/A"):
                opts.pop()
            k = int(r["correct_choice"])
            if 0 <= k < len(opts):
                letter = LETTERS[k]
            else:
                letter = UNANSWERABLE
                odd.append(f"#{i}")
            vid = str(r.get("video_id") or Path(r["video_path"]).stem)
            out.append(Sample("longvideobench", str(r["id"]), video_path(folder(videos), r["video_path"], missing),
                              r["question"], tuple(opts), letter, video_id=vid,
                              duration_s=float(r["duration"]) if r.get("duration") is not None else None,
                              categories={"duration_group": str(r.get("duration_group")),
                                          "question_category": r.get("question_category")},
                              raw=r, source={"file": path.name, "index": i}))
    return Loaded(out, sorted(set(missing)),
                  odd_note("LongVideoBench", odd, "whose correct_choice is none of their options"))


def _official(sample: Sample, reply: str | None, spans=None) -> dict:
    got = longvideobench_official(reply or "")
    return {"parsed": got, "correct": got is not None and got == sample.answer}


BENCHMARK = Benchmark(
    name="longvideobench", title="LongVideoBench", load=load, official=_official, official_policy="random",
    rules={"longvideobench": lambda reply, s: longvideobench_official(reply)},
    breakdowns=("duration_group", "question_category"),
    official_source="EvolvingLMMs-Lab/lmms-eval tasks/longvideobench (parse_multi_choice_response)",
    data_help="lvb_val.json (or its parquet/JSONL rows)")
