"""`longlens report RUN_DIR [RUN_DIR ...] [--out DIR]`: tables, costs, plots and a trace viewer of runs."""

from __future__ import annotations

from pathlib import Path

from longlens.bench.scorers import POLICIES
from longlens.errors import LongLensError


def add_parser(sub, name):
    p = sub.add_parser(name, help="report on run folders: tables, costs, SVG plots and an HTML trace viewer",
                       description="Write report.md, report.json, SVG plots, index.html and viewer/index.html (every "
                                   "question's timeline, frames and reasoning) for one or more run folders of "
                                   "longlens eval. Several runs are also compared side by side.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", metavar="DIR", help="report folder (default: RUN_DIR/report for one run)")
    p.add_argument("--policy", choices=POLICIES, default="wrong",
                   help="unparsed replies: wrong (default), drop, random")
    p.add_argument("--thumbs", type=int, default=32, metavar="N",
                   help="thumbnails per zoomed clip in the viewer (default 32; 0: none)")
    p.add_argument("--fast-thumbs", type=int, default=16, metavar="N",
                   help="thumbnails of the fast view per question (default 16; 0: none)")
    return p


def run(args) -> int:
    from longlens.bench.report import make_report, pct, shard_state, standing

    if args.out is None and len(args.runs) > 1:
        raise LongLensError("several runs need --out DIR for their common report")
    out = Path(args.out) if args.out else Path(args.runs[0]) / "report"
    report = make_report(args.runs, out, policy=args.policy, thumbs=max(args.thumbs, 0),
                         fast_thumbs=max(args.fast_thumbs, 0))
    for rep in report["runs"]:
        head = rep["summary"]["headline"]
        print(f"{rep['name']}: {head['name']} {pct(head['value'])} ± {pct(head['se'])} over {head['n']} "
              f"(policy {args.policy}); {standing(rep['summary'])}")
        unfinished = [st for st in rep["shards"] if st["state"] != "complete"]
        if unfinished:
            print("  not complete: " + "; ".join(f"shard {st['shard']} {shard_state(st)}"
                                                for st in unfinished))
    for note in report["viewer"]["notes"]:
        print(f"note: {note}")
    print(f"report in {out}: report.md, report.json, index.html; traces in {out / 'viewer' / 'index.html'}")
    return 0
