"""Options and helpers shared by the commands."""

from __future__ import annotations

import argparse
import sys

from longlens.errors import LongLensError
from longlens.video import FrameCache


def add_cache_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cache")
    g.add_argument("--cache-dir", help="frame cache folder (default: $LONGLENS_CACHE_DIR or ~/.cache/longlens)")
    g.add_argument("--no-cache", action="store_true", help="decode everything, read and write no cache")
    g.add_argument("--cache-max-gb", type=float, metavar="GB",
                   help="cache size limit in GiB, least recently used evicted (default $LONGLENS_CACHE_MAX_GB or 20)")


def add_scoring_options(p: argparse.ArgumentParser) -> None:
    """--extractor and --policy, as eval and score take them."""
    from longlens.bench.scorers import EXTRACTOR_CHOICES, POLICIES

    p.add_argument("--extractor", choices=EXTRACTOR_CHOICES, default="robust",
                   help="how a reply is scored: robust (default), official (the benchmark's own scorer, quirks "
                        "and denominators kept) or a named letter rule")
    p.add_argument("--policy", choices=POLICIES, default="wrong",
                   help="unparsed replies, when not official: wrong (default), drop, random")


def cache_from(args: argparse.Namespace) -> FrameCache | None:
    if getattr(args, "no_cache", False):
        return None
    limit = getattr(args, "cache_max_gb", None)
    if limit is not None and not limit >= 0:
        raise LongLensError(f"--cache-max-gb takes a size in GiB (0 or more), got {limit}")
    return FrameCache(getattr(args, "cache_dir", None), None if limit is None else int(limit * 2**30))


def parse_clip(values: list[str]) -> tuple[float, float]:
    """'START END' in seconds (or m:ss / h:mm:ss) -> (start, end)."""
    try:
        start, end = (parse_time(v) for v in values)
    except ValueError as exc:
        raise LongLensError(f"--clip takes START END in seconds or m:ss, got {' '.join(values)!r}") from exc
    return start, end


def parse_time(text: str) -> float:
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3:
        raise ValueError(text)
    value = 0.0
    for part in parts:
        value = value * 60 + float(part)
    return value


def human_count(n: float) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else f"{n:,.0f}"


def benchmark_samples(args: argparse.Namespace) -> tuple[list, list, set]:
    """(questions, the runnable ones, their missing video paths) of ``args.bench`` from ``--data``/``--videos``
    (``--limit`` applied); notes and missing videos are printed to stderr."""
    from longlens.bench.benchmarks import get

    if args.bench != "needles" and not args.videos:
        raise LongLensError(f"{args.bench} needs --videos DIR (the folder with its video files)")
    if args.concurrency < 1:
        raise LongLensError(f"--concurrency must be 1 or more, got {args.concurrency}")
    loaded = get(args.bench).load(args.data, args.videos)
    for note in getattr(loaded, "notes", ()):
        print(note, file=sys.stderr)
    samples = loaded.samples[: args.limit] if args.limit else loaded.samples
    missing = {s.video for s in samples} & set(loaded.missing)
    for path in sorted(missing):
        print(f"missing video: {path}", file=sys.stderr)
    return samples, [s for s in samples if s.video not in missing], missing
