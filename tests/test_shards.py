"""Shards of one run folder, error records and guesses as data, retries on the record, a progress line that fits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from longlens.backends.openai_client import OpenAIBackend
from longlens.backends.scripted_server import ScriptedServer
from longlens.bench.progress import Tally
from longlens.bench.runner import RunFolder, Shard
from longlens.bench.sample import Sample
from longlens.cli.main import main
from longlens.errors import LongLensError
from longlens.prompts import Message

ANSWER = "I get the answer.\n\n\\boxed{A}"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """Three 20 s videos with two needles each: 6 questions."""
    from media import needle_suite

    return needle_suite(tmp_path_factory.mktemp("suite6"), (1, 2, 3), duration_s=20, needles=2, stem="s")


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def eval_cmd(suite, out, tmp_path, *extra) -> list[str]:
    return ["eval", "needles", "--data", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
            *extra]


# ---------------------------------------------------------------- shards
def test_shards_split_by_video_deterministically():
    samples = [Sample("b", f"q{i}", f"v{v}.mp4", "?", ("x", "y"), "A") for i, v in enumerate([3, 3, 1, 2, 1, 4, 5])]
    parts = [Shard(i, 3).select(samples) for i in (1, 2, 3)]
    assert [[s.id for s in p] for p in parts] == [["q0", "q1", "q5"], ["q2", "q4", "q6"], ["q3"]]  # v3 v4 | v1 v5 | v2
    assert sorted(s.id for p in parts for s in p) == sorted(s.id for s in samples)  # each question once
    assert Shard.parse(" 2/8 ") == Shard(2, 8) and Shard(1, 1).select(samples) == samples
    for bad in ("0/4", "5/4", "2", "a/b", "1/0"):
        with pytest.raises(LongLensError, match="I/N"):
            Shard.parse(bad)


def test_shards_fill_one_folder_and_the_summary_and_report_merge_them(suite, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(eval_cmd(suite, out, tmp_path, "--shard", "2/2", "--max-steps", "1")) == 0
    first = capsys.readouterr().out
    assert "shards: 1 complete; 1/2 not started" in first and "4 not run yet" in first
    assert [r["id"] for r in lines(out / "results-2-of-2.jsonl")] == ["s2-n01", "s2-n02"]
    assert not (out / "results.jsonl").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["questions"], summary["answered"], summary["not_run"]) == (6, 2, 4)
    assert [st["state"] for st in summary["shards"]] == ["not started", "complete"]

    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 answered" in printed and "shard 1/2 not started" in printed
    assert main(eval_cmd(suite, out, tmp_path, "--shard", "1/3")) == 2  # another split of the same folder
    assert "split into 2 shards" in capsys.readouterr().err

    assert main(eval_cmd(suite, out, tmp_path, "--shard", "1/2", "--max-steps", "1")) == 0
    assert "shards: 2 complete" in capsys.readouterr().out
    records = RunFolder(out).records()
    assert sorted(r["id"] for r in records) == sorted(f"s{v}-n0{n}" for v in (1, 2, 3) for n in (1, 2))
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["answered"], summary["not_run"], summary["headline"]["n"]) == (6, 0, 6)
    report = json.loads((out / "report" / "report.json").read_text()) if (out / "report").exists() else None
    assert report is not None  # written by the first report; made again below with both shards
    assert main(["report", str(out)]) == 0
    capsys.readouterr()
    md = (out / "report" / "report.md").read_text()
    assert "### Shards" in md and "Every shard is complete." in md and "6 questions, 6 answered" in md

    # run whole, the folder is done: nothing is asked again
    assert main(eval_cmd(suite, out, tmp_path, "--max-steps", "1")) == 0
    capsys.readouterr()
    assert not (out / "results.jsonl").exists() or not lines(out / "results.jsonl")


@pytest.mark.slow
def test_shards_run_at_once_and_lock_out_a_whole_run(suite, tmp_path):
    import os

    out = tmp_path / "run"
    with ScriptedServer([ANSWER], repeat_last=True, latency_s=0.2) as server:
        base = [sys.executable, "-m", "longlens", *eval_cmd(suite, out, tmp_path, "--backend", "openai",
                                                            "--base-url", server.url, "--max-steps", "1")]
        with RunFolder(out, Shard(1, 3)).lock():  # a shard at work (flock refuses another open file as a process)
            whole = subprocess.run(base, capture_output=True, text=True, timeout=120)
            same = subprocess.run([*base, "--shard", "1/3"], capture_output=True, text=True, timeout=120)
            other = subprocess.run([*base, "--shard", "2/3"], capture_output=True, text=True, timeout=120)
        for refused in (whole, same):
            assert refused.returncode == 2 and f"another longlens process (pid {os.getpid()})" in refused.stderr
            assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        assert other.returncode == 0, other.stderr  # the other shards go on beside it
        procs = [subprocess.Popen([*base, "--shard", f"{i}/3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for i in (1, 2, 3)]
        codes = [(p.wait(timeout=300), p.communicate()) for p in procs]
    assert [c for c, _ in codes] == [0, 0, 0], codes
    ids = [r["id"] for i in (1, 2, 3) for r in lines(out / f"results-{i}-of-3.jsonl")]
    assert len(ids) == len(set(ids)) == 6 and not (out / "results.jsonl").exists()
    summary = json.loads((out / "summary.json").read_text())  # the last shard to finish saw them all
    assert summary["answered"] == 6 and [st["state"] for st in summary["shards"]] == ["complete"] * 3


# ---------------------------------------------------------------- failures and guesses as data
def test_a_broken_video_is_a_failed_question_in_summary_report_and_viewer(suite, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(suite, data)
    video = data / "s3.mp4"
    video.write_bytes(video.read_bytes()[:2000])  # the header only: no frames to decode
    out = tmp_path / "run"
    assert main(eval_cmd(data, out, tmp_path, "--max-steps", "1")) == 0
    printed = capsys.readouterr().out
    assert "6 questions: 4 answered" in printed and "2 failed" in printed and "failed questions (2 input)" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["errors"] == 2 and summary["errors_by_kind"] == {"input": 2}
    assert {f["id"] for f in summary["failed"]} == {"s3-n01", "s3-n02"}
    assert summary["answered"] + summary["errors"] + summary["missing_videos"] + summary["not_run"] == 6
    assert summary["headline"]["n"] == 6  # scored like unparsed replies: wrong under the default policy
    assert main(["report", str(out), "--thumbs", "0", "--fast-thumbs", "0"]) == 0
    capsys.readouterr()
    md = (out / "report" / "report.md").read_text()
    assert "### Failed questions" in md and "| s3-n01 | input |" in md
    viewer = (out / "report" / "viewer" / "index.html").read_text()
    blob = json.loads(viewer.split('type="application/json">')[1].split("</script>")[0])
    failed = [q for q in blob["questions"] if q["status"] == "error"]
    assert {q["id"] for q in failed} == {"s3-n01", "s3-n02"} and all(q["error_kind"] == "input"
                                                                               for q in failed)


def test_guesses_are_marked_on_steps_records_summary_report_viewer_and_cli(suite, tmp_path, capsys):
    out = tmp_path / "nozoom"
    assert main(eval_cmd(suite, out, tmp_path, "--agent", "no-zoom")) == 0  # the fast view alone: labels unreadable
    printed = capsys.readouterr().out
    records = lines(out / "results.jsonl")
    guessed = [r for r in records if r["guessed"]]
    assert guessed and all(r["totals"]["guessed"] for r in guessed)
    trace = json.loads((out / guessed[0]["trace"]).read_text())
    assert trace["steps"][-1]["guess"] is True and "this is a guess" in trace["steps"][-1]["completion"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["guessed"] == len(guessed) and f"{len(guessed)} guessed" in printed
    if len(guessed) < len(records):
        assert summary["without_guesses"]["n"] == len(records) - len(guessed)
    else:
        assert summary["without_guesses"]["n"] == 0
    assert main(["report", str(out), "--thumbs", "0", "--fast-thumbs", "0"]) == 0
    capsys.readouterr()
    md = (out / "report" / "report.md").read_text()
    assert f"Without the {len(guessed)} answers the backend called guesses" in md
    viewer = (out / "report" / "viewer" / "index.html").read_text()
    assert '"guessed": true' in viewer and '"guessed"' in (out / "report" / "viewer" / "index.html").read_text()
    assert 'matches(q, s)' in viewer  # the guessed filter

    key = json.loads((suite / "s1.json").read_text())
    needle = key["needles"][0]
    code = main(["ask", str(suite / "s1.mp4"), needle["question"], *sum((["--option", o] for o in needle["options"]),
                                                                      []), "--agent", "no-zoom"])
    assert code == 0
    answer = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("answer:"))
    assert "[a guess: offline" in answer


def test_zoomed_answers_from_evidence_are_not_guesses(suite, tmp_path, capsys):
    out = tmp_path / "zoom"
    assert main(eval_cmd(suite, out, tmp_path, "--limit", "2")) == 0
    capsys.readouterr()
    records = lines(out / "results.jsonl")
    assert any(r["correct"] and not r["guessed"] for r in records)


def test_retried_calls_are_counted_on_the_step_record_and_summary(suite, tmp_path, capsys):
    script = [{"status": 503, "error": "overloaded"}, {"raw": "<html>busy</html>"}, ANSWER]
    with ScriptedServer(script, repeat_last=True) as server:
        backend = OpenAIBackend(server.url, "scripted-model", backoff_s=0.01)
        done = backend.generate((Message.text("user", "hi"),))
        assert done.retries == 2 and "not JSON" in done.retry_error
        out = tmp_path / "run"
    # through eval: the CLI's backoff is real (about a second), one retry is enough
    with ScriptedServer([{"status": 503, "error": "overloaded"}, ANSWER], repeat_last=True) as server:
        assert main(eval_cmd(suite, out, tmp_path, "--backend", "openai", "--base-url", server.url, "--limit", "2",
                             "--max-steps", "1")) == 0
    printed = capsys.readouterr().out
    records = lines(out / "results.jsonl")
    assert [r["retries"] for r in records] == [1, 0] and "1 model calls retried" in printed
    step = json.loads((out / records[0]["trace"]).read_text())["steps"][0]
    assert step["retries"] == 1 and "HTTP 503" in step["retry_error"] and "overloaded" in step["retry_error"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["retries"], summary["retried_questions"]) == (1, 1)


# ---------------------------------------------------------------- progress on a narrow terminal
def test_progress_line_fits_the_width_and_keeps_done_total_and_eta():
    tally = Tally(480)
    for i in range(37):
        tally.add({"correct": i % 2 == 0, "parsed": "A", "wall_s": 2.0, "cost": {"visual_tokens": 30_000},
                   "guessed": i % 5 == 0})
    tally.add({"error_kind": "input", "parsed": None})
    for width in (20, 30, 50, 80, 120, 200):
        line = tally.line(width)
        assert len(line) <= width and line.startswith("eval 38/480") and "ETA " in line
    assert "acc 0.500" in tally.line(50) and "━" not in tally.line(50)
    wide = tally.line(200)
    assert "━" in wide and "8 guessed" in wide and "1 failed" in wide and "0 unparsed" in wide
