"""A frame's own index drawn as 17 black/white blocks in a grey band across the top of the frame.

The layout is defined in fractions of the frame size, so the code can be read back from a frame decoded
at any size down to about 112x196 (height x width; tested down to 72x128, and squashed to 112x112) after
bicubic, bilinear or Lanczos downscaling and H.264 at crf 28-35:

* band: the top ``BAND_H`` (11 %) of the frame, full width, mid grey;
* 17 equal cells between ``MARGIN_X`` and ``1 - MARGIN_X`` of the width, most significant bit first;
* in each cell a block (white = 1, black = 0) covering the middle 88 % of the cell's width and the rows
  between ``BLOCK_Y0`` and ``BLOCK_Y1`` of the height.

The bits are the Gray code of the index (``i ^ (i >> 1)``), so consecutive frames differ in exactly one
block and every block of a frame matches the frame before or the frame after: the band costs little to
encode and does not keep x264 from choosing B-frames.

The reader averages only the centre of each block, far enough from every edge that the blur of a 6.5x
bicubic downscale never reaches it.
"""

from __future__ import annotations

import numpy as np

BITS = 17
MAX_INDEX = (1 << BITS) - 1

BAND_H = 0.11
MARGIN_X = 0.03
BLOCK_X = (0.06, 0.94)  # block extent inside its cell
BLOCK_Y0, BLOCK_Y1 = 0.015, 0.095
SAMPLE_X = (0.32, 0.68)  # read-back window inside the cell
SAMPLE_Y = (0.04, 0.07)

# luma levels in limited-range YUV (decode to RGB 0, 130, 255)
_Y_BLACK, _Y_GREY, _Y_WHITE = 16, 128, 235

# a block whose mean RGB luma falls between these is neither black nor white: the code is unreadable
_AMBIGUOUS = (80.0, 176.0)


def band_rows(height: int) -> int:
    """Rows (even, so chroma lines up) covered by the frame-code band in a frame of this height."""
    return min(height, 2 * round(BAND_H * height / 2))


def _cell_width(width: float) -> float:
    return width * (1 - 2 * MARGIN_X) / BITS


class FrameCodePainter:
    """Draws frame codes into yuv420p planes of one frame size (precomputes the geometry)."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.rows = band_rows(height)
        self.y0 = round(BLOCK_Y0 * height)
        self.y1 = max(self.y0 + 1, round(BLOCK_Y1 * height))
        left, cw = MARGIN_X * width, _cell_width(width)
        self.cols = [(round(left + (k + BLOCK_X[0]) * cw), round(left + (k + BLOCK_X[1]) * cw)) for k in range(BITS)]
        self._row = np.empty(width, np.uint8)

    def draw(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, index: int) -> None:
        """Paint the code of ``index`` into the planes (``y`` full size, ``u``/``v`` half size)."""
        if not 0 <= index <= MAX_INDEX:
            raise ValueError(f"frame index {index} does not fit in {BITS} bits")
        row = self._row
        row.fill(_Y_GREY)
        gray = index ^ (index >> 1)
        for k, (x0, x1) in enumerate(self.cols):
            bit = (gray >> (BITS - 1 - k)) & 1
            row[x0:x1] = _Y_WHITE if bit else _Y_BLACK
        y[: self.y0] = _Y_GREY
        y[self.y0 : self.y1] = row
        y[self.y1 : self.rows] = _Y_GREY
        u[: self.rows // 2] = 128
        v[: self.rows // 2] = 128


def _window(lo: float, hi: float, n: int) -> slice:
    """Pixels whose centres lie in [lo, hi] (at least one pixel, clipped to 0..n)."""
    a = int(np.ceil(lo - 0.5))
    b = int(np.floor(hi - 0.5)) + 1
    if b <= a:
        a = int(np.clip(np.floor((lo + hi) / 2), 0, n - 1))
        b = a + 1
    return slice(max(0, a), min(n, b))


def frame_code_levels(rgb: np.ndarray) -> np.ndarray:
    """Mean luma (0-255) at the centre of each of the 17 blocks, most significant bit first."""
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] >= 3:
        luma = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    elif arr.ndim == 2:
        luma = arr.astype(np.float64)
    else:
        raise ValueError(f"expected an HxWx3 RGB or HxW grey image, got shape {arr.shape}")
    h, w = luma.shape
    if h < 8 or w < 2 * BITS:
        raise ValueError(f"image {w}x{h} is too small to hold a frame code")
    rows = _window(SAMPLE_Y[0] * h, SAMPLE_Y[1] * h, h)
    left, cw = MARGIN_X * w, _cell_width(w)
    levels = np.empty(BITS)
    for k in range(BITS):
        cols = _window(left + (k + SAMPLE_X[0]) * cw, left + (k + SAMPLE_X[1]) * cw, w)
        levels[k] = luma[rows, cols].mean()
    return levels


def read_frame_code(rgb: np.ndarray) -> int:
    """Read back the frame index drawn by ``make_video(..., frame_code=True)``.

    ``rgb`` is a uint8 HxWx3 RGB frame (or HxW grey) of any size down to about 112x196.
    Raises ``ValueError`` if some block is neither clearly black nor clearly white (no frame code,
    or one destroyed by cropping/heavy filtering).
    """
    levels = frame_code_levels(rgb)
    unclear = (levels > _AMBIGUOUS[0]) & (levels < _AMBIGUOUS[1])
    if unclear.any():
        bad = ", ".join(f"bit {k}: {levels[k]:.0f}" for k in np.flatnonzero(unclear)[:4])
        raise ValueError(f"no readable frame code (blocks neither black nor white: {bad})")
    gray = 0
    for level in levels:
        gray = (gray << 1) | int(level >= 128)
    return gray_to_index(gray)


def gray_to_index(gray: int) -> int:
    """Invert the reflected binary (Gray) code ``index ^ (index >> 1)``."""
    index, shift = gray, gray >> 1
    while shift:
        index ^= shift
        shift >>= 1
    return index
