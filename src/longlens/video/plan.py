"""Sampling plans: which frames to decode, at what size. Pure arithmetic, no decoding.

The defaults reproduce LOVE-R1 inference exactly (the frame plans of
HumanMLLM/LOVE-R1@aa1facb VLMEvalKit/vlmeval/vlm/qwen2_vl/model_sample_frame.py:441-501, the sizes of
HumanMLLM/LOVE-R1@aa1facb VLMEvalKit/vlmeval/vlm/qwen2_vl/vision_process.py:61-87, 372-383):

* fast view: ``min(int(2 * D), 768)`` frames, linspace over frame indices ``[0, N-1]``, rounded;
  pixel budget ``32*28*28`` per frame (x2 when ``D < 60`` s);
* slow clip ``[a, b]``: ``min(int(2 * (b - a)), 32)`` frames, linspace over ``[index(a), index(b)]``,
  rounded; pixel budget ``256*28*28`` (x2 when ``D < 60`` s);
* frame size from Qwen2.5-VL's ``smart_resize`` with ``min_pixels = P``, ``max_pixels = int(1.05 P)``.

Every count, rate and budget is a keyword argument with these defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from longlens.errors import PlanError
from longlens.video.info import VideoInfo

PATCH = 28
"""Side of one visual token in pixels, after Qwen2.5-VL's 2x2 merge (14 px patches)."""
TEMPORAL_PATCH = 2
"""Frames per temporal patch: one token covers 28x28 pixels of two consecutive frames."""

Mode = Literal["accurate", "nearest"]


