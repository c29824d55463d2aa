"""Captions of fixed-length clips, the text a teacher reads to write zoom-in CoTs (the reference's
HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_captions.py:57-130).

A video of D seconds is cut into non-overlapping clips ``[i*c, (i+1)*c)`` for ``i < floor(D / c)`` (the
trailing partial clip is dropped; c = 10 s by default). Each clip is shown as ``2*c`` frames spread over
it (frame ids ``linspace(int(s*fps), min(N-1, int(e*fps)))``), at a 512 x 28 x 28 pixel budget, without
the timestamp overlay and without a system prompt, followed by the reference's prompt (package data
``prompts/data/love-r1-teacher.json``, ``caption_prompt``). Decoding is greedy, 2048 new tokens at most.

Captions are kept in the navigate agent's `CaptionStore` (append-only JSON lines, a header, one line per
caption written and fsynced as it arrives): one file per (video fingerprint, clip settings, caption
model) in a store folder, the clip's ``"start-end"`` as the node key. A second run finds every caption
and calls no model; a killed run loses only the captions in flight.

`joined_captions` is the single caption text the zoom-in prompt starts with. The reference does not say
how its per-clip captions became one string (process_data/build_cgbench_sample_cot.py:195-205 reads one
``caption`` per video from a file that no script of the repository writes); ours is one line per clip, in time
order::

    [0, 10]: <caption of 0-10 s>
    [10, 20]: <caption of 10-20 s>
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from longlens.agents.navigate.captions import Caption, CaptionStore
from longlens.backends.base import DEFAULT_GEN, Backend, Completion, GenConfig
from longlens.errors import LongLensError
from longlens.prompts.messages import Message, Text, Video
from longlens.prompts.teacher import load_teacher_prompts
from longlens.spans import Span
from longlens.video import FrameCache, VideoInfo, decode
from longlens.video.plan import PATCH, FramePlan, frame_size, reference_linspace

STORE_KIND = "clip-captions"
STORE_VERSION = 1


@dataclass(frozen=True)
class ClipSettings:
    """How clips are cut and shown (build_cgbench_captions.py:88-117; its ``--clip_size``, 10 s in the paper)."""

    clip_s: float = 10.0
    frames_per_s: float = 2.0
    """``2*c`` frames per clip."""
    budget: int = 512 * PATCH * PATCH
    max_new_tokens: int = 2048

    def __post_init__(self):
        if not self.clip_s > 0:
            raise LongLensError(f"--clip-s must be more than 0 seconds, got {self.clip_s:g}")


def clip_spans(duration_s: float, clip_s: float) -> list[Span]:
    """``[i*c, (i+1)*c]`` for ``i < floor(D / c)``: whole clips only."""
    return [(i * clip_s, (i + 1) * clip_s) for i in range(int(math.floor(duration_s / clip_s + 1e-9)))]


def span_key(span: Span) -> str:
    return f"{span[0]:g}-{span[1]:g}"


def clip_plan(info: VideoInfo, span: Span, settings: ClipSettings = ClipSettings()) -> FramePlan:
    """The frames of one clip: ``2*c`` ids spread over ``[int(s*fps), min(N-1, int(e*fps))]``, no stamp."""
    n = max(1, int(round(settings.frames_per_s * (span[1] - span[0]))))
    first = min(int(span[0] * info.fps), info.n_frames - 1)
    last = min(info.n_frames - 1, int(span[1] * info.fps))
    idx = np.clip(reference_linspace(first, last, n), 0, info.n_frames - 1)
    h, w = frame_size(info.height, info.width, settings.budget)
    times = info.times_s
    return FramePlan(kind="caption-clip", indices=tuple(int(i) for i in idx),
                     times_s=tuple(float(times[i]) for i in idx), height=h, width=w,
                     sample_fps=round(n / max(span[1] - span[0], 1e-6), 2),
                     span_s=(float(span[0]), float(span[1])), mode="accurate", stamp=False)


def caption_messages(frames, prompt: str) -> tuple[Message, ...]:
    """One user turn: the clip, then the prompt (the reference's Qwen-VL message; no system prompt)."""
    return (Message("user", (Video(frames, "clip"), Text(prompt))),)


class OfflineClipCaptioner(Backend):
    """The embedded offline backend as a clip captioner. `OfflineBackend.generate` speaks LOVE-R1's zoom
    protocol and the navigate agent's caption prompts, not this prompt, so clips are described with its
    describer (on-screen text, vivid objects, dominant colour) directly; no weights, no server."""

    name = "offline"

    def __init__(self):
        from longlens.backends.offline import ocr

        self._ocr = ocr
        self.model = "longlens-offline-1"

    def check(self) -> None:
        self._ocr.engine()  # fails with an install hint if the 'ocr' extra is missing

    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        from longlens.backends.offline import describe

        t0 = time.perf_counter()
        video = next(p for m in messages for p in m.parts if isinstance(p, Video))
        text = describe.caption(np.asarray(video.frames.frames), list(video.frames.times_s))
        return Completion(text=text, latency_s=time.perf_counter() - t0, model=self.model, finish_reason="stop")


def _header(info: VideoInfo, settings: ClipSettings, model: str) -> dict:
    return {"version": STORE_VERSION, "kind": STORE_KIND, "video": info.fingerprint, "settings": asdict(settings),
            "model": model}


def store_path(root: str | Path, info: VideoInfo, settings: ClipSettings, model: str) -> Path:
    key = hashlib.sha256(json.dumps(_header(info, settings, model), sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / f"{info.fingerprint[:16]}-{key}.jsonl"


@dataclass
class ClipCaptions:
    """One video's clip captions in a store folder: `missing` clips, `make` one, `joined` text."""

    info: VideoInfo
    settings: ClipSettings
    store: CaptionStore
    captions: dict

    @classmethod
    def open(cls, root: str | Path, info: VideoInfo, settings: ClipSettings, model: str) -> ClipCaptions:
        header = {**_header(info, settings, model), "path": info.path}
        store = CaptionStore(store_path(root, info, settings, model), header)
        return cls(info, settings, store, store.load())

    @classmethod
    def find(cls, root: str | Path, info: VideoInfo, *, model: str | None = None,
             clip_s: float | None = None) -> ClipCaptions:
        """The captions stored for `info` under `root`, by the only (or the named) model and clip length."""
        found = []
        for path in sorted(Path(root).glob(f"{info.fingerprint[:16]}-*.jsonl")):
            with path.open(encoding="utf-8") as f:
                try:
                    header = json.loads(f.readline()).get("header", {})
                except json.JSONDecodeError:
                    continue
            if header.get("kind") != STORE_KIND or header.get("video") != info.fingerprint:
                continue
            if model is not None and header.get("model") != model:
                continue
            if clip_s is not None and header["settings"]["clip_s"] != clip_s:
                continue
            found.append(header)
        if not found:
            raise LongLensError(f"no clip captions of {info.path} in {root}"
                                + (f" by {model}" if model else "") + "; make them first with `longlens data captions`")
        if len(found) > 1:
            models = sorted({f"{h['model']} (clip {h['settings']['clip_s']:g} s)" for h in found})
            raise LongLensError(f"{root} holds captions of {info.path} by several models or clip lengths: "
                                f"{', '.join(models)}; pick one with --caption-model and --clip-s")
        h = found[0]
        return cls.open(root, info, ClipSettings(**h["settings"]), h["model"])

    def spans(self) -> list[Span]:
        return clip_spans(self.info.duration_s, self.settings.clip_s)

    def missing(self) -> list[Span]:
        return [s for s in self.spans() if span_key(s) not in self.captions]

    def make(self, span: Span, backend: Backend, prompt: str, cache: FrameCache | None = None) -> Caption:
        """Caption one clip and store it (fsynced) before returning."""
        frames = decode(self.info, clip_plan(self.info, span, self.settings), cache=cache)
        completion = backend.generate(caption_messages(frames, prompt),
                                      GenConfig(max_new_tokens=self.settings.max_new_tokens))
        caption = Caption(span_key(span), completion.text, completion.model or backend.describe(),
                          round(completion.latency_s, 3))
        self.store.add(caption)
        self.captions[caption.node] = caption
        return caption

    def joined(self) -> str:
        """The clips' captions as one text, one ``[s, e]: caption`` line per clip in time order; a missing
        caption is an error (the teacher would reason over a hole)."""
        missing = self.missing()
        if missing:
            raise LongLensError(f"{len(missing)} clip(s) of {self.info.path} have no caption in "
                                f"{self.store.path.parent} (first: {span_key(missing[0])} s); run `longlens data "
                                "captions` again to finish")
        return joined_captions([(s, self.captions[span_key(s)].text) for s in self.spans()])


def joined_captions(rows: Sequence[tuple[Span, str]]) -> str:
    """``[s, e]: text`` lines (whole seconds), one per clip, joined with newlines."""
    return "\n".join(f"[{int(s)}, {int(e)}]: {' '.join(text.split())}" for (s, e), text in rows)


def caption_clips(videos: Sequence[VideoInfo], root: str | Path, backend: Backend,
                  settings: ClipSettings = ClipSettings(), *, concurrency: int = 4, cache: FrameCache | None = None,
                  progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """Caption every clip of `videos` not yet in the store folder `root`, `concurrency` at a time; returns
    (made now, stored before). A failing caption backend stops the run: what finished is kept."""
    from longlens.jsonl import run_each

    prompt = load_teacher_prompts().caption_prompt
    model = backend.model or backend.describe()
    jobs = []
    stored = 0
    for info in videos:
        caps = ClipCaptions.open(root, info, settings, model)
        stored += len(caps.spans()) - len(caps.missing())
        jobs += [(caps, span) for span in caps.missing()]
    made = 0

    def done(_caption) -> None:
        nonlocal made
        made += 1
        if progress:
            progress(made, len(jobs))

    run_each(jobs, lambda job: job[0].make(job[1], backend, prompt, cache), done, concurrency)
    return made, stored
