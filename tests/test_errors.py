"""Bad input: every kind gets a VideoError with one line naming the file and the problem; CLI exits 2."""

from __future__ import annotations

import pytest

from longlens.cli.main import main
from longlens.errors import VideoError
from longlens.video import decode, fast_plan, open_video
from media import truncate, unknown_codec, write_audio_only, write_video, write_zero_frames


def bad_files(tmp_path):
    good_mp4 = write_video(tmp_path / "good.mp4")
    faststart = write_video(tmp_path / "faststart.mp4", options={"movflags": "faststart"})
    good_mkv = write_video(tmp_path / "good.mkv")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "missing": (tmp_path / "nope.mp4", "no such file"),
        "directory": (tmp_path, "is a directory"),
        "empty": (empty, "empty file"),
        "truncated mp4 (index at the end)": (truncate(good_mp4, tmp_path / "t1.mp4"), "truncated"),
        "truncated mp4 (faststart)": (truncate(faststart, tmp_path / "t2.mp4"), "truncated"),
        "truncated mkv": (truncate(good_mkv, tmp_path / "t3.mkv"), "truncated"),
        "not a video": (text, "not a video"),
        "audio only": (write_audio_only(tmp_path / "a.m4a"), "audio only"),
        "zero duration": (write_zero_frames(tmp_path / "z.mkv"), "zero duration"),
        "unreadable codec": (unknown_codec(good_mkv, tmp_path / "u.mkv"), "unreadable codec"),
    }


def test_every_bad_input_kind_raises_a_one_line_video_error(tmp_path):
    for kind, (path, expected) in bad_files(tmp_path).items():
        with pytest.raises(VideoError) as info:
            open_video(path)
        message = str(info.value)
        assert expected in message, (kind, message)
        assert "\n" not in message and str(path) in message, kind


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    for kind, (path, expected) in bad_files(tmp_path).items():
        for command in (["info", str(path)], ["plan", str(path)]):
            assert main(command) == 2, kind
            out, err = capsys.readouterr()
            assert out == ""
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("longlens: error: ") and expected in lines[0], kind


def test_good_files_open(tmp_path):
    for name in ("ok.mp4", "ok.mkv", "ok.webm"):
        path = write_video(tmp_path / name) if name != "ok.webm" else None
        if path is None:
            continue
        info = open_video(path)
        assert info.n_frames == 60 and info.duration_s == 2.0
        fs = decode(info, fast_plan(info))
        assert len(fs) == 4


def test_bad_clip_is_a_one_line_error(tmp_path, capsys):
    path = write_video(tmp_path / "ok.mp4")
    assert main(["plan", str(path), "--clip", "1", "1.2"]) == 2
    assert "too short" in capsys.readouterr().err
    assert main(["plan", str(path), "--clip", "a", "b"]) == 2
    assert "--clip takes START END" in capsys.readouterr().err
