"""Live progress of an evaluation: done/total, running accuracy, unparsed replies, tokens and seconds per
question, and the time left.

On a terminal it is a `rich` bar redrawn in place; elsewhere (a log file, a pipe, the tests) one plain
line per question: ``[done/total] id: ok|wrong|unparsed|error`` followed by the same figures.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.progress import Progress as RichProgress


def mark(record: dict) -> str:
    if record.get("error") and not record.get("prediction"):
        return "error"
    if record.get("task") == "grounding":
        return f"IoU {record.get('iou') or 0.0:.2f}" if record.get("span") else "no span"
    return "ok" if record.get("correct") else ("unparsed" if record.get("parsed") is None else "wrong")


def clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Tally:
    """Running figures over the records seen (those of earlier runs included) and the pace of this run."""

    def __init__(self, total: int, previous: list[dict] = (), now=time.perf_counter):
        self.total = total
        self.now = now
        self.t0 = now()
        self.new = 0
        self.done = self.correct = self.unparsed = self.tokens = self.spans = 0
        self.seconds = self.iou = 0.0
        for r in previous:
            self.add(r, new=False)

    def add(self, record: dict, *, new: bool = True) -> None:
        self.done += 1
        self.new += new
        self.correct += bool(record.get("correct"))
        if record.get("task") == "grounding":
            self.spans += 1
            self.iou += record.get("iou") or 0.0
        self.unparsed += record.get("parsed") is None
        cost = record.get("cost") or {}
        self.tokens += (cost.get("visual_tokens") or 0) + (cost.get("text_tokens") or 0)
        self.seconds += record.get("wall_s") or 0.0

    def eta_s(self) -> float | None:
        if not self.new:
            return None
        return (self.now() - self.t0) / self.new * max(self.total - self.done, 0)

    def figures(self) -> str:
        if not self.done:
            return "starting"
        eta = self.eta_s()
        score = f"mIoU {self.iou / self.spans:.3f}" if self.spans else f"acc {self.correct / self.done:.3f}"
        return (f"{score}, {self.unparsed} unparsed, "
                f"{self.tokens / self.done:,.0f} tokens/q, {self.seconds / self.done:.2f} s/q, "
                f"ETA {clock(eta) if eta is not None else '?'}")


class Progress:
    """``with Progress(total, previous) as p: ... p.update(record, done, total)`` (the runner's callback)."""

    def __init__(self, total: int, previous: list[dict] = (), *, stream: TextIO | None = None,
                 live: bool | None = None):
        self.stream = stream or sys.stdout
        self.tally = Tally(total, previous)
        self.live = self.stream.isatty() if live is None else live
        self._bar = None
        if self.live:
            console = Console(file=self.stream, force_terminal=True)
            self._bar = RichProgress(TextColumn("eval"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[figures]}"), console=console, transient=False)
            self._task = self._bar.add_task("eval", total=total, completed=self.tally.done,
                                            figures=self.tally.figures())

    def update(self, record: dict, done: int, total: int) -> None:
        self.tally.total = total
        self.tally.add(record)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total, figures=self.tally.figures())
        else:
            print(f"[{done}/{total}] {record['id']}: {mark(record)}  ({self.tally.figures()})", file=self.stream,
                  flush=True)

    __call__ = update

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
