"""`longlens info VIDEO`: what LongLens reads from a video file."""

from __future__ import annotations

import json

from longlens.cli._common import add_cache_options, cache_from
from longlens.video import open_video


def add_parser(sub, name):
    p = sub.add_parser(name, help="show a video's duration, frame rate, size and keyframes",
                       description="Show what LongLens reads from a video file.")
    p.add_argument("video", help="path to a video file")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_cache_options(p)
    return p


def run(args) -> int:
    info = open_video(args.video, cache=cache_from(args))
    fields = {
        "path": info.path,
        "id": info.fingerprint,
        "duration_s": round(info.duration_s, 3),
        "fps": round(info.fps, 3),
        "frames": info.n_frames,
        "width": info.width,
        "height": info.height,
        "rotation": info.rotation,
        "codec": info.codec,
        "keyframes": len(info.keyframes),
        "mean_gop_s": round(info.gop_s, 2),
    }
    if args.json:
        print(json.dumps(fields))
    else:
        for k, v in fields.items():
            print(f"{k:<11} {v}")
    return 0
