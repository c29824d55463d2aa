"""Benchmark annotation files in their native formats -> `Sample`s.

Paths come from the user (annotation file, videos folder); nothing is hard-coded or downloaded. A
video that is not there does not stop loading: `Loaded.missing` lists each expected path.
Video paths built from annotation fields must stay inside the videos folder.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from longlens.bench.sample import Sample
from longlens.errors import LongLensError

VIDEO_EXTS = (".mp4", ".MP4", ".mkv", ".webm", ".avi", ".mov")


@dataclass
class Loaded:
    samples: list[Sample]
    missing: list[str] = field(default_factory=list)
    """Expected video paths that do not exist (their samples are still in `samples`)."""
    notes: list[str] = field(default_factory=list)
    """Lines worth telling the user (EgoSchema: how many questions have a public answer)."""


def _records(path: Path) -> list[dict]:
    if not path.is_file():
        raise LongLensError(f"{path}: no such annotation file; give the benchmark's file with --data")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise LongLensError(f"{path}: reading parquet needs pyarrow (pip install pyarrow), or give the "
                                "records as JSON/JSONL") from exc
        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise LongLensError(f"{path}: neither JSON nor JSON lines ({exc.msg}, line {exc.lineno})") from exc


def _video(root: Path, stem: str, missing: list[str]) -> str:
    """The file for `stem` under `root` (first existing extension), kept inside `root`. The name is judged,
    not where a symlink leads: a videos folder of links into a shared store is fine, ``../x`` is not."""
    root = root.resolve()
    base = Path(stem)
    candidates = [base] if base.suffix else [base.with_suffix(e) for e in VIDEO_EXTS]
    for c in candidates:
        p = Path(os.path.normpath(root / c))
        if root not in p.parents:
            raise LongLensError(f"video name {stem!r} points outside the videos folder {root}")
        if p.is_file():
            return str(p)
    expected = str(Path(os.path.normpath(root / candidates[0])))
    missing.append(expected)
    return expected


_LETTERED = re.compile(r"^\s*\(?([A-J])[.)]\s*")


def load_videomme(data: str | Path, videos: str | Path, durations=("short", "medium", "long")) -> Loaded:
    """Video-MME (without subtitles): the parquet's rows (or the same rows as JSON/JSONL)."""
    missing: list[str] = []
    out = []
    for r in _records(Path(data)):
        if r["duration"] not in durations:
            continue
        options = tuple(_LETTERED.sub("", o, count=1) for o in r["options"])
        out.append(Sample("videomme", str(r["question_id"]), _video(Path(videos), r["videoID"], missing),
                          r["question"], options, r["answer"].strip(), video_id=r["videoID"],
                          categories={"duration": r["duration"], "domain": r.get("domain"),
                                      "sub_category": r.get("sub_category"), "task_type": r.get("task_type")},
                          raw=r))
    return Loaded(out, sorted(set(missing)))


_INLINE = re.compile(r"\n\(([A-J])\)\s*(.*)")


def load_lvbench(data: str | Path, videos: str | Path) -> Loaded:
    """LVBench ``video_info.meta.jsonl``: one video per line, options inline in each question."""
    missing: list[str] = []
    out = []
    for v in _records(Path(data)):
        path = _video(Path(videos), v["key"], missing)
        for qa in v["qa"]:
            q = qa["question"]
            options = tuple(m.group(2).strip() for m in _INLINE.finditer(q))
            stem = _INLINE.split(q)[0].strip() if options else q
            spans = ()
            ref = qa.get("time_reference") or ""
            m = re.match(r"(\d+):(\d+)(?::(\d+))?-(\d+):(\d+)(?::(\d+))?", ref)
            if m:
                a = [int(x) for x in m.groups() if x is not None]
                half = len(a) // 2
                spans = ((_clock(a[:half]), _clock(a[half:])),)
            out.append(Sample("lvbench", str(qa["uid"]), path, stem, options, qa["answer"].strip(), video_id=v["key"],
                              spans=spans, categories={"capability": list(qa.get("question_type") or []),
                                                       "type": v.get("type")}, raw=qa))
    return Loaded(out, sorted(set(missing)))


def _clock(parts: list[int]) -> float:
    t = 0.0
    for p in parts:
        t = t * 60 + p
    return t


