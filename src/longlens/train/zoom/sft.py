"""Supervised fine-tuning of the zoom agent: LOVE-R1 stage 1 and stage 2 (the reference:
HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/sft_video.py, run by src/scripts/run_sft_video_nodes.sh and
src/scripts/run_sft_cold_start_nodes.sh).

`run_zoom_sft(ZoomSFTConfig(...))` trains with TRL's `SFTTrainer` (dataset preparation skipped, our collator).
The collator builds every sample the way inference does: the video layer's fast and slow plans and `decode`,
the prompt from `zoom_messages`, the model inputs from `HFBackend.encode` (text, pixels, per-video frame rate
and the trained mRoPE positions, which carry each video's ``second_per_grid_ts`` as the reference SFT's inputs
did; its RL training forward did not: docs/reference-code.md#z1).

* Rows (`data.released.read_rows`: our JSON lines or LOVE-R1's released JSON; each built as its kind says, as
  the reference builds each item by its fields):
  * `TemplateRow` (stage-1 instruction data; `data rows --stage 1`, or a released item without ``cot_data``):
    video, question, the answer text, optional truth spans. Slow clips are drawn **each time a sample is
    fetched** by the reference rule (`simulate_clips`, sft_video.py:252-303), from an RNG seeded with (seed, epoch,
    index), so a run is reproducible.
  * `CotRow` (`data cot`), or a released ``cot_data`` item: the row's clips, rounded, widened to 6 s when
    shorter than 5 s (`stage2_clips`), the zoom instruction appended; the target is `row.target`.
* Labels (`loss`): "assistant" (ours: the target and its closing ``<|im_end|>``), or "all" (the reference:
  every text token; pad and vision tokens are -100; docs/reference-code.md#z2).
* Where the reference trains on other settings than it infers with (docs/reference-code.md#z3), the config field
  says so and defaults to the training value: the fast view's pixel budget doubles under 120 s (inference:
  60 s), slow clips never double (inference: under 60 s), slow frames 32/16 (stage-1 rows) or 32/24/16 (CoT rows) by
  clip count.
* A sample longer than `max_length` tokens, a clip that cannot be sampled or a video that cannot be decoded
  is skipped, counted by reason, logged, and replaced by the next row (at most `max_retries` in a row).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from longlens.backends.hf import HFBackend
from longlens.data.released import read_rows
from longlens.data.rows import CotRow, TemplateRow
from longlens.errors import ConfigError, LongLensError, PlanError, VideoError
from longlens.prompts import ClipView, format_question, load_profile, zoom_messages
from longlens.spans import Span
from longlens.train.config import video_roots, with_trl
from longlens.train.sft_core import load_vl_model, sft_args, train
from longlens.train.zoom.rows import simulate_clips, slow_frames_for, stage2_clips
from longlens.video import FrameCache, decode, fast_plan, open_video, slow_plan

log = logging.getLogger(__name__)
__all__ = ["END", "EpochTag", "LOSSES", "Skip", "TemplateRow", "ZoomSFTConfig", "ZoomSamples", "check", "load_rows",
           "pad_batch", "row_index", "run_zoom_sft", "simulate_clips", "slow_frames_for", "stage2_clips", "video_path"]
LOSSES = ("assistant", "all")
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
END = "<|im_end|>"


# ---------------------------------------------------------------- config
TRL_DEFAULTS = {
    "learning_rate": 1e-5, "lr_scheduler_type": "linear", "warmup_steps": 0.05, "weight_decay": 0.0,
    "per_device_train_batch_size": 1, "gradient_accumulation_steps": 16, "max_steps": -1, "max_grad_norm": 5.0,
    "bf16": None, "activation_checkpointing": True, "deepspeed": None, "dataloader_num_workers": 0, "seed": 0,
    "logging_steps": 1, "save_strategy": "no", "report_to": "none",
}
"""TRL `SFTConfig` values of the reference scripts (HumanMLLM/LOVE-R1@aa1facb src/scripts/run_sft_video_nodes.sh:21-37,
src/scripts/run_sft_cold_start_nodes.sh:21-37): warm-up over the first 5% of the
steps (a ``warmup_steps`` below 1 is a fraction), ZeRO-3 through ``deepspeed`` (a JSON file) in the reference;
its data loaders used 4 (stage 1) and 2 (stage 2) workers, 0 here decodes in the training process; saved at
the end only (``save_strategy: steps`` and ``save_steps`` for checkpoints)."""


@dataclass(frozen=True)
class ZoomSFTConfig:
    """LOVE-R1 SFT: ours (defaults: the reference's,
    HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/sft_video.py:224-303, 374-375; 0 / () mean "the stage's
    reference"), and TRL's `SFTConfig` in `trl`."""

    TRL: ClassVar[str] = "SFTConfig"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model_path", "train_file", "output_dir")
    model_path: str = ""
    train_file: str = ""
    """SFT rows: `TemplateRow` JSONL (`data rows --stage 1`), `CotRow` JSONL (`data cot`), or LOVE-R1's released
    JSON list (stage-1 items, and stage-2 items with ``cot_data``); each row is built as its kind says."""
    output_dir: str = ""
    stage: int = 2
    """Sets the defaults the reference's stage had: 1 epoch (stage 1) or 2 (stage 2)."""
    video_root: str = ""
    """Where relative row video paths start ("": the working directory)."""
    video_roots: tuple[str, ...] = ()
    """``NAME=DIR`` per source data set: a row path with a folder NAME in it is looked up under DIR
    (``--video-root NAME=DIR`` on the command line; `data.released.VideoRoots`)."""
    skip_missing: bool = False
    """Train without the rows whose videos are missing (false: refuse to start, naming the first)."""
    profile: str = "love-r1"
    loss: str = "assistant"
    """"assistant": the target + <|im_end|> (ours); "all": every text token (the reference,
    docs/reference-code.md#z2)."""
    freeze_vision: bool = True
    """Freeze every parameter whose name contains "visual" (the reference)."""
    stage1_instruction: bool = False
    """Append the zoom instruction to stage-1 questions (the reference does not)."""
    # frames (sft_video.py:227-234, 305-348; the train/test mismatches of docs/reference-code.md#z3 kept at the
    # training values)
    fast_frames: int = 768
    fast_budget: int = 32 * 28 * 28
    fast_short_video_s: float = 120.0
    """The fast budget doubles for videos shorter than this: 120 s in the reference SFT, 60 s at inference."""
    fast_mode: str = "accurate"
    """Our inference default (the reference decodes the exact frames: "accurate")."""
    slow_budget: int = 256 * 28 * 28
    slow_short_video_s: float = 0.0
    """The slow budget doubles under this: never in the reference SFT (0), under 60 s at inference."""
    slow_frames: tuple[int, ...] = ()
    """Frames per slow clip for 1, 2, >=3 clips; (): the reference's per row, (32, 24, 16) for CoT rows and
    (32, 16) for the others (inference: 32)."""
    min_clip_s: float = 5.0
    widen_clip_s: float = 6.0
    max_length: int = 20500
    """Longer samples are skipped (the reference's 20 500-token guard)."""
    max_retries: int = 3
    """Skipped samples in a row before giving up (the reference retries 3)."""
    cache_dir: str = ""
    """A frame cache folder ("": none; the fast view of a video is then decoded at every fetch)."""
    attn_implementation: str = ""
    trl: dict = field(default_factory=dict)
    """TRL `SFTConfig` fields over `TRL_DEFAULTS`; ``num_train_epochs`` unset: 1 epoch in stage 1, 2 in stage 2."""

    def __post_init__(self):
        with_trl(self, TRL_DEFAULTS)
        if self.stage not in (1, 2):
            raise ConfigError(f"stage must be 1 or 2, got {self.stage}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("max_length", "fast_frames", "fast_budget", "slow_budget"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if any(n < 1 for n in self.slow_frames):
            raise ConfigError(f"slow_frames must be at least 1 each, got {list(self.slow_frames)}")

    def slow_table(self, row) -> tuple[int, ...]:
        """Frames per clip by clip count for `row`: `slow_frames`, or the reference's table for its kind."""
        cot = isinstance(row, CotRow) or getattr(row, "cot", False)
        return tuple(self.slow_frames) or ((32, 24, 16) if cot else (32, 16))

    @property
    def epochs(self) -> float:
        return self.trl.get("num_train_epochs") or (1.0 if self.stage == 1 else 2.0)

    @property
    def seed(self) -> int:
        return int(self.trl.get("seed", 42))


# ---------------------------------------------------------------- samples
def video_path(cfg: ZoomSFTConfig, row) -> Path:
    p = Path(row.video).expanduser()
    return p if p.is_absolute() or not cfg.video_root else Path(cfg.video_root).expanduser() / p


class Skip(Exception):
    """A sample that cannot be trained on; `reason` names the kind (counted), the message says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass
class ZoomSamples:
    """Builds training samples from rows, as the zoom agent builds its prompts; `collate` is the collator."""

    backend: HFBackend
    """Around the model being trained (`HFBackend.from_model`)."""
    rows: list
    cfg: ZoomSFTConfig
    cache: FrameCache | None = None
    profile: object = field(init=False)

    def __post_init__(self):
        self.profile = load_profile(self.cfg.profile)
        tok = self.backend.processor.tokenizer
        self._masked = {tok.convert_tokens_to_ids(t) for t in VISION_TOKENS} | {tok.pad_token_id}
        self._end_ids = tok(END, add_special_tokens=False)["input_ids"]

    def video_path(self, row) -> Path:
        return video_path(self.cfg, row)

    def clips_for(self, row, duration_s: float, *, epoch: int, index: int) -> list[Span]:
        if isinstance(row, CotRow) or row.cot:
            return stage2_clips(row.clips, duration_s, min_s=self.cfg.min_clip_s, widen_s=self.cfg.widen_clip_s)
        rng = random.Random(f"{self.cfg.seed}:{epoch}:{index}")
        return [(float(s), float(e)) for s, e in simulate_clips(duration_s, row.truth, rng)]

    def messages(self, row, *, epoch: int = 0, index: int = 0):
        """The prompt messages of `row` (what the agent would send) and its target."""
        c, f = self.cfg, self.backend.frame_factor
        info = open_video(self.video_path(row), cache=self.cache)
        spans = self.clips_for(row, info.duration_s, epoch=epoch, index=index)
        try:
            fplan = fast_plan(info, max_frames=c.fast_frames, budget=c.fast_budget,
                              short_video_s=c.fast_short_video_s, mode=c.fast_mode, factor=f)
            n = slow_frames_for(len(spans), c.slow_table(row))
            splans = [slow_plan(info, s, e, max_frames=n, budget=c.slow_budget, short_video_s=c.slow_short_video_s,
                                factor=f) for s, e in spans]
        except PlanError as e:
            raise Skip("bad clip", str(e)) from e
        tokens = fplan.visual_tokens + sum(p.visual_tokens for p in splans)
        if tokens > c.max_length:
            raise Skip("too long", f"{tokens} visual tokens > max_length {c.max_length}")
        fast = decode(info, fplan, cache=self.cache)
        clips = [ClipView(s, e, decode(info, p, cache=self.cache)) for (s, e), p in zip(spans, splans, strict=True)]
        if isinstance(row, CotRow):
            question, instruction = format_question(self.profile, row.question, row.options), True
        else:  # the reference's item form: the question as written, the instruction on CoT items
            question = format_question(self.profile, row.question, row.options) if row.options else row.question
            instruction = row.cot or c.stage1_instruction
        msgs = zoom_messages(self.profile, question, info.duration_s, fast, clips, instruction=instruction)
        return msgs, row.target

    def sample(self, index: int, epoch: int = 0) -> dict:
        """Model inputs and labels of row `index` (1-D input_ids/labels, (3, L) positions, media tensors)."""
        row = self.rows[index]
        try:
            msgs, target = self.messages(row, epoch=epoch, index=index)
        except VideoError as e:
            raise Skip("video error", str(e)) from e
        enc = self.backend.encode(msgs, target + END)
        ids = enc["input_ids"][0]
        if len(ids) > self.cfg.max_length:
            raise Skip("too long", f"{len(ids)} tokens > max_length {self.cfg.max_length}")
        labels = ids.clone()
        if self.cfg.loss == "assistant":
            n = len(self.backend.processor.tokenizer(target, add_special_tokens=False)["input_ids"]) + len(
                self._end_ids)
            labels[:-n] = -100
        else:
            for t in self._masked:
                labels[ids == t] = -100
            labels[enc["mm_token_type_ids"][0] != 0] = -100
        out = {"input_ids": ids, "labels": labels, "position_ids": enc["position_ids"][:, 0],
               "mm_token_type_ids": enc["mm_token_type_ids"][0]}
        return out | {k: v for k, v in enc.items() if k not in out and k != "position_ids"}

    def collate(self, items: list[dict]) -> dict:
        """A batch from dataset items ``{"index", "epoch"}``; skipped samples are replaced by the next rows."""
        samples, skipped = [], []
        for item in items:
            i = item["index"]
            for attempt in range(self.cfg.max_retries + 1):
                try:
                    samples.append(self.sample(i, item["epoch"]))
                    break
                except Skip as e:
                    skipped.append(e.reason)
                    log.info("skipped sample %s (%s): %s", self.rows[i].id, e.reason, e)
                    if attempt == self.cfg.max_retries:
                        raise LongLensError(f"{self.cfg.max_retries + 1} samples in a row were skipped, the last "
                                            f"{self.rows[i].id}: {e}; check the rows, videos and max_length") from e
                    i = (i + 1) % len(self.rows)
        return pad_batch(samples, self.backend.processor.tokenizer.pad_token_id) | {"skipped": skipped}


def pad_batch(samples: list[dict], pad_id: int) -> dict:
    """Right-padded (B, L) ids, labels, attention mask and token types, (3, B, L) positions, media concatenated."""
    import torch

    n = max(len(s["input_ids"]) for s in samples)

    def padded(key, value):
        return torch.stack([torch.nn.functional.pad(s[key], (0, n - len(s["input_ids"])), value=value)
                            for s in samples])

    pos = []
    for s in samples:
        p, extra = s["position_ids"], n - s["position_ids"].shape[1]
        tail = p.max() + 1 + torch.arange(extra, dtype=p.dtype)
        pos.append(torch.cat([p, tail.expand(3, extra)], dim=1))
    out = {"input_ids": padded("input_ids", pad_id), "labels": padded("labels", -100),
           "attention_mask": torch.stack([(torch.arange(n) < len(s["input_ids"])).long() for s in samples]),
           "mm_token_type_ids": padded("mm_token_type_ids", 0), "position_ids": torch.stack(pos, dim=1)}
    for key in ("pixel_values_videos", "video_grid_thw", "pixel_values", "image_grid_thw"):
        parts = [s[key] for s in samples if key in s]
        if parts:
            out[key] = torch.cat(parts)
    return out


# ---------------------------------------------------------------- training
class EpochTag:
    """The epoch the trainer is in (set by the trainer's epoch callback); the dataset tags items with it."""

    epoch: int = 0


def row_index(n: int, tag: EpochTag):
    """The training dataset: ``{"index", "epoch"}`` per row (TRL wants a `datasets.Dataset`); the collator
    builds the samples."""
    import datasets

    ds = datasets.Dataset.from_dict({"index": list(range(n))})
    ds.set_transform(lambda batch: {"index": batch["index"], "epoch": [tag.epoch] * len(batch["index"])})
    return ds


def load_rows(cfg: ZoomSFTConfig) -> list:
    """The SFT rows of `cfg.train_file`, each video placed on this machine (`video_roots`)."""
    path = Path(cfg.train_file).expanduser()
    if not path.is_file():
        raise LongLensError(f"train_file {path}: no such file")
    return read_rows(path, (TemplateRow, CotRow), video_roots(cfg), "train_file", skip_missing=cfg.skip_missing)[1]


def check(cfg: ZoomSFTConfig) -> None:
    """Everything that can be checked before the model loads: TRL's settings and the video folders."""
    video_roots(cfg)
    sft_args(cfg, cfg.epochs)


def run_zoom_sft(cfg: ZoomSFTConfig) -> dict:
    """Train the zoom model on `cfg.train_file`, save model and processor to `cfg.output_dir`, return a summary."""
    t0 = time.perf_counter()
    check(cfg)
    rows = load_rows(cfg)
    model, processor, pristine = load_vl_model(cfg)
    backend = HFBackend.from_model(model, processor, kv_reuse=False)
    samples = ZoomSamples(backend, rows, cfg, FrameCache(cfg.cache_dir) if cfg.cache_dir else None)
    tag = EpochTag()
    summary = train(cfg, model, pristine, row_index(len(rows), tag), samples.collate, epochs=cfg.epochs,
                    epoch_target=tag)
    return {"rows": len(rows), **summary, "seconds": round(time.perf_counter() - t0, 2)}
