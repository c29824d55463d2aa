"""Synthetic long H.264 videos with known answers: ``make_video`` encodes the frames and writes the key.

A video is a sequence of scenes (10-60 s each by default) cut hard into one another. Each scene has its
own procedural look (clouds, stripes, tiles, bokeh or a horizon), a camera that pans over it, and a few
muted shapes moving across it. "Needles" are short segments (2-8 s) in which a small white label with a
word or number, or a clearly coloured shape, is shown; the answer key records where and when, and a
4-option question about each.

The frames come from ``FrameMaker`` (longlens.synth.frames). A producer thread makes frames while the
main thread feeds x264 (PyAV's ``libx264``), so encoding sets the pace.

Everything the encoder is fed depends only on the arguments (the seed included): the same arguments
give the same frames and the same answer key.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from longlens.errors import VideoError
from longlens.synth.frames import FrameMaker
from longlens.synth.key import AnswerKey
from longlens.synth.needles import NUMBERS, WORDS, SynthError, default_needle_count
from longlens.synth.patches import COLOURS, SHAPES, TEXT_CAP

# make_video, and the names this module has always offered (now defined in needles, patches and frames)
__all__ = [
    "COLOURS",
    "NUMBERS",
    "SHAPES",
    "WORDS",
    "FrameMaker",
    "SynthError",
    "default_needle_count",
    "make_video",
]


# --- encoding ------------------------------------------------------------------------------------------

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _x264_params(keyint: int, fps: float, bframes: int | None) -> str:
    min_keyint = max(1, min(round(fps), keyint))
    params = [f"keyint={keyint}", f"min-keyint={min_keyint}", "scenecut=40"]
    if bframes is not None:
        params.append(f"bframes={bframes}")
    return ":".join(params)


def make_video(
    path: str | os.PathLike[str],
    *,
    duration_s: float,
    width: int = 1280,
    height: int = 720,
    fps: float = 30,
    gop_s: float = 5.0,
    seed: int = 0,
    needles: int | None = None,
    needle_kinds: Sequence[str] = ("text", "object"),
    preset: str = "ultrafast",
    crf: int = 28,
    frame_code: bool = False,
    bframes: int | None = None,
    key_path: str | os.PathLike[str] | None = None,
    scene_s: tuple[float, float] = (10.0, 60.0),
    text_cap: float = TEXT_CAP,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerKey:
    """Write a synthetic H.264 video with needles, and its answer key; return the key.

    The video has exactly ``round(duration_s * fps)`` frames at a constant rate, a keyframe at least
    every ``gop_s`` seconds and at every scene cut. ``needles`` defaults to one per minute (1-60);
    ``bframes`` None keeps the preset's default. ``frame_code`` draws each frame's index in a band at
    the top (see ``read_frame_code``). The key goes to ``key_path`` (default: the video path with suffix
    ``.json``). ``scene_s`` is the range of scene lengths in seconds; ``text_cap`` the cap height of
    label text as a fraction of the frame height. ``progress(done, total)`` is called about once per
    second of video.
    """
    import av
    from av.video.frame import PictureType

    if preset not in X264_PRESETS:
        raise SynthError(f"unknown x264 preset {preset!r} (choose from {', '.join(X264_PRESETS)})")
    if isinstance(crf, bool) or not isinstance(crf, int | float) or not 0 <= crf <= 51:
        raise SynthError(f"crf must be a number from 0 to 51, got {crf!r}")
    if bframes is not None and (isinstance(bframes, bool) or not isinstance(bframes, int) or not 0 <= bframes <= 16):
        raise SynthError(f"bframes must be an integer from 0 to 16, got {bframes!r}")
    maker = FrameMaker(
        duration_s=duration_s, width=width, height=height, fps=fps, gop_s=gop_s, seed=seed,
        needles=needles, needle_kinds=needle_kinds, frame_code=frame_code, scene_s=scene_s, text_cap=text_cap,
    )  # fmt: skip
    path = Path(path)
    key_path = Path(key_path) if key_path is not None else path.with_suffix(".json")
    if path.is_dir():
        raise VideoError(path, "is a folder; give a file name such as out.mp4")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VideoError(path, f"cannot create its folder ({exc.strerror or exc})") from None
    tmp = path.with_name(f".{path.name}.partial{path.suffix}")
    keyint = max(1, round(maker.gop_s * maker.fps))
    n = maker.frame_count
    cut_frames = set(maker.scene_starts[1:])

    # Frames go round a fixed pool: the producer paints into a free frame, the encoder hands it back
    # once x264 has copied it. Reusing buffers avoids touching fresh memory for every frame.
    pool_size = 12
    ready: queue.Queue = queue.Queue()
    free: queue.Queue = queue.Queue()
    for _ in range(pool_size):
        frame = av.VideoFrame(maker.width, maker.height, "yuv420p")
        planes = tuple(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)
        free.put((frame, planes))
    stop = threading.Event()
    time_base = 1 / maker.rate

    def produce() -> None:
        try:
            for i in range(n):
                while True:
                    if stop.is_set():
                        return
                    try:
                        frame, planes = free.get(timeout=0.1)
                        break
                    except queue.Empty:
                        continue
                maker.render_into(i, *planes)
                frame.pts = i
                frame.time_base = time_base
                # a hard cut starts a new GOP
                frame.pict_type = PictureType.I if i in cut_frames else PictureType.NONE
                ready.put((frame, planes))
        except BaseException as exc:  # handed to the encoding thread
            ready.put(exc)

    try:
        container = av.open(str(tmp), "w", format=_FORMATS.get(path.suffix.lower(), "mp4"))
    except (OSError, av.FFmpegError) as exc:
        raise VideoError(path, f"cannot write ({exc})") from None
    producer = threading.Thread(target=produce, name="longlens-synth-frames", daemon=True)
    ok = False
    try:
        stream = container.add_stream("libx264", rate=maker.rate)
        stream.width, stream.height, stream.pix_fmt = maker.width, maker.height, "yuv420p"
        stream.codec_context.time_base = 1 / maker.rate
        stream.codec_context.options = {
            "preset": preset,
            "crf": f"{crf:g}",
            "forced-idr": "1",
            "x264-params": _x264_params(keyint, maker.fps, bframes),
        }
        producer.start()
        step = max(1, round(maker.fps))
        for done in range(1, n + 1):
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            for packet in stream.encode(item[0]):
                container.mux(packet)
            free.put(item)
            if progress is not None and (done % step == 0 or done == n):
                progress(done, n)
        for packet in stream.encode(None):
            container.mux(packet)
        ok = True
    finally:
        stop.set()
        if producer.is_alive():
            producer.join()
        try:
            container.close()
        finally:
            if not ok:
                tmp.unlink(missing_ok=True)
    tmp.replace(path)
    key = maker.key(path.name)
    key.save(key_path)
    return key
