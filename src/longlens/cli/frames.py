"""`longlens frames VIDEO --out DIR`: decode a plan and write the frames a model would see."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from longlens.cli._common import add_cache_options, cache_from, parse_clip
from longlens.cli.plan import describe
from longlens.video import decode, fast_plan, open_video, slow_plan
from longlens.video.sheet import contact_sheets, save_contact_sheets


def add_parser(sub, name):
    p = sub.add_parser(name, help="decode the fast view (or a clip) and write its frames as images",
                       description="Decode the fast view, or a zoom-in clip, and write the stamped frames.")
    p.add_argument("video", help="path to a video file")
    p.add_argument("--clip", nargs=2, metavar=("START", "END"), help="decode this clip instead of the fast view")
    p.add_argument("--mode", choices=["accurate", "nearest"], default="accurate",
                   help="accurate (default: the exact frames the reference samples) or nearest (the cheapest frame "
                        "within half a sampling interval: faster, not what the checkpoints saw)")
    p.add_argument("--out", required=True, help="folder for the images")
    p.add_argument("--format", choices=["jpeg", "png"], default="jpeg",
                   help="jpeg (default, quality 90) or png (lossless: the exact pixels the model is given)")
    p.add_argument("--json", action="store_true",
                   help="also write frames.json: each frame's file, index, time and stamp text, and the plan")
    p.add_argument("--sheet", action="store_true",
                   help="write contact sheets instead of one file per frame: pages of up to 48 frames, each captioned "
                        "with its number and time, small frames enlarged so that their stamps read")
    add_cache_options(p)
    return p


def run(args) -> int:
    cache = cache_from(args)
    info = open_video(args.video, cache=cache)
    if args.clip:
        plan = slow_plan(info, *parse_clip(args.clip), mode=args.mode)
    else:
        plan = fast_plan(info, mode=args.mode)
    frames = decode(info, plan, cache=cache)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ext, options = ("png", {"compress_level": 1}) if args.format == "png" else ("jpg", {"quality": 90})
    names = []
    if args.sheet:
        view = "the fast view" if plan.kind == "fast" else f"the clip [{plan.span_s[0]:g}, {plan.span_s[1]:g}] s"
        title = f"{view} of {Path(args.video).name}"
        pages = contact_sheets(frames.frames, frames.times_s, title=title)
        paths = save_contact_sheets(pages, out / f"{plan.kind}-sheet.{ext}", **options)
        path = paths[0] if len(paths) == 1 else f"{paths[0]} ... {paths[-1].name} ({len(paths)} pages)"
    else:
        for j, (frame, t) in enumerate(zip(frames.frames, frames.times_s, strict=True)):
            names.append(f"{plan.kind}-{j:04d}-{t:09.3f}s.{ext}")
            Image.fromarray(frame).save(out / names[-1], **options)
        path = out
    if args.json:
        listing = [{"file": names[j] if names else None, "index": i, "time_s": t,
                    "stamp": str(info.second_of(i)) if plan.stamp else None}
                   for j, (i, t) in enumerate(zip(frames.indices, frames.times_s, strict=True))]
        meta = {"video": str(args.video), "plan": plan.to_dict(), "frames": listing}
        (out / "frames.json").write_text(json.dumps(meta, indent=1))
    print(describe(plan))
    err = frames.errors_s
    print(f"{frames!r}; max offset from target {err.max():.2f} s")
    print(f"wrote {path}")
    return 0
