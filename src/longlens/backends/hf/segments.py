"""The pieces of a prompt the hf backend prefills (`Segment`: tokens and media tensors), the KV cache it keeps
between requests (`Kept`), and the two operations on them: join segments for one forward, cut a cache back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Segment:
    """A tokenised stretch of the prompt with its media tensors."""

    input_ids: object  # LongTensor (L,)
    token_types: object  # LongTensor (L,): 0 text, 1 image, 2 video
    grids: list  # (t, h, w) per image/video, in order
    kinds: list  # 1 (image) or 2 (video) per grid
    second_per_grid: list  # per video
    inputs: dict  # pixel tensors and grids for the forward


@dataclass
class Kept:
    """The KV cache kept between requests and the prompt pieces it holds (each ends after a video)."""

    keys: list  # chained digest per piece: text and pixels of this piece and of every piece before it
    segments: list  # Segment per piece
    cache: object  # transformers Cache holding exactly these pieces

    @property
    def length(self) -> int:
        return sum(len(s.input_ids) for s in self.segments)


def concat(segments: list[Segment], torch) -> Segment:
    """One segment of several consecutive ones (one forward pass)."""
    if len(segments) == 1:
        return segments[0]
    inputs: dict = {}
    for key in ("pixel_values_videos", "video_grid_thw", "pixel_values", "image_grid_thw"):
        parts = [s.inputs[key] for s in segments if key in s.inputs]
        if parts:
            inputs[key] = torch.cat(parts)
    return Segment(
        input_ids=torch.cat([s.input_ids for s in segments]),
        token_types=torch.cat([s.token_types for s in segments]),
        grids=[g for s in segments for g in s.grids],
        kinds=[k for s in segments for k in s.kinds],
        second_per_grid=[x for s in segments for x in s.second_per_grid],
        inputs=inputs,
    )


def crop(cache, length: int) -> None:
    """Cut a cache back to its first `length` positions (transformers 5: a negative count removes)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)
