"""LOVE-R1 stage 3: decoupled GRPO with TRL, the rollouts through our zoom loop (love-r1-spec §4.3, §7).

`ZoomGRPOTrainer` subclasses TRL's `GRPOTrainer` and keeps its training loop, sampler (each question
repeated ``num_generations`` times), optimiser, schedules, accelerate/DeepSpeed plumbing, logging and
checkpoints. It replaces the two places that do not fit a video agent:

* **Generation and scoring** (`_generate_and_score_completions`): each question is rolled out by
  `train.rollout.Roller` with the policy itself wrapped as an in-process backend (`HFBackend.from_model`),
  so rollouts see the frames, prompts, forced prefixes and clip policy of inference. Rewards come from
  `train.rewards` (the scorers); advantages are normalised per group and per part, masked rollouts left
  out (`group_advantages`), across all processes.
* **The loss** (`_compute_loss`): every step of every rollout is scored by one forward over exactly the
  inputs inference built (`HFBackend.encode`): the video tensors, ``mm_token_type_ids`` and the position ids
  of the trained mRoPE rule, which carry each video's ``second_per_grid_ts``. TRL as shipped drops the video
  from this forward (tiny-model-feasibility §3) and the reference dropped ``second_per_grid_ts`` (§7.1);
  here the forward is the inference forward. The PPO-clipped surrogate (``epsilon``, ``epsilon_high``),
  optional KL to the reference model (``beta``) and old log-probs for ``num_iterations > 1`` follow TRL's
  definitions; ``loss_type`` "grpo" averages tokens per sequence then sequences, any other value averages
  all tokens of the micro-batch (the reference's "bnpo" with batch 1).

All steps of a rollout are trained in the same optimiser step, each as its own sequence with its own
prompt (the reference trained step 1 and step 2 in alternating steps through ``num_iterations=2``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from longlens._imports import require
from longlens.backends.base import GenConfig
from longlens.errors import LongLensError
from longlens.train.data import RLRow, read_jsonl
from longlens.train.rewards import group_advantages
from longlens.train.rollout import PARTS, RewardWeights, Roller

IM_END = "<|im_end|>"


@dataclass
class ZoomGRPOConfig:
    """`longlens train grpo` settings. Defaults: the reference run (love-r1-spec §4.3) where it is stated."""

    model_path: str = ""
    """The stage-2 checkpoint folder (a Qwen2.5-VL or Qwen3-VL model with its processor)."""
    rows: str = ""
    """`RLRow` JSON lines (`longlens data mine` writes them)."""
    videos: str = ""
    """The folder the rows' relative video paths are under."""
    output_dir: str = "runs/grpo"
    # rollouts: the zoom loop's settings (inference's by default: train what you serve)
    max_steps_per_rollout: int = 3
    fast_frames: int = 768
    fast_budget: int = 32 * 28 * 28
    slow_frames: int = 32
    """The reference RL used 16 (spec §7.3 table); 32 is what inference shows."""
    slow_budget: int = 256 * 28 * 28
    short_video_s: float = 60.0
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    max_completion_length: int = 512
    answer_weight: float = 1.0
    zoom_weight: float = 1.0
    format_weight: float = 1.0
    # optimisation (TRL GRPOConfig fields)
    num_generations: int = 8
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 4
    learning_rate: float = 1e-6
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.0
    """Steps, or a fraction of all steps when below 1 (the reference: none)."""
    weight_decay: float = 0.01
    max_grad_norm: float = 5.0
    beta: float = 0.0
    epsilon: float = 0.2
    epsilon_high: float | None = None
    loss_type: str = "bnpo"
    num_iterations: int = 1
    num_train_epochs: float = 1.0
    max_steps: int = -1
    seed: int = 42
    freeze_vision: bool = True
    gradient_checkpointing: bool = True
    bf16: bool | None = None
    """None: bf16 on a GPU, float32 on CPU."""
    attn_implementation: str | None = None
    deepspeed: str | None = None
    """A DeepSpeed JSON config (or use ``accelerate launch --config_file configs/accelerate/zero3.yaml``)."""
    logging_steps: int = 1
    save_steps: int = 200
    save_strategy: str = "steps"
    report_to: str = "none"

    def zoom_config(self):
        from longlens.agents.zoom import ZoomConfig

        gen = GenConfig(max_new_tokens=self.max_completion_length, temperature=self.temperature, top_k=self.top_k,
                        top_p=self.top_p, seed=self.seed)
        return ZoomConfig(max_steps=self.max_steps_per_rollout, fast_frames=self.fast_frames,
                          fast_budget=self.fast_budget, slow_frames=self.slow_frames, slow_budget=self.slow_budget,
                          short_video_s=self.short_video_s, seed=self.seed, gen=gen)


