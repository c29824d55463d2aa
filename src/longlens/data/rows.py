"""The rows `longlens data` writes and `longlens train` reads (the reference's SFT targets and RL items:
docs/reference-code.md, LOVE-R1).

* `CotRow`: one SFT sample of the zoom agent, a zoom step (target ``I need to zoom in on the video.\\n\\n`` +
  CoT + ``\\boxed{[s, e]}``) or an answer step (``I get the answer.\\n\\n`` + CoT + ``\\boxed{X}``);
  `make_target` builds the target.
* `TemplateRow`: one SFT sample in LOVE-R1's item form (stage-1 instruction data, or a released CoT item).
* `RLRow`: one GRPO question (mining writes them; both agents' GRPO recipes read them).
* `to_jsonl` / `read_jsonl`: rows, one per line, append-safe (`longlens.jsonl`).

The post-filters are in `data.filters`, LLaMA-Factory export in `data.export`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from longlens.agents.zoom.actions import BOX, Zoom, parse_action
from longlens.errors import ConfigError, LongLensError
from longlens.jsonl import append_json_lines, complete_lines, cut_torn_line
from longlens.prompts import load_profile
from longlens.spans import Span

KINDS = ("zoom", "answer")


@dataclass(frozen=True)
class CotRow:
    """One CoT sample: what the model is shown (video, question, clips) and what it must write (`target`)."""

    id: str
    video: str
    """Path of the video, relative to a video root (or absolute)."""
    duration_s: float
    question: str
    options: tuple[str, ...]
    answer: str
    """The truth: an option letter."""
    kind: str
    """"zoom" or "answer": the step the target takes."""
    clips: tuple[Span, ...]
    """The zoom-in clips shown with the fast view, [start, end] in seconds."""
    target: str
    """Prefix + CoT + one ``\\boxed{...}`` at the end."""
    truth: tuple[Span, ...] = ()
    """The annotated spans where the answer is seen (empty for global questions)."""
    source: str = ""
    """Where the sample comes from (data set, teacher)."""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "clips", tuple((float(s), float(e)) for s, e in self.clips))
        object.__setattr__(self, "truth", tuple((float(s), float(e)) for s, e in self.truth))

    def to_dict(self) -> dict:
        """A JSON-ready dict (spans as ``[s, e]`` lists)."""
        d = asdict(self)
        d["options"] = list(self.options)
        d["clips"] = [list(c) for c in self.clips]
        d["truth"] = [list(t) for t in self.truth]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> CotRow:
        return cls(**d)


@dataclass(frozen=True)
class TemplateRow:
    """One SFT sample in LOVE-R1's own item form: a question in the slow-fast template and the reply. Stage 1's
    plain instruction data (no zoom instruction; slow clips simulated from `truth` at every fetch), or, with
    `cot`, a stage-2 CoT item (the zoom instruction appended, `clips` shown) as the reference's ``cot_data``
    items are. `data rows --stage 1` writes them; `data.released` reads the reference's files into them."""

    id: str
    video: str
    """Path of the video, relative to a video root (or absolute)."""
    question: str
    """The question; with `options` it is formatted as inference formats it, else used as written."""
    target: str
    """The assistant's reply."""
    options: tuple[str, ...] = ()
    truth: tuple[Span, ...] = ()
    """Annotated [start, end] spans (the reference's ``tgt``); they steer stage 1's clip simulation."""
    source: str = ""
    cot: bool = False
    """A CoT item (the reference's ``cot_data``): the zoom instruction is appended and `clips` are shown."""
    clips: tuple[Span, ...] = ()
    """The clips a CoT item shows (the reference's ``zoomin_intervals``)."""

    def __post_init__(self):
        for name in ("id", "video", "question", "target"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be text")
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "truth", tuple((float(s), float(e)) for s, e in self.truth))
        object.__setattr__(self, "clips", tuple((float(s), float(e)) for s, e in self.clips))

    def to_dict(self) -> dict:
        return {**asdict(self), "options": list(self.options), "truth": [list(t) for t in self.truth],
                "clips": [list(c) for c in self.clips]}

    @classmethod
    def from_dict(cls, d: Mapping) -> TemplateRow:
        return cls(**d)


RL_KINDS = ("general", "local")


