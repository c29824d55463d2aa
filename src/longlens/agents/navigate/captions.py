"""Captions of a video's tree: made by a caption backend (ahead of time or when first asked for), stored
so that a crash loses at most the captions in flight, imported from and exported to the reference format.

The store is one JSON-lines file per (video, width, caption settings incl. the tree's partition, caption
model) under the cache folder's ``captions/``: a header line, then one line per caption, appended and
flushed as each caption arrives. A torn last line (a crash mid-write) is ignored on load. Captions of one
level are requested concurrently (bounded); levels go high, medium, low.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from longlens.agents.navigate.tree import PARTITIONS, Node, Tree, build_tree, split_frames, tree_width
from longlens.backends.base import Backend, GenConfig
from longlens.errors import ConfigError, LongLensError
from longlens.jsonl import append_json, cut_torn_line, read_lines
from longlens.prompts.navigate import NavigateProfile, caption_messages, load_navigate_profile
from longlens.video import FrameCache, VideoInfo, decode, default_cache_dir, index_plan

STORE_VERSION = 2
"""2: the partition is part of the settings (stores of version 1 hold captions of the nested split)."""
_CAPTION = re.compile(r"<caption>(.*?)</caption>", re.DOTALL)


@dataclass(frozen=True)
class CaptionSettings:
    """How captions are made. ``online=False`` is the reference's offline setting (128/64/32 frames,
    400/400/200 words, 2048 tokens: what its evaluation used); ``online=True`` its CLI's (64/32/16,
    300/300/200, 1024). Any value given here replaces the profile's."""

    profile: str = "longvideo-r1"
    online: bool = False
    frames: tuple[int, int, int] | None = None
    max_side: tuple[int, int, int] | None = None
    words: tuple[int, int, int] | None = None
    max_tokens: int | None = None
    width: int | None = None
    """Force a width; None: the cube-root rule."""
    min_width: int | None = None
    max_width: int | None = None
    segment_s: float | None = None
    partition: str = "reference"
    """How the tree splits the frames (agents/tree.py): "reference" (the checkpoints' captions) or "nested"."""
    concurrency: int = 8

    def __post_init__(self):
        if self.partition not in PARTITIONS:
            raise ConfigError(f"partition must be one of {', '.join(PARTITIONS)}, got {self.partition!r}")

    def resolve(self, profile: NavigateProfile) -> dict:
        s = profile.settings
        mode = s["online" if self.online else "offline"]
        return {
            "profile": profile.name,
            "online": self.online,
            "frames": list(self.frames or mode["frames"]),
            "max_side": list(self.max_side or mode["max_side"]),
            "words": list(self.words or mode["words"]),
            "max_tokens": self.max_tokens or mode["max_tokens"],
            "min_width": self.min_width if self.min_width is not None else s["min_width"],
            "max_width": self.max_width if self.max_width is not None else s["max_width"],
            "segment_s": self.segment_s if self.segment_s is not None else s["segment_s"],
            "partition": self.partition,
        }


@dataclass(frozen=True)
class Caption:
    node: str
    """The node's key: ``"h"``, ``"h,m"`` or ``"h,m,l"``."""
    raw: str
    """The caption model's reply as it came."""
    model: str = ""
    latency_s: float = 0.0
    source: str = "model"
    """"model", or "import" for captions read from a caption file."""

    @property
    def text(self) -> str:
        """The caption without its ``<caption>`` tags (the whole reply when it has none)."""
        m = _CAPTION.search(self.raw)
        return (m.group(1) if m else self.raw).strip()

    @property
    def tagged(self) -> str:
        """The caption as the reference's offline captions were stored and shown: the raw reply, wrapped
        in ``<caption> ... </caption>`` when it has no tags."""
        return self.raw if _CAPTION.search(self.raw) else f"<caption> {self.raw} </caption>"


_REGISTRY = threading.Lock()
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_MADE: dict[str, dict[str, Caption]] = {}
"""Captions made in this process, per store file: trees opened on one video by questions in flight together
(`longlens eval --concurrency`) make each caption once, not once per question."""


def _lock(path: Path, name: str) -> threading.Lock:
    with _REGISTRY:
        return _LOCKS.setdefault((str(path), name), threading.Lock())


def _made(path: Path) -> dict[str, Caption]:
    with _REGISTRY:
        return _MADE.setdefault(str(path), {})


