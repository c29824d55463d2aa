"""More native formats -> `Sample`s: LongVideoBench, MVBench, CG-Bench, NExT-GQA, Charades-STA, EgoSchema.

Registered in `adapters.LOADERS`. As there, a missing video is listed in `Loaded.missing`, never fatal,
and video paths built from annotation fields must stay inside the videos folder.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from longlens.bench.adapters import _LETTERED, Loaded, _records, _video
from longlens.bench.sample import LETTERS, Sample
from longlens.errors import LongLensError


def _json(path: Path, what: str):
    if not path.is_file():
        raise LongLensError(f"{path}: missing {what}; put it beside the annotation file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LongLensError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from exc


def _letter_of(text, options, where: str) -> str:
    if text not in options:
        raise LongLensError(f"{where}: the answer {text!r} is not one of its options; fix the annotation file")
    return LETTERS[list(options).index(text)]


# ---------------------------------------------------------------- LongVideoBench
def load_longvideobench(data: str | Path, videos: str | Path) -> Loaded:
    """LongVideoBench ``lvb_val.json`` (``candidates`` lists) or its parquet/JSONL rows (``option0``..``option4``,
    trailing "N/A" pads dropped); `videos` is the folder of ``<video_path>`` files."""
    missing: list[str] = []
    out = []
    for i, r in enumerate(_records(Path(data))):
        opts = list(r["candidates"]) if "candidates" in r else [r.get(f"option{k}") for k in range(5)]
        while opts and (opts[-1] is None or opts[-1] == "N/A"):
            opts.pop()
        k = int(r["correct_choice"])
        if not 0 <= k < len(opts):
            raise LongLensError(f"{data}: record {i}: correct_choice {k} is not one of its {len(opts)} options")
        vid = str(r.get("video_id") or Path(r["video_path"]).stem)
        out.append(Sample("longvideobench", str(r["id"]), _video(Path(videos), r["video_path"], missing),
                          r["question"], tuple(opts), LETTERS[k], video_id=vid,
                          duration_s=float(r["duration"]) if r.get("duration") is not None else None,
                          categories={"duration_group": str(r.get("duration_group")),
                                      "question_category": r.get("question_category")}, raw=r))
    return Loaded(out, sorted(set(missing)))


# ---------------------------------------------------------------- MVBench
_STAR = ("star/Charades_v1_480", "star/Charades_segment")
_CLEVRER = ("clevrer/video_validation",) * 2
_PERCEPTION = ("perception/videos",) * 2
MVBENCH_FOLDERS: dict[str, tuple[str, str]] = {
    "action_sequence": _STAR, "action_prediction": _STAR, "object_interaction": _STAR,
    "action_antonym": ("ssv2_video", "ssv2_video_mp4"),
    "fine_grained_action": ("Moments_in_Time_Raw/videos",) * 2,
    "unexpected_action": ("FunQA_test/test",) * 2,
    "object_existence": _CLEVRER, "moving_direction": _CLEVRER, "moving_count": _CLEVRER,
    "moving_attribute": _CLEVRER, "counterfactual_inference": _CLEVRER,
    "object_shuffle": _PERCEPTION, "action_count": _PERCEPTION, "state_change": _PERCEPTION,
    "character_order": _PERCEPTION,
    "action_localization": ("sta/sta_video", "sta/sta_video_segment"),
    "scene_transition": ("scene_qa/video",) * 2,
    "fine_grained_pose": ("nturgbd", "nturgbd_convert"),
    "egocentric_navigation": ("vlnqa",) * 2,
    "episodic_reasoning": ("tvqa/frames_fps3_hq", "tvqa/video_fps3_hq_segment"),
}
"""Task (json file stem) -> (VLMEvalKit folder, lmms-eval folder) under the MVBench video root."""


def _mvbench_video(root: Path, task: str, name: str, missing: list[str]) -> str:
    """The first existing file among the lmms-eval folder (pre-cut), the VLMEvalKit folder and the root itself,
    with the record's extension or another video extension (ssv2 .webm -> .mp4)."""
    vlm, lmms = MVBENCH_FOLDERS.get(task, ("", ""))
    stem = str(Path(name).with_suffix(""))
    for folder in dict.fromkeys((lmms, vlm, "")):
        base = root / folder if folder else root
        for candidate in (name, stem):
            scratch: list[str] = []
            path = _video(base, candidate, scratch)
            if not scratch:
                return path
    return _video(root / vlm if vlm else root, name, missing)


