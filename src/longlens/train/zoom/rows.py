"""Clip rules of the zoom agent's SFT (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/sft_video.py:224-303): the
stage-1 clip simulation, stage-2 clip widening, slow frames by clip count. Pure arithmetic; `train.zoom.sft` trains
on them (the rows are `data.rows.TemplateRow` and `CotRow`)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from longlens.spans import Span


# ---------------------------------------------------------------- clip rules
def simulate_clips(duration_s: float, truth: Sequence[Span], rng: random.Random) -> list[tuple[int, int]]:
    """Stage 1's slow clips for one fetch (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/sft_video.py:169-173,
    252-303), whole seconds, sorted.

    With truth spans: u < 0.6 the truth (cast to int, overlapping or touching ones merged, a random 3 kept,
    each widened outward by randint(0, 5) s a side, clamped to [0, int(D)]); u < 0.8 the whole video; else
    none. Without: 0.1 random clips (0-1 under 30 s, 0-2 under 180 s, else 0-3; each of length
    max(randint(0, D // 8), 16) from a random start), else the whole video. Clips are cut to the video.
    """
    d = int(duration_s)
    if truth:
        u = rng.random()
        if u >= 0.8:
            return []
        if u >= 0.6:
            return [(0, d)]
        merged: list[list[int]] = []
        for s, e in sorted((int(s), int(e)) for s, e in truth):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        if len(merged) > 3:
            merged = rng.sample(merged, 3)
        clips = [(max(0, s - rng.randint(0, 5)), min(d, e + rng.randint(0, 5))) for s, e in merged]
        return sorted(clips)
    if rng.random() >= 0.1:
        return [(0, d)]
    n = rng.randint(0, 1 if duration_s < 30 else 2 if duration_s < 180 else 3)
    clips = []
    for _ in range(n):
        length = min(max(rng.randint(0, int(duration_s // 8)), 16), d)
        start = rng.randint(0, max(0, int(duration_s - length - 1)))
        clips.append((start, min(start + length, d)))
    return sorted(clips)


def stage2_clips(clips: Sequence[Span], duration_s: float, *, min_s: float = 5.0,
                 widen_s: float = 6.0) -> list[Span]:
    """Stage 2's clips (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/sft_video.py:236-245): ends rounded; a clip
    shorter than `min_s` becomes `widen_s` around its integer middle, clamped to [0, int(D)]."""
    out = []
    for a, b in clips:
        s, e = round(a), round(b)
        if e - s < min_s:
            mid = int((s + e) / 2)
            s, e = max(mid - widen_s / 2, 0), min(mid + widen_s / 2, int(duration_s))
        out.append((float(s), float(e)))
    return sorted(out)


def slow_frames_for(n_clips: int, table: Sequence[int]) -> int:
    """Frames per slow clip when `n_clips` are shown: ``table[min(n, len) - 1]`` (e.g. 32/24/16 for 1/2/>=3)."""
    return table[min(max(n_clips, 1), len(table)) - 1]
