"""`longlens score --extractor official` against the official scoring scripts, on their own outputs.

tests/data/official/<bench>/ hold verbatim excerpts of the official annotation files (LVBench: a synthetic
annotation in its layout, as its files are on Hugging Face only), fixed predictions in many reply and span
styles, and what the official scripts, run outside this project, made of them (PROVENANCE.md in each folder
says which code at which commit and how). Every official metric must come out equal to 1e-9.

With LONGLENS_OFFICIAL_DATA pointing at a folder holding the full official files (nextgqa/test.csv +
gsub_test.json + map_vid_vidorID.json, cgbench/cgbench_mini.json, charades/charades_sta_test.txt,
mlvu/1_plotQA.json ...), the same is checked on every official question against predictions_full.jsonl.gz.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from longlens.cli.main import main

HERE = Path(__file__).parent / "data" / "official"
FULL = Path(os.environ.get("LONGLENS_OFFICIAL_DATA", "/nonexistent"))

EXCERPTS = {
    # bench: (annotation inside HERE/bench, predictions, official output, {our metric: official metric})
    "nextgqa": ("test.csv", "predictions_excerpt.jsonl", "official_excerpt.json", None),
    "cgbench": ("cgbench_mini.json", "predictions_excerpt.jsonl", "official_excerpt.json", None),
    "charades": ("charades_sta_test_excerpt.txt", "predictions_excerpt.jsonl", "official_excerpt.json", None),
    "mlvu": ("json", "predictions_excerpt.jsonl", "official_excerpt.json", None),
    "lvbench": ("video_info.meta.jsonl", "predictions.jsonl", "official.json",
                {"acc": "Overall", "entity recognition": "ER", "summarization": "Sum", "temporal grounding": "TG",
                 "event understanding": "EU", "key information retrieval": "KIR", "reasoning": "Rea"}),
}
HEADLINE_METRICS = {
    "nextgqa": ("Acc@QA", "Acc@GQA", "mIoP", "IoP@0.3", "IoP@0.5", "mIoU", "IoU@0.3", "IoU@0.5"),
    "cgbench": ("long_acc", "mIoU", "rec@IoU", "acc@IoU"),
    "charades": ("mIoU", "R@0.3", "R@0.5", "R@0.7"),
    "mlvu": ("M-Avg",),
}


def score(bench: str, data: Path, predictions: Path, out: Path) -> dict:
    assert main(["score", bench, "--data", str(data), "--predictions", str(predictions), "--extractor", "official",
                 "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())


def assert_metrics(summary: dict, official: dict, names: dict | None) -> None:
    names = names or {k: k for k in official["metrics"] if not k.startswith("n_")}
    ours = summary["metrics"]
    for mine, theirs in names.items():
        assert ours[mine]["value"] == pytest.approx(official["metrics"][theirs], abs=1e-9), (mine, ours[mine])


@pytest.mark.parametrize("bench", sorted(EXCERPTS))
def test_official_metrics_on_the_excerpt(bench, tmp_path):
    data, preds, golden, names = EXCERPTS[bench]
    official = json.loads((HERE / bench / golden).read_text())
    summary = score(bench, HERE / bench / data, HERE / bench / preds, tmp_path)
    assert_metrics(summary, official, names)
    assert summary["policy"] == "official" and summary["extractor"] == "official"
    assert summary["missing_predictions"] == official.get("missing", summary["missing_predictions"])


def test_nextgqa_per_question_and_denominators(tmp_path):
    official = json.loads((HERE / "nextgqa" / "official_excerpt.json").read_text())
    summary = score("nextgqa", HERE / "nextgqa" / "test.csv", HERE / "nextgqa" / "predictions_excerpt.jsonl", tmp_path)
    assert summary["metrics"]["Acc@GQA"]["n"] == official["metrics"]["n_ground"]
    records = {r["id"]: r for r in map(json.loads, (tmp_path / "results.jsonl").read_text().splitlines())}
    for qid, q in official["per_question"].items():
        r = records[qid]
        assert r["correct"] == q["qa_correct"] and r["grounded"] == q["included_in_ground"], qid
        if q["included_in_ground"]:
            assert (r["iou"], r["iop"]) == pytest.approx((q["IoU"], q["IoP"]), abs=1e-12), qid


def test_cgbench_per_question_results_and_what_is_not_saved(tmp_path):
    official = json.loads((HERE / "cgbench" / "official_excerpt.json").read_text())
    summary = score("cgbench", HERE / "cgbench" / "cgbench_mini.json", HERE / "cgbench" / "predictions_excerpt.jsonl",
                    tmp_path)
    m = official["metrics"]
    assert [summary["metrics"][k]["n"] for k in ("long_acc", "mIoU", "acc@IoU")] == [m["n_long_acc"], m["n_miou"],
                                                                                     m["n_both"]]
    records = {r["id"]: r for r in map(json.loads, (tmp_path / "results.jsonl").read_text().splitlines())}
    for qid, q in official["per_question"].items():
        key_acc = next(k for k in q if "long_acc" in k)
        key_iou = next(k for k in q if "miou" in k)
        assert records[qid]["long_acc"] == q[key_acc], (qid, records[qid]["prediction"])
        assert records[qid]["miou"] == pytest.approx(q[key_iou], abs=1e-12), (qid, records[qid]["prediction"])


def test_charades_per_question(tmp_path):
    official = json.loads((HERE / "charades" / "official_excerpt.json").read_text())
    score("charades", HERE / "charades" / "charades_sta_test_excerpt.txt",
          HERE / "charades" / "predictions_excerpt.jsonl", tmp_path)
    records = {r["id"]: r for r in map(json.loads, (tmp_path / "results.jsonl").read_text().splitlines())}
    for qid, q in official["per_question"].items():
        assert records[qid]["iou"] == pytest.approx(q["iou"], abs=1e-12), (qid, records[qid]["prediction"])


@pytest.mark.parametrize("bench", sorted(EXCERPTS))
def test_template_lists_every_question_with_its_place_in_the_official_file(bench, tmp_path):
    data = HERE / bench / EXCERPTS[bench][0]
    out = tmp_path / "template.jsonl"
    assert main(["score", bench, "--data", str(data), "--template", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len({x["id"] for x in lines}) == len(lines) > 0
    assert all(set(x) == {"id", "question", "options", "source"} and x["source"]["file"] for x in lines)
    index = HERE / bench / "excerpt_index.json"
    if index.is_file() and bench != "nextgqa":  # positions in the official file, not in the excerpt
        return
    files = {}
    for x in lines:
        files.setdefault(x["source"]["file"], []).append(x["source"]["index"])
    for positions in files.values():
        assert positions == sorted(positions) and positions[0] == 0  # the excerpt's own positions


# ---------------------------------------------------------------- the full official files
FULL_FILES = {
    "nextgqa": ("nextgqa/test.csv", 5553),
    "cgbench": ("cgbench/cgbench_mini.json", 3000),
    "charades": ("charades/charades_sta_test.txt", 3720),
    "mlvu": ("mlvu", 2175),
}


@pytest.mark.parametrize("bench", sorted(FULL_FILES))
def test_official_metrics_on_the_full_official_files(bench, tmp_path):
    rel, count = FULL_FILES[bench]
    data = FULL / rel
    if not data.exists():
        pytest.skip("set LONGLENS_OFFICIAL_DATA to a folder with the full official files to run this")
    preds = tmp_path / "predictions.jsonl"
    with gzip.open(HERE / bench / "predictions_full.jsonl.gz", "rb") as f, preds.open("wb") as g:
        shutil.copyfileobj(f, g)
    official = json.loads((HERE / bench / "official_full.json").read_text())
    summary = score(bench, data, preds, tmp_path / "out")
    assert summary["questions"] == count
    for name in HEADLINE_METRICS[bench]:
        assert summary["metrics"][name]["value"] == pytest.approx(official["metrics"][name], abs=1e-9), name
    template = tmp_path / "template.jsonl"
    assert main(["score", bench, "--data", str(data), "--template", str(template)]) == 0
    assert len(template.read_text().splitlines()) == count
