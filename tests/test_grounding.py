"""Spans (readers, overlap measures, traces), scoring grounded tasks, and each benchmark's metrics on
hand-made records whose numbers are worked out by hand."""

from __future__ import annotations

import json

import pytest

from longlens.agents.trace import Step, Trace
from longlens.bench.grounding import (
    iop,
    iou,
    max_over,
    merge,
    parse_span,
    predicted_span,
    union_iou,
)
from longlens.bench.metrics import crr, summarize
from longlens.bench.sample import Sample
from longlens.bench.scorers import score_trace


# ---------------------------------------------------------------- readers
def test_charades_official_rule():
    from longlens.bench.benchmarks.charades import extract_time

    assert extract_time("The event happens in the 24.3 - 30.4 seconds.") == [[24.3, 30.4]]
    assert extract_time("It happens from 10 to 20.") == [[10.0, 20.0]]  # "to" -> "-": a range
    assert extract_time("it starts at 30 and ends at 12") == []  # one candidate sentence: one number, no pair
    assert extract_time("It starts at 30.\nIt ends at 12.") == [[12.0, 30.0]]  # first numbers of two, swapped
    assert extract_time("I see a person at 2.\nThe event starts at 5.5 and ends at 8") == []
    assert extract_time("First 3! Then 7?") == []  # no keyword: no candidate sentence
    assert extract_time("20 - 10 and 1 - 2") == [[10.0, 20.0]]  # every range, the first kept
    assert extract_time("I could not find it") == []
    with pytest.raises(ValueError):
        extract_time("1..2 - 3")  # the official raises here too


@pytest.mark.parametrize("text,duration,span", [
    ("\\boxed{[0:10, 0:20]}", None, (10.0, 20.0)),
    ("The event happens from 12.5 to 20 seconds.", None, (12.5, 20.0)),
    ("12.5 - 20", None, (12.5, 20.0)),
    ("between 1:05 and 1:30", None, (65.0, 90.0)),
    ("I considered 3 - 4 but the answer is 10 - 12", None, (10.0, 12.0)),
    ("[0.2, 0.5]", 100.0, (20.0, 50.0)),
    ("[0.2, 0.5]", None, (0.2, 0.5)),
    ("[0.5, 2]", 100.0, (0.5, 2.0)),
    ("[30, 10]", None, (10.0, 30.0)),
    ("no span here, just 7", None, None),
    ("", 10.0, None),
])
def test_parse_span(text, duration, span):
    assert parse_span(text, duration) == span


# ---------------------------------------------------------------- overlap measures
def test_iou_iop_and_unions():
    assert iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert iou((0, 1), (2, 3)) == 0.0 and iou((5, 5), (5, 5)) == 0.0
    assert iop((0, 10), (5, 15)) == 0.5
    assert iop((3, 3), (0, 5)) == 1.0 and iop((6, 6), (0, 5)) == 0.0  # zero-length prediction: inside or not
    assert max_over((0, 10), [(0, 2), (0, 5)], iou) == 0.5 and max_over(None, [(0, 5)], iou) == 0.0
    assert max_over((0, 10), [], iop) == 0.0
    assert merge([(3, 8), (0, 4), (9, 9.5)]) == [(0, 8), (9, 9.5)]
    assert union_iou([(0, 10)], [(0, 4), (3, 8)]) == pytest.approx(0.8)
    assert union_iou([(0, 2), (1, 3), (10, 12)], [(2, 11)]) == pytest.approx(2 / 12)


def trace(answer, *actions, completion=None, duration=100.0):
    steps = [Step(i, [], None, completion or "", a) for i, a in enumerate(actions, 1)]
    return Trace("Q?", [], {"path": "/v.mp4", "id": "v", "duration_s": duration}, "zoom", "scripted", {}, steps,
                 answer, None, {})


ZOOM = {"kind": "zoom", "start_s": 40.0, "end_s": 30.0}
LAST = {"kind": "zoom", "start_s": 50.0, "end_s": 60.0}
ANSWER = {"kind": "answer", "text": "B", "choice": "B"}


def test_predicted_span_from_answer_then_last_zoom():
    assert predicted_span(trace("from 12.5 to 20 seconds")) == (12.5, 20.0)
    assert predicted_span(trace("[0.1, 0.2]", duration=50.0)) == (5.0, 10.0)
    assert predicted_span(trace("B", ZOOM, ANSWER)) == (30.0, 40.0)
    assert predicted_span(trace("", ZOOM, LAST)) == (50.0, 60.0)  # the forced step's zoom counts
    assert predicted_span(trace("B", ANSWER)) is None


