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
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longlens.video import store

DEFAULT_MAX_BYTES = 20 * 2**30
_SUFFIX = ".llc"


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


class FrameCache:
    """Disk cache of arrays + metadata under `root`, in named sections ("frames", "index")."""

    def __init__(self, root: str | os.PathLike | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.max_bytes = int(max_bytes)

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
        try:
            store.write(self._path(section, key), meta, arrays)
        except OSError:
            return  # a cache that cannot be written is only slower, never an error
        self.prune()

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
        return self.prune(0)

    def stats(self) -> CacheStats:
        entries = self._entries()
        return CacheStats(str(self.root), len(entries), sum(s for _, s, _ in entries), self.max_bytes)
