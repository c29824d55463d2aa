"""CoT training rows for the zoom agent: the row, the post-filters, and export (love-r1-spec §5.3, §2.3).

* `CotRow`: one sample, a zoom step (target ``I need to zoom in on the video.\\n\\n`` + CoT + ``\\boxed{[s, e]}``)
  or an answer step (``I get the answer.\\n\\n`` + CoT + ``\\boxed{X}``). `make_target` builds the target.
* Filters ``(row) -> reason | None`` (None keeps the row), thresholds as keyword defaults; `apply_filters`
  runs them in order and counts, per filter, the rows it dropped.
* `to_jsonl` / `read_jsonl`: our rows, one per line, append-safe. `to_llamafactory`: LLaMA-Factory records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from longlens.agents.actions import BOX, Answer, Zoom, last_boxed, parse_action
from longlens.errors import LongLensError
from longlens.jsonl import complete_lines
from longlens.prompts import load_profile
from longlens.prompts.zoom import format_question
from longlens.spans import Span, iou, max_over
from longlens.train.rewards import ZoomRules, is_correct, zoom_check

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
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
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


RL_KINDS = ("general", "local")


@dataclass(frozen=True)
class RLRow:
    """One question for GRPO (love-r1-spec §4.3): hard-example mining writes these, `longlens train grpo` reads them.

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
            raise ValueError(f"kind must be one of {', '.join(RL_KINDS)}, not {self.kind!r}")
        if self.kind == "local" and not self.truth:
            raise ValueError(f"{self.id}: a local row needs truth spans")
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


# ---------------------------------------------------------------- targets
def _first_box_end(text: str) -> int | None:
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
    (love-r1-spec §5.3); unchanged when it has no closed box (`bad_box` then drops it)."""
    end = _first_box_end(text)
    return text if end is None else text[:end]


def make_target(kind: str, cot: str, profile: str = "love-r1") -> str:
    """The target of a `kind` step: the decision prefix (§2.3) + `cot` cut after its first box. A zoom box
    is rewritten as whole seconds, ``\\boxed{[90, 120]}`` (§2.3 "integer seconds"; App. B.2 "normalise
    times to seconds"), so ``1:30`` or ``90.4`` become ``90``. A prefix already at the start is kept once."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    p = load_profile(profile)
    prefix = p.zoom_prefix if kind == "zoom" else p.answer_prefix
    body = cut_after_first_box(cot.strip())
    for known in (p.zoom_prefix, p.answer_prefix):
        if body.startswith(known.strip()):
            body = body[len(known.strip()):].lstrip()
    action = parse_action(body)
    if kind == "zoom" and isinstance(action, Zoom) and _first_box_end(body) == len(body):
        body = body[: body.rfind(BOX)] + f"{BOX}[{round(action.start_s)}, {round(action.end_s)}]}}"
    return prefix + body


# ---------------------------------------------------------------- filters
def wrong_answer(row: CotRow) -> str | None:
    """An answer row whose boxed answer is not the truth (§5.3 acceptance, App. B.2 "drop wrong answers"):
    the letter `extract.robust` reads in the last box (``B``, ``(B)``, ``B. text``, an option's text)."""
    if row.kind != "answer":
        return None
    content = last_boxed(row.target)
    if content is None:
        return "no \\boxed{} answer"
    if not is_correct(content, row.answer, row.options):
        return f"boxed {content[:40]!r}, truth {row.answer!r}"
    return None


def zoom_miss(row: CotRow, *, min_iou: float = 0.1) -> str | None:
    """A zoom row whose clip overlaps no truth span by IoU >= `min_iou` (App. B.2 "IoU < 0.1"; the
    short-video script's 0.1). Touching spans (IoU 0) always miss, so ``min_iou=0`` is the CG-Bench rule
    "IoU > 0". A zoom row without truth spans cannot be checked and is dropped."""
    if row.kind != "zoom":
        return None
    action = parse_action(row.target)
    if not isinstance(action, Zoom):
        return "no readable \\boxed{[start, end]}"
    if not row.truth:
        return "no truth spans to check the zoom against"
    best = max_over((action.start_s, action.end_s), row.truth, iou)
    if best <= 0 or best < min_iou:
        return f"clip [{action.start_s:g}, {action.end_s:g}] has IoU {best:.3f} with the truth"
    return None


def bad_span(row: CotRow, *, max_s: float = 60.0, max_fraction: float = 0.5, min_s: float = 1.0,
             max_overlap: float = 0.7) -> str | None:
    """A zoom clip training could not use (`zoom_check`, the RL check of §2.6 with §7.9's guards, so SFT and
    RL agree): longer than min(`max_s`, `max_fraction` D) (§5.3 keeps e - s < 60), shorter than `min_s`,
    reversed, outside the video, or IoU > `max_overlap` with a clip already shown."""
    if row.kind != "zoom":
        return None
    rules = ZoomRules(min_s=min_s, max_s=max_s, max_fraction=max_fraction, max_overlap=max_overlap)
    got = zoom_check(row.target, row.duration_s, row.clips, rules)
    return got if isinstance(got, str) else None


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9']+")


def repeated_pattern(row: CotRow, *, min_words: int = 5, sentence_repeats: int = 2, ngram: int = 8,
                     ngram_repeats: int = 3) -> str | None:
    """Degenerate repetition (App. B.2 "repeated patterns"; thresholds ours): a sentence of at least
    `min_words` words written `sentence_repeats` times (case and punctuation aside), or any run of `ngram`
    words written `ngram_repeats` times (a loop like "the man the man ..." or a pasted paragraph)."""
    seen: dict[tuple[str, ...], int] = {}
    for sentence in _SENTENCE.split(row.target):
        words = tuple(_WORD.findall(sentence.lower()))
        if len(words) >= min_words:
            seen[words] = seen.get(words, 0) + 1
            if seen[words] >= sentence_repeats:
                return f"sentence repeated: {' '.join(words)[:60]!r}"
    words = _WORD.findall(row.target.lower())
    grams: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - ngram + 1):
        g = tuple(words[i: i + ngram])
        grams[g] = grams.get(g, 0) + 1
        if grams[g] >= ngram_repeats:
            return f"{ngram} words repeated {ngram_repeats} times: {' '.join(g)[:60]!r}"
    return None