@dataclass(frozen=True)
class RLRow:
    """One question for GRPO (the reference's RL item:
    HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:954-960): hard-example mining writes these,
    `longlens train grpo` reads them.

    ``general`` rows are rolled out through the whole zoom loop and rewarded on the final answer; ``local``
    rows (with `truth` spans) are single zoom steps after the ``I need to zoom in on the video.`` prefix,
    rewarded on IoU with the truth (and, with `clips`, once more with those clips already shown).
    """

    id: str
    video: str
    """Path of the video, relative to a video root (or absolute)."""
    question: str
    options: tuple[str, ...]
    answer: str
    """The truth: an option letter."""
    kind: str = "general"
    truth: tuple[Span, ...] = ()
    """Annotated spans where the answer is seen (required for ``local`` rows)."""
    clips: tuple[Span, ...] = ()
    """Zoom-in clips already shown (the reference's ``zoomin_intervals``)."""
    duration_s: float | None = None
    correctness: tuple[float, ...] = ()
    """What mining measured: 1/0 per rollout (kept rows are neither all 1 nor all 0)."""
    source: str = ""

    def __post_init__(self):
        if self.kind not in RL_KINDS:
            raise ConfigError(f"kind must be one of {', '.join(RL_KINDS)}, not {self.kind!r}")
        if self.kind == "local" and not self.truth:
            raise ConfigError(f"{self.id}: a local row needs truth spans")
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "truth", tuple((float(s), float(e)) for s, e in self.truth))
        object.__setattr__(self, "clips", tuple((float(s), float(e)) for s, e in self.clips))
        object.__setattr__(self, "correctness", tuple(float(c) for c in self.correctness))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(options=list(self.options), truth=[list(t) for t in self.truth], clips=[list(c) for c in self.clips],
                 correctness=list(self.correctness))
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> RLRow:
        return cls(**d)


def rl_row(sample, video: str, duration_s: float | None, correctness: Sequence[float] = (), source: str = "") -> RLRow:
    """The GRPO row of a benchmark `Sample` (``local`` when it has truth spans, else ``general``); `video` as it
    should be written (relative to the video root)."""
    return RLRow(sample.id, video, sample.question, sample.options, sample.answer or "",
                 "local" if sample.spans else "general", sample.spans, (), duration_s, tuple(correctness), source)


def template_row(sample, video: str, source: str = "") -> TemplateRow:
    """The stage-1 SFT row of a benchmark `Sample`: its question and options, the answer letter as the reply
    (what the profile's choice suffix asks for), its truth spans steering the simulated clips."""
    return TemplateRow(sample.id, video, sample.question, sample.answer or "", sample.options, sample.spans, source)


# ---------------------------------------------------------------- targets
def first_box_end(text: str) -> int | None:
    """Index just after the closing brace of the first ``\\boxed{``, or None (no box, or never closed)."""
    at = text.find(BOX)
    if at < 0:
        return None
    depth = 1
    for i in range(at + len(BOX), len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    return None


def cut_after_first_box(text: str) -> str:
    """`text` up to the end of its first ``\\boxed{...}`` (braces matched), as the reference stores CoTs
    (HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_answer_cot.py:247-250); unchanged when it has no closed box
    (`bad_box` then drops it)."""
    end = first_box_end(text)
    return text if end is None else text[:end]


def make_target(kind: str, cot: str, profile: str = "love-r1") -> str:
    """The target of a `kind` step: the decision prefix (the profile's ``zoom_prefix`` / ``answer_prefix``) + `cot`
    cut after its first box. A zoom box is rewritten as whole seconds, ``\\boxed{[90, 120]}`` (the teacher prompt's
    "in integer seconds", HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_sample_cot.py:77; the paper's App. B.2
    "normalise times to seconds"), so ``1:30`` or ``90.4`` become ``90``. A prefix already at the start is kept once."""
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    p = load_profile(profile)
    prefix = p.zoom_prefix if kind == "zoom" else p.answer_prefix
    body = cut_after_first_box(cot.strip())
    for known in (p.zoom_prefix, p.answer_prefix):
        if body.startswith(known.strip()):
            body = body[len(known.strip()):].lstrip()
    action = parse_action(body)
    if kind == "zoom" and isinstance(action, Zoom) and first_box_end(body) == len(body):
        body = body[: body.rfind(BOX)] + f"{BOX}[{round(action.start_s)}, {round(action.end_s)}]}}"
    return prefix + body


# ---------------------------------------------------------------- our JSONL
def to_jsonl(rows: Iterable, path: str | Path) -> int:
    """Append `rows`, one JSON object a line, synced; a torn last line left by a kill is cut first.
    Returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cut_torn_line(path)
    return append_json_lines(path, (row.to_dict() for row in rows))


def read_jsonl(path: str | Path, row_type: type = CotRow) -> list:
    """The rows of `path` (`CotRow` by default, or `RLRow`). A last line without its newline is a torn write
    and is ignored; any other bad line is an error naming its line number."""
    if not Path(path).is_file():
        raise LongLensError(f"{path}: no such file of rows; make it first (longlens data ...)")
    rows = []
    for i, line in complete_lines(path):
        try:
            rows.append(row_type.from_dict(json.loads(line)))
        except (ValueError, TypeError) as e:
            raise LongLensError(f"{path}:{i}: not a {row_type.__name__} ({e})") from e
    return rows
