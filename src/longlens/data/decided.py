"""Resumable data building: every job ends in a decision, logged beside the output; kept rows go to the output.

``OUT`` gets the kept rows (JSON lines) and ``OUT-stem.decided.jsonl`` one line per decided job, kept or not.
A rerun cuts torn last lines, logs rows written just before a kill whose log line was lost, and skips every
job already decided. `decide_all` runs the rest (concurrently) and appends each decision as it comes; a
failing server (`BackendError`) stops it with a line that says how far it got and how to go on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from longlens.backends.base import BackendError
from longlens.jsonl import append_synced, cut_torn_line, read_lines, run_each


def decided_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".decided.jsonl")


def read_decided(path: Path) -> list[dict]:
    """The decided log (a torn last line is not a record)."""
    return read_lines(path, fix="delete it to decide every job again")


def open_output(out: str | Path, rows: Callable[[Path], list], logged: Callable) -> set[str]:
    """Prepare `out` and its log for appending; return the ids already decided. `rows(out)` reads the kept rows,
    `logged(row)` is the decision to log for a kept row whose log line a kill lost."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = decided_path(out)
    for path in (out, log):
        cut_torn_line(path)
    done = {d["id"] for d in read_decided(log)}
    for row in rows(out) if out.exists() else []:
        if row.id not in done:
            append_synced(log, json.dumps(logged(row).to_dict()) + "\n")
            done.add(row.id)
    return done


def decide_all(jobs: Sequence, work: Callable, out: str | Path, *, concurrency: int = 1,
               progress: Callable | None = None, who: str = "the server", what: str = "jobs") -> None:
    """`work(job)` for every job, each decision (with `.row` and `.to_dict()`) appended as it comes."""
    out = Path(out)
    log = decided_path(out)
    total, finished = len(jobs), 0

    def write(decision) -> None:
        nonlocal finished
        if decision.row is not None:
            append_synced(out, json.dumps(decision.row.to_dict(), ensure_ascii=False) + "\n")
        append_synced(log, json.dumps(decision.to_dict(), ensure_ascii=False) + "\n")
        finished += 1
        if progress:
            progress(decision, finished, total)

    try:
        run_each(jobs, work, write, concurrency)
    except BackendError as exc:
        raise BackendError(f"{who} failed after {finished} of {total} {what} ({exc}); what was done is kept in "
                           f"{out}, rerun the same command to go on") from exc
