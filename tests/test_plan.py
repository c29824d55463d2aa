"""Sampling-plan arithmetic: the LOVE-R1 numbers
(HumanMLLM/LOVE-R1@aa1facb VLMEvalKit/vlmeval/vlm/qwen2_vl/model_sample_frame.py:441-501), reproduced exactly."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from longlens.errors import PlanError
from longlens.video import FramePlan, fast_plan, frame_size, reference_linspace, slow_plan, smart_resize
from longlens.video.info import VideoInfo
from longlens.video.plan import uniform_plan, visual_tokens

DATA = Path(__file__).parent / "data"


def fake_info(duration_s: float, fps: int = 30, width: int = 1280, height: int = 720) -> VideoInfo:
    n = int(round(duration_s * fps))
    tb = Fraction(1, fps * 512)
    return VideoInfo(
        path="fake.mp4", fingerprint="f" * 32, duration_s=n / fps, fps=float(fps), n_frames=n,
        width=width, height=height, rotation=0, codec="h264", time_base=tb,
        pts=np.arange(n, dtype=np.int64) * 512, keyframes=np.arange(0, n, fps * 5, dtype=np.int64),
    )


# get_video_hw (HumanMLLM/LOVE-R1@aa1facb VLMEvalKit/vlmeval/vlm/qwen2_vl/vision_process.py:61-87, 372-383):
# source H x W -> (fast 32, fast 64, slow 256, slow 512) sizes and tokens per 2-frame patch
SIZE_TABLE = [
    ((720, 1280), [((112, 196), 28), ((168, 280), 60), ((336, 588), 252), ((476, 840), 510)]),
    ((1080, 1920), [((112, 196), 28), ((168, 280), 60), ((336, 588), 252), ((476, 840), 510)]),
    ((480, 640), [((140, 168), 30), ((196, 252), 63), ((392, 504), 252), ((560, 756), 540)]),
    ((1080, 1080), [((140, 140), 25), ((224, 224), 64), ((448, 448), 256), ((644, 644), 529)]),
]


@pytest.mark.parametrize("source,expected", SIZE_TABLE)
def test_size_and_token_table(source, expected):
    for budget, (size, tokens) in zip((32, 64, 256, 512), expected, strict=True):
        h, w = frame_size(*source, budget * 28 * 28)
        assert (h, w) == size
        assert visual_tokens(2, h, w) == tokens


def test_smart_resize_rules():
    assert smart_resize(100, 100, min_pixels=28 * 28, max_pixels=10**7) == (112, 112)  # nearest multiple
    assert smart_resize(10, 10, min_pixels=56 * 56, max_pixels=10**7) == (56, 56)  # grown to min_pixels
    with pytest.raises(PlanError, match="aspect ratio"):
        smart_resize(10, 2100)


def test_visual_tokens_pad_odd_frame_counts():
    assert visual_tokens(768, 112, 196) == 384 * 28 == 10752  # one hour, 16:9: ~10.7k tokens
    assert visual_tokens(32, 336, 588) == 16 * 252 == 4032
    assert visual_tokens(3, 28, 28) == visual_tokens(4, 28, 28) == 2


def test_reference_linspace_matches_torch():
    cases = json.loads((DATA / "torch_linspace.json").read_text())["cases"]
    assert any(c["differs_from_float64"] for c in cases)  # the fixture really exercises float32 rounding
    for c in cases:
        ids = reference_linspace(c["start"], c["end"], c["steps"]).astype("<i8")
        assert hashlib.sha256(ids.tobytes()).hexdigest() == c["sha256"], c
        assert ids[:3].tolist() == c["first"] and ids[-3:].tolist() == c["last"]


def test_reference_linspace_edges():
    assert reference_linspace(0, 10, 1).tolist() == [0]
    assert reference_linspace(0, 10, 0).tolist() == []
    assert reference_linspace(0, 10, 2).tolist() == [0, 10]
    assert reference_linspace(0, 4, 5).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "duration,frames,size,factor",
    [(30, 60, (168, 280), 2), (59, 118, (168, 280), 2), (61, 122, (112, 196), 1),
     (600, 768, (112, 196), 1), (3600, 768, (112, 196), 1)],
)
def test_fast_plan_counts(duration, frames, size, factor):
    info = fake_info(duration)
    plan = fast_plan(info)
    assert plan.n_frames == frames
    assert (plan.height, plan.width) == size
    assert plan.indices[0] == 0 and plan.indices[-1] == info.n_frames - 1
    assert list(plan.indices) == sorted(plan.indices)
    assert plan.sample_fps == round(frames / (info.n_frames - 1) * 30, 2)
    assert plan.span_s == (0.0, info.duration_s)
    slow = slow_plan(info, 10, 25)
    assert (slow.height, slow.width) == ((476, 840) if factor == 2 else (336, 588))


def test_fast_plan_nearest_tolerance_is_half_the_interval():
    info = fake_info(3600)
    assert fast_plan(info).mode == "accurate"  # the reference's frames by default
    plan = fast_plan(info, mode="nearest")
    assert plan.tolerance_s == pytest.approx(0.5 * 3600 / 768)
    assert fast_plan(info).tolerance_s == 0


def test_fast_plan_parameters():
    info = fake_info(600)
    plan = fast_plan(info, max_frames=384, budget=64 * 28 * 28)
    assert plan.n_frames == 384 and (plan.height, plan.width) == (168, 280)


def test_slow_plan_counts_and_ids():
    info = fake_info(600)
    plan = slow_plan(info, 300, 330)
    assert plan.n_frames == 32
    assert plan.indices == tuple(reference_linspace(9000, 9900, 32).tolist())
    assert plan.sample_fps == round(32 / 900 * 30, 2)
    assert slow_plan(info, 300, 310).n_frames == 20
    assert slow_plan(info, 300, 310, max_frames=16).n_frames == 16
    assert slow_plan(info, 590, 700).indices[-1] == info.n_frames - 1  # clamped to the last frame


@pytest.mark.parametrize("start,end,match", [
    (10, 10.4, "too short"), (20, 10, "reversed"), (10, 10, "empty"), (700, 800, "outside"),
    (float("nan"), 5, "non-finite"),
])
def test_degenerate_clips_raise_plan_error(start, end, match):
    with pytest.raises(PlanError, match=match):
        slow_plan(fake_info(600), start, end)


def test_plan_is_frozen_and_checked():
    plan = uniform_plan(fake_info(600), 32)
    assert plan.n_frames == 32 and (plan.height, plan.width) == (336, 588)
    with pytest.raises(AttributeError):
        plan.width = 3  # type: ignore[misc]
    with pytest.raises(PlanError):
        FramePlan("fast", (1, 2), (0.1,), 28, 28, 2.0, (0.0, 1.0))
    with pytest.raises(PlanError):
        uniform_plan(fake_info(60), 0)


def test_time_index_mapping():
    info = fake_info(10)
    assert info.index_at(0) == 0
    assert info.index_at(1.0) == 30
    assert info.index_at(1.02) == 30
    assert info.index_at(99) == info.n_frames - 1
    assert info.second_of(59) == 1 and info.second_of(60) == 2
