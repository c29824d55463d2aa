"""`longlens cache`: where the frame cache is, how big, and clearing it."""

from __future__ import annotations

from longlens.video import FrameCache


def add_parser(sub, name):
    p = sub.add_parser(name, help="show or clear the frame cache", description="Show or clear the frame cache.")
    p.add_argument("--cache-dir", help="cache folder (default: $LONGLENS_CACHE_DIR or ~/.cache/longlens)")
    p.add_argument("--clear", action="store_true", help="delete every cached entry and orphaned temporary file")
    return p


def run(args) -> int:
    cache = FrameCache(args.cache_dir) if args.cache_dir else FrameCache()
    if args.clear:
        freed = cache.clear()
        print(f"cleared {freed / 2**20:.1f} MiB from {cache.root}")
    s = cache.stats()
    orphans = f"; {s.orphans} orphaned temporary files, {s.orphan_bytes / 2**20:.1f} MiB" if s.orphans else ""
    print(f"{s.root}: {s.entries} entries, {s.bytes / 2**20:.1f} MiB (limit {s.max_bytes / 2**30:g} GiB, "
          f"$LONGLENS_CACHE_MAX_GB){orphans}")
    return 0
