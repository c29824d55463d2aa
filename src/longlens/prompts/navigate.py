"""Prompts of the navigate agent (LongVideo-R1): the reasoning conversation, caption and video_qa requests.

All text comes from a navigate profile (``prompts/data/longvideo-r1.json``: the released model's strings,
byte for byte, with their origin). The reasoning model is text only and sees plain-string messages:

    system:    <profile.system with {width}>
    user:      "{question}\\n{A. ...}\\n...\\n" "\\n" "The total duration ..." "\\n"
               "High-level Caption 1 from a to b:<caption>" ...
    assistant: <think>...</think><tool>get_caption((2,3))</tool>
    user:      "Medium-level Caption from tool get_caption((2,3)). From a to b:<caption>"
    ...

(the reference evaluation sends the first message as a list of text parts, which vLLM joins with newlines;
we send the joined string). Times are shown as the reference shows them: a frame's index divided by the
average frame rate, rounded to 0.1 s; the duration is the last frame's time, ``(N-1)/fps``, as the reference
evaluation reads it from its caption file (its CLI prints ``N/fps``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longlens.prompts.messages import Image, Message, Text
from longlens.prompts.profiles import read_profile
from longlens.video import FrameSet

LEVELS = ("high", "medium", "low")


@dataclass(frozen=True)
class NavigateProfile:
    name: str
    origin: str
    system: str
    question_options: str
    question_open: str
    duration_line: str
    high_line: str
    medium_observation: str
    low_observation: str
    videoqa_observation: str
    last_round: str
    think_first: str
    invalid_action: str
    prefix: str
    caption_high: str
    caption_low: str
    caption_frame_label: str
    online_caption_high: str
    online_caption_low: str
    online_caption_frame_label: str
    videoqa_system: str
    videoqa_frame_label: str
    settings: dict


def load_navigate_profile(name_or_path: str = "longvideo-r1") -> NavigateProfile:
    data = read_profile(name_or_path, "navigate")
    names = NavigateProfile.__dataclass_fields__
    return NavigateProfile(**{k: data[k] for k in names})


def seconds(t: float) -> str:
    """A time as the reference prints it: ``round(t, 1)`` as a Python float (``12.0``, ``600.5``)."""
    return str(round(float(t), 1))


def seconds_np(t: float) -> str:
    """A time as the reference's video_qa prints it: its frame ids are a numpy array, so ``round`` is numpy's
    (scale by 10, round half to even), which differs from `seconds` on exact ties (frame 16500 at 29.97 fps is
    550.6 here, 550.5 there)."""
    return str(float(np.round(np.float64(t), 1)))


def _frame_times(frames: FrameSet, fps: float | None) -> list[float]:
    """The times the reference labels frames with: index / average rate (`fps` None: the frames' timestamps)."""
    return list(frames.times_s) if fps is None else [i / fps for i in frames.indices]


# ---------------------------------------------------------------- the reasoning conversation
def system_message(profile: NavigateProfile, width: int) -> Message:
    return Message.text("system", profile.system.format(width=width))


SPAN_REQUEST = " Give the answer as the time span of the event, [start, end] in seconds."
"""Ours, not the checkpoint's: LongVideo-R1 was not trained on temporal grounding, so a grounding question
(Charades-STA) is asked in plain words."""


def first_message(profile: NavigateProfile, question: str, options: Sequence[str], duration_s: float,
                  high: Sequence[tuple[float, float, str]], task: str = "choice") -> Message:
    """The first user message: question (+ ``A. ...`` option lines), duration, one line per high node.

    `duration_s` is what the duration line shows: the reference evaluation's is the last frame's time
    (`Tree.last_frame_s`). `high` holds (shown start, shown end, caption) per high-level node, in order;
    `task` "grounding" adds `SPAN_REQUEST` to the question.
    """
    if task == "grounding":
        question = question + SPAN_REQUEST
    if options:
        lines = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(options))
        head = profile.question_options.format(question=question, options=lines)
    else:
        head = profile.question_open.format(question=question)
    parts = [head, profile.duration_line.format(duration=seconds(duration_s))]
    parts += [profile.high_line.format(h=i + 1, start=seconds(a), end=seconds(b), caption=c)
              for i, (a, b, c) in enumerate(high)]
    return Message.text("user", "\n".join(parts))


def caption_observation(profile: NavigateProfile, node_id: tuple[int, ...], start: float, end: float,
                        caption: str) -> Message:
    template = profile.medium_observation if len(node_id) == 2 else profile.low_observation
    h, m, *rest = node_id
    text = template.format(h=h, m=m, l=rest[0] if rest else "", start=seconds(start), end=seconds(end),
                           caption=caption)
    return Message.text("user", text)


def videoqa_observation(profile: NavigateProfile, answer: str) -> Message:
    return Message.text("user", profile.videoqa_observation.format(answer=answer))


# ---------------------------------------------------------------- the vision roles
def caption_messages(profile: NavigateProfile, frames: FrameSet, *, level: int, words: int,
                     online: bool = False, fps: float | None = None) -> tuple[Message, ...]:
    """A caption request: the level's prompt as system, then ``"{t}s."`` and the image for each frame.

    With `fps` (the video's average rate) the times are the reference's, index / fps. The reference picks
    the leaf prompt for nodes of at most 32 frames, which with its settings is the low level; here the level
    decides.
    """
    if online:
        prompt = profile.online_caption_low if level == 3 else profile.online_caption_high
        prompt = prompt.format(num_frame=len(frames), num_words=words)
        label = profile.online_caption_frame_label
    else:
        prompt = profile.caption_low if level == 3 else profile.caption_high
        prompt = prompt.format(num_frame=len(frames), num_word=words)
        label = profile.caption_frame_label
    parts: list = []
    for pixels, t, shown in zip(frames.frames, frames.times_s, _frame_times(frames, fps), strict=True):
        parts += [Text(label.format(t=seconds(shown))), Image(pixels, float(t), frames.video_id)]
    return Message.text("system", prompt), Message("user", tuple(parts))


def videoqa_messages(profile: NavigateProfile, query: str, frames: FrameSet,
                     fps: float | None = None) -> tuple[Message, ...]:
    """A video_qa request: the query first, then ``"Video frame at {t} seconds:"`` and the image per frame
    (times as in `caption_messages`, rounded as `seconds_np`)."""
    parts: list = [Text(query)]
    for pixels, t, shown in zip(frames.frames, frames.times_s, _frame_times(frames, fps), strict=True):
        label = profile.videoqa_frame_label.format(t=seconds_np(shown))
        parts += [Text(label), Image(pixels, float(t), frames.video_id)]
    return Message.text("system", profile.videoqa_system), Message("user", tuple(parts))
