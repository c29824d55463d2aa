"""Video-MME (without subtitles): the parquet's rows (or the same rows as JSON/JSONL).

Official scorer: ``eval_your_results.py`` of the Video-MME repository (BradyFU/Video-MME): the letter of
`videomme_official`; a reply it reads as "" is not counted (``drop``). 0 disagreements with it in 1800
replies of many styles.
"""

from __future__ import annotations

import re
from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.loading import Loaded, folder, read_records, record, video_path
from longlens.bench.sample import LETTERS, Sample

LETTERED = re.compile(r"^\s*\(?([A-J])[.)]\s*")
"""An option written with its letter ("A. text", "(B) text"): the letter is dropped, the text kept."""

PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is" "The correct option is",  # noqa: ISC001 - the official list's missing comma, on purpose
    "Best answer:" "Best option:",  # noqa: ISC001
)


def videomme_official(reply: str, letters: str = "ABCD") -> str:
    """The Video-MME scorer's rule (also LVBench's in VLMEvalKit), quirks kept: prefixes deleted anywhere in
    the reply (case-sensitive), two of them glued together by missing commas in the official list (so "Best
    answer:" is *not* removed), a long reply with no capital A-D gives "", else the first capital A-D
    anywhere ("Black." gives B)."""
    s = reply.strip()
    for prefix in PREFIXES:
        s = s.replace(prefix, "")
    pattern = f"[{letters}]"
    if len(s.split()) > 10 and not re.search(pattern, s):
        return ""
    m = re.search(pattern, s)
    return m.group(0) if m else ""


def load(data: str | Path, videos: str | Path | None, durations=("short", "medium", "long")) -> Loaded:
    missing: list[str] = []
    out = []
    path = Path(data)
    for i, r in enumerate(read_records(path)):
        with record(f"{path}: record {i}"):
            if r["duration"] not in durations:
                continue
            options = tuple(LETTERED.sub("", o, count=1) for o in r["options"])
            out.append(Sample("videomme", str(r["question_id"]), video_path(folder(videos), r["videoID"], missing),
                              r["question"], options, str(r["answer"]).strip(), video_id=r["videoID"],
                              categories={"duration": r["duration"], "domain": r.get("domain"),
                                          "sub_category": r.get("sub_category"), "task_type": r.get("task_type")},
                              raw=r, source={"file": path.name, "index": i}))
    return Loaded(out, sorted(set(missing)))


def _official(sample: Sample, reply: str | None, spans=None) -> dict:
    got = videomme_official(reply or "", LETTERS[: max(len(sample.options), 4)]) or None
    return {"parsed": got, "correct": got is not None and got == sample.answer}


BENCHMARK = Benchmark(
    name="videomme", title="Video-MME", load=load, official=_official, official_policy="drop",
    rules={"videomme": lambda reply, s: videomme_official(reply, LETTERS[: max(len(s.options), 4)]) or None},
    breakdowns=("duration", "domain", "task_type", "sub_category"),
    official_source="BradyFU/Video-MME eval_your_results.py (extract_characters_regex)",
    data_help="the parquet (or its rows as JSON/JSONL)")
