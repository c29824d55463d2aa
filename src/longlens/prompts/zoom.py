"""Building the zoom agent's prompt: the only place its text is put together.

Template (c) of LOVE-R1 (the paper's name; the user turn of
HumanMLLM/LOVE-R1@aa1facb VLMEvalKit/vlmeval/vlm/qwen2_vl/model_sample_frame.py:478-511), the default and the one
the checkpoints know::

    system:    <profile.system>
    user:      "Full video [0, D]:" <fast view> ("Subset zoom-in video clip [a, b]:" <clip>)* <question><instruction>
    assistant: [forced prefix]

Clips are sorted by start time. Templates (a) and (b) (the paper's ablations) put the clips in place of
the fast frames they cover instead: (b) as separate videos in time order, (a) as one sequence of frames
(sent as images, since the frames differ in size).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longlens.prompts.messages import Image, Message, Text, Video
from longlens.prompts.profiles import ZoomProfile
from longlens.video import FrameSet

LETTERS = "ABCDEFGHIJ"
TEMPLATES = ("a", "b", "c")


@dataclass(frozen=True, eq=False)
class ClipView:
    """A zoom-in clip as shown to the model: its [start, end] in seconds and its frames."""

    start_s: float
    end_s: float
    frames: FrameSet


def format_question(profile: ZoomProfile, question: str, options: Sequence[str] = (), task: str = "choice",
                    style: str = "default") -> str:
    """The question text. Multiple choice: by default options as ``A. ...`` lines and the single-letter
    instruction, as the reference writes Video-MME; `style` names another way in the profile (the reference
    writes LVBench, MLVU and LongVideoBench questions each its own way). A grounding question (`task`
    "grounding") asks for ``[start_time, end_time]``."""
    if task == "grounding":
        return question + profile.span_suffix
    if not options:
        return question + profile.open_suffix
    if len(options) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options are supported, got {len(options)}")
    texts = unlettered(options)
    if style == "default":
        lines = "".join(f"{LETTERS[i]}. {opt}\n" for i, opt in enumerate(texts))
        return f"{question}\n{lines}{profile.choice_suffix}"
    if style not in profile.question_styles:
        raise ValueError(f"profile {profile.name!r} has no question style {style!r}; it has: default, "
                         + ", ".join(profile.question_styles))
    q = profile.question_styles[style]
    lines = "\n".join(q["option"].format(letter=LETTERS[i], text=opt) for i, opt in enumerate(texts))
    return q["template"].format(question=question, options=lines) + q["suffix"]


def unlettered(options: Sequence[str]) -> list[str]:
    """The options without their own letters when every one carries its letter in order ("A. Red", "(B) Blue",
    "C) Green", "D: Grey"), so that they are not lettered twice ("A. A. Red"); otherwise unchanged."""
    found = [_LETTERED.match(opt) for opt in options]
    if options and all(m and m.group("letter") == LETTERS[i] for i, m in enumerate(found)):
        return [m.group("text") for m in found]
    return list(options)


_LETTERED = re.compile(r"^\s*\(?(?P<letter>[A-Z])(?:\)|\.|:)\s+(?P<text>.*)$", re.S)


def _subset(fs: FrameSet, keep: np.ndarray) -> FrameSet:
    idx = np.nonzero(keep)[0]
    return FrameSet(
        frames=fs.frames[idx],
        indices=tuple(fs.indices[i] for i in idx),
        times_s=tuple(fs.times_s[i] for i in idx),
        plan=fs.plan,
        video_path=fs.video_path,
        video_id=fs.video_id,
    )


def zoom_messages(
    profile: ZoomProfile,
    question_text: str,
    duration_s: float,
    fast: FrameSet,
    clips: Sequence[ClipView] = (),
    *,
    template: str = "c",
    prefix: str | None = None,
    instruction: bool = True,
) -> tuple[Message, ...]:
    """The messages of one zoom step. `question_text` comes from `format_question`."""
    clips = sorted(clips, key=lambda c: (c.start_s, c.end_s))
    parts: list = []
    if template == "c":
        parts += [Text(profile.full_video_label % (0, int(duration_s))), Video(fast, "fast")]
        for c in clips:
            parts += [Text(profile.clip_label % (int(c.start_s), int(c.end_s))), Video(c.frames, _label(c))]
    elif template in ("a", "b"):
        parts += _replaced(profile, duration_s, fast, clips, as_images=template == "a")
    else:
        raise ValueError(f"unknown template {template!r}; use one of {', '.join(TEMPLATES)}")
    parts.append(Text(question_text + (profile.instruction if instruction else "")))
    messages = [Message.text("system", profile.system), Message("user", tuple(parts))]
    if prefix:
        messages.append(Message.text("assistant", prefix))
    return tuple(messages)


def _label(c: ClipView) -> str:
    return f"clip [{int(c.start_s)}, {int(c.end_s)}]"


def _replaced(profile, duration_s, fast: FrameSet, clips: Sequence[ClipView], *, as_images: bool) -> list:
    times = np.asarray(fast.times_s)
    pieces: list[tuple[float, FrameSet, str]] = []
    covered = np.zeros(len(times), dtype=bool)
    for c in clips:
        covered |= (times >= c.start_s) & (times <= c.end_s)
        pieces.append((c.start_s, c.frames, _label(c)))
    t = 0
    while t < len(times):  # runs of fast frames not covered by any clip
        if covered[t]:
            t += 1
            continue
        u = t
        while u < len(times) and not covered[u]:
            u += 1
        keep = np.zeros(len(times), dtype=bool)
        keep[t:u] = True
        pieces.append((float(times[t]), _subset(fast, keep), "fast"))
        t = u
    pieces.sort(key=lambda p: p[0])
    parts: list = [Text(profile.full_video_label % (0, int(duration_s)))]
    for _, fs, label in pieces:
        if as_images:
            parts += [Image(f, t, fs.video_id) for f, t in zip(fs.frames, fs.times_s, strict=True)]
        else:
            parts.append(Video(fs, label))
    return parts
