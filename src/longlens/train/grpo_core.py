"""The GRPO machinery shared by the agents' trainers: TRL's GRPOTrainer with rollouts and a loss of our own.

`rollout_trainer()` returns `RolloutGRPOTrainer`, a subclass of TRL's `GRPOTrainer` that keeps its training
loop, sampler (each question repeated ``num_generations`` times), optimiser, schedules, accelerate/DeepSpeed
plumbing, logging and checkpoints, and replaces the two places that assume one prompt and one completion:

* `_generate_and_score_completions`: a subclass's `rollout(net, rows, seeds)` runs the agent with the policy
  (unwrapped for generation) and returns one `Scored` per row: the sequences to train on (`Item`: the model
  inputs exactly as the agent's backend encodes them, and which tokens are the model's own) and a reward per
  *part* (None: masked). Advantages are ``(r - mean) / (std + 1e-4)`` per group of rollouts of one question
  and per part, over all processes, masked rollouts left out (`group_advantages`).
* `_compute_loss`: every item is scored by one forward over its inputs (video tensors, ``mm_token_type_ids``
  and position ids included: nothing is dropped), then TRL's clipped surrogate (``epsilon``,
  ``epsilon_high``), the k3 KL to the reference model when ``beta`` > 0, and old log-probs taken at rollout
  time when ``num_iterations`` > 1. ``loss_type`` "grpo" averages tokens per sequence then sequences; any other
  value averages all the micro-batch's tokens (the reference's "bnpo" with batch 1). Masked items stay in the
  graph with weight 0; a micro-batch with no items at all gives a zero loss over the parameters. Log-probs are
taken at the sampling temperature (as TRL does), not under top-k/top-p truncation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from longlens._imports import require
from longlens.backends.base import DEFAULT_GEN, Backend, BackendError, Completion, GenConfig
from longlens.data.rows import RLRow
from longlens.errors import LongLensError
from longlens.train.config import trl_args, video_roots

IM_END = "<|im_end|>"
"""The token that ends a Qwen chat turn: appended to an agent's reply that ended there, so it is trained on."""
PARTS = 2
"""Reward parts per rollout at most (a zoom row: without and with the given clips)."""


class Item:
    """One sequence to train on: batch-1 model inputs and the positions of the model's own tokens."""

    __slots__ = ("inputs", "mask", "part", "old", "ref")

    def __init__(self, inputs: dict, mask, part: int = 0):
        self.inputs = inputs
        self.mask = mask
        """Bool (L,): True where the token is the model's (it gets the loss)."""
        self.part = part
        self.old = None
        self.ref = None

    @property
    def n(self) -> int:
        return int(self.mask.sum())

    @classmethod
    def tail(cls, inputs: dict, n: int, part: int = 0) -> Item:
        """The last `n` tokens are the model's (one reply after its prompt)."""
        torch = require("torch", "train", "GRPO training")
        mask = torch.zeros(inputs["input_ids"].shape[1], dtype=torch.bool)
        mask[-max(n, 1):] = True
        return cls(inputs, mask, part)


@dataclass
class Scored:
    """A rollout of one row, ready for the loss."""

    items: list
    rewards: tuple
    """One per part; None: masked."""
    metrics: dict = field(default_factory=dict)
    """Numbers to log, averaged over the rollouts that report them (as ``rollout/<name>``)."""


def sequence_logps(net, item: Item, temperature: float = 1.0):
    """Log-probabilities of the item's own tokens under `net` sampling at `temperature`: one forward over all its
    inputs (media tensors, ``mm_token_type_ids``, position ids), logits kept from the position before the first
    own token on."""
    torch = require("torch", "train", "GRPO training")
    params = next(net.parameters())
    inputs = {k: v.to(params.device) for k, v in item.inputs.items()}
    for k in ("pixel_values_videos", "pixel_values"):
        if k in inputs:
            inputs[k] = inputs[k].to(params.dtype)
    ids = inputs["input_ids"][0]
    first = int(item.mask.nonzero()[0])
    logits = net(**inputs, use_cache=False, logits_to_keep=len(ids) - first + 1).logits[0, :-1].float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature  # the distribution the rollouts sampled from (top-k/top-p not modelled)
    mask = item.mask[first:].to(params.device)
    return torch.log_softmax(logits[mask], dim=-1).gather(-1, ids[first:][mask][:, None])[:, 0]


def group_advantages(rewards: Sequence[float | None], group_size: int, eps: float = 1e-4) -> list[float]:
    """``(r - mean) / (std + eps)`` per group of `group_size` consecutive rollouts
    (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:1375-1423), the masked ones (None)
    left out of the mean and the unbiased std and given 0. A group with one unmasked rollout gives it 0. Each
    group is counted on its own, whatever the batch layout (docs/reference-code.md#z9)."""
    if group_size < 1 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    out: list[float] = []
    for g in range(0, len(rewards), group_size):
        group = rewards[g: g + group_size]
        kept = [r for r in group if r is not None]
        mean = sum(kept) / len(kept) if kept else 0.0
        std = math.sqrt(sum((r - mean) ** 2 for r in kept) / (len(kept) - 1)) if len(kept) > 1 else 1.0
        out += [0.0 if r is None or len(kept) < 2 else (r - mean) / (std + eps) for r in group]
    return out


