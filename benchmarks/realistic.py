"""Benchmark videos like real uploads: 1280x720, 30 fps, H.264 at 3-4 Mbit/s, long GOPs.

    python benchmarks/realistic.py --minutes 60 --gop 250     # make (once) and print the path

Real uploads are 2-8 Mbit/s with a keyframe every 2-10 s; the synthetic needle videos (`longlens.synth`)
are 0.6 Mbit/s with a keyframe every 5 s plus scene cuts, which makes every decode-bound method look
faster than it is on users' files. A realistic video here is a 100-second segment, encoded once, then
concatenated with `-c copy` (no re-encode) to the length asked:

* picture: a panning test pattern (colour bars, a zone plate, a gradient) under fresh Gaussian noise in
  every frame (sigma 7 on luma), so every frame costs bits, as camera noise does;
* x264 `medium` (3 B-frames, B-pyramid, 3 references), ABR 3.5 Mbit/s (VBV max 4 Mbit/s), a keyframe
  every `gop` frames exactly and none at scene changes (`scenecut=0`);
* the top band carries the frame's index in its segment (`longlens.synth.code`, 3000 frames a segment):
  `frame_index(code, target)` turns a read code back into the absolute frame index nearest a target.

Segments are 3000 frames (100 s) so GOP 250 and GOP 60 both divide them: every GOP of the long video has
the same length.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench"))
SEGMENT = 3000
FPS = 30
WIDTH, HEIGHT = 1280, 720
BITRATE = 3_500_000


def frame_index(code: int | np.ndarray, target: int | np.ndarray) -> np.ndarray:
    """The absolute frame index whose segment code is `code`, nearest to frame `target`."""
    code, target = np.asarray(code, np.int64), np.asarray(target, np.int64)
    # the copy of `code` nearest the target: within half a segment of it
    return target + (code - target + SEGMENT // 2) % SEGMENT - SEGMENT // 2


def _pattern(w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A test pattern twice the frame's width (it pans), as yuv420p planes."""
    ww = 2 * w
    x = np.arange(ww)[None, :]
    y = np.arange(h)[:, None]
    bars = np.array([235, 210, 170, 145, 106, 81, 41, 16], np.float64)
    luma = np.empty((h, ww))
    top = h // 2
    luma[:top] = bars[(x * 16 // ww) % 8]
    r = ((x - ww / 2) ** 2 + (y[top:] - h * 0.75) ** 2) / (ww * 6)
    luma[top:] = 126 + 90 * np.sin(r)
    luma[top:, : ww // 4] = 16 + 219 * (x[:, : ww // 4] / (ww / 4))
    u = np.full((h // 2, ww // 2), 128.0)
    v = np.full((h // 2, ww // 2), 128.0)
    cx = np.arange(ww // 2)[None, :]
    u[: top // 2] = 128 + 70 * np.sin(cx / 37.0)
    v[: top // 2] = 128 + 70 * np.cos(cx / 53.0)
    return luma, u, v


def _encode_segment(path: Path, gop: int, codec: str) -> None:
    import av

    from longlens.synth.code import FrameCodePainter

    rng = np.random.default_rng(1234)
    luma, u, v = _pattern(WIDTH, HEIGHT)
    bank = [rng.normal(0, 7, (HEIGHT + 64, WIDTH + 64)).astype(np.float32) for _ in range(8)]
    painter = FrameCodePainter(WIDTH, HEIGHT)
    tmp = path.with_name(path.stem + ".part.mp4")
    container = av.open(str(tmp), "w")
    enc = "libx264" if codec == "h264" else "libx265"
    stream = container.add_stream(enc, rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    stream.codec_context.time_base = Fraction(1, FPS)
    stream.bit_rate = BITRATE
    if codec == "h264":
        stream.codec_context.options = {
            "preset": "medium",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:vbv-maxrate=4000:vbv-bufsize=8000",
        }
    else:
        stream.codec_context.options = {
            "preset": "fast",
            "x265-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:vbv-maxrate=4000:vbv-bufsize=8000:"
                           "log-level=error",
        }
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes]
    for i in range(SEGMENT):
        dx = (2 * i) % WIDTH
        noise = bank[i % len(bank)]
        oy, ox = rng.integers(0, 64, 2)
        y = luma[:, dx : dx + WIDTH] + noise[oy : oy + HEIGHT, ox : ox + WIDTH]
        np.clip(y, 16, 235, out=y)
        planes[0][:] = y.astype(np.uint8)
        planes[1][:] = u[:, dx // 2 : dx // 2 + WIDTH // 2].astype(np.uint8)
        planes[2][:] = v[:, dx // 2 : dx // 2 + WIDTH // 2].astype(np.uint8)
        painter.draw(planes[0], planes[1], planes[2], i)
        frame.pts = i
        frame.time_base = Fraction(1, FPS)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    tmp.replace(path)


def realistic_video(minutes: float, gop: int = 250, codec: str = "h264") -> Path:
    """The path of a realistic benchmark video of `minutes` (a whole number of 100-s segments), made once."""
    n = max(1, round(minutes * 60 * FPS / SEGMENT))
    tag = f"{codec}-gop{gop}"
    path = BENCH / f"real-{n * SEGMENT // (60 * FPS):g}min-{tag}.mp4"
    if path.exists():
        return path
    BENCH.mkdir(parents=True, exist_ok=True)
    seg = BENCH / f"real-segment-{tag}.mp4"
    if not seg.exists():
        print(f"encoding the 100-s segment {seg.name} (once) ...", flush=True)
        t0 = time.perf_counter()
        _encode_segment(seg, gop, codec)
        print(f"  encoded in {time.perf_counter() - t0:.0f} s", flush=True)
    lst = BENCH / f"concat-{tag}-{n}.txt"
    lst.write_text("".join(f"file '{seg.resolve()}'\n" for _ in range(n)))
    tmp = path.with_name(path.stem + ".part.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy",
                    "-movflags", "+faststart", str(tmp)], check=True)
    lst.unlink()
    tmp.replace(path)
    return path


def describe(path: Path) -> str:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        secs = float(s.duration * s.time_base)
        mbit = path.stat().st_size * 8 / secs / 1e6
        return f"{path.name}: {secs / 60:.0f} min, {s.width}x{s.height}, {float(s.average_rate):g} fps, " \
               f"{s.codec_context.name}, {mbit:.2f} Mbit/s"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--gop", type=int, default=250)
    ap.add_argument("--codec", choices=["h264", "hevc"], default="h264")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    print(describe(realistic_video(a.minutes, a.gop, a.codec)))
