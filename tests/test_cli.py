"""The commands end to end on real (generated) video files."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from longlens.cli.main import main


def test_info_json(coded_video, capsys):
    assert main(["info", str(coded_video), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 600 and info["duration_s"] == 20.0 and info["width"] == 640
    assert info["keyframes"] >= 10


def test_plan_prints_fast_view_and_clips(coded_video, capsys):
    assert main(["plan", str(coded_video), "--clip", "2", "8", "--clip", "0:10", "0:15"]) == 0
    out = capsys.readouterr().out
    assert "fast view" in out and "40 frames" in out and "280x168" in out
    assert "clip [2, 8]" in out and "12 frames" in out and "clip [10, 15]" in out and "10 frames" in out
    assert main(["plan", str(coded_video), "--json"]) == 0
    (plan,) = json.loads(capsys.readouterr().out)
    assert plan["n_frames"] == 40 and plan["visual_tokens"] == 20 * 60


def test_frames_writes_images_and_sheet(coded_video, tmp_path, capsys):
    out = tmp_path / "shots"
    assert main(["frames", str(coded_video), "--clip", "4", "6", "--out", str(out)]) == 0
    files = sorted(out.glob("slow-*.jpg"))
    assert len(files) == 4 and Image.open(files[0]).size == (868, 476)
    assert main(["frames", str(coded_video), "--out", str(out), "--sheet"]) == 0
    assert (out / "fast-sheet.jpg").exists()
    assert "wrote" in capsys.readouterr().out


def test_cache_command_reports_and_clears(coded_video, tmp_path, capsys):
    cache_dir = tmp_path / "c"
    assert main(["frames", str(coded_video), "--out", str(tmp_path / "o"), "--cache-dir", str(cache_dir)]) == 0
    assert main(["cache", "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 entries" in out  # the index and the fast view
    assert main(["cache", "--cache-dir", str(cache_dir), "--clear"]) == 0
    assert "0 entries" in capsys.readouterr().out


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--minutes", "0.5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "question" in out and "answer:" in out and "fast view" in out and "verdict   right" in out
    assert "step 1  zoom" in out and "trace" in out
    assert len(list(tmp_path.glob("*.jpg"))) == 3  # the fast view on two pages, the zoom-in clip on one
    assert main(["demo", "--minutes", "0.5", "--out", str(tmp_path)]) == 0  # second run reuses the video
    assert "made earlier" in capsys.readouterr().out


def test_console_script_and_usage_errors():
    proc = subprocess.run([sys.executable, "-m", "longlens.cli.main", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("longlens ")
    proc = subprocess.run([sys.executable, "-m", "longlens.cli.main", "info"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "longlens.cli.main"], capture_output=True, text=True)
    assert proc.returncode == 2


def _script(tmp_path, replies):
    path = tmp_path / "script.json"
    path.write_text(json.dumps(replies))
    return str(path)


OPTS = ["--option", "red", "--option", "green", "--option", "blue", "--option", "white"]


def test_ask_with_scripted_backend(coded_video, tmp_path, capsys):
    script = _script(tmp_path, ["I need to zoom in on the video.\n\n\\boxed{[4, 6]}", "\\boxed{B}"])
    trace_path = tmp_path / "t.json"
    rc = main(["ask", str(coded_video), "What colour?", *OPTS, "--backend", "scripted", "--script", script,
               "--trace", str(trace_path), "--fast-mode", "accurate"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "step 1  zoom [4, 6] -> [0, 11]" in out and "40 frames" in out
    assert "step 2  answer B" in out and "answer: B (green)" in out and f"trace: {trace_path}" in out
    trace = json.loads(trace_path.read_text())
    assert trace["choice"] == "B" and len(trace["steps"]) == 2 and trace["config"]["fast_mode"] == "accurate"


def test_ask_openai_backend_against_scripted_server(coded_video, tmp_path, capsys):
    from longlens.backends.scripted_server import ScriptedServer

    with ScriptedServer(["\\boxed{D}"]) as server:
        rc = main(["ask", str(coded_video), "Q?", *OPTS, "--agent", "no-zoom", "--backend", "openai",
                   "--base-url", server.url, "--json", "--trace", str(tmp_path / "t.json")])
    assert rc == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["choice"] == "D" and trace["agent"] == "no-zoom" and trace["backend"].startswith("openai:scripted")


def test_ask_errors_are_one_line(coded_video, tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cases = [
        (["ask", str(coded_video), "Q?", "--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1"],
         "cannot reach"),
        (["ask", str(coded_video), "Q?", "--backend", "scripted"], "needs --script"),
        (["ask", str(tmp_path / "missing.mp4"), "Q?", "--backend", "scripted", "--script",
          _script(tmp_path, ["\\boxed{A}"])], "no such file"),
        (["ask", str(coded_video), "Q?", "--backend", "scripted", "--script", _script(tmp_path, [])],
         "the script has 0 replies"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], (argv, err)


def test_scripted_server_command(tmp_path):
    import urllib.request

    script = _script(tmp_path, ["hello"])
    proc = subprocess.Popen([sys.executable, "-m", "longlens.cli.main", "scripted-server", script, "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split(" at ")[1].split(" ")[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/models", timeout=10) as resp:
            assert json.loads(resp.read())["data"][0]["id"] == "scripted-model"
    finally:
        proc.terminate()
        proc.wait(10)


def test_python_api(coded_video, tmp_path):
    import longlens
    from longlens.backends import ScriptedBackend

    result = longlens.ask(coded_video, "Q?", ["a", "b"], backend=ScriptedBackend(["\\boxed{[2, 4]}", "\\boxed{A}"]),
                          cache=False)
    assert result.choice == "A" and result.trace.steps[0].clip_added == [0.0, 9.0]
