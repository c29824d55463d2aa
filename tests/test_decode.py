"""Decoding: exact frames in accurate mode, bounded offsets in nearest mode, stamps, VFR, rotation."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from longlens.synth import read_frame_code
from longlens.video import choose_frames, decode, fast_plan, open_video, slow_plan, uniform_plan
from longlens.video.stamps import stamp_layout


def codes(frameset) -> list[int]:
    return [read_frame_code(f) for f in frameset.frames]


def test_info_of_generated_video(coded_video):
    info = open_video(coded_video)
    assert info.n_frames == 600 and info.fps == 30 and info.duration_s == 20.0
    assert (info.width, info.height, info.rotation, info.codec) == (640, 360, 0, "h264")
    assert info.times_s[0] == 0 and info.times_s[-1] == pytest.approx(599 / 30)
    assert np.all(np.diff(info.keyframes) <= 60) and info.keyframes[0] == 0


def test_accurate_fast_view_returns_exact_frames(coded_video):
    info = open_video(coded_video)
    plan = fast_plan(info, mode="accurate")
    fs = decode(info, plan)
    assert fs.frames.shape == (40, 168, 280, 3)  # 20 s video: 2x budget
    assert fs.indices == plan.indices
    assert codes(fs) == list(plan.indices)
    assert fs.errors_s.max() == 0


def test_accurate_slow_clip_returns_exact_frames(coded_video):
    info = open_video(coded_video)
    plan = slow_plan(info, 3.3, 17.8)
    fs = decode(info, plan)
    assert fs.frames.shape[1:3] == (476, 868)
    assert codes(fs) == list(plan.indices)


def test_uniform_plan_with_repeated_targets(coded_video):
    info = open_video(coded_video)
    fs = decode(info, uniform_plan(info, 8, budget=64 * 28 * 28))
    assert codes(fs) == list(fs.plan.indices)


def test_nearest_mode_stays_within_tolerance_and_reports_true_times(sparse_video):
    info = open_video(sparse_video)
    plan = fast_plan(info, fps=0.5, mode="nearest")  # one target every 2 s, keyframes every 3 s
    fs = decode(info, plan)
    got = codes(fs)
    assert got == list(fs.indices)  # the reported index is the frame really returned
    assert fs.times_s == tuple(float(info.times_s[i]) for i in got)
    assert fs.errors_s.max() <= plan.tolerance_s + 1e-9
    keys = set(info.keyframes.tolist())
    assert sum(i in keys for i in fs.indices) >= len(fs) // 2  # keyframes serve most targets
    accurate = decode(info, fast_plan(info, fps=0.5, mode="accurate"))
    assert fs.decoded_frames < accurate.decoded_frames / 3  # and that is what makes it cheap


def test_choose_frames_prefers_keyframes_inside_window(sparse_video):
    info = open_video(sparse_video)
    plan = fast_plan(info, fps=0.5)
    chosen = choose_frames(info, plan)
    times = info.times_s
    keys = info.keyframes
    for target, c in zip(plan.indices, chosen, strict=True):
        window = keys[np.abs(times[keys] - times[target]) <= plan.tolerance_s + 1e-6]
        if len(window):
            assert c in window
        else:
            assert abs(times[c] - times[target]) <= plan.tolerance_s + 1e-6


def test_workers_do_not_change_the_result(sparse_video):
    info = open_video(sparse_video)
    plan = fast_plan(info, mode="accurate")
    one = decode(info, plan, workers=1)
    two = decode(info, plan, workers=3)
    assert one.indices == two.indices
    assert np.array_equal(one.frames, two.frames)


def _red(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(int)
    return (f[..., 0] > 180) & (f[..., 1] < 90) & (f[..., 2] < 90)


def test_stamp_is_red_bottom_right_and_only_there(coded_video):
    info = open_video(coded_video)
    stamped = decode(info, slow_plan(info, 12.0, 14.0))
    plain = decode(info, slow_plan(info, 12.0, 14.0, stamp=False))
    h, w = stamped.frames.shape[1:3]
    x, y, size = stamp_layout("12", info.width, info.height)
    assert size == 45  # int(min(640, 360) / 8)
    for s, p, t in zip(stamped.frames, plain.frames, stamped.times_s, strict=True):
        diff = np.abs(s.astype(int) - p.astype(int)).sum(-1) > 30
        ys, xs = np.nonzero(diff)
        assert len(ys) > 50
        # every changed pixel lies in the stamp box, scaled from source to output resolution
        assert xs.min() >= x * w / info.width - 2 and ys.min() >= y * h / info.height - 2
        red = _red(s) & diff
        assert red.sum() > 0.3 * diff.sum()
        assert int(t) in (12, 13, 14)
    # same second -> same digits; next second -> different digits
    masks = [_red(f) for f in stamped.frames]
    secs = [int(t) for t in stamped.times_s]

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    assert secs[0] == secs[1] == 12 and secs[-1] == 14
    assert iou(masks[0], masks[1]) > 0.9
    assert iou(masks[0], masks[-1]) < 0.7


def _write_video(path, pts_list, time_base, size=(160, 96), rotation=None, marker=True):
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = time_base
    stream.options = {"preset": "ultrafast", "g": "10"}
    if rotation is not None:
        stream.set_display_rotation(rotation)
    for i, pts in enumerate(pts_list):
        img = np.full((size[1], size[0], 3), 60, dtype=np.uint8)
        if marker:
            img[:24, :24] = 250  # bright square at the top-left of the coded picture
        img[-10:, :, 1] = (i * 5) % 250
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def test_variable_frame_rate_times_come_from_pts(tmp_path):
    tb = Fraction(1, 1000)
    pts = [0, 40, 80, 500, 520, 1500, 1530, 1560, 3000, 3010]  # irregular gaps, in ms
    path = tmp_path / "vfr.mkv"
    _write_video(path, pts, tb)
    info = open_video(path)
    assert info.n_frames == len(pts)
    assert np.allclose(info.times_s, np.array(pts) / 1000)
    assert info.index_at(1.0) == 4 and info.index_at(1.5) == 5 and info.index_at(2.99) == 7
    fs = decode(info, slow_plan(info, 0.0, 3.0, max_frames=6, fps=2.0))
    assert np.allclose(fs.times_s, [pts[i] / 1000 for i in fs.indices])


def test_rotation_is_applied_for_display(tmp_path):
    path = tmp_path / "rotated.mp4"
    _write_video(path, list(range(12)), Fraction(1, 30), size=(160, 96), rotation=90)
    info = open_video(path)
    assert info.rotation == 90
    assert (info.width, info.height) == (96, 160)
    plan = uniform_plan(info, 2, budget=96 * 160, stamp=False)
    fs = decode(info, plan)
    frame = fs.frames[0]
    assert frame.shape[0] > frame.shape[1]  # portrait, as displayed
    h, w = frame.shape[:2]
    # 90 degrees counter-clockwise moves the coded top-left corner to the bottom-left
    assert frame[h - 5, 5].mean() > 200 and frame[5, 5].mean() < 120
