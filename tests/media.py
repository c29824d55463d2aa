"""Small broken and unusual media files for the error tests, written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_video(path: Path, n: int = 60, size=(160, 96), options: dict | None = None) -> Path:
    container = av.open(str(path), "w", options=options or {})
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"preset": "ultrafast"}
    rng = np.random.default_rng(0)
    for _ in range(n):
        img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def _silence(container, stream, frames: int = 20) -> None:
    for _ in range(frames):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_audio_only(path: Path) -> Path:
    container = av.open(str(path), "w")
    _silence(container, container.add_stream("aac", rate=16000))
    container.close()
    return path


def write_zero_frames(path: Path) -> Path:
    """An MKV with a video stream that holds no frames (and some audio, so the file is valid)."""
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=30)
    video.width, video.height = 160, 96
    video.pix_fmt = "yuv420p"
    _silence(container, container.add_stream("aac", rate=16000))
    container.close()
    return path


def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def unknown_codec(src_mkv: Path, dst: Path) -> Path:
    """Rename the MKV's codec id to one FFmpeg has no decoder for."""
    data = src_mkv.read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    dst.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC"))
    return dst


def needle_suite(root: Path, seeds=(1, 2), *, duration_s: float = 40, needles: int = 2, stem: str = "n") -> Path:
    """A small synthetic benchmark folder: one 320x180 video with its answer key per seed."""
    from longlens.synth import make_video

    for seed in seeds:
        make_video(root / f"{stem}{seed}.mp4", duration_s=duration_s, width=320, height=180, fps=10, gop_s=2.0,
                   seed=seed, needles=needles)
    return root
