"""Reading an option letter out of a model's reply, our way (each benchmark's official rule lives in its
module under `longlens.bench.benchmarks`).

* `robust` (the default everywhere): the letter of ``<answer>X</answer>`` or ``\\boxed{X}`` when present,
  then a lone or leading letter (``A``, ``(A)``, ``A.``, ``A) text``), a named letter ("the answer is C",
  "Best answer: D"), a trailing lone letter, and finally an option's exact text; otherwise None.
"""

from __future__ import annotations

import re

from longlens.agents.zoom.actions import last_boxed, parse_choice

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
