"""Decoding a plan: `decode(info, plan) -> FrameSet`, in one pass that visits each needed GOP once.

How it works:

1. In ``nearest`` mode each target may be served by any frame within ``plan.tolerance_s`` of it;
   we pick the cheapest one (a keyframe if one is in the window, else the window's first frame,
   which is the fewest decode steps past its keyframe). In ``accurate`` mode the target frame itself.
2. The chosen frames are grouped by the keyframe that starts their GOP. Each group is one seek to
   that keyframe and one forward decode up to its last frame; frames in between are decoded but
   only the chosen ones are converted. We seek only when the next frame lies past the next
   keyframe; inside a GOP we decode on.
3. Conversion follows the reference pipeline: the full-size RGB picture, the red timestamp drawn on it
   (`stamps.py`), then FFmpeg's bicubic resize to the plan's size (the reference resizes with torchvision's
   antialiased bicubic; docs/fidelity.md gives the measured distance: above 40 dB PSNR).
4. Worker threads, each with its own demuxer and decoder, take the groups one at a time in file order,
   so they finish together; PyAV releases the GIL while decoding and scaling, so two cores decode
   two GOPs at once.

The timestamps reported and stamped are always those of the frame actually returned.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import av
import numpy as np

from longlens.errors import VideoError
from longlens.video.cache import FrameCache, make_key
from longlens.video.info import VideoInfo, open_container, video_stream
from longlens.video.plan import FramePlan, visual_tokens
from longlens.video.stamps import draw_stamp_rgb

DECODER_VERSION = 2
"""2: stamps drawn on the full-size RGB picture before the resize, as the reference does (1 drew in YUV)."""


@dataclass(frozen=True, eq=False)
class FrameSet:
    """Decoded frames of one plan: RGB uint8 (T, H, W, 3) with the true time of every frame."""

    frames: np.ndarray = field(repr=False)
    indices: tuple[int, ...]
    """Index of the frame actually returned for each target."""
    times_s: tuple[float, ...]
    """Time in seconds of the frame actually returned for each target."""
    plan: FramePlan = field(repr=False)
    video_path: str
    video_id: str
    """The video's content fingerprint."""
    decoded_frames: int = 0
    """Frames the decoder produced to build this set (0 when it came from the cache)."""
    seconds: float = 0.0
    from_cache: bool = False

    def __post_init__(self):
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"frames must be (T, H, W, 3), got shape {self.frames.shape}")
        if not (len(self.frames) == len(self.indices) == len(self.times_s)):
            raise ValueError("frames, indices and times_s must have one entry per frame")

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        t, h, w, _ = self.frames.shape
        src = "cache" if self.from_cache else f"{self.decoded_frames} decoded"
        span = f"{self.times_s[0]:.2f}-{self.times_s[-1]:.2f} s" if t else "empty"
        return f"FrameSet({self.plan.kind}, {t} x {h}x{w}, {span}, {src}, {self.seconds:.2f} s)"

    @property
    def errors_s(self) -> np.ndarray:
        """|returned time - target time| per frame."""
        return np.abs(np.asarray(self.times_s) - np.asarray(self.plan.times_s))

    @property
    def visual_tokens(self) -> int:
        t, h, w, _ = self.frames.shape
        return visual_tokens(t, h, w, self.plan.factor)


# ---------------------------------------------------------------- choosing frames
def choose_frames(info: VideoInfo, plan: FramePlan) -> np.ndarray:
    """The frame index that will serve each target of `plan` (see module doc, step 1)."""
    targets = np.asarray(plan.indices, dtype=np.int64)
    if plan.mode == "accurate" or plan.tolerance_s <= 0:
        return targets
    times = info.times_s
    t = times[targets]
    lo = np.searchsorted(times, t - plan.tolerance_s - 1e-9, side="left")
    hi = np.searchsorted(times, t + plan.tolerance_s + 1e-9, side="right") - 1
    keys = info.keyframes
    k_lo = np.searchsorted(keys, lo, side="left")
    k_hi = np.searchsorted(keys, hi, side="right")
    chosen = np.empty_like(targets)
    for j in range(len(targets)):
        if k_lo[j] < k_hi[j]:  # keyframes inside the window: the one closest to the target
            cand = keys[k_lo[j] : k_hi[j]]
            chosen[j] = cand[np.argmin(np.abs(times[cand] - t[j]))]
        else:  # one GOP covers the window: its earliest frame costs the fewest decode steps
            chosen[j] = min(lo[j], targets[j])
    return chosen


# ---------------------------------------------------------------- conversion
def _colour_kwargs(frame) -> dict:
    kw = {}
    if frame.color_range in (1, 2):
        kw["src_color_range"] = frame.color_range
    return kw


