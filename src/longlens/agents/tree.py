"""The navigate agent's 3-level video tree: one canonical partition, used for every purpose.

Width: ``w = round((D / 16) ** (1/3))`` clamped to [4, 8] (Python's round; all three numbers are
settings; MLVU uses a minimum of 3). The frames ``0..N-1`` are split recursively: ``array_split`` into w
high-level chunks, each of those into w medium chunks, each of those into w leaves (remainders go to the
first chunks), so every child lies inside its parent. Each node stores its frame range and its span in
seconds; captions, video_qa clips, the times shown to the model, rewards and hints all read this one
table (the reference used three different partitions, see longvideo-r1-spec §1.2).

Ids are 1-based: ``(h,)``, ``(h, m)``, ``(h, m, l)``, each in 1..w.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from longlens.video import VideoInfo

LEVEL_NAMES = {1: "high", 2: "medium", 3: "low"}


def tree_width(duration_s: float, *, segment_s: float = 16.0, min_width: int = 4, max_width: int = 8) -> int:
    """The reference's cube-root rule: about D/16 leaves, clamped to [min_width, max_width]."""
    return max(min_width, min(max_width, round((duration_s / segment_s) ** (1 / 3))))


@dataclass(frozen=True)
class Node:
    id: tuple[int, ...]
    first: int
    """First frame index (inclusive)."""
    last: int
    """Last frame index (inclusive)."""
    start_s: float
    """Time of the first frame."""
    end_s: float
    """Where the node ends: the next node's first frame time (the video's duration for the last node)."""
    first_s: float
    last_s: float
    """Times of the first and last frame: what the reference shows the model ("from a to b")."""

    @property
    def level(self) -> int:
        return len(self.id)

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[len(self.id)]

    @property
    def key(self) -> str:
        """``"h"``, ``"h,m"`` or ``"h,m,l"``: the id as written in caption files."""
        return ",".join(str(i) for i in self.id)

    @property
    def n_frames(self) -> int:
        return self.last - self.first + 1

    def sample(self, k: int) -> np.ndarray:
        """`k` frame ids from first to last, both included, truncated to int as the reference does
        (a node shorter than `k` frames repeats some)."""
        return np.linspace(self.first, self.last, k).astype(np.int64)


@dataclass(frozen=True)
class Tree:
    """The node table of one video at one width."""

    width: int
    n_frames: int
    duration_s: float
    nodes: dict

    def level(self, level: int) -> list[Node]:
        """The nodes of a level (1, 2, 3) in reading order (the order of the reference caption lists)."""
        return [n for n in self.nodes.values() if n.level == level]

    def node(self, node_id: tuple[int, ...]) -> Node:
        return self.nodes[tuple(node_id)]

    def check(self, node_id) -> str | None:
        """Why `node_id` names no node (a sentence for the model), or None if it is fine."""
        ids = tuple(node_id)
        if not 1 <= len(ids) <= 3:
            return f"an id has 1 to 3 numbers (high, medium, low), got {len(ids)}"
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return "segment ids must be integers"
        if not all(1 <= i <= self.width for i in ids):
            return f"segment ids must be integers from 1 to {self.width}, got {ids}"
        return None

    def leaf_at(self, t: float) -> Node:
        """The leaf whose span holds time `t` (seconds)."""
        for n in self.level(3):
            if n.start_s <= t < n.end_s:
                return n
        return self.level(3)[-1] if t >= 0 else self.level(3)[0]


def build_tree(info: VideoInfo, width: int) -> Tree:
    """The recursive partition of `info`'s frames at `width` (reduced when the video has under w^3 frames)."""
    n = info.n_frames
    while width > 1 and width**3 > n:
        width -= 1
    times = info.times_s
    duration = float(info.duration_s)
    nodes: dict[tuple[int, ...], Node] = {}

    def add(node_id: tuple[int, ...], chunk: np.ndarray) -> None:
        first, last = int(chunk[0]), int(chunk[-1])
        end = float(times[last + 1]) if last + 1 < n else duration
        nodes[node_id] = Node(node_id, first, last, float(times[first]), end, float(times[first]),
                              float(times[last]))

    frames = np.arange(n)
    highs = np.array_split(frames, width)
    for h, hc in enumerate(highs, 1):
        add((h,), hc)
    for h, hc in enumerate(highs, 1):
        for m, mc in enumerate(np.array_split(hc, width), 1):
            add((h, m), mc)
    for h, hc in enumerate(highs, 1):
        for m, mc in enumerate(np.array_split(hc, width), 1):
            for leaf, lc in enumerate(np.array_split(mc, width), 1):
                add((h, m, leaf), lc)
    return Tree(width=width, n_frames=n, duration_s=duration, nodes=nodes)