UNSEEN_WORDS = (r"captions?", r"captioned", r"subtitles?", r"transcripts?", r"transcription", r"descriptions?",
                r"audio", r"voices?", r"voice-?over", r"sounds?", r"hear(?:s|d|ing)?", r"listen(?:s|ed|ing)?",
                r"narrat(?:or|ors|ion|es|ed|ing)", r"dialogues?")
"""What the model cannot see: the teacher's captions (the zoom prompt forbids 'caption' and 'description',
§5.3) and anything heard (App. B.2 "mentions of captions or voice"; the short-video prompts forbid audio)."""


def mentions_unseen(row: CotRow, *, words: Sequence[str] = UNSEEN_WORDS) -> str | None:
    """A target that refers to captions, subtitles or audio (whole words, any case; `words` are regexes)."""
    m = re.search(r"\b(?:" + "|".join(words) + r")\b", row.target, re.IGNORECASE)
    return f"mentions {m.group(0)!r}" if m else None


HINT_WORDS = (r"hint", r"(?:given|provided) answer", r"answer (?:is|was) (?:given|provided)")


def mentions_hint(row: CotRow, *, words: Sequence[str] = HINT_WORDS) -> str | None:
    """An answer CoT that gives away the teacher's ``Hint: the answer is X`` (§5.3 asks it not to)."""
    m = re.search(r"\b(?:" + "|".join(words) + r")\b", row.target, re.IGNORECASE)
    return f"mentions {m.group(0)!r}" if m else None


def bad_box(row: CotRow) -> str | None:
    """Not exactly one box closing the target (§5.3 cuts after the first), or a box of the wrong kind: a
    zoom row must box ``[start, end]``, an answer row an answer (`parse_action`, the one parser)."""
    end = _first_box_end(row.target)
    if end is None:
        return "no closed \\boxed{}"
    if row.target[end:].strip():
        return "text after the first \\boxed{} (cut with cut_after_first_box)"
    action = parse_action(row.target)
    want = Zoom if row.kind == "zoom" else Answer
    if not isinstance(action, want):
        return f"a {row.kind} row boxes {last_boxed(row.target)[:40]!r}"
    return None


def wrong_prefix(row: CotRow, *, profile: str = "love-r1") -> str | None:
    """A target that does not start with its kind's decision prefix, newlines included (§2.3)."""
    p = load_profile(profile)
    prefix = p.zoom_prefix if row.kind == "zoom" else p.answer_prefix
    return None if row.target.startswith(prefix) else f"a {row.kind} target must start with {prefix!r}"


