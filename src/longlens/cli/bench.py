"""`longlens bench make-needles`: the synthetic needle suite, as a benchmark folder.

One folder of videos of the asked lengths (``--minutes 10,30,60``), ``--count`` per length, each with its
answer key beside it (the format ``longlens eval needles --data DIR`` reads). Videos are made in parallel
processes; a video whose key already exists is kept, so an interrupted command goes on where it stopped.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from longlens.cli.make_video import _number, parse_size
from longlens.errors import LongLensError


def add_parser(sub, name):
    p = sub.add_parser(name, help="benchmark tools: make the synthetic needle suite",
                       description="Benchmark tools.")
    tools = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    m = tools.add_parser("make-needles", help="write the synthetic needle suite (videos + answer keys)",
                         description="Write synthetic videos with needles (a label or a coloured shape on screen "
                                     "for a few seconds) and a 4-option question per needle, at several lengths. "
                                     "Evaluate with: longlens eval needles --data DIR")
    m.add_argument("--out", required=True, metavar="DIR", help="suite folder (created; existing videos are kept)")
    m.add_argument("--minutes", default="10,30,60", help="video lengths in minutes, comma-separated (10,30,60)")
    m.add_argument("--count", type=int, default=1, help="videos per length (1)")
    m.add_argument("--needles-per-video", type=int, default=None, metavar="N",
                   help="needles in each video (default: one per minute, at most 60)")
    m.add_argument("--kinds", default="text,object", help="needle kinds, comma-separated (text,object)")
    m.add_argument("--size", default="640x360", metavar="WxH", help="frame size (640x360)")
    m.add_argument("--fps", type=float, default=10.0, help="frame rate (10)")
    m.add_argument("--seed", type=int, default=0, help="first seed; video i of a length uses seed + i (0)")
    m.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="videos made at once (half the CPU cores)")
    return p


def suite_plan(minutes: list[float], count: int, seed: int) -> list[tuple[str, float, int]]:
    """(file stem, duration in seconds, seed) of every video of the suite, in a fixed order."""
    plan = []
    for m in minutes:
        for i in range(count):
            plan.append((f"needles-{m:g}m-{i + 1:02d}", m * 60.0, seed + 1000 * i + int(m * 60)))
    return plan


def _make(path: str, duration_s: float, seed: int, width: int, height: int, fps: float, needles, kinds) -> int:
    from longlens.synth import make_video

    key = make_video(path, duration_s=duration_s, width=width, height=height, fps=fps, gop_s=5.0, seed=seed,
                     needles=needles, needle_kinds=kinds, key_path=Path(path).with_suffix(".json.part"))
    Path(path).with_suffix(".json.part").replace(Path(path).with_suffix(".json"))  # the key last: a whole video
    return len(key.needles)


def run(args: argparse.Namespace) -> int:
    try:
        minutes = [float(x) for x in str(args.minutes).split(",") if x.strip()]
    except ValueError:
        raise LongLensError(f"--minutes: expected numbers such as 10,30,60, got {args.minutes!r}") from None
    if not minutes or any(m <= 0 for m in minutes):
        raise LongLensError(f"--minutes: expected positive numbers such as 10,30,60, got {args.minutes!r}")
    if args.count < 1:
        raise LongLensError(f"--count must be at least 1, got {args.count}")
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or any(k not in ("text", "object") for k in kinds):
        raise LongLensError(f"--kinds: expected a comma-separated list of text, object; got {args.kinds!r}")
    width, height = parse_size(args.size)
    fps = _number("fps", str(args.fps))
    if fps <= 0:
        raise LongLensError(f"--fps must be positive, got {args.fps}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = []
    for stem, duration, seed in suite_plan(minutes, args.count, args.seed):
        video = out / f"{stem}.mp4"
        if video.with_suffix(".json").is_file() and video.is_file():
            print(f"kept {video}")
            continue
        todo.append((str(video), duration, seed))
    started = time.monotonic()
    made = 0
    with ProcessPoolExecutor(max_workers=max(1, min(args.jobs, len(todo) or 1))) as pool:
        futures = {pool.submit(_make, path, d, s, width, height, fps, args.needles_per_video, kinds): path
                   for path, d, s in todo}
        for fut in as_completed(futures):
            n = fut.result()
            made += 1
            print(f"[{made}/{len(todo)}] wrote {futures[fut]} ({n} needles, {time.monotonic() - started:.0f} s)",
                  flush=True)
    print(f"suite in {out}: {len(minutes) * args.count} videos; evaluate with: longlens eval needles --data {out}")
    return 0
