"""The zoom agent (LOVE-R1) and its baselines, on one loop.

Each step rebuilds the prompt from scratch: the fast view, every accepted clip (sorted by start) and the
question (earlier reasoning is not carried, as in the reference). The model answers (``\\boxed{B}``) or
names a clip (``\\boxed{[s, e]}``); the interval policy turns the clip into a slow view or ends zooming.
The last step is forced with the profile's answer prefix. A malformed reply, a reversed interval or one
outside the video is a model mistake: it is recorded on the step and the loop goes on under the policy.

Baselines (paper Table 2c and Figure 2) reuse the same machinery:

* ``no-zoom``: the fast view only, one forced step;
* ``unified-zoom``: the fast view plus 32 frames spread over the whole video as the slow clip;
* ``random-zoom``: the fast view plus one random 30 s clip (seeded);
* ``uniform``: N frames over the whole video at one pixel budget, one forced step, no fast view.

One agent may answer several questions at once (threads); the fast view and the uniform frames of a video
are decoded once for the questions in flight on it (`SharedFrames`), and `prefetch` decodes them ahead.
"""

from __future__ import annotations

import copy
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from longlens.agents.trace import Outcome, Step, Stop, Trace, totals
from longlens.agents.zoom.actions import INTERVAL_RULES, Answer, Malformed, Zoom, parse_action
from longlens.agents.zoom.policy import IntervalPolicy
from longlens.agents.zoom.shared import SharedFrames
from longlens.backends.base import Backend, GenConfig
from longlens.errors import ConfigError
from longlens.prompts import ClipView, Text, Video, format_question, load_profile, zoom_messages
from longlens.prompts.zoom import LETTERS
from longlens.video import FrameCache, FrameSet, VideoInfo, decode, fast_plan, open_video, slow_plan, uniform_plan
from longlens.video.plan import PATCH

AGENTS = ("zoom", "no-zoom", "unified-zoom", "random-zoom", "uniform")


@dataclass(frozen=True)
class ZoomConfig:
    """Everything that decides what the model sees and how the loop runs. Defaults: LOVE-R1 inference."""

    agent: str = "zoom"
    max_steps: int = 3
    """Generations at most; the last one is forced to answer."""
    profile: str = "love-r1"
    template: str = "c"
    fast_frames: int = 768
    fast_budget: int = 32 * 28 * 28
    fast_mode: str = "accurate"
    slow_frames: int = 32
    slow_budget: int = 256 * 28 * 28
    short_video_s: float = 60.0
    """Pixel budgets double for videos shorter than this (reference inference)."""
    uniform_frames: int = 64
    uniform_budget: int = 256 * 28 * 28
    random_clip_s: float = 30.0
    frame_factor: int | None = None
    """Side of one visual token in pixels (frame sizes are multiples of it); None: the backend's (28 unless
    it says otherwise, e.g. 32 for a Qwen3-VL model in the hf backend)."""
    seed: int = 0
    intervals: str = "reference"
    """How a zoom request is read at the free steps: "reference" (whole seconds, as the checkpoints' inference
    code reads them; anything else ends zooming) or "lenient" (decimals and clock times too). See `actions`."""
    question_style: str = "default"
    """How a multiple-choice question is written: a name in the profile's `question_styles` (the reference
    writes each benchmark's questions its own way; `paper_config` picks the benchmark's)."""
    preset: str | None = None
    """The paper preset these settings came from ("love-r1/lvbench"), if any."""
    deviations: tuple[str, ...] = ()
    """Settings changed from that preset (recorded in the run config)."""
    policy: IntervalPolicy = field(default_factory=IntervalPolicy)
    gen: GenConfig = field(default_factory=GenConfig)

    def __post_init__(self):
        if self.agent not in AGENTS:
            raise ConfigError(f"unknown agent {self.agent!r}; use one of {', '.join(AGENTS)}")
        if self.max_steps < 1:
            raise ConfigError("max_steps must be at least 1")
        if self.uniform_frames < 1 or self.uniform_budget < 1:
            raise ConfigError("uniform_frames and uniform_budget must be at least 1")
        if self.intervals not in INTERVAL_RULES:
            raise ConfigError(f"unknown interval rule {self.intervals!r}; use one of {', '.join(INTERVAL_RULES)}")