Filter = Callable[[CotRow], "str | None"]
FILTERS: tuple[Filter, ...] = (bad_box, wrong_prefix, wrong_answer, zoom_miss, bad_span, repeated_pattern,
                               mentions_unseen, mentions_hint)
"""The default order: format first, then correctness, then content."""


def filter_name(f: Filter) -> str:
    """A filter's name (a `functools.partial` goes by its function's name)."""
    return getattr(f, "__name__", None) or getattr(getattr(f, "func", None), "__name__", repr(f))


def apply_filters(rows: Iterable[CotRow], filters: Sequence[Filter] | Mapping[str, Filter] = FILTERS
                  ) -> tuple[list[CotRow], dict]:
    """The rows every filter keeps, and a report ``{"in": n, "out": kept, "dropped": {name: count},
    "examples": {name: first reason}}``. A row is charged to the first filter that drops it, so the counts
    add up to in - out. `filters` may be a mapping, to give them names."""
    named = list(filters.items()) if isinstance(filters, Mapping) else [(filter_name(f), f) for f in filters]
    kept: list[CotRow] = []
    dropped = {name: 0 for name, _ in named}
    examples: dict[str, str] = {}
    n = 0
    for row in rows:
        n += 1
        for name, f in named:
            reason = f(row)
            if reason is not None:
                dropped[name] += 1
                examples.setdefault(name, f"{row.id}: {reason}")
                break
        else:
            kept.append(row)
    return kept, {"in": n, "out": len(kept), "dropped": dropped, "examples": examples}


# ---------------------------------------------------------------- our JSONL
def to_jsonl(rows: Iterable, path: str | Path) -> int:
    """Append `rows`, one JSON object a line, flushed line by line; a torn last line left by a kill is cut
    first. Returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
    n = 0
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
            f.flush()
            n += 1
    return n


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


# ---------------------------------------------------------------- LLaMA-Factory
def clip_file(video: str, span: Span, clip_root: str | Path) -> str:
    """Where the cut of `span` of `video` is expected: ``clip_root/<stem>_<start>-<end><suffix>``, whole seconds."""
    v = Path(video)
    return str(Path(clip_root) / f"{v.stem}_{int(span[0])}-{int(span[1])}{v.suffix or '.mp4'}")


def to_llamafactory(rows: Iterable[CotRow], video_root: str | Path, clip_root: str | Path | None = None,
                    profile: str = "love-r1") -> list[dict]:
    """LLaMA-Factory multimodal records in its sharegpt style, one per row (the shape written from what we
    know of LLaMA-Factory's ``mllm_video_demo`` data, not checked against its docs here)::

        {"messages": [{"role": "user", "content": "Full video [0, 600]:<video>Subset zoom-in video clip
                       [100, 130]:<video>question, options, suffix, instruction"},
                      {"role": "assistant", "content": row.target}],
         "system": profile.system,
         "videos": ["<video_root>/<video>", "<clip_root>/<stem>_100-130.mp4"]}

    One ``<video>`` per entry of ``videos``, in order: the fast view (the whole file) first, then each clip,
    as LOVE-R1's template shows a slow clip as a separate video. LLaMA-Factory has no per-video time window,
    so each clip must exist as its own cut file (`clip_file` names it; `clip_root` defaults to
    ``video_root/clips``), and the clip times are carried in the text labels, as our prompts do. Frame rate,
    resolution and the timestamp overlay are LLaMA-Factory's settings, not ours. Register the file with
    `llamafactory_dataset_info`."""
    p = load_profile(profile)
    clip_root = Path(video_root) / "clips" if clip_root is None else Path(clip_root)
    out = []
    for row in rows:
        text = p.full_video_label % (0, int(row.duration_s)) + "<video>"
        videos = [str(Path(video_root) / row.video)]
        for c in sorted(row.clips):
            text += p.clip_label % (int(c[0]), int(c[1])) + "<video>"
            videos.append(clip_file(row.video, c, clip_root))
        text += format_question(p, row.question, row.options) + p.instruction
        out.append({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": row.target}],
                    "system": p.system, "videos": videos})
    return out


def llamafactory_dataset_info(file_name: str) -> dict:
    """The ``dataset_info.json`` entry for a file of `to_llamafactory` records."""
    return {"file_name": file_name, "formatting": "sharegpt",
            "columns": {"messages": "messages", "system": "system", "videos": "videos"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
