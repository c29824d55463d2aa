"""The frame cache: hits decode nothing, corruption is detected and repaired, size stays bounded."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from longlens.video import FrameCache, decode, fast_plan, open_video, slow_plan, store
from longlens.video import info as info_module
from media import write_video


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "v.mp4", n=90)


def _entries(cache: FrameCache, section: str):
    return sorted((cache.root / section).rglob("*.llc"))


def test_second_decode_comes_from_cache(video, cache):
    info = open_video(video, cache=cache)
    plan = fast_plan(info, mode="accurate")
    first = decode(info, plan, cache=cache)
    second = decode(info, plan, cache=cache)
    assert not first.from_cache and first.decoded_frames > 0
    assert second.from_cache and second.decoded_frames == 0
    assert np.array_equal(first.frames, second.frames)
    assert first.times_s == second.times_s and first.indices == second.indices
    # another plan is another entry
    third = decode(info, slow_plan(info, 0.5, 2.5), cache=cache)
    assert not third.from_cache and len(_entries(cache, "frames")) == 2


def test_index_is_cached_by_content_not_path(video, cache, monkeypatch, tmp_path):
    open_video(video, cache=cache)
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(video.read_bytes())

    def no_scan(path):
        raise AssertionError("the index should have come from the cache")

    monkeypatch.setattr(info_module, "_scan", no_scan)
    info = open_video(copy, cache=cache)
    assert info.path == str(copy) and info.n_frames == 90


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupted_entry_is_detected_and_rebuilt(video, cache, damage):
    info = open_video(video)
    plan = fast_plan(info, mode="accurate")
    good = decode(info, plan, cache=cache)
    (entry,) = _entries(cache, "frames")
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[-100] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"x" * 10)
    entry.write_bytes(bytes(data))
    again = decode(info, plan, cache=cache)
    assert not again.from_cache
    assert np.array_equal(again.frames, good.frames)
    assert decode(info, plan, cache=cache).from_cache  # repaired


def test_concurrent_writers_leave_a_valid_entry(tmp_path):
    cache = FrameCache(tmp_path / "c")
    arrays = [{"frames": np.full((4, 8, 8, 3), i, dtype=np.uint8)} for i in range(8)]
    threads = [threading.Thread(target=cache.put, args=("frames", "k" * 64, {"i": i}, arrays[i])) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta, got = cache.get("frames", "k" * 64)
    assert np.all(got["frames"] == meta["i"])
    assert not list((tmp_path / "c").rglob(".tmp-*"))


def test_cache_stays_under_its_size_limit(tmp_path):
    cache = FrameCache(tmp_path / "c", max_bytes=30_000)
    for i in range(10):
        cache.put("frames", f"{i:064d}", {}, {"frames": np.zeros(10_000, dtype=np.uint8)})
    stats = cache.stats()
    assert stats.bytes <= 30_000 and stats.entries >= 2
    assert cache.get("frames", f"{9:064d}") is not None  # the newest survives
    assert cache.get("frames", f"{0:064d}") is None


def test_store_round_trip_and_rejects_foreign_files(tmp_path):
    path = tmp_path / "x.llc"
    a = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    store.write(path, {"hello": [1, 2]}, {"a": a, "b": np.zeros(0, np.uint8)})
    meta, arrays = store.read(path)
    assert meta == {"hello": [1, 2]} and np.array_equal(arrays["a"], a) and arrays["b"].size == 0
    assert not arrays["a"].flags.writeable
    path.write_bytes(b"not a store file at all")
    assert store.read(path) is None
    assert store.read(tmp_path / "absent.llc") is None


def test_cache_limit_from_the_environment_and_the_cli(tmp_path, monkeypatch, capsys):
    from longlens.cli.main import main
    from longlens.errors import LongLensError

    monkeypatch.setenv("LONGLENS_CACHE_MAX_GB", "1.5")
    assert FrameCache(tmp_path / "c").max_bytes == int(1.5 * 2**30)
    assert main(["cache", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "limit 1.5 GiB" in capsys.readouterr().out
    monkeypatch.setenv("LONGLENS_CACHE_MAX_GB", "lots")
    with pytest.raises(LongLensError, match="LONGLENS_CACHE_MAX_GB"):
        FrameCache(tmp_path / "c")
    monkeypatch.delenv("LONGLENS_CACHE_MAX_GB")
    import argparse

    from longlens.cli._common import add_cache_options, cache_from

    p = argparse.ArgumentParser()
    add_cache_options(p)
    assert cache_from(p.parse_args(["--cache-dir", str(tmp_path / "d"), "--cache-max-gb", "2"])).max_bytes == 2 * 2**30


def test_orphaned_temp_files_are_counted_swept_when_stale_and_cleared(tmp_path, capsys):
    import os
    import time

    from longlens.cli.main import main

    cache = FrameCache(tmp_path / "c")
    folder = tmp_path / "c" / "frames" / "ab"
    folder.mkdir(parents=True)
    old, fresh = folder / ".tmp-old", folder / ".tmp-fresh"
    old.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y" * 10)
    os.utime(old, (time.time() - 7200, time.time() - 7200))  # a writer killed two hours ago
    assert (cache.stats().orphans, cache.stats().orphan_bytes) == (2, 1010)
    cache.put("frames", "cd" * 32, {"n": 1}, {"a": np.zeros(3, np.uint8)})  # first use sweeps the stale one
    assert not old.exists() and fresh.exists()
    assert main(["cache", "--cache-dir", str(tmp_path / "c"), "--clear"]) == 0
    assert not fresh.exists() and cache.stats().entries == 0 and cache.stats().orphans == 0
    assert "cleared" in capsys.readouterr().out
