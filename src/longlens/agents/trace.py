"""The trace: a frozen, versioned, JSON-serialisable record of one question.

Each `Step` keeps what the model was shown (messages as references: video id, frame times, sizes; never
pixels), the raw reply, the parsed action (``{"kind": ...}``, the parser's fields), what came of it as data
(`Outcome`, and for a zoom that ended zooming the `Stop` reason), the clip it added, its visual tokens, text
tokens when the backend reports them, latency and any error (a model mistake is data, recorded here).
`Totals` sums the costs the same way for both agents, so nothing downstream asks which agent ran. `note` is
for people: nothing reads it back.

Version 2 added `Step.outcome`, `Step.stop`, the tool's node ids and `Totals`; version 1 traces are read
(their outcomes recovered from their notes, once, here).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from longlens.jsonl import dumps, write_atomic

TRACE_VERSION = 2
READS = (1, 2)


class Outcome(StrEnum):
    """What came of a step (None: an answer, or nothing to say)."""

    CLIP_ADDED = "clip_added"
    """zoom: the clip (after the interval policy) joins the next prompt."""
    ZOOM_STOPPED = "zoom_stopped"
    """zoom: no clip added and the next step is the forced answer; `Step.stop` says why."""
    WHOLE_VIDEO = "whole_video"
    """zoom: the forced step had no accepted clip and showed the whole video as the slow clip."""
    TOOL_RAN = "tool_ran"
    """navigate: the call ran; its result is the next message."""
    FED_BACK = "fed_back"
    """navigate: an invalid turn stayed in the conversation, answered by feedback."""
    RE_ASKED = "re_asked"
    """navigate: an invalid turn was dropped and the same conversation asked again."""
    FAILED = "failed"
    """navigate: a caption or video_qa server failed on this step's call; the question ended here."""


class Stop(StrEnum):
    """Why a zoom step ended zooming."""

    NO_ACTION = "no_action"
    """No answer and no readable interval."""
    REVERSED = "reversed"
    """[end, start] with the policy's swap_reversed off."""
    OUTSIDE = "outside"
    """Wholly outside the video, with the policy's reject_outside on."""
    TOO_SHORT = "too_short"
    """Shorter than the policy's min_span_s after padding."""
    OVERLAP = "overlap"
    """Overlaps a clip already shown by more than the policy's max_overlap."""


@dataclass(frozen=True)
class Step:
    index: int
    """1-based."""
    prompt: list[dict]
    forced_prefix: str | None
    completion: str
    """The model's text after the forced prefix."""
    action: dict
    """The parsed action: {"kind": "answer"|"zoom"|"malformed", ...}."""
    clip_added: list[float] | None = None
    """[start, end] of the clip this step added to the next prompt, after the interval policy."""
    visual_tokens: int = 0
    frames_shown: int = 0
    frames_decoded: int = 0
    """Frames decoded to build this step's prompt (0 when they came from memory or the cache)."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    """Prompt tokens the backend served from a kept KV cache (the hf backend's prefix reuse)."""
    media_tokens: list[int] | None = None
    """Tokens of each video/image as the model's processor counted them, when the backend reports it (the hf
    backend; a vLLM server, from the prompt's token ids)."""
    expected_visual_tokens: int | None = None
    """LongLens's own count of the prompt's visual tokens (frames x grid), beside `media_tokens`: a difference
    means the model saw other frames or sizes than were sent (counted in ``Totals.token_mismatches``)."""
    timings: dict | None = None
    """The backend's own breakdown of `latency_s` (process_s, prefill_s, decode_s ...), when it has one."""
    latency_s: float = 0.0
    error: str | None = None
    note: str | None = None
    """What the interval policy did (padded, widened, stopped zooming ...)."""
    tool: dict | None = None
    """Navigate agent: the tool call of this round (name, node ``ids`` and its key, query), its result, cache hit
    or miss, role and latency."""
    guess: bool = False
    """The backend said this step's answer is a guess (`Completion.guess`)."""
    retries: int = 0
    """Failed tries of this step's model call before its reply (a video_qa call's are in `tool`)."""
    retry_error: str | None = None
    """The last failure that was retried."""
    outcome: str | None = None
    """An `Outcome` (stored as its value)."""
    stop: str | None = None
    """A `Stop`, when `outcome` is zoom_stopped."""

    def to_messages(self) -> list[dict]:
        """The chat messages this step added to a navigate conversation, as text: what it was shown that earlier
        steps were not, then its reply, unless the reply left the conversation (re-asked, or its call failed).
        A navigate trace's conversation is the concatenation over its steps."""
        shown = [{"role": ref["role"], "content": "".join(p.get("text", "") for p in ref["content"]
                                                          if p["type"] == "text")} for ref in self.prompt]
        if self.outcome in (Outcome.RE_ASKED, Outcome.FAILED):
            return shown
        return [*shown, {"role": "assistant", "content": self.completion}]


@dataclass(frozen=True)
class Totals:
    """The costs of one question, summed over its steps; both agents fill every field."""

    steps: int = 0
    """Generations of the agent's own model (zoom steps, navigate rounds)."""
    calls: dict = field(default_factory=dict)
    """Model calls by role: ``{"vlm": 3}`` for zoom, ``{"reasoning": 9, "caption": 4, "videoqa": 1}`` for
    navigate (captions made; those read from the store are `caption_reused`)."""
    role_s: dict = field(default_factory=dict)
    """Seconds of model calls by role (the same roles as `calls`)."""
    frames_decoded: int = 0
    visual_tokens: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    model_s: float = 0.0
    """All roles' model seconds."""
    wall_s: float = 0.0
    errors: int = 0
    """Steps with a model mistake (navigate: invalid turns)."""
    retries: int = 0
    guessed: bool = False
    token_mismatches: int = 0
    caption_reused: int = 0
    """Captions read from the caption store instead of made."""

    @classmethod
    def from_dict(cls, d: dict) -> Totals:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class Trace:
    question: str
    options: list[str]
    video: dict
    """path, id, duration_s."""
    agent: str
    backend: str
    config: dict
    steps: list[Step]
    answer: str
    """The final boxed content ('' if the model gave none)."""
    choice: str | None
    """The option letter of the answer, for multiple-choice questions."""
    totals: Totals
    error: str | None = None
    version: int = TRACE_VERSION
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = None) -> str:
        return dumps(self.to_dict(), indent=indent)

    def save(self, path: str | Path) -> Path:
        """Written atomically (a crash leaves the old file or none, never a part); text the model wrote that
        UTF-8 cannot hold (lone surrogates) is kept as JSON escapes."""
        return write_atomic(path, self.to_json(indent=1))

    @classmethod
    def from_dict(cls, data: dict) -> Trace:
        if data.get("version") not in READS:
            raise ValueError(f"trace version {data.get('version')} is not one this LongLens reads "
                             f"({', '.join(map(str, READS))})")
        if data["version"] == 1:
            data = _from_v1(data)
        steps = [Step(**{k: v for k, v in s.items() if k in _STEP_FIELDS}) for s in data["steps"]]
        return cls(**{**data, "steps": steps, "totals": Totals.from_dict(data["totals"])})

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


