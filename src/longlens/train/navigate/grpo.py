"""LongVideo-R1 GRPO of the navigate agent's text reasoning model (the reference run:
qiujihao19/LongVideo-R1@77c87ec verl-tool/examples/train/get_caption/train_7b_videoqa.sh; its reward fixed as in
docs/reference-code.md#n1).

`NavigateGRPOTrainer` is the shared `grpo_core.RolloutGRPOTrainer` with the navigate agent's rollouts: each
question (`RLRow`) is answered by `NavigateAgent`, the policy itself the reasoning backend (`HFTextBackend`
around the model being trained), captions and video_qa from other backends (the embedded offline one by
default; captions kept in the normal caption store, so a node is captioned once for the whole run).

* Reward: `rewards.trajectory_reward` on the trace: answer (1/0) + location F1 of the visited nodes against
  the row's truth spans (unions, so repeats cannot pay: docs/reference-code.md#n1) - 0.2 x repeat rate. A
  trace without an answer scores by the reward's own rule: answer 0, location and repeat still count (as the
  reference). That includes a trajectory cut by the policy's context cap (the reference's 20 480 tokens): the
  model's own doing. A caption or video_qa server that fails is not the model's doing: that rollout is masked
  (reward None: out of its group's statistics and of the loss; ``rollout/failed``).
* Loss tokens: one sequence per trajectory, the conversation replayed from the trace exactly as the
  agent sent it and rendered as SFT renders it (`train.navigate.sft.from_trace` + `encode(..., "all_turns")`):
  every assistant turn (``<|im_end|>`` included) gets the loss, observations and the agent's messages
  do not (the reference's ``mask_observations=True``). Turns the agent fed back as invalid are the
  policy's tokens too and get the loss; turns re-asked (``on_invalid: retry``) are not in the conversation
  and get none. A rollout with no turn of the model's to train is masked. Replies are re-tokenised from
  their text, as the zoom trainer's.
* Rounds of one rollout each sample with their own seed drawn from the rollout's (`seed_for`).

Reference settings that ours do not reproduce: verl's dual-clip ``clip_ratio_c`` 3.0 (not in the loss;
docs/reference-code.md#n8), and a turn that holds neither a tool call nor an answer ending the trajectory
(here it is an invalid turn, fed back, and the trajectory goes on: docs/reference-code.md#n7).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from longlens._imports import require
from longlens.agents.navigate import INVALID, VIDEOQA_RULES, NavigateConfig
from longlens.agents.trace import Trace
from longlens.backends.base import Backend, GenConfig
from longlens.data.rows import RLRow
from longlens.errors import ConfigError, LongLensError
from longlens.rewards import WEIGHTS, TrajectoryReward, trajectory_reward
from longlens.train.config import with_trl
from longlens.train.grpo_core import (
    IM_END,
    Item,
    RolloutBackend,
    Scored,
    grpo_args,
    read_rows,
    rollout_trainer,
    train_and_save,
)
from longlens.train.grpo_core import check as check  # the recipe's pre-flight check (`longlens train`)

TRL_DEFAULTS = {
    "temperature": 1.0, "top_k": 0, "top_p": 1.0, "max_completion_length": 8192,
    "num_generations": 16, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 32,
    "learning_rate": 1e-6, "lr_scheduler_type": "constant_with_warmup", "warmup_steps": 10.0, "weight_decay": 0.01,
    "max_grad_norm": 1.0, "beta": 1e-4, "epsilon": 0.2, "epsilon_high": None, "loss_type": "bnpo",
    "num_iterations": 1, "num_train_epochs": 2.0, "max_steps": -1, "seed": 42, "activation_checkpointing": True,
    "bf16": None, "use_vllm": False, "vllm_gpu_memory_utilization": 0.3, "vllm_tensor_parallel_size": 1,
    "logging_steps": 1, "save_steps": 100, "save_strategy": "steps", "report_to": "none",
}
"""TRL `GRPOConfig` values of the reference RL run (train_7b_videoqa.sh:19-39, 96-97, 132-134; verl-tool's
verl_tool/trainer/config/actor/actor.yaml:30, 63, 82, 111 and dp_actor.yaml:20, 45): sampling at temperature 1 with
top_k off (0: the reference's -1) and 8192 tokens a turn (max_action_length); 1 x 32 per device is 2 questions
x 16 rollouts per step on one GPU (6 GPUs make the reference's 12 x 16); beta is kl_loss_coef with low_var_kl
(= the k3 estimator); loss_type bnpo averages all tokens of the micro-batch (the reference's token-mean)."""


@dataclass
class NavigateGRPOConfig:
    """`longlens train grpo-navigate` settings: ours (defaults: the reference RL run, train_7b_videoqa.sh), and
    TRL's `GRPOConfig` in `trl`."""

    TRL: ClassVar[str] = "GRPOConfig"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model_path", "rows")
    model_path: str = ""
    """The SFT checkpoint folder (a text causal LM with its tokenizer and chat template)."""
    rows: str = ""
    """`RLRow` JSON lines (question, options, answer letter, video, truth spans: the clue intervals), or
    LongVideo-R1's released RL parquet."""
    videos: str = ""
    """The folder the rows' relative video paths are under."""
    video_roots: tuple[str, ...] = ()
    """``NAME=DIR`` per source data set (``--video-root NAME=DIR``): a row path with a folder NAME in it, or a
    LongVideo-R1 row whose ``data_source`` is NAME, is looked up under DIR."""
    skip_missing: bool = False
    """Train without the rows whose videos are missing (false: refuse to start, naming the first)."""
    output_dir: str = "runs/longvideo-r1-grpo"
    chat_template: str = ""
    """A .jinja file that replaces the tokenizer's chat template ("": the tokenizer's)."""
    attn_implementation: str = ""
    # caption and video_qa roles
    caption_url: str = ""
    """An OpenAI-compatible caption server; "": the embedded offline backend."""
    caption_model: str = ""
    """The model name on that server (also names the stored captions)."""
    videoqa_url: str = ""
    """"": the caption role's backend answers video_qa too."""
    videoqa_model: str = ""
    cache_dir: str = ""
    """Frame and caption cache folder; "": the default cache."""
    online_captions: bool = False
    """The reference CLI's caption settings (64/32/16 frames) instead of its offline ones (128/64/32)."""
    width: int = 0
    """Tree width; 0: the cube-root rule."""
    min_width: int = 0
    """Lowest width of the cube-root rule; 0: the profile's (4)."""
    # the navigate loop (the reference RL's agent settings)
    max_rounds: int = 16
    """Reasoning calls at most: the reference's max_turns=15 loop runs up to 16 generations."""
    last_round_message: bool = False
    """The reference RL forces no answer (inference sends the last-round message: true trains what is served)."""
    on_invalid: str = "feedback"
    require_think: bool = False
    videoqa_rule: str = "allow"
    stop: tuple[str, ...] = ("</tool>", "</answer>")
    """A turn ends after these (the reference's action_stop_tokens), or at <|im_end|>."""
    max_context_tokens: int = 20480
    """Prompt + reply tokens at most (the reference's trajectory cap); 0: no cap."""
    # reward
    answer_weight: float = WEIGHTS["answer"]
    location_weight: float = WEIGHTS["location"]
    repeat_weight: float = WEIGHTS["repeat"]
    gap_s: float = 5.0
    """Truth spans closer than this are joined (the reference's clue-interval merge)."""
    charge_ancestors: bool = False
    """Charge a medium node read on the way to its leaf as a visit of its own."""
    trl: dict = field(default_factory=dict)
    """TRL `GRPOConfig` fields over `TRL_DEFAULTS`."""

    def __post_init__(self):
        with_trl(self, TRL_DEFAULTS)
        if self.on_invalid not in INVALID:
            raise ConfigError(f"on_invalid must be one of {', '.join(INVALID)}, got {self.on_invalid!r}")
        if self.videoqa_rule not in VIDEOQA_RULES:
            raise ConfigError(f"videoqa_rule must be one of {', '.join(VIDEOQA_RULES)}, got {self.videoqa_rule!r}")
        if self.max_rounds < 1:
            raise ConfigError(f"max_rounds must be at least 1, got {self.max_rounds}")
        self.stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def navigate_config(self, args) -> NavigateConfig:
        """The navigate loop of the rollouts, sampling as TRL's config `args` says."""
        from longlens.agents.navigate.captions import CaptionSettings

        captions = CaptionSettings(online=self.online_captions, width=self.width or None,
                                   min_width=self.min_width or None)
        gen = GenConfig(max_new_tokens=args.max_completion_length, temperature=args.temperature,
                        top_k=args.top_k or None, top_p=args.top_p, seed=args.seed, stop=self.stop)
        return NavigateConfig(max_rounds=self.max_rounds, last_round_message=self.last_round_message,
                              on_invalid=self.on_invalid, require_think=self.require_think,
                              videoqa_needs_caption=self.videoqa_rule, captions=captions, gen=gen)

    def weights(self) -> dict:
        return {"answer": self.answer_weight, "location": self.location_weight, "repeat": self.repeat_weight}


# ---------------------------------------------------------------- rollouts
@dataclass(frozen=True)
class NavigateRollout:
    row_id: str
    trace: Trace
    parts: TrajectoryReward | None
    """What the reward is made of; None: masked."""
    reward: float | None
    masked: str | None = None
    """Why the rollout is masked (a tool server failed, no turn of the model's), or None."""
    metrics: dict = field(default_factory=dict)


class NavigateRoller:
    """Rolls out `RLRow`s through `NavigateAgent` with any reasoning backend, one at a time."""

    def __init__(self, config: NavigateConfig, *, caption: Backend | None, videoqa: Backend | None = None,
                 video_root: str | Path | None = None, cache=None, caption_model: str | None = None,
                 weights: dict = WEIGHTS, gap_s: float = 5.0, charge_ancestors: bool = False):
        self.config = config
        self.caption = caption
        self.videoqa = videoqa if videoqa is not None else caption
        self.root = Path(video_root) if video_root else None
        self.cache = cache
        self.caption_model = caption_model
        self.weights = dict(weights)
        self.gap_s = gap_s
        self.charge_ancestors = charge_ancestors

    def path(self, row: RLRow) -> Path:
        p = Path(row.video)
        return p if p.is_absolute() or self.root is None else self.root / p

    def run(self, reasoning: Backend, row: RLRow, seed: int) -> NavigateRollout:
        from longlens.agents.navigate import NavigateAgent
        from longlens.agents.navigate.tree import build_tree
        from longlens.video import open_video

        policy = RolloutBackend(reasoning, seed)
        agent = NavigateAgent(policy, caption=self.caption, videoqa=self.videoqa, config=self.config,
                              cache=self.cache, caption_model=self.caption_model)
        info = open_video(self.path(row), cache=self.cache)
        trace = agent.run(info, row.question, row.options)
        if trace.error is not None and not policy.failed:
            return NavigateRollout(row.id, trace, None, None, masked=trace.error, metrics={"failed": 1.0})
        if not trace.steps:
            return NavigateRollout(row.id, trace, None, None, masked="no turn of the model's",
                                   metrics={"failed": 0.0})
        tree = build_tree(info, trace.meta["width"], self.config.captions.partition)
        r = trajectory_reward(trace, row.answer, row.truth, tree, options=row.options, weights=self.weights,
                              gap_s=self.gap_s, charge_ancestors=self.charge_ancestors)
        metrics = {"answered": float(r.answered), "correct": r.answer, "location": r.location, "repeat": r.repeat,
                   "rounds": float(len(trace.steps)), "invalid": float(trace.totals.errors), "failed": 0.0,
                   "context_full": float(policy.failed)}
        return NavigateRollout(row.id, trace, r, r.total, metrics=metrics)


def trajectory_item(tok, rollout: NavigateRollout) -> Item | None:
    """The rollout's trajectory as one training sequence, the loss on every assistant turn; None when the
    trajectory has no turn of the model's."""
    torch = require("torch", "train", "GRPO training")
    from longlens.train.navigate.sft import encode, from_trace

    traj = from_trace(rollout.trace, rollout.row_id, train_invalid_turns=True)
    samples = encode(tok, traj, "all_turns", end=IM_END)
    if not samples:
        return None
    ids = torch.tensor([samples[0]["input_ids"]], dtype=torch.long)
    mask = torch.tensor([x != -100 for x in samples[0]["labels"]], dtype=torch.bool)
    return Item({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, mask)


# ---------------------------------------------------------------- the trainer
def _trainer_class():
    from longlens.backends.hf.text import HFTextBackend

    base = rollout_trainer()

    class NavigateGRPOTrainer(base):
        """GRPO of the navigate agent: rollouts through `NavigateRoller`, the policy as its reasoning backend."""

        def __init__(self, *, model, tokenizer, rows: list[RLRow], config: NavigateGRPOConfig, roller: NavigateRoller,
                     args):
            self.recipe = config
            self.roller = roller
            super().__init__(model=model, processing_class=tokenizer, rows=rows, args=args, seed=args.seed)

        def rollout(self, net, rows: list[RLRow], seeds: list[int]) -> list[Scored]:
            cap = self.recipe.max_context_tokens or None
            policy = self.rollout_backend(HFTextBackend.from_model(net, self.processing_class, name="policy",
                                                                   max_context=cap))
            out = []
            tok = self.processing_class
            for row, seed in zip(rows, seeds, strict=True):
                r = self.roller.run(policy, row, seed)
                item = trajectory_item(tok, r)
                if item is None:  # no tokens of the model's to train (every turn re-asked, or none at all)
                    out.append(Scored([], (None,), {**r.metrics, "no_turns": 1.0}))
                else:
                    out.append(Scored([item], (r.reward,), {**r.metrics, "no_turns": 0.0}))
            return out

    return NavigateGRPOTrainer


def role_backends(config: NavigateGRPOConfig) -> tuple[Backend, Backend]:
    """(caption, video_qa) backends: servers when URLs are given, else the embedded offline backend."""
    from longlens.backends.registry import make_backend

    if config.caption_url:
        caption = make_backend("openai", base_url=config.caption_url, model=config.caption_model or None,
                               flags=("caption_url", "caption_model"))
    else:
        caption = make_backend("offline")
    caption.check()
    if not config.videoqa_url:
        return caption, caption
    videoqa = make_backend("openai", base_url=config.videoqa_url, model=config.videoqa_model or None,
                           flags=("videoqa_url", "videoqa_model"))
    videoqa.check()
    return caption, videoqa


def make_roller(config: NavigateGRPOConfig, caption: Backend, videoqa: Backend | None = None, *,
                args=None) -> NavigateRoller:
    """The rollouts of `config`, sampling as TRL's config `args` (default: `grpo_args(config)`) says."""
    from longlens.video import FrameCache, default_cache_dir

    cache = FrameCache(Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir())
    args = grpo_args(config) if args is None else args
    return NavigateRoller(config.navigate_config(args), caption=caption, videoqa=videoqa,
                          video_root=config.videos or None, cache=cache, caption_model=config.caption_model or None,
                          weights=config.weights(), gap_s=config.gap_s, charge_ancestors=config.charge_ancestors)


def check_template(tok, where: str) -> None:
    """Refuse, before any rollout, a tokenizer whose turns do not end with ``<|im_end|>`` or whose chat template
    rewrites earlier turns (the stock Qwen3 one drops old ``<think>``): a trajectory is one sequence."""
    from longlens.train.navigate.sft import Trajectory, encode

    if tok.convert_tokens_to_ids(IM_END) in (None, tok.unk_token_id):
        raise LongLensError(f"{where}: {IM_END} is not a token of its tokenizer; the navigate agent's turns end "
                            "with it")
    turns = (("system", "S"), ("user", "Q"), ("assistant", "<think>a</think><tool>get_caption((1,2))</tool>"),
             ("user", "O"), ("assistant", "<think>b</think><answer>A</answer>"))
    encode(tok, Trajectory(where, turns, tuple(r == "assistant" for r, _ in turns)), "all_turns", end=IM_END)


def load_policy(config: NavigateGRPOConfig):
    """(causal LM, tokenizer) of `config.model_path`, its chat template checked (`check_template`)."""
    from longlens.train.sft_core import load_text_model

    model, tok = load_text_model(config)
    check_template(tok, f"model_path {config.model_path}")
    return model, tok


def run_navigate_grpo(config: NavigateGRPOConfig, *, model=None, tokenizer=None, caption: Backend | None = None,
                      videoqa: Backend | None = None) -> dict:
    """Train; save the model and tokenizer to ``config.output_dir``; return a summary. `caption` / `videoqa`
    replace the backends the config names (tests, or servers set up by the caller)."""

    t0 = time.perf_counter()
    rows = read_rows(config)
    if caption is None:
        caption, videoqa = role_backends(config)
    if model is None:
        model, tokenizer = load_policy(config)
    args = grpo_args(config)
    roller = make_roller(config, caption, videoqa, args=args)
    trainer = _trainer_class()(model=model, tokenizer=tokenizer, rows=rows, config=config, roller=roller,
                               args=args)
    return train_and_save(trainer, tokenizer, config, rows, t0)
