"""Rendering messages to the OpenAI chat-completions wire format (as vLLM and SGLang accept it).

A video part becomes ONE ``video_url`` item (Qwen-VL checkpoints were trained on video input, not on loose
images), in one of three formats (`VIDEO_FORMATS`):

* ``mp4`` (default): the already-decoded, stamped frames as lossless PNG pictures in an MP4 whose frame rate
  is the plan's sampling rate, exactly (``data:video/mp4;base64,...``). The server's own loader reads the rate
  from the container, so every video of a prompt keeps its own rate (Qwen2.5-VL's ``second_per_grid_ts``, the
  temporal positions) without any per-request keyword the server must be told to trust, and the pixels arrive
  bit-exact (the red stamps included). An odd number of frames is padded with a copy of the last frame, as
  the Qwen-VL processors pad it (vLLM's loader would drop it instead). Measured against vLLM 0.32 in
  tests/test_vllm_server.py.
* ``jpeg``: a JPEG sequence, ``data:video/jpeg;base64,<frame 1>,<frame 2>,...`` (JPEG quality 95, 4:4:4). It
  carries no rate: vLLM gives every such video the server's ``--media-io-kwargs`` ``video.fps`` (default 1.0).
* ``images``: each frame an ``image_url`` (servers without video input).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from PIL import Image as PILImage

from longlens.backends.memo import ByArray
from longlens.prompts.messages import Image, Message, Text, Video

VIDEO_FORMATS = ("mp4", "jpeg", "images")

VLLM_SETTINGS = {
    "mm_processor_kwargs": {"size": {"shortest_edge": 784, "longest_edge": 12845056}},
    "media_io_kwargs": {"video": {"num_frames": -1, "fps": 30}},
}
"""What a vLLM engine needs to take our videos as they are: the processor's pixel limits opened (frames already on
the 28-pixel grid are not resized) and the video loader keeping every frame (it resamples clips to ``fps``; 30 is
its ceiling). ``vllm serve --mm-processor-kwargs ... --media-io-kwargs ...`` (`serve_flags`) or
``vllm.LLM(..., **VLLM_SETTINGS)``."""


def serve_flags() -> str:
    """`VLLM_SETTINGS` as ``vllm serve`` flags."""
    return " ".join(f"--{k.replace('_', '-')} '{json.dumps(v)}'" for k, v in VLLM_SETTINGS.items())


def jpeg_b64(pixels: np.ndarray, quality: int = 95) -> str:
    """A JPEG picture, base64: 4:4:4 (no chroma subsampling: PIL's default 4:2:0 smears the red stamps)."""
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels)).save(buf, format="JPEG", quality=quality, subsampling=0)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def container_rate(fps: float) -> Fraction:
    """The MP4 frame rate that reads back as `fps` (plans round rates to 2 decimals: 0.21 -> 21/100)."""
    if not fps > 0:
        raise ValueError(f"a video's sampling rate must be positive, got {fps}")
    rate = Fraction(fps).limit_denominator(1_000_000)
    if float(rate) != float(fps):
        rate = Fraction(fps)
    return rate


def mp4_bytes(frames: np.ndarray, fps: float, *, temporal_patch: int = 2) -> bytes:
    """`frames` (T, H, W, 3) uint8 as lossless PNG pictures in an MP4 at exactly `fps` frames per second.

    T is padded to a multiple of `temporal_patch` with copies of the last frame (what the Qwen-VL processors
    do with a short last group; vLLM's loader would drop the odd frame instead)."""
    import av  # PyAV: a core dependency (the video layer decodes with it)

    n, h, w = frames.shape[:3]
    pad = (-n) % temporal_patch
    rate = container_rate(fps)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        # zlib level 1: 4.5x faster than FFmpeg's default level for 14% more bytes (benchmarks/vllm_requests.py)
        stream = out.add_stream("png", rate=rate, options={"compression_level": "1"})
        stream.width, stream.height, stream.pix_fmt = w, h, "rgb24"
        stream.codec_context.time_base = 1 / rate
        for i in range(n + pad):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[min(i, n - 1)]), format="rgb24")
            picture.pts = i
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def _encode(frames: np.ndarray, quality: int, fps: float | None) -> str:
    if fps is None:
        return "data:video/jpeg;base64," + ",".join(jpeg_b64(f, quality) for f in frames)
    return "data:video/mp4;base64," + base64.b64encode(mp4_bytes(frames, fps)).decode("ascii")


