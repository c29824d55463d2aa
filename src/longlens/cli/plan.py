"""`longlens plan VIDEO [--clip S E]...`: the frames LOVE-R1 would sample, without decoding them."""

from __future__ import annotations

import json

from longlens.cli._common import add_cache_options, cache_from, human_count, parse_clip
from longlens.video import FramePlan, fast_plan, open_video, slow_plan


def add_parser(sub, name):
    p = sub.add_parser(name, help="print the fast-view and zoom-clip sampling plans of a video",
                       description="Print the frames LOVE-R1 would sample (no decoding).")
    p.add_argument("video", help="path to a video file")
    p.add_argument("--clip", nargs=2, action="append", metavar=("START", "END"), default=[],
                   help="a zoom-in clip in seconds (or m:ss); repeatable")
    p.add_argument("--mode", choices=["accurate", "nearest"], default="accurate",
                   help="fast-view decode mode (default: accurate, the reference's frames)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_cache_options(p)
    return p


def describe(plan: FramePlan) -> str:
    t = plan.times_s
    label = "fast view" if plan.kind == "fast" else f"clip [{plan.span_s[0]:g}, {plan.span_s[1]:g}]"
    return (
        f"{label:<16} {plan.n_frames:>4} frames  {plan.width}x{plan.height}  "
        f"{human_count(plan.visual_tokens):>6} visual tokens  {plan.sample_fps:g} fps  "
        f"{t[0]:.1f}-{t[-1]:.1f} s  ({plan.mode})"
    )


def run(args) -> int:
    info = open_video(args.video, cache=cache_from(args))
    plans = [fast_plan(info, mode=args.mode)]
    plans += [slow_plan(info, *parse_clip(c)) for c in args.clip]
    if args.json:
        print(json.dumps([dict(p.to_dict(), times_s=list(p.times_s), indices=list(p.indices)) for p in plans]))
        return 0
    print(f"{info.path}: {info.duration_s:.1f} s, {info.fps:g} fps, {info.width}x{info.height}")
    for p in plans:
        print(describe(p))
    total = sum(p.visual_tokens for p in plans)
    print(f"total            {human_count(total)} visual tokens")
    return 0
