"""Benchmark adapters on hand-written native records, extractors on the quirk table, scorers."""

from __future__ import annotations

import json

import pytest

from longlens.bench import accuracy, breakdown, macro_average, score_choice
from longlens.bench.benchmarks.lvbench import load as load_lvbench
from longlens.bench.benchmarks.mlvu import load as load_mlvu
from longlens.bench.benchmarks.mlvu import mlvu_official
from longlens.bench.benchmarks.videomme import load as load_videomme
from longlens.bench.benchmarks.videomme import videomme_official
from longlens.bench.extract import robust
from longlens.bench.sample import Sample
from longlens.errors import LongLensError

OPTS = ("Black.", "Gray.", "Green.", "Brown.")
# reply: (Video-MME official, MLVU official, ours), options A Black. .. D Brown.: the official readers are
# BradyFU/Video-MME eval_your_results.py (extract_characters_regex) and JUNJIE99/MLVU@fd060c1
# evaluation/multiple_choice_evaluation/choice_bench.py (check_ans); docs/benchmarks-fidelity.md
# (MLVU's official reader is proved against the official script in test_official_mlvu.py)
TABLE = {
    "A": ("A", "A", "A"),
    "(A)": ("A", "A", "A"),
    "A.": ("A", "A.", "A"),
    "A. Black.": ("A", "A. Black.", "A"),
    "A) Black": ("A", "A", "A"),
    "Black.": ("B", "Black.", "A"),
    "Based on the video, the answer is C": ("B", "Based on the video, the answer is C", "C"),
    "Best answer: D": ("B", "Best answer: D", "D"),
    "Gray": ("", "Gray", "B"),
    "a man is walking": ("", "a man is walking", None),
}


@pytest.mark.parametrize("reply", list(TABLE))
def test_extractors_reproduce_the_quirk_table(reply):
    official, mlvu, ours = TABLE[reply]
    assert videomme_official(reply) == official
    assert mlvu_official(reply) == mlvu
    assert robust(reply, OPTS) == ours


def test_long_reply_without_a_capital_letter_is_unparsed_officially():
    assert videomme_official("it is the one that is shown near the end of the video clip here") == ""
    assert robust("<think>The sign is green.</think><answer>C</answer>", OPTS) == "C"
    assert robust("The final answer is \\boxed{D}", OPTS) == "D"


def sample(i, answer="A", video="v1", **cats):
    return Sample("x", f"q{i}", f"/videos/{video}.mp4", "Q?", OPTS, answer, video_id=video, categories=cats)


def test_unparsed_policies_and_clustered_error():
    samples = {s.id: s for s in [sample(1), sample(2), sample(3, video="v2"), sample(4, video="v2")]}
    replies = {"q1": "A", "q2": "The answer is A", "q3": "no idea at all", "q4": "(A)"}
    scores = [score_choice(replies[k], s) for k, s in samples.items()]
    wrong = accuracy(scores, policy="wrong")
    drop = accuracy(scores, policy="drop")
    assert (wrong.accuracy, wrong.n, wrong.unparsed) == (0.75, 4, 1)
    assert (drop.accuracy, drop.n, drop.unparsed) == (1.0, 3, 1)
    rnd = accuracy(scores, samples, policy="random", seed=1)
    assert rnd.n == 4 and rnd == accuracy(scores, samples, policy="random", seed=1)
    assert wrong.se == pytest.approx(0.25)  # clustered by video: residual sums +0.5 and -0.5
    official = [score_choice(replies[k], s, "videomme") for k, s in samples.items()]
    assert accuracy(official, policy="drop").unparsed == 1


def test_breakdown_counts_multi_label_questions_in_each_group():
    samples = {s.id: s for s in [sample(1, capability=["ER", "TG"]), sample(2, capability=["TG"])]}
    scores = [score_choice("A", samples["q1"]), score_choice("C", samples["q2"])]
    per = breakdown(scores, samples, "capability")
    assert per["ER"].accuracy == 1.0 and per["TG"].accuracy == 0.5 and per["TG"].n == 2
    assert macro_average(per) == 0.75


