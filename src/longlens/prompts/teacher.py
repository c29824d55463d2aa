"""The teacher prompts of LOVE-R1's data construction (HumanMLLM/LOVE-R1@aa1facb process_data/), kept as package data.

``prompts/data/love-r1-teacher.json`` holds the strings byte for byte with a note of their origin; this
module loads them and puts the two teacher prompts together exactly as the reference scripts do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources

from longlens.prompts.zoom import LETTERS


@dataclass(frozen=True)
class TeacherPrompts:
    name: str
    origin: str
    caption_prompt: str
    """The clip-caption request (build_cgbench_captions.py)."""
    question_label: str
    """``"\\n\\nQuestion: "``: between the captions (or nothing) and the question."""
    options_label: str
    """``"\\nOptions:\\n"``: between the question and its ``A. ...`` lines."""
    zoom_instruction: str
    """SYSTEM_PROMPT3 (build_cgbench_sample_cot.py)."""
    answer_instruction: str
    """SYSTEM_PROMPT2_ans (build_cgbench_answer_cot.py)."""
    answer_hint: str
    """`` Hint: the answer is {letter}. ...``, appended after the answer instruction."""


@lru_cache(maxsize=1)
def load_teacher_prompts() -> TeacherPrompts:
    ref = resources.files("longlens.prompts") / "data" / "love-r1-teacher.json"
    data = json.loads(ref.read_text(encoding="utf-8"))
    return TeacherPrompts(**{f.name: data[f.name] for f in fields(TeacherPrompts)})


def question_with_options(question: str, options: Sequence[str], p: TeacherPrompts | None = None) -> str:
    """``question + "\\nOptions:\\n" + "A. opt\\n" ...``, as both teacher scripts write it
    (HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_sample_cot.py:206-209,
    HumanMLLM/LOVE-R1@aa1facb process_data/build_cgbench_answer_cot.py:203-206)."""
    p = p or load_teacher_prompts()
    return question + p.options_label + "".join(f"{LETTERS[i]}. {o}\n" for i, o in enumerate(options))


def zoom_prompt(captions: str, question: str, options: Sequence[str]) -> str:
    """``caption + "\\n\\nQuestion: " + question + "\\nOptions:\\n" + "A. opt\\n"... + "\\n" + SYSTEM_PROMPT3``."""
    p = load_teacher_prompts()
    return captions + p.question_label + question_with_options(question, options, p) + "\n" + p.zoom_instruction


def answer_prompt(question: str, options: Sequence[str], letter: str) -> str:
    """``"\\n\\nQuestion: " + question_with_options + "\\n" + SYSTEM_PROMPT2_ans + " Hint: the answer is X. ..."``."""
    p = load_teacher_prompts()
    return (p.question_label + question_with_options(question, options, p) + "\n" + p.answer_instruction
            + p.answer_hint.format(letter=letter))