TRL_FIELDS = ("num_generations", "per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate",
              "lr_scheduler_type", "warmup_steps", "weight_decay", "max_grad_norm", "beta", "epsilon", "epsilon_high",
              "loss_type", "num_iterations", "num_train_epochs", "max_steps", "seed", "gradient_checkpointing",
              "deepspeed", "logging_steps", "save_steps", "save_strategy", "report_to", "temperature", "top_k",
              "top_p", "max_completion_length")


class _Item:
    """One step of a rollout as the loss sees it: its encoded inputs and, when needed, old and ref log-probs."""

    __slots__ = ("inputs", "n", "part", "old", "ref")

    def __init__(self, inputs: dict, n: int, part: int):
        self.inputs, self.n, self.part, self.old, self.ref = inputs, n, part, None, None


def _trainer_class():
    trl = require("trl", "train", "GRPO training")
    torch = require("torch", "train", "GRPO training")
    from trl.models import unwrap_model_for_generation

    from longlens.agents.zoom import ZoomAgent
    from longlens.backends.hf import HFBackend

    class ZoomGRPOTrainer(trl.GRPOTrainer):
        """TRL's GRPOTrainer with zoom-agent rollouts and a loss forward that sees the video (module doc)."""

        def __init__(self, *, model, processor, rows: list[RLRow], config: ZoomGRPOConfig, args, reward_funcs,
                     cache=None):
            datasets = require("datasets", "train", "GRPO training")
            self.rows = rows
            self.recipe = config
            self._zoom = config.zoom_config()
            self._cache = cache
            self._weights = RewardWeights(config.answer_weight, config.zoom_weight, config.format_weight)
            dataset = datasets.Dataset.from_list([{"prompt": r.question, "row": i} for i, r in enumerate(rows)])
            super().__init__(model=model, reward_funcs=reward_funcs, args=args, train_dataset=dataset,
                             processing_class=processor)
            self._generation = 0

        # ---------------------------------------------------------------- rollouts
        def _backend(self, net):
            return HFBackend.from_model(net, self.processing_class, name="policy", kv_reuse=True)

        def _generate_and_score_completions(self, inputs):
            acc = self.accelerator
            mode = "train" if self.model.training else "eval"
            rows = [self.rows[int(x["row"])] for x in inputs]
            n_local = len(rows)
            offset = acc.process_index * n_local
            t0 = time.perf_counter()
            was_training = self.model.training
            with unwrap_model_for_generation(self.model_wrapped, acc,
                                             gather_deepspeed3_params=self.args.ds3_gather_for_generation) as net:
                backend = self._backend(net)
                roller = Roller(ZoomAgent(backend, self._zoom, cache=self._cache), self.recipe.videos, self._weights)
                rollouts = []
                for i, row in enumerate(rows):
                    seed = ((self.recipe.seed * 1_000_003 + self._generation) * 65_537 + offset + i) % 2**31
                    rollouts.append(roller.run(row, replace_seed(self._zoom.gen, seed)))
                items = [[self._item(backend, s) for s in r.steps] for r in rollouts]
                if self.num_iterations > 1 or self.beta != 0.0:
                    with torch.no_grad():
                        for group in items:
                            for it in group:
                                if self.num_iterations > 1:
                                    it.old = self._logps(net, it).detach().cpu()
                                if self.beta != 0.0:
                                    it.ref = self._ref_logps(it)
            self.model.train(was_training)
            self._generation += 1
            gen_s = time.perf_counter() - t0

            # rewards (n_local, PARTS), NaN = masked or no such part; advantages per group and part, all processes
            nan = float("nan")
            local = torch.tensor([[r.rewards[k] if k < len(r.rewards) and r.rewards[k] is not None else nan
                                   for k in range(PARTS)] for r in rollouts], dtype=torch.float32, device=acc.device)
            every = acc.gather(local).cpu()
            adv = torch.zeros_like(every)
            for k in range(PARTS):
                col = [None if v != v else float(v) for v in every[:, k].tolist()]
                adv[:, k] = torch.tensor(group_advantages(col, self.num_generations))
            mine = adv[offset: offset + n_local]
            present = ~torch.isnan(local.cpu())

            m = self._metrics[mode]
            all_rewards = every[~torch.isnan(every)]
            m["reward"].append(all_rewards.mean().item() if all_rewards.numel() else 0.0)
            m["reward_std"].append(all_rewards.std().item() if all_rewards.numel() > 1 else 0.0)
            general = [r for r in rollouts if r.kind == "general"]
            if general:
                m["rollout/masked"].append(sum(r.rewards[0] is None for r in general) / len(general))
                m["rollout/answer"].append(sum(r.details["answer"] or 0.0 for r in general) / len(general))
                m["rollout/steps"].append(sum(len(r.steps) for r in general) / len(general))
            local_rows = [r for r in rollouts if r.kind == "local"]
            if local_rows:
                m["rollout/zoom"].append(sum(r.details["zoom1"] for r in local_rows) / len(local_rows))
            m["rollout/completion_tokens"].append(sum(it.n for g in items for it in g) / max(1, n_local))
            m["rollout/seconds"].append(gen_s)
            return {"advantages": mine, "present": present, "items": items}

        def _item(self, backend, step) -> _Item:
            target = step.completion + (IM_END if step.ended else "")
            inputs = backend.encode(step.messages, target)
            n = len(self.processing_class.tokenizer(target, add_special_tokens=False)["input_ids"])
            return _Item(inputs, max(n, 1), step.part)

        # ---------------------------------------------------------------- log-probs
        def _logps(self, net, item: _Item):
            device = next(net.parameters()).device
            dtype = next(net.parameters()).dtype
            inputs = {k: v.to(device) for k, v in item.inputs.items()}
            for k in ("pixel_values_videos", "pixel_values"):
                if k in inputs:
                    inputs[k] = inputs[k].to(dtype)
            ids = inputs["input_ids"]
            out = net(**inputs, use_cache=False, logits_to_keep=item.n + 1)
            logits = out.logits[0, :-1].float()
            target = ids[0, -item.n:]
            return torch.log_softmax(logits, dim=-1).gather(-1, target[:, None])[:, 0]

        def _ref_logps(self, item: _Item):
            if self.ref_model is not None:
                return self._logps(self.ref_model, item).detach().cpu()
            net = self.accelerator.unwrap_model(self.model)
            with net.disable_adapter():  # a PEFT model: the base weights are the reference
                return self._logps(net, item).detach().cpu()

        # ---------------------------------------------------------------- the loss
        def _compute_loss(self, model, inputs):
            mode = "train" if self.model.training else "eval"
            adv, present = inputs["advantages"], inputs["present"]
            terms, counts, kls = [], [], []
            for r, group in enumerate(inputs["items"]):
                for it in group:
                    logp = self._logps(model, it)
                    weight = 1.0 if bool(present[r, it.part]) else 0.0  # masked: in the graph, out of the loss
                    a = float(adv[r, it.part])
                    old = it.old.to(logp.device) if it.old is not None else logp.detach()
                    ratio = torch.exp(logp - old)
                    high = self.epsilon_high
                    per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - self.epsilon_low, 1 + high) * a)
                    if self.beta != 0.0:
                        ref = it.ref.to(logp.device)
                        kl = torch.exp(ref - logp) - (ref - logp) - 1
                        per_token = per_token + self.beta * kl
                        kls.append(kl.mean().detach())
                    terms.append(per_token * weight)
                    counts.append(weight * it.n)
            if self.loss_type == "grpo":
                seqs = [t.mean() for t, c in zip(terms, counts, strict=True) if c > 0]
                loss = torch.stack(seqs).mean() if seqs else sum(t.sum() for t in terms) * 0.0
            else:
                loss = sum(t.sum() for t in terms) / max(1.0, sum(counts))
            if mode == "train":
                loss = loss / self.current_gradient_accumulation_steps
            if kls:
                self._metrics[mode]["kl"].append(torch.stack(kls).mean().item())
            return loss

    return ZoomGRPOTrainer


