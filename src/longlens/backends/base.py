"""What every backend is: one narrow method, ``generate(messages, gen) -> Completion``.

Backends never see agents, benchmarks or questions; they get messages (prompts/messages.py) and decoding
settings, and return text. A conversation ending with an assistant message asks for a continuation of
that message (a forced prefix); `Completion.text` is what the model added after it.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from longlens.errors import LongLensError
from longlens.prompts.messages import Message, Video


class BackendError(LongLensError):
    """The model server cannot be used: unreachable, timing out, misconfigured. One line, with the fix."""


@dataclass(frozen=True)
class GenConfig:
    """Decoding settings. The defaults are greedy, as the reference inference (temperature 0.01, top-k 1)."""

    max_new_tokens: int = 2048
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = 0
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    """Generate exactly `max_new_tokens` (benchmarks with a fixed generation length)."""


@dataclass(frozen=True)
class Usage:
    """Token counts as the model saw them (None where a backend cannot tell)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    """Prompt tokens served from a kept KV cache instead of being recomputed."""
    visual_tokens: tuple[int, ...] | None = None
    """Tokens of each video or image in the prompt, in order, from the real processor output."""

    @property
    def text_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.visual_tokens is None:
            return None
        return self.prompt_tokens - sum(self.visual_tokens)


@dataclass(frozen=True)
class Completion:
    text: str
    """The generated text, after any forced prefix."""
    prefix: str = ""
    """The forced prefix the reply continues ("" if none)."""
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    model: str = ""
    finish_reason: str | None = None
    timings: dict = field(default_factory=dict)
    """Where the time went, in seconds, for backends that know (process_s, prefill_s, decode_s ...)."""
    guess: bool = False
    """The backend says its answer is a guess (the offline backend, when it found no evidence)."""
    retries: int = 0
    """Failed tries before this reply (a server's 5xx, timeouts, bodies that are no completion)."""
    retry_error: str | None = None
    """The last of those failures, in one line."""

    @property
    def full_text(self) -> str:
        return self.prefix + self.text


DEFAULT_GEN = GenConfig()


class Backend(ABC):
    """Base class. Subclasses implement `generate`; `agenerate` runs it in a worker thread unless overridden."""

    name = "backend"
    model = ""

    @abstractmethod
    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        """One reply to `messages`."""

    async def agenerate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        return await asyncio.to_thread(self.generate, messages, gen)

    def check(self) -> None:
        """Raise `BackendError` with a useful message if the backend cannot serve requests."""
        return None

    def prepare(self, media: Sequence[Video]) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Do ahead the work on `media` that the next calls carrying it would do (a server backend encodes the
        frames for the wire), so that a runner can overlap it with other questions' model time. Optional."""

    def describe(self) -> str:
        return f"{self.name}:{self.model}" if self.model else self.name
