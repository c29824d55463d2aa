"""The red timestamp drawn on every frame (NumPro style, love-r1-spec §1.5).

The number is the frame's time in whole seconds, floored. Size ``int(min(W, H) / 8)`` of the source
frame; position from the text's bounding box: ``x = W - tw``, ``y = H - th - th/3`` with
``tw, th = bbox width + 10, bbox height + 10`` (PIL's default top-left anchor); colour (255, 0, 0);
drawn at source resolution, before any resize.

The reference uses "Arial Unicode"; we ship Liberation Sans (SIL OFL 1.1), which has Arial's metrics,
so boxes and positions match. The font is loaded once per size, and each distinct number is
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


def stamp_text(seconds: int) -> str:
    return str(int(seconds))


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
    """(y0, x0, alpha) where alpha (uint8) covers the frame region [y0:, x0:] holding the stamp.

    y0 and x0 are even, so the region lines up with 4:2:0 chroma planes.
    """
    x, y, size = stamp_layout(text, width, height)
    x0 = max(0, (int(x) - 4) // 2 * 2)
    y0 = max(0, (int(y) - 4) // 2 * 2)
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


def _blend(plane: np.ndarray, alpha: np.ndarray, value: int) -> None:
    a = alpha.astype(np.float32) / 255.0
    plane[...] = np.rint(plane * (1 - a) + value * a).astype(np.uint8)


def draw_stamp_planes(
    planes: list[np.ndarray], text: str, width: int, height: int, yuv: tuple[int, int, int]
) -> None:
    """Blend the stamp into planar 8-bit YUV planes (views of a frame), in place.

    `planes` are (Y, U, V) arrays of shape (h, w) each; chroma planes may be subsampled, in which
    case the alpha is box-averaged to their resolution. `yuv` is red in the frame's colour space.
    """
    y0, x0, alpha = stamp_mask(text, width, height)
    for plane, value in zip(planes, yuv, strict=True):
        sy = height // plane.shape[0] if plane.shape[0] else 1
        sx = width // plane.shape[1] if plane.shape[1] else 1
        a = alpha
        if sy > 1 or sx > 1:
            hh, ww = a.shape[0] // sy * sy, a.shape[1] // sx * sx
            a = a[:hh, :ww].reshape(hh // sy, sy, ww // sx, sx).mean(axis=(1, 3))
        ry, rx = y0 // sy, x0 // sx
        region = plane[ry : ry + a.shape[0], rx : rx + a.shape[1]]
        _blend(region, a[: region.shape[0], : region.shape[1]], value)
