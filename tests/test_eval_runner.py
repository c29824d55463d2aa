"""The evaluation runner: kill -9 and resume, concurrency over endpoints, shared frames, cost, progress."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends.base import Backend, Completion, GenConfig
from longlens.backends.pool import PoolBackend
from longlens.backends.registry import make_backend
from longlens.backends.scripted_server import ScriptedServer
from longlens.bench.progress import Progress, Tally
from longlens.bench.runner import COST_KEYS, by_video, cost_summary, run_eval
from longlens.bench.sample import Sample
from longlens.errors import LongLensError
from longlens.prompts import Message

GEN = GenConfig()


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """Three 30 s videos with four needles each: 12 questions."""
    from media import needle_suite

    return needle_suite(tmp_path_factory.mktemp("suite12"), (1, 2, 3), duration_s=30, needles=4, stem="v")


def read_lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


# ---------------------------------------------------------------- kill -9, then resume
@pytest.mark.slow
def test_kill_9_while_records_are_written_loses_nothing_and_writes_nothing_twice(tmp_path):
    """24 kills, each landing after the killed process has written records of its own, while more are in flight
    and being written (four questions at a time, a reply every ~0.1 s); then a run to the end."""
    import random

    from longlens.bench.benchmarks.needles import load as load_needles
    from media import needle_suite

    suite = needle_suite(tmp_path / "suite", (1, 2, 3, 4), duration_s=60, needles=16, stem="k")
    ids = {s.id for s in load_needles(suite).samples}
    out, results = tmp_path / "run", tmp_path / "run" / "results.jsonl"
    rng = random.Random(0)
    kills = 0
    with ScriptedServer(["I get the answer.\n\n\\boxed{A}"], repeat_last=True, latency_s=0.1) as server:
        cmd = [sys.executable, "-m", "longlens", "eval", "needles", "--data", str(suite), "--out", str(out),
               "--backend", "openai", "--base-url", server.url, "--max-steps", "1", "--concurrency", "4",
               "--cache-dir", str(tmp_path / "cache")]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        while kills < 24:
            before = len(read_lines(results))
            if before >= len(ids) - 6:
                break  # keep questions for the last run
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            deadline = time.monotonic() + 120
            while len(read_lines(results)) <= before and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.25))  # its own records are being written now
            proc.kill()  # SIGKILL
            proc.wait()
            assert proc.returncode == -9, proc.stderr.read().decode()
            proc.stderr.close()
            assert len(read_lines(results)) > before  # this process had written records of its own
            kills += 1
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
    assert kills >= 20
    records = [json.loads(line) for line in read_lines(results)]  # every line is whole JSON
    got = [r["id"] for r in records]
    assert len(got) == len(set(got)) == len(ids) and set(got) == ids
    for r in records:  # every trace whole (written atomically: never a part, never 0 bytes)
        assert json.loads((out / r["trace"]).read_text())["steps"] and r["cost"]["calls"] == {"vlm": 1}
    assert not list((out / "traces").glob(".*.tmp"))  # what killed writers left is swept by the next run
    assert server.received >= len(ids)  # questions lost in flight were asked again


# ---------------------------------------------------------------- backend failure stops the run
def test_a_failing_server_stops_the_run_and_a_rerun_goes_on(suite, tmp_path, capsys):
    from longlens.cli.main import main

    out = tmp_path / "run"
    script = ["\\boxed{A}", {"status": 400, "error": "context too long"}, "\\boxed{B}"]
    with ScriptedServer(script, repeat_last=True) as server:
        cmd = ["eval", "needles", "--data", str(suite), "--out", str(out), "--backend", "openai", "--base-url",
               server.url, "--max-steps", "1", "--cache-dir", str(tmp_path / "cache")]
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "context too long" in err and len(err.strip().splitlines()) == 1
        first = [json.loads(x) for x in read_lines(out / "results.jsonl")]
        assert [bool(r["error"]) for r in first] == [False, True]  # the finished question, the failed one's error
        assert first[1]["error_kind"] == "server" and "context too long" in first[1]["error"]
        assert main(cmd) == 0
    from longlens.bench.runner import RunFolder

    records = RunFolder(out).records()  # the failed question was asked again: its last record counts
    assert len(records) == 12 and len({r["id"] for r in records}) == 12 and len(read_lines(out / "results.jsonl")) == 13
    assert sum(r["prediction"] == "A" for r in records) == 1 and all(not r["error"] for r in records)
    assert json.loads((out / "summary.json").read_text())["answered"] == 12


def test_a_failing_reasoning_server_stops_a_navigate_run_too(suite, tmp_path, capsys):
    from longlens.cli.main import main

    out = tmp_path / "nav"
    script = ["<think>ok</think><answer>A</answer>", {"status": 400, "error": "server melted"},
              "<think>ok</think><answer>B</answer>"]
    with ScriptedServer(script, repeat_last=True) as server:
        cmd = ["eval", "needles", "--data", str(suite), "--out", str(out), "--agent", "navigate", "--limit", "3",
               "--reasoning-url", server.url, "--caption-offline", "--cache-dir", str(tmp_path / "cache"),
               "--timeout", "5"]
        assert main(cmd) == 2
        assert "server melted" in capsys.readouterr().err
        assert [json.loads(x).get("error_kind") for x in read_lines(out / "results.jsonl")] == [None, "server"]
        assert main(cmd) == 0
    from longlens.bench.runner import RunFolder

    records = RunFolder(out).records()
    assert [r["prediction"] for r in records] == ["A", "B", "B"] and not any(r["error"] for r in records)


# ---------------------------------------------------------------- shared frames
class MeetingBackend(Backend):
    """Answers only when `n` calls are in flight at once (a barrier), so questions overlap for sure."""

    name = "meeting"

    def __init__(self, n: int):
        self.barrier = threading.Barrier(n, timeout=30)

    def generate(self, messages, gen=GEN):
        self.barrier.wait()
        return Completion(text="\\boxed{A}")


def test_questions_on_one_video_in_flight_together_decode_it_once(suite, tmp_path, monkeypatch):
    import longlens.agents.zoom.loop as zoom

    decoded = []
    real = zoom.decode

    def counting(info, plan, cache=None):
        decoded.append((info.fingerprint, plan.kind))
        return real(info, plan, cache=cache)

    monkeypatch.setattr(zoom, "decode", counting)
    for agent_name, kind in (("no-zoom", "fast"), ("uniform", "uniform")):
        decoded.clear()
        agent = ZoomAgent(MeetingBackend(2), ZoomConfig(agent=agent_name, max_steps=1), cache=None)
        samples = [Sample("t", f"q{i}", str(suite / "v1.mp4"), "Q?", ("a", "b"), "A") for i in range(2)]
        records = run_eval(samples, lambda s, a=agent: a.run(s.video, s.question, s.options), tmp_path / agent_name,
                           {"agent": agent_name}, concurrency=2)
        assert [k for _, k in decoded] == [kind]  # one decode for both questions
        charged = sorted(r["cost"]["frames_decoded"] for r in records)
        assert charged[0] == 0 and charged[1] > 0  # charged once, to the question that decoded
        assert not agent.shared._entries or len(agent.shared._entries) <= agent.shared.keep


def test_shared_frames_keep_only_what_is_held_or_recent():
    from longlens.agents.zoom import SharedFrames

    shared = SharedFrames(keep=1)
    a, b = set(), set()
    assert shared.get("x", lambda: "frames-x", a) == ("frames-x", True)
    assert shared.get("x", lambda: pytest.fail("made twice"), b) == ("frames-x", False)
    shared.get("y", lambda: "frames-y", b)
    shared.release(a)
    assert set(shared._entries) == {"x", "y"}  # b still holds x
    shared.release(b)
    assert len(shared._entries) == 1  # only the most recently released stays
    with pytest.raises(RuntimeError):
        shared.get("z", lambda: (_ for _ in ()).throw(RuntimeError("broken video")), a)
    assert shared.get("z", lambda: "frames-z", a) == ("frames-z", True)  # a failed maker leaves nothing
    # made ahead (a prefetch): charged to the first question that takes them
    assert shared.get("p", lambda: "frames-p", set(), charge=False) == ("frames-p", False)
    assert shared.get("p", lambda: pytest.fail("made twice"), a) == ("frames-p", True)
    assert shared.get("p", lambda: pytest.fail("made twice"), b) == ("frames-p", False)


def test_videos_are_decoded_ahead_as_wide_as_the_cores_allow(tmp_path, monkeypatch):
    import longlens.bench.runner as runner

    monkeypatch.setattr(runner.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(runner, "default_workers", lambda: 2)  # 8 cores, 2 decode threads a video: 4 ahead
    prepared, lock = [], threading.Lock()

    def prepare(sample):
        with lock:
            prepared.append(sample.video)

    samples = [Sample("t", f"q{i}", f"v{i // 2}.mp4", "Q?", ("a", "b"), "A") for i in range(14)]  # 7 videos
    def answer(sample):  # each question fails on its input (recorded; the run goes on): only the prefetch matters
        raise LongLensError(f"{sample.video}: not read in this test")

    run_eval(samples, answer, tmp_path / "run", {}, concurrency=2, prepare=prepare)
    assert sorted(prepared) == [f"v{i}.mp4" for i in range(1, 7)]  # every later video once, none twice


def test_the_next_video_is_decoded_ahead_and_charged_once(suite, tmp_path, monkeypatch):
    import longlens.agents.zoom.loop as zoom

    decoded, prepared = [], []
    real = zoom.decode
    monkeypatch.setattr(zoom, "decode", lambda info, plan, cache=None: decoded.append(info.path) or real(info, plan))
    agent = ZoomAgent(MeetingBackend(2), ZoomConfig(agent="no-zoom", max_steps=1), cache=None)
    videos = [str(suite / "v1.mp4"), str(suite / "v2.mp4")]
    samples = [Sample("t", f"q{i}", videos[i % 2], "Q?", ("a", "b"), "A") for i in range(4)]

    def prepare(sample):
        prepared.append(sample.id)
        agent.prefetch(sample.video)

    records = run_eval(samples, lambda s: agent.run(s.video, s.question, s.options), tmp_path / "run", {},
                       concurrency=2, prepare=prepare)
    assert prepared == ["q1"]  # the first question on v2, when v1's questions start
    assert len(decoded) == 2 and set(decoded) == set(videos)  # each video once: ahead, or by a question
    for video in videos:
        charged = sorted(r["cost"]["frames_decoded"] for r in records if samples[int(r["id"][1])].video == video)
        assert charged[0] == 0 and charged[1] > 0


def test_questions_run_grouped_by_video():
    samples = [Sample("t", f"q{i}", f"/v/{v}.mp4", "Q?") for i, v in enumerate("abacbca")]
    assert [s.id for s in by_video(samples)] == ["q0", "q2", "q6", "q1", "q4", "q3", "q5"]


def test_duplicate_question_ids_are_refused(tmp_path):
    samples = [Sample("t", "q1", "/v/a.mp4", "Q?"), Sample("t", "q1", "/v/b.mp4", "Q?")]
    with pytest.raises(LongLensError, match="'q1' appears twice"):
        run_eval(samples, lambda s: pytest.fail("asked"), tmp_path / "run", {})
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the pool
class Gate(Backend):
    def __init__(self, name):
        self.model = "m"
        self.label = name
        self.gate = threading.Event()
        self.seen = []

    def generate(self, messages, gen=GEN):
        self.seen.append(messages[0].parts[0].text)
        self.gate.wait(30)
        return Completion(text=self.label)


def test_pool_least_busy_and_round_robin():
    msg = (Message.text("user", "hi"),)
    a, b = Gate("a"), Gate("b")
    a.gate.set()
    b.gate.set()
    rr = PoolBackend([a, b], balance="round-robin")
    assert [rr.generate(msg).text for _ in range(4)] == ["a", "b", "a", "b"] and rr.calls == [2, 2]
    # least-busy: a call stuck on one member sends the next ones to the other
    a, b = Gate("a"), Gate("b")
    b.gate.set()
    pool = PoolBackend([a, b])
    stuck = threading.Thread(target=pool.generate, args=(msg,))
    stuck.start()
    while pool.busy != [1, 0]:
        time.sleep(0.001)
    assert [pool.generate(msg).text for _ in range(3)] == ["b", "b", "b"]
    a.gate.set()
    stuck.join()
    assert pool.busy == [0, 0] and pool.calls == [1, 3]
    with pytest.raises(LongLensError, match="balance"):
        PoolBackend([a], balance="random")


def test_endpoints_spread_calls_over_servers_and_eval_uses_them(suite, tmp_path, capsys):
    from longlens.cli.main import main

    with ScriptedServer(["\\boxed{A}"], repeat_last=True) as s1, ScriptedServer(["\\boxed{A}"], repeat_last=True) as s2:
        backend = make_backend("openai", endpoints=[s1.url, s2.url], balance="round-robin")
        backend.check()
        assert backend.model == "scripted-model" and s1.url in backend.describe() and s2.url in backend.describe()
        out = tmp_path / "run"
        rc = main(["eval", "needles", "--data", str(suite), "--out", str(out), "--backend", "openai", "--endpoints",
                   f"{s1.url},{s2.url}", "--max-steps", "1", "--concurrency", "4", "--cache-dir", str(tmp_path / "c")])
        assert rc == 0 and len(s1.requests) + len(s2.requests) == 12 and s1.requests and s2.requests
    with pytest.raises(LongLensError, match="--endpoints works with the openai backend"):
        make_backend("offline", endpoints=["http://127.0.0.1:1/v1"])


def test_server_latency_is_added_to_every_call():
    with ScriptedServer(["\\boxed{A}"], repeat_last=True, latency_s=0.2) as server:
        backend = make_backend("openai", base_url=server.url)
        backend.check()
        t0 = time.perf_counter()
        backend.generate((Message.text("user", "hi"),))
        assert time.perf_counter() - t0 >= 0.2
    with pytest.raises(ValueError, match="latency_s"):
        ScriptedServer([], latency_s=-1)


# ---------------------------------------------------------------- cost, navigate, progress
@pytest.mark.slow
def test_cost_has_one_set_of_keys_for_zoom_and_navigate(suite, tmp_path, capsys):
    from longlens.cli.main import main

    zoom_script = tmp_path / "zoom.json"
    zoom_script.write_text(json.dumps(["I need to zoom in.\n\n\\boxed{[3, 9]}", "\\boxed{B}"] * 3))
    common = ["eval", "needles", "--data", str(suite), "--limit", "3", "--cache-dir", str(tmp_path / "cache")]
    assert main([*common, "--out", str(tmp_path / "zoom"), "--backend", "scripted", "--script", str(zoom_script),
                 "--max-steps", "2"]) == 0
    nav_script = tmp_path / "nav.json"
    nav_script.write_text(json.dumps(["<think>look</think><tool>get_caption(1)</tool>",
                                      "<think>ok</think><answer>B</answer>"] * 3))
    assert main([*common, "--out", str(tmp_path / "nav"), "--agent", "navigate", "--reasoning-script",
                 str(nav_script), "--caption-offline"]) == 0
    printed = capsys.readouterr().out
    assert "[1/3] v1-" in printed and "cost per question:" in printed
    for name, calls in (("zoom", {"vlm": 2}), ("nav", {"reasoning": 2})):
        records = [json.loads(x) for x in read_lines(tmp_path / name / "results.jsonl")]
        assert len(records) == 3
        for r in records:
            assert tuple(r["cost"]) == COST_KEYS and r["cost"]["steps"] == 2
            assert {k: r["cost"]["calls"][k] for k in calls} == calls and r["totals"]
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["cost"] == cost_summary(records) and summary["cost"]["total"]["steps"] == 6
        assert summary["cost"]["per_question"]["steps"] == 2
    zoom_cost = [json.loads(x)["cost"] for x in read_lines(tmp_path / "zoom" / "results.jsonl")]
    assert all(c["visual_tokens"] > 0 for c in zoom_cost)
    # one video: the first question decodes; the others reuse its fast view (memory) and clip (disk cache)
    assert zoom_cost[0]["frames_decoded"] > 0 and [c["frames_decoded"] for c in zoom_cost[1:]] == [0, 0]
    nav = [json.loads(x) for x in read_lines(tmp_path / "nav" / "results.jsonl")]
    assert nav[0]["cost"]["calls"]["caption"] > 0 and nav[0]["prediction"]


def test_progress_plain_lines_and_live_bar():
    rec = {"id": "q1", "correct": True, "parsed": "A", "wall_s": 2.0,
           "cost": {"visual_tokens": 900, "text_tokens": 100}}
    plain = io.StringIO()
    with Progress(4, [{"id": "q0", "correct": False, "parsed": None, "wall_s": 1.0}], stream=plain) as p:
        p.update(rec, 2, 4)
        p.update({**rec, "id": "q2", "correct": False, "parsed": "B"}, 3, 4)
    lines = plain.getvalue().splitlines()
    assert lines[0].startswith("[2/4] q1: ok  (acc 0.500, 1 unparsed, 500 tokens/q, 1.50 s/q, ETA ")
    assert lines[1].startswith("[3/4] q2: wrong  (acc 0.333, 1 unparsed")
    live = io.StringIO()
    with Progress(2, stream=live, live=True) as p:
        p.update(rec, 1, 2)
    shown = live.getvalue()
    assert "1/2" in shown and "acc 1.000" in shown and "[1/2] q1" not in shown


def test_eta_from_this_runs_pace():
    now = iter([0.0, 10.0])
    tally = Tally(10, [{"correct": True}] * 4, now=lambda: next(now))
    assert tally.eta_s() is None  # nothing finished in this run yet
    tally.add({"correct": True})
    tally.add({"correct": False})
    assert tally.eta_s() == pytest.approx(10.0 / 2 * 4)


# ---------------------------------------------------------------- one process per run folder
def test_a_second_process_on_a_run_folder_is_refused_with_the_holders_pid(suite, tmp_path, capsys):
    from longlens.bench.runner import RunFolder
    from longlens.cli.main import main

    out = tmp_path / "run"
    with RunFolder(out).lock():  # another open file description: flock refuses it as it would another process
        code = main(["eval", "needles", "--data", str(suite), "--out", str(out), "--limit", "1",
                     "--cache-dir", str(tmp_path / "cache")])
        err = capsys.readouterr().err
    assert code == 2 and f"pid {os.getpid()}" in err and len(err.strip().splitlines()) == 1
    assert not (out / "results.jsonl").exists()
    assert main(["eval", "needles", "--data", str(suite), "--out", str(out), "--limit", "1",
                 "--cache-dir", str(tmp_path / "cache")]) == 0  # released: the next one goes


@pytest.mark.slow
def test_two_eval_processes_on_one_folder_write_nothing_twice(suite, tmp_path):
    out = tmp_path / "run"
    with ScriptedServer(["I get the answer.\n\n\\boxed{A}"], repeat_last=True, latency_s=0.1) as server:
        cmd = [sys.executable, "-m", "longlens", "eval", "needles", "--data", str(suite), "--out", str(out),
               "--backend", "openai", "--base-url", server.url, "--max-steps", "1",
               "--cache-dir", str(tmp_path / "cache")]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "another longlens process" in refused and "Traceback" not in refused
    ids = [json.loads(x)["id"] for x in read_lines(out / "results.jsonl")]
    assert len(ids) == len(set(ids)) == 12


def test_text_utf8_cannot_hold_is_kept_as_escapes_and_files_are_whole(tmp_path):
    from longlens.agents.trace import Trace
    from longlens.jsonl import append_json, read_lines, write_json

    trace = Trace(question="Q?\ud800", options=[], video={}, agent="zoom", backend="x", config={}, steps=[],
                  answer="\ud800 \\boxed{A}", choice=None, totals={})
    path = trace.save(tmp_path / "t.json")
    assert Trace.load(path).answer == "\ud800 \\boxed{A}" and not list(tmp_path.glob(".*tmp"))
    append_json(tmp_path / "r.jsonl", {"prediction": "\udfff x\x00"})
    assert read_lines(tmp_path / "r.jsonl") == [{"prediction": "\udfff x\x00"}]
    write_json(tmp_path / "s.json", {"a": "\ud800"})
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8")) == {"a": "\ud800"}


@pytest.mark.parametrize("entry", [{"raw": "<html>502 Bad Gateway</html>"}, {"body": {"choices": []}},
                                   {"body": "just a string"}, {"body": {"choices": [{"message": None}]}},
                                   {"body": {"choices": [{"message": {"content": 5}}]}}, {"raw": "\ud800"}])
def test_a_200_that_is_no_completion_is_a_server_error_retried_then_one_line(entry):
    from longlens.backends.base import BackendError

    hi = (Message.text("user", "hi"),)
    with ScriptedServer([entry, entry, "\\boxed{A}"]) as server:
        backend = make_backend("openai", base_url=server.url, retries=2)
        backend.check()
        backend.backoff_s = 0.01
        assert backend.generate(hi).text == "\\boxed{A}"  # retried like a 5xx, then answered
    with ScriptedServer([entry], repeat_last=True) as server:
        backend = make_backend("openai", base_url=server.url, retries=1)
        backend.check()
        backend.backoff_s = 0.01
        with pytest.raises(BackendError) as err:
            backend.generate(hi)
    assert "HTTP 200" in str(err.value) and "\n" not in str(err.value)


def test_odd_replies_that_are_completions_are_recorded_as_data(suite, tmp_path, capsys):
    """NUL bytes, lone surrogates, two megabytes of text, counts that are no counts: recorded, never a traceback."""
    from longlens.cli.main import main

    def completion(content, usage):
        return {"body": {"id": "x", "object": "chat.completion", "model": 7, "created": 0, "usage": usage,
                         "choices": [{"index": 0, "finish_reason": ["stop"],
                                      "message": {"role": "assistant", "content": content}}]}}

    script = [completion("\x00\ud800 I get the answer.\n\n\\boxed{A}", {"prompt_tokens": "many"}),
              completion("x" * 2_000_000 + " \\boxed{B}", {"prompt_tokens": -1, "completion_tokens": 2.5}),
              completion("\\boxed{C}", None)]
    out = tmp_path / "run"
    with ScriptedServer(script) as server:
        assert main(["eval", "needles", "--data", str(suite), "--out", str(out), "--backend", "openai", "--base-url",
                     server.url, "--max-steps", "1", "--limit", "3", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "Traceback" not in capsys.readouterr().err
    records = [json.loads(x) for x in read_lines(out / "results.jsonl")]
    assert [r["parsed"] for r in records] == ["A", "B", "C"]
    steps = [json.loads((out / r["trace"]).read_text())["steps"][0] for r in records]
    assert steps[0]["completion"].startswith("\x00\ud800") and len(steps[1]["completion"]) > 2_000_000
    assert [s["prompt_tokens"] for s in steps] == [None, None, None] and steps[1]["completion_tokens"] is None


def test_every_video_missing_is_one_line_not_an_accuracy_over_nothing(suite, tmp_path, capsys):
    from longlens.cli.main import main

    code = main(["eval", "needles", "--data", str(suite), "--videos", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and "none of the 12 questions has its video" in err and "accuracy" not in err


def test_scripted_server_cli_busy_port_latency_and_bounded_log(tmp_path, capsys):
    from longlens.cli.main import main

    script = tmp_path / "s.json"
    script.write_text('["\\\\boxed{A}"]')
    with ScriptedServer(["x"]) as busy:
        port = busy.httpd.server_address[1]
        assert main(["scripted-server", str(script), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "pick another --port" in err and len(err.strip().splitlines()) == 1
    with ScriptedServer(["\\boxed{A}"], repeat_last=True, keep_requests=2) as server:
        backend = make_backend("openai", base_url=server.url)
        backend.check()
        for _ in range(5):
            backend.generate((Message.text("user", "hi"),))
        assert server.received == 5 and len(server.requests) == 2


def test_uniform_agent_is_sized_from_the_cli(suite, tmp_path, capsys):
    from longlens.cli.main import main

    out = tmp_path / "u"
    assert main(["eval", "needles", "--data", str(suite), "--out", str(out), "--agent", "uniform", "--limit", "1",
                 "--uniform-frames", "8", "--uniform-res", "64", "--cache-dir", str(tmp_path / "cache")]) == 0
    zoom = json.loads((out / "config.json").read_text())["config"]["zoom"]
    assert (zoom["uniform_frames"], zoom["uniform_budget"]) == (8, 64 * 28 * 28)
    (record,) = [json.loads(x) for x in read_lines(out / "results.jsonl")]
    assert 0 < record["cost"]["visual_tokens"] <= 8 * 64 + 16  # 8 frames at 64 tokens (default: 64 at 256)

    # the whole sample's budget, as an equal-budget comparison gives it (a zoom run's visual tokens per question)
    out = tmp_path / "b"
    assert main(["eval", "needles", "--data", str(suite), "--out", str(out), "--agent", "uniform", "--limit", "1",
                 "--uniform-frames", "16", "--uniform-budget", "1000", "--cache-dir", str(tmp_path / "cache")]) == 0
    zoom = json.loads((out / "config.json").read_text())["config"]["zoom"]
    assert (zoom["uniform_frames"], zoom["uniform_budget"]) == (16, 1000 // 8 * 28 * 28)
    (record,) = [json.loads(x) for x in read_lines(out / "results.jsonl")]
    assert 1000 * 0.85 < record["cost"]["visual_tokens"] <= 1000 * 1.15  # frame sides round to the 28-pixel grid
    capsys.readouterr()
    assert main(["eval", "needles", "--data", str(suite), "--out", str(out), "--agent", "uniform",
                 "--uniform-res", "64", "--uniform-budget", "1000"]) == 2
    assert "not both" in capsys.readouterr().err
