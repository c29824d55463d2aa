"""Live progress of an evaluation: done/total, running accuracy, unparsed replies, guesses and failures,
tokens and seconds per question, and the time left.

On a terminal it is one line redrawn in place that fits the terminal's width: done/total and the ETA
always, then the accuracy, then the other figures and a bar as room allows. Elsewhere (a log file, a pipe,
the tests) one plain line per question: ``[done/total] id: ok|wrong|unparsed|error`` and the figures.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import TextColumn


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
        self.done = self.correct = self.unparsed = self.tokens = self.spans = self.failed = self.guessed = 0
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
        self.failed += bool(record.get("error_kind"))
        self.guessed += bool(record.get("guessed"))
        self.unparsed += record.get("parsed") is None and not record.get("error_kind")
        cost = record.get("cost") or {}
        self.tokens += (cost.get("visual_tokens") or 0) + (cost.get("text_tokens") or 0)
        self.seconds += record.get("wall_s") or 0.0

    def eta_s(self) -> float | None:
        if not self.new:
            return None
        return (self.now() - self.t0) / self.new * max(self.total - self.done, 0)

    def parts(self) -> list[str]:
        """The figures, most wanted first: ETA, score, then what went wrong, then the costs."""
        if not self.done:
            return ["starting"]
        eta = self.eta_s()
        score = f"mIoU {self.iou / self.spans:.3f}" if self.spans else f"acc {self.correct / self.done:.3f}"
        out = [f"ETA {clock(eta) if eta is not None else '?'}", score, f"{self.unparsed} unparsed"]
        out += [f"{self.guessed} guessed"] * bool(self.guessed) + [f"{self.failed} failed"] * bool(self.failed)
        return out + [f"{self.tokens / self.done:,.0f} tokens/q", f"{self.seconds / self.done:.2f} s/q"]

    def figures(self) -> str:
        p = self.parts()
        return ", ".join(p[1:] + p[:1])  # plain lines: the ETA last

    def line(self, width: int) -> str:
        """One line of at most `width` characters: done/total and ETA always, then as many figures as fit,
        then a bar in the room left."""
        head = f"eval {self.done}/{self.total}"
        parts = self.parts()
        text = f"{head} {parts[0]}"
        for part in parts[1:]:
            if len(text) + 2 + len(part) > width:
                break
            text += f", {part}"
        room = width - len(text) - 1
        if room >= 12 and self.total:
            bar = room - 2 if room < 42 else 40
            filled = round(bar * min(self.done / self.total, 1.0))
            text = f"{head} {'━' * filled}{'╺' * (bar > filled)}{'─' * max(bar - filled - 1, 0)} {text[len(head) + 1:]}"
        return text[:width]


class Progress:
    """``with Progress(total, previous) as p: ... p.update(record, done, total)`` (the runner's callback)."""

    def __init__(self, total: int, previous: list[dict] = (), *, stream: TextIO | None = None,
                 live: bool | None = None):
        self.stream = stream or sys.stdout
        self.tally = Tally(total, previous)
        self.live = self.stream.isatty() if live is None else live
        self._bar = None
        if self.live:
            self._console = Console(file=self.stream, force_terminal=True)
            self._bar = RichProgress(TextColumn("{task.fields[line]}", markup=False), console=self._console,
                                     transient=False)
            self._task = self._bar.add_task("eval", total=total, completed=self.tally.done, line=self._line())

    def _line(self) -> str:
        return self.tally.line(max(self._console.width - 1, 20))  # the width now: a resized terminal is followed

    def update(self, record: dict, done: int, total: int) -> None:
        self.tally.total = total
        self.tally.add(record)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total, line=self._line())
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
