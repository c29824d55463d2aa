"""Teacher CoTs for the zoom agent through any OpenAI-compatible endpoint (the reference's
HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_sample_cot.py:202-302 and
HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_answer_cot.py:199-260).

Two kinds per question, each asked up to `tries` times (one candidate per call, seed = try number) until a
candidate is accepted:

* **zoom**: text only. The prompt is `prompts.teacher.zoom_prompt` over the video's joined clip captions
  (`clipcaps.ClipCaptions.joined`). A candidate is accepted when its last (or only) ``\\boxed{[s, e]}``
  parses (`agents.zoom.actions.parse_action`; model text is never evaluated), the first box says the same, and
  in whole seconds 0 < e - s < 60 and the clip has IoU > 0 with a truth span. Needs truth spans.
* **answer**: ``min(16, int(2 (len + 10)))`` frames spread over the first truth span padded by 5 s on each
  side (no timestamp overlay; longer side at most 512 px, the reference's ``detail: low``), then
  `prompts.teacher.answer_prompt` with the hint. Accepted when the boxed letter is the truth (first and last
  box). Without truth spans, 16 frames over the whole video (our choice; the reference has no such case).

An accepted candidate becomes a `CotRow` whose target is `make_target(kind, text)`: the decision prefix +
the text cut after its first box. A zoom row shows no clips; an answer row shows the padded span as its
clip (the frames the teacher saw), in whole seconds.

`make_cots` runs the jobs (question, kind) concurrently and resumably, as the eval runner does: each
accepted row is appended to the output and each decided job (accepted, or given up after `tries`) to
``<out>.decided.jsonl``, fsynced; a rerun skips decided jobs and cuts a torn last line. A failing server
(`BackendError`) stops the run with one line; the jobs in flight finish and are kept.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from longlens.agents.zoom.actions import Answer, Malformed, Zoom, last_boxed, parse_action
from longlens.backends.base import Backend, GenConfig
from longlens.bench.sample import Sample
from longlens.data.clipcaps import ClipCaptions
from longlens.data.decided import decide_all, decided_path, open_output, read_decided
from longlens.data.rows import KINDS, CotRow, make_target, read_jsonl
from longlens.errors import LongLensError, VideoError
from longlens.jsonl import unique_ids
from longlens.prompts.messages import Message, Text, Video
from longlens.prompts.teacher import answer_prompt, zoom_prompt
from longlens.prompts.zoom import LETTERS
from longlens.rewards import is_correct
from longlens.spans import Span, iou, max_over
from longlens.video import FrameCache, VideoInfo, decode, open_video
from longlens.video.plan import index_plan, reference_linspace


@dataclass(frozen=True)
class TeacherConfig:
    kinds: tuple[str, ...] = KINDS
    tries: int = 3
    temperature: float = 1.0
    max_new_tokens: int = 2048
    seed: int = 0
    max_zoom_s: float = 60.0
    pad_s: float = 5.0
    answer_frames: int = 16
    max_side: int = 512
    caption_model: str | None = None
    """Which stored captions to read when the store holds several models' (None: the only one)."""
    clip_s: float | None = None

    def __post_init__(self):
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not self.kinds:
            raise LongLensError(f"--kinds takes {', '.join(KINDS)} (comma-separated), got {','.join(self.kinds)}")
        if self.tries < 1:
            raise LongLensError(f"--tries must be 1 or more, got {self.tries}")


@dataclass(frozen=True)
class Outcome:
    """A decided job: the accepted row (or None) and why each rejected candidate was rejected."""

    id: str
    kind: str
    row: CotRow | None
    rejected: tuple[str, ...] = ()
    """One reason key per rejected candidate (or the job's reason when it could not be asked)."""
    example: str = ""
    """The first rejection in words."""

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "kept": self.row is not None, "rejected": list(self.rejected),
                "example": self.example}


# ---------------------------------------------------------------- acceptance
def check_zoom(text: str, truth: Sequence[Span], max_s: float = 60.0) -> tuple[str, str]:
    """("", target) for an accepted zoom candidate, else (reason key, reason in words)."""
    action = parse_action(text)
    if isinstance(action, Malformed):
        return ("no box", action.reason) if last_boxed(text) is None else ("unreadable box", action.reason)
    if not isinstance(action, Zoom):
        return "answered instead of zooming", f"boxed {action.text[:40]!r}"
    target = make_target("zoom", text)
    first = parse_action(target)
    if not isinstance(first, Zoom) or (first.start_s, first.end_s) != (round(action.start_s), round(action.end_s)):
        return "boxes disagree", "the first box is not the last box's interval"
    s, e = first.start_s, first.end_s
    if not 0 < e - s < max_s:
        return "bad span length", f"[{s:g}, {e:g}] is not between 0 and {max_s:g} s long"
    if max_over((s, e), truth, iou) <= 0:
        return "misses the truth", f"[{s:g}, {e:g}] has IoU 0 with the truth {list(map(list, truth))}"
    return "", target


def check_answer(text: str, answer: str, options: Sequence[str]) -> tuple[str, str]:
    """("", target) for an accepted answer candidate, else (reason key, reason in words)."""
    action = parse_action(text, LETTERS[: len(options)] or LETTERS)
    if isinstance(action, Malformed):
        return ("no box", action.reason) if last_boxed(text) is None else ("unreadable box", action.reason)
    if not isinstance(action, Answer):
        return "zoomed instead of answering", f"boxed [{action.start_s:g}, {action.end_s:g}]"
    if not is_correct(action.text, answer, options):
        return "wrong answer", f"boxed {action.text[:40]!r}, truth {answer!r}"
    target = make_target("answer", text)
    first = last_boxed(target)
    if first is None or not is_correct(first, answer, options):
        return "boxes disagree", "the first box is not the right answer"
    return "", target


