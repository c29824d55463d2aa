"""LOVE-R1 stage 3: decoupled GRPO with TRL, the rollouts through our zoom loop (the reference:
HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:947-1500; where we differ:
docs/reference-code.md, LOVE-R1).

`ZoomGRPOTrainer` is the shared `grpo_core.RolloutGRPOTrainer` (TRL's `GRPOTrainer` with rollouts and a
loss of our own) with the zoom agent's rollouts: each question is rolled out by `train.zoom.rollout.Roller` with
the policy itself wrapped as an in-process backend (`HFBackend.from_model`), so rollouts see the frames,
prompts, forced prefixes and clip policy of inference; rewards come from `longlens.rewards` (the scorers).
Every step is scored in the loss by one forward over exactly the inputs inference built (`HFBackend.encode`):
the video tensors, ``mm_token_type_ids`` and the position ids of the trained mRoPE rule, which carry each
video's ``second_per_grid_ts``. TRL as shipped drops the video from this forward (trl 1.16.0
trl/trainer/grpo_trainer.py:1419-1438, docs/reference-code.md#lib1) and the reference dropped
``second_per_grid_ts`` (docs/reference-code.md#z1); here the forward is the inference forward.

All steps of a rollout are trained in the same optimiser step, each as its own sequence with its own
prompt (the reference trained step 1 and step 2 in alternating steps through ``num_iterations=2``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from longlens.backends.base import GenConfig
from longlens.data.rows import RLRow
from longlens.train.config import with_trl
from longlens.train.grpo_core import IM_END, Item, Scored, grpo_args, read_rows, rollout_trainer, train_and_save
from longlens.train.grpo_core import check as check  # the recipe's pre-flight check (`longlens train`)
from longlens.train.zoom.rollout import Roller

TRL_DEFAULTS = {
    "num_generations": 8, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 4, "learning_rate": 1e-6,
    "lr_scheduler_type": "cosine", "warmup_steps": 0.0, "weight_decay": 0.01, "max_grad_norm": 5.0, "beta": 0.0,
    "epsilon": 0.2, "epsilon_high": None, "loss_type": "bnpo", "num_iterations": 1, "num_train_epochs": 1.0,
    "max_steps": -1, "seed": 42, "activation_checkpointing": True, "bf16": None, "temperature": 1.0, "top_k": 50,
    "top_p": 1.0, "max_completion_length": 512, "use_vllm": False, "vllm_gpu_memory_utilization": 0.3,
    "vllm_tensor_parallel_size": 1, "logging_steps": 1, "save_steps": 200, "save_strategy": "steps",
    "report_to": "none",
}
"""TRL `GRPOConfig` values of the reference run (HumanMLLM/LOVE-R1@aa1facb src/scripts/run_grpo_video_nodes.sh:25-47)
where it sets them. ``bf16`` None: bf16 on
a GPU, float32 on CPU. The rollouts sample with TRL's ``temperature``, ``top_k``, ``top_p`` and
``max_completion_length`` (tokens per step); ``use_vllm`` rolls out on TRL's colocated vLLM engine."""