def paper_config(bench: str | None, profile: str = "love-r1", **settings) -> ZoomConfig:
    """The settings the reference used on `bench` (the profile's preset: question style, frame counts, budgets,
    widening), then `settings` on top; the result names its preset and lists the settings that differ from it.
    A benchmark without a preset gets the profile's defaults (the reference's Video-MME settings)."""
    presets = load_profile(profile).presets
    preset = dict(presets.get(bench, {})) if bench else {}
    paper = ZoomConfig(profile=profile, **_config_fields(preset))
    config = replace(paper, **settings)
    deviations = tuple(k for k in ("agent", "max_steps", "template", "fast_frames", "fast_budget", "fast_mode",
                                   "slow_frames", "slow_budget", "intervals", "question_style", "policy")
                       if getattr(config, k) != getattr(paper, k))
    name = f"{profile}/{bench}" if bench in presets else None
    return replace(config, preset=name, deviations=deviations)


def _config_fields(preset: dict) -> dict:
    """A profile preset (its JSON names) as `ZoomConfig` fields."""
    kw = {k: v for k, v in preset.items() if k in ("question_style", "fast_frames", "slow_frames")}
    if "fast_res" in preset:
        kw["fast_budget"] = preset["fast_res"] * PATCH * PATCH
    if "slow_res" in preset:
        kw["slow_budget"] = preset["slow_res"] * PATCH * PATCH
    if preset.get("widen") is False:
        kw["policy"] = IntervalPolicy(widen_to_s=None)
    return kw


