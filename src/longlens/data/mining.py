"""Hard-example mining for GRPO (the reference's HumanMLLM/LOVE-R1@aa1facb process_data/get_hard_example_cgbench.py and
process_data/get_hard_example_moviechat.py): keep the questions the policy sometimes gets right.

Each question is rolled out `rollouts` times with sampling (temperature, top-k 50, 1536 new tokens; each
rollout its own seed, so backends that sample really vary: hf seeds its generator, openai sends the seed;
the offline backend does not sample, its rollouts always agree):

* a question with truth spans (CG-Bench, NExT-GQA, the needle suite) is a **local** row: one zoom step of
  our agent's prompt (the fast view, the question, the instruction) after the forced prefix
  ``I need to zoom in on the video.\\n\\n``; a rollout is correct iff its clip is usable and has IoU > 0
  with a truth span (`rewards.zoom_reward`). The reference mined with a 620-frame view without the
  timestamp overlay and system prompt (an inconsistency: docs/reference-code.md#z10); we show what inference and
  RL show.
* any other question is a **general** row: our whole zoom loop (`ZoomAgent`); a rollout is correct iff the
  answer letter is right (`rewards.answer_reward`; no answer counts as wrong).

A question is kept iff ``0 < #correct < #rollouts``, as an `RLRow` with its `correctness`. `mine` is
resumable like the eval runner: kept rows go to the output, every decided question (kept or not) to
``<out>.decided.jsonl``, both appended and fsynced; a rerun skips decided questions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from longlens.agents.zoom import SharedFrames, ZoomAgent, ZoomConfig
from longlens.backends.base import Backend, GenConfig
from longlens.bench.sample import Sample
from longlens.data.decided import decide_all, decided_path, open_output, read_decided
from longlens.data.rows import RLRow, read_jsonl, rl_row
from longlens.data.teacher import relative_video
from longlens.errors import VideoError
from longlens.jsonl import unique_ids
from longlens.prompts import format_question, load_profile, zoom_messages
from longlens.prompts.zoom import LETTERS
from longlens.rewards import answer_reward, zoom_reward
from longlens.video import FrameCache, decode, fast_plan, open_video


@dataclass(frozen=True)
class MineConfig:
    rollouts: int = 4
    temperature: float = 1.0
    top_k: int | None = 50
    max_new_tokens: int = 1536
    seed: int = 0
    zoom: ZoomConfig = field(default_factory=ZoomConfig)
    """The loop of general rollouts (its `gen` is replaced per rollout)."""

    def gen(self, rollout: int) -> GenConfig:
        return GenConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_k=self.top_k,
                         seed=self.seed + rollout)


@dataclass(frozen=True)
class Decision:
    id: str
    kind: str
    correctness: tuple[float, ...]
    row: RLRow | None
    reason: str = ""
    """Why a question was not rolled out ("" when it was)."""

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "kept": self.row is not None,
                "correctness": list(self.correctness), "reason": self.reason}


class Miner:
    """Rolls questions out with one backend; `decide(sample)` measures one question."""

    def __init__(self, backend: Backend, config: MineConfig = MineConfig(), *, cache: FrameCache | None = None,
                 videos_root: str | Path | None = None, source: str = ""):
        if config.rollouts < 2:
            raise ValueError("mining needs at least 2 rollouts (a question is kept when they disagree)")
        self.backend = backend
        self.config = config
        self.cache = cache
        self.videos_root = videos_root
        self.source = source
        shared = SharedFrames()
        self.agents = [ZoomAgent(backend, replace(config.zoom, gen=config.gen(r)), cache=cache, shared=shared)
                       for r in range(config.rollouts)]
        self.profile = load_profile(config.zoom.profile)

    def local(self, sample: Sample) -> list[float]:
        """Single zoom steps after the forced zoom prefix, scored by `zoom_reward`."""
        z, agent = self.config.zoom, self.agents[0]
        info = open_video(sample.video, cache=self.cache)
        plan = fast_plan(info, max_frames=z.fast_frames, budget=z.fast_budget, short_video_s=z.short_video_s,
                         mode=z.fast_mode, factor=agent.factor)
        fast = decode(info, plan, cache=self.cache)
        question = format_question(self.profile, sample.question, sample.options[: len(LETTERS)])
        messages = zoom_messages(self.profile, question, info.duration_s, fast, template=z.template,
                                 prefix=self.profile.zoom_prefix)
        return [zoom_reward(self.backend.generate(messages, self.config.gen(r)).text, sample.spans, info.duration_s)
                for r in range(self.config.rollouts)]

    def general(self, sample: Sample) -> list[float]:
        """Whole zoom-loop rollouts, scored on the answer letter (no answer: wrong)."""
        options = sample.options[: len(LETTERS)]
        return [answer_reward(agent.run(sample.video, sample.question, options), sample.answer, options) or 0.0
                for agent in self.agents]

    def decide(self, sample: Sample) -> Decision:
        kind = "local" if sample.spans else "general"
        if kind == "general" and (not sample.answer or sample.answer not in LETTERS[: len(sample.options)]):
            return Decision(sample.id, kind, (), None, f"no answer letter (truth {sample.answer!r}) and no spans")
        try:
            correctness = tuple(self.local(sample) if kind == "local" else self.general(sample))
        except VideoError as exc:
            return Decision(sample.id, kind, (), None, f"unreadable video: {exc}")
        hits = sum(correctness)
        if not 0 < hits < len(correctness):
            return Decision(sample.id, kind, correctness, None)
        info = open_video(sample.video, cache=self.cache)
        row = rl_row(sample, relative_video(sample.video, self.videos_root), round(info.duration_s, 3), correctness,
                     self.source)
        return Decision(sample.id, kind, correctness, row)


def mine(samples: Sequence[Sample], miner: Miner, out: str | Path, *, concurrency: int = 1,
         progress: Callable[[Decision, int, int], None] | None = None) -> dict:
    """Decide every question not yet decided in `out`; returns counts over the whole decided log."""
    unique_ids(samples)
    done = open_output(out, lambda p: read_jsonl(p, RLRow),
                       lambda row: Decision(row.id, row.kind, row.correctness, row))
    todo = [s for s in samples if s.id not in done]
    decide_all(todo, miner.decide, out, concurrency=concurrency, progress=progress, who="the policy",
               what="questions")
    log = decided_path(out)
    decided = read_decided(log)
    counts = {"questions": len(decided), "kept": sum(d["kept"] for d in decided),
              "all_right": sum(1 for d in decided if d["correctness"] and min(d["correctness"]) == 1),
              "all_wrong": sum(1 for d in decided if d["correctness"] and max(d["correctness"]) == 0),
              "skipped": sum(1 for d in decided if d["reason"])}
    return counts
