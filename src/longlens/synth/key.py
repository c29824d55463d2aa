"""The answer key of a synthetic video: where each needle is, what it shows, and a question about it.

A needle is visible on frame ``i`` exactly when ``start_s <= i / fps < end_s`` (both ends are frame
boundaries, ``end_s`` is exclusive). Boxes are normalised ``(x, y, w, h)`` in the frame.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from longlens.errors import LongLensError

KEY_FORMAT = "longlens-synth-key/1"
LETTERS = ("A", "B", "C", "D")

NeedleKind = Literal["text", "object"]


@dataclass(frozen=True)
class Needle:
    """One short event planted in the video, with a 4-option multiple-choice question about it."""

    id: str
    kind: NeedleKind
    start_s: float
    end_s: float
    content: str
    box: tuple[float, float, float, float]
    question: str
    options: tuple[str, str, str, str]
    answer: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def answer_text(self) -> str:
        """The option that the answer letter points at."""
        return self.options[LETTERS.index(self.answer)]

    def frame_range(self, fps: float) -> range:
        """The frame indices on which the needle is visible."""
        return range(round(self.start_s * fps), round(self.end_s * fps))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "content": self.content,
            "box": list(self.box),
            "question": self.question,
            "options": list(self.options),
            "answer": self.answer,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Needle:
        try:
            box = tuple(float(v) for v in d["box"])
            options = tuple(str(v) for v in d["options"])
            needle = cls(
                id=str(d["id"]),
                kind=d["kind"],
                start_s=float(d["start_s"]),
                end_s=float(d["end_s"]),
                content=str(d["content"]),
                box=box,  # type: ignore[arg-type]
                question=str(d["question"]),
                options=options,  # type: ignore[arg-type]
                answer=str(d["answer"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LongLensError(f"bad needle in answer key: {exc!r}") from None
        if needle.kind not in ("text", "object"):
            raise LongLensError(f"bad needle kind {needle.kind!r} in answer key (expected text or object)")
        if len(needle.box) != 4 or len(needle.options) != 4 or needle.answer not in LETTERS:
            raise LongLensError(f"needle {needle.id!r} in answer key needs a 4-number box, 4 options, answer A-D")
        return needle


@dataclass(frozen=True)
class AnswerKey:
    """Everything known about a synthetic video: its geometry and its needles (sorted by time)."""

    video: str
    duration_s: float
    width: int
    height: int
    fps: float
    seed: int
    gop_s: float
    needles: tuple[Needle, ...]
    frame_code: bool = False
    scene_starts_s: tuple[float, ...] = field(default=())

    @property
    def frame_count(self) -> int:
        return round(self.duration_s * self.fps)

    def needle(self, needle_id: str) -> Needle:
        for n in self.needles:
            if n.id == needle_id:
                return n
        raise KeyError(needle_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": KEY_FORMAT,
            "video": self.video,
            "duration_s": self.duration_s,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "seed": self.seed,
            "gop_s": self.gop_s,
            "frame_code": self.frame_code,
            "scene_starts_s": list(self.scene_starts_s),
            "needles": [n.to_dict() for n in self.needles],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnswerKey:
        if not isinstance(d, dict):
            raise LongLensError("answer key must be a JSON object")
        fmt = d.get("format", KEY_FORMAT)
        if fmt != KEY_FORMAT:
            raise LongLensError(f"unknown answer key format {fmt!r} (expected {KEY_FORMAT!r})")
        try:
            key = cls(
                video=str(d["video"]),
                duration_s=float(d["duration_s"]),
                width=int(d["width"]),
                height=int(d["height"]),
                fps=float(d["fps"]),
                seed=int(d["seed"]),
                gop_s=float(d["gop_s"]),
                needles=tuple(Needle.from_dict(n) for n in d["needles"]),
                frame_code=bool(d.get("frame_code", False)),
                scene_starts_s=tuple(float(t) for t in d.get("scene_starts_s", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LongLensError(f"bad answer key: missing or malformed field {exc}") from None
        if not (math.isfinite(key.duration_s) and key.duration_s > 0 and key.fps > 0):
            raise LongLensError("bad answer key: duration_s and fps must be positive")
        return key

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> Path:
        """Write the key as JSON (atomically) and return the path."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(path)
        return path


def load_answer_key(path: str | Path) -> AnswerKey:
    """Read an answer key written by :meth:`AnswerKey.save` (or by ``make_video``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LongLensError(f"{path}: answer key not found") from None
    except OSError as exc:
        raise LongLensError(f"{path}: cannot read answer key ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LongLensError(f"{path}: answer key is not valid JSON (line {exc.lineno})") from None
    try:
        return AnswerKey.from_dict(data)
    except LongLensError as exc:
        raise LongLensError(f"{path}: {exc}") from None
