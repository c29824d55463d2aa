"""GRPO rollouts of the zoom agent (the reference's: HumanMLLM/LOVE-R1@aa1facb
src/r1-v/src/open_r1/trainer/grpo_trainer.py:947-1295), through the same loop and prompts as inference.

A rollout of one `RLRow` is a list of `StepSample`s (what the model was shown, what it wrote) and one
reward per *part*:

* ``general`` rows run the whole zoom loop (`ZoomAgent.run`): every step of the trajectory belongs to part 0
  and shares its outcome reward, ``answer_weight * answer + format_weight * mean step format``. A
  trajectory that ends without an answer is masked (reward None: left out of its group's statistics and
  of the loss; the paper's "mask the whole CoT", grpo_trainer.py:1286-1303). When step 1 answers, the trajectory
  ends there (docs/reference-code.md#z5: no second step sampled from the same prompt).
* ``local`` rows (truth spans known) are single zoom steps after the forced ``I need to zoom in on the
  video.`` prefix, the decoupled zoom optimisation: part 0 shows the fast view only; part 1, when the row
  carries clips, shows those clips too (the reference's step 2). Each part is rewarded on its own,
  ``zoom_weight * zoom + format_weight * format`` (IoU > 0 with a truth span; degenerate clips score 0).

Which step the model is at, the forced prefixes and the clip policy all come from the agent's config: the
rollouts see exactly what `longlens ask` and `longlens eval` show, so a trained model is served as trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from longlens.agents.trace import Trace
from longlens.agents.zoom import ZoomAgent
from longlens.backends.base import Completion, GenConfig
from longlens.data.rows import RLRow
from longlens.prompts.messages import Message
from longlens.prompts.zoom import format_question, zoom_messages
from longlens.rewards import answer_reward, format_reward, zoom_reward
from longlens.train.grpo_core import RolloutBackend, seed_for
from longlens.video import open_video

WEIGHTS = {"answer": 1.0, "zoom": 1.0, "format": 1.0}
"""A zoom rollout's reward weights (the recipe's ``answer_weight``, ``zoom_weight``, ``format_weight``)."""


@dataclass(frozen=True)
class StepSample:
    """One generation of a rollout, ready to be scored by the policy."""

    messages: tuple[Message, ...]
    completion: str
    """The text the model wrote, after any forced prefix (which is part of the prompt)."""
    ended: bool
    """Generation stopped at the end-of-turn token, which then belongs to the target."""
    part: int
    step: str
    """"zoom" or "answer" (a forced prefix said which) or "free"."""


@dataclass(frozen=True)
class Rollout:
    row_id: str
    kind: str
    steps: tuple[StepSample, ...]
    rewards: tuple[float | None, ...]
    """One per part; None: masked (no answer)."""
    details: dict = field(default_factory=dict)
    """What the rewards were made of (answer, format, zoom per part), for logging."""
    trace: Trace | None = None


def _step_kind(messages: tuple[Message, ...], completion: Completion, profile) -> str:
    if not completion.prefix:
        return "free"
    return "zoom" if completion.prefix == profile.zoom_prefix else "answer"


class Roller:
    """Rolls out `RLRow`s with a policy backend (the agent's); each rollout through its own `RolloutBackend`."""

    def __init__(self, agent: ZoomAgent, video_root: str | Path | None = None, weights: Mapping[str, float] = WEIGHTS):
        self.agent = agent
        self.root = Path(video_root) if video_root else None
        self.weights = {**WEIGHTS, **weights}

    def _path(self, row: RLRow) -> Path:
        p = Path(row.video)
        return p if p.is_absolute() or self.root is None else self.root / p

    def _policy(self, gen: GenConfig) -> tuple[RolloutBackend, ZoomAgent]:
        policy = RolloutBackend(self.agent.backend, gen.seed, gen)
        return policy, self.agent.with_backend(policy)

    def _sample(self, policy: RolloutBackend, part: int) -> list[StepSample]:
        profile = self.agent.profile
        return [StepSample(m, c.text, c.finish_reason == "stop", part, _step_kind(m, c, profile))
                for m, c in policy.calls]

    def run(self, row: RLRow, gen: GenConfig) -> Rollout:
        info = open_video(self._path(row), cache=self.agent.cache)
        if row.kind == "general":
            return self._general(row, info, gen)
        return self._local(row, info, gen)

    def _general(self, row: RLRow, info, gen: GenConfig) -> Rollout:
        w = self.weights
        policy, agent = self._policy(gen)
        trace = agent.run(info, row.question, row.options)
        steps = self._sample(policy, 0)
        acc = answer_reward(trace, row.answer, row.options)
        clips: list[tuple[float, float]] = []
        fmts = []
        for s, st in zip(steps, trace.steps, strict=True):
            fmts.append(format_reward(s.completion, info.duration_s, clips, s.step))
            if st.clip_added:
                clips.append((st.clip_added[0], st.clip_added[1]))
        fmt = sum(fmts) / len(fmts) if fmts else 0.0
        reward = None if acc is None else w["answer"] * acc + w["format"] * fmt
        return Rollout(row.id, row.kind, tuple(steps), (reward,),
                       {"answer": acc, "format": fmt, "steps": len(steps)}, trace)

    def _local(self, row: RLRow, info, gen: GenConfig) -> Rollout:
        w, agent = self.weights, self.agent
        profile = agent.profile
        question = format_question(profile, row.question, row.options)
        fast = agent.fast_view(info)
        parts = [()] + ([row.clips] if row.clips else [])
        steps, rewards, details = [], [], {}
        for k, clips in enumerate(parts):
            views = [agent.clip_view(info, s, e) for s, e in clips]
            messages = zoom_messages(profile, question, info.duration_s, fast, views, template=agent.config.template,
                                     prefix=profile.zoom_prefix)
            policy, _ = self._policy(replace(gen, seed=None if gen.seed is None else seed_for(gen.seed, k, 1)))
            policy.generate(messages)
            step = self._sample(policy, k)[0]
            zoom = zoom_reward(step.completion, row.truth, info.duration_s, clips)
            fmt = format_reward(step.completion, info.duration_s, clips, "zoom")
            steps.append(step)
            rewards.append(w["zoom"] * zoom + w["format"] * fmt)
            details[f"zoom{k + 1}"], details[f"format{k + 1}"] = zoom, fmt
        return Rollout(row.id, row.kind, tuple(steps), tuple(rewards), details)
