"""Time spans: reading them from replies and traces, and comparing them with annotated spans.

A span is ``(start, end)`` in seconds. Every measure here is a fraction in [0, 1] (never a percentage).

* `parse_span`: ours, for any reply (each benchmark's official reader lives in its module):
  ``\\boxed{[s, e]}``, ``[s, e]``, "from 12.5 to 20 seconds", "12.5 - 20",
  clock times; fractions of the video when every end is <= 1 and the duration is known.
* `iou`, `iop`, `max_over`, `union_iou`: the overlap measures of Charades-STA, NExT-GQA and CG-Bench (from
  `longlens.spans`, the ground floor, where the agents and the rewards find them too).
* `predicted_span`: the span an agent's trace predicts.
"""

from __future__ import annotations

import re

from longlens.agents.zoom.actions import last_boxed, parse_interval, parse_time
from longlens.spans import Span, iop, iou, max_over, merge, ordered, union_iou  # noqa: F401 (the measures, here too)

# ---------------------------------------------------------------- our reader
_TIME = r"\d++(?::\d{1,2}){0,2}(?:\.\d++)?(?:\s*(?:seconds|second|secs|sec|s)\b)?"  # possessive: linear on digit runs
_RANGE = re.compile(rf"({_TIME})\s*(?:-|–|—|~|\bto\b|\buntil\b|\band\b)\s*({_TIME})", re.IGNORECASE)
_BRACKET = re.compile(r"\[[^\[\]]*\]")


def parse_span(text: str, duration_s: float | None = None) -> Span | None:
    """The span a reply names (the boxed one first, else the last one written), or None.

    Ends are seconds or clock times; when both are <= 1 and `duration_s` is given they are fractions of
    the video and are scaled by it. Reversed ends are swapped."""
    if not text:
        return None
    boxed = last_boxed(text)
    for chunk in ([boxed] if boxed else []) + [text]:
        span = _last_span(chunk)
        if span is not None:
            a, b = span
            if duration_s and a <= 1 and b <= 1:
                a, b = a * duration_s, b * duration_s
            return ordered(a, b)
    return None


def _last_span(text: str) -> Span | None:
    for m in reversed(list(_BRACKET.finditer(text))):
        got = parse_interval(m.group(0))
        if not isinstance(got, str):
            return got
    for m in reversed(list(_RANGE.finditer(text))):
        a, b = parse_time(m[1]), parse_time(m[2])
        if a is not None and b is not None:
            return a, b
    return None


# ---------------------------------------------------------------- traces
def predicted_span(trace) -> Span | None:
    """The span a trace predicts: its final answer read by `parse_span`; else the last interval it asked to
    zoom into (the forced answer step included: for the zoom agent that clip is its evidence); else None."""
    duration = (trace.video or {}).get("duration_s")
    span = parse_span(trace.answer or "", duration)
    if span is not None:
        return span
    for step in reversed(trace.steps):
        action = step.action or {}
        if action.get("kind") == "zoom" and action.get("start_s") is not None and action.get("end_s") is not None:
            return ordered(float(action["start_s"]), float(action["end_s"]))
    return None