def seed_for(base: int, generation: int, index: int) -> int:
    return ((base * 1_000_003 + generation) * 65_537 + index) % 2**31


class RolloutBackend(Backend):
    """The policy as one rollout sees it: every call samples with its own seed drawn from the rollout's
    (`seed_for(seed, call, 0)`, so two steps never replay one random stream), with `gen` when given (else the
    caller's settings); keeps each call's messages and completion, and notes whether the policy failed."""

    name = "rollout"

    def __init__(self, backend: Backend, seed: int | None, gen: GenConfig | None = None):
        self.backend = backend
        self.seed = seed
        self.gen = gen
        self.calls: list[tuple[tuple, Completion]] = []
        self.failed = False
        self.model = getattr(backend, "model", None)

    def generate(self, messages, gen: GenConfig = DEFAULT_GEN) -> Completion:
        seed = None if self.seed is None else seed_for(self.seed, len(self.calls), 0)
        try:
            completion = self.backend.generate(messages, replace(self.gen or gen, seed=seed))
        except BackendError:
            self.failed = True
            raise
        self.calls.append((tuple(messages), completion))
        return completion

    def describe(self) -> str:
        return self.backend.describe()

    @property
    def frame_factor(self):
        return getattr(self.backend, "frame_factor", None)


def grpo_args(config):
    """TRL's GRPOConfig from a recipe's config. TRL's ``reward_weights`` would weigh reward functions TRL never
    calls (the rollouts compute their rewards): a recipe's weights are its own fields."""
    if "reward_weights" in config.trl:
        raise LongLensError("trl.reward_weights: the rewards are computed by the rollouts; set the recipe's "
                            "*_weight fields instead")
    fixed = {"remove_unused_columns": False, "save_only_model": False, "vllm_mode": "colocate"}
    if config.trl.get("activation_checkpointing") or config.trl.get("gradient_checkpointing"):
        fixed["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    return trl_args(config, "GRPOConfig", fixed, "GRPO training")


def read_rows(config) -> list[RLRow]:
    """The recipe's `RLRow`s (`config.rows`: our JSON lines, LOVE-R1's RL JSON or LongVideo-R1's RL parquet),
    each video placed on this machine by ``videos`` and ``video_roots``."""
    from longlens.data import released

    path = Path(config.rows).expanduser()
    if not path.is_file():
        raise LongLensError(f"rows {path}: no such file; `longlens data mine` or `data rows` writes GRPO rows")
    return released.read_rows(path, (RLRow,), video_roots(config), "rows", skip_missing=config.skip_missing)[1]


def check(config) -> None:
    """Everything a GRPO recipe can check before the model loads: the video folders and TRL's settings."""
    video_roots(config)
    grpo_args(config)


def train_and_save(trainer, processing_class, config, rows: list, t0: float) -> dict:
    """Train, save the model and `processing_class` to ``config.output_dir``, and return the run's summary."""
    result = trainer.train()
    trainer.save_model(config.output_dir)
    processing_class.save_pretrained(config.output_dir)
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {"steps": trainer.state.global_step, "train_loss": result.training_loss,
            "last": history[-1] if history else {}, "rows": len(rows), "seconds": round(time.perf_counter() - t0, 1),
            "output_dir": config.output_dir}


def rollout_reward(prompts, completions, **kwargs):
    """The one reward function TRL is given (it wants one): the rewards are the rollouts' own (`Scored.rewards`),
    computed by each agent's `rollout`, so TRL never calls this."""
    raise LongLensError("rewards come from the rollouts; TRL's reward functions are not used")


def rollout_trainer():
    trl = require("trl", "train", "GRPO training")
    torch = require("torch", "train", "GRPO training")
    datasets = require("datasets", "train", "GRPO training")
    from trl.models import unwrap_model_for_generation

    class RolloutGRPOTrainer(trl.GRPOTrainer):
        """Each agent's trainer subclasses this and defines ``rollout(net, rows, seeds) -> list[Scored]``."""

        def __init__(self, *, model, processing_class, rows: list, args, seed: int = 42):
            self.rows = rows
            self._seed = seed
            self._generation = 0
            dataset = datasets.Dataset.from_list([{"prompt": r.question, "row": i} for i, r in enumerate(rows)])
            super().__init__(model=model, reward_funcs=[rollout_reward], args=args, train_dataset=dataset,
                             processing_class=processing_class)

            if self.use_vllm and self.vllm_mode != "colocate":
                raise LongLensError("use_vllm rolls out on each process's own engine: vllm_mode must be colocate")
            self._last_loaded_step = -1

        def rollout_backend(self, local):
            """What rollouts generate with: `local` (the policy in-process), or, with ``use_vllm``, TRL's
            colocated vLLM engine with the policy's current weights pushed to it (once per optimiser step)."""
            if not self.use_vllm:
                return local
            if self.state.global_step != self._last_loaded_step:
                self.vllm_generation.sync_weights()
                self._last_loaded_step = self.state.global_step
            from longlens.backends.vllm_local import VLLMLocalBackend

            return VLLMLocalBackend(self.vllm_generation.llm, frame_factor=getattr(local, "frame_factor", None))

        # ---------------------------------------------------------------- rollouts and advantages
        def _generate_and_score_completions(self, inputs):
            acc = self.accelerator
            mode = "train" if self.model.training else "eval"
            rows = [self.rows[int(x["row"])] for x in inputs]
            n_local = len(rows)
            offset = acc.process_index * n_local
            seeds = [seed_for(self._seed, self._generation, offset + i) for i in range(n_local)]
            t0 = time.perf_counter()
            was_training = self.model.training
            with unwrap_model_for_generation(self.model_wrapped, acc,
                                             gather_deepspeed3_params=self.args.ds3_gather_for_generation) as net:
                scored = self.rollout(net, rows, seeds)
                if self.num_iterations > 1 or self.beta != 0.0:
                    with torch.no_grad():
                        for it in (it for s in scored for it in s.items):
                            if self.num_iterations > 1:
                                it.old = self._logps(net, it).detach().cpu()
                            if self.beta != 0.0:
                                it.ref = self._ref_logps(it)
            self.model.train(was_training)
            self._generation += 1

            nan = float("nan")
            local = torch.tensor([[s.rewards[k] if k < len(s.rewards) and s.rewards[k] is not None else nan
                                   for k in range(PARTS)] for s in scored], dtype=torch.float32, device=acc.device)
            every = acc.gather(local).cpu()
            adv = torch.zeros_like(every)
            for k in range(PARTS):
                col = [None if v != v else float(v) for v in every[:, k].tolist()]
                adv[:, k] = torch.tensor(group_advantages(col, self.num_generations))

            m = self._metrics[mode]
            kept = every[~torch.isnan(every)]
            m["reward"].append(kept.mean().item() if kept.numel() else 0.0)
            m["reward_std"].append(kept.std().item() if kept.numel() > 1 else 0.0)
            names = sorted({k for s in scored for k in s.metrics})
            for name in names:
                values = [float(s.metrics[name]) for s in scored if s.metrics.get(name) is not None]
                if values:
                    m[f"rollout/{name}"].append(sum(values) / len(values))
            m["rollout/completion_tokens"].append(sum(it.n for s in scored for it in s.items) / max(1, n_local))
            m["rollout/seconds"].append(time.perf_counter() - t0)
            return {"advantages": adv[offset: offset + n_local], "present": ~torch.isnan(local.cpu()),
                    "items": [s.items for s in scored]}

        # ---------------------------------------------------------------- log-probs
        def _logps(self, net, item: Item):
            return sequence_logps(net, item, self.temperature)

        def _ref_logps(self, item: Item):
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
            for r, items in enumerate(inputs["items"]):
                for it in items:
                    logp = self._logps(model, it)
                    weight = 1.0 if bool(present[r, it.part]) else 0.0
                    a = float(adv[r, it.part])
                    old = it.old.to(logp.device) if it.old is not None else logp.detach()
                    ratio = torch.exp(logp - old)
                    clipped = torch.clamp(ratio, 1 - self.epsilon_low, 1 + self.epsilon_high)
                    per_token = -torch.min(ratio * a, clipped * a)
                    if self.beta != 0.0:
                        ref = it.ref.to(logp.device)
                        kl = torch.exp(ref - logp) - (ref - logp) - 1
                        per_token = per_token + self.beta * kl
                        kls.append(kl.mean().detach())
                    terms.append(per_token * weight)
                    counts.append(weight * it.n)
            if not terms:  # every rollout of the micro-batch without tokens to train: a zero that keeps a graph
                loss = sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
            elif self.loss_type == "grpo":
                seqs = [t.mean() for t, c in zip(terms, counts, strict=True) if c > 0]
                loss = torch.stack(seqs).mean() if seqs else sum(t.sum() for t in terms) * 0.0
            else:
                loss = sum(t.sum() for t in terms) / max(1.0, sum(counts))
            if mode == "train":
                loss = loss / self.current_gradient_accumulation_steps
            if kls:
                self._metrics[mode]["kl"].append(torch.stack(kls).mean().item())
            return loss

    return RolloutGRPOTrainer
