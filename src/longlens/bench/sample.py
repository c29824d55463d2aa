"""One benchmark question in one shape, whatever its native format."""

from __future__ import annotations

from dataclasses import dataclass, field

from longlens.prompts.zoom import LETTERS

TASKS = ("choice", "grounding", "grounded_choice")


@dataclass(frozen=True)
class Sample:
    benchmark: str
    id: str
    """The benchmark's own question id (Video-MME question_id, LVBench uid, ...): scorers key on it."""
    video: str
    """Path of the video file (it may be missing; the runner reports and counts that)."""
    question: str
    options: tuple[str, ...] = ()
    """Option texts without their letters."""
    answer: str | None = None
    """The correct option letter (multiple choice), or the answer text."""
    video_id: str = ""
    duration_s: float | None = None
    spans: tuple[tuple[float, float], ...] = ()
    """Annotated time spans (clues, grounding), in seconds."""
    categories: dict = field(default_factory=dict)
    """Breakdown keys: {"duration": "long", "task_type": [...], ...}."""
    raw: dict = field(default_factory=dict, repr=False)
    """The native record, as read."""
    source: dict = field(default_factory=dict)
    """Where the record is in the official files: ``{"file": <annotation file name>, "index": <0-based position
    of the record in that file; for line formats the data line number, header excluded>}``."""
    task: str = "choice"
    """``choice`` (a letter is scored), ``grounding`` (a [start, end] span is scored against `spans`:
    Charades-STA) or ``grounded_choice`` (both: NExT-GQA, CG-Bench)."""

    @property
    def answer_text(self) -> str | None:
        if self.answer and self.options and self.answer in LETTERS[: len(self.options)]:
            return self.options[LETTERS.index(self.answer)]
        return None
