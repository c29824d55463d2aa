"""Grounded benchmarks end to end through `longlens eval`: Charades-STA and NExT-GQA files in their native
formats over a real generated video, the agent asked for a span, the span scored, the metrics summarised."""

from __future__ import annotations

import json

import pytest

from longlens.cli.main import main


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from longlens.synth import make_video

    root = tmp_path_factory.mktemp("grounding")
    make_video(root / "AB12C.mp4", duration_s=40, width=320, height=180, fps=10, gop_s=2.0, seed=4, needles=1)
    return root


def _records(out):
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def test_charades_asks_for_a_span_and_scores_iou(videos, tmp_path):
    data = tmp_path / "charades_sta_test.txt"
    data.write_text("AB12C 10.0 20.0##person opens a door.\nAB12C 30.0 36.0##person sits down.\n")
    script = tmp_path / "replies.json"
    # question 1: zooms on [8, 22], then names [10, 18] at the forced answer step;
    # question 2: zooms once and then gives no usable answer (its span is the clip it zoomed into)
    script.write_text(json.dumps(["I need to zoom in on the video.\n\n\\boxed{[8, 22]}",
                                  "I get the answer.\n\n\\boxed{[10, 18]}",
                                  "I need to zoom in on the video.\n\n\\boxed{[0, 6]}", "no idea"]))
    out = tmp_path / "run"
    assert main(["eval", "charades", "--data", str(data), "--videos", str(videos), "--out", str(out),
                 "--backend", "scripted", "--script", str(script), "--max-steps", "2",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    first, second = _records(out)
    assert first["task"] == "grounding" and first["span"] == [10.0, 18.0] and first["iou"] == pytest.approx(0.8)
    assert second["iou"] == 0.0
    trace = json.loads((out / first["trace"]).read_text())
    asked = trace["steps"][0]["prompt"]
    assert any("Provide the answer in list format, ie, [start_time, end_time]." in p.get("text", "")
               for m in asked for p in m["content"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["headline"]["name"] == "mIoU" and summary["headline"]["value"] == pytest.approx(0.4)


def test_nextgqa_answer_and_evidence_span(videos, tmp_path):
    (tmp_path / "test.csv").write_text(
        "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
        "AB12C,400,320,180,what does the man do after he stands up,walks away,3,TN,sits,walks away,runs,waves,eats\n"
        "AB12C,400,320,180,why does the man wave,to greet,5,CW,to greet,to leave,to eat,to sit,to run\n")
    (tmp_path / "gsub_test.json").write_text(json.dumps(
        {"AB12C": {"duration": 40, "fps": 10, "location": {"3": [[10.0, 20.0]], "5": [[30.0, 38.0]]}}}))
    script = tmp_path / "replies.json"
    zoom, answer = "I need to zoom in on the video.\n\n\\boxed{[%s]}", "I get the answer.\n\n\\boxed{%s}"
    script.write_text(json.dumps([zoom % "12, 18", answer % "B", zoom % "0, 10", answer % "A"]))
    out = tmp_path / "run"
    assert main(["eval", "nextgqa", "--data", str(tmp_path / "test.csv"), "--videos", str(videos), "--out", str(out),
                 "--backend", "scripted", "--script", str(script), "--max-steps", "2",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    first, second = _records(out)
    assert first["correct"] and first["iop"] == 1.0 and first["span"][0] <= 12 and first["span"][1] >= 18
    assert second["correct"] and second["iop"] == 0.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["headline"]["name"] == "Acc@GQA" and summary["headline"]["value"] == pytest.approx(0.5)
    other = tmp_path / "other"
    assert main(["eval", "nextgqa", "--data", str(tmp_path / "test.csv"), "--videos", str(videos), "--out", str(other),
                 "--backend", "scripted", "--script", str(script), "--max-steps", "2", "--extractor", "official",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    official = json.loads((other / "summary.json").read_text())
    assert official["policy"] == "official" and official["headline"]["name"] == "Acc@GQA"
    assert official["metrics"]["Acc@QA"]["value"] == 1.0 and official["metrics"]["Acc@GQA"]["value"] == 0.5


def test_progress_shows_iou_for_grounding():
    import io

    from longlens.bench.progress import Progress

    out = io.StringIO()
    with Progress(2, stream=out) as p:
        p.update({"id": "c_0", "task": "grounding", "span": [1, 2], "iou": 0.8, "parsed": "span", "wall_s": 1}, 1, 2)
        p.update({"id": "c_1", "task": "grounding", "span": None, "iou": 0.0, "parsed": None, "wall_s": 1}, 2, 2)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[1/2] c_0: IoU 0.80  (mIoU 0.800") and lines[1].startswith("[2/2] c_1: no span")
