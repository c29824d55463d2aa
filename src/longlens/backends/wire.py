"""Rendering messages to the OpenAI chat-completions wire format (as vLLM and SGLang accept it).

A video part becomes ONE ``video_url`` item whose URL is a JPEG sequence,
``data:video/jpeg;base64,<frame 1>,<frame 2>,...`` — the form vLLM accepts for already-decoded frames —
because Qwen-VL checkpoints were trained on video input, not on loose images. With
``frames_as_images`` (for servers without video support) each frame is an ``image_url`` instead.
"""

from __future__ import annotations

import base64
import io
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from PIL import Image as PILImage

from longlens.prompts.messages import Image, Message, Text, Video


def jpeg_b64(pixels: np.ndarray, quality: int = 95) -> str:
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels)).save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class _Encoded:
    """The last few encoded videos, by array identity: a zoom step re-sends the fast view of the step before,
    and questions on one video share its frames, so each frame set is JPEG-encoded once, not once per call."""

    def __init__(self, keep: int = 8):
        self.keep = keep
        self.items: OrderedDict[tuple[int, int], tuple[weakref.ref, str]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, frames: np.ndarray, quality: int) -> str:
        key = (id(frames), quality)
        with self.lock:
            hit = self.items.get(key)
            if hit is not None and hit[0]() is frames:  # the same live array, not a new one at a reused address
                self.items.move_to_end(key)
                return hit[1]
        url = "data:video/jpeg;base64," + ",".join(jpeg_b64(f, quality) for f in frames)
        with self.lock:
            self.items[key] = (weakref.ref(frames), url)
            while len(self.items) > self.keep:
                self.items.popitem(last=False)
        return url


_ENCODED = _Encoded()


def video_url(frames: np.ndarray, quality: int = 95) -> str:
    """A JPEG-sequence data URL of `frames` (kept for reuse while the same array is sent again; frames are
    never written to after decoding)."""
    return _ENCODED.get(frames, quality)


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
