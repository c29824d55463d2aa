"""Content-addressed cache of decoded frames and video indexes.

Keys are hashes of the file's identity (a content fingerprint, not its path) and of everything
that changes the pixels (the plan, the decoder version). Entries are written to a temporary file
and renamed into place, so concurrent writers never expose half-written entries; a corrupted or
truncated entry is detected on read, removed and treated as a miss. The cache keeps itself under
`max_bytes` by evicting the least recently used entries.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longlens.errors import LongLensError
from longlens.video import store

DEFAULT_MAX_BYTES = 20 * 2**30
_SUFFIX = ".llc"
_TEMP = ".tmp-*"
"""Temporary files of `store.write`; one left by a killed process is an orphan."""
STALE_S = 3600.0
"""An orphan older than this is swept when a cache is first used (younger ones may be a live writer's)."""


def default_max_bytes() -> int:
    """``$LONGLENS_CACHE_MAX_GB`` (GiB, decimals allowed), else 20 GiB."""
    env = os.environ.get("LONGLENS_CACHE_MAX_GB")
    if not env:
        return DEFAULT_MAX_BYTES
    try:
        value = float(env)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise LongLensError(f"LONGLENS_CACHE_MAX_GB={env!r} is not a size in GiB; set it to e.g. 50")
    return int(value * 2**30)


def default_cache_dir() -> Path:
    """``$LONGLENS_CACHE_DIR``, else ``$XDG_CACHE_HOME/longlens``, else ``~/.cache/longlens``."""
    env = os.environ.get("LONGLENS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "longlens"


def make_key(*parts: Any) -> str:
    """A stable hex key from JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    root: str
    entries: int
    bytes: int
    max_bytes: int
    orphans: int = 0
    """Temporary files left by killed writers (swept by `FrameCache.clear` and, once stale, at first use)."""
    orphan_bytes: int = 0


class FrameCache:
    """Disk cache of arrays + metadata under `root`, in named sections ("frames", "index")."""

    def __init__(self, root: str | os.PathLike | None = None, max_bytes: int | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.max_bytes = int(max_bytes) if max_bytes is not None else default_max_bytes()
        self._swept = False

    def _path(self, section: str, key: str) -> Path:
        return self.root / section / key[:2] / f"{key}{_SUFFIX}"

    def get(self, section: str, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        path = self._path(section, key)
        if not path.exists():
            return None
        got = store.read(path)
        if got is None:  # truncated or corrupted: drop it, the caller recomputes
            with suppress(OSError):
                path.unlink()
            return None
        with suppress(OSError):
            os.utime(path)  # mark as recently used
        return got

    def put(self, section: str, key: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if not self._swept:
            self._swept = True
            self.sweep(STALE_S)
        try:
            store.write(self._path(section, key), meta, arrays)
        except OSError:
            return  # a cache that cannot be written is only slower, never an error
        self.prune()

    def _orphans(self) -> list[tuple[float, int, Path]]:
        out = []
        if self.root.exists():
            for path in self.root.rglob(_TEMP):
                with suppress(OSError):
                    st = path.stat()
                    out.append((st.st_mtime, st.st_size, path))
        return out

    def sweep(self, older_than_s: float = 0.0) -> tuple[int, int]:
        """Remove temporary files a killed writer left (older than `older_than_s`); (files, bytes) removed."""
        now = time.time()
        files = size = 0
        for mtime, n, path in self._orphans():
            if now - mtime >= older_than_s:
                with suppress(OSError):
                    path.unlink()
                    files, size = files + 1, size + n
        return files, size

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        if not self.root.exists():
            return out
        for path in self.root.rglob(f"*{_SUFFIX}"):
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((st.st_mtime, st.st_size, path))
        return out

    def prune(self, max_bytes: int | None = None) -> int:
        """Evict least recently used entries until the cache fits; returns bytes freed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        freed = 0
        for _, size, path in sorted(entries):
            if total - freed <= limit:
                break
            with suppress(OSError):
                path.unlink()
                freed += size
        return freed

    def clear(self) -> int:
        """Every entry and every orphaned temporary file removed; returns bytes freed."""
        return self.prune(0) + self.sweep(0.0)[1]

    def stats(self) -> CacheStats:
        entries, orphans = self._entries(), self._orphans()
        return CacheStats(str(self.root), len(entries), sum(s for _, s, _ in entries), self.max_bytes,
                          len(orphans), sum(s for _, s, _ in orphans))
