"""Scene backgrounds of synthetic videos, as yuv420p planes, and the colour helpers the patches share.

Each scene gets one of five procedural looks (clouds, stripes, tiles, bokeh or a horizon) from a muted
random palette, drawn once and larger than the frame so that the camera can pan over it.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# --- colour helpers ------------------------------------------------------------------------------------


def _even(x: float) -> int:
    return 2 * round(x / 2)


def _rgb_to_yuv_float(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HxWx3 RGB -> float32 Y, U, V planes of the same size, BT.601 limited range."""
    rgb = np.asarray(rgb, dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    return y, u, v


def _to_u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HxWx3 RGB (H, W even) -> uint8 Y (H, W) and U, V (H/2, W/2), BT.601 limited range."""
    y, u, v = _rgb_to_yuv_float(rgb)
    h, w = y.shape
    u = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    v = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return _to_u8(y), _to_u8(u), _to_u8(v)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32) * 255.0


# --- scene looks ---------------------------------------------------------------------------------------


def _smooth(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> np.ndarray:
    """Smooth noise in [0, 1] with about ``cells`` features across the shorter side."""
    th, tw = shape
    cy = max(2, round(cells * th / min(th, tw)))
    cx = max(2, round(cells * tw / min(th, tw)))
    grid = rng.random((cy + 1, cx + 1), dtype=np.float32)
    img = Image.fromarray(grid).resize((tw, th), Image.Resampling.BICUBIC)
    out = np.asarray(img, dtype=np.float32)
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[..., None]
    return a * (1.0 - t) + b * t


def _palette(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    base, spread = rng.random(), rng.uniform(0.04, 0.3)
    return [
        _hsv(base + k * spread + rng.normal(0, 0.02), rng.uniform(0.15, 0.5), rng.uniform(0.3, 0.85)) for k in range(n)
    ]


def _look_clouds(rng, shape, scale, pal):
    n1 = _smooth(rng, shape, rng.uniform(2, 5))
    n2 = _smooth(rng, shape, rng.uniform(8, 20))
    rgb = _lerp(pal[0], pal[1], n1)
    return _lerp(rgb, pal[2], 0.6 * n2 * n2)


def _look_stripes(rng, shape, scale, pal):
    th, tw = shape
    yy = np.arange(th, dtype=np.float32)[:, None]
    xx = np.arange(tw, dtype=np.float32)[None, :]
    theta = rng.uniform(0, math.pi)
    period = rng.uniform(40, 220) * scale
    warp = _smooth(rng, shape, rng.uniform(1.5, 4)) * rng.uniform(0.5, 3.0)
    phase = (xx * math.cos(theta) + yy * math.sin(theta)) * (2 * math.pi / period) + warp * 2 * math.pi
    s = np.clip(0.5 + rng.uniform(0.5, 2.0) * np.sin(phase), 0, 1)
    rgb = _lerp(pal[0], pal[1], s)
    shade = _smooth(rng, shape, rng.uniform(2, 5))
    return _lerp(rgb, pal[2], 0.5 * shade)


def _look_tiles(rng, shape, scale, pal):
    th, tw = shape
    ts = max(6, round(rng.uniform(30, 140) * scale))
    gy, gx = th // ts + 2, tw // ts + 2
    idx = rng.integers(0, len(pal), (gy, gx))
    cols = np.stack(pal)[idx] * rng.uniform(0.85, 1.15, (gy, gx, 1)).astype(np.float32)
    tiles = np.repeat(np.repeat(cols, ts, axis=0), ts, axis=1)
    if rng.random() < 0.5:  # brick bond: shift every other row of tiles by half a tile
        rows = (np.arange(tiles.shape[0]) // ts) % 2 == 1
        tiles[rows] = np.roll(tiles[rows], ts // 2, axis=1)
    rgb = tiles[:th, :tw].astype(np.float32)
    lw = max(1, round(ts * rng.uniform(0.04, 0.1)))
    yy = np.arange(th)[:, None] % ts < lw
    xx = np.arange(tw)[None, :] % ts < lw
    rgb[yy | xx] *= 0.45
    shade = _smooth(rng, shape, rng.uniform(1.5, 4))
    return rgb * (0.7 + 0.5 * shade[..., None])


def _look_bokeh(rng, shape, scale, pal):
    th, tw = shape
    t = np.linspace(0, 1, th, dtype=np.float32)[:, None] * np.ones((1, tw), np.float32)
    base = _lerp(pal[0], pal[1], t)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(25, 70))):
        r = rng.uniform(8, 70) * scale
        cx, cy = rng.uniform(0, tw), rng.uniform(0, th)
        c = pal[int(rng.integers(0, len(pal)))] * rng.uniform(0.8, 1.3)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in np.clip(c, 0, 255)))
    img = img.filter(ImageFilter.GaussianBlur(max(1.0, rng.uniform(2, 7) * scale)))
    return _lerp(base, np.asarray(img, np.float32), np.full((th, tw), 0.75, np.float32))


def _look_horizon(rng, shape, scale, pal):
    th, tw = shape
    knots = rng.random(int(rng.integers(4, 12)))
    hills = np.interp(np.linspace(0, len(knots) - 1, tw), np.arange(len(knots)), knots).astype(np.float32)
    horizon = th * (rng.uniform(0.35, 0.6) + (hills - 0.5) * rng.uniform(0.05, 0.2))
    yy = np.arange(th, dtype=np.float32)[:, None]
    sky_t = np.clip(yy / th / 0.6, 0, 1) * np.ones((1, tw), np.float32)
    sky = _lerp(pal[0] * 1.15, pal[1], sky_t)
    grain = _smooth(rng, shape, rng.uniform(20, 50))
    ground = _lerp(pal[2], pal[2] * 0.6, grain)
    depth = np.clip((yy - horizon[None, :]) / th, 0, 1)
    ground = ground * (1.0 - 0.4 * depth[..., None])
    sky_mask = (yy < horizon[None, :]).astype(np.float32)
    return _lerp(ground, sky, sky_mask)


_LOOKS = (_look_clouds, _look_stripes, _look_tiles, _look_bokeh, _look_horizon)


def _scene_texture(rng: np.random.Generator, th: int, tw: int, scale: float):
    """Y, U, V planes of one scene's look, ``th`` x ``tw`` (even), never pure white or black.

    The look is drawn at chroma resolution (half size, few and small temporaries: fresh memory is slow
    to touch in some sandboxes) and only luma is upscaled, then given a fine film grain.
    """
    look = _LOOKS[int(rng.integers(0, len(_LOOKS)))]
    rgb = look(rng, (th // 2, tw // 2), scale / 2, _palette(rng, 3))
    np.clip(rgb, 0, 255, out=rgb)
    rgb *= 0.8
    rgb += 10.0  # keep away from the white of labels and frame code
    y, u, v = _rgb_to_yuv_float(rgb)
    del rgb
    y = np.array(Image.fromarray(y).resize((tw, th), Image.Resampling.BICUBIC), dtype=np.float32)
    y += rng.standard_normal((th, tw), dtype=np.float32) * 2.0  # film grain
    return _to_u8(y), _to_u8(u), _to_u8(v)
