"""Picking the next token from logits: greedy, or temperature / top-k / top-p with a seeded generator."""

from __future__ import annotations

from longlens.backends.base import GenConfig


def pick_token(logits, gen: GenConfig, generator) -> int:
    """The next token id from 1-D `logits`: argmax at temperature 0, else a draw from the tempered, top-k and
    top-p truncated distribution with `generator`."""
    import torch

    if gen.temperature <= 0:
        return int(torch.argmax(logits))
    logits = logits / gen.temperature
    if gen.top_k:
        kth = torch.topk(logits, min(gen.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if gen.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        sorted_p[sorted_p.cumsum(0) - sorted_p > gen.top_p] = 0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
