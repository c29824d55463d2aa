"""Qwen2-VL / Qwen2.5-VL 3-D rotary positions (mRoPE), computed the way the checkpoints were trained.

A sequence is a run of segments: text, image or video. Every segment starts right after the largest
position used so far (``start = max + 1``). Text counts up on all three axes. A vision segment with a grid
of ``t x h x w`` merged cells gets positions ``start + (int(g * second_per_grid * tokens_per_second), row,
col)``; images use ``second_per_grid = 0``.

That is the rule of transformers 4.49 (which LOVE-R1 was trained with) and of vLLM. transformers 5.23
continues text after a video at ``start + max(h, w)`` instead, ignoring the temporal extent: for a video
whose temporal positions run past its spatial ones (any long fast view) every later token gets a
different position than in training. ``rope="transformers"`` in `HFBackend` selects the installed
library's rule instead, for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

TEXT, IMAGE, VIDEO = 0, 1, 2


def mrope_positions(
    token_types: torch.Tensor,
    grids: Sequence[Sequence[int]],
    second_per_grid: Sequence[float],
    *,
    merge: int = 2,
    tokens_per_second: float = 2.0,
) -> torch.Tensor:
    """Positions (3, L) for one sequence.

    `token_types` is (L,) with 0 text, 1 image, 2 video tokens; `grids` has one (t, h, w) patch grid per
    image or video segment, in order; `second_per_grid` one value per video (seconds per temporal patch).
    """
    types = token_types.tolist()
    out = torch.empty(3, len(types), dtype=torch.long)
    grid_iter = iter(grids)
    spg_iter = iter(second_per_grid)
    nxt = 0  # the first position of the next segment
    i = 0
    while i < len(types):
        kind = types[i]
        j = i
        while j < len(types) and types[j] == kind:
            j += 1
        if kind == TEXT:
            out[:, i:j] = torch.arange(nxt, nxt + j - i).expand(3, -1)
            nxt += j - i
            i = j
            continue
        while i < j:  # adjacent vision segments of one kind: split them by their grids
            t, h, w = (int(x) for x in next(grid_iter))
            gh, gw = h // merge, w // merge
            n = t * gh * gw
            spg = next(spg_iter) if kind == VIDEO else 0.0
            # float32 as in the reference: (g * second_per_grid) * tokens_per_second, then truncated
            g = torch.arange(t).view(-1, 1).expand(-1, gh * gw)
            t_idx = (g * torch.tensor(spg, dtype=torch.float32) * tokens_per_second).long().flatten()
            h_idx = torch.arange(gh).view(1, -1, 1).expand(t, -1, gw).flatten()
            w_idx = torch.arange(gw).view(1, 1, -1).expand(t, gh, -1).flatten()
            block = torch.stack([t_idx, h_idx, w_idx]) + nxt
            out[:, i:i + n] = block
            nxt = int(block.max()) + 1
            i += n
    return out