class CaptionStore:
    """An append-only JSON-lines file of captions; safe against crashes, shared by threads."""

    def __init__(self, path: str | Path, header: dict):
        self.path = Path(path)
        self.header = header
        self._lock = _lock(self.path, "")  # one writer per file, whichever store object writes
        self._cut = False

    def load(self) -> dict[str, Caption]:
        out: dict[str, Caption] = {}
        for row in read_lines(self.path, fix="delete the file to caption again"):  # a torn last line is left out
            if "header" not in row:
                out[row["node"]] = Caption(**row)
        return out

    def add(self, caption: Caption) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                append_json(self.path, {"header": self.header})
            elif not self._cut:
                cut_torn_line(self.path)  # a write a kill cut short: the next caption starts on its own line
            self._cut = True
            append_json(self.path, asdict(caption))


@dataclass
class CaptionTree:
    """A video's tree with its captions; missing captions are made on demand when a backend is given."""

    info: VideoInfo
    tree: Tree
    profile: NavigateProfile
    settings: dict
    store: CaptionStore
    backend: Backend | None = None
    cache: FrameCache | None = None
    captions: dict = field(default_factory=dict)
    concurrency: int = 8

    @classmethod
    def open(cls, info: VideoInfo, backend: Backend | None, settings: CaptionSettings = CaptionSettings(), *,
             cache: FrameCache | None = None, model: str | None = None) -> CaptionTree:
        """The tree of `info` with every caption stored so far for this caption model and these settings."""
        profile = load_navigate_profile(settings.profile)
        resolved = settings.resolve(profile)
        width = settings.width or tree_width(info.duration_s, segment_s=resolved["segment_s"],
                                             min_width=resolved["min_width"], max_width=resolved["max_width"])
        tree = build_tree(info, width, resolved["partition"])
        if model is None:
            if backend is None:
                raise LongLensError("name the caption model (--caption-model) to read its stored captions")
            model = backend.model or backend.describe()
        header = {"version": STORE_VERSION, "video": info.fingerprint, "width": tree.width, "settings": resolved,
                  "model": model}
        key = hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()[:16]
        header["path"] = info.path
        root = cache.root if cache is not None else default_cache_dir()
        store = CaptionStore(root / "captions" / f"{info.fingerprint[:16]}-{key}.jsonl", header)
        self = cls(info, tree, profile, resolved, store, backend, cache, concurrency=settings.concurrency)
        self.captions = store.load()
        return self

    # ------------------------------------------------------------------ reading
    def get(self, node: Node) -> tuple[Caption, bool]:
        """(caption, was it stored already); makes and stores it when missing."""
        got = self.captions.get(node.key)
        if got is not None:
            return got, True
        if self.backend is None:
            raise LongLensError(f"no caption for segment {node.key} and no caption backend to make one; "
                                "give --caption-url (or build the tree first)")
        caption, made = self._make(node)
        return caption, not made

    def shown(self, caption: Caption) -> str:
        """The caption as the reasoning model sees it: tagged in the offline setting, plain online."""
        return caption.text if self.settings["online"] else caption.tagged

    def missing(self, level: int) -> list[Node]:
        return [n for n in self.tree.level(level) if n.key not in self.captions]

    # ------------------------------------------------------------------ making
    def _make(self, node: Node) -> tuple[Caption, bool]:
        """(caption, made now): made, unless another tree of this process made it while we waited."""
        with _lock(self.store.path, node.key):
            done = _made(self.store.path).get(node.key)
            if done is not None:
                self.captions[node.key] = done
                return done, False
            caption = self._caption(node)
            _made(self.store.path)[node.key] = caption
            return caption, True

    def _caption(self, node: Node) -> Caption:
        lv = node.level - 1
        plan = index_plan(self.info, node.sample(self.settings["frames"][lv]), max_side=self.settings["max_side"][lv],
                          kind=f"caption-{node.level_name}")
        frames = decode(self.info, plan, cache=self.cache)
        messages = caption_messages(self.profile, frames, level=node.level, words=self.settings["words"][lv],
                                    online=self.settings["online"], fps=self.info.fps)
        completion = self.backend.generate(messages, GenConfig(max_new_tokens=self.settings["max_tokens"]))
        caption = Caption(node.key, completion.text, completion.model or self.backend.describe(),
                          round(completion.latency_s, 3))
        self.store.add(caption)
        self.captions[node.key] = caption
        return caption

    def build(self, levels=(1, 2, 3), progress: Callable[[int, int, int], None] | None = None) -> int:
        """Make every missing caption of `levels`, level by level, `concurrency` at a time; returns how
        many were made. `progress(level, done, total)` is called as captions arrive."""
        made = 0
        workers = max(1, self.concurrency)
        for level in levels:
            todo = self.missing(level)
            if not todo:
                continue
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for i, (_, new) in enumerate(pool.map(self._make, todo), 1):
                    made += new
                    if progress:
                        progress(level, i, len(todo))
        return made

    # ------------------------------------------------------------------ the reference caption format
    def export_reference(self) -> dict:
        """``{"video_name", "width", "captions": [high, medium, low]}`` as the reference's caption files (frame
        ids and times as the reference computes them), plus ``"partition"`` (which the reference ignores)."""
        levels = []
        for level in (1, 2, 3):
            rows = []
            for i, node in enumerate(self.tree.level(level), 1):
                cap = self.captions.get(node.key)
                lv = level - 1
                ids = node.sample(self.settings["frames"][lv])
                rows.append({"segment_id": i, "level": node.level_name,
                             "caption": cap.tagged if cap else "",
                             "frame_time": [round(int(j) / self.info.fps, 1) for j in ids],
                             "frame_ids": [int(j) for j in ids]})
            levels.append(rows)
        return {"video_name": Path(self.info.path).name, "width": self.tree.width, "captions": levels,
                "partition": self.tree.partition}

    def import_reference(self, data: dict) -> int:
        """Read captions from a reference caption file (3 levels, or 4 with a coarse level first) or a
        reference CLI cache file; returns how many were stored. A file whose frame ids show the other
        partition is refused: its captions describe other frames than this tree's nodes."""
        rows = _reference_rows(data)
        width = int(data.get("width") or data.get("meta", {}).get("width") or 0)
        if width != self.tree.width:
            raise LongLensError(f"the caption file has width {width} but this video's tree has width "
                                f"{self.tree.width}; give the same width (--width {width}) to use it")
        theirs = data.get("partition") or _partition_of(_reference_bounds(data), width,
                                                        data.get("meta", {}).get("num_frames"))
        if theirs not in (None, self.tree.partition):
            raise LongLensError(f"the caption file was made with the {theirs} partition, this tree uses the "
                                f"{self.tree.partition} one; give --partition {theirs} to use it")
        count = 0
        for key, raw in rows:
            if key in self.captions:
                continue
            cap = Caption(key, raw, "import", source="import")
            self.store.add(cap)
            self.captions[key] = cap
            count += 1
        return count


