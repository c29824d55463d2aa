"""Native-format adapters (LongVideoBench, MVBench, CG-Bench, NExT-GQA, Charades-STA, EgoSchema) on small
hand-written records, and the official letter extractors on replies in many styles (each benchmark's official
scorer as its module's ``official_source`` names it; docs/benchmarks-fidelity.md)."""

from __future__ import annotations

import csv
import json

import pytest

from longlens.bench import LOADERS
from longlens.bench.benchmarks.cgbench import duration_bin as cgbench_duration_bin
from longlens.bench.benchmarks.cgbench import load as load_cgbench
from longlens.bench.benchmarks.cgbench import long_acc_result
from longlens.bench.benchmarks.charades import load as load_charades
from longlens.bench.benchmarks.egoschema import egoschema_official
from longlens.bench.benchmarks.egoschema import load as load_egoschema
from longlens.bench.benchmarks.longvideobench import load as load_longvideobench
from longlens.bench.benchmarks.longvideobench import longvideobench_official
from longlens.bench.benchmarks.mvbench import load as load_mvbench
from longlens.bench.benchmarks.mvbench import mvbench_official
from longlens.bench.benchmarks.nextgqa import load as load_nextgqa
from longlens.bench.sample import Sample
from longlens.bench.scorers import EXTRACTORS
from longlens.errors import LongLensError


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_every_new_benchmark_is_registered():
    for name in ("longvideobench", "mvbench", "cgbench", "nextgqa", "charades", "egoschema"):
        assert name in LOADERS
    for name in ("longvideobench", "mvbench", "egoschema", "cgbench", "lvbench", "nextgqa"):
        assert name in EXTRACTORS


# ---------------------------------------------------------------- LongVideoBench
def test_longvideobench_json_and_rows(tmp_path):
    touch(tmp_path / "videos" / "v1.mp4")
    val = [{"id": "86CxyhFV9MI_0", "video_id": "v1", "video_path": "v1.mp4", "question": "Which shirt?",
            "candidates": ["red", "blue", "green"], "correct_choice": 2, "duration": 412.3, "duration_group": 600,
            "question_category": "T3O"}]
    (tmp_path / "lvb_val.json").write_text(json.dumps(val))
    loaded = load_longvideobench(tmp_path / "lvb_val.json", tmp_path / "videos")
    (s,) = loaded.samples
    assert (s.id, s.options, s.answer, s.duration_s) == ("86CxyhFV9MI_0", ("red", "blue", "green"), "C", 412.3)
    assert s.categories == {"duration_group": "600", "question_category": "T3O"} and loaded.missing == []
    row = {"id": "x_1", "video_id": "v2", "video_path": "v2.mp4", "question": "Q?", "option0": "a", "option1": "b",
           "option2": "c", "option3": "N/A", "option4": "N/A", "correct_choice": 1, "duration": 12.0,
           "duration_group": 15, "question_category": "S2E"}
    (tmp_path / "rows.jsonl").write_text(json.dumps(row) + "\n")
    loaded = load_longvideobench(tmp_path / "rows.jsonl", tmp_path / "videos")
    assert loaded.samples[0].options == ("a", "b", "c") and loaded.samples[0].answer == "B"
    assert loaded.missing == [str((tmp_path / "videos" / "v2.mp4").resolve())]
    (tmp_path / "bad.jsonl").write_text(json.dumps({**row, "correct_choice": 3}) + "\n")
    odd = load_longvideobench(tmp_path / "bad.jsonl", tmp_path / "videos")  # kept, never right, counted
    assert odd.samples[0].answer == "@" and "1 record(s)" in odd.notes[0]
    (tmp_path / "esc.jsonl").write_text(json.dumps({**row, "video_path": "../../secret.mp4"}) + "\n")
    with pytest.raises(LongLensError, match="outside the videos folder"):
        load_longvideobench(tmp_path / "esc.jsonl", tmp_path / "videos")


