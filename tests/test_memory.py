"""`longlens.memory.bound_allocator`: what it does, when it does nothing, and that it is called by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from longlens import memory

GLIBC = memory._glibc() is not None
MALLINFO2 = GLIBC and hasattr(memory._glibc(), "mallinfo2")


@pytest.fixture(autouse=True)
def fresh():
    memory._reset_for_tests()
    yield
    memory._reset_for_tests()


def run_py(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k not in ("LONGLENS_MALLOC", "GLIBC_TUNABLES")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("value", ["system", "SYSTEM", "off", "0"])
def test_disable_variable(value):
    assert memory.bound_allocator({"LONGLENS_MALLOC": value}) == {"applied": False,
                                                                  "reason": f"LONGLENS_MALLOC={value}"}


@pytest.mark.parametrize("env", [{"MALLOC_ARENA_MAX": "2"}, {"MALLOC_MMAP_THRESHOLD_": "65536"},
                                 {"MALLOC_TRIM_THRESHOLD_": "0"}, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"},
                                 {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}])
def test_user_settings_win(env):
    done = memory.bound_allocator(env)
    assert done["applied"] is False and next(iter(env)) in done["reason"]


def test_idempotent_first_call_decides():
    first = memory.bound_allocator({"LONGLENS_MALLOC": "system"})
    assert memory.bound_allocator({}) == first  # not applied later behind the user's back
    first["applied"] = "changed"  # a copy is returned
    assert memory.bound_allocator({})["applied"] is False


def test_unknown_value_leaves_malloc_alone():
    with pytest.warns(UserWarning, match="LONGLENS_MALLOC='jemalloc'"):
        done = memory.bound_allocator({"LONGLENS_MALLOC": "jemalloc"})
    assert done["applied"] is False


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_trim_by_default():
    done = memory.bound_allocator({})
    assert done == {"applied": True, "mode": "trim", "arena_max": memory.arena_max(),
                    "trim_interval_s": memory.TRIM_INTERVAL_S, "trim_keep": memory.TRIM_KEEP}
    trimmers = [t for t in threading.enumerate() if t.name == "longlens-malloc-trim"]
    assert len(trimmers) == 1 and trimmers[0].daemon
    assert memory.bound_allocator({}) == done  # no second thread
    assert [t.name for t in threading.enumerate()].count("longlens-malloc-trim") == 1
    memory._reset_for_tests()
    assert "longlens-malloc-trim" not in [t.name for t in threading.enumerate()]


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_mmap_mode():
    done = memory.bound_allocator({"LONGLENS_MALLOC": "mmap"})
    assert done == {"applied": True, "mode": "mmap", "arena_max": memory.arena_max(),
                    "mmap_threshold": memory.MMAP_THRESHOLD}
    assert "longlens-malloc-trim" not in [t.name for t in threading.enumerate()]


def test_not_glibc(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.bound_allocator({}) == {"applied": False, "reason": "not glibc"}


def test_other_platforms_do_nothing(monkeypatch):
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory._glibc() is None


FREED = """
    import ctypes, re, time
    from pathlib import Path
    from longlens import memory
    memory.TRIM_KEEP = KEEP_BYTES
    print(memory.bound_allocator()["applied"])
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    rss = lambda: int(re.search(r"VmRSS:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) // 1024
    p = libc.malloc(8 << 20); ctypes.memset(p, 1, 8 << 20); libc.free(p)  # raises glibc's mmap threshold
    base = rss()
    blocks = [libc.malloc(4 << 20) for _ in range(16)]
    for b in blocks:
        ctypes.memset(b, 1, 4 << 20)
    for b in blocks[:-1]:  # the last one pins the heap's top: trimming the top gives nothing back
        libc.free(b)
    time.sleep(WAIT)
    print(rss() - base)
"""


@pytest.fixture(scope="module")
def anchor_kept():
    """The anchor: glibc's malloc as it is keeps the 15 freed blocks."""
    anchor = run_py(FREED.replace("KEEP_BYTES", "0").replace("WAIT", "0"), LONGLENS_MALLOC="system").split()
    assert anchor[0] == "False"
    assert int(anchor[1]) >= 50, anchor  # 15 freed blocks of 4 MB kept
    return int(anchor[1])


@pytest.mark.skipif(not GLIBC, reason="glibc only")
@pytest.mark.parametrize(("mode", "keep_mb", "kept"), [("trim", 32, False), ("trim", 256, True), ("mmap", 0, False)])
def test_freed_blocks_go_back_to_the_system(anchor_kept, mode, keep_mb, kept):
    """After a freed 8 MB block glibc raises its mmap threshold, so 4 MB blocks come from the heap and stay in RSS
    once freed (behind a live one): 60 MB kept. mmap gives them their own mappings; trim gives them back within
    its interval when the arenas hold more than it keeps free. Each case in a fresh process."""
    wait = 2.5 * memory.TRIM_INTERVAL_S if mode == "trim" else 0
    code = FREED.replace("KEEP_BYTES", str(keep_mb << 20)).replace("WAIT", str(wait))
    bound = run_py(code, LONGLENS_MALLOC=mode).split()
    assert bound[0] == "True"
    assert (int(bound[1]) >= 50) if kept else (int(bound[1]) <= 10), bound


@pytest.mark.skipif(not MALLINFO2, reason="glibc 2.33 or later")
def test_free_bytes():
    assert memory.free_bytes() >= 0


def test_free_bytes_not_glibc(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.free_bytes() is None


def test_cli_calls_it():
    out = run_py("""
        from longlens import memory
        from longlens.cli.main import main
        try:
            main(["info", "--help"])
        except SystemExit:
            pass
        print(memory.bound_allocator({"LONGLENS_MALLOC": "system"})["applied"])
    """)
    assert out.split()[-1] == str(GLIBC)
