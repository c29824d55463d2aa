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
    assert "question" in out and "answer" in out and "fast view" in out
    assert len(list(tmp_path.glob("*.jpg"))) == 2
    assert main(["demo", "--minutes", "0.5", "--out", str(tmp_path)]) == 0  # second run reuses the video
    assert "made earlier" in capsys.readouterr().out


def test_console_script_and_usage_errors():
    proc = subprocess.run([sys.executable, "-m", "longlens.cli.main", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("longlens ")
    proc = subprocess.run([sys.executable, "-m", "longlens.cli.main", "info"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "longlens.cli.main"], capture_output=True, text=True)
    assert proc.returncode == 2
