"""The navigate agent (LongVideo-R1): a text reasoning model walks the video's caption tree.

Three roles, each any backend: **reasoning** (text only) decides, **caption** describes tree nodes (made
on first use, or read from a built or imported tree), **video_qa** answers a query on a leaf's frames.
The conversation grows turn by turn (append-only and byte-stable, so a server's prefix cache keeps
working): system, the first message (question, duration, high-level captions), then per round the
model's turn and, after a tool call, the observation.

The reference's weak spots, decided here (docs/reference-code.md#n3 to #n5), each a `NavigateConfig` option:

* an invalid turn (no tags, a call that cannot be read, an unknown tool, ids out of range) is recorded
  and, by default, **fed back** to the model as a user message that says what is wrong (it costs a
  round); ``on_invalid="retry"`` re-asks instead, at most `max_retries` times in a row, then feeds back;
* ``require_think``: whether a turn without ``<think>`` gets the reference's "think first" message
  (default: accepted, as the reference CLI does);
* ``videoqa_needs_caption``: "allow" (the reference: the rule is stated in the prompt, never enforced)
  or "refuse" (the model is told to read the leaf's caption first);
* a server that fails (after its backend's retries) ends the question with the error recorded and no
  answer; nothing ever turns into answer "A".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from longlens.agents.navigate.actions import Call, first_tag, parse_call, parse_turn
from longlens.agents.navigate.captions import CaptionSettings, CaptionTree
from longlens.agents.trace import Outcome, Step, Trace, totals
from longlens.agents.zoom.actions import parse_choice
from longlens.backends.base import Backend, BackendError, GenConfig
from longlens.errors import ConfigError
from longlens.prompts.messages import Message
from longlens.prompts.navigate import (
    caption_observation,
    first_message,
    system_message,
    videoqa_messages,
    videoqa_observation,
)
from longlens.video import FrameCache, VideoInfo, decode, index_plan, open_video

INVALID = ("feedback", "retry")


def caption_model_name(backend: Backend | None) -> str | None:
    """The name captions are stored under: the backend's model, else its description."""
    if backend is None:
        return None
    return backend.model or backend.describe()
VIDEOQA_RULES = ("allow", "refuse")


@dataclass(frozen=True)
class NavigateConfig:
    profile: str = "longvideo-r1"
    max_rounds: int = 30
    """Reasoning calls at most (every call counts, invalid ones included)."""
    last_round_message: bool = True
    """Before the last call, tell the model it must answer now (the reference evaluation's message)."""
    on_invalid: str = "feedback"
    max_retries: int = 2
    require_think: bool = False
    videoqa_needs_caption: str = "allow"
    videoqa_frames: int = 16
    videoqa_max_side: int = 1024
    captions: CaptionSettings = field(default_factory=CaptionSettings)
    gen: GenConfig = field(default_factory=lambda: GenConfig(max_new_tokens=4096))
    videoqa_gen: GenConfig = field(default_factory=lambda: GenConfig(max_new_tokens=1024))

    def __post_init__(self):
        if self.on_invalid not in INVALID:
            raise ConfigError(f"on_invalid must be one of {', '.join(INVALID)}")
        if self.videoqa_needs_caption not in VIDEOQA_RULES:
            raise ConfigError(f"videoqa_needs_caption must be one of {', '.join(VIDEOQA_RULES)}")
        if self.max_rounds < 1:
            raise ConfigError("max_rounds must be at least 1")


