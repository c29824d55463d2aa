"""Contact sheets: many frames tiled into one image, for looking at what a model is shown."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def contact_sheet(frames: np.ndarray, columns: int | None = None, gap: int = 2) -> Image.Image:
    """Tile (T, H, W, 3) frames row by row into one RGB image."""
    t, h, w, _ = frames.shape
    cols = columns or max(1, min(t, math.ceil(math.sqrt(t * h / w))))
    rows = math.ceil(t / cols)
    sheet = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 32, dtype=np.uint8)
    for i in range(t):
        r, c = divmod(i, cols)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = frames[i]
    return Image.fromarray(sheet)
