"""Small precomputed yuv420p sprites painted over a scene: needle objects, text labels and moving shapes.

Needle objects are clearly coloured shapes (``COLOURS`` x ``SHAPES``) with a white outline, text labels
are black words or numbers on a white box, and the background's moving shapes are muted ellipses,
rectangles and bars, never a needle shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from longlens.synth.texture import _even, _hsv, _lerp, _rgb_to_yuv

# Saturated needle colours (RGB). Scene backgrounds and moving shapes stay muted, so these stand out.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30),
    "green": (30, 185, 50),
    "blue": (30, 75, 225),
    "yellow": (250, 220, 30),
    "magenta": (225, 40, 205),
    "cyan": (30, 215, 225),
    "orange": (250, 135, 20),
    "purple": (125, 45, 190),
}

# Needle shapes. Moving background shapes are elongated ellipses, rectangles and bars, never these.
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "cross")

# Text cap height, as a fraction of the frame height. Measured with RapidOCR on 1280x720 videos at crf 28
# (bicubic downscale): at 0.024 it read 156/156 labels at 336x588 and at 252x448, and 5/156 at 112x196;
# at 0.035 it still read about 70 % at 112x196.
TEXT_CAP = 0.024


# --- patches (moving shapes and needles) ---------------------------------------------------------------


@dataclass
class _Patch:
    """A precomputed yuv420p sprite: planes, and masks (None for an opaque rectangle)."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    ymask: np.ndarray | None
    cmask: np.ndarray | None

    @property
    def h(self) -> int:
        return self.y.shape[0]

    @property
    def w(self) -> int:
        return self.y.shape[1]

    def draw(self, Y: np.ndarray, U: np.ndarray, V: np.ndarray, x: int, y: int) -> None:
        """Paint at even (x, y), clipped to the frame."""
        H, W = Y.shape
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + self.w, W), min(y + self.h, H)
        if x1 <= x0 or y1 <= y0:
            return
        sy, sx = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
        cy, cx = slice(sy.start // 2, sy.stop // 2), slice(sx.start // 2, sx.stop // 2)
        dy, dx = slice(y0, y1), slice(x0, x1)
        dcy, dcx = slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2)
        if self.ymask is None:
            Y[dy, dx] = self.y[sy, sx]
            U[dcy, dcx] = self.u[cy, cx]
            V[dcy, dcx] = self.v[cy, cx]
        else:
            np.copyto(Y[dy, dx], self.y[sy, sx], where=self.ymask[sy, sx])
            np.copyto(U[dcy, dcx], self.u[cy, cx], where=self.cmask[cy, cx])
            np.copyto(V[dcy, dcx], self.v[cy, cx], where=self.cmask[cy, cx])


def _patch_from_rgba(rgb: np.ndarray, alpha: np.ndarray | None) -> _Patch:
    y, u, v = _rgb_to_yuv(rgb)
    if alpha is None:
        return _Patch(y, u, v, None, None)
    h, w = alpha.shape
    ymask = alpha >= 0.5
    cmask = alpha.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) >= 0.5
    return _Patch(y, u, v, ymask, cmask)


def _polygon(shape: str, size: float, inset: float) -> list[tuple[float, float]] | None:
    """Outline of a needle shape in a ``size`` box, shrunk by ``inset`` pixels (None for the circle)."""
    c = size / 2
    r = c - inset
    if shape == "circle":
        return None
    if shape == "square":
        a = r * 0.86
        return [(c - a, c - a), (c + a, c - a), (c + a, c + a), (c - a, c + a)]
    if shape == "triangle":
        pts = [(-90 + 120 * k) for k in range(3)]
        return [(c + r * math.cos(math.radians(t)), c + 0.12 * size + r * math.sin(math.radians(t))) for t in pts]
    if shape == "hexagon":
        return [(c + r * math.cos(math.radians(60 * k)), c + r * math.sin(math.radians(60 * k))) for k in range(6)]
    if shape == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * 0.42
            t = math.radians(-90 + 36 * k)
            pts.append((c + rr * math.cos(t), c + 0.05 * size + rr * math.sin(t)))
        return pts
    if shape == "cross":
        a, b = r * 0.95, r * 0.34
        return [
            (c - b, c - a), (c + b, c - a), (c + b, c - b), (c + a, c - b), (c + a, c + b), (c + b, c + b),
            (c + b, c + a), (c - b, c + a), (c - b, c + b), (c - a, c + b), (c - a, c - b), (c - b, c - b),
        ]  # fmt: skip
    raise ValueError(f"unknown shape {shape!r}")