def replace_seed(gen: GenConfig, seed: int) -> GenConfig:
    from dataclasses import replace

    return replace(gen, seed=seed)


def grpo_args(config: ZoomGRPOConfig):
    """TRL's GRPOConfig from ours (CPU runs get ``use_cpu`` and float32)."""
    trl = require("trl", "train", "GRPO training")
    torch = require("torch", "train", "GRPO training")
    cuda = torch.cuda.is_available()
    kw = {k: getattr(config, k) for k in TRL_FIELDS}
    kw.update(output_dir=config.output_dir, bf16=cuda if config.bf16 is None else config.bf16,
              use_cpu=not cuda, remove_unused_columns=False, save_only_model=False,
              gradient_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None)
    return trl.GRPOConfig(**kw)


def load_policy(config: ZoomGRPOConfig):
    """The model and processor of `config.model_path`, vision tower frozen unless asked otherwise."""
    from longlens.backends.hf.torchvision_shim import install

    install()
    transformers = require("transformers", "train", "GRPO training")
    torch = require("torch", "train", "GRPO training")
    path = Path(config.model_path)
    if not (path / "config.json").is_file():
        raise LongLensError(f"model_path {path}: no model folder (config.json missing); give a local checkpoint")
    dtype = torch.bfloat16 if (config.bf16 if config.bf16 is not None else torch.cuda.is_available()) else torch.float32
    kw = {"dtype": dtype, "local_files_only": True}
    if config.attn_implementation:
        kw["attn_implementation"] = config.attn_implementation
    model = transformers.AutoModelForImageTextToText.from_pretrained(path, **kw)
    processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
    if config.freeze_vision:
        for name, p in model.named_parameters():
            if "visual" in name:
                p.requires_grad_(False)
    return model, processor