@dataclass
class ZoomGRPOConfig:
    """`longlens train grpo` settings: ours, and TRL's `GRPOConfig` in `trl`."""

    TRL: ClassVar[str] = "GRPOConfig"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model_path", "rows")
    model_path: str = ""
    """The stage-2 checkpoint folder (a Qwen2.5-VL or Qwen3-VL model with its processor)."""
    rows: str = ""
    """`RLRow` JSON lines (`longlens data mine` writes them), or LOVE-R1's released RL JSON list."""
    videos: str = ""
    """The folder the rows' relative video paths are under."""
    video_roots: tuple[str, ...] = ()
    """``NAME=DIR`` per source data set (``--video-root NAME=DIR``): a row path with a folder NAME in it, or a
    LongVideo-R1 row whose ``data_source`` is NAME, is looked up under DIR."""
    skip_missing: bool = False
    """Train without the rows whose videos are missing (false: refuse to start, naming the first)."""
    output_dir: str = "runs/grpo"
    # rollouts: the zoom loop's settings (inference's by default: train what you serve)
    max_steps_per_rollout: int = 3
    fast_frames: int = 768
    fast_budget: int = 32 * 28 * 28
    slow_frames: int = 32
    """The reference RL used 16 (docs/reference-code.md#z3); 32 is what inference shows."""
    slow_budget: int = 256 * 28 * 28
    short_video_s: float = 60.0
    cache_dir: str = ""
    """Frame cache folder ("": the default cache): a video's fast view is decoded once for the whole run."""
    answer_weight: float = 1.0
    zoom_weight: float = 1.0
    format_weight: float = 1.0
    freeze_vision: bool = True
    attn_implementation: str | None = None
    trl: dict = field(default_factory=dict)
    """TRL `GRPOConfig` fields over `TRL_DEFAULTS`."""

    def __post_init__(self):
        with_trl(self, TRL_DEFAULTS)

    def weights(self) -> dict:
        return {"answer": self.answer_weight, "zoom": self.zoom_weight, "format": self.format_weight}

    def zoom_config(self, args):
        """The zoom loop of the rollouts, sampling as TRL's config `args` says."""
        from longlens.agents.zoom import ZoomConfig

        gen = GenConfig(max_new_tokens=args.max_completion_length, temperature=args.temperature,
                        top_k=args.top_k or None, top_p=args.top_p, seed=args.seed)
        return ZoomConfig(max_steps=self.max_steps_per_rollout, fast_frames=self.fast_frames,
                          fast_budget=self.fast_budget, slow_frames=self.slow_frames, slow_budget=self.slow_budget,
                          short_video_s=self.short_video_s, seed=args.seed, gen=gen)


def _trainer_class():
    from longlens.agents.zoom import SharedFrames, ZoomAgent
    from longlens.backends.hf import HFBackend

    base = rollout_trainer()

    class ZoomGRPOTrainer(base):
        """GRPO of the zoom agent: rollouts through `Roller` with the policy as an in-process backend."""

        def __init__(self, *, model, processor, rows: list[RLRow], config: ZoomGRPOConfig, args, cache=None):
            self.recipe = config
            self._zoom = config.zoom_config(args)
            self._cache = cache
            self._shared = SharedFrames()  # frames of the videos in flight, kept across generation batches
            super().__init__(model=model, processing_class=processor, rows=rows, args=args, seed=args.seed)

        def rollout(self, net, rows: list[RLRow], seeds: list[int]) -> list[Scored]:
            backend = HFBackend.from_model(net, self.processing_class, name="policy", kv_reuse=True)
            sampler = self.rollout_backend(backend)  # the policy itself, or vLLM (use_vllm)
            agent = ZoomAgent(sampler, self._zoom, cache=self._cache, shared=self._shared)
            roller = Roller(agent, self.recipe.videos, self.recipe.weights())
            tok = self.processing_class.tokenizer
            out = []
            for row, seed in zip(rows, seeds, strict=True):
                r = roller.run(row, replace(self._zoom.gen, seed=seed))
                items = []
                for step in r.steps:
                    target = step.completion + (IM_END if step.ended else "")
                    n = len(tok(target, add_special_tokens=False)["input_ids"])
                    items.append(Item.tail(backend.encode(step.messages, target), n, step.part))
                metrics = dict(r.details)
                if r.kind == "general":
                    metrics["masked"] = float(r.rewards[0] is None)
                out.append(Scored(items, r.rewards, metrics))
            return out

    return ZoomGRPOTrainer


def load_policy(config: ZoomGRPOConfig):
    """(model, processor, a pristine processor to save) of `config.model_path`, vision frozen unless asked."""
    from longlens.train.sft_core import load_vl_model

    return load_vl_model(config)


def run_zoom_grpo(config: ZoomGRPOConfig, *, model=None, processor=None) -> dict:
    """Train; save the model and the checkpoint's processor to ``config.output_dir``; return a summary.
    `model` and `processor` (already loaded, e.g. by `load_policy`) replace loading `config.model_path`."""
    import copy

    t0 = time.perf_counter()
    rows = read_rows(config)
    if model is None:
        model, processor, pristine = load_policy(config)
    else:
        pristine = copy.deepcopy(processor)  # the rollout backend widens the processor's pixel limits
    trainer_cls = _trainer_class()
    from longlens.video import FrameCache

    cache = FrameCache(Path(config.cache_dir).expanduser() if config.cache_dir else None)
    trainer = trainer_cls(model=model, processor=processor, rows=rows, config=config, args=grpo_args(config),
                          cache=cache)
    return train_and_save(trainer, pristine, config, rows, t0)
