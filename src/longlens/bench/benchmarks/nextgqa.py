"""NExT-GQA: `data` is ``test.csv`` / ``val.csv``; ``gsub_<stem>.json`` (spans, durations) must sit beside it, and
``map_vid_vidorID.json`` there, if present, maps video ids to relative paths (else ``<video_id>.mp4``).

Official scorer: doc-doc/NExT-GQA@63772e0 ``code/TempGQA/eval_next.py`` (``accuracy_metric``: Acc@QA over every
question, per type with TP counted as TN) and ``code/TempGQA/eval_ground.py`` (``get_tIoU``, ``eval_ground``:
over the questions *with a predicted span* only; IoU and IoP the best over the annotated locations, a
zero-length span IoU 0 and IoP 1 inside a location, a reversed span 0; Acc@GQA = right answer and IoP >= 0.5,
over the same questions). The official answers are option indices (``mc_dataset.py``: the *first* option equal
to the answer text), so the official reply rule is: a reply that is exactly one letter A-E or one index 0-4
(whitespace around it allowed) names that option, anything else is wrong.
"""

from __future__ import annotations

import csv
from pathlib import Path

from longlens.bench.benchmark import Benchmark
from longlens.bench.loading import (
    Loaded,
    folder,
    letter_of,
    odd_note,
    read_json,
    record,
    video_path,
)
from longlens.bench.sample import LETTERS, Sample
from longlens.bench.stats import metric
from longlens.errors import LongLensError

THRESHOLDS = (0.3, 0.5)
TYPES = {"CW": "Why", "CH": "How", "TN": "Bef&Aft", "TC": "When", "DC": "Cnt", "DL": "Loc", "DO": "Other"}
"""Question type -> eval_next.py's column name (``TP`` is counted as ``TN``); C, T, D: the families."""
FAMILIES = {"C": "Acc_C", "T": "Acc_T", "D": "Acc_D"}


def nextgqa_official(reply: str, letters: str = "ABCDE") -> str | None:
    """The option a reply names under the official index comparison: exactly one letter or index, else None."""
    s = reply.strip()
    if len(s) == 1 and s in letters:
        return s
    if len(s) == 1 and s in "0123456789" and int(s) < len(letters):
        return letters[int(s)]
    return None


def get_tiou(loc, span) -> tuple[float, float]:
    """``get_tIoU(loc, span)`` as written: (IoU, IoP) of the predicted `span` against the location `loc`."""
    if span[0] == span[-1]:
        return 0, (1 if loc[0] <= span[0] <= loc[1] else 0)
    union = (min(loc[0], span[0]), max(loc[-1], span[-1]))
    inter = (max(loc[0], span[0]), min(loc[-1], span[-1]))
    dis = inter[1] - inter[0]
    iou = dis / (union[1] - union[0]) if union[1] > union[0] else 0.0
    iop = dis / (span[-1] - span[0]) if span[-1] > span[0] else 0.0
    return iou, iop


def best_tiou(locs, span) -> tuple[float, float]:
    """eval_ground's maxima over the locations: each starts at 0 and takes a strictly larger value."""
    best_u, best_p = 0, 0
    for loc in locs:
        u, p = get_tiou(loc, span)
        if u > best_u:
            best_u = u
        if p > best_p:
            best_p = p
    return best_u, best_p