# ---------------------------------------------------------------- MVBench
def test_mvbench_folders_answers_and_fallbacks(tmp_path):
    (tmp_path / "json").mkdir()
    seq = [{"video": "ZS9XR.mp4", "question": "What happened after?", "candidates": ["Ate.", "Slept.", "Ran."],
            "answer": "Slept.", "start": 11.1, "end": 19.6},
           {"video": "GONE.mp4", "question": "Then?", "candidates": ["x", "y"], "answer": "x"}]
    anto = [{"video": "123.webm", "question": "Opposite?", "candidates": ["up", "down"], "answer": "down"}]
    odd = [{"video": "z.mp4", "question": "?", "candidates": ["p", "q"], "answer": "q"}]
    (tmp_path / "json" / "action_sequence.json").write_text(json.dumps(seq))
    (tmp_path / "json" / "action_antonym.json").write_text(json.dumps(anto))
    (tmp_path / "json" / "my_task.json").write_text(json.dumps(odd))
    root = tmp_path / "video"
    touch(root / "star" / "Charades_segment" / "ZS9XR.mp4")  # the pre-cut lmms-eval folder wins
    touch(root / "star" / "Charades_v1_480" / "ZS9XR.mp4")
    touch(root / "ssv2_video_mp4" / "123.mp4")  # lmms-eval converted .webm to .mp4
    touch(root / "z.mp4")  # unknown task: the root itself
    loaded = load_mvbench(tmp_path / "json", root)
    by_id = {s.id: s for s in loaded.samples}
    assert sorted(by_id) == ["action_antonym-0", "action_sequence-0", "action_sequence-1", "my_task-0"]
    a = by_id["action_sequence-0"]
    assert a.answer == "B" and a.categories == {"task": "action_sequence"} and a.raw["start"] == 11.1
    assert a.video.endswith("star/Charades_segment/ZS9XR.mp4")
    anto = by_id["action_antonym-0"]
    assert anto.video.endswith("ssv2_video_mp4/123.mp4") and anto.answer == "B"
    assert by_id["my_task-0"].video.endswith("video/z.mp4")
    assert loaded.missing == [str((root / "star" / "Charades_v1_480" / "GONE.mp4").resolve())]
    (tmp_path / "json" / "my_task.json").write_text(json.dumps([{**odd[0], "answer": "r"}]))
    kept = load_mvbench(tmp_path / "json", root)  # an answer that is no candidate: kept, never right, counted
    assert {x.id: x for x in kept.samples}["my_task-0"].answer == "@" and "my_task.json#0" in kept.notes[0]
    (tmp_path / "json" / "my_task.json").write_text(json.dumps([{**odd[0], "video": "../../../etc/passwd"}]))
    with pytest.raises(LongLensError, match="outside the videos folder"):
        load_mvbench(tmp_path / "json", root)
    with pytest.raises(LongLensError, match="MVBench json folder"):
        load_mvbench(tmp_path / "nothing", root)


# ---------------------------------------------------------------- CG-Bench
def test_cgbench_records_bins_and_spans(tmp_path):
    recs = [{"qid": 7, "video_uid": "u1", "duration": 2731.0, "domain": "Life Record", "sub_category": "Event",
             "question": "What?", "choices": ["a", "b", "c", "d", "e"], "right_answer": "C", "answer": "free text",
             "clue_intervals": [[512.0, 530.5], [1404.2, 1410.0]]},
            {"qid": 8, "video_uid": "u2", "duration": 4000, "domain": "Sports", "sub_category": "Count",
             "question": "How many?", "choices": ["1", "2"], "right_answer": "A", "clue_intervals": []}]
    (tmp_path / "cgbench_mini.json").write_text(json.dumps(recs))
    touch(tmp_path / "v" / "u1.mp4")
    loaded = load_cgbench(tmp_path / "cgbench_mini.json", tmp_path / "v")
    a, b = loaded.samples
    assert (a.id, a.answer, a.task, a.spans) == ("7", "C", "grounded_choice", ((512.0, 530.5), (1404.2, 1410.0)))
    assert a.categories == {"duration": "40-50", "domain": "Life Record", "sub_category": "Event"}
    assert b.categories["duration"] == "60+" and loaded.missing == [str((tmp_path / "v" / "u2.mp4").resolve())]
    assert [cgbench_duration_bin(x) for x in (0, 599.9, 600, 3599, 3600)] == ["0-10", "0-10", "10-20", "50-60", "60+"]
    (tmp_path / "bad.json").write_text(json.dumps([{**recs[1], "right_answer": "E"}]))
    kept = load_cgbench(tmp_path / "bad.json", tmp_path / "v")  # kept (compared exactly, as officially), counted
    assert kept.samples[0].answer == "E" and "1 record(s)" in kept.notes[0]


# ---------------------------------------------------------------- NExT-GQA
NEXT_COLS = ["video_id", "frame_count", "width", "height", "question", "answer", "qid", "type", "a0", "a1", "a2", "a3",
             "a4"]


