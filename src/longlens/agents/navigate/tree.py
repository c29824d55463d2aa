"""The navigate agent's 3-level video tree: which frames each node covers, for its caption and for video_qa.

Width: ``w = round((D / 16) ** (1/3))`` clamped to [4, 8] (Python's round; all three numbers are
settings; MLVU uses a minimum of 3). Ids are 1-based: ``(h,)``, ``(h, m)``, ``(h, m, l)``, each in 1..w.

The frames ``0..N-1`` are split two ways (``array_split``: remainders go to the first chunks):

* **per level**: level k is ``array_split(range(N), w**k)``, node (h, m, l) being chunk
  ``(h-1)w² + (m-1)w + (l-1)``. The reference's caption files were made this way (and its CLI's captions),
  so its checkpoints read captions, and "from a to b" times, of these nodes. A child need not lie inside its
  parent: at 2 h (w = 8) 56 of 64 medium and 503 of 512 low nodes differ from the nested split.
* **nested**: array_split into w high chunks, each into w medium chunks, each into w leaves. The
  reference's video_qa sends a leaf's frames from this split.

``partition="reference"`` (the default) is what the checkpoints saw: a node's frames, span and shown times
come from the per-level split, the frames video_qa looks at (`Node.clip`) from the nested one.
``partition="nested"`` uses the nested split for both (every child inside its parent, caption and video_qa
on the same frames): a deliberate deviation, never the default.

Times shown to the model are the reference's: frame index / average frame rate (not the frame's timestamp),
printed rounded to 0.1 s by the prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from longlens.errors import ConfigError
from longlens.video import VideoInfo

LEVEL_NAMES = {1: "high", 2: "medium", 3: "low"}
PARTITIONS = ("reference", "nested")


def tree_width(duration_s: float, *, segment_s: float = 16.0, min_width: int = 4, max_width: int = 8) -> int:
    """The reference's cube-root rule: about D/16 leaves, clamped to [min_width, max_width]."""
    return max(min_width, min(max_width, round((duration_s / segment_s) ** (1 / 3))))


@dataclass(frozen=True)
class Node:
    id: tuple[int, ...]
    first: int
    """First frame index (inclusive) of what the node's caption covers."""
    last: int
    """Last frame index (inclusive)."""
    start_s: float
    """Time of the first frame."""
    end_s: float
    """Where the node ends: the next node's first frame time (the video's duration for the last node)."""
    first_s: float
    last_s: float
    """The reference's times of the first and last frame (index / average rate): what it shows the model
    ("from a to b")."""
    clip_first: int
    clip_last: int
    """The frames video_qa looks at for this node (a leaf): its chunk of the nested split."""

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
        """`k` caption frame ids from first to last, both included, truncated to int as the reference does
        (a node shorter than `k` frames repeats some)."""
        return np.linspace(self.first, self.last, k).astype(np.int64)

    def clip(self, k: int) -> np.ndarray:
        """`k` video_qa frame ids from clip_first to clip_last, as `sample`."""
        return np.linspace(self.clip_first, self.clip_last, k).astype(np.int64)


@dataclass(frozen=True)
class Tree:
    """The node table of one video at one width."""

    width: int
    n_frames: int
    duration_s: float
    nodes: dict
    partition: str = "reference"
    last_frame_s: float = 0.0
    """The reference's time of the last frame, ``(N-1) / fps``: the duration its evaluation shows the model
    (its caption file's last frame time), 1/fps short of `duration_s`."""

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


def split_frames(n: int, width: int, partition: str) -> dict[tuple[int, ...], tuple[int, int]]:
    """``{node id: (first, last)}`` of frames ``0..n-1`` at `width`, per `partition` (module docstring),
    level by level in reading order."""
    if partition not in PARTITIONS:
        raise ConfigError(f"partition must be one of {', '.join(PARTITIONS)}, got {partition!r}")
    frames = np.arange(n)
    if partition == "reference":  # chunk k of level L is node k written in base w (digits 1..w): reading order
        chunks = {ids: part for level in (1, 2, 3) for ids, part in
                  zip(product(range(1, width + 1), repeat=level), np.array_split(frames, width**level), strict=True)}
    else:
        chunks = {}
        for h, hc in enumerate(np.array_split(frames, width), 1):
            chunks[(h,)] = hc
            for m, mc in enumerate(np.array_split(hc, width), 1):
                chunks[(h, m)] = mc
                for leaf, lc in enumerate(np.array_split(mc, width), 1):
                    chunks[(h, m, leaf)] = lc
        chunks = dict(sorted(chunks.items(), key=lambda item: (len(item[0]), item[0])))
    return {ids: (int(part[0]), int(part[-1])) for ids, part in chunks.items()}


def build_tree(info: VideoInfo, width: int, partition: str = "reference") -> Tree:
    """The node table of `info`'s frames at `width` (reduced when the video has under w^3 frames, where the
    reference would fail) per `partition` (module docstring)."""
    n = info.n_frames
    while width > 1 and width**3 > n:
        width -= 1
    times = info.times_s
    fps = float(info.fps)
    duration = float(info.duration_s)
    shown = split_frames(n, width, partition)
    clips = shown if partition == "nested" else split_frames(n, width, "nested")
    nodes: dict[tuple[int, ...], Node] = {}
    for node_id, (first, last) in shown.items():
        end = float(times[last + 1]) if last + 1 < n else duration
        nodes[node_id] = Node(node_id, first, last, float(times[first]), end, first / fps, last / fps,
                              *clips[node_id])
    return Tree(width=width, n_frames=n, duration_s=duration, nodes=nodes, partition=partition,
                last_frame_s=(n - 1) / fps)