MLVU_TASKS = ("plotQA", "needle", "ego", "count", "order", "anomaly_reco", "topic_reasoning")


def load_mlvu(data: str | Path, videos: str | Path) -> Loaded:
    """MLVU dev multiple choice: the folder of ``{k}_{task}.json`` files (answers are option texts);
    videos under ``videos/{k}_{task}/``.

    Letters as the official choice_bench.py (JUNJIE99/MLVU@fd060c1, ``MLVU.qa_template``) derives them: the
    *last* candidate equal to the answer (16 dev records repeat a candidate), and ``@`` (``chr(ord('A') - 1)``)
    when no candidate equals it (2_needle.json records 34 and 338): such records are kept and can never be
    right, as there, and counted in a note."""
    folder = Path(data)
    if not folder.is_dir():
        raise LongLensError(f"{folder}: give the MLVU json folder (1_plotQA.json ... 7_topic_reasoning.json)")
    missing: list[str] = []
    out = []
    unanswerable = []
    for k, task in enumerate(MLVU_TASKS, 1):
        f = folder / f"{k}_{task}.json"
        if not f.is_file():
            raise LongLensError(f"{f}: missing MLVU task file")
        for i, r in enumerate(_records(f)):
            options = tuple(r["candidates"])
            hits = [j for j, c in enumerate(options) if c == r["answer"]]
            letter = "ABCDEFGHIJ"[hits[-1]] if hits else "@"
            if not hits:
                unanswerable.append(f"{f.name}#{i}")
            path = _video(Path(videos) / f"{k}_{task}", r["video"], missing)
            out.append(Sample("mlvu", f"{task}-{i}", path, r["question"], options, letter, video_id=r["video"],
                              duration_s=float(r["duration"]) if r.get("duration") else None,
                              categories={"task": task}, raw=r))
    notes = [f"MLVU: {len(unanswerable)} record(s) whose answer is none of their candidates "
             f"({', '.join(unanswerable)}) are kept and scored wrong, as the official choice_bench.py does"
             ] if unanswerable else []
    return Loaded(out, sorted(set(missing)), notes)


def load_needles(data: str | Path, videos: str | Path | None = None) -> Loaded:
    """The synthetic needle suite: answer keys written by ``longlens make-video`` (one JSON file, or a
    folder of them); each video sits beside its key unless `videos` names another folder. Breakdowns:
    needle kind, video length ("10 min") and depth (where the needle sits: "40-60%" of the video)."""
    from longlens.synth import load_answer_key

    src = Path(data)
    keys = sorted(src.glob("*.json")) if src.is_dir() else [src]
    if not keys or not keys[0].is_file():
        raise LongLensError(f"{src}: no answer keys (.json from longlens make-video) there")
    missing: list[str] = []
    out = []
    for kf in keys:
        key = load_answer_key(kf)
        root = Path(videos) if videos else kf.parent
        path = _video(root, Path(key.video).name, missing)
        length = f"{round(key.duration_s / 60, 1):g} min"
        for n in key.needles:
            depth = min(int(5 * (n.start_s + n.end_s) / 2 / key.duration_s), 4) * 20
            out.append(Sample("needles", f"{Path(key.video).stem}-{n.id}", path, n.question, tuple(n.options),
                              n.answer, video_id=Path(key.video).stem, duration_s=key.duration_s,
                              spans=((n.start_s, n.end_s),), raw=n.to_dict(),
                              categories={"kind": n.kind, "length": length, "depth": f"{depth}-{depth + 20}%"}))
    return Loaded(out, sorted(set(missing)))


from longlens.bench.adapters_more import (  # noqa: E402 - they use the helpers above
    load_cgbench,
    load_charades,
    load_egoschema,
    load_longvideobench,
    load_mvbench,
    load_nextgqa,
)

LOADERS = {"videomme": load_videomme, "lvbench": load_lvbench, "mlvu": load_mlvu, "needles": load_needles,
           "longvideobench": load_longvideobench, "mvbench": load_mvbench, "cgbench": load_cgbench,
           "nextgqa": load_nextgqa, "charades": load_charades, "egoschema": load_egoschema}
"""Benchmark name -> loader ``(data, videos) -> Loaded``: the names `longlens eval` accepts."""