class ZoomAgent:
    """Answers questions, one per call, from any number of threads:
    ``ZoomAgent(backend).run(video, question, options) -> Trace``."""

    def __init__(self, backend: Backend, config: ZoomConfig = ZoomConfig(), cache: FrameCache | None = None,
                 shared: SharedFrames | None = None):
        self.backend = backend
        self.config = config
        self.cache = cache
        self.shared = shared or SharedFrames()
        self.profile = load_profile(config.profile)
        self.factor = _frame_factor(config, backend)

    def with_backend(self, backend: Backend) -> ZoomAgent:
        """This agent (config, cache, shared frames, profile) answering through `backend`."""
        agent = copy.copy(self)
        agent.backend = backend
        agent.factor = _frame_factor(self.config, backend)
        return agent

    # -------------------------------------------------------------- frames
    def _fast_plan(self, info: VideoInfo):
        c = self.config
        return fast_plan(info, max_frames=c.fast_frames, budget=c.fast_budget, short_video_s=c.short_video_s,
                         mode=c.fast_mode, factor=self.factor)

    def _fast(self, info: VideoInfo) -> FrameSet:
        return decode(info, self._fast_plan(info), cache=self.cache)

    def fast_view(self, info: VideoInfo) -> FrameSet:
        """The fast view of `info` as this agent shows it (shared with questions in flight on the video)."""
        held: set = set()
        try:
            return self._shared(info, self._fast_plan(info), held, charge=False)[0]
        finally:
            self.shared.release(held)

    def clip_view(self, info: VideoInfo, start_s: float, end_s: float) -> ClipView:
        """The zoom-in clip [start_s, end_s] as this agent shows it."""
        return self._clip(info, start_s, end_s)

    def _shared(self, info: VideoInfo, plan, held: set, charge: bool = True) -> tuple[FrameSet, bool]:
        return self.shared.get((info.fingerprint, plan), lambda: decode(info, plan, cache=self.cache), held,
                               charge=charge)

    def prefetch(self, video: str | Path | VideoInfo) -> None:
        """Decode the frames every question on `video` starts from (the fast view, or the uniform frames),
        so that the next questions find them in memory (a runner calls this for the next video), and let the
        backend prepare them (a server backend encodes them for the wire) while other questions wait on the model."""
        info = video if isinstance(video, VideoInfo) else open_video(video, cache=self.cache)
        c = self.config
        plan = (uniform_plan(info, c.uniform_frames, budget=c.uniform_budget, factor=self.factor)
                if c.agent == "uniform" else self._fast_plan(info))
        held: set = set()
        try:
            frames, _ = self._shared(info, plan, held, charge=False)
            self.backend.prepare((Video(frames),))
        finally:
            self.shared.release(held)

    def _clip(self, info: VideoInfo, start: float, end: float) -> ClipView:
        c = self.config
        plan = slow_plan(info, start, end, max_frames=c.slow_frames, budget=c.slow_budget,
                         short_video_s=c.short_video_s, factor=self.factor)
        return ClipView(start, end, decode(info, plan, cache=self.cache))

    # -------------------------------------------------------------- the loop
    def run(self, video: str | Path | VideoInfo, question: str, options: tuple[str, ...] | list[str] = (),
            task: str = "choice", on_step: Callable[[Step], None] | None = None) -> Trace:
        """Answer `question` about `video`; `task` "grounding" asks for a [start, end] span instead of a letter
        (the span is then the last interval the model named: see `bench.grounding`). `on_step` is called with
        each step as it ends (a server streams them)."""
        held: set = set()
        try:
            return self._run(video, question, options, task, held, on_step)
        finally:
            self.shared.release(held)

    def _run(self, video, question, options, task, held: set, on_step=None) -> Trace:
        t0 = time.perf_counter()
        c = self.config
        info = video if isinstance(video, VideoInfo) else open_video(video, cache=self.cache)
        options = tuple(options)
        letters = LETTERS[: len(options)] if options else LETTERS
        question_text = format_question(self.profile, question, options, task, c.question_style)
        duration = info.duration_s
        steps: list[Step] = []
        clips: list[ClipView] = []
        fresh: set[int] = set()  # ids of frame sets not yet charged to a step
        answer: Answer | None = None

        def record(step: Step) -> None:
            steps.append(step)
            if on_step is not None:
                on_step(step)

        def frames_for(fs: FrameSet) -> int:
            if id(fs) in fresh:
                fresh.discard(id(fs))
                return fs.decoded_frames
            return 0

        if c.agent == "uniform":
            plan = uniform_plan(info, c.uniform_frames, budget=c.uniform_budget, factor=self.factor)
            fs, made = self._shared(info, plan, held)
            if made:  # frames another question decoded are charged to that question
                fresh.add(id(fs))
            messages = zoom_messages(self.profile, question_text, duration, fs, template="c",
                                     prefix=self.profile.answer_prefix)
            step, action = self._step(1, messages, letters, frames_for(fs), fs.visual_tokens)
            record(step)
            answer = action if isinstance(action, Answer) else None
            return self._trace(info, question, options, steps, answer, t0)

        fast, made = self._shared(info, self._fast_plan(info), held)
        if made:
            fresh.add(id(fast))
        free_steps = c.max_steps - 1 if c.agent == "zoom" else 0
        if c.agent == "random-zoom":
            rng = random.Random(_seed(c.seed, info.fingerprint, question))
            length = min(c.random_clip_s, duration)
            start = rng.uniform(0, max(duration - length, 0))
            clips.append(self._clip(info, start, start + length))
            fresh.add(id(clips[-1].frames))
        elif c.agent == "unified-zoom":
            clips.append(self._clip(info, 0.0, float(int(duration)) or duration))
            fresh.add(id(clips[-1].frames))

        for k in range(1, free_steps + 1):
            messages = zoom_messages(self.profile, question_text, duration, fast, clips, template=c.template)
            decoded = frames_for(fast) + sum(frames_for(cl.frames) for cl in clips)
            tokens = fast.visual_tokens + sum(cl.frames.visual_tokens for cl in clips)
            step, action = self._step(k, messages, letters, decoded, tokens, c.intervals)
            if isinstance(action, Answer):
                record(step)
                return self._trace(info, question, options, steps, action, t0)
            if isinstance(action, Malformed):
                record(replace(step, note="no usable action: the next step is forced to answer",
                                     outcome=Outcome.ZOOM_STOPPED, stop=Stop.NO_ACTION))
                break
            accepted = [(cl.start_s, cl.end_s) for cl in clips]
            decision = c.policy.apply(action.start_s, action.end_s, duration, accepted)
            error = "; ".join(e for e in (step.error, decision.error) if e) or None
            if decision.clip is None:
                record(replace(step, note=decision.note, error=error, outcome=Outcome.ZOOM_STOPPED,
                                     stop=decision.stop))
                break
            clip = decision.clip
            view = self._clip(info, *clip)
            fresh.add(id(view.frames))
            clips.append(view)
            clips.sort(key=lambda v: (v.start_s, v.end_s))
            record(replace(step, note=decision.note, error=error, clip_added=[clip[0], clip[1]],
                                 outcome=Outcome.CLIP_ADDED))

        # the forced answer step
        note = None
        if not clips and c.policy.whole_video_fallback and c.agent == "zoom":
            clips.append(self._clip(info, 0.0, float(int(duration)) or duration))
            fresh.add(id(clips[-1].frames))
            note = "no clip accepted: the whole video is shown as the slow clip"
        messages = zoom_messages(self.profile, question_text, duration, fast, clips, template=c.template,
                                 prefix=self.profile.answer_prefix)
        decoded = frames_for(fast) + sum(frames_for(cl.frames) for cl in clips)
        tokens = fast.visual_tokens + sum(cl.frames.visual_tokens for cl in clips)
        step, action = self._step(len(steps) + 1, messages, letters, decoded, tokens)
        if isinstance(action, Zoom):
            step = replace(step, error="asked to zoom at the forced answer step; no answer recorded")
        record(replace(step, note=note, outcome=Outcome.WHOLE_VIDEO) if note else step)
        return self._trace(info, question, options, steps, action if isinstance(action, Answer) else None, t0)

    def _step(self, index, messages, letters, decoded, tokens, intervals="lenient"):
        """One generation. At the forced step (`intervals` lenient) the reference takes any boxed content as
        the answer; the lenient reading keeps ``[B]`` an answer there."""
        completion = self.backend.generate(messages, self.config.gen)
        action = parse_action(completion.text, letters, intervals)
        error = action.reason if isinstance(action, Malformed) else None
        step = Step(
            index=index,
            prompt=[m.to_ref() for m in messages],
            forced_prefix=completion.prefix or None,
            completion=completion.text,
            action={"kind": action.kind, **asdict(action)},
            visual_tokens=sum(completion.usage.visual_tokens) if completion.usage.visual_tokens else tokens,
            frames_shown=sum(len(p.frames) if isinstance(p, Video) else 1
                             for m in messages for p in m.parts if not isinstance(p, Text)),
            frames_decoded=decoded,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            cached_tokens=completion.usage.cached_tokens,
            media_tokens=list(completion.usage.visual_tokens) if completion.usage.visual_tokens is not None else None,
            expected_visual_tokens=tokens,
            timings=dict(completion.timings) or None,
            latency_s=round(completion.latency_s, 4),
            error=error,
            guess=completion.guess,
            retries=completion.retries,
            retry_error=completion.retry_error,
        )
        return step, action

    def _trace(self, info, question, options, steps, answer: Answer | None, t0) -> Trace:
        return Trace(
            question=question,
            options=list(options),
            video={"path": info.path, "id": info.fingerprint, "duration_s": round(info.duration_s, 3)},
            agent=self.config.agent,
            backend=self.backend.describe(),
            config=_config_dict(self.config),
            steps=steps,
            answer=answer.text if answer else "",
            choice=answer.choice if answer else None,
            totals=totals(steps, time.perf_counter() - t0),
        )


def _frame_factor(config: ZoomConfig, backend: Backend) -> int:
    """The grid frame sizes are rounded to: the config's, else the backend's model's, else Qwen2.5-VL's."""
    return config.frame_factor or getattr(backend, "frame_factor", None) or PATCH


def _seed(seed: int, video_id: str, question: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{video_id}:{question}".encode()).digest()[:8], "big")


def _config_dict(config: ZoomConfig) -> dict:
    d = asdict(config)
    d["gen"]["stop"] = list(d["gen"]["stop"])
    d["deviations"] = list(d["deviations"])
    return d