_STEP_FIELDS = set(Step.__dataclass_fields__)

_V1_STOPS = (("no usable action", Stop.NO_ACTION), ("reversed interval", Stop.REVERSED),
             ("outside the video", Stop.OUTSIDE), ("shorter than", Stop.TOO_SHORT), ("overlaps", Stop.OVERLAP))


def _v1_outcome(step: dict, last: bool, trace_error: str | None) -> tuple[str | None, str | None]:
    """A version 1 step's outcome, from the notes version 1 wrote (the only place notes are read)."""
    note = step.get("note") or ""
    if step.get("tool") is not None:
        return Outcome.TOOL_RAN, None
    if note.startswith("re-asked"):
        return Outcome.RE_ASKED, None
    if note.startswith("fed back"):
        return Outcome.FED_BACK, None
    if last and trace_error is not None and step.get("error") == trace_error:
        return Outcome.FAILED, None
    if note.startswith("no clip accepted"):
        return Outcome.WHOLE_VIDEO, None
    if step.get("clip_added"):
        return Outcome.CLIP_ADDED, None
    if "zooming stops" in note or "no usable action" in note:
        return Outcome.ZOOM_STOPPED, next((s for text, s in _V1_STOPS if text in note), None)
    return None, None


def _from_v1(data: dict) -> dict:
    steps = []
    for k, s in enumerate(data["steps"]):
        outcome, stop = _v1_outcome(s, k == len(data["steps"]) - 1, data.get("error"))
        tool = s.get("tool")
        if tool is not None and "ids" not in tool:
            tool = {**tool, "ids": [int(i) for i in str(tool["node"]).split(",")]}
        steps.append({**s, "outcome": outcome, "stop": stop, "tool": tool})
    t = dict(data["totals"])
    if data.get("agent") == "navigate":
        t["calls"] = {"reasoning": t.get("rounds", t.get("steps", 0)), "caption": t.get("caption_made", 0),
                      "videoqa": t.get("videoqa", 0)}
        t["role_s"] = {"reasoning": t.get("reasoning_s", 0.0), "caption": t.get("caption_s", 0.0),
                       "videoqa": t.get("videoqa_s", 0.0)}
    else:
        t["calls"] = {"vlm": t.get("steps", 0)}
        t["role_s"] = {"vlm": t.get("model_s", 0.0)}
    return {**data, "version": TRACE_VERSION, "steps": steps, "totals": t}


def totals(steps: list[Step], wall_s: float, *, calls: dict | None = None, role_s: dict | None = None,
           caption_reused: int = 0) -> Totals:
    """The `Totals` of `steps`. `calls` and `role_s` default to one role, ``vlm``, that made every step."""
    model_s = round(sum(s.latency_s for s in steps), 3)
    role_s = {k: round(v, 3) for k, v in (role_s or {"vlm": model_s}).items()}
    return Totals(
        steps=len(steps),
        calls=dict(calls) if calls is not None else {"vlm": len(steps)},
        role_s=role_s,
        frames_decoded=sum(s.frames_decoded for s in steps),
        visual_tokens=sum(s.visual_tokens for s in steps),
        prompt_tokens=sum(s.prompt_tokens or 0 for s in steps) or None,
        completion_tokens=sum(s.completion_tokens or 0 for s in steps) or None,
        cached_tokens=sum(s.cached_tokens or 0 for s in steps) or None,
        model_s=round(sum(role_s.values()), 3),
        wall_s=round(wall_s, 3),
        errors=sum(1 for s in steps if s.error),
        retries=sum(s.retries + int((s.tool or {}).get("retries") or 0) for s in steps),
        guessed=any(s.guess for s in steps if s.action.get("kind") == "answer"),
        token_mismatches=sum(1 for s in steps if s.media_tokens is not None and s.expected_visual_tokens is not None
                             and sum(s.media_tokens) != s.expected_visual_tokens),
        caption_reused=caption_reused,
    )