# ---------------------------------------------------------------- asking
def answer_window(info: VideoInfo, truth: Sequence[Span], pad_s: float) -> Span | None:
    """The first truth span padded by `pad_s` each side, in whole seconds inside [0, int(D)]; None without."""
    if not truth:
        return None
    s, e = truth[0]
    top = max(int(info.duration_s), 1)
    lo, hi = min(max(int(round(s - pad_s)), 0), top - 1), min(int(round(e + pad_s)), top)
    return float(lo), float(max(hi, lo + 1))


def relative_video(path: str, root: str | Path | None) -> str:
    """`path` relative to `root` when it lies under it, else as given."""
    if root is None:
        return path
    p, r = Path(path).resolve(), Path(root).resolve()
    return str(p.relative_to(r)) if r in p.parents else path


@dataclass
class Teacher:
    backend: Backend
    captions: str | Path | None
    """The clip-caption store folder (zoom jobs)."""
    config: TeacherConfig = field(default_factory=TeacherConfig)
    videos_root: str | Path | None = None
    cache: FrameCache | None = None
    source: str = ""

    def _gen(self, attempt: int) -> GenConfig:
        c = self.config
        return GenConfig(max_new_tokens=c.max_new_tokens, temperature=c.temperature, seed=c.seed + attempt)

    def messages(self, sample: Sample, kind: str, info: VideoInfo) -> tuple[tuple[Message, ...], Span | None]:
        """The request of one job and the clip its row shows (answer jobs)."""
        options = sample.options[: len(LETTERS)]
        if kind == "zoom":
            caps = ClipCaptions.find(self.captions, info, model=self.config.caption_model, clip_s=self.config.clip_s)
            return (Message.text("user", zoom_prompt(caps.joined(), sample.question, options)),), None
        window = answer_window(info, sample.spans, self.config.pad_s)
        if window is None:
            first, last, n = 0, info.n_frames - 1, self.config.answer_frames
        else:
            length = sample.spans[0][1] - sample.spans[0][0]
            n = max(1, min(self.config.answer_frames, int(2 * (length + 2 * self.config.pad_s))))
            first, last = info.index_at(window[0]), info.index_at(window[1])
        plan = index_plan(info, reference_linspace(first, last, n), max_side=self.config.max_side,
                          kind="teacher-answer")
        frames = decode(info, plan, cache=self.cache)
        text = answer_prompt(sample.question, options, sample.answer)
        return (Message("user", (Video(frames, "clue"), Text(text))),), window

    def ask(self, sample: Sample, kind: str) -> Outcome:
        """Up to `tries` candidates for one (question, kind); the first accepted one becomes the row."""
        job = f"{sample.id}:{kind}"
        if kind == "zoom" and not sample.spans:
            return Outcome(job, kind, None, ("no truth spans",), "a zoom CoT is checked against truth spans")
        if not sample.answer or sample.answer not in LETTERS[: len(sample.options)]:
            return Outcome(job, kind, None, ("no answer letter",), f"truth {sample.answer!r} is not an option letter")
        try:
            info = open_video(sample.video, cache=self.cache)
            messages, window = self.messages(sample, kind, info)
        except VideoError as exc:
            return Outcome(job, kind, None, ("unreadable video",), str(exc))
        rejected: list[str] = []
        example = ""
        for attempt in range(self.config.tries):
            text = self.backend.generate(messages, self._gen(attempt)).text
            if kind == "zoom":
                reason, got = check_zoom(text, sample.spans, self.config.max_zoom_s)
            else:
                reason, got = check_answer(text, sample.answer, sample.options)
            if not reason:
                row = CotRow(job, relative_video(sample.video, self.videos_root), round(info.duration_s, 3),
                             sample.question, sample.options, sample.answer, kind, (window,) if window else (), got,
                             sample.spans, self.source)
                return Outcome(job, kind, row, tuple(rejected), example)
            rejected.append(reason)
            example = example or f"{job}: {got}"
        return Outcome(job, kind, None, tuple(rejected), example)


# ---------------------------------------------------------------- the run
def report_of(decided: list[dict]) -> dict:
    """Counts over a decided log: jobs kept and given up per kind, rejected candidates per reason."""
    kept = Counter(d["kind"] for d in decided if d["kept"])
    dropped = Counter(d["kind"] for d in decided if not d["kept"])
    reasons = Counter(r for d in decided for r in d["rejected"])
    examples: dict[str, str] = {}
    for d in decided:
        if d["rejected"] and d.get("example"):
            examples.setdefault(d["rejected"][0], d["example"])
    return {"jobs": len(decided), "kept": dict(kept), "given_up": dict(dropped), "rejected": dict(reasons),
            "examples": examples}


def make_cots(samples: Sequence[Sample], teacher: Teacher, out: str | Path, *, concurrency: int = 1,
              progress: Callable[[Outcome, int, int], None] | None = None) -> dict:
    """Ask the teacher for every (sample, kind) not yet decided in `out`; returns the report over the whole
    output (written beside it as ``<out>.report.json``)."""
    unique_ids(samples)
    done = open_output(out, read_jsonl, lambda row: Outcome(row.id, row.kind, row))
    jobs = [(s, k) for s in samples for k in teacher.config.kinds if f"{s.id}:{k}" not in done]
    decide_all(jobs, lambda job: teacher.ask(*job), out, concurrency=concurrency, progress=progress,
               who="the teacher")
    out, log = Path(out), decided_path(out)
    report = report_of(read_decided(log))
    out.with_name(out.stem + ".report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False),
                                                        encoding="utf-8")
    return report
