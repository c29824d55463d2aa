"""Parsing a reasoning-model turn of the navigate agent (the reference's `extract_and_validate` and
`parse_function_call`: qiujihao19/LongVideo-R1@77c87ec eval/utils.py:42-69).

A turn holds ``<think>...</think>`` and then ``<tool>...</tool>`` or ``<answer>...</answer>``; the first
of each tag counts. A tool call is ``name(args)``: the arguments are read with `ast.literal_eval` only
(model text is never evaluated), so ``get_caption((3, 4))``, ``get_caption(3, 4)`` and
``video_qa((1, 2, 3), "what is on the table?")`` parse and an unquoted query does not. Parsing never
raises: what cannot be read becomes a `Call` with a `problem` the model can be shown.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

TOOLS = ("get_caption", "video_qa")


def first_tag(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
    return m.group(1).strip() if m else None


@dataclass(frozen=True)
class Call:
    text: str
    """The call as written inside <tool></tool>."""
    name: str | None = None
    ids: tuple | None = None
    """Segment ids as written (range is checked by the tree)."""
    query: str | None = None
    problem: str | None = None
    """Why the call cannot run (a sentence for the model), or None."""

    def to_dict(self) -> dict:
        return {"text": self.text, "name": self.name, "ids": list(self.ids) if self.ids is not None else None,
                "query": self.query, "problem": self.problem}


@dataclass(frozen=True)
class Turn:
    think: str | None
    tool: str | None
    answer: str | None

    @property
    def kind(self) -> str:
        if self.answer is not None:
            return "answer"
        if self.tool is not None:
            return "tool"
        return "invalid"


def parse_turn(text: str) -> Turn:
    return Turn(first_tag(text, "think"), first_tag(text, "tool"), first_tag(text, "answer"))


def _ids(value) -> tuple | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def parse_call(text: str) -> Call:
    m = re.match(r"(\w+)\((.*)\)", text.strip(), re.DOTALL)
    if not m:
        return Call(text, problem="a tool call looks like get_caption((h, m)) or video_qa((h, m, l), \"query\")")
    name, argstr = m.group(1), m.group(2).strip()
    if name not in TOOLS:
        return Call(text, name, problem=f"unknown tool {name!r}; the tools are get_caption and video_qa")
    try:
        args = ast.literal_eval(argstr) if argstr else ()
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        hint = ' (put the query in quotes)' if name == "video_qa" else ""
        return Call(text, name, problem=f"the arguments of {name} cannot be read{hint}")
    if name == "get_caption":
        ids = _ids(args)
        if ids is None and isinstance(args, tuple) and len(args) == 1:
            ids = _ids(args[0])
        if ids is None:
            return Call(text, name, problem="get_caption takes segment ids: get_caption((h, m)) or "
                                            "get_caption((h, m, l))")
        if len(ids) == 1:
            return Call(text, name, ids, problem="the high-level captions are already given; ask for "
                                                 "get_caption((h, m)) or get_caption((h, m, l))")
        if len(ids) > 3:
            return Call(text, name, ids, problem="get_caption takes 2 or 3 segment ids")
        return Call(text, name, ids)
    # video_qa((h, m, l), "query")
    if not (isinstance(args, tuple) and len(args) == 2 and isinstance(args[1], str)):
        return Call(text, name, problem='video_qa takes a leaf id and a quoted query: video_qa((h, m, l), "query")')
    ids = _ids(args[0])
    if ids is None or len(ids) != 3:
        return Call(text, name, ids, args[1], problem="video_qa needs a low-level id of 3 numbers (h, m, l)")
    return Call(text, name, ids, args[1])
