"""`longlens bench make-needles`: a suite of lengths x count that `eval needles` reads, resumable."""

from __future__ import annotations

import json

from longlens.cli.bench import suite_plan
from longlens.cli.main import main


def test_suite_plan_names_lengths_and_distinct_seeds():
    plan = suite_plan([10, 30, 60], 2, 0)
    assert [p[0] for p in plan[:3]] == ["needles-10m-01", "needles-10m-02", "needles-30m-01"]
    assert [p[1] for p in plan] == [600.0, 600.0, 1800.0, 1800.0, 3600.0, 3600.0]
    assert len({p[2] for p in plan}) == 6


def test_make_needles_writes_a_suite_eval_reads_and_keeps_what_exists(tmp_path, capsys):
    from longlens.bench.benchmarks.needles import load as load_needles

    out = tmp_path / "suite"
    args = ["bench", "make-needles", "--out", str(out), "--minutes", "0.5,1", "--count", "2", "--size", "160x96",
            "--fps", "4", "--jobs", "2"]
    assert main(args) == 0
    videos = sorted(p.name for p in out.glob("*.mp4"))
    assert videos == ["needles-0.5m-01.mp4", "needles-0.5m-02.mp4", "needles-1m-01.mp4", "needles-1m-02.mp4"]
    assert not list(out.glob("*.part"))
    keys = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert len(keys) == 4
    loaded = load_needles(out)
    assert not loaded.missing and len(loaded.samples) == sum(len(k["needles"]) for k in keys.values()) >= 4
    assert all(s.answer in "ABCD" and s.spans for s in loaded.samples)
    # a rerun keeps every finished video; a video without its key is made again
    (out / "needles-1m-02.json").unlink()
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("kept ") == 3 and "[1/1] wrote" in printed and "needles-1m-02.mp4" in printed
    assert main(["bench", "make-needles", "--out", str(out), "--minutes", "ten"]) == 2


def test_needle_samples_carry_length_and_depth(tmp_path):
    from longlens.bench.benchmarks.needles import load as load_needles
    from longlens.synth import make_video

    key = make_video(tmp_path / "v.mp4", duration_s=50, width=160, height=96, fps=4, seed=3, needles=3)
    samples = load_needles(tmp_path).samples
    assert {s.categories["length"] for s in samples} == {"0.8 min"}
    for s, n in zip(samples, key.needles, strict=True):
        lo = int(s.categories["depth"].split("-")[0])
        assert lo <= 100 * (n.start_s + n.end_s) / 2 / 50 < lo + 20
