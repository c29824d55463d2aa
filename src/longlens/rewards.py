"""Rewards for GRPO on one completion, built on the parsers and scorers the agents and the harness use.

LOVE-R1 (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:1105-1295, with the fixes of
docs/reference-code.md#z4, #z5, #z6 and #z8): `answer_reward` (outcome reward, None = masked), `zoom_reward`
(binary, IoU > 0 with a truth span), `format_reward`. LongVideo-R1
(qiujihao19/LongVideo-R1@77c87ec verl-tool/verl/verl/utils/reward_score/longvideor1_score.py:145-238, with the
exploit of docs/reference-code.md#n1 closed): `trajectory_reward`. Data uses them too: the post-filters and mining
keep rows by them, so they sit below both `data` and `train`, beside the evaluation's scorers (`bench.extract`)
they reuse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from longlens.agents.navigate.actions import first_tag, parse_call, parse_turn
from longlens.agents.trace import Trace
from longlens.agents.zoom.actions import Answer, Malformed, Zoom, parse_action
from longlens.bench import extract
from longlens.prompts import load_profile
from longlens.prompts.zoom import LETTERS
from longlens.spans import Span, iou, max_over, merge, union_iou


def _span(pair) -> Span:
    a, b = float(pair[0]), float(pair[1])
    return (a, b) if a <= b else (b, a)


# ---------------------------------------------------------------- answers
def truth_letter(answer: str) -> str:
    """The ground truth as stored: ``B``, or the reference form ``<answer>B</answer>``; stripped."""
    inner = first_tag(answer, "answer")
    return (inner if inner is not None else answer).strip()


def is_correct(reply: str, answer: str, options: Sequence[str] = ()) -> bool:
    """Whether `reply` gives `answer`: the letter `extract.robust` reads (``B``, ``(B)``, ``B. text``, an
    option's exact text) against a letter truth; normalised text equality for any other truth."""
    truth = truth_letter(answer)
    if len(truth) == 1 and truth.upper() in LETTERS:
        return extract.robust(reply, tuple(options)) == truth.upper()
    norm = " ".join(truth.lower().split())
    return bool(norm) and " ".join(reply.lower().split()) == norm


def answer_reward(completion: str | Trace, answer: str, options: Sequence[str] = ()) -> float | None:
    """Outcome reward of a LOVE-R1 step or rollout (general questions: HumanMLLM/LOVE-R1@aa1facb
    src/r1-v/src/open_r1/trainer/grpo_trainer.py:1133-1139, 1242-1251): 1 right, 0 wrong, None (masked) when it
    gives no answer: a zoom request, no box, an empty or unreadable box.

    The one parser of the loop decides (`parse_action`, last box; docs/reference-code.md#z4), not the prefix. A
    `Trace` of our loop is read at its last step."""
    if isinstance(completion, Trace):
        last = completion.steps[-1].action if completion.steps else {}
        if not completion.answer or last.get("kind") != "answer":
            return None
        return float(is_correct(completion.answer, answer, options or completion.options))
    action = parse_action(completion)
    if not isinstance(action, Answer):
        return None
    return float(is_correct(action.text, answer, options))


# ---------------------------------------------------------------- the single-step zoom
@dataclass(frozen=True)
class ZoomRules:
    """When a requested clip is usable in training: the RL validity check of
    HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:1118-1124, with the degenerate-clip
    guards of docs/reference-code.md#z8 (a clip must have e > s and at least 2 frames at 2 fps: ``min_s``)."""

    min_s: float = 1.0
    max_s: float = 60.0
    max_fraction: float = 0.5
    """At most this fraction of the video (with `max_s`: min(D/2, 60) s)."""
    slack_s: float = 1.0
    """The end may pass the video's duration by this much (the reference's ``p1 <= D + 1``)."""
    max_overlap: float = 0.7
    """Largest IoU allowed with a clip already in the prompt."""


def zoom_check(completion: str, duration_s: float | None = None, clips: Sequence = (),
               rules: ZoomRules = ZoomRules()) -> Span | str:
    """The clip a zoom completion asks for, or why it is not usable. Reversed clips are not swapped (the
    reference sorted the two numbers; training asks for ``[start, end]`` as the prompt says)."""
    action = parse_action(completion)
    if isinstance(action, Malformed):
        return action.reason
    if not isinstance(action, Zoom):
        return "the reply answers instead of naming a clip"
    s, e = action.start_s, action.end_s
    if not (math.isfinite(s) and math.isfinite(e)):
        return "the clip's times are not finite"
    if e < s:
        return f"reversed clip [{s:g}, {e:g}]"
    if e - s < rules.min_s:
        return f"clip [{s:g}, {e:g}] is shorter than {rules.min_s:g} s"
    longest = rules.max_s
    if duration_s is not None:
        if s < 0 or e > duration_s + rules.slack_s:
            return f"clip [{s:g}, {e:g}] lies outside the video [0, {duration_s:g}]"
        longest = min(longest, duration_s * rules.max_fraction)
    if e - s > longest:
        return f"clip [{s:g}, {e:g}] is longer than {longest:g} s"
    for c in clips:
        if iou((s, e), _span(c)) > rules.max_overlap:
            return f"clip [{s:g}, {e:g}] repeats a clip already shown"
    return (s, e)


def zoom_reward(completion: str, truth_spans: Sequence, duration_s: float | None = None, clips: Sequence = (),
                rules: ZoomRules = ZoomRules()) -> float:
    """Binary zoom reward (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:1160, 1271; the
    paper's eq. 2): 1 when the clip is usable (`zoom_check`) and
    has IoU > 0 with some truth span, else 0. Touching spans and zero-length truth spans have IoU 0."""
    span = zoom_check(completion, duration_s, clips, rules)
    if isinstance(span, str):
        return 0.0
    return 1.0 if max_over(span, [_span(t) for t in truth_spans], iou) > 0 else 0.0


STEPS = ("zoom", "answer", "free")


@lru_cache(maxsize=8)
def _prefixes(profile: str) -> tuple[str, str]:
    p = load_profile(profile)
    return p.zoom_prefix.strip(), p.answer_prefix.strip()


def format_reward(completion: str, duration_s: float | None = None, clips: Sequence = (), step: str = "zoom",
                  rules: ZoomRules = ZoomRules(), profile: str = "love-r1") -> float:
    """Format reward (the reference's format reward, HumanMLLM/LOVE-R1@aa1facb
    src/r1-v/src/open_r1/trainer/grpo_trainer.py:980-982, 1105-1164; its leniency removed:
    docs/reference-code.md#z6): 1 or 0.

    `step` says what the prompt asked: "zoom" (the zoom prefix is in the prompt): a usable clip
    (`zoom_check`); "answer" (the answer prefix is in the prompt): an answer naming an option letter;
    "free" (no prefix): the completion starts with one of the profile's prefixes and does what it says."""
    if step not in STEPS:
        raise ValueError(f"step must be one of {', '.join(STEPS)}, not {step!r}")
    if step == "free":
        zoom_prefix, answer_prefix = _prefixes(profile)
        text = completion.lstrip()
        step = "zoom" if text.startswith(zoom_prefix) else "answer" if text.startswith(answer_prefix) else ""
        if not step:
            return 0.0
    if step == "zoom":
        return 0.0 if isinstance(zoom_check(completion, duration_s, clips, rules), str) else 1.0
    action = parse_action(completion)
    return 1.0 if isinstance(action, Answer) and action.choice is not None else 0.0


# ---------------------------------------------------------------- LongVideo-R1 trajectories
WEIGHTS = {"answer": 1.0, "location": 1.0, "repeat": 0.2}
"""score = 1.0 answer + 1.0 location F1 - 0.2 repeat
(qiujihao19/LongVideo-R1@77c87ec verl-tool/verl/verl/utils/reward_score/longvideor1_score.py:155-157, 224)."""


@dataclass(frozen=True)
class Visit:
    """A tool call that ran: ``get_caption`` of a medium or low node, or ``video_qa`` of a leaf."""

    tool: str
    ids: tuple[int, ...]
    query: str | None = None

    @property
    def key(self) -> tuple:
        """What makes two calls the same call (whitespace and case of the query aside)."""
        return self.tool, self.ids, " ".join((self.query or "").lower().split())


@dataclass(frozen=True)
class TrajectoryReward:
    answer: float
    location: float
    """F1 of the visited time against the truth time, both as unions: in [0, 1]."""
    repeat: float
    """(calls - distinct calls) / distinct calls."""
    total: float
    answered: bool
    calls: int


def _content(message: Mapping) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return content or ""


def read_trajectory(trajectory) -> tuple[list[Visit], str | None]:
    """The tool calls and the final answer of a navigate trajectory, given as our loop's `Trace` (the calls
    that ran), the model's turns (strings or chat messages; the first ``<tool>`` of each turn, up to the
    first answer, as our loop runs them), or one string (every ``<tool>`` and the last ``<answer>``, as the
    reference RL reward reads the response). Calls that cannot be read are no visits."""
    if isinstance(trajectory, Trace):
        visits = [Visit(s.tool["name"], tuple(s.tool["ids"]), s.tool.get("query")) for s in trajectory.steps if s.tool]
        return visits, trajectory.answer or None
    if isinstance(trajectory, str):
        calls = [parse_call(t) for t in re.findall(r"<tool>(.*?)</tool>", trajectory, re.DOTALL)]
        answers = re.findall(r"<answer>(.*?)</answer>", trajectory, re.DOTALL)
        return [Visit(c.name, c.ids, c.query) for c in calls if c.problem is None], \
            (answers[-1].strip() if answers else None)
    visits: list[Visit] = []
    for item in trajectory:
        if not isinstance(item, str) and item.get("role") != "assistant":
            continue
        turn = parse_turn(item if isinstance(item, str) else _content(item))
        if turn.kind == "answer":
            return visits, turn.answer
        call = parse_call(turn.tool) if turn.kind == "tool" else None
        if call is not None and call.problem is None:
            visits.append(Visit(call.name, call.ids, call.query))
    return visits, None


def grid_spans(duration_s: float, width: int) -> Callable[[tuple[int, ...]], Span | None]:
    """The reference reward's uniform grid (`segment_to_range`,
    qiujihao19/LongVideo-R1@77c87ec verl-tool/verl/verl/utils/reward_score/longvideor1_score.py:78-93): node
    ``(i1..ik)`` starts at sum (i_j - 1) D / w^j and lasts D / w^k, cut at D. For data without our tree's node table."""

    def span(ids: tuple[int, ...]) -> Span | None:
        if not 1 <= len(ids) <= 3 or not all(1 <= i <= width for i in ids):
            return None
        start = sum((i - 1) * duration_s / width ** (j + 1) for j, i in enumerate(ids))
        return start, min(duration_s, start + duration_s / width ** len(ids))

    return span


def node_lookup(spans) -> Callable[[tuple[int, ...]], Span | None]:
    """``ids -> (start, end)`` (None: no such node) from our `Tree`, a table (keys ``(h, m)`` or ``"h,m"``,
    values ``[start, end]``) or such a function."""
    if hasattr(spans, "check") and hasattr(spans, "node"):
        return lambda ids: None if spans.check(ids) else (spans.node(ids).start_s, spans.node(ids).end_s)
    if isinstance(spans, Mapping):
        table = {tuple(int(i) for i in (k.split(",") if isinstance(k, str) else k)): _span(v)
                 for k, v in spans.items()}
        return lambda ids: table.get(tuple(ids))
    return spans


def close_gaps(spans: Sequence, gap_s: float) -> list[Span]:
    """`merge`, then neighbours at most `gap_s` apart joined (the reference's clue-interval merge)."""
    out: list[Span] = []
    for s, e in merge(_span(x) for x in spans):
        if out and s - out[-1][1] <= gap_s:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def location_f1(visited: Sequence, truth: Sequence, gap_s: float = 5.0) -> float:
    """F1 of coverage |V∩G|/|G| and precision |V∩G|/|V| with V and G unions (G gap-closed), so visiting a
    span twice counts it once and F1 <= 1 (the fix of docs/reference-code.md#n1). Equals 2 IoU / (1 + IoU)."""
    j = union_iou([_span(v) for v in visited], close_gaps(truth, gap_s))
    return 2 * j / (1 + j)


def repeat_rate(visits: Sequence[Visit]) -> float:
    """(calls - distinct calls) / distinct calls (the reference's repeat term, over calls that ran)."""
    distinct = len({v.key for v in visits})
    return (len(visits) - distinct) / distinct if distinct else 0.0


def trajectory_reward(trajectory, answer: str, truth_spans: Sequence, spans, *, options: Sequence[str] = (),
                      weights: Mapping[str, float] = WEIGHTS, gap_s: float = 5.0,
                      charge_ancestors: bool = False) -> TrajectoryReward:
    """LongVideo-R1 GRPO reward (`compute_score_wtime_gt`,
    qiujihao19/LongVideo-R1@77c87ec verl-tool/verl/verl/utils/reward_score/longvideor1_score.py:145-238), the
    repetition exploit of docs/reference-code.md#n1 closed.

    * answer: 1 when the final answer gives `answer` (`is_correct`: option letters read robustly,
      docs/reference-code.md#n2),
      else 0; a trajectory without an answer scores 0 here and still gets the location term (as the reference).
    * location: `location_f1` of the nodes visited. Visits: ``get_caption`` of a medium or low node and
      ``video_qa`` of a leaf (it shows the model that leaf) cover their node's span; a node with a visited
      descendant is left out unless `charge_ancestors` (reading a medium caption on the way to its leaf is
      not charged twice). Calls naming no node (`spans`) are no visits.
    * repeat: `repeat_rate`; a repeat is the same tool on the same node (for video_qa, with the same query).
    * total = answer w_a + location w_l - repeat w_r (`WEIGHTS`).

    `spans` gives the nodes' time spans: our `Tree`, a table or a function (see `node_lookup`, `grid_spans`).
    """
    visits, reply = read_trajectory(trajectory)
    lookup = node_lookup(spans)
    visits = [v for v in visits if lookup(v.ids) is not None]
    nodes = {v.ids for v in visits}
    if not charge_ancestors:
        nodes = {n for n in nodes if not any(len(m) > len(n) and m[: len(n)] == n for m in nodes)}
    if isinstance(trajectory, Trace):
        options = options or trajectory.options
    f1 = location_f1([lookup(n) for n in nodes], truth_spans, gap_s) if nodes else 0.0
    rep = repeat_rate(visits)
    right = float(reply is not None and is_correct(reply, answer, options))
    total = weights["answer"] * right + weights["location"] * f1 - weights["repeat"] * rep
    return TrajectoryReward(right, f1, rep, total, reply is not None, len(visits))
