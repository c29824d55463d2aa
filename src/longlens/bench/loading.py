"""What every benchmark loader shares: reading annotation records, finding videos, telling the user.

Paths come from the user (annotation file, videos folder); nothing is hard-coded or downloaded. A video that
is not there does not stop loading: `Loaded.missing` lists each expected path. A video path built from
annotation fields must stay inside the videos folder; the *path* is judged, not where a symlink leads.
Without a videos folder (``longlens score``: predictions made elsewhere) a sample's video is its name.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from longlens.bench.sample import LETTERS
from longlens.errors import LongLensError

VIDEO_EXTS = (".mp4", ".MP4", ".mkv", ".webm", ".avi", ".mov")


@dataclass
class Loaded:
    samples: list
    missing: list[str] = field(default_factory=list)
    """Expected video paths that do not exist (their samples are still in `samples`)."""
    notes: list[str] = field(default_factory=list)
    """Lines worth telling the user (records kept as the official script keeps them, public answers, ...)."""


def read_records(path: Path) -> list[dict]:
    """A JSON list (or object), JSON lines, or parquet (with pyarrow) -> records."""
    if not path.is_file():
        raise LongLensError(f"{path}: no such annotation file; give the benchmark's file with --data")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise LongLensError(f"{path}: reading parquet needs pyarrow (pip install pyarrow), or give the "
                                "records as JSON/JSONL") from exc
        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise LongLensError(f"{path}: neither JSON nor JSON lines ({exc.msg}, line {exc.lineno})") from exc


def read_json(path: Path, what: str):
    if not path.is_file():
        raise LongLensError(f"{path}: missing {what}; put it beside the annotation file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LongLensError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from exc


@contextlib.contextmanager
def record(where: str):
    """Turn a record that lacks a field or holds an odd value into one line naming it and the fix."""
    try:
        yield
    except KeyError as exc:
        raise LongLensError(f"{where}: no field {exc.args[0]!r}; is this the benchmark's annotation file?") from exc
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise LongLensError(f"{where}: unreadable record ({exc}); fix or drop it") from exc


def folder(videos: str | Path | None, *parts: str) -> Path | None:
    """The videos folder (or a folder under it); None when no videos were given."""
    if videos is None:
        return None
    return Path(videos).joinpath(*parts)


def video_path(root: Path | None, stem: str, missing: list[str]) -> str:
    """The file for `stem` under `root` (first existing extension), kept inside `root`. The name is judged,
    not where a symlink leads: a videos folder of links into a shared store is fine, ``../x`` is not.
    Without a root, `stem` itself (nothing is looked up or counted missing)."""
    if root is None:
        return stem
    root = Path(os.path.normpath(root.absolute()))
    base = Path(stem)
    candidates = [base] if base.suffix else [base.with_suffix(e) for e in VIDEO_EXTS]
    for c in candidates:
        p = Path(os.path.normpath(root / c))
        if root not in p.parents:
            raise LongLensError(f"video name {stem!r} points outside the videos folder {root}")
        if p.is_file():
            return str(p)
    expected = str(Path(os.path.normpath(root / candidates[0])))
    missing.append(expected)
    return expected


UNANSWERABLE = "@"
"""The letter of a question whose answer is none of its options: MLVU's choice_bench.py makes it
``chr(ord('A') - 1)``; no reply can match it, as in the official scripts, which score such records wrong."""


def letter_of(answer, options, where: str, odd: list[str], *, last: bool = True) -> str:
    """The letter of the last (`last`; MLVU's rule when options repeat) or first (NExT-GQA's) option equal to
    `answer`; `UNANSWERABLE`, noted in `odd`, when none is."""
    hits = [i for i, o in enumerate(options) if o == answer]
    if not hits:
        odd.append(where)
        return UNANSWERABLE
    return LETTERS[hits[-1] if last else hits[0]]


def odd_note(bench: str, odd: list[str], what: str) -> list[str]:
    """The note for records kept as the official script keeps them (scored wrong)."""
    if not odd:
        return []
    shown = ", ".join(odd[:8]) + (f", ... ({len(odd) - 8} more)" if len(odd) > 8 else "")
    return [f"{bench}: {len(odd)} record(s) {what} ({shown}) are kept and scored wrong, as the official scorer does"]