def read_rows(config: ZoomGRPOConfig) -> list[RLRow]:
    path = Path(config.rows)
    if not path.is_file():
        raise LongLensError(f"rows {path}: no such file; `longlens data mine` writes GRPO rows")
    rows = read_jsonl(path, RLRow)
    if not rows:
        raise LongLensError(f"rows {path}: no rows to train on")
    root = Path(config.videos) if config.videos else None
    missing = [r.video for r in rows if not (Path(r.video) if Path(r.video).is_absolute() or root is None
                                            else root / r.video).is_file()]
    if missing:
        raise LongLensError(f"{len(missing)} of {len(rows)} row videos are missing (first: {missing[0]}); "
                            f"check videos={config.videos!r}")
    return rows


def run_zoom_grpo(config: ZoomGRPOConfig, *, model=None, processor=None) -> dict:
    """Train; save the model and processor to ``config.output_dir``; return a summary."""
    from longlens.train.rewards import reward_answer, reward_format, reward_zoom

    t0 = time.perf_counter()
    rows = read_rows(config)
    if model is None:
        model, processor = load_policy(config)
    trainer_cls = _trainer_class()
    trainer = trainer_cls(model=model, processor=processor, rows=rows, config=config, args=grpo_args(config),
                          reward_funcs=[reward_answer, reward_zoom, reward_format])
    result = trainer.train()
    trainer.save_model(config.output_dir)
    processor.save_pretrained(config.output_dir)
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {"steps": trainer.state.global_step, "train_loss": result.training_loss,
            "last": history[-1] if history else {}, "rows": len(rows), "seconds": round(time.perf_counter() - t0, 1),
            "output_dir": config.output_dir}


def config_fields() -> list[str]:
    return [f.name for f in fields(ZoomGRPOConfig)]


def as_dict(config: ZoomGRPOConfig) -> dict:
    return asdict(config)
