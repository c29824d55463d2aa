"""Durable JSON: lines appended and synced, files replaced atomically, torn last lines tolerated.

Text from models is data and may hold anything, lone surrogates included ("\\ud800"), which UTF-8 cannot
encode: they are written as JSON escapes, so every file stays valid JSON that reads back to the same text.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from longlens.errors import LongLensError


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


def append_json_lines(path: Path, objs) -> int:
    """Append each of `objs` as one JSON line through one open file, synced once at the end (a kill mid-way
    leaves whole lines and at most one torn last line, which `cut_torn_line` drops). Returns how many."""
    n = 0
    with path.open("a", encoding="utf-8") as f:
        for obj in objs:
            f.write(dumps(obj) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    return n


def complete_lines(path: str | Path) -> list[tuple[int, str]]:
    """(line number, text) of every complete, non-blank line of `path`: a last line without its newline is a
    write cut short by a kill, not a line. A missing file has none."""
    path = Path(path)
    if not path.exists():
        return []
    pieces = path.read_text(encoding="utf-8").split("\n")[:-1]  # the piece after the last newline is torn
    return [(n, line) for n, line in enumerate(pieces, 1) if line.strip()]


def read_lines(path: str | Path, *, fix: str = "it was not written by longlens; move it away") -> list[dict]:
    """The complete JSON lines of `path` (a torn last line, not yet cut, is left out). A complete line that is
    not JSON is a `LongLensError` naming the file, the line and `fix`."""
    out = []
    for n, line in complete_lines(path):
        try:
            out.append(json.loads(line))
        except ValueError as exc:  # json.JSONDecodeError; RecursionError is no ValueError but cannot come from us
            raise LongLensError(f"{path}: line {n} is not JSON ({exc}); {fix}") from None
    return out


# ---------------------------------------------------------------- resumable work
def run_each(items: list, work: Callable, write: Callable, concurrency: int = 1) -> None:
    """``write(work(item))`` for every item, `concurrency` works at a time (`write` is called from this
    thread, one result at a time, in order of completion). The first exception of a `work` stops the run:
    the works in flight finish and are written, the others never start, and the exception is raised."""
    if concurrency <= 1:
        for item in items:
            write(work(item))
        return
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(work, item) for item in items]  # FIFO: items start in order
        for fut in as_completed(futures):
            if fut.cancelled():
                continue
            if fut.exception() is None:
                write(fut.result())  # what finished is kept, even after a failure
            elif failure is None:
                failure = fut.exception()
                for other in futures:
                    other.cancel()
    if failure is not None:
        raise failure


def unique_ids(items: Sequence, *, what: str = "question", where: str = "the benchmark data") -> None:
    """Raise when an item's ``id`` appears twice (a resumable file of results keys on ids)."""
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise LongLensError(f"{what} id {item.id!r} appears twice in {where}; ids must be unique "
                                "for a run to resume (fix or drop the duplicate)")
        seen.add(item.id)
