"""One backend over several: calls are spread over servers that serve the same model.

``PoolBackend([b1, b2, ...], balance="least-busy")`` sends each call to the member with the fewest calls
in flight (ties go round-robin, so an idle pool still spreads its load), or with ``round-robin`` to the
members in turn. It is thread-safe and works for `generate` and `agenerate` alike. `longlens eval
--endpoints URL1,URL2` builds one over OpenAI-compatible servers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from longlens.backends.base import DEFAULT_GEN, Backend, BackendError, Completion, GenConfig
from longlens.prompts.messages import Message

BALANCE = ("least-busy", "round-robin")


class PoolBackend(Backend):
    name = "pool"

    def __init__(self, members: Sequence[Backend], balance: str = "least-busy", model_flag: str = "--model"):
        if not members:
            raise BackendError("a backend pool needs at least one member; give one or more URLs to --endpoints")
        if balance not in BALANCE:
            raise BackendError(f"unknown balance {balance!r}; use one of {', '.join(BALANCE)}")
        self.members = list(members)
        self.balance = balance
        self.model_flag = model_flag
        self.busy = [0] * len(self.members)
        """Calls in flight per member."""
        self.calls = [0] * len(self.members)
        """Calls started per member."""
        self._next = 0
        self._lock = threading.Lock()

    @property
    def model(self) -> str:  # the members serve one model; the first one names it
        return self.members[0].model

    @property
    def frame_factor(self) -> int | None:
        return getattr(self.members[0], "frame_factor", None)

    def _take(self) -> int:
        with self._lock:
            n = len(self.members)
            order = [(self._next + k) % n for k in range(n)]
            i = min(order, key=lambda j: self.busy[j]) if self.balance == "least-busy" else order[0]
            self._next = (i + 1) % n
            self.busy[i] += 1
            self.calls[i] += 1
            return i

    def _give(self, i: int) -> None:
        with self._lock:
            self.busy[i] -= 1

    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        i = self._take()
        try:
            return self.members[i].generate(messages, gen)
        finally:
            self._give(i)

    async def agenerate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        i = self._take()
        try:
            return await self.members[i].agenerate(messages, gen)
        finally:
            self._give(i)

    def prepare(self, media) -> None:
        for member in self.members:  # members share the cache of encoded videos: the first encodes, others find it
            member.prepare(media)

    def check(self) -> None:
        for member in self.members:
            member.check()
        models = {m.model for m in self.members}
        if len(models) > 1:
            raise BackendError(f"the endpoints serve different models ({', '.join(sorted(models))}); "
                               f"name one with {self.model_flag}")

    def describe(self) -> str:
        return f"pool[{', '.join(m.describe() for m in self.members)}]"
