"""The one internal message format. Backends render it to their wire format; traces record it.

A message is a role and a tuple of parts: text, a video (a `FrameSet` with the true time of every frame),
or an image. A conversation that ends with an assistant message asks the backend to continue that
message: its text is a forced prefix of the reply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from longlens.video import FrameSet


@dataclass(frozen=True)
class Text:
    text: str

    def to_ref(self) -> dict:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True, eq=False)
class Video:
    frames: FrameSet
    label: str = ""
    """What the video is, for traces: "fast" or "clip [s, e]"."""

    def to_ref(self) -> dict:
        fs = self.frames
        t, h, w, _ = fs.frames.shape
        return {
            "type": "video",
            "video_id": fs.video_id,
            "label": self.label,
            "n_frames": t,
            "height": h,
            "width": w,
            "sample_fps": fs.plan.sample_fps,
            "times_s": [round(x, 3) for x in fs.times_s],
            "visual_tokens": fs.visual_tokens,
        }


@dataclass(frozen=True, eq=False)
class Image:
    pixels: np.ndarray
    """H x W x 3 uint8 RGB."""
    time_s: float | None = None
    video_id: str = ""

    def to_ref(self) -> dict:
        h, w = self.pixels.shape[:2]
        return {"type": "image", "video_id": self.video_id, "time_s": self.time_s, "height": h, "width": w}


Part = Text | Video | Image


@dataclass(frozen=True)
class Message:
    role: str
    """"system", "user" or "assistant"."""
    parts: tuple[Part, ...]

    def __post_init__(self):
        if self.role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown role {self.role!r}")

    @classmethod
    def text(cls, role: str, text: str) -> Message:
        return cls(role, (Text(text),))

    @property
    def plain_text(self) -> str:
        """The text parts joined, as a chat template joins them (no separators)."""
        return "".join(p.text for p in self.parts if isinstance(p, Text))

    def to_ref(self) -> dict:
        return {"role": self.role, "content": [p.to_ref() for p in self.parts]}


def forced_prefix(messages: tuple[Message, ...]) -> str | None:
    """The assistant prefix a conversation asks to continue, or None."""
    if messages and messages[-1].role == "assistant":
        return messages[-1].plain_text
    return None
