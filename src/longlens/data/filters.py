"""Post-filters of CoT rows (the LOVE-R1 paper's App. B.2, and the acceptance checks of the reference's data scripts,
HumanMLLM/LOVE-R1@aa1facb process_data/): each ``(row) -> reason | None`` (None keeps the row), thresholds as keyword
defaults; `apply_filters` runs them in order and counts, per filter, the rows it dropped."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from longlens.agents.zoom.actions import Answer, Zoom, last_boxed, parse_action
from longlens.data.rows import CotRow, first_box_end
from longlens.prompts import load_profile
from longlens.rewards import ZoomRules, is_correct, zoom_check
from longlens.spans import iou, max_over


def wrong_answer(row: CotRow) -> str | None:
    """An answer row whose boxed answer is not the truth
    (HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_answer_cot.py:247-251 accepts a first-letter match; App. B.2
    "drop wrong answers"): the letter `extract.robust` reads in the last box (``B``, ``(B)``, ``B. text``, an option's
    text)."""
    if row.kind != "answer":
        return None
    content = last_boxed(row.target)
    if content is None:
        return "no \\boxed{} answer"
    if not is_correct(content, row.answer, row.options):
        return f"boxed {content[:40]!r}, truth {row.answer!r}"
    return None


def zoom_miss(row: CotRow, *, min_iou: float = 0.1) -> str | None:
    """A zoom row whose clip overlaps no truth span by IoU >= `min_iou` (App. B.2 "IoU < 0.1"; the short-video
    script's 0.1, HumanMLLM/LOVE-R1@aa1facb process_data/build_nextgqa_cot_video.py:290-291). Touching spans (IoU 0)
    always miss, so ``min_iou=0`` is the CG-Bench rule "IoU > 0" (process_data/build_cgbench_sample_cot.py:300-301). A
    zoom row without truth spans cannot be checked and is dropped."""
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
    """A zoom clip training could not use (`zoom_check`: the RL check of
    HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:1118-1124 with the guards of
    docs/reference-code.md#z8, so SFT and RL agree): longer than min(`max_s`, `max_fraction` D)
    (process_data/build_cgbench_sample_cot.py:297 keeps 0 < e - s < 60), shorter than `min_s`, reversed, outside the
    video, or IoU > `max_overlap` with a clip already shown."""
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
HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_sample_cot.py:78) and anything heard (App. B.2 "mentions of
captions or voice"; the short-video prompts forbid audio, process_data/build_nextgqa_cot_video.py:69, 81)."""


def mentions_unseen(row: CotRow, *, words: Sequence[str] = UNSEEN_WORDS) -> str | None:
    """A target that refers to captions, subtitles or audio (whole words, any case; `words` are regexes)."""
    m = re.search(r"\b(?:" + "|".join(words) + r")\b", row.target, re.IGNORECASE)
    return f"mentions {m.group(0)!r}" if m else None


HINT_WORDS = (r"hint", r"(?:given|provided) answer", r"answer (?:is|was) (?:given|provided)")


def mentions_hint(row: CotRow, *, words: Sequence[str] = HINT_WORDS) -> str | None:
    """An answer CoT that gives away the teacher's ``Hint: the answer is X`` (which asks it not to:
    HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_answer_cot.py:226)."""
    m = re.search(r"\b(?:" + "|".join(words) + r")\b", row.target, re.IGNORECASE)
    return f"mentions {m.group(0)!r}" if m else None


def bad_box(row: CotRow) -> str | None:
    """Not exactly one box closing the target (the reference cuts after the first:
    HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_answer_cot.py:247-250), or a box of the wrong kind: a zoom
    row must box ``[start, end]``, an answer row an answer (`parse_action`, the one parser)."""
    end = first_box_end(row.target)
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
    """A target that does not start with its kind's decision prefix, newlines included (the prefixes the RL tests with
    ``startswith``: HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:1063, 1106, 1133)."""
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