def load(data: str | Path, videos: str | Path | None) -> Loaded:
    path = Path(data)
    if not path.is_file():
        raise LongLensError(f"{path}: no such annotation file; give NExT-GQA's test.csv or val.csv with --data")
    gsub_file = path.with_name(f"gsub_{path.stem}.json")
    gsub = read_json(gsub_file, "NExT-GQA grounding file")
    map_file = path.with_name("map_vid_vidorID.json")
    relpath = read_json(map_file, "video map") if map_file.is_file() else {}
    missing: list[str] = []
    out = []
    odd: list[str] = []
    ungrounded: list[str] = []
    with path.open(newline="", encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f)):
            with record(f"{path}: row {i + 2}"):
                vid, qid = r["video_id"], r["qid"]
                options = tuple(r[f"a{k}"] for k in range(5) if r.get(f"a{k}") is not None)
                letter = letter_of(r["answer"], options, f"row {i + 2}", odd, last=False)
                g = gsub.get(vid) or {}
                locs = (g.get("location") or {}).get(qid)
                if locs is None:
                    ungrounded.append(f"{vid}_{qid}")
                spans = tuple((float(s), float(e)) for s, e in locs or ())
                out.append(Sample("nextgqa", f"{vid}_{qid}", video_path(folder(videos), relpath.get(vid, vid), missing),
                                  r["question"], options, letter, video_id=vid,
                                  duration_s=float(g["duration"]) if g.get("duration") is not None else None,
                                  spans=spans, task="grounded_choice", categories={"type": r.get("type")},
                                  raw=r, source={"file": path.name, "index": i}))
    notes = odd_note("NExT-GQA", odd, "whose answer is none of their options")
    if ungrounded:
        notes.append(f"NExT-GQA: {len(ungrounded)} question(s) have no span in {gsub_file.name} "
                     f"({', '.join(ungrounded[:5])}{', ...' if len(ungrounded) > 5 else ''}); they count for "
                     "Acc@QA only, as in the official eval_ground.py")
    return Loaded(out, sorted(set(missing)), notes)


def _official(sample: Sample, reply: str | None, spans=None) -> dict:
    got = nextgqa_official(reply, LETTERS[: max(len(sample.options), 1)]) if reply is not None else None
    out = {"parsed": got, "correct": got is not None and got == sample.answer}
    span = list(spans[0]) if spans else None
    if spans is None and reply:
        from longlens.bench.grounding import parse_span  # no official text reader: ours (see the docs)

        found = parse_span(reply, sample.duration_s)
        span = list(found) if found else None
    out["span"] = span
    if span is not None and sample.spans and reply is not None:  # the official loop skips the rest
        out["iou"], out["iop"] = best_tiou(sample.spans, span)
        out["grounded"] = True
    else:
        out["iou"], out["iop"], out["grounded"] = 0.0, 0.0, False
    return out


def official_metrics(records: list[dict]) -> dict:
    """Acc@GQA (headline), Acc@QA, then eval_ground's measures over the grounded questions, then Acc@QA per
    type and family as eval_next.py's accuracy_metric names them."""
    ground = [r for r in records if r.get("grounded")]
    n = len(ground)

    def share(test) -> float:
        return sum(1 for r in ground if test(r)) / n if n else 0.0

    out = {"Acc@GQA": metric(share(lambda r: r["iop"] >= 0.5 and r.get("correct")), n),
           "Acc@QA": metric(sum(bool(r.get("correct")) for r in records) / len(records) if records else 0.0,
                            len(records)),
           "mIoP": metric(sum(r["iop"] for r in ground) / n if n else 0.0, n)}
    out.update({f"IoP@{t}": metric(share(lambda r, t=t: r["iop"] >= t), n) for t in THRESHOLDS})
    out["mIoU"] = metric(sum(r["iou"] for r in ground) / n if n else 0.0, n)
    out.update({f"IoU@{t}": metric(share(lambda r, t=t: r["iou"] >= t), n) for t in THRESHOLDS})
    groups: dict[str, list[bool]] = {}
    for r in records:
        qtype = str((r.get("categories") or {}).get("type"))
        qtype = "TN" if qtype == "TP" else qtype
        groups.setdefault(qtype, []).append(bool(r.get("correct")))
    for qtype, name in TYPES.items():
        if groups.get(qtype):
            out[name] = metric(sum(groups[qtype]) / len(groups[qtype]), len(groups[qtype]))
    for family, name in FAMILIES.items():
        got = [v for t, vs in groups.items() if t.startswith(family) for v in vs]
        if got:
            out[name] = metric(sum(got) / len(got), len(got))
    return out


BENCHMARK = Benchmark(
    name="nextgqa", title="NExT-GQA", load=load, official=_official, official_metrics=official_metrics,
    rules={"nextgqa": lambda reply, s: nextgqa_official(reply, LETTERS[: max(len(s.options), 1)])},
    breakdowns=("type",), thresholds=THRESHOLDS,
    official_source="doc-doc/NExT-GQA@63772e0 code/TempGQA/eval_ground.py, code/TempGQA/eval_next.py",
    data_help="test.csv or val.csv (gsub_<split>.json and map_vid_vidorID.json beside it)")
