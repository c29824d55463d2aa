"""Frame sets shared by the questions in flight on the same video (`SharedFrames`)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from longlens.video import FrameSet


class _Shared:
    """One entry of `SharedFrames`."""

    __slots__ = ("lock", "frames", "holders", "charged")

    def __init__(self):
        self.lock = threading.Lock()
        self.frames: FrameSet | None = None
        self.holders = 0
        """Questions holding the key now."""
        self.charged = False
        """Whether a question has been charged for making the frames."""


class SharedFrames:
    """Frame sets by key, made once for all the questions that hold the key at the same time.

    A question holds the keys it asked for until it releases them; the `keep` most recently released
    entries stay in memory for the next questions (a runner orders questions by video), older ones go.
    Thread-safe; a maker that fails leaves nothing behind (the next question tries again).
    """

    def __init__(self, keep: int = 2):
        self.keep = keep
        self._lock = threading.Lock()
        self._entries: dict = {}  # key -> _Shared
        self._released: OrderedDict = OrderedDict()

    def get(self, key, make, held: set, *, charge: bool = True) -> tuple[FrameSet, bool]:
        """(the frames of `key`, True if this call is charged for making them: the first call with `charge`,
        so frames made ahead by a prefetch count for the first question that uses them); `key` joins `held`."""
        with self._lock:
            entry = self._entries.setdefault(key, _Shared())
            if key not in held:
                held.add(key)
                entry.holders += 1
                self._released.pop(key, None)
        with entry.lock:
            if entry.frames is None:
                entry.frames = make()
            first = charge and not entry.charged
            entry.charged = entry.charged or charge
            return entry.frames, first

    def release(self, held: set) -> None:
        with self._lock:
            for key in held:
                entry = self._entries[key]
                entry.holders -= 1
                if entry.holders == 0:
                    self._released[key] = None
            held.clear()
            while len(self._released) > self.keep:
                del self._entries[self._released.popitem(last=False)[0]]
