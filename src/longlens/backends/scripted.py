"""A backend that replies from a script: for tests, dry runs and replaying recorded replies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from longlens.backends.base import DEFAULT_GEN, Backend, BackendError, Completion, GenConfig
from longlens.prompts.messages import Message, forced_prefix

Reply = str | Callable[[tuple[Message, ...]], str]


class ScriptedBackend(Backend):
    """Returns the scripted replies in order (a string, or a function of the messages).

    If the conversation forces a prefix and a scripted reply starts with it, the prefix is not repeated.
    Every request is kept in `requests` (message references, never pixels).
    """

    name = "scripted"

    def __init__(self, replies: Iterable[Reply], model: str = "scripted"):
        self.replies = list(replies)
        self.model = model
        self.requests: list[dict] = []
        self._lock = threading.Lock()  # questions in flight (eval --concurrency) take replies one at a time

    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        t0 = time.perf_counter()
        with self._lock:
            self.requests.append({"messages": [m.to_ref() for m in messages], "max_new_tokens": gen.max_new_tokens})
            n = len(self.requests)
        if n > len(self.replies):
            raise BackendError(f"the script has {len(self.replies)} replies and a request #{n} came")
        reply = self.replies[n - 1]
        text = reply(messages) if callable(reply) else reply
        prefix = forced_prefix(messages) or ""
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :]
        return Completion(text=text, prefix=prefix, latency_s=time.perf_counter() - t0, model=self.model,
                          finish_reason="stop")