def _shape_mask(shape: str, size: int, inset: float, ss: int = 4) -> np.ndarray:
    """Anti-aliased coverage (0..1) of a needle shape in a ``size`` x ``size`` box."""
    big = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(big)
    poly = _polygon(shape, size * ss, inset * ss)
    if poly is None:
        a = inset * ss
        draw.ellipse((a, a, size * ss - a, size * ss - a), fill=255)
    else:
        draw.polygon(poly, fill=255)
    small = big.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255.0


def _object_patch(shape: str, colour: str, size: int) -> _Patch:
    ow = max(1.0, 0.05 * size)
    outer = _shape_mask(shape, size, 0.0)
    inner = _shape_mask(shape, size, ow)
    fill = np.array(COLOURS[colour], np.float32)
    white = np.full(3, 255.0, np.float32)
    rgb = _lerp(white, fill, np.clip(inner / np.maximum(outer, 1e-6), 0, 1))
    return _patch_from_rgba(rgb, outer)


@lru_cache(maxsize=16)
def _font(cap: int) -> tuple[ImageFont.ImageFont | ImageFont.FreeTypeFont, float]:
    """A font whose capital letters are about ``cap`` pixels tall, and the upscale factor it needs."""
    try:
        probe = ImageFont.load_default(size=100)
        if isinstance(probe, ImageFont.FreeTypeFont):
            _, top, _, bottom = probe.getbbox("H", anchor="ls")
            ratio = (bottom - top) / 100.0
            return ImageFont.load_default(size=max(4, round(cap / ratio))), 1.0
    except (OSError, ImportError, TypeError):  # pragma: no cover - Pillow without FreeType
        pass
    font = ImageFont.load_default()  # pragma: no cover
    _, top, _, bottom = font.getbbox("H")  # pragma: no cover
    return font, cap / max(1, bottom - top)  # pragma: no cover


def _text_patch(text: str, frame_h: int, text_cap: float = TEXT_CAP) -> _Patch:
    cap = max(4, round(text_cap * frame_h))
    font, scale = _font(cap)
    left, top, right, bottom = font.getbbox(text)
    tw, th = right - left, bottom - top
    canvas = Image.new("L", (tw + 4, th + 4), 255)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, fill=0, font=font)
    if scale != 1.0:  # pragma: no cover - bitmap font fallback
        canvas = canvas.resize((max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale))))
    pad_x, pad_y = round(0.6 * cap), round(0.45 * cap)
    w, h = _even(canvas.width + 2 * pad_x), _even(canvas.height + 2 * pad_y)
    label = Image.new("L", (w, h), 255)
    label.paste(canvas, ((w - canvas.width) // 2, (h - canvas.height) // 2))
    grey = np.asarray(label, np.float32)
    return _patch_from_rgba(np.repeat(grey[..., None], 3, axis=2), None)


def _moving_shape_patch(rng: np.random.Generator, frame_h: int) -> _Patch:
    kind = ("ellipse", "rect", "bar")[int(rng.integers(0, 3))]
    if kind == "bar":
        h = max(2, _even(rng.uniform(0.025, 0.05) * frame_h))
        w = max(4, _even(h * rng.uniform(4, 8)))
    else:
        h = max(2, _even(rng.uniform(0.06, 0.14) * frame_h))
        w = max(4, _even(h * rng.uniform(1.8, 3.0)))
    if rng.random() < 0.3:
        w, h = h, w
    colour = _hsv(rng.random(), rng.uniform(0.1, 0.4), rng.uniform(0.25, 0.9))
    img = Image.new("L", (w * 2, h * 2), 0)
    draw = ImageDraw.Draw(img)
    if kind == "ellipse":
        draw.ellipse((0, 0, w * 2 - 1, h * 2 - 1), fill=255)
    else:
        draw.rectangle((0, 0, w * 2 - 1, h * 2 - 1), fill=255)
    alpha = np.asarray(img.resize((w, h), Image.Resampling.BOX), np.float32) / 255.0
    shade = np.linspace(1.1, 0.85, h, dtype=np.float32)[:, None, None]
    rgb = np.clip(colour * shade * np.ones((h, w, 1), np.float32), 0, 255)
    return _patch_from_rgba(rgb, alpha)
