"""Values computed from an array, kept by the array's identity (`ByArray`).

Decoded frames are never written to after decoding, so what is computed from one frame array (its encoding for the
wire, the offline backend's candidates) stays true while that same array is alive: every step of a question and
every question on a video hand the same array again.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class ByArray(Generic[T]):
    """The last `keep` values made from arrays, by array identity and a key. A hit needs the same live array, not
    a new one at a reused address. Callers that ask at once for the same value wait for the first one's instead of
    making it beside it (single flight); if the first fails, each of them meets the error itself."""

    def __init__(self, keep: int = 8):
        self.keep = keep
        self.items: OrderedDict[tuple, tuple[weakref.ref, T]] = OrderedDict()
        self.pending: dict[tuple, tuple[weakref.ref, threading.Event, list]] = {}
        self.lock = threading.Lock()

    def get(self, array: np.ndarray, key: Hashable, make: Callable[[], T]) -> T:
        full = (id(array), key)
        with self.lock:
            hit = self.items.get(full)
            if hit is not None and hit[0]() is array:
                self.items.move_to_end(full)
                return hit[1]
            job = self.pending.get(full)
            mine = job is None or job[0]() is not array
            if mine:
                job = (weakref.ref(array), threading.Event(), [])
                self.pending[full] = job
        if not mine:
            job[1].wait()
            if job[2]:
                return job[2][0]
            return make()  # the first caller failed: meet the error here too
        try:
            value = make()
            job[2].append(value)
        finally:
            with self.lock:
                if self.pending.get(full) is job:
                    del self.pending[full]
                if job[2]:
                    self.items[full] = (job[0], job[2][0])
                    while len(self.items) > self.keep:
                        self.items.popitem(last=False)
            job[1].set()
        return value
