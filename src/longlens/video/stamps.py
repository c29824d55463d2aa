"""The red timestamp drawn on every frame (NumPro style: `add_frame_numbers_batch`,
HumanMLLM/LOVE-R1@aa1facb VLMEvalKit/vlmeval/vlm/qwen2_vl/model_sample_frame.py:204-229).

The number is the frame's time in whole seconds, floored. Size ``int(min(W, H) / 8)`` of the source
frame; position from the text's bounding box: ``x = W - tw``, ``y = H - th - th/3`` with
``tw, th = bbox width + 10, bbox height + 10`` (PIL's default top-left anchor); colour (255, 0, 0);
drawn on the full-size RGB frame, before the resize, as the reference draws it with PIL (the blend below is
pixel-identical to ``ImageDraw.text(..., fill="red")``; tests compare it with the reference's own frames).

The reference uses "Arial Unicode"; we ship Liberation Sans (SIL OFL 1.1), which has Arial's metrics,
so boxes and positions match (the reference's font file is not in its public repository; docs/fidelity.md).
The font is loaded once per size, and each distinct number is
rendered once per frame size into an alpha mask that is then blended into frames.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RED = (255, 0, 0)
FONT_FILE = "LiberationSans-Regular.ttf"


@lru_cache(maxsize=64)
def stamp_font(size: int) -> ImageFont.FreeTypeFont:
    """The stamp font at `size` px (the packaged Liberation Sans; Pillow's built-in font if absent)."""
    try:
        ref = resources.files("longlens.video") / "fonts" / FONT_FILE
        with resources.as_file(ref) as path:
            return ImageFont.truetype(str(path), size)
    except (OSError, FileNotFoundError):  # pragma: no cover - only if the package data is missing
        return ImageFont.load_default(size)


def stamp_layout(text: str, width: int, height: int) -> tuple[float, float, int]:
    """(x, y, font size) of the stamp on a `width` x `height` frame, by the reference arithmetic."""
    size = int(min(width, height) / 8)
    font = stamp_font(max(size, 1))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    tw = right - left + 10
    th = bottom - top + 10
    return width - tw, height - th - th / 3, max(size, 1)


@lru_cache(maxsize=4096)
def stamp_mask(text: str, width: int, height: int) -> tuple[int, int, np.ndarray]:
    """(y0, x0, alpha) where alpha (uint8) covers the frame region [y0:, x0:] holding the stamp."""
    x, y, size = stamp_layout(text, width, height)
    x0 = max(0, int(x) - 4)
    y0 = max(0, int(y) - 4)
    canvas = Image.new("L", (width - x0, height - y0), 0)
    # integer offsets keep the fractional part of (x, y), which PIL uses for sub-pixel placement
    ImageDraw.Draw(canvas).text((x - x0, y - y0), text, fill=255, font=stamp_font(size))
    alpha = np.asarray(canvas, dtype=np.uint8)
    alpha.setflags(write=False)
    return y0, x0, alpha


def draw_stamp_rgb(image: np.ndarray, text: str) -> np.ndarray:
    """Blend the red stamp into an H x W x 3 uint8 RGB array, in place; returns it."""
    h, w = image.shape[:2]
    y0, x0, alpha = stamp_mask(text, w, h)
    a = alpha.astype(np.float32)[..., None] / 255.0
    region = image[y0:, x0:].astype(np.float32)
    red = np.asarray(RED, dtype=np.float32)
    image[y0:, x0:] = np.rint(region * (1 - a) + red * a).astype(np.uint8)
    return image