class NavigateAgent:
    """``NavigateAgent(reasoning, caption=..., videoqa=...).run(video, question, options) -> Trace``."""

    def __init__(self, reasoning: Backend, *, caption: Backend | None = None, videoqa: Backend | None = None,
                 config: NavigateConfig = NavigateConfig(), cache: FrameCache | None = None,
                 caption_model: str | None = None):
        """`caption_model` names the captions to read and store (default: the caption backend's model)."""
        self.caption_model = caption_model or caption_model_name(caption)
        self.reasoning = reasoning
        self.caption = caption
        self.videoqa = videoqa
        self.config = config
        self.cache = cache

    def run(self, video: str | Path | VideoInfo, question: str, options: tuple[str, ...] | list[str] = (),
            task: str = "choice", on_step: Callable[[Step], None] | None = None) -> Trace:
        """Answer `question` about `video` (`task` "grounding": ask for a [start, end] span); `on_step` is called
        with each round as it ends."""
        t0 = time.perf_counter()
        c = self.config
        info = video if isinstance(video, VideoInfo) else open_video(video, cache=self.cache)
        options = tuple(options)
        tree = CaptionTree.open(info, self.caption, c.captions, cache=self.cache, model=self.caption_model)
        profile = tree.profile
        steps: list[Step] = []

        def record(step: Step) -> None:
            steps.append(step)
            if on_step is not None:
                on_step(step)
        role_s = {"caption": 0.0, "videoqa": 0.0}
        calls = {"caption_made": 0, "caption_reused": 0, "videoqa": 0}
        seen_leaves: set[str] = set()
        try:
            t1 = time.perf_counter()
            made = tree.build((1,)) if self.caption is not None else 0  # concurrently, when missing
            role_s["caption"] += time.perf_counter() - t1 if made else 0.0
            calls["caption_made"] += made
            calls["caption_reused"] += tree.tree.width - made
            high = [(n.first_s, n.last_s, tree.shown(tree.get(n)[0])) for n in tree.tree.level(1)]
        except BackendError as exc:
            return self._trace(info, question, options, steps, None, t0, role_s, calls, tree,
                               error=f"caption backend failed on the high-level captions: {exc}")
        messages: list[Message] = [system_message(profile, tree.tree.width),
                                   first_message(profile, question, options, tree.tree.last_frame_s, high, task)]
        new_from = 0  # messages not yet recorded in a step
        retries = 0
        answer: str | None = None
        error = None
        for r in range(1, c.max_rounds + 1):
            if c.last_round_message and r == c.max_rounds:
                messages.append(Message.text("user", profile.last_round))
            try:
                completion = self.reasoning.generate(tuple(messages), c.gen)
            except BackendError as exc:
                error = f"reasoning backend failed at round {r}: {exc}"
                break
            text = completion.text
            turn = parse_turn(text)
            step = Step(index=r, prompt=[m.to_ref() for m in messages[new_from:]], forced_prefix=None,
                        completion=text, action={"kind": turn.kind, "think": turn.think is not None},
                        prompt_tokens=completion.usage.prompt_tokens,
                        completion_tokens=completion.usage.completion_tokens,
                        cached_tokens=completion.usage.cached_tokens, latency_s=round(completion.latency_s, 4),
                        guess=completion.guess, retries=completion.retries, retry_error=completion.retry_error)
            feedback: str | None = None
            if turn.think is None and c.require_think and turn.kind != "invalid":
                feedback = profile.think_first
                step = replace(step, error="no <think> before the action")
            elif turn.kind == "answer":
                answer = turn.answer
                step = replace(step, action={**step.action, "answer": turn.answer,
                                             "choice": parse_choice(turn.answer) if options else None})
                messages.append(Message.text("assistant", text))
                record(step)
                break
            elif turn.kind == "invalid":
                feedback = (f"{profile.invalid_action} Write <think>...</think> and then <tool>...</tool> or "
                            "<answer>...</answer>.")
                step = replace(step, error="no <tool> or <answer> in the turn")
            else:
                call = parse_call(turn.tool)
                problem = call.problem or (tree.tree.check(call.ids) if call.ids is not None else None)
                if problem is None and call.name == "video_qa" and c.videoqa_needs_caption == "refuse" \
                        and ",".join(map(str, call.ids)) not in seen_leaves:
                    problem = (f"read the low-level caption of {tuple(call.ids)} with get_caption first; "
                               "video_qa works on segments whose caption you have")
                step = replace(step, action={**step.action, "call": call.to_dict()})
                if problem is not None:
                    feedback = f"{profile.invalid_action} {problem}"
                    step = replace(step, error=problem)
                else:
                    try:
                        observation, tool = self._run_call(tree, call, role_s, calls)
                    except BackendError as exc:
                        error = f"{call.name} failed at round {r}: {exc}"
                        record(replace(step, error=error, outcome=Outcome.FAILED))
                        break
                    if call.name == "get_caption" and len(call.ids) == 3:
                        seen_leaves.add(",".join(map(str, call.ids)))
                    messages += [Message.text("assistant", text), observation]
                    record(replace(step, tool=tool, outcome=Outcome.TOOL_RAN))
                    new_from = len(messages) - 1
                    retries = 0
                    continue
            # an invalid turn: retry (bounded) or feed back
            if c.on_invalid == "retry" and retries < c.max_retries and feedback != profile.think_first:
                retries += 1
                record(replace(step, note=f"re-asked (retry {retries} of {c.max_retries})",
                                     outcome=Outcome.RE_ASKED))
                new_from = len(messages)
                continue
            retries = 0
            messages += [Message.text("assistant", text), Message.text("user", feedback)]
            record(replace(step, note="fed back: " + feedback, outcome=Outcome.FED_BACK))
            new_from = len(messages) - 1
        return self._trace(info, question, options, steps, answer, t0, role_s, calls, tree, error=error)

    # ------------------------------------------------------------------ tools
    def _run_call(self, tree: CaptionTree, call: Call, role_s: dict, calls: dict):
        profile = tree.profile
        node = tree.tree.node(call.ids)
        if call.name == "get_caption":
            t0 = time.perf_counter()
            cap, hit = tree.get(node)
            dt = 0.0 if hit else time.perf_counter() - t0
            role_s["caption"] += dt
            calls["caption_reused" if hit else "caption_made"] += 1
            shown = tree.shown(cap)
            obs = caption_observation(profile, node.id, node.first_s, node.last_s, shown)
            return obs, {"name": call.name, "ids": list(node.id), "node": node.key, "role": "caption",
                         "cache": "hit" if hit else "miss", "latency_s": round(dt, 4), "result": shown}
        if self.videoqa is None:
            raise BackendError("video_qa was called but no video_qa backend is configured (--videoqa-url)")
        t0 = time.perf_counter()
        plan = index_plan(tree.info, node.clip(self.config.videoqa_frames), max_side=self.config.videoqa_max_side,
                          kind="videoqa")
        frames = decode(tree.info, plan, cache=self.cache)
        messages = videoqa_messages(profile, call.query, frames, fps=tree.info.fps)
        completion = self.videoqa.generate(messages, self.config.videoqa_gen)
        dt = time.perf_counter() - t0  # decoding included; the role's seconds are the model call's own
        role_s["videoqa"] += completion.latency_s
        calls["videoqa"] += 1
        answer = first_tag(completion.text, "answer")
        tool = {"name": call.name, "ids": list(node.id), "node": node.key, "query": call.query, "role": "videoqa",
                "cache": None, "latency_s": round(dt, 4), "reply": completion.text}
        if completion.retries:
            tool.update(retries=completion.retries, retry_error=completion.retry_error)
        if answer is None:
            answer = completion.text.strip()
            tool["note"] = "the video_qa reply had no <answer> tags; the whole reply was passed on"
        tool["result"] = answer
        return videoqa_observation(profile, answer), tool

    # ------------------------------------------------------------------ trace
    def _trace(self, info, question, options, steps, answer, t0, role_s, calls, tree, *, error=None) -> Trace:
        t = totals(steps, time.perf_counter() - t0,
                   calls={"reasoning": len(steps), "caption": calls["caption_made"], "videoqa": calls["videoqa"]},
                   role_s={"reasoning": sum(s.latency_s for s in steps), **role_s},
                   caption_reused=calls["caption_reused"])
        cfg = asdict(self.config)
        cfg["gen"]["stop"] = list(cfg["gen"]["stop"])
        cfg["videoqa_gen"]["stop"] = list(cfg["videoqa_gen"]["stop"])
        roles = {"reasoning": self.reasoning.describe(),
                 "caption": self.caption.describe() if self.caption else None,
                 "videoqa": self.videoqa.describe() if self.videoqa else None}
        return Trace(
            question=question,
            options=list(options),
            video={"path": info.path, "id": info.fingerprint, "duration_s": round(info.duration_s, 3)},
            agent="navigate",
            backend=self.reasoning.describe(),
            config=cfg,
            steps=steps,
            answer=answer or "",
            choice=parse_choice(answer) if (answer and options) else None,
            totals=t,
            error=error,
            meta={"roles": roles, "width": tree.tree.width, "partition": tree.tree.partition,
                  "captions_store": str(tree.store.path),
                  "server_failed": error is not None},  # every `error` here is a failing model server
        )
