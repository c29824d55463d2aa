"""CoT data rows: each post-filter on hand-made keep and drop cases, the filter report, the cut after the
first box, the target builder, the JSONL round trip (a torn last line ignored) and the LLaMA-Factory shape."""

from __future__ import annotations

import functools
import json

import pytest

from longlens.data.export import clip_file, llamafactory_dataset_info, to_llamafactory
from longlens.data.filters import (
    apply_filters,
    bad_box,
    bad_span,
    mentions_hint,
    mentions_unseen,
    repeated_pattern,
    wrong_answer,
    wrong_prefix,
    zoom_miss,
)
from longlens.data.rows import CotRow, cut_after_first_box, make_target, read_jsonl, to_jsonl
from longlens.errors import LongLensError

ZOOM = "I need to zoom in on the video.\n\n"
ANSWER = "I get the answer.\n\n"
OPTIONS = ("a red car", "a blue bike", "a green bus", "a dog")


def row(kind="answer", target=None, clips=(), truth=((100, 130),), answer="B", rid="q1", duration=600.0):
    if target is None:
        target = ZOOM + "The bike appears midway. \\boxed{[100, 130]}" if kind == "zoom" else \
            ANSWER + "The rider sits on a blue bike. \\boxed{B}"
    return CotRow(id=rid, video="cg/v1.mp4", duration_s=duration, question="What does the rider use?",
                  options=OPTIONS, answer=answer, kind=kind, clips=clips, target=target, truth=truth, source="test")


def test_row_rejects_unknown_kind_and_normalises_spans():
    with pytest.raises(ValueError, match="kind"):
        row(kind="think")
    r = row(clips=[[10, 20]], truth=[[1, 2]])
    assert r.clips == ((10.0, 20.0),) and r.truth == ((1.0, 2.0),)
    hash(r)  # frozen and made of tuples


# ---------------------------------------------------------------- cut and target
def test_cut_after_first_box():
    assert cut_after_first_box("so \\boxed{B} and again \\boxed{C} more") == "so \\boxed{B}"
    assert cut_after_first_box("x \\boxed{\\text{B}} tail") == "x \\boxed{\\text{B}}"
    assert cut_after_first_box("no box here") == "no box here"
    assert cut_after_first_box("open \\boxed{B") == "open \\boxed{B"


def test_make_target_adds_prefix_cuts_and_normalises_times():
    assert make_target("answer", "Blue bike. \\boxed{B} Also \\boxed{C}") == ANSWER + "Blue bike. \\boxed{B}"
    assert make_target("zoom", "Midway. \\boxed{[1:40, 130.4]} extra") == ZOOM + "Midway. \\boxed{[100, 130]}"
    assert make_target("zoom", ZOOM + "Again. \\boxed{[5, 9]}") == ZOOM + "Again. \\boxed{[5, 9]}"
    with pytest.raises(ValueError):
        make_target("other", "x")


# ---------------------------------------------------------------- filters
def test_wrong_answer():
    assert wrong_answer(row()) is None
    assert wrong_answer(row(target=ANSWER + "It is \\boxed{(b)}")) is None
    assert wrong_answer(row(target=ANSWER + "It is \\boxed{a blue bike}")) is None
    assert "truth" in wrong_answer(row(target=ANSWER + "A car. \\boxed{A}"))
    assert wrong_answer(row(target=ANSWER + "no box")) is not None
    assert wrong_answer(row(answer="<answer>B</answer>")) is None
    assert wrong_answer(row(kind="zoom")) is None  # not an answer row


def test_zoom_miss():
    assert zoom_miss(row(kind="zoom")) is None
    low = row(kind="zoom", target=ZOOM + "x \\boxed{[100, 400]}")  # IoU 30/300 = 0.1: kept at the threshold
    assert zoom_miss(low) is None
    assert zoom_miss(row(kind="zoom", target=ZOOM + "x \\boxed{[100, 420]}")) is not None  # 30/320 < 0.1
    assert zoom_miss(row(kind="zoom", target=ZOOM + "x \\boxed{[100, 420]}"), min_iou=0.0) is None
    touching = row(kind="zoom", target=ZOOM + "x \\boxed{[130, 150]}")
    assert zoom_miss(touching, min_iou=0.0) is not None
    assert zoom_miss(row(kind="zoom", truth=())) is not None
    assert zoom_miss(row(kind="zoom", target=ZOOM + "x \\boxed{B}")) is not None
    assert zoom_miss(row()) is None