def _reference_bounds(data: dict) -> dict[tuple[int, ...], tuple[int, int]]:
    """``{node id: (first, last frame id)}`` of the rows that list their frame ids (either reference layout)."""
    if "captions" in data:
        levels = data["captions"][-3:]
        w = int(data.get("width") or len(levels[0]))
        rows = [(_node_id(i, level, w), row) for level, lv in enumerate(levels, 1) for i, row in enumerate(lv)]
    else:
        rows = [(tuple(int(x) for x in k.split(",")), v) for name in ("high", "medium", "low")
                for k, v in data.get(name, {}).items()]
    return {k: (int(r["frame_ids"][0]), int(r["frame_ids"][-1])) for k, r in rows
            if isinstance(r, dict) and r.get("frame_ids")}


def _partition_of(bounds: dict, width: int, n: int | None = None) -> str | None:
    """Which partition frame bounds of a video of `n` frames (default: as many as the last bound shows)
    follow; None when no frame ids are given, both partitions agree, or neither fits (another decoder's
    frame count)."""
    if not bounds:
        return None
    n = int(n or max(last for _, last in bounds.values()) + 1)
    if width**3 > n:
        return None
    fits = [p for p in PARTITIONS if all(split_frames(n, width, p).get(k) == b for k, b in bounds.items())]
    return fits[0] if len(fits) == 1 else None


def _node_id(i: int, level: int, w: int) -> tuple[int, ...]:
    """The id of the `i`-th node (0-based, reading order) of `level`."""
    ids = []
    for _ in range(level):
        ids.append(i % w + 1)
        i //= w
    return tuple(reversed(ids))


def _reference_rows(data: dict) -> list[tuple[str, str]]:
    """(node key, caption) pairs from either reference layout."""
    if "captions" in data:
        levels = data["captions"]
        if len(levels) == 4:  # a coarse level first (verl-tool / Video-MME variant)
            levels = levels[1:]
        if len(levels) != 3:
            raise LongLensError(f"a caption file has 3 levels (high, medium, low), this one has {len(levels)}")
        w = int(data.get("width") or len(levels[0]))
        if [len(lv) for lv in levels] != [w, w * w, w**3]:
            raise LongLensError(f"a width-{w} caption file has {w}, {w * w} and {w**3} captions per level; "
                                f"this one has {', '.join(str(len(lv)) for lv in levels)}")
        return [(",".join(map(str, _node_id(i, level, w))), row["caption"])
                for level, rows in enumerate(levels, 1) for i, row in enumerate(rows)]
    if {"high", "medium", "low"} <= set(data):  # the reference CLI's cache file
        return [(k.replace(" ", ""), v["caption"]) for name in ("high", "medium", "low")
                for k, v in data[name].items()]
    raise LongLensError("not a caption file: expected 'captions' (reference caption JSON) or "
                        "'high'/'medium'/'low' (reference CLI cache)")

