"""Reading an option letter out of a model's reply: each benchmark's official rule, and ours.

* `videomme_official`: the Video-MME scorer's rule (also LVBench's in VLMEvalKit), quirks kept: prefixes
  deleted anywhere in the reply (case-sensitive), two of them glued together by missing commas in the
  official list (so "Best answer:" is *not* removed), a long reply with no capital A-D gives "", else
  the first capital A-D anywhere ("Black." gives B).
* `mlvu_official`: MLVU's rule: the one character before the first ")", else the whole reply unstripped
  ("A", "A) x" and "(A) x" read A; "A." and " A" read something that is not a letter).
* `longvideobench_official`, `mvbench_official`, `egoschema_official`, `cgbench_official`: those benchmarks'
  reference rules (see each); a reply they cannot read gives None, and the unparsed policy decides.
* `robust` (the default everywhere): the letter of ``<answer>X</answer>`` or ``\\boxed{X}`` when present,
  then a lone or leading letter (``A``, ``(A)``, ``A.``, ``A) text``), a named letter ("the answer is C",
  "Best answer: D"), a trailing lone letter, and finally an option's exact text; otherwise None.
"""

from __future__ import annotations

import json
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
    """MLVU's ``check_ans`` (choice_bench.py, JUNJIE99/MLVU@fd060c1): with a ")" in the reply, the one character
    before the first ")" (nothing when the reply starts with it); else the whole reply, unstripped. The result
    must equal the answer letter exactly ("B) x" and "(B) x" read B; " B", "B." and "The answer is B" do not)."""
    if ")" in reply:
        i = reply.index(")")
        return reply[i - 1 : i]
    return reply


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


# ---------------------------------------------------------------- more official rules
LVB_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer", "The best option is",
                "The correct option is", "Best answer:", "Best option:")


def longvideobench_official(reply: str) -> str | None:
    """LongVideoBench's rule (lmms-eval ``parse_multi_choice_response``): the Video-MME prefixes deleted, commas
    fixed, then the first capital A-E anywhere. No letter gives None here: the reference fills it with a random
    option, which is the scorer's ``random`` policy."""
    s = reply.strip()
    for prefix in LVB_PREFIXES:
        s = s.replace(prefix, "")
    m = re.search("[ABCDE]", s)
    return m.group(0) if m else None


def mvbench_official(reply: str, letters: str = "ABCDE") -> str | None:
    """MVBench's ``check_ans``: the reply's first whitespace token, lowercased and without ".", is compared with
    "(a)", "(b)", ... by substring either way; the first letter that matches. Quirk kept: a reply starting
    with the article "a" reads as A. An empty reply gives None (officially "" is inside every "(x)")."""
    tokens = reply.lower().split()
    if not tokens:
        return None
    token = tokens[0].replace(".", "")
    for letter in letters:
        tag = f"({letter.lower()})"
        if token and (token in tag or tag in token):
            return letter
    return None


_EDGE_PUNCT = ",.!?;:'"


def egoschema_official(reply: str, options: tuple[str, ...] | list[str], letters: str = "ABCDE") -> str | None:
    """EgoSchema in lmms-eval (MMMU style): candidates written ``(A)``, ``A `` or ``A.`` in the reply (punctuation
    stripped from its ends, padded with spaces); with none and more than 5 words, every option whose text the
    reply contains. Several: the one whose last occurrence comes first. None: the reference picks a random
    option, which is the scorer's ``random`` policy."""
    letters = letters[: len(options)] if options else letters
    text = " " + reply.strip().strip(_EDGE_PUNCT) + " "
    last: dict[str, int] = {}
    for letter in letters:
        at = max(text.rfind(f"({letter})"), text.rfind(f"{letter} "), text.rfind(f"{letter}."))
        if at >= 0:
            last[letter] = at
    if not last and len(text.split()) > 5:
        low = text.lower()
        for letter, option in zip(letters, options, strict=False):
            if option and option.lower() in low:
                last[letter] = low.rfind(option.lower())
    return min(last, key=last.get) if last else None


_JSON_BLOCK = re.compile(r"```json(.*?)```", re.DOTALL)
_BARE = re.compile(r'(:\s*)([A-Za-z_]\w*)(\s*[,}\]])')


def cgbench_official(reply: str, letters: str = "ABCDEFGH", credit: str | None = None) -> str | None:
    """CG-Bench's rule: ``{"result": ...}`` from the first ```json block (bare words quoted), the value as
    written (a non-letter is then simply wrong); without a readable block, the standalone capitals A-H:
    the first one, or `credit` (the true letter) when it is among them, as the official scorer credits
    "A or C" if either is right. Nothing: None (officially -1 and excluded: the ``drop`` policy)."""
    m = _JSON_BLOCK.search(reply)
    if m:
        body = _BARE.sub(lambda g: g[0] if g[2] in ("true", "false", "null") else f'{g[1]}"{g[2]}"{g[3]}',
                         m.group(1).strip())
        try:
            value = json.loads(body)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict) and "result" in value:
            return str(value["result"]).strip()
    found = [x for x in re.findall(r"\b[A-H]\b", reply) if x in letters]
    if not found:
        return None
    return credit if credit in found else found[0]
