"""Reading an option letter out of a model's reply: each benchmark's official rule, and ours.

* `videomme_official`: the Video-MME scorer's rule (also LVBench's in VLMEvalKit), quirks kept: prefixes
  deleted anywhere in the reply (case-sensitive), two of them glued together by missing commas in the
  official list (so "Best answer:" is *not* removed), a long reply with no capital A-D gives "", else
  the first capital A-D anywhere ("Black." gives B).
* `mlvu_official`: MLVU's rule: the text before the first ")" must be the letter ("A" and "A) x" read A;
  "(A)" and "A." read nothing).
* `robust` (the default everywhere): the letter of ``<answer>X</answer>`` or ``\\boxed{X}`` when present,
  then a lone or leading letter (``A``, ``(A)``, ``A.``, ``A) text``), a named letter ("the answer is C",
  "Best answer: D"), a trailing lone letter, and finally an option's exact text; otherwise None.
"""

from __future__ import annotations

import re

from longlens.agents.actions import last_boxed, parse_choice

VIDEOMME_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is" "The correct option is",  # noqa: ISC001 - the official list's missing comma, on purpose
    "Best answer:" "Best option:",  # noqa: ISC001
)


def videomme_official(reply: str, letters: str = "ABCD") -> str:
    s = reply.strip()
    for prefix in VIDEOMME_PREFIXES:
        s = s.replace(prefix, "")
    pattern = f"[{letters}]"
    if len(s.split()) > 10 and not re.search(pattern, s):
        return ""
    m = re.search(pattern, s)
    return m.group(0) if m else ""


def mlvu_official(reply: str) -> str:
    return reply.split(")")[0].strip() if ")" in reply else reply.strip()


_PHRASE = re.compile(r"(?:answer|option|choice)\s*(?:is|:)?\s*[:\-]?\s*\(?([A-J])\)?(?![A-Za-z])", re.IGNORECASE)
_TRAILING = re.compile(r"(?:^|[\s(\[*])\(?([A-J])\)?[.*\])]*\s*$")
_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def robust(reply: str, options: tuple[str, ...] | list[str] = (), letters: str = "ABCDEFGHIJ") -> str | None:
    letters = letters[: len(options)] if options else letters
    text = reply.strip()
    tagged = _TAG.findall(text)
    boxed = last_boxed(text)
    for inner in ([tagged[-1]] if tagged else []) + ([boxed] if boxed else []):
        got = _letter(inner.strip(), options, letters)
        if got:
            return got
    return _letter(text, options, letters)


def _letter(text: str, options, letters: str) -> str | None:
    text = text.replace("**", "")
    got = parse_choice(text, letters)
    if got:
        return got
    phrases = [m.group(1).upper() for m in _PHRASE.finditer(text) if m.group(1).upper() in letters]
    if phrases:
        return phrases[-1]
    m = _TRAILING.search(text)
    if m and m.group(1) in letters:
        return m.group(1)
    norm = _norm(text)
    hits = [i for i, o in enumerate(options) if _norm(o) and _norm(o) == norm]
    if len(hits) == 1:
        return letters[hits[0]]
    return None


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()