# ---------------------------------------------------------------- score_trace by task
def test_score_trace_by_task():
    opts = ("x", "y", "z")
    choice = Sample("b", "q1", "/v.mp4", "Q?", opts, "B", video_id="v")
    assert score_trace(trace("B"), choice) == {"prediction": "B", "parsed": "B", "correct": True}
    gq = Sample("nextgqa", "q2", "/v.mp4", "Q?", opts, "B", video_id="v", spans=((0.0, 5.0), (30.0, 45.0)),
                task="grounded_choice")
    rec = score_trace(trace("B", ZOOM, ANSWER), gq)
    assert rec == {"prediction": "B", "parsed": "B", "correct": True, "span": [30.0, 40.0], "iou": 10 / 15,
                   "iop": 1.0}
    gr = Sample("charades", "q3", "/v.mp4", "person opens a door", (), None, video_id="v", spans=((10.0, 20.0),),
                task="grounding")
    rec = score_trace(trace("[15, 25]"), gr)
    assert rec == {"prediction": "[15, 25]", "span": [15.0, 25.0], "iou": 5 / 15, "iop": 0.5, "parsed": "span",
                   "correct": False}
    assert score_trace(trace(""), gr)["parsed"] is None and score_trace(trace(""), gr)["iou"] == 0.0
    official = trace("", {"kind": "malformed", "reason": "no box"}, completion="It happens in 12 - 22 seconds.")
    assert score_trace(official, gr, "official")["span"] == [12.0, 22.0]
    assert score_trace(official, gr)["span"] is None  # ours reads the boxed answer or zooms, not free text


# ---------------------------------------------------------------- metrics
def rec(i, video="v", correct=True, parsed="A", task="choice", span=None, truth=(), **cats):
    return {"id": f"q{i}", "video_id": video, "task": task, "categories": cats, "n_options": 4, "truth": "A",
            "parsed": parsed, "correct": correct, "span": list(span) if span else None,
            "truth_spans": [list(t) for t in truth]}


def test_mlvu_m_avg_is_the_mean_of_task_accuracies():
    records = [rec(1, "a"), rec(2, "a"), rec(3, "b"), rec(4, "c", correct=False)]
    for r, t in zip(records, ("plotQA", "plotQA", "plotQA", "needle"), strict=True):
        r["categories"] = {"task": t}
    s = summarize(records, "mlvu")
    assert s["headline"]["name"] == "M-Avg" and s["headline"]["value"] == 0.5
    assert s["metrics"]["accuracy"]["value"] == 0.75 and s["tables"]["task"]["plotQA"]["accuracy"] == 1.0


def test_lvbench_capabilities_use_leaderboard_names_and_count_every_label():
    records = [rec(1, capability=["key information retrieval", "reasoning"]),
               rec(2, capability=["reasoning"], correct=False, parsed="B")]
    table = summarize(records, "lvbench")["tables"]["capability"]
    assert set(table) == {"KIR", "Rea"} and table["Rea"]["accuracy"] == 0.5 and table["Rea"]["n"] == 2


def test_mvbench_headline_is_the_task_mean():
    records = [rec(1), rec(2, correct=False), rec(3)]
    for r, t in zip(records, ("a", "a", "b"), strict=True):
        r["categories"] = {"task": t}
    s = summarize(records, "mvbench")
    assert s["headline"]["value"] == 0.75 and s["metrics"]["accuracy"]["value"] == pytest.approx(2 / 3)


def test_charades_recall_is_inclusive_and_unparsed_is_zero():
    g = dict(task="grounding", parsed="span", correct=False)
    records = [rec(1, "a", span=(0, 10), truth=[(0, 5)], **g), rec(2, "a", span=(0, 10), truth=[(0, 7)], **g),
               rec(3, "b", truth=[(0, 5)], task="grounding", parsed=None, correct=False),
               rec(4, "b", span=(20, 30), truth=[(0, 5)], **g)]
    s = summarize(records, "charades")
    m = s["metrics"]
    assert s["headline"]["name"] == "mIoU" and m["mIoU"]["value"] == pytest.approx(0.3)
    assert (m["R@0.3"]["value"], m["R@0.5"]["value"], m["R@0.7"]["value"]) == (0.5, 0.5, 0.25)
    assert s["unparsed"] == 1 and m["mIoU"]["n"] == 4
    # clustered by video: residual sums +0.6 (a) and -0.6 (b); var = 0.72 / 16 * 2 / 1
    assert s["headline"]["se"] == pytest.approx(0.3)