def load_mvbench(data: str | Path, videos: str | Path) -> Loaded:
    """MVBench: `data` is the folder of ``<task>.json`` files (every one is loaded, task = file stem; answers are
    option texts). `videos` is the MVBench video root; each task's folder is looked up as in `MVBENCH_FOLDERS`.

    ``start``/``end`` (bounded tasks) stay in ``raw`` only: the question is answered over the whole file, so
    give the pre-cut lmms-eval folders (``star/Charades_segment``, ...), which are tried first."""
    folder = Path(data)
    if not folder.is_dir() or not sorted(folder.glob("*.json")):
        raise LongLensError(f"{folder}: give the MVBench json folder (action_sequence.json ... 20 task files)")
    root = Path(videos)
    missing: list[str] = []
    out = []
    for f in sorted(folder.glob("*.json")):
        task = f.stem
        for i, r in enumerate(_records(f)):
            options = tuple(r["candidates"])
            letter = _letter_of(r["answer"], options, f"{f}: record {i}")
            path = _mvbench_video(root, task, r["video"], missing)
            out.append(Sample("mvbench", f"{task}-{i}", path, r["question"], options, letter,
                              video_id=f"{MVBENCH_FOLDERS.get(task, (task,))[0]}/{r['video']}",
                              categories={"task": task}, raw=r))
    return Loaded(out, sorted(set(missing)))


# ---------------------------------------------------------------- CG-Bench
def cgbench_duration_bin(seconds: float) -> str:
    """CG-Bench's 10-minute duration bins: "0-10" ... "50-60", "60+" (minutes)."""
    minutes = seconds / 60
    if minutes >= 60:
        return "60+"
    lo = int(minutes // 10) * 10
    return f"{lo}-{lo + 10}"


def load_cgbench(data: str | Path, videos: str | Path) -> Loaded:
    """CG-Bench ``cgbench.json`` / ``cgbench_mini.json``: choices, a letter answer and clue intervals (seconds)."""
    missing: list[str] = []
    out = []
    for i, r in enumerate(_records(Path(data))):
        options = tuple(r["choices"])
        answer = str(r["right_answer"]).strip()
        if answer not in LETTERS[: len(options)]:
            raise LongLensError(f"{data}: record {i}: right_answer {answer!r} is not a letter of its choices")
        spans = tuple((float(s), float(e)) for s, e in r.get("clue_intervals") or ())
        duration = float(r["duration"]) if r.get("duration") is not None else None
        out.append(Sample("cgbench", str(r["qid"]), _video(Path(videos), str(r["video_uid"]), missing),
                          r["question"], options, answer, video_id=str(r["video_uid"]), duration_s=duration,
                          spans=spans, task="grounded_choice",
                          categories={"duration": cgbench_duration_bin(duration) if duration is not None else None,
                                      "domain": r.get("domain"), "sub_category": r.get("sub_category")}, raw=r))
    return Loaded(out, sorted(set(missing)))


# ---------------------------------------------------------------- NExT-GQA
def load_nextgqa(data: str | Path, videos: str | Path) -> Loaded:
    """NExT-GQA: `data` is ``test.csv`` / ``val.csv``; ``gsub_<stem>.json`` (spans, durations) must sit beside it,
    and ``map_vid_vidorID.json`` there, if present, maps video ids to relative paths (else ``<video_id>.mp4``)."""
    path = Path(data)
    if not path.is_file():
        raise LongLensError(f"{path}: no such annotation file; give NExT-GQA's test.csv or val.csv with --data")
    gsub_file = path.with_name(f"gsub_{path.stem}.json")
    gsub = _json(gsub_file, "NExT-GQA grounding file")
    map_file = path.with_name("map_vid_vidorID.json")
    relpath = _json(map_file, "video map") if map_file.is_file() else {}
    missing: list[str] = []
    out = []
    with path.open(newline="", encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f)):
            vid, qid = r["video_id"], r["qid"]
            where = f"{path}: row {i + 2}"
            options = tuple(r[f"a{k}"] for k in range(5) if r.get(f"a{k}") is not None)
            letter = _letter_of(r["answer"], options, where)
            g = gsub.get(vid)
            if g is None or qid not in g.get("location", {}):
                raise LongLensError(f"{where}: video {vid} question {qid} has no span in {gsub_file}; "
                                    "use the gsub file of the same split")
            spans = tuple((float(s), float(e)) for s, e in g["location"][qid])
            out.append(Sample("nextgqa", f"{vid}_{qid}", _video(Path(videos), relpath.get(vid, vid), missing),
                              r["question"], options, letter, video_id=vid, duration_s=float(g["duration"]),
                              spans=spans, task="grounded_choice", categories={"type": r.get("type")}, raw=dict(r)))
    return Loaded(out, sorted(set(missing)))


