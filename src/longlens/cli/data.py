"""`longlens data filter|export`: training rows (CoT JSONL) filtered with a report, or exported.

The rows are `longlens.train.data.CotRow` JSON lines. Generating them (clip captions, teacher CoTs) is
not a command yet; this is the part after generation.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

from longlens.errors import LongLensError


def add_parser(sub, name):
    p = sub.add_parser(name, help="training data: filter CoT rows (with a report) or export them",
                       description="Training data tools over CoT rows (JSON lines).")
    tools = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    f = tools.add_parser("filter", help="keep the rows every filter keeps; print and save a per-reason report",
                         description="Apply the named filters (bad_box, wrong_prefix, wrong_answer, zoom_miss, "
                                     "bad_span, repeated_pattern, mentions_unseen, mentions_hint) in that order.")
    f.add_argument("rows", help="CoT rows (JSON lines)")
    f.add_argument("--out", required=True, help="kept rows (JSON lines; must not exist yet)")
    f.add_argument("--report", help="the report as JSON (default: OUT with suffix .report.json)")
    f.add_argument("--min-iou", type=float, default=0.1, help="zoom_miss: least IoU with a truth span (0.1)")
    f.add_argument("--max-span", type=float, default=60.0, help="bad_span: longest clip in seconds (60)")
    f.add_argument("--skip", default="", help="filters to leave out, comma-separated")
    e = tools.add_parser("export", help="write LLaMA-Factory multimodal records (sharegpt style)",
                         description="One record per row: the fast view and each clip as <video> entries.")
    e.add_argument("rows", help="CoT rows (JSON lines)")
    e.add_argument("--videos", required=True, metavar="DIR", help="the folder the rows' video paths are under")
    e.add_argument("--clips", metavar="DIR", help="where the cut clip files are (default: VIDEOS/clips)")
    e.add_argument("--out", required=True, help="the JSON file to write (a list of records)")
    return p


def run(args: argparse.Namespace) -> int:
    from longlens.train import data

    src = Path(args.rows)
    if not src.is_file():
        raise LongLensError(f"{src}: no such rows file; give a JSON-lines file of CoT rows")
    rows = data.read_jsonl(src)
    if args.tool == "export":
        records = data.to_llamafactory(rows, args.videos, args.clips)
        Path(args.out).write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
        entry = data.llamafactory_dataset_info(Path(args.out).name)
        print(f"wrote {len(records)} records to {args.out}; dataset_info.json entry: {json.dumps(entry)}")
        return 0
    out = Path(args.out)
    if out.exists():
        raise LongLensError(f"{out} exists; give a new --out (filtering never appends to old rows)")
    filters = {data.filter_name(f): f for f in data.FILTERS}
    filters["zoom_miss"] = functools.partial(data.zoom_miss, min_iou=args.min_iou)
    filters["bad_span"] = functools.partial(data.bad_span, max_s=args.max_span)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(filters)
    if unknown:
        raise LongLensError(f"--skip: unknown filter(s) {', '.join(sorted(unknown))}; known: {', '.join(filters)}")
    kept, report = data.apply_filters(rows, {k: f for k, f in filters.items() if k not in skip})
    data.to_jsonl(kept, out)
    report_path = Path(args.report) if args.report else out.with_suffix(".report.json")
    report_path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    for name, n in report["dropped"].items():
        example = f"  e.g. {report['examples'][name]}" if name in report["examples"] else ""
        print(f"{name:<17} dropped {n}{example}")
    print(f"kept {report['out']} of {report['in']} rows in {out}; report in {report_path}")
    return 0