def test_nextgqa_acc_at_gqa_needs_iop_half_and_a_right_answer():
    g = dict(task="grounded_choice")
    records = [rec(1, "a", span=(0, 10), truth=[(0, 5)], type="CW", **g),  # IoP 0.5, right: counts
               rec(2, "a", span=(0, 10), truth=[(6, 20)], type="CW", **g),  # IoP 0.4, right: does not count
               rec(3, "b", span=(1, 2), truth=[(0, 5)], correct=False, parsed="B", type="TN", **g),
               rec(4, "b", truth=[(0, 5)], type="TN", **g)]  # right, no span
    s = summarize(records, "nextgqa")
    m = {k: v["value"] for k, v in s["metrics"].items()}
    assert s["headline"]["name"] == "Acc@GQA" and m["Acc@GQA"] == 0.25 and m["Acc@QA"] == 0.75
    assert m["mIoP"] == pytest.approx(0.475) and (m["IoP@0.3"], m["IoP@0.5"]) == (0.75, 0.5)
    assert m["mIoU"] == pytest.approx(0.225) and (m["IoU@0.3"], m["IoU@0.5"]) == (0.25, 0.25)
    assert s["unparsed_spans"] == 1
    assert s["tables"]["type"]["CW"]["Acc@GQA"] == 0.5 and s["tables"]["type"]["TN"]["accuracy"] == 0.5


def test_cgbench_union_iou_rec_and_acc_at_iou():
    g = dict(task="grounded_choice")
    records = [rec(1, "a", span=(0, 10), truth=[(0, 4), (3, 8)], duration="40-50", **g),  # IoU 0.8
               rec(2, "a", span=(0, 10), truth=[(5, 10), (20, 30)], correct=False, parsed="B", duration="40-50",
                   **g),  # IoU 5/20
               rec(3, "b", truth=[(0, 5)], duration="60+", **g),  # no span
               rec(4, "b", span=(0, 10), truth=[(0, 3)], duration="60+", **g)]  # IoU 0.3: counts at 0.3 (>=)
    s = summarize(records, "cgbench")
    m = {k: v["value"] for k, v in s["metrics"].items()}
    assert s["headline"]["name"] == "long_acc" and m["long_acc"] == 0.75
    assert m["mIoU"] == pytest.approx(0.3375) and m["rec@IoU"] == pytest.approx(0.5)
    assert m["acc@IoU"] == pytest.approx(0.4)
    assert s["tables"]["duration"]["60+"]["rec@IoU"] == pytest.approx(0.3)
    assert crr(0.5, 0.8) == 0.625 and crr(0.9, 0.8) == 1.0 and crr(0.5, 0.0) is None


def test_drop_policy_and_shape_for_plain_choice():
    records = [rec(1, duration="short"), rec(2, parsed=None, correct=False, duration="long")]
    s = summarize(records, "videomme", policy="drop")
    assert s["headline"] == {"name": "accuracy", "value": 1.0, "se": None, "n": 1} and s["unparsed"] == 1  # one video
    assert set(s["tables"]) == {"duration", "domain", "task_type", "sub_category"}
    assert s["tables"]["duration"]["long"] == {"accuracy": 0.0, "n": 0, "se": None, "unparsed": 1}


def test_breakdown_rows_in_natural_order():
    records = [{"id": f"q{i}", "video_id": f"v{i}", "task": "choice", "parsed": "A", "correct": True,
                "categories": {"kind": "text", "length": length, "depth": "0-20%"}}
               for i, length in enumerate(["10 min", "5 min", "60 min", "30 min"])]
    assert list(summarize(records, "needles")["tables"]["length"]) == ["5 min", "10 min", "30 min", "60 min"]


def test_iou_and_iop_equal_nextgqa_official_get_tiou():
    """Per pair, bit for bit, the official get_tIoU (NExT-GQA eval_ground.py; disjoint IoU clipped at 0 as its max
    over truths does), including pairs where lenA + lenB - overlap would round across 0.3 or 0.5."""
    from pathlib import Path

    from longlens.bench.grounding import iop, iou

    pairs = json.loads((Path(__file__).parent / "data" / "official" / "nextgqa" / "get_tiou.json").read_text())
    for p in pairs:
        gt, pred = tuple(p["gt"]), tuple(p["pred"])
        official_iou, official_iop = p["official"]
        assert iou(pred, gt) == max(official_iou, 0.0), p
        assert iop(pred, gt) == max(official_iop, 0.0), p