# ---------------------------------------------------------------- Charades-STA
_TALL = re.compile(r"^(\S+)\s+([\d.]+)\s+([\d.]+)\s*##(.*)$")


def _charades_rows(path: Path) -> list[tuple[str, float, float, str, dict]]:
    if path.suffix == ".txt":
        if not path.is_file():
            raise LongLensError(f"{path}: no such annotation file; give charades_sta_test.txt with --data")
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            m = _TALL.match(line.strip())
            if not m:
                raise LongLensError(f"{path}: line {n} is not '<vid> <start> <end>##<sentence>'")
            rows.append((m[1], float(m[2]), float(m[3]), m[4].strip(), {"line": line}))
        return rows
    rows = []
    for i, r in enumerate(_records(path)):
        ts = r["timestamp"]
        if isinstance(ts, str):
            ts = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", ts)]
        if len(ts) != 2:
            raise LongLensError(f"{path}: record {i}: timestamp {r['timestamp']!r} is not [start, end]")
        rows.append((str(r["video"]), float(ts[0]), float(ts[1]), str(r["caption"]).strip(), r))
    return rows


def load_charades(data: str | Path, videos: str | Path) -> Loaded:
    """Charades-STA: ``charades_sta_test.txt`` (``<vid> <start> <end>##<sentence>``) or lmms-eval's JSON/JSONL
    (``video``, ``caption``, ``timestamp``). Grounding: no options, the truth is the one span."""
    missing: list[str] = []
    out = []
    for i, (video, s, e, sentence, raw) in enumerate(_charades_rows(Path(data))):
        vid = Path(video).stem
        out.append(Sample("charades", f"{vid}_{i}", _video(Path(videos), video, missing), sentence, (), None,
                          video_id=vid, spans=((s, e),), task="grounding", raw=raw))
    return Loaded(out, sorted(set(missing)))


# ---------------------------------------------------------------- EgoSchema
def load_egoschema(data: str | Path, videos: str | Path) -> Loaded:
    """EgoSchema subset: `data` is ``questions.json``; only the questions answered in ``subset_answers.json``
    (beside it) are loaded, and `Loaded.notes` says how many of all."""
    path = Path(data)
    answers = _json(path.with_name("subset_answers.json"), "EgoSchema subset_answers.json")
    missing: list[str] = []
    out = []
    records = _records(path)
    for r in records:
        uid = r["q_uid"]
        if uid not in answers:
            continue
        options = tuple(_LETTERED.sub("", str(r[f"option {k}"]), count=1) for k in range(5) if f"option {k}" in r)
        k = int(answers[uid])
        if not 0 <= k < len(options):
            raise LongLensError(f"{path.with_name('subset_answers.json')}: answer {k} of {uid} is not an option")
        out.append(Sample("egoschema", uid, _video(Path(videos), uid, missing), r["question"], options, LETTERS[k],
                          video_id=uid, raw=r))
    note = f"egoschema: {len(out)} of {len(records)} questions have a public answer (subset_answers.json); loaded those"
    return Loaded(out, sorted(set(missing)), [note])
