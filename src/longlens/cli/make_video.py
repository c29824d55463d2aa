"""`longlens make-video`: write a synthetic long video with needles and its answer key."""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path

from longlens.errors import LongLensError

HELP = "make a synthetic H.264 video with known answers (needles) for tests and benchmarks"
DESCRIPTION = (
    "Write a synthetic H.264 MP4 of moving scenes with short 'needles' (a small white label with a word "
    "or number, or a coloured shape) at random times, and an answer key (JSON) with a 4-option question "
    "about each needle. No downloads; the same seed gives the same video and key."
)


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help=HELP, description=DESCRIPTION)
    p.add_argument("out", metavar="OUT.mp4", help="video file to write")
    p.add_argument(
        "--duration",
        required=True,
        metavar="T",
        help="length: seconds (600), or with a unit (90s, 10m, 1.5h), or M:SS / H:MM:SS",
    )
    p.add_argument("--size", default="1280x720", metavar="WxH", help="frame size, even numbers (1280x720)")
    p.add_argument("--fps", default="30", help="frame rate (30)")
    p.add_argument("--gop", default="5", metavar="S", help="a keyframe at least every S seconds (5)")
    p.add_argument("--seed", default="0", help="random seed (0)")
    p.add_argument("--needles", default=None, metavar="N", help="number of needles (one per minute, 1-60)")
    p.add_argument("--kinds", default="text,object", help="needle kinds, comma-separated (text,object)")
    p.add_argument("--preset", default="ultrafast", help="x264 preset (ultrafast)")
    p.add_argument("--crf", default="28", help="x264 quality, 0-51, lower is better (28)")
    p.add_argument("--bframes", default=None, metavar="N", help="x264 B-frames (the preset's default)")
    p.add_argument(
        "--frame-code", action="store_true", help="draw each frame's index as 17 blocks in a band at the top"
    )
    p.add_argument("--key", default=None, metavar="PATH", help="answer key path (OUT with suffix .json)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _number(name: str, text: str, kind=float):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        raise LongLensError(f"--{name}: expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise LongLensError(f"--{name}: expected a finite number, got {text!r}")
    return value


def parse_duration(text: str) -> float:
    """Seconds from '600', '90s', '10m', '1.5h', '1:30' or '1:00:00'; positive and finite."""
    s = str(text).strip().lower()
    units = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
    try:
        if ":" in s:
            parts = [float(p) for p in s.split(":")]
            if len(parts) > 3 or any(p < 0 for p in parts):
                raise ValueError
            seconds = 0.0
            for part in parts:
                seconds = seconds * 60 + part
        else:
            m = re.fullmatch(r"([0-9.e+-]+)\s*(s|m|min|h)?", s)
            if not m:
                raise ValueError
            seconds = float(m.group(1)) * units[m.group(2) or "s"]
    except ValueError:
        forms = "seconds (600), 10m, 1.5h or H:MM:SS"
        raise LongLensError(f"--duration: expected {forms}, got {text!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise LongLensError(f"--duration must be positive, got {text!r}")
    return seconds


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(text))
    if not m:
        raise LongLensError(f"--size: expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 64 or h < 64 or w % 2 or h % 2:
        raise LongLensError(f"--size: width and height must be even and at least 64, got {text!r}")
    return w, h


def _clock(t: float) -> str:
    m, s = divmod(t, 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m:02d}:{s:04.1f}"


def run(args: argparse.Namespace) -> int:
    from longlens.synth import make_video

    duration = parse_duration(args.duration)
    width, height = parse_size(args.size)
    fps = _number("fps", args.fps)
    gop = _number("gop", args.gop)
    if fps <= 0 or gop <= 0:
        raise LongLensError(f"--fps and --gop must be positive, got {args.fps!r} and {args.gop!r}")
    seed = _number("seed", args.seed, int)
    needles = None if args.needles is None else _number("needles", args.needles, int)
    if needles is not None and needles < 0:
        raise LongLensError(f"--needles must be 0 or more, got {args.needles!r}")
    kinds = tuple(k.strip() for k in str(args.kinds).split(",") if k.strip())
    if not kinds or any(k not in ("text", "object") for k in kinds):
        raise LongLensError(f"--kinds: expected a comma-separated list of text, object; got {args.kinds!r}")
    crf = _number("crf", args.crf)
    bframes = None if args.bframes is None else _number("bframes", args.bframes, int)

    progress = None
    if not args.quiet and sys.stderr.isatty():

        def progress(done: int, total: int) -> None:
            end = "\n" if done == total else ""
            print(
                f"\rmaking {args.out}: {done}/{total} frames ({100 * done / total:.0f}%)",
                end=end,
                file=sys.stderr,
            )

    started = time.monotonic()
    key = make_video(
        args.out,
        duration_s=duration,
        width=width,
        height=height,
        fps=fps,
        gop_s=gop,
        seed=seed,
        needles=needles,
        needle_kinds=kinds,
        preset=args.preset,
        crf=int(crf) if float(crf).is_integer() else crf,
        frame_code=args.frame_code,
        bframes=bframes,
        key_path=args.key,
        progress=progress,
    )
    took = time.monotonic() - started
    for n in key.needles:
        print(f"{n.id}  {_clock(n.start_s)}-{_clock(n.end_s)}  {n.kind:<6}  {n.content}")
    key_path = Path(args.key) if args.key else Path(args.out).with_suffix(".json")
    print(
        f"wrote {args.out}: {key.frame_count} frames, {width}x{height} at {key.fps:g} fps, "
        f"{len(key.needles)} needle{'' if len(key.needles) == 1 else 's'}, "
        f"in {took:.1f} s ({key.frame_count / max(took, 1e-9):.0f} frames/s)"
    )
    print(f"answer key: {key_path}")
    return 0