def test_bad_span():
    assert bad_span(row(kind="zoom")) is None
    assert "longer" in bad_span(row(kind="zoom", target=ZOOM + "x \\boxed{[100, 170]}"))
    assert "longer" in bad_span(row(kind="zoom", target=ZOOM + "x \\boxed{[10, 50]}", duration=60))  # > D/2
    assert bad_span(row(kind="zoom", target=ZOOM + "x \\boxed{[100, 170]}"), max_s=90) is None
    assert "shorter" in bad_span(row(kind="zoom", target=ZOOM + "x \\boxed{[100, 100.5]}"))
    assert "reversed" in bad_span(row(kind="zoom", target=ZOOM + "x \\boxed{[130, 100]}"))
    assert "outside" in bad_span(row(kind="zoom", target=ZOOM + "x \\boxed{[590, 620]}"))
    assert "repeats" in bad_span(row(kind="zoom", clips=((101, 131),)))
    assert bad_span(row(kind="zoom", clips=((0, 30),))) is None
    assert bad_span(row()) is None


def test_repeated_pattern():
    assert repeated_pattern(row()) is None
    fine = ANSWER + "The man waves. The man sits down. Then he leaves the room quickly. \\boxed{B}"
    assert repeated_pattern(row(target=fine)) is None
    twice = ANSWER + "The rider is on a blue bike. He turns left. The rider is on a blue bike! \\boxed{B}"
    assert "sentence" in repeated_pattern(row(target=twice))
    loop = ANSWER + "I see " + "the man on the bike " * 6 + "\\boxed{B}"
    assert "words repeated" in repeated_pattern(row(target=loop))


def test_repeated_pattern_thresholds_are_used():
    loop = ANSWER + "I see " + "the man on the bike " * 6 + "\\boxed{B}"
    assert repeated_pattern(row(target=loop), ngram=8, ngram_repeats=7, min_words=50) is None
    assert repeated_pattern(row(target=loop), ngram=8, ngram_repeats=3, min_words=50) is not None


def test_mentions_unseen():
    assert mentions_unseen(row()) is None
    seen_only = ANSWER + "The rider points at the screen and reads a sign. \\boxed{B}"
    assert mentions_unseen(row(target=seen_only)) is None
    for said in ("The caption says a bike", "From the Subtitles", "the narrator explains", "we hear a horn",
                 "the audio track", "a voice-over says", "the description at 100 s"):
        assert mentions_unseen(row(target=ANSWER + said + ". \\boxed{B}")) is not None, said
    assert mentions_unseen(row(target=ANSWER + "The escaped captionless frame. \\boxed{B}")) is None  # whole words
    assert mentions_unseen(row(target=ANSWER + "we hear a horn \\boxed{B}"), words=("audio",)) is None


def test_mentions_hint():
    assert mentions_hint(row()) is None
    assert mentions_hint(row(target=ANSWER + "As the hint says, B. \\boxed{B}")) is not None
    assert mentions_hint(row(target=ANSWER + "The provided answer is B. \\boxed{B}")) is not None
    assert mentions_hint(row(target=ANSWER + "He is thinking. \\boxed{B}")) is None


def test_bad_box():
    assert bad_box(row()) is None and bad_box(row(kind="zoom")) is None
    assert "no closed" in bad_box(row(target=ANSWER + "no box"))
    assert "no closed" in bad_box(row(target=ANSWER + "open \\boxed{B"))
    assert "after" in bad_box(row(target=ANSWER + "\\boxed{B} then \\boxed{C}"))
    assert "after" in bad_box(row(target=ANSWER + "\\boxed{B} and more words"))
    assert bad_box(row(target=ANSWER + "\\boxed{B}\n")) is None
    assert "boxes" in bad_box(row(target=ANSWER + "\\boxed{[1, 5]}"))
    assert "boxes" in bad_box(row(kind="zoom", target=ZOOM + "\\boxed{B}"))
    assert "boxes" in bad_box(row(kind="zoom", target=ZOOM + "\\boxed{[1, 2, 3]}"))