# ---------------------------------------------------------------- sizes and tokens
def smart_resize(
    height: int, width: int, *, factor: int = PATCH, min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280
) -> tuple[int, int]:
    """Qwen2.5-VL's resize rule: both sides multiples of `factor`, area within [min_pixels, max_pixels].

    Exactly the reference arithmetic (Python's round-half-even included); the result can fall below
    `min_pixels` when the area is first capped, because the floor rounding is not re-checked.
    """
    if min(height, width) <= 0:
        raise PlanError(f"frame size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > 200:
        raise PlanError(f"aspect ratio of {width}x{height} is above 200; such frames cannot be tokenised")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def frame_size(height: int, width: int, budget: int, factor: int = PATCH) -> tuple[int, int]:
    """(h, w) for a pixel `budget` per frame: ``smart_resize(min_pixels=P, max_pixels=int(1.05 P))``.

    `factor` is the side of one visual token: 28 for Qwen2/2.5-VL (the checkpoints' protocol), 32 for Qwen3-VL.
    """
    return smart_resize(height, width, factor=factor, min_pixels=budget, max_pixels=int(budget * 1.05))


def visual_tokens(n_frames: int, height: int, width: int, factor: int = PATCH) -> int:
    """LLM tokens for a video of `n_frames` at `height` x `width` (odd counts pad the last patch)."""
    return math.ceil(n_frames / TEMPORAL_PATCH) * (height // factor) * (width // factor)


# ---------------------------------------------------------------- reference linspace
def reference_linspace(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps).round().long()`` reproduced in numpy, bit for bit.

    The reference samplers build frame ids with float32 ``torch.linspace``. Float32 rounding moves
    about one id in a hundred (for 768 ids over an hour) to the neighbouring frame compared with
    exact arithmetic, so we follow torch's CPU kernel: ``step = float32((end - start) / (steps - 1))``,
    then ``start + step*i`` for the first half and ``end - step*(steps-1-i)`` for the second, each
    rounded once to float32 (the kernel uses fused multiply-adds), then rounded half-to-even.
    Checked equal to torch 2.13 (CPU) on 23,000 (start, end, steps) cases.
    """
    if steps <= 0:
        return np.zeros(0, dtype=np.int64)
    s32, e32 = np.float32(start), np.float32(end)
    if steps == 1:
        return np.array([np.rint(s32)], dtype=np.int64)
    step = np.float64(np.float32((e32 - s32) / np.float32(steps - 1)))
    i = np.arange(steps, dtype=np.float64)
    # products of a float32 and an integer below 2**29 are exact in float64: one rounding, as an FMA
    v = np.where(i < steps // 2, np.float64(s32) + step * i, np.float64(e32) - step * (steps - 1 - i))
    return np.rint(v.astype(np.float32)).astype(np.int64)


# ---------------------------------------------------------------- plans
@dataclass(frozen=True)
class FramePlan:
    """Which frames to decode and at what size. Indices are in presentation order."""

    kind: str
    """"fast", "slow" or "uniform"."""
    indices: tuple[int, ...]
    """Target frame indices (ascending; repeats allowed when the video has fewer frames than asked)."""
    times_s: tuple[float, ...]
    """Target times in seconds (the times of `indices`)."""
    height: int
    width: int
    sample_fps: float
    """Frames per second of video time, as the reference passes it to the processor (2 decimals)."""
    span_s: tuple[float, float]
    """[start, end] of the covered time, in seconds (the clip for a slow plan, [0, D] otherwise)."""
    mode: Mode = "accurate"
    tolerance_s: float = 0.0
    """In `nearest` mode: how far from its target time a returned frame may be."""
    stamp: bool = True
    """Draw the red floor-second timestamp on each frame (before resizing)."""
    factor: int = PATCH
    """Side in pixels of one visual token; height and width are multiples of it."""

    def __post_init__(self):
        if len(self.indices) != len(self.times_s):
            raise PlanError("a plan needs one time per index")
        if self.mode not in ("accurate", "nearest"):
            raise PlanError(f"unknown decode mode {self.mode!r}; use 'accurate' or 'nearest'")

    @property
    def n_frames(self) -> int:
        return len(self.indices)

    @property
    def visual_tokens(self) -> int:
        return visual_tokens(self.n_frames, self.height, self.width, self.factor)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "n_frames": self.n_frames,
            "height": self.height,
            "width": self.width,
            "sample_fps": self.sample_fps,
            "span_s": list(self.span_s),
            "mode": self.mode,
            "tolerance_s": self.tolerance_s,
            "stamp": self.stamp,
            "factor": self.factor,
            "visual_tokens": self.visual_tokens,
        }


def budget_factor(info: VideoInfo, short_video_s: float = 60.0, short_factor: int = 2) -> int:
    """The reference doubles pixel budgets for videos shorter than `short_video_s`."""
    return short_factor if info.duration_s < short_video_s else 1


def _plan(info, kind, indices, budget, sample_fps, span, mode, tolerance_s, stamp, factor=PATCH) -> FramePlan:
    h, w = frame_size(info.height, info.width, budget, factor)
    times = info.times_s
    return FramePlan(
        kind=kind,
        indices=tuple(int(i) for i in indices),
        times_s=tuple(float(times[i]) for i in indices),
        height=h,
        width=w,
        sample_fps=sample_fps,
        span_s=span,
        mode=mode,
        tolerance_s=tolerance_s,
        stamp=stamp,
        factor=factor,
    )


def fast_plan(
    info: VideoInfo,
    *,
    max_frames: int = 768,
    fps: float = 2.0,
    budget: int = 32 * PATCH * PATCH,
    short_video_s: float = 60.0,
    short_factor: int = 2,
    mode: Mode = "accurate",
    tolerance: float = 0.5,
    stamp: bool = True,
    factor: int = PATCH,
) -> FramePlan:
    """The fast view: the whole video, `fps` frames per second capped at `max_frames`, low resolution.

    `tolerance` (nearest mode) is a fraction of the sampling interval: 0.5 lets a frame stand in
    for its target when it lies within half the distance to the next target.
    """
    n_total, d = info.n_frames, info.duration_s
    n = max(1, min(int(d * fps), max_frames, 10**7))
    idx = reference_linspace(0, n_total - 1, n)
    idx = np.clip(idx, 0, n_total - 1)
    sample_fps = round(n / (n_total - 1) * info.fps, 2) if n_total > 1 else float(fps)
    interval = d / n
    return _plan(
        info,
        "fast",
        idx,
        budget * budget_factor(info, short_video_s, short_factor),
        sample_fps,
        (0.0, d),
        mode,
        tolerance * interval if mode == "nearest" else 0.0,
        stamp,
        factor,
    )


def clip_frames(
    info: VideoInfo, start_s: float, end_s: float, *, max_frames: int = 32, fps: float = 2.0, min_frames: int = 2
) -> tuple[np.ndarray, int, int]:
    """Frame ids for a clip, as the reference computes them; raises `PlanError` on degenerate clips."""
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise PlanError(f"clip [{start_s}, {end_s}] has a non-finite bound")
    if end_s <= start_s:
        raise PlanError(f"clip [{start_s:g}, {end_s:g}] is empty or reversed; the end must be after the start")
    if start_s >= info.duration_s or end_s <= 0:
        raise PlanError(
            f"clip [{start_s:g}, {end_s:g}] lies outside the video [0, {info.duration_s:.2f}] s; "
            "choose times inside it"
        )
    s = info.index_at(max(0.0, start_s))
    e = info.index_at(min(end_s, info.duration_s))
    n = min(int((end_s - start_s) * fps), max_frames)
    if n < min_frames or e <= s:
        raise PlanError(
            f"clip [{start_s:g}, {end_s:g}] is too short: it yields {max(n, 0)} frame(s) at {fps:g} fps "
            f"and {e - s + 1} distinct frame(s); ask for at least {min_frames / fps:g} s"
        )
    return reference_linspace(s, e, n), s, e


def slow_plan(
    info: VideoInfo,
    start_s: float,
    end_s: float,
    *,
    max_frames: int = 32,
    fps: float = 2.0,
    budget: int = 256 * PATCH * PATCH,
    short_video_s: float = 60.0,
    short_factor: int = 2,
    mode: Mode = "accurate",
    stamp: bool = True,
    factor: int = PATCH,
) -> FramePlan:
    """A slow (zoom-in) clip [start_s, end_s]: `fps` frames per second capped at `max_frames`, high res."""
    idx, s, e = clip_frames(info, start_s, end_s, max_frames=max_frames, fps=fps)
    sample_fps = round(len(idx) / (e - s) * info.fps, 2)
    return _plan(
        info,
        "slow",
        idx,
        budget * budget_factor(info, short_video_s, short_factor),
        sample_fps,
        (float(start_s), float(end_s)),
        mode,
        0.0,
        stamp,
        factor,
    )


def uniform_plan(
    info: VideoInfo,
    n_frames: int,
    *,
    budget: int = 256 * PATCH * PATCH,
    mode: Mode = "accurate",
    stamp: bool = True,
    factor: int = PATCH,
) -> FramePlan:
    """`n_frames` spread uniformly over the whole video at one pixel budget (the uniform baseline)."""
    if n_frames < 1:
        raise PlanError(f"a uniform plan needs at least 1 frame, got {n_frames}")
    idx = reference_linspace(0, info.n_frames - 1, n_frames)
    sample_fps = round(n_frames / max(info.n_frames - 1, 1) * info.fps, 2)
    return _plan(info, "uniform", idx, budget, sample_fps, (0.0, info.duration_s), mode, 0.0, stamp, factor)


def index_plan(
    info: VideoInfo,
    indices,
    *,
    max_side: int,
    kind: str = "frames",
    mode: Mode = "accurate",
    stamp: bool = False,
) -> FramePlan:
    """Given frame ids at a size whose longer side is at most `max_side` (downscaled only, aspect kept,
    rounded; as LongVideo-R1 sizes its caption and video_qa frames). No stamps by default."""
    idx = np.clip(np.asarray(indices, dtype=np.int64), 0, info.n_frames - 1)
    if len(idx) == 0:
        raise PlanError("a plan needs at least one frame")
    h, w = info.height, info.width
    if max(h, w) > max_side:
        scale = min(max_side / h, max_side / w)
        h, w = max(1, round(h * scale)), max(1, round(w * scale))
    times = info.times_s
    span = (float(times[idx[0]]), float(times[idx[-1]]))
    sample_fps = round(len(idx) / max(span[1] - span[0], 1e-6), 2)
    return FramePlan(kind=kind, indices=tuple(int(i) for i in idx), times_s=tuple(float(times[i]) for i in idx),
                     height=h, width=w, sample_fps=sample_fps, span_s=span, mode=mode, stamp=stamp)
