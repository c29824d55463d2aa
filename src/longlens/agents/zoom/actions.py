"""Parsing a model's reply into an action: the one parser every loop, scorer and reward uses.

The rules (the reference inference's reading,
HumanMLLM/LOVE-R1@aa1facb VLMEvalKit/vlmeval/vlm/qwen2_vl/model_sample_frame.py:534-561, with the choices left
open by the reference's two parsers made explicit: docs/reference-code.md#z4):

* Only the **last** ``\\boxed{...}`` counts; its content is found by brace matching (nested braces
  are kept; an unclosed box runs to the end of the reply), then stripped.
* Content starting with ``[`` is a zoom request. Two readings (`INTERVAL_RULES`):

  - ``reference`` (the checkpoints' inference code, model_sample_frame.py:558-561): the text between the
    first and last character split on commas, each piece read as a whole number (Python's ``int``), sorted;
    the two smallest are [start, end]. ``[12.5, 40]``, ``[2:00, 2:30]``, ``[90]`` and ``[B]`` cannot be read,
    which in the reference ends zooming (the next step is the forced answer).
  - ``lenient`` (an option, and the rule for the forced step and for scoring): exactly two times, each in
    seconds (``90``, ``90.5``, ``90s``) or clock form (``1:30``, ``0:01:30``); a single bracketed letter
    (``[B]``) is an answer; anything else in brackets is malformed.
* Any other content is an answer: its choice letter when it names one (``B``, ``(B)``, ``B.``, ``B. text``,
  ``Option B``), and its text either way.
* No box at all, or an empty one, is malformed.

Parsing never raises: a reply that cannot be read is a `Malformed` action, a model mistake that the
loop records. Whether an interval is usable (reversed, outside the video, too short) is for the loop's
interval policy to decide, not for the parser.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

BOX = "\\boxed{"


@dataclass(frozen=True)
class Answer:
    text: str
    """The boxed content, stripped."""
    choice: str | None = None
    """The option letter it names, if any (upper case)."""

    kind = "answer"


@dataclass(frozen=True)
class Zoom:
    start_s: float
    end_s: float
    """As written by the model: possibly reversed or outside the video (the policy checks)."""

    kind = "zoom"


@dataclass(frozen=True)
class Malformed:
    reason: str
    """What is wrong, in words a model could be shown."""

    kind = "malformed"


Action = Answer | Zoom | Malformed


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (brace-matched, stripped), or None if there is none."""
    at = text.rfind(BOX)
    if at < 0:
        return None
    tail = text[at + len(BOX) :]
    depth = 1
    for i, ch in enumerate(tail):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return tail[:i].strip()
    return tail.strip()


_UNIT = re.compile(r"\s*(?:s|sec|secs|second|seconds)$", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def parse_time(text: str) -> float | None:
    """Seconds from ``90``, ``90.5``, ``90s``, ``1:30``, ``01:02:03``; None if it is none of these."""
    t = _UNIT.sub("", text.strip())
    parts = t.split(":")
    if not 1 <= len(parts) <= 3 or not all(_NUMBER.fullmatch(p) for p in parts):
        return None
    if any("." in p for p in parts[:-1]) or any(float(p) >= 60 for p in parts[1:]):
        return None  # 1.5:30 and 1:75 are not clock times
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + float(p)
    return seconds if math.isfinite(seconds) else None  # 400 nines are no time


_LATEX_WRAPPER = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf)\s*\{([^{}]*)\}")
_BRACKET_LETTER = re.compile(r"^\[\s*\(?([A-Za-z])\)?\s*\]$")
_LONE_LETTER = re.compile(r"^\(?([A-Za-z])\)?[.:)]?$")
_LETTER_THEN_TEXT = re.compile(r"^(?:\(([A-Z])\)|([A-Z])[.:)])\s*\S")
_NAMED_LETTER = re.compile(r"^(?:the\s+)?(?:option|answer|choice)(?:\s+is)?\s*[:\-]?\s*\(?([A-Za-z])\)?(?:$|[\s.:),])",
                           re.IGNORECASE)


def parse_choice(text: str, letters: str = "ABCDEFGHIJ") -> str | None:
    """The option letter an answer names, else None.

    Recognised: a lone letter (``B``, ``b``, ``(B)``, ``B.``), a letter introducing text (``B. a cat``,
    ``(B) a cat``, ``B) a cat``), and a named letter (``Option B``, ``Answer: B``). A sentence that merely
    starts with a capital (``A cat``) is not a choice.
    """
    t = _LATEX_WRAPPER.sub(r"\1", text).strip()
    m = _LONE_LETTER.match(t) or _LETTER_THEN_TEXT.match(t) or _NAMED_LETTER.match(t)
    if not m:
        return None
    letter = next(g for g in m.groups() if g).upper()
    return letter if letter in letters else None


def parse_interval(content: str) -> tuple[float, float] | str:
    """(start, end) from ``[start, end]``, or a reason string when it cannot be read."""
    inner = content.strip()
    if not (inner.startswith("[") and inner.endswith("]")):
        return "an interval must look like [start, end]"
    parts = [p for p in re.split(r"\s*(?:,|;|\bto\b|–|—)\s*", inner[1:-1].strip()) if p != ""]
    if len(parts) != 2:
        return f"an interval needs exactly two times, got {len(parts)}"
    times = [parse_time(p) for p in parts]
    if None in times:
        return "interval times must be seconds (90 or 90.5) or clock times (1:30)"
    return times[0], times[1]


INTERVAL_RULES = ("reference", "lenient")


def parse_interval_reference(content: str) -> tuple[int, int] | str:
    """(start, end) as the reference reads ``[a, b, ...]`` (whole numbers, sorted, the two smallest), or a
    reason string where the reference's ``int()`` fails. Two numbers are returned as written, so that a reversed
    pair stays visible; the interval policy sorts them as the reference does."""
    pieces = content.strip()[1:-1].split(",")
    try:
        numbers = [int(p.strip()) for p in pieces]
    except ValueError:
        return "interval times must be whole seconds, as in [90, 120]"
    if len(numbers) < 2:
        return "an interval needs two times, as in [90, 120]"
    return (numbers[0], numbers[1]) if len(numbers) == 2 else tuple(sorted(numbers)[:2])


def parse_action(text: str, letters: str = "ABCDEFGHIJ", intervals: str = "lenient") -> Action:
    """Read the action of one model reply; never raises. `intervals`: one of `INTERVAL_RULES`."""
    if not isinstance(text, str):
        return Malformed("the reply is not text")
    content = last_boxed(text)
    if content is None:
        return Malformed("no \\boxed{} in the reply: answer with \\boxed{letter} or zoom with \\boxed{[start, end]}")
    if not content:
        return Malformed("the \\boxed{} is empty")
    if content.startswith("[") and intervals == "reference":
        got = parse_interval_reference(content)
        if isinstance(got, str):
            return Malformed(f"unreadable interval {content[:60]!r}: {got}")
        return Zoom(*got)
    if content.startswith("["):
        m = _BRACKET_LETTER.match(content)
        if m:
            letter = m.group(1).upper()
            return Answer(text=letter, choice=letter if letter in letters else None)
        got = parse_interval(content)
        if isinstance(got, str):
            return Malformed(f"unreadable interval {content[:60]!r}: {got}")
        return Zoom(*got)
    return Answer(text=content, choice=parse_choice(content, letters))
