"""Training rewards on hand-made completions: LOVE-R1's answer, zoom and format rewards, LongVideo-R1's
trajectory reward (with the reference's repetition exploit shown and closed), masked advantages, and the
TRL reward-function wrappers."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longlens.agents.navigate.tree import build_tree
from longlens.agents.trace import Step, Trace
from longlens.bench.grounding import merge
from longlens.rewards import (
    answer_reward,
    close_gaps,
    format_reward,
    grid_spans,
    is_correct,
    location_f1,
    node_lookup,
    read_trajectory,
    repeat_rate,
    trajectory_reward,
    zoom_check,
    zoom_reward,
)
from longlens.train.grpo_core import group_advantages

ZOOM = "I need to zoom in on the video.\n\n"
ANSWER = "I get the answer.\n\n"


def box(content: str) -> str:
    return f"The key moment is early. \\boxed{{{content}}}"


# ---------------------------------------------------------------- answer
# (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:1133-1139, 1242-1251)
@pytest.mark.parametrize("completion,truth,reward", [
    (ANSWER + box("B"), "B", 1.0),
    (ANSWER + box("C"), "B", 0.0),
    (box("b"), "B", 1.0),
    (box("(B) a red car"), "B", 1.0),
    (box("B"), "<answer>B</answer>", 1.0),  # the reference's solution format
    (box("A") + " on reflection " + box("B"), "B", 1.0),  # the last box counts
    (box("Because of the car, C"), "B", 0.0),  # the reference read the first character (B) and paid
    ("I think it is B.", "B", None),  # no box: masked
    (box(""), "B", None),
    (ZOOM + box("[10, 20]"), "B", None),  # a zoom at the last step: masked
])
def test_answer_reward(completion, truth, reward):
    assert answer_reward(completion, truth) == reward


def test_answer_by_option_text_and_open_truth():
    assert answer_reward(box("a red car"), "B", ["a blue car", "a red car"]) == 1.0
    assert answer_reward(box("a red car"), "A", ["a blue car", "a red car"]) == 0.0
    assert is_correct("Paris ", "paris") and not is_correct("", "")


def _trace(steps, answer, options=("x", "y", "z")):
    return Trace(question="q", options=list(options), video={"duration_s": 100.0}, agent="zoom", backend="fake",
                 config={}, steps=steps, answer=answer, choice=None, totals={})


def test_answer_reward_reads_a_trace_at_its_last_step():
    zoom = Step(1, [], None, box("[1, 9]"), {"kind": "zoom", "start_s": 1.0, "end_s": 9.0})
    answered = Step(2, [], ANSWER, box("C"), {"kind": "answer", "text": "C", "choice": "C"})
    broken = Step(2, [], ANSWER, "no box", {"kind": "malformed", "reason": "no box"})
    assert answer_reward(_trace([zoom, answered], "C"), "C") == 1.0
    assert answer_reward(_trace([zoom, answered], "C"), "A") == 0.0
    assert answer_reward(_trace([zoom, broken], ""), "C") is None
    assert answer_reward(_trace([], ""), "C") is None


# ---------------------------------------------------------------- zoom
# (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:1118-1124, 1160, 1271;
# docs/reference-code.md#z8)
@pytest.mark.parametrize("clip,reward", [
    ("[95, 105]", 1.0),  # overlaps [100, 110]
    ("[100, 110]", 1.0),
    ("[0:01:35, 1:45]", 1.0),  # clock times, one parser
    ("[110, 120]", 0.0),  # touching: IoU 0
    ("[80, 100]", 0.0),
    ("[200, 230]", 0.0),  # disjoint
    ("[105, 95]", 0.0),  # reversed: not swapped
    ("[100, 100]", 0.0),  # zero length
    ("[100, 100.5]", 0.0),  # under 1 s: fewer than 2 frames at 2 fps
    ("[60, 130]", 0.0),  # longer than 60 s
    ("[10, 20, 30]", 0.0),  # not an interval
])
def test_zoom_reward(clip, reward):
    assert zoom_reward(ZOOM + box(clip), [[100, 110]], duration_s=3600) == reward


def test_zoom_bounds_clips_and_truth_guards():
    truth = [(40, 50)]
    assert zoom_reward(box("[30, 60]"), truth, duration_s=100) == 1.0
    assert zoom_reward(box("[30, 90]"), truth, duration_s=100) == 0.0  # longer than D/2
    assert zoom_reward(box("[30, 90]"), truth) == 1.0  # no duration: only the 60 s cap
    assert zoom_reward(box("[95, 101]"), [(96, 99)], duration_s=100) == 1.0  # the end may pass D by 1 s
    assert zoom_reward(box("[95, 102]"), [(96, 99)], duration_s=100) == 0.0
    assert zoom_reward(box("[30, 60]"), truth, duration_s=100, clips=[[31, 61]]) == 0.0  # IoU 0.94 > 0.7
    assert zoom_reward(box("[30, 60]"), truth, duration_s=100, clips=[[45, 75]]) == 1.0  # IoU 0.33
    assert zoom_reward(box("[30, 60]"), [(50, 40)], duration_s=100) == 1.0  # a reversed truth span is read ordered
    assert zoom_reward(box("[30, 60]"), [(45, 45)], duration_s=100) == 0.0  # a zero-length truth span: IoU 0
    assert zoom_reward(box("[30, 60]"), [], duration_s=100) == 0.0
    assert zoom_reward("no box here", truth) == 0.0 and zoom_reward(box("B"), truth) == 0.0
    assert "reversed" in zoom_check(box("[60, 30]"))
    assert zoom_check(box("[30, 60]"), 100) == (30.0, 60.0)


# ---------------------------------------------------------------- format
# (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:980-982, 1105-1164; docs/reference-code.md#z6)
@pytest.mark.parametrize("completion,step,reward", [
    (box("[30, 60]"), "zoom", 1.0),
    (box("[60, 30]"), "zoom", 0.0),
    (box("B"), "zoom", 0.0),
    (box("B"), "answer", 1.0),
    (box("a red car"), "answer", 0.0),  # not an option letter
    (box("[30, 60]"), "answer", 0.0),
    (ZOOM + box("[30, 60]"), "free", 1.0),
    ("  " + ANSWER + box("C"), "free", 1.0),
    (ZOOM + box("C"), "free", 0.0),  # says zoom, answers
    (ANSWER + box("[30, 60]"), "free", 0.0),
    (box("C"), "free", 0.0),  # no prefix: the reference still paid 1
])
def test_format_reward(completion, step, reward):
    assert format_reward(completion, duration_s=100, step=step) == reward


def test_format_reward_rejects_an_unknown_step():
    with pytest.raises(ValueError, match="step"):
        format_reward(box("B"), step="final")


# ---------------------------------------------------------------- LongVideo-R1
# (qiujihao19/LongVideo-R1@77c87ec verl-tool/verl/verl/utils/reward_score/longvideor1_score.py:145-238;
# docs/reference-code.md#n1)
D, W = 3600.0, 6
GRID = grid_spans(D, W)
GT = [[100, 110]]  # inside leaf (1, 2, 1) = [100, 116.7] and its medium parent (1, 2) = [100, 200]


def turns(*calls: str, answer: str | None = "B") -> list[str]:
    out = [f"<think>look</think><tool>{c}</tool>" for c in calls]
    return out + ([f"<think>enough</think><answer>{answer}</answer>"] if answer is not None else [])


def reference_score(visits: list[tuple], truth, answer_right: float) -> float:
    """The reference reward (`compute_score_wtime_gt`, longvideor1_score.py:205-224), written out: overlaps summed
    over every visit with multiplicity, the visited length as a union, repeat over the visit list."""
    spans = [GRID(v) for v in visits]
    truth = close_gaps(truth, 5.0)
    inter = sum(max(0.0, min(v[1], g[1]) - max(v[0], g[0])) for v in spans for g in truth)
    cov = inter / sum(e - s for s, e in truth)
    prec = inter / sum(e - s for s, e in merge(spans))
    f1 = 2 * cov * prec / (cov + prec) if cov + prec else 0.0
    repeat = (len(visits) - len(set(visits))) / len(set(visits))
    return answer_right + f1 - 0.2 * repeat


def test_grid_matches_the_reference_segment_to_range():
    assert GRID((1, 2, 1)) == pytest.approx((100.0, 116.667), abs=1e-3)
    assert GRID((1, 2)) == (100.0, 200.0)
    assert GRID((6,)) == (3000.0, 3600.0)
    assert GRID((7, 1)) is None and GRID((1, 2, 3, 4)) is None


def test_the_reference_exploit_pays_and_ours_does_not():
    once = trajectory_reward(turns("get_caption((1, 2, 1))"), "B", GT, GRID)
    assert reference_score([(1, 2, 1)], GT, 1.0) == pytest.approx(1.75)  # one visit of the right leaf
    assert once.location == pytest.approx(0.75) and once.total == pytest.approx(1.75)
    for k in (2, 5):
        calls = ["get_caption((1, 2, 1))"] * k
        ref = reference_score([(1, 2, 1)] * k, GT, 1.0)
        ours = trajectory_reward(turns(*calls), "B", GT, GRID)
        assert ref > once.total  # revisiting pays in the reference: 2.3 for two visits
        assert ours.location == pytest.approx(0.75)  # the union: a revisit adds nothing
        assert ours.repeat == k - 1 and ours.total == pytest.approx(1.75 - 0.2 * (k - 1))
    assert reference_score([(1, 2, 1)] * 2, GT, 1.0) == pytest.approx(2.3)


def test_descending_through_the_parent_is_not_charged_unless_asked():
    path = turns("get_caption((1, 2))", "get_caption((1, 2, 1))")
    assert reference_score([(1, 2), (1, 2, 1)], GT, 1.0) == pytest.approx(1.364, abs=1e-3)
    assert trajectory_reward(path, "B", GT, GRID).location == pytest.approx(0.75)
    charged = trajectory_reward(path, "B", GT, GRID, charge_ancestors=True)
    assert charged.location == pytest.approx(2 * 0.1 / 1.1)  # union [100, 200]: IoU 0.1
    wide = trajectory_reward(turns("get_caption((1, 3))"), "B", GT, GRID)  # a medium node elsewhere
    assert wide.location == 0.0 and wide.total == 1.0


def test_video_qa_visits_and_repeats():
    leaf = 'video_qa((1, 2, 1), "what colour is the car?")'
    both = trajectory_reward(turns("get_caption((1, 2, 1))", leaf), "B", GT, GRID)
    assert both.calls == 2 and both.repeat == 0.0 and both.location == pytest.approx(0.75)
    alone = trajectory_reward(turns(leaf), "B", GT, GRID)  # video_qa alone visits its leaf
    assert alone.location == pytest.approx(0.75)
    again = trajectory_reward(turns(leaf, 'video_qa((1, 2, 1), "What colour is  the car?")',
                                    'video_qa((1, 2, 1), "who drives?")'), "B", GT, GRID)
    assert again.repeat == pytest.approx(0.5)  # 3 calls, 2 distinct: the same query again is a repeat


def test_calls_that_name_no_node_are_no_visits():
    bad = turns("get_caption((9, 9, 9))", "get_caption((1,))", "video_qa((1, 2, 1), what colour)",
                "get_caption((1, 2, 1))")
    r = trajectory_reward(bad, "B", GT, GRID)
    assert r.calls == 1 and r.location == pytest.approx(0.75)


def test_answers_and_trajectory_forms():
    wrong = trajectory_reward(turns("get_caption((1, 2, 1))", answer="C"), "B", GT, GRID)
    assert wrong.answer == 0.0 and wrong.answered and wrong.total == pytest.approx(0.75)
    unanswered = trajectory_reward(turns("get_caption((1, 2, 1))", answer=None), "B", GT, GRID)
    assert not unanswered.answered and unanswered.total == pytest.approx(0.75)  # location still paid
    assert trajectory_reward(turns(answer="The answer is (B)"), "B", GT, GRID).total == 1.0
    # turns after the first answer did not run
    late = turns(answer="B") + ["<think>x</think><tool>get_caption((1, 2, 1))</tool>"]
    assert read_trajectory(late) == ([], "B")
    # one string: every <tool>, the last <answer> (the reference's response string)
    text = "".join(turns("get_caption((1, 2, 1))", answer="A")) + "user ... <answer>B</answer>"
    visits, reply = read_trajectory(text)
    assert [v.ids for v in visits] == [(1, 2, 1)] and reply == "B"
    chat = [{"role": "assistant", "content": t} for t in turns("get_caption((1, 2, 1))")]
    chat.insert(1, {"role": "user", "content": "<tool>get_caption((1, 3, 1))</tool>"})  # observations are skipped
    assert trajectory_reward(chat, "B", GT, GRID).total == pytest.approx(1.75)


def test_a_navigate_trace_and_our_tree():
    tree = build_tree(SimpleNamespace(n_frames=64, fps=1.0, times_s=np.arange(64.0), duration_s=64.0), 4)
    tools = [{"name": "get_caption", "ids": [1, 2], "node": "1,2"},
             {"name": "get_caption", "ids": [1, 2, 3], "node": "1,2,3"},
             {"name": "video_qa", "ids": [1, 2, 3], "node": "1,2,3", "query": "who?"}]
    steps = [Step(i + 1, [], None, "", {"kind": "tool"}, tool=t) for i, t in enumerate(tools)]
    steps.append(Step(4, [], None, "", {"kind": "answer", "answer": "y"}))
    trace = Trace(question="q", options=["x", "y"], video={}, agent="navigate", backend="fake", config={},
                  steps=steps, answer="y", choice="B", totals={})
    r = trajectory_reward(trace, "B", [[6, 7]], tree, gap_s=0.0)  # leaf (1, 2, 3) = [6, 7]; "y" is option B
    assert (r.answer, r.location, r.repeat, r.calls) == (1.0, 1.0, 0.0, 3)
    table = {"1,2,3": [6, 7], (1, 2): [4, 8]}
    assert node_lookup(table)((1, 2)) == (4.0, 8.0) and node_lookup(tree)((5, 1)) is None


def test_gap_closing_and_location_f1():
    assert close_gaps([[113, 120], [100, 110], [130, 131]], 5.0) == [(100.0, 120.0), (130.0, 131.0)]
    assert location_f1([(100, 120)], [[100, 110], [113, 120]]) == 1.0  # the 3 s gap is part of the truth
    assert location_f1([(100, 120)], [[100, 110], [113, 120]], gap_s=0.0) == pytest.approx(2 * 0.85 / 1.85)
    assert location_f1([(0, 10), (0, 10), (0, 10)], [[0, 10]]) == 1.0
    assert location_f1([], [[0, 10]]) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, W), st.integers(1, W), st.integers(1, W)), min_size=1, max_size=12),
       st.integers(0, 3500))
def test_revisits_never_push_location_above_one(leaves, start):
    calls = [f"get_caption({leaf})" for leaf in leaves]
    r = trajectory_reward(turns(*calls), "B", [[start, start + 20]], GRID)
    assert 0.0 <= r.location <= 1.0 and r.total <= 2.0
    assert r.repeat == repeat_rate(read_trajectory(turns(*calls))[0])


# ---------------------------------------------------------------- advantages with masking
# (HumanMLLM/LOVE-R1@aa1facb src/r1-v/src/open_r1/trainer/grpo_trainer.py:1375-1423; docs/reference-code.md#z9)
def test_group_advantages_leave_masked_rollouts_out():
    adv = group_advantages([1.0, 0.0, None, 1.0, None, None, 2.0, None], 4)
    std = (1 / 3) ** 0.5  # unbiased std of 1, 0, 1
    assert adv[:4] == pytest.approx([(1 / 3) / (std + 1e-4), -(2 / 3) / (std + 1e-4), 0.0, (1 / 3) / (std + 1e-4)])
    assert adv[4:] == [0.0, 0.0, 0.0, 0.0]  # one unmasked rollout: advantage 0
    assert group_advantages([None, None], 2) == [0.0, 0.0]
    with pytest.raises(ValueError):
        group_advantages([1.0, 0.0, 1.0], 2)


def test_trajectory_reward_reads_chat_turns_one_string_and_a_node_table():
    chat = [{"role": "assistant", "content": t} for t in turns("get_caption((1, 2, 1))")]
    one_string = "".join(turns("get_caption((1, 2, 1))", "get_caption((1, 2, 1))"))
    assert trajectory_reward(chat, "B", GT, GRID).total == pytest.approx(1.75)
    assert trajectory_reward(one_string, "B", GT, GRID).total == pytest.approx(1.55)
    table = {"1,2,1": [100, 116.7]}
    assert trajectory_reward(chat, "B", GT, table).total == pytest.approx(1 + 2 * (10 / 16.7) / (1 + 10 / 16.7))


def test_rewards_need_neither_trl_nor_torch():
    code = "import sys, longlens.rewards; print(sorted({'trl', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
