"""Contact sheets: frames tiled into images, for looking at what a model is shown.

`contact_sheet` tiles every frame into one image, at the frames' own size. `contact_sheets` makes pages a
person can read at 100 %: at most `per_page` tiles each, tiles too small for their red second stamp
enlarged (nearest neighbour, whole factors), each tile captioned with its number and time, each page headed
with what it shows. `save_contact_sheets` writes them (``name.jpg`` for one page, ``name-01.jpg`` ... for more).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from longlens.video.stamps import stamp_font

BACKGROUND = (32, 32, 32)
CAPTION = (225, 225, 225)
PER_PAGE = 48
MIN_TILE_SIDE = 160
"""Tiles whose shorter side is below this are enlarged by a whole factor. The stamp's digits are about 9 % of that
side (its font is 1/8 of the source's shorter side, drawn before the resize): 10 px in the fast view's 196x112
frames, too few on a busy background; 20 px once doubled, and at least 14 px in any tile."""


def contact_sheet(frames: np.ndarray, columns: int | None = None, gap: int = 2) -> Image.Image:
    """Tile (T, H, W, 3) frames row by row into one RGB image, at their own size, without captions."""
    t, h, w, _ = frames.shape
    cols = columns or max(1, min(t, math.ceil(math.sqrt(t * h / w))))
    rows = math.ceil(t / cols)
    sheet = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), BACKGROUND[0], dtype=np.uint8)
    for i in range(t):
        r, c = divmod(i, cols)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = frames[i]
    return Image.fromarray(sheet)


def clock(seconds: float) -> str:
    """1:23.4 (or 1:02:03.4 past an hour)."""
    tenths = int(round(max(seconds, 0.0) * 10))
    s, t = divmod(tenths, 10)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}.{t}" if h else f"{m}:{s:02d}.{t}"


def tile_scale(side: int, min_side: int = MIN_TILE_SIDE) -> int:
    """The whole factor that brings a tile's shorter `side` to at least `min_side` px (1 if it already is)."""
    return max(1, math.ceil(min_side / max(1, side)))


def page_grid(n: int, tile_w: int, tile_h: int, aspect: float = 1.6) -> tuple[int, int]:
    """(columns, rows) for `n` tiles of `tile_w` x `tile_h`, the page about `aspect` times as wide as tall."""
    if n < 1:
        return 1, 0
    cols = max(1, min(n, round(math.sqrt(n * tile_h / tile_w * aspect))))
    return cols, math.ceil(n / cols)


def contact_sheets(
    frames: np.ndarray,
    times_s: Sequence[float] | None = None,
    *,
    per_page: int = PER_PAGE,
    min_tile_side: int = MIN_TILE_SIDE,
    title: str | None = None,
    gap: int = 4,
    aspect: float = 1.6,
) -> list[Image.Image]:
    """(T, H, W, 3) frames as pages of at most `per_page` tiles, each tile's shorter side at least `min_tile_side`
    px (enlarged by a whole factor, nearest neighbour) and captioned "#k  m:ss.s" (its number in `frames`, and
    its time when `times_s` is given); `title` heads every page with the page number and the frames on it."""
    t, h, w, _ = frames.shape
    if per_page < 1:
        raise ValueError(f"per_page must be at least 1, got {per_page}")
    if times_s is not None and len(times_s) != t:
        raise ValueError(f"{len(times_s)} times for {t} frames")
    k = tile_scale(min(h, w), min_tile_side)
    tw, th = w * k, h * k
    font = stamp_font(max(11, min(22, th // 9)))
    cap_h = font.size + 6
    head_font = stamp_font(font.size + 3)
    head_h = head_font.size + 12 if title else 0
    n_pages = max(1, math.ceil(t / per_page))
    cols, rows_full = page_grid(min(t, per_page), tw, th + cap_h, aspect)
    pages = []
    for p in range(n_pages):
        lo, hi = p * per_page, min(t, (p + 1) * per_page)
        rows = math.ceil((hi - lo) / cols) if hi > lo else 0
        width = cols * (tw + gap) + gap
        height = head_h + rows * (th + cap_h + gap) + gap
        page = Image.new("RGB", (width, max(height, head_h + gap + 1)), BACKGROUND)
        draw = ImageDraw.Draw(page)
        if title:
            text = f"{title}  ·  page {p + 1} of {n_pages}  ·  frames {lo + 1}-{hi} of {t}"
            if times_s is not None and hi > lo:
                text += f"  ·  {clock(times_s[lo])}-{clock(times_s[hi - 1])}"
            draw.text((gap + 2, 6), text, fill=CAPTION, font=head_font)
        for i in range(lo, hi):
            r, c = divmod(i - lo, cols)
            x, y = gap + c * (tw + gap), head_h + gap + r * (th + cap_h + gap)
            tile = frames[i] if k == 1 else np.repeat(np.repeat(frames[i], k, axis=0), k, axis=1)
            page.paste(Image.fromarray(np.ascontiguousarray(tile)), (x, y))
            caption = f"#{i + 1}" + (f"  {clock(times_s[i])}" if times_s is not None else "")
            draw.text((x + 2, y + th + 2), caption, fill=CAPTION, font=font)
        pages.append(page)
    return pages


def sheet_paths(path: str | Path, n_pages: int) -> list[Path]:
    """`path` itself for one page; ``stem-01.ext``, ``stem-02.ext`` ... for more."""
    path = Path(path)
    if n_pages == 1:
        return [path]
    digits = max(2, len(str(n_pages)))
    return [path.with_name(f"{path.stem}-{p:0{digits}d}{path.suffix}") for p in range(1, n_pages + 1)]


def save_contact_sheets(pages: Sequence[Image.Image], path: str | Path, **options) -> list[Path]:
    """Write `pages` (from `contact_sheets`) to `path` (one page) or numbered files beside it; returns them."""
    paths = sheet_paths(path, len(pages))
    for page, p in zip(pages, paths, strict=True):
        page.save(p, **options)
    return paths
