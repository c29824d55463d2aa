"""The video layer: open a file, plan which frames to sample, decode them stamped and resized, cache.

    >>> info = open_video("talk.mp4")                # VideoInfo: duration, fps, index of frames
    >>> plan = fast_plan(info)                        # LOVE-R1's fast view: <= 768 frames, 32 tokens
    >>> frames = decode(info, plan, cache=FrameCache())   # FrameSet: (T, H, W, 3) uint8 + true times
"""

from longlens.video.cache import FrameCache, default_cache_dir
from longlens.video.decode import FrameSet, choose_frames, decode
from longlens.video.info import VideoInfo, fingerprint, open_video
from longlens.video.plan import (
    FramePlan,
    fast_plan,
    frame_size,
    index_plan,
    reference_linspace,
    slow_plan,
    smart_resize,
    uniform_plan,
    visual_tokens,
)

__all__ = [
    "FrameCache",
    "FramePlan",
    "FrameSet",
    "VideoInfo",
    "choose_frames",
    "decode",
    "default_cache_dir",
    "fast_plan",
    "fingerprint",
    "frame_size",
    "index_plan",
    "open_video",
    "reference_linspace",
    "slow_plan",
    "smart_resize",
    "uniform_plan",
    "visual_tokens",
]
