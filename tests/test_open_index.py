"""open_video reads the frame index from the container (the MP4/MOV sample tables) and gives what demuxing every
packet gives; where the index disagrees with the packets it checks, it demuxes."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest

import longlens.video.info as info_module
from longlens.errors import VideoError
from longlens.video import open_video


def ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("open-index")
    src = d / "b.mp4"  # B-frames, a keyframe every 25 frames, an edit list (x264's B-frame delay)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25:duration=6", "-c:v", "libx264", "-preset", "ultrafast",
           "-bf", "3", "-g", "25", "-pix_fmt", "yuv420p", src)
    out = {"b.mp4": src}
    ffmpeg("-i", src, "-c", "copy", d / "b.mov")
    out["b.mov"] = d / "b.mov"
    ffmpeg("-i", src, "-c", "copy", d / "b.mkv")
    out["b.mkv"] = d / "b.mkv"
    ffmpeg("-ss", "1.3", "-i", src, "-c", "copy", d / "cut.mp4")  # an edit starting inside a GOP
    out["cut.mp4"] = d / "cut.mp4"
    try:
        ffmpeg("-display_rotation", "90", "-i", src, "-c", "copy", d / "rot.mp4")
    except subprocess.CalledProcessError:  # ffmpeg before 6: the rotate tag
        ffmpeg("-i", src, "-c", "copy", "-metadata:s:v:0", "rotate=90", d / "rot.mp4")
    out["rot.mp4"] = d / "rot.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25:duration=4", "-vf", "setpts='PTS+if(gte(N,40),0.7/TB,0)'",
           "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", d / "vfr.mp4")
    out["vfr.mp4"] = d / "vfr.mp4"
    return out


def _same(a, b) -> None:
    assert np.array_equal(a.pts, b.pts)
    assert np.array_equal(a.keyframes, b.keyframes)
    assert (a.time_base, a.n_frames, a.fps, a.width, a.height, a.rotation, a.codec) == \
        (b.time_base, b.n_frames, b.fps, b.width, b.height, b.rotation, b.codec)


@pytest.mark.parametrize("name", ["b.mp4", "b.mov", "b.mkv", "cut.mp4", "rot.mp4", "vfr.mp4"])
def test_index_equals_demuxing(files, name):
    from_index, demuxed = open_video(files[name]), open_video(files[name], from_index=False)
    assert demuxed.index_source == "demux"
    # Matroska has no per-frame index (reading every block header is no faster than demuxing): demuxed
    assert from_index.index_source == ("demux" if name.endswith(".mkv") else "mp4")
    _same(from_index, demuxed)


def test_rotation_and_vfr_come_through(files):
    assert open_video(files["rot.mp4"]).rotation in (90, 270)
    gaps = np.diff(open_video(files["vfr.mp4"]).times_s)
    assert gaps.max() > 0.5 > 0.05 > gaps.min()


@pytest.mark.parametrize("damage", ["pts", "keyframe", "time_base", "tail"])
def test_an_index_that_disagrees_with_the_packets_is_not_used(files, monkeypatch, damage):
    real = info_module.read_index

    def damaged(path):
        ci = real(path)
        if damage == "pts":
            pts = ci.pts.copy()
            pts[3] += 1
            return dataclasses.replace(ci, pts=pts)
        if damage == "keyframe":
            return dataclasses.replace(ci, keyframes=ci.keyframes[:1])
        if damage == "tail":
            return dataclasses.replace(ci, pts=ci.pts[:-2])
        return dataclasses.replace(ci, time_base=ci.time_base * 2)

    monkeypatch.setattr(info_module, "read_index", damaged)
    got = open_video(files["b.mp4"])
    assert got.index_source == "demux"
    monkeypatch.setattr(info_module, "read_index", real)
    _same(got, open_video(files["b.mp4"]))


def test_truncated_data_behind_a_whole_index_is_an_error(files, tmp_path):
    fast = tmp_path / "fast.mp4"
    ffmpeg("-i", files["b.mp4"], "-c", "copy", "-movflags", "+faststart", fast)
    data = fast.read_bytes()
    short = tmp_path / "short.mp4"
    short.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(VideoError, match="truncated"):
        open_video(short)


def _source_in_child(path: str) -> str:
    return open_video(path).index_source


def test_opening_works_in_a_forked_child(files):
    """DataLoader workers are forked from a process that has opened videos: the index read must still run there
    (a thread pool made in the parent has no threads in the child and hung the read)."""
    import multiprocessing

    open_video(files["b.mp4"])
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_source_in_child, (str(files["rot.mp4"]),)).get(timeout=60) == "mp4"