_ENCODED: ByArray[str] = ByArray()
"""The last few encoded videos: a zoom step re-sends the fast view of the step before, and questions on one video
share its frames (and start together), so each frame set is encoded once, not once per call."""


def video_url(frames: np.ndarray, quality: int = 95, fps: float | None = None) -> str:
    """A data URL of `frames`: an MP4 at `fps` (lossless), or a JPEG sequence when `fps` is None. Kept for
    reuse while the same array is sent again (frames are never written to after decoding)."""
    return _ENCODED.get(frames, (quality, fps), lambda: _encode(frames, quality, fps))


def to_openai(messages: Sequence[Message], *, video_format: str = "mp4", jpeg_quality: int = 95,
              media: dict[str, str] | None = None) -> list[dict]:
    """The chat messages of the OpenAI API, each video in `video_format` (see the module's notes).

    With a `media` dict, each data URL is left out: a short token stands in its place and `media` maps the token
    to the URL, for `json_bytes` to put back (a fast view's URL is megabytes that JSON would otherwise escape again
    for every request)."""
    if video_format not in VIDEO_FORMATS:
        raise ValueError(f"video format must be one of {', '.join(VIDEO_FORMATS)}, got {video_format!r}")

    def ref(url: str) -> str:
        if media is None:
            return url
        token = f"@@longlens-media-{len(media)}@@"
        media[token] = url
        return token

    out = []
    for m in messages:
        if m.role in ("system", "assistant") or all(isinstance(p, Text) for p in m.parts):
            out.append({"role": m.role, "content": m.plain_text})
            continue
        content: list[dict] = []
        for p in m.parts:
            if isinstance(p, Text):
                content.append({"type": "text", "text": p.text})
            elif isinstance(p, Video) and video_format != "images":
                url = _video_url(p, video_format, jpeg_quality)
                content.append({"type": "video_url", "video_url": {"url": ref(url)}})
            elif isinstance(p, Video):
                for f in p.frames.frames:
                    url = "data:image/jpeg;base64," + jpeg_b64(f, jpeg_quality)
                    content.append({"type": "image_url", "image_url": {"url": ref(url)}})
            elif isinstance(p, Image):
                url = "data:image/jpeg;base64," + jpeg_b64(p.pixels, jpeg_quality)
                content.append({"type": "image_url", "image_url": {"url": ref(url)}})
        out.append({"role": m.role, "content": content})
    return out


def _video_url(video: Video, video_format: str, jpeg_quality: int) -> str:
    fps = video.frames.plan.sample_fps if video_format == "mp4" else None
    return video_url(video.frames.frames, jpeg_quality, fps)


def encode_ahead(media: Sequence[Video], *, video_format: str = "mp4", jpeg_quality: int = 95) -> None:
    """Encode each video of `media` as `to_openai` will, into the cache of encoded videos, so that the calls that
    carry it find it there. Frames sent as separate images are encoded per call (nothing to do ahead)."""
    if video_format == "images":
        return
    for v in media:
        _video_url(v, video_format, jpeg_quality)


def json_bytes(body: dict, media: dict[str, str]) -> bytes:
    """`body` as compact UTF-8 JSON (as the openai SDK writes it), with every `media` token replaced by its URL.

    The URLs are data URLs of base64 (letters, digits, ``+/=:;,``): JSON needs no escape in them, so they go in
    as they are, a copy instead of an escaping pass over megabytes."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    for token, url in media.items():
        data = data.replace(token.encode(), url.encode(), 1)
    return data


def count_media(messages: Sequence[Message], frames_as_images: bool = False) -> dict[str, int]:
    videos = sum(isinstance(p, Video) for m in messages for p in m.parts)
    images = sum(isinstance(p, Image) for m in messages for p in m.parts)
    if frames_as_images:
        images += sum(len(p.frames) for m in messages for p in m.parts if isinstance(p, Video))
        videos = 0
    return {"video": videos, "image": images}
