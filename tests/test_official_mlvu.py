"""MLVU dev, scored as the official script scores it, on a verbatim excerpt of the official files.

tests/data/official/mlvu/json holds records copied verbatim from JUNJIE99/MLVU@fd060c1 data/{1..7}_*.json:
every odd record (2_needle.json #34 and #338, whose answer is none of their candidates; the 16 records that
repeat a candidate) and the first four of each file. official_scores.json holds fixed replies in many styles
and what the official evaluation/multiple_choice_evaluation/choice_bench.py (run unmodified, outside this
project: its MLVU dataset class, check_ans and the per-task / Avg arithmetic of main) made of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longlens.bench import score_choice
from longlens.bench.benchmarks.mlvu import load as load_mlvu
from longlens.bench.metrics import summarize

HERE = Path(__file__).parent / "data" / "official" / "mlvu"
GOLDEN = json.loads((HERE / "official_scores.json").read_text(encoding="utf-8"))


def test_every_official_record_loads_and_odd_ones_are_counted(tmp_path):
    loaded = load_mlvu(HERE / "json", tmp_path)
    assert len(loaded.samples) == len(GOLDEN["replies"]) == 45
    assert len(loaded.missing) == len({s.video for s in loaded.samples})  # missing videos never stop loading
    (note,) = loaded.notes
    assert "2 record(s)" in note and "2_needle.json#" in note


def test_official_extractor_reproduces_choice_bench_to_the_last_digit(tmp_path):
    samples = {s.id: s for s in load_mlvu(HERE / "json", tmp_path).samples}
    records = []
    for r in GOLDEN["replies"]:
        sample = samples[f"{r['task']}-{r['excerpt_index']}"]
        assert sample.answer == r["official_gt"][1:r["official_gt"].index(")")]  # the official letter, '@' included
        score = score_choice(r["reply"], sample, "mlvu")
        assert score.correct == r["official_correct"], r
        records.append({"id": sample.id, "benchmark": "mlvu", "task": "choice", "categories": sample.categories,
                        "n_options": len(sample.options), "parsed": score.parsed, "correct": score.correct})
    summary = summarize(records, "mlvu", policy="wrong")
    assert summary["headline"]["name"] == "M-Avg"
    assert summary["headline"]["value"] == pytest.approx(GOLDEN["final_res"]["Avg"] / 100, abs=1e-9)