def test_wrong_prefix():
    assert wrong_prefix(row()) is None and wrong_prefix(row(kind="zoom")) is None
    assert wrong_prefix(row(target=ZOOM + "\\boxed{B}")) is not None
    assert wrong_prefix(row(target="I get the answer.\n\\boxed{B}")) is not None  # newlines are part of it
    assert wrong_prefix(row(target="The bike. \\boxed{B}")) is not None


# ---------------------------------------------------------------- report
def test_apply_filters_counts_each_reason_once():
    rows = [row(rid="keep1"), row(kind="zoom", rid="keep2"),
            row(target=ANSWER + "A car. \\boxed{A}", rid="wrong"),
            row(target=ANSWER + "The caption says bike. \\boxed{B}", rid="caption"),
            row(target=ANSWER + "A car. \\boxed{A} \\boxed{B}", rid="box-and-wrong"),
            row(kind="zoom", target=ZOOM + "x \\boxed{[300, 350]}", rid="miss"),
            row(kind="zoom", target=ZOOM + "x \\boxed{[100, 200]}", rid="long")]
    kept, report = apply_filters(rows)
    assert [r.id for r in kept] == ["keep1", "keep2"]
    assert report["in"] == 7 and report["out"] == 2
    assert report["dropped"] == {"bad_box": 1, "wrong_prefix": 0, "wrong_answer": 1, "zoom_miss": 1,
                                 "bad_span": 1, "repeated_pattern": 0, "mentions_unseen": 1, "mentions_hint": 0}
    assert sum(report["dropped"].values()) == report["in"] - report["out"]
    assert report["examples"]["wrong_answer"].startswith("wrong: ")
    json.dumps(report)


def test_apply_filters_names_and_partials():
    rows = [row(kind="zoom", target=ZOOM + "x \\boxed{[100, 400]}")]
    strict = functools.partial(zoom_miss, min_iou=0.5)
    assert apply_filters(rows, [zoom_miss])[1]["out"] == 1
    kept, report = apply_filters(rows, [strict])
    assert kept == [] and report["dropped"] == {"zoom_miss": 1}
    kept, report = apply_filters(iter(rows), {"strict-iou": strict})
    assert report == {"in": 1, "out": 0, "dropped": {"strict-iou": 1}, "examples": report["examples"]}


# ---------------------------------------------------------------- JSONL
def test_jsonl_round_trip_appends_and_ignores_a_torn_line(tmp_path):
    path = tmp_path / "out" / "cot.jsonl"
    first = [row(rid="a", clips=((10, 40),)), row(kind="zoom", rid="b")]
    assert to_jsonl(first, path) == 2
    assert read_jsonl(path) == first
    with path.open("a", encoding="utf-8") as f:
        f.write('{"id": "torn", "vid')  # a kill mid-write
    assert read_jsonl(path) == first
    to_jsonl([row(rid="c", target=ANSWER + "Ünïcode bike. \\boxed{B}")], path)
    back = read_jsonl(path)
    assert [r.id for r in back] == ["a", "b", "c"] and back[2].target.startswith(ANSWER + "Ünïcode")
    assert all(line.startswith("{") for line in path.read_text(encoding="utf-8").splitlines())


def test_read_jsonl_names_a_bad_middle_line(tmp_path):
    path = tmp_path / "cot.jsonl"
    to_jsonl([row()], path)
    with path.open("a") as f:
        f.write("not json\n")
    to_jsonl([row()], path)
    with pytest.raises(LongLensError, match=":2:"):
        read_jsonl(path)


