"""The trace: a frozen, versioned, JSON-serialisable record of one question.

Each `Step` keeps what the model was shown (messages as references: video id, frame times, sizes; never
pixels), the raw reply, the parsed action, the clip it added, its visual tokens, text tokens when the
backend reports them, latency and any error (a model mistake is data, recorded here). `Trace.totals`
sums the costs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from longlens.jsonl import dumps, write_atomic

TRACE_VERSION = 1


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
    means the model saw other frames or sizes than were sent (counted in ``totals["token_mismatches"]``)."""
    timings: dict | None = None
    """The backend's own breakdown of `latency_s` (process_s, prefill_s, decode_s ...), when it has one."""
    latency_s: float = 0.0
    error: str | None = None
    note: str | None = None
    """What the interval policy did (padded, widened, stopped zooming ...)."""
    tool: dict | None = None
    """Navigate agent: the tool call of this round, its result, cache hit or miss, role and latency."""
    guess: bool = False
    """The backend said this step's answer is a guess (`Completion.guess`)."""
    retries: int = 0
    """Failed tries of this step's model call before its reply (a video_qa call's are in `tool`)."""
    retry_error: str | None = None
    """The last failure that was retried."""


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
    totals: dict
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
        if data.get("version") != TRACE_VERSION:
            raise ValueError(f"trace version {data.get('version')} is not {TRACE_VERSION}")
        steps = [Step(**{k: v for k, v in s.items() if k in _STEP_FIELDS}) for s in data["steps"]]
        return cls(**{**data, "steps": steps})

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


_STEP_FIELDS = set(Step.__dataclass_fields__)


def totals(steps: list[Step], wall_s: float) -> dict:
    return {
        "steps": len(steps),
        "frames_decoded": sum(s.frames_decoded for s in steps),
        "visual_tokens": sum(s.visual_tokens for s in steps),
        "prompt_tokens": sum(s.prompt_tokens or 0 for s in steps) or None,
        "completion_tokens": sum(s.completion_tokens or 0 for s in steps) or None,
        "cached_tokens": sum(s.cached_tokens or 0 for s in steps) or None,
        "model_s": round(sum(s.latency_s for s in steps), 3),
        "wall_s": round(wall_s, 3),
        "errors": sum(1 for s in steps if s.error),
        "retries": sum(s.retries + int((s.tool or {}).get("retries") or 0) for s in steps),
        "guessed": any(s.guess for s in steps if s.action.get("kind") == "answer"),
        "token_mismatches": sum(1 for s in steps if s.media_tokens is not None and s.expected_visual_tokens is not None
                                and sum(s.media_tokens) != s.expected_visual_tokens),
    }
