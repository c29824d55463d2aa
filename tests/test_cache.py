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
