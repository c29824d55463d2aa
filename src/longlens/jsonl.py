"""Durable JSON: lines appended and synced, files replaced atomically, torn last lines tolerated.

Text from models is data and may hold anything, lone surrogates included ("\\ud800"), which UTF-8 cannot
encode: they are written as JSON escapes, so every file stays valid JSON that reads back to the same text.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def dumps(obj, *, indent: int | None = None) -> str:
    """JSON text (non-ASCII kept readable) that always encodes as UTF-8."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: only inside JSON strings, where "\\udXXX" is their escape
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def write_atomic(path: str | Path, text: str) -> Path:
    """Replace `path` with `text` (UTF-8) so that a reader or a crash sees the old file or the new one, never
    a part (no 0-byte files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj, *, indent: int | None = 1) -> Path:
    return write_atomic(path, dumps(obj, indent=indent))


def cut_torn_line(path: Path) -> None:
    """Drop a partial last line of `path` (a kill mid-write) so the next record starts on its own line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def append_synced(path: Path, line: str) -> None:
    """Append one line (ending in a newline) to `path`, flushed and fsynced before returning."""
    with path.open("a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def append_json(path: Path, obj) -> None:
    """Append `obj` as one JSON line, synced."""
    append_synced(path, dumps(obj) + "\n")


def read_lines(path: Path) -> list[dict]:
    """The complete JSON lines of `path` (a torn last line, not yet cut, is left out)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
    return [json.loads(line) for line in lines if line.strip()]
