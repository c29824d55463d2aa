"""`longlens demo`: make a synthetic long video with a known answer and show what a model would see.

Until the agents exist this runs the pipeline that does: make the video (once; it is kept in the
cache folder), open it, print the LOVE-R1 sampling plan, decode the fast view and the zoom-in clip
around the needle, and write contact sheets of both.
"""

from __future__ import annotations

import time
from pathlib import Path

from longlens.cli._common import add_cache_options, cache_from
from longlens.cli.plan import describe
from longlens.synth import load_answer_key, make_video
from longlens.video import decode, default_cache_dir, fast_plan, open_video, slow_plan
from longlens.video.sheet import contact_sheet


def add_parser(sub, name):
    p = sub.add_parser(name, help="make a synthetic video with a hidden needle and show the sampling pipeline",
                       description="Make a synthetic long video with a known answer and run the pipeline on it.")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the demo video (default: 10)")
    p.add_argument("--out", help="folder for the video and the contact sheets (default: <cache>/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic video (default: 0)")
    add_cache_options(p)
    return p


def run(args) -> int:
    cache = cache_from(args)
    out = Path(args.out) if args.out else (cache.root if cache else default_cache_dir()) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    minutes = args.minutes
    video = out / f"demo-{minutes:g}min-seed{args.seed}.mp4"
    key_path = video.with_suffix(".json")
    if video.exists() and key_path.exists():
        key = load_answer_key(key_path)
        print(f"video      {video} (made earlier)")
    else:
        t0 = time.perf_counter()
        print(f"making a {minutes:g}-minute 1280x720 synthetic video with text needles ...", flush=True)
        key = make_video(video, duration_s=minutes * 60, seed=args.seed, needle_kinds=("text",))
        print(f"video      {video} ({time.perf_counter() - t0:.0f} s to make)")
    info = open_video(video, cache=cache)
    needle = key.needles[0]
    print(f"needle     {needle.kind} {needle.content!r} on screen {needle.start_s:.1f}-{needle.end_s:.1f} s")
    print(f"question   {needle.question}")
    for letter, option in zip("ABCD", needle.options, strict=False):
        print(f"           {letter}. {option}")
    print(f"answer     {needle.answer}")
    fast = fast_plan(info)
    slow = slow_plan(info, max(0.0, needle.start_s - 5), min(info.duration_s, needle.end_s + 5))
    print("plan")
    for plan in (fast, slow):
        print(f"  {describe(plan)}")
    for plan in (fast, slow):
        frames = decode(info, plan, cache=cache)
        sheet = out / f"{video.stem}-{plan.kind}.jpg"
        contact_sheet(frames.frames).save(sheet, quality=88)
        print(f"decoded    {frames!r} -> {sheet}")
    print("the text is unreadable in the fast view and readable in the zoom-in clip: compare the two sheets")
    return 0
