"""`longlens frames VIDEO --out DIR`: decode a plan and write the frames a model would see."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from longlens.cli._common import add_cache_options, cache_from, parse_clip
from longlens.cli.plan import describe
from longlens.video import decode, fast_plan, open_video, slow_plan
from longlens.video.sheet import contact_sheet


def add_parser(sub, name):
    p = sub.add_parser(name, help="decode the fast view (or a clip) and write its frames as images",
                       description="Decode the fast view, or a zoom-in clip, and write the stamped frames.")
    p.add_argument("video", help="path to a video file")
    p.add_argument("--clip", nargs=2, metavar=("START", "END"), help="decode this clip instead of the fast view")
    p.add_argument("--mode", choices=["nearest", "accurate"], help="decode mode (default: nearest for the "
                   "fast view, accurate for clips)")
    p.add_argument("--out", required=True, help="folder for the images")
    p.add_argument("--sheet", action="store_true", help="write one contact sheet instead of one file per frame")
    add_cache_options(p)
    return p


def run(args) -> int:
    cache = cache_from(args)
    info = open_video(args.video, cache=cache)
    if args.clip:
        plan = slow_plan(info, *parse_clip(args.clip), mode=args.mode or "accurate")
    else:
        plan = fast_plan(info, mode=args.mode or "nearest")
    frames = decode(info, plan, cache=cache)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.sheet:
        path = out / f"{plan.kind}-sheet.jpg"
        contact_sheet(frames.frames).save(path, quality=90)
    else:
        for j, (frame, t) in enumerate(zip(frames.frames, frames.times_s, strict=True)):
            Image.fromarray(frame).save(out / f"{plan.kind}-{j:04d}-{t:09.3f}s.jpg", quality=90)
        path = out
    print(describe(plan))
    err = frames.errors_s
    print(f"{frames!r}; max offset from target {err.max():.2f} s")
    print(f"wrote {path}")
    return 0
