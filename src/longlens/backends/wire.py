"""Rendering messages to the OpenAI chat-completions wire format (as vLLM and SGLang accept it).

A video part becomes ONE ``video_url`` item whose URL is a JPEG sequence,
``data:video/jpeg;base64,<frame 1>,<frame 2>,...`` — the form vLLM accepts for already-decoded frames —
because Qwen-VL checkpoints were trained on video input, not on loose images. With
``frames_as_images`` (for servers without video support) each frame is an ``image_url`` instead.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image as PILImage

from longlens.prompts.messages import Image, Message, Text, Video


def jpeg_b64(pixels: np.ndarray, quality: int = 95) -> str:
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels)).save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def video_url(frames: np.ndarray, quality: int = 95) -> str:
    return "data:video/jpeg;base64," + ",".join(jpeg_b64(f, quality) for f in frames)


def to_openai(messages: Sequence[Message], *, frames_as_images: bool = False, jpeg_quality: int = 95) -> list[dict]:
    out = []
    for m in messages:
        if m.role in ("system", "assistant") or all(isinstance(p, Text) for p in m.parts):
            out.append({"role": m.role, "content": m.plain_text})
            continue
        content: list[dict] = []
        for p in m.parts:
            if isinstance(p, Text):
                content.append({"type": "text", "text": p.text})
            elif isinstance(p, Video) and not frames_as_images:
                content.append({"type": "video_url", "video_url": {"url": video_url(p.frames.frames, jpeg_quality)}})
            elif isinstance(p, Video):
                for f in p.frames.frames:
                    url = "data:image/jpeg;base64," + jpeg_b64(f, jpeg_quality)
                    content.append({"type": "image_url", "image_url": {"url": url}})
            elif isinstance(p, Image):
                url = "data:image/jpeg;base64," + jpeg_b64(p.pixels, jpeg_quality)
                content.append({"type": "image_url", "image_url": {"url": url}})
        out.append({"role": m.role, "content": content})
    return out


def video_fps(messages: Sequence[Message]) -> list[float]:
    """The sampling rate of each video part, in order (what Qwen2.5-VL's processor takes as ``fps``)."""
    return [p.frames.plan.sample_fps for m in messages for p in m.parts if isinstance(p, Video)]


def count_media(messages: Sequence[Message], frames_as_images: bool = False) -> dict[str, int]:
    videos = sum(isinstance(p, Video) for m in messages for p in m.parts)
    images = sum(isinstance(p, Image) for m in messages for p in m.parts)
    if frames_as_images:
        images += sum(len(p.frames) for m in messages for p in m.parts if isinstance(p, Video))
        videos = 0
    return {"video": videos, "image": images}
