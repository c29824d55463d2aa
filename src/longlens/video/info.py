"""Opening a video: `open_video(path) -> VideoInfo`.

The frame index is the presentation timestamp of every frame and which frames are keyframes. It is read
from the container's own index where there is one (the MP4/MOV sample tables: `container_index`), which
costs a few megabytes of reading however long the video, and checked against the packets of the first and
the last GOP; without a usable index (Matroska/WebM, fragmented MP4 ...), or when the check disagrees,
every packet is demuxed (no decoding). Times are seconds from the first frame, taken from the pts, so
variable-frame-rate files are right. The index is cached by content fingerprint, so opening the same file
again reads a few megabytes and nothing else.
"""

from __future__ import annotations

import hashlib
import os
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from longlens.errors import VideoError
from longlens.video.cache import FrameCache
from longlens.video.container_index import ContainerIndex, NoIndex, read_index

INDEX_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True, eq=False)
class VideoInfo:
    """What LongLens knows about a video file. Times are seconds from the first frame."""

    path: str
    fingerprint: str
    """Content identity: a hash of the size and of sampled 1 MiB chunks."""
    duration_s: float
    """n_frames / fps: the span the frames cover (last frame's time plus one frame)."""
    fps: float
    """Average frame rate (the stream's declared rate when the timestamps agree with it)."""
    n_frames: int
    width: int
    """Display width, after rotation."""
    height: int
    rotation: int
    """Degrees the decoded picture must be rotated (counter-clockwise) for display."""
    codec: str
    time_base: Fraction = field(repr=False)
    pts: np.ndarray = field(repr=False)
    """Presentation timestamps of all frames, ascending, in `time_base` units."""
    keyframes: np.ndarray = field(repr=False)
    """Indices (into `pts`) of keyframes, ascending."""
    index_source: str = "demux"
    """Where the frame index came from: "mp4" or "matroska" (the container's index) or "demux"."""

    @property
    def times_s(self) -> np.ndarray:
        """Time of every frame in seconds from the first frame."""
        return (self.pts - self.pts[0]).astype(np.float64) * float(self.time_base)

    def time_of(self, index: int) -> float:
        return float((int(self.pts[index]) - int(self.pts[0])) * self.time_base)

    def second_of(self, index: int) -> int:
        """Whole seconds (floored) of frame `index`, computed exactly: the number its stamp shows."""
        return int((int(self.pts[index]) - int(self.pts[0])) * self.time_base // 1)

    def index_at(self, t: float) -> int:
        """Index of the frame shown at time `t` (the last frame starting at or before it), clamped."""
        i = int(np.searchsorted(self.times_s, t + 1e-6, side="right")) - 1
        return min(max(i, 0), self.n_frames - 1)

    @property
    def gop_s(self) -> float:
        """Mean keyframe interval in seconds."""
        return self.duration_s / max(len(self.keyframes), 1)


def fingerprint(path: str | os.PathLike) -> str:
    """A content identity: sha256 over the size and 1 MiB chunks at the start, middle and end."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(f"longlens-fp-1:{size}:".encode())
    with open(p, "rb") as f:
        for off in sorted({0, max(0, size // 2 - _CHUNK // 2), max(0, size - _CHUNK)}):
            f.seek(off)
            h.update(f.read(_CHUNK))
    return h.hexdigest()[:32]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(path, "no such file; check the path")
    if path.is_dir():
        raise VideoError(path, "is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes); re-download or re-encode it")
    if not os.access(path, os.R_OK):
        raise VideoError(path, "cannot be read (permission denied); check its permissions")


def _looks_like_mp4(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(12)[4:8] == b"ftyp"


def open_container(path: str | Path):
    path = Path(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        if _looks_like_mp4(path):
            raise VideoError(
                path, "truncated or damaged MP4: its index (moov box) is missing; re-download or remux it"
            ) from exc
        if isinstance(exc, av.error.EOFError):
            raise VideoError(path, "truncated: the file ends before any video data; re-download it") from exc
        raise VideoError(path, "not a video: FFmpeg recognises no container format in it") from exc
    except av.error.FFmpegError as exc:
        raise VideoError(path, f"cannot be opened by FFmpeg ({exc.strerror or exc})") from exc


def video_stream(container, path: str | Path):
    if not container.streams.video:
        if container.streams.audio:
            raise VideoError(path, "audio only: the file has no video stream")
        if not container.streams:
            raise VideoError(path, "zero duration: the file holds no streams and no frames")
        raise VideoError(path, "has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.codec is None:
        raise VideoError(path, "unreadable codec: FFmpeg has no decoder for its video stream; re-encode it")
    return stream


def _declared_video_seconds(container, stream) -> float:
    """The video stream's duration as the container declares it (0 if it declares none)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION") or (stream.metadata or {}).get("duration")
    if tag:
        parts = tag.split(":")
        if len(parts) == 3:
            with suppress(ValueError):
                return int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
    if len(container.streams) == 1 and container.duration:
        return container.duration / 1e6
    return 0.0


def _rate(stream, pts: np.ndarray, tb: Fraction) -> Fraction:
    n = len(pts)
    measured = Fraction(int(pts[-1] - pts[0]) * tb.numerator, (n - 1) * tb.denominator) if n > 1 else None
    declared = stream.average_rate or stream.guessed_rate or stream.base_rate
    declared = Fraction(declared) if declared else None
    if measured is None or measured == 0:
        return declared if declared else Fraction(1)
    measured_rate = 1 / measured
    if declared and abs(float(declared) / float(measured_rate) - 1) < 2e-3:
        return declared
    return measured_rate


def _demux_index(path: Path, container, stream, tb: Fraction) -> tuple[np.ndarray, np.ndarray]:
    """Every packet's pts and keyframe flag by demuxing the whole video stream (no decoding)."""
    declared_frames = int(stream.frames or 0)
    pts_list: list[int] = []
    key_pts: list[int] = []
    truncated = None
    discarded = 0  # packets an edit list leaves out (a cut inside a GOP): read, not shown, not missing
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.is_discard:
                discarded += 1
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                continue
            pts_list.append(ts)
            if packet.is_keyframe:
                key_pts.append(ts)
    except av.error.FFmpegError as exc:
        truncated = str(exc.strerror or exc)
    if not pts_list:
        if truncated:
            raise VideoError(path, f"truncated or corrupt: no video packet could be read ({truncated})")
        raise VideoError(path, "zero duration: the video stream has no frames")
    pts = np.unique(np.asarray(pts_list, dtype=np.int64))
    if truncated or (declared_frames and len(pts_list) + discarded < 0.98 * declared_frames - 1):
        raise VideoError(
            path,
            f"truncated: the container declares {declared_frames} frames but only {len(pts_list)} "
            "can be read; re-download or remux the file",
        )
    declared_s = _declared_video_seconds(container, stream)
    readable_s = float((int(pts[-1]) - int(pts[0])) * tb)
    if declared_s > 0.5 and readable_s < 0.9 * declared_s - 0.5:
        raise VideoError(
            path,
            f"truncated: the container declares {declared_s:.1f} s but video data stops at "
            f"{readable_s:.1f} s; re-download or remux the file",
        )
    key_idx = np.searchsorted(pts, np.unique(np.asarray(key_pts, dtype=np.int64)))
    if len(key_idx) == 0 or key_idx[0] != 0:
        key_idx = np.concatenate([[0], key_idx]).astype(np.int64)
    return pts, key_idx.astype(np.int64)


def _packets_from(container, stream, pts: int | None, limit: int) -> list[tuple[int, bool]]:
    """(pts, keyframe) of up to `limit` packets from the keyframe at or before `pts` (None: the start)."""
    if pts is not None:
        container.seek(pts, stream=stream, backward=True)
    out: list[tuple[int, bool]] = []
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_discard:
            continue
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is not None:
            out.append((int(ts), bool(packet.is_keyframe)))
        if len(out) >= limit:
            break
    return out


def _disagreement(index: ContainerIndex, container, stream, tb: Fraction) -> str | None:
    """Why the container's index cannot be used as it is (None: it agrees with the packets it was checked on).

    Checked by demuxing: the packets of the first GOP (and a little more) and of the last GOP must be frames of
    the index, keyframes where the index says so, and the last GOP must hold as many frames as the index gives it.
    """
    if index.time_base != tb:
        return f"time base {index.time_base} differs from the stream's {tb}"
    if len(index.pts) == 0:
        return "no frames in the index"
    pts, keys = index.pts, index.keyframes
    is_key = np.zeros(len(pts), bool)
    is_key[keys] = True

    def agrees(packets) -> bool:
        got = np.asarray([p for p, _ in packets], dtype=np.int64)
        at = np.searchsorted(pts, got)
        if (at >= len(pts)).any() or (pts[np.minimum(at, len(pts) - 1)] != got).any():
            return False
        return all(is_key[i] for i, (_, k) in zip(at.tolist(), packets, strict=True) if k)

    head = _packets_from(container, stream, None, 2 * int(np.diff(keys[:2])[0]) + 8 if len(keys) > 1 else 300)
    if not head or not agrees(head):
        return "the first packets are not the index's frames"
    last_key = int(pts[keys[-1]])
    tail = _packets_from(container, stream, last_key, len(pts) - int(keys[-1]) + 64)
    tail = [p for p in tail if p[0] >= last_key]
    if not agrees(tail) or len({p for p, _ in tail}) != len(pts) - int(keys[-1]):
        return "the last GOP's packets are not the index's frames"
    return None


class _IndexRead(threading.Thread):
    """`read_index(path)` in a daemon thread; `result()` is the index, or None when the container has none."""

    def __init__(self, path: Path):
        super().__init__(name="longlens-index", daemon=True)
        self.path, self.index = path, None
        self.start()

    def run(self) -> None:
        with suppress(NoIndex, OSError):
            self.index = read_index(self.path)

    def result(self) -> ContainerIndex | None:
        self.join()
        return self.index


def _scan(path: Path, *, from_index: bool = True) -> dict:
    """The frame index (from the container's index, checked, or by demuxing), and the first frame decoded."""
    # the container's index is read beside FFmpeg's own opening of the file (which parses the same moov box, in
    # C, without the GIL): on a 3-hour MP4 each takes about 65 ms. A thread of this call's own, not a pool: a pool
    # made before a fork (DataLoader workers) has no threads in the child and would never run the read.
    reading = _IndexRead(path) if from_index else None
    container = open_container(path)
    try:
        stream = video_stream(container, path)
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        index, source = None, "demux"
        if reading is not None:
            index = reading.result()
        if index is not None:
            size = path.stat().st_size
            if index.data_end > size:
                raise VideoError(
                    path,
                    f"truncated: the index places video data up to byte {index.data_end} but the file has "
                    f"{size} bytes; re-download or remux the file",
                )
            with suppress(av.error.FFmpegError):  # packets that cannot be read to check against: demux below
                if _disagreement(index, container, stream, tb) is None:
                    pts, key_idx, source = index.pts.astype(np.int64), index.keyframes.astype(np.int64), index.source
        if source == "demux":
            if index is not None:  # the check read packets: demux from a fresh start
                container.close()
                container = open_container(path)
                stream = video_stream(container, path)
            pts, key_idx = _demux_index(path, container, stream, tb)
        rate = _rate(stream, pts, tb)
        # decode the first frame: proves the codec is readable and gives the display rotation
        try:
            container.seek(int(pts[0]), stream=stream, backward=True)
            frame = next(container.decode(stream))
        except (StopIteration, av.error.FFmpegError) as exc:
            raise VideoError(path, "unreadable: the first video frame cannot be decoded; re-encode it") from exc
        rotation = int(getattr(frame, "rotation", 0) or 0) % 360
        w, h = frame.width, frame.height
        if rotation in (90, 270):
            w, h = h, w
        if w <= 0 or h <= 0:
            raise VideoError(path, "has a video stream with no picture size")
        return {
            "time_base": [tb.numerator, tb.denominator],
            "rate": [rate.numerator, rate.denominator],
            "width": w,
            "height": h,
            "rotation": rotation,
            "codec": stream.codec_context.name,
            "source": source,
            "pts": pts,
            "keyframes": key_idx,
        }
    finally:
        container.close()


def open_video(path: str | os.PathLike, *, cache: FrameCache | None = None, from_index: bool = True) -> VideoInfo:
    """Open `path` and return its `VideoInfo`; raises `VideoError` with a one-line reason if unusable.

    With a `cache`, the frame index is stored under the file's content fingerprint and reused.
    `from_index=False` demuxes every packet instead of reading the container's index (the arrays are the same).
    """
    p = Path(path)
    _check_file(p)
    fp = fingerprint(p)
    key = f"{fp}-v{INDEX_VERSION}"
    scan = None
    if cache is not None:
        got = cache.get("index", key)
        if got is not None:
            meta, arrays = got
            scan = dict(meta, pts=np.asarray(arrays["pts"]), keyframes=np.asarray(arrays["keyframes"]))
    if scan is None:
        scan = _scan(p, from_index=from_index)
        if cache is not None:
            meta = {k: v for k, v in scan.items() if k not in ("pts", "keyframes")}
            cache.put("index", key, meta, {"pts": scan["pts"], "keyframes": scan["keyframes"]})
    tb = Fraction(*scan["time_base"])
    rate = Fraction(*scan["rate"])
    n = len(scan["pts"])
    return VideoInfo(
        path=str(p),
        fingerprint=fp,
        duration_s=float(n / rate),
        fps=float(rate),
        n_frames=n,
        width=int(scan["width"]),
        height=int(scan["height"]),
        rotation=int(scan["rotation"]),
        codec=str(scan["codec"]),
        time_base=tb,
        pts=scan["pts"],
        keyframes=scan["keyframes"],
        index_source=str(scan.get("source", "demux")),
    )