class _Converter:
    """One decoded frame to the plan's RGB size, as the reference makes it (love-r1 model_sample_frame.py):
    the full-size RGB picture (turned upright), the stamp drawn on it, then the resize (FFmpeg's bicubic)."""

    def __init__(self, info: VideoInfo, plan: FramePlan):
        self.info, self.plan = info, plan

    def __call__(self, frame, index: int) -> np.ndarray:
        info, plan = self.info, self.plan
        rgb = frame.to_ndarray(format="rgb24", **_colour_kwargs(frame))
        if info.rotation:
            rgb = np.rot90(rgb, k=info.rotation // 90)
        rgb = np.ascontiguousarray(rgb)
        if plan.stamp:
            draw_stamp_rgb(rgb, str(info.second_of(index)))
        if rgb.shape[:2] == (plan.height, plan.width):
            return rgb
        return av.VideoFrame.from_ndarray(rgb, format="rgb24").to_ndarray(
            format="rgb24", width=plan.width, height=plan.height, interpolation="BICUBIC")


# ---------------------------------------------------------------- decoding
def _gop_groups(info: VideoInfo, wanted: np.ndarray) -> list[tuple[int, list[int]]]:
    """[(keyframe index, [wanted indices in its GOP, ascending]), ...] in file order."""
    groups: list[tuple[int, list[int]]] = []
    keys = info.keyframes
    starts = keys[np.searchsorted(keys, wanted, side="right") - 1]
    for idx, k in zip(wanted.tolist(), starts.tolist(), strict=True):
        if groups and groups[-1][0] == k:
            groups[-1][1].append(idx)
        else:
            groups.append((k, [idx]))
    return groups


class _Work:
    """The GOP groups, handed to the workers one at a time in file order: a worker that finishes early takes the
    next, so the cores finish together even when a few long GOPs hold most of the work (a zoom-in clip spans a
    handful). (Costliest first was measured too: it balanced a clip no better and, jumping about the file, made
    a GOP-60 fast view 23% dearer in CPU.)"""

    def __init__(self, groups: list[tuple[int, list[int]]]):
        self.items = groups
        self.lock = threading.Lock()
        self.next = 0

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, list[int]]:
        with self.lock:
            if self.next >= len(self.items):
                raise StopIteration
            self.next += 1
            return self.items[self.next - 1]


def _decode_groups(info: VideoInfo, groups, convert: _Converter, threads: int) -> tuple[dict, int]:
    path = info.path
    out: dict[int, np.ndarray] = {}
    produced = 0
    container = open_container(path)
    try:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        pts_index = info.pts
        codec = stream.codec_context
        last_wanted = None
        for key, members in groups:
            remaining = {int(pts_index[i]): i for i in members}
            unfed = set(remaining)  # wanted frames whose packets the decoder has not seen yet
            container.seek(int(pts_index[key]), stream=stream, backward=True)
            try:
                for packet in container.demux(stream):
                    # frames nothing refers to are decoded only when wanted (they are about half of the
                    # frames of a typical B-frame stream); reference frames are always decoded
                    wanted = packet.pts in unfed
                    if wanted != last_wanted:
                        codec.skip_frame = "DEFAULT" if wanted else "NONREF"
                        last_wanted = wanted
                    unfed.discard(packet.pts)
                    # once every wanted packet is in, drain the decoder instead of decoding further
                    batches = [packet.decode()] if unfed or packet.size == 0 else [packet.decode(), codec.decode(None)]
                    for frames in batches:
                        for frame in frames:
                            produced += 1
                            i = remaining.pop(frame.pts, None)
                            if i is not None:
                                out[i] = convert(frame, i)
                    if not remaining or not unfed:
                        break
            except av.error.FFmpegError as exc:
                raise VideoError(path, f"corrupt data near {info.time_of(key):.1f} s ({exc.strerror or exc})") from exc
            if remaining:
                first = min(remaining.values())
                raise VideoError(
                    path,
                    f"frame {first} ({info.time_of(first):.2f} s) could not be decoded; the file is "
                    "truncated or corrupt there: re-download or re-encode it",
                )
    finally:
        container.close()
    return out, produced


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def decode(
    info: VideoInfo,
    plan: FramePlan,
    *,
    cache: FrameCache | None = None,
    workers: int | None = None,
) -> FrameSet:
    """Decode `plan` from the video described by `info`.

    With a `cache`, the result is stored under the video's fingerprint and the plan, and a later
    call with the same plan decodes nothing.
    """
    t0 = time.perf_counter()
    key = make_key(
        "frames",
        DECODER_VERSION,
        info.fingerprint,
        plan.indices,
        plan.height,
        plan.width,
        plan.mode,
        plan.tolerance_s,
        plan.stamp,
        info.rotation,
    )
    if cache is not None:
        got = cache.get("frames", key)
        if got is not None:
            meta, arrays = got
            return FrameSet(
                frames=arrays["frames"],
                indices=tuple(meta["indices"]),
                times_s=tuple(meta["times_s"]),
                plan=plan,
                video_path=info.path,
                video_id=info.fingerprint,
                seconds=time.perf_counter() - t0,
                from_cache=True,
            )
    chosen = choose_frames(info, plan)
    wanted = np.unique(chosen)
    groups = _gop_groups(info, wanted)
    n_workers = min(workers or default_workers(), len(groups)) or 1
    convert = _Converter(info, plan)
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    work = _Work(groups)
    if n_workers == 1:
        results = [_decode_groups(info, work, convert, threads)]
    else:
        with ThreadPoolExecutor(n_workers) as pool:
            results = list(pool.map(lambda _: _decode_groups(info, work, convert, threads), range(n_workers)))
    decoded: dict[int, np.ndarray] = {}
    produced = 0
    for part, n in results:
        decoded.update(part)
        produced += n
    frames = np.empty((len(chosen), plan.height, plan.width, 3), dtype=np.uint8)
    for j, i in enumerate(chosen.tolist()):
        frames[j] = decoded[i]
    times = info.times_s
    result = FrameSet(
        frames=frames,
        indices=tuple(int(i) for i in chosen),
        times_s=tuple(float(times[i]) for i in chosen),
        plan=plan,
        video_path=info.path,
        video_id=info.fingerprint,
        decoded_frames=produced,
        seconds=time.perf_counter() - t0,
    )
    if cache is not None:
        cache.put(
            "frames",
            key,
            {"indices": list(result.indices), "times_s": list(result.times_s), "plan": plan.to_dict()},
            {"frames": frames},
        )
    return result