# ---------------------------------------------------------------- LLaMA-Factory
def test_llamafactory_shape(tmp_path):
    rows = [row(clips=((200, 230), (100, 130))), row(kind="zoom")]
    records = to_llamafactory(rows, tmp_path / "videos")
    json.dumps(records)
    for rec, r in zip(records, rows, strict=True):
        roles = [m["role"] for m in rec["messages"]]
        assert roles == ["user", "assistant"]
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
        user = rec["messages"][0]["content"]
        assert user.count("<video>") == len(rec["videos"]) == 1 + len(r.clips)
        assert rec["messages"][1]["content"] == r.target
        assert rec["videos"][0] == str(tmp_path / "videos" / "cg" / "v1.mp4")
        assert user.startswith("Full video [0, 600]:<video>")
        assert "B. a blue bike" in user and user.endswith("[start_time, end_time]}.")
        assert rec["system"].startswith("You are a helpful assistant.")
    user = records[0]["messages"][0]["content"]
    assert user.index("clip [100, 130]:<video>") < user.index("clip [200, 230]:<video>")  # clips by start
    assert records[0]["videos"][1:] == [str(tmp_path / "videos" / "clips" / "v1_100-130.mp4"),
                                        str(tmp_path / "videos" / "clips" / "v1_200-230.mp4")]


def test_clip_file_and_dataset_info(tmp_path):
    assert clip_file("a/b/talk.mkv", (12.7, 40.2), tmp_path) == str(tmp_path / "talk_12-40.mkv")
    info = llamafactory_dataset_info("cot.json")
    assert info["formatting"] == "sharegpt" and info["columns"]["videos"] == "videos"
    assert info["tags"]["user_tag"] == "user"


def test_data_commands_filter_with_a_report_and_export(tmp_path, capsys):
    from longlens.cli.main import main
    from longlens.data.rows import read_jsonl, to_jsonl

    rows = [row(rid="good"), row(rid="wrong", answer="C"), row(kind="zoom", rid="zoom-ok"),
            row(kind="zoom", rid="zoom-far", truth=((400, 420),)),
            row(rid="audio", target=ANSWER + "You can hear the bike bell. \\boxed{B}")]
    src = tmp_path / "rows.jsonl"
    to_jsonl(rows, src)
    out = tmp_path / "kept.jsonl"
    assert main(["data", "filter", str(src), "--out", str(out)]) == 0
    assert [r.id for r in read_jsonl(out)] == ["good", "zoom-ok"]
    report = json.loads((tmp_path / "kept.report.json").read_text())
    assert report["in"] == 5 and report["out"] == 2
    assert report["dropped"]["wrong_answer"] == 1 and report["dropped"]["zoom_miss"] == 1
    assert report["dropped"]["mentions_unseen"] == 1
    assert "kept 2 of 5 rows" in capsys.readouterr().out
    # a filter left out keeps what it would drop; an existing --out is refused
    assert main(["data", "filter", str(src), "--out", str(tmp_path / "k2.jsonl"), "--skip", "mentions_unseen"]) == 0
    assert [r.id for r in read_jsonl(tmp_path / "k2.jsonl")] == ["good", "zoom-ok", "audio"]
    assert main(["data", "filter", str(src), "--out", str(out)]) == 2
    assert main(["data", "filter", str(src), "--out", str(tmp_path / "k3.jsonl"), "--skip", "nope"]) == 2
    exported = tmp_path / "lf.json"
    assert main(["data", "export", str(out), "--videos", str(tmp_path / "videos"), "--out", str(exported)]) == 2
    assert "videos: no such folder" in capsys.readouterr().err and not exported.exists()
    (tmp_path / "videos" / "cg").mkdir(parents=True)
    assert main(["data", "export", str(out), "--videos", str(tmp_path / "videos"), "--out", str(exported)]) == 2
    assert "1 of the rows' videos are not under --videos" in capsys.readouterr().err and not exported.exists()
    (tmp_path / "videos" / "cg" / "v1.mp4").write_bytes(b"")  # records only (--no-cut): the file need only be there
    assert main(["data", "export", str(out), "--videos", str(tmp_path / "videos"), "--out", str(exported),
                 "--no-cut"]) == 0
    records = json.loads(exported.read_text())
    assert len(records) == 2 and all(r["messages"][0]["content"].count("<video>") == len(r["videos"])
                                     for r in records)