def write_nextgqa(tmp_path, rows, gsub):
    with (tmp_path / "test.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(NEXT_COLS)
        w.writerows(rows)
    (tmp_path / "gsub_test.json").write_text(json.dumps(gsub))


def test_nextgqa_csv_gsub_and_map(tmp_path):
    rows = [["2574374895", 719, 320, 240, "what did the baby do after throwing the cup, near the end", "lay on floor",
             8, "TN", "clap proudly", "the lady sitting down", "lay on floor", "just picked it up", "crawl"],
            ["111", 100, 320, 240, "why?", "b", 0, "CW", "a", "b", "c", "d", "e"]]
    gsub = {"2574374895": {"duration": 35, "fps": 29.97, "location": {"8": [[0.5, 12.6], [29.1, 34.8]]}},
            "111": {"duration": 10.5, "fps": 30, "location": {"0": [[1, 2]]}}}
    write_nextgqa(tmp_path, rows, gsub)
    (tmp_path / "map_vid_vidorID.json").write_text(json.dumps({"2574374895": "1001/2574374895"}))
    touch(tmp_path / "NExTVideo" / "1001" / "2574374895.mp4")
    loaded = load_nextgqa(tmp_path / "test.csv", tmp_path / "NExTVideo")
    a, b = loaded.samples
    assert (a.id, a.answer, a.answer_text, a.task) == ("2574374895_8", "C", "lay on floor", "grounded_choice")
    assert a.question.endswith("cup, near the end") and a.spans == ((0.5, 12.6), (29.1, 34.8))
    assert a.duration_s == 35.0 and a.categories == {"type": "TN"} and a.video.endswith("1001/2574374895.mp4")
    assert b.answer == "B" and loaded.missing == [str((tmp_path / "NExTVideo" / "111.mp4").resolve())]
    (tmp_path / "gsub_test.json").unlink()
    with pytest.raises(LongLensError, match="gsub_test.json: missing NExT-GQA grounding file"):
        load_nextgqa(tmp_path / "test.csv", tmp_path / "NExTVideo")
    write_nextgqa(tmp_path, rows, {"111": gsub["111"]})
    kept = load_nextgqa(tmp_path / "test.csv", tmp_path / "NExTVideo")  # Acc@QA only, as eval_ground.py skips it
    assert kept.samples[0].spans == () and "2574374895_8" in kept.notes[-1]
    write_nextgqa(tmp_path, rows[1:], gsub)
    (tmp_path / "map_vid_vidorID.json").write_text(json.dumps({"111": "../../../x"}))
    with pytest.raises(LongLensError, match="outside the videos folder"):
        load_nextgqa(tmp_path / "test.csv", tmp_path / "NExTVideo")


# ---------------------------------------------------------------- Charades-STA
def test_charades_txt_and_lmms_eval_json(tmp_path):
    (tmp_path / "charades_sta_test.txt").write_text(
        "3MSZA 24.3 30.4##person turn a light on.\n3MSZA 0.0 6.9##person opens a door.\n\nAB12 1 2##a b\n")
    touch(tmp_path / "v" / "3MSZA.mp4")
    loaded = load_charades(tmp_path / "charades_sta_test.txt", tmp_path / "v")
    a, b, c = loaded.samples
    assert (a.id, b.id, c.id) == ("3MSZA_0", "3MSZA_1", "AB12_2")
    assert (a.question, a.spans, a.task, a.options, a.answer) == ("person turn a light on.", ((24.3, 30.4),),
                                                                   "grounding", (), None)
    assert loaded.missing == [str((tmp_path / "v" / "AB12.mp4").resolve())]
    rows = [{"video": "3MSZA.mp4", "caption": "person turn a light on", "timestamp": [24.3, 30.4]},
            {"video": "3MSZA.mp4", "caption": "door", "timestamp": "[0.0, 6.9]"}]
    (tmp_path / "charades.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    loaded = load_charades(tmp_path / "charades.jsonl", tmp_path / "v")
    assert [s.spans for s in loaded.samples] == [((24.3, 30.4),), ((0.0, 6.9),)] and loaded.missing == []
    assert loaded.samples[1].id == "3MSZA_1" and loaded.samples[0].video_id == "3MSZA"
    (tmp_path / "bad.txt").write_text("3MSZA 24.3 30.4 person\n")
    with pytest.raises(LongLensError, match="bad.txt: line 1"):
        load_charades(tmp_path / "bad.txt", tmp_path / "v")
    (tmp_path / "esc.txt").write_text("../../etc 1 2##x\n")
    with pytest.raises(LongLensError, match="outside the videos folder"):
        load_charades(tmp_path / "esc.txt", tmp_path / "v")


# ---------------------------------------------------------------- EgoSchema
def test_egoschema_loads_only_the_public_subset(tmp_path):
    qs = [{"q_uid": "u1", "google_drive_id": "g", "question": "What interrupts?", "option 0": "A. sleeping",
           "option 1": "B. eating", "option 2": "C. cooking", "option 3": "D. reading", "option 4": "E. driving"},
          {"q_uid": "u2", "question": "Hidden?", **{f"option {k}": f"o{k}" for k in range(5)}},
          {"q_uid": "u3", "question": "Why?", **{f"option {k}": f"p{k}" for k in range(5)}}]
    (tmp_path / "questions.json").write_text(json.dumps(qs))
    with pytest.raises(LongLensError, match="subset_answers.json: missing EgoSchema"):
        load_egoschema(tmp_path / "questions.json", tmp_path / "videos")
    (tmp_path / "subset_answers.json").write_text(json.dumps({"u1": 3, "u3": 0}))
    touch(tmp_path / "videos" / "u1.mp4")
    loaded = load_egoschema(tmp_path / "questions.json", tmp_path / "videos")
    a, b = loaded.samples
    assert (a.id, a.answer, a.options[0], a.options[4]) == ("u1", "D", "sleeping", "driving")
    assert (b.id, b.answer, b.options[1]) == ("u3", "A", "p1")
    assert loaded.notes == ["egoschema: 2 of 3 questions have a public answer (subset_answers.json); loaded those"]
    assert loaded.missing == [str((tmp_path / "videos" / "u3.mp4").resolve())]


# ---------------------------------------------------------------- official extractors, section 10 rows
OPTS = ("Black.", "Gray.", "Green.", "Brown.")
# reply: (LongVideoBench, MVBench check_ans, EgoSchema, CG-Bench, LVBench) -- None: unparsed
TABLE = {
    "A": ("A", "A", "A", "A", "A"),
    "(A)": ("A", "A", "A", "A", "A"),
    "A.": ("A", "A", "A", "A", "A"),
    "A. Black.": ("A", "A", "A", "A", "A"),
    "A) Black": ("A", "A", None, "A", "A"),  # MMMU style knows (A), "A " and "A." only
    "Black.": ("B", None, None, None, "B"),
    "Based on the video, the answer is C": ("B", None, "C", "C", "B"),
    "Best answer: D": ("D", None, "D", "D", "B"),
    "Gray": (None, None, None, None, None),
    "a man is walking": (None, "A", None, None, None),
}


@pytest.mark.parametrize("reply", list(TABLE))
def test_official_extractors_on_the_quirk_table(reply):
    s = Sample("x", "q", "/v.mp4", "Q?", OPTS, "A")
    got = tuple(EXTRACTORS[name](reply, s) for name in ("longvideobench", "mvbench", "egoschema", "cgbench",
                                                        "lvbench-vlmevalkit"))
    assert got == TABLE[reply]


def test_longvideobench_reads_capitals_in_words_and_e():
    assert longvideobench_official("The correct option is E") == "E"
    assert longvideobench_official("the one with no capitals") is None


def test_mvbench_check_ans_article_pitfall_and_letters():
    assert mvbench_official("a dog runs across", "ABCD") == "A"  # the article "a" is inside "(a)"
    assert mvbench_official("(C) the cup.", "ABCD") == "C" and mvbench_official("d.", "ABCD") == "D"
    assert mvbench_official("E", "ABCD") is None and mvbench_official("   ", "ABCD") is None
    assert mvbench_official("Best option: (B)", "ABCD") is None


def test_egoschema_text_match_and_ties():
    opts = ("the man cleans the kitchen", "he cooks pasta", "a dog barks", "she reads", "they leave")
    assert egoschema_official("In the video I think that he cooks pasta for dinner", opts) == "B"
    assert egoschema_official("he cooks pasta", opts) is None  # 3 words: no text match (random fill)
    assert egoschema_official("(B) first, but (A) after all", opts) == "B"  # last occurrence that comes first


def test_cgbench_long_acc_as_post_process_reads_it():
    assert long_acc_result('Sure.\n```json\n{"result": "C"}\n```', "C") == (1, "C")
    assert long_acc_result("```json\n{\"result\": D}\n```", "D") == (1, "D")  # a word after ": " is quoted
    assert long_acc_result("```json\n{\"result\":D}\n```", "D") == (1, "D")  # unreadable block: the capitals
    assert long_acc_result('```json\n{"result": "F "}\n```', "F") == (0, "F ")  # read, compared exactly
    assert long_acc_result('```json\n{"result": "Green"}\n```', "C") == (0, "Green")
    assert long_acc_result("A or C", "C") == (1, "C") and long_acc_result("A or C", "B") == (0, "A")
    assert long_acc_result("I would say H, or maybe I", "H") == (1, "H")
    assert long_acc_result("no capital letter here", "A") == (None, None) and long_acc_result("", "A") == (None, None)
    deep = "```json\n" + "[" * 100000 + "]" * 100000 + "\n```  A"
    assert long_acc_result(deep, "A") == (1, "A")  # RecursionError inside json.loads: read another way
    huge = '```json\n{"result": ' + "9" * 5000 + "}\n``` B"
    assert long_acc_result(huge, "B") == (1, "B")  # int() refuses 5000 digits: read another way
    s = Sample("x", "q", "/v.mp4", "Q?", OPTS, "C")
    assert EXTRACTORS["cgbench"]("A or C", s) == "C"