def test_videomme_adapter(tmp_path):
    rows = [{"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity & History",
             "url": "u", "videoID": "abc", "question_id": "001-1", "task_type": "Counting Problem",
             "question": "Which is most?", "options": ["A. Apples.", "B. Candles.", "C. Berries.", "D. Same."],
             "answer": "C"},
            {"video_id": "002", "duration": "long", "domain": "Sports Competition", "sub_category": "x",
             "url": "u", "videoID": "missing", "question_id": "002-1", "task_type": "OCR Problems",
             "question": "What?", "options": ["A. a", "B. b", "C. c", "D. d"], "answer": "A"}]
    (tmp_path / "videomme.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "abc.mp4").write_bytes(b"")
    loaded = load_videomme(tmp_path / "videomme.jsonl", tmp_path / "data")
    a, b = loaded.samples
    assert a.id == "001-1" and a.options == ("Apples.", "Candles.", "Berries.", "Same.") and a.answer_text == "Berries."
    assert a.video.endswith("data/abc.mp4") and a.categories["duration"] == "short"
    assert loaded.missing == [str((tmp_path / "data" / "missing.mp4").resolve())] and b.video == loaded.missing[0]
    assert [s.id for s in load_videomme(tmp_path / "videomme.jsonl", tmp_path / "data", ("long",)).samples] == ["002-1"]
    with pytest.raises(LongLensError, match="no such annotation file"):
        load_videomme(tmp_path / "nope.jsonl", tmp_path)


def test_lvbench_adapter(tmp_path):
    line = {"key": "yt1", "type": "sport", "video_info": {"duration_minutes": 60},
            "qa": [{"uid": "7", "question": "What happens?\n(A) run\n(B) jump\n(C) swim\n(D) sit", "answer": "B",
                    "question_type": ["key information retrieval", "reasoning"], "time_reference": "00:15-01:19"}]}
    (tmp_path / "video_info.meta.jsonl").write_text(json.dumps(line) + "\n")
    (s,) = load_lvbench(tmp_path / "video_info.meta.jsonl", tmp_path).samples
    assert s.question == "What happens?" and s.options == ("run", "jump", "swim", "sit") and s.answer == "B"
    assert s.spans == ((15.0, 79.0),) and s.categories["capability"] == ["key information retrieval", "reasoning"]


def test_mlvu_adapter_and_paths_stay_inside(tmp_path):
    (tmp_path / "json").mkdir()
    for k, task in enumerate(["plotQA", "needle", "ego", "count", "order", "anomaly_reco", "topic_reasoning"], 1):
        rec = [{"video": f"v{k}.mp4", "duration": 600, "question": "Colour?", "candidates": ["Red", "Black"],
                "answer": "Black", "question_type": task}]
        (tmp_path / "json" / f"{k}_{task}.json").write_text(json.dumps(rec))
    loaded = load_mlvu(tmp_path / "json", tmp_path / "video")
    assert len(loaded.samples) == 7 and loaded.samples[0].answer == "B" and len(loaded.missing) == 7
    assert loaded.missing[0].endswith("video/1_plotQA/v1.mp4")
    bad = [{"video": "../../etc/passwd", "duration": 1, "question": "q", "candidates": ["a"], "answer": "a"}]
    (tmp_path / "json" / "1_plotQA.json").write_text(json.dumps(bad))
    with pytest.raises(LongLensError, match="outside the videos folder"):
        load_mlvu(tmp_path / "json", tmp_path / "video")


# ---------------------------------------------------------------- the runner, end to end
@pytest.fixture(scope="module")
def needle_suite(tmp_path_factory):
    from media import needle_suite as make_suite

    return make_suite(tmp_path_factory.mktemp("suite"))


def eval_cmd(suite, out, script, *extra):
    return ["eval", "needles", "--data", str(suite), "--out", str(out), "--backend", "scripted", "--script",
            str(script), "--max-steps", "1", "--cache-dir", str(out.parent / "cache"), *extra]


def test_eval_runs_resumes_and_refuses_another_config(needle_suite, tmp_path, capsys):
    from longlens.bench.benchmarks.needles import load as load_needles
    from longlens.cli.main import main

    samples = load_needles(needle_suite).samples
    assert len(samples) == 4 and all(s.answer in "ABCD" for s in samples)
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([f"I get the answer.\n\n\\boxed{{{samples[0].answer}}}", "no idea"] * 4))
    out = tmp_path / "run"
    assert main(eval_cmd(needle_suite, out, script, "--limit", "2")) == 0
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [s.id for s in samples[:2]]
    assert records[0]["correct"] and records[1]["parsed"] is None
    assert (out / records[0]["trace"]).exists()
    # resume: the same command without --limit answers only the two others
    assert main(eval_cmd(needle_suite, out, script)) == 0
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(s.id for s in samples) and len(records) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answered"] == 4 and summary["unparsed"] >= 1 and summary["policy"] == "wrong"
    # a torn last line (kill -9 mid-write) is cut, not duplicated or merged
    with (out / "results.jsonl").open("a") as f:
        f.write('{"id": "half')
    assert main(eval_cmd(needle_suite, out, script)) == 0
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(x) for x in lines)
    # another configuration does not mix in
    assert main(eval_cmd(needle_suite, out, script, "--max-steps", "2")) == 2
    assert "another configuration" in capsys.readouterr().err


def test_eval_counts_missing_videos_and_runs_concurrently(needle_suite, tmp_path, capsys):
    import shutil

    from longlens.cli.main import main

    suite = tmp_path / "suite"
    shutil.copytree(needle_suite, suite)
    (suite / "n2.mp4").unlink()
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["\\boxed{A}"] * 8))
    out = tmp_path / "run"
    assert main(eval_cmd(suite, out, script, "--concurrency", "2")) == 0
    captured = capsys.readouterr()
    assert "missing video:" in captured.err and "n2.mp4" in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing_videos"] == 1 and summary["answered"] == 2 and summary["questions"] == 4


def test_standard_error_needs_two_videos():
    one = [sample(1), sample(2)]
    scores = [score_choice("A", one[0]), score_choice("B", one[1])]
    assert accuracy(scores).se is None  # one video: not estimable, rather than a false 0
    two = [*scores, score_choice("A", sample(3, video="v2"))]
    assert accuracy(two).se > 0
