"""Keep the process's memory flat over long runs: `bound_allocator`, called once at the start of the CLI.

Decoding churns through large blocks (full-size RGB frames of 1.2 MB at 854x480, converted and resized, from
several threads). glibc's malloc first serves such a block with its own ``mmap``, but each time one is freed it
raises its mmap threshold to that size (up to 32 MiB), so later ones come from the heaps of its arenas (up to 8
per core, one per thread), where freed memory is kept for reuse, scattered between live blocks, instead of
going back to the system: at concurrency 16 the RSS of an evaluation grew by ~170 MB per 10 two-minute videos
(docs/benchmarks.md, "Evaluation memory").

Modes, chosen with ``LONGLENS_MALLOC``:

* ``trim`` (the default): a daemon thread looks every second at the free memory the arenas hold
  (``mallinfo2``) and, when it is over `TRIM_KEEP` (256 MiB), gives every free page back to the system
  (``malloc_trim(0)``); glibc's fast reuse of freed blocks is kept below that. ``mallopt(M_ARENA_MAX)`` caps the
  arenas at 2 per core. An evaluation costs ~1% more CPU.
* ``mmap``: ``mallopt(M_MMAP_THRESHOLD, 128 KiB)``, which also stops the threshold from rising, so that every large
  block gets its own mapping, unmapped when freed; the same arena cap. Strictest, but every frame's memory is
  faulted in afresh: cold decoding costs ~15% more CPU.
* ``system`` (also ``off``, ``0``): glibc's malloc as it is.

Only on Linux with glibc; elsewhere (macOS, musl) nothing is done. Nothing is done either when the user chose
malloc's behaviour through the environment (glibc's ``MALLOC_*`` variables, ``GLIBC_TUNABLES`` with
``glibc.malloc``, or another allocator in ``LD_PRELOAD``).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import warnings

__all__ = ["ENV", "MMAP_THRESHOLD", "TRIM_INTERVAL_S", "TRIM_KEEP", "arena_max", "bound_allocator", "free_bytes"]

ENV = "LONGLENS_MALLOC"
"""The mode: ``trim`` (the default), ``mmap``, or ``system`` (also ``off``, ``0``: glibc's malloc as it is)."""
TRIM_INTERVAL_S = 1.0
"""``trim``: seconds between two looks at the arenas' free memory."""
TRIM_KEEP = 256 * 2**20
"""``trim``: free memory the arenas may keep for reuse; above it, it is all given back (``malloc_trim(0)``)."""
MMAP_THRESHOLD = 128 * 1024
"""``mmap``: blocks this size or larger get their own mapping, unmapped when freed (glibc's initial value, kept
fixed)."""
MODES = ("trim", "mmap")

# mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

_OFF = ("system", "off", "0", "no", "false")
_TUNING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
           "MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST")
_lock = threading.Lock()
_done: dict | None = None
_stop = threading.Event()
_trimmer: threading.Thread | None = None


def arena_max() -> int:
    """malloc arenas at most: 2 per core, at least 4 (glibc's default is 8 per core)."""
    return max(4, 2 * (os.cpu_count() or 1))


def _user_tuned(environ) -> str | None:
    """The environment variable through which the user already chose malloc's behaviour, if any: glibc's own
    variables and tunables, or another allocator preloaded (jemalloc, tcmalloc, mimalloc)."""
    for name in _TUNING:
        if name in environ:
            return name
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    if "malloc" in environ.get("LD_PRELOAD", ""):
        return "LD_PRELOAD"
    return None


def _glibc():
    """glibc's C library, or None (not Linux, or another libc such as musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others
            return None
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    if hasattr(libc, "mallinfo2"):  # glibc 2.33 and later
        libc.mallinfo2.restype = _Mallinfo2
    return libc


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def free_bytes(libc=None) -> int | None:
    """Bytes the arenas hold free (glibc's ``mallinfo2().fordblks``), or None where it cannot be told."""
    libc = libc or _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    return int(libc.mallinfo2().fordblks)


def bound_allocator(environ=None) -> dict:
    """Make glibc's malloc give freed frame memory back to the system (see the module's docstring).

    Returns what it did: ``{"applied": True, "mode": "trim", "arena_max": ..., "trim_interval_s": ...}`` (or
    ``"mode": "mmap"`` with ``"mmap_threshold"``), or ``{"applied": False, "reason": ...}``. Idempotent: the
    first call decides, later calls return its result. `environ` (default ``os.environ``) is read on the first
    call only.
    """
    global _done
    with _lock:
        if _done is None:
            _done = _apply(os.environ if environ is None else environ)
        return dict(_done)


def _apply(environ) -> dict:
    raw = environ.get(ENV, "")
    choice = raw.strip().lower() or "trim"
    if choice in _OFF:
        return {"applied": False, "reason": f"{ENV}={raw}"}
    if choice not in MODES:
        warnings.warn(f"{ENV}={raw!r} is not one of trim, mmap, system: malloc left as it is", stacklevel=3)
        return {"applied": False, "reason": f"{ENV}={raw}: not one of trim, mmap, system"}
    tuned = _user_tuned(environ)
    if tuned:
        return {"applied": False, "reason": f"{tuned} is set"}
    libc = _glibc()
    if libc is None:
        return {"applied": False, "reason": "not glibc"}
    done: dict = {"applied": True, "mode": choice}
    settings = {"arena_max": (_M_ARENA_MAX, arena_max())}
    if choice == "mmap":
        settings["mmap_threshold"] = (_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    for name, (param, value) in settings.items():
        if libc.mallopt(param, value) == 1:  # 1 on success, 0 on a refused value
            done[name] = value
        else:
            done.setdefault("refused", []).append(name)
    if choice == "trim":
        _start_trimmer(libc, TRIM_INTERVAL_S, TRIM_KEEP)
        done.update(trim_interval_s=TRIM_INTERVAL_S, trim_keep=TRIM_KEEP)
    return done


def _start_trimmer(libc, interval_s: float, keep: int) -> None:
    """A daemon thread that looks every `interval_s` at the arenas' free memory and gives it all back to the
    system when it is over `keep` bytes (or, where it cannot be told, every time)."""
    global _trimmer
    measured = hasattr(libc, "mallinfo2")

    def trim() -> None:
        while not _stop.wait(interval_s):
            if not measured or keep <= 0 or free_bytes(libc) > keep:
                libc.malloc_trim(0)

    _stop.clear()
    _trimmer = threading.Thread(target=trim, name="longlens-malloc-trim", daemon=True)
    _trimmer.start()


def _reset_for_tests() -> None:
    """Forget the first call's decision and stop the trimmer (what was set with mallopt stays)."""
    global _done, _trimmer
    with _lock:
        _done = None
        if _trimmer is not None:
            _stop.set()
            _trimmer.join()
            _trimmer = None
