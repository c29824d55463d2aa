"""Tests of the synthetic video maker (longlens.synth) and `longlens make-video`.

Only short, small videos are made here; the whole file runs in seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from av.video.frame import PictureType
from PIL import Image

from longlens.errors import LongLensError
from longlens.synth import (
    COLOURS,
    NUMBERS,
    SHAPES,
    WORDS,
    AnswerKey,
    FrameMaker,
    SynthError,
    default_needle_count,
    load_answer_key,
    make_video,
    read_frame_code,
)
from longlens.synth.code import MAX_INDEX, FrameCodePainter, band_rows
from longlens.synth.key import LETTERS

SMALL = (112, 196)  # height, width a model might sample at


# --- helpers -------------------------------------------------------------------------------------------


def decode_all(path) -> list[tuple[int, av.VideoFrame]]:
    """(frame index from pts, frame) for every decoded frame, in display order."""
    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        rate = s.average_rate
        for f in c.decode(s):
            out.append((round(f.pts * s.time_base * rate), f))
    return out


def rgb_frames(path) -> list[tuple[int, np.ndarray, str]]:
    return [(i, f.to_ndarray(format="rgb24"), PictureType(f.pict_type).name) for i, f in decode_all(path)]


def downscale(rgb: np.ndarray, hw=SMALL) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((hw[1], hw[0]), Image.Resampling.BICUBIC))


def keyframe_indices(path) -> tuple[list[int], Fraction]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        rate = s.average_rate
        keys = sorted(round(p.pts * s.time_base * rate) for p in c.demux(s) if p.pts is not None and p.is_keyframe)
    return keys, rate


def crop(rgb: np.ndarray, box) -> np.ndarray:
    h, w = rgb.shape[:2]
    x, y, bw, bh = box
    return rgb[round(y * h) : round((y + bh) * h), round(x * w) : round((x + bw) * w)]


# --- fixtures: three small videos, made once ------------------------------------------------------------


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """320x180, 8 s, frame code, B-frames, 1 s GOP, short scenes (so there are cuts)."""
    path = tmp_path_factory.mktemp("synth") / "coded.mp4"
    key = make_video(
        path, duration_s=8, width=320, height=180, gop_s=1.0, seed=7, frame_code=True, bframes=2,
        scene_s=(2.0, 3.5), needles=1,
    )  # fmt: skip
    return path, key


@pytest.fixture(scope="module")
def hd_coded(tmp_path_factory):
    """1280x720, 1 s, frame code, preset veryfast (B-frames by default): the heaviest downscale."""
    path = tmp_path_factory.mktemp("synth") / "hd.mp4"
    key = make_video(path, duration_s=1, width=1280, height=720, seed=3, frame_code=True, preset="veryfast")
    return path, key


@pytest.fixture(scope="module")
def needled(tmp_path_factory):
    """640x360, 10.5 s, one text and one object needle."""
    path = tmp_path_factory.mktemp("synth") / "needles.mp4"
    key = make_video(path, duration_s=10.5, width=640, height=360, seed=11, needles=2, gop_s=2.0)
    return path, key


# --- the file ------------------------------------------------------------------------------------------


def test_exact_frame_count_and_duration(coded):
    path, key = coded
    assert key.frame_count == 240 and key.duration_s == pytest.approx(8.0)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        assert s.format.name == "yuv420p"
        assert (s.width, s.height) == (320, 180)
        assert s.average_rate == 30
        assert s.frames == 240
        assert c.duration / 1e6 == pytest.approx(8.0, abs=1 / 30)
    frames = decode_all(path)
    assert [i for i, _ in frames] == list(range(240))  # constant frame rate, nothing dropped or doubled


def test_keyframes_at_most_a_gop_apart_and_at_every_cut(coded, needled):
    for path, key in (coded, needled):
        keys, rate = keyframe_indices(path)
        keyint = round(key.gop_s * key.fps)
        assert keys[0] == 0
        assert max(np.diff([*keys, key.frame_count])) <= keyint
        cuts = [round(t * key.fps) for t in key.scene_starts_s]
        assert set(cuts) <= set(keys)
    assert len(coded[1].scene_starts_s) >= 2  # the coded video does have cuts


def test_b_frames_when_asked(coded, hd_coded):
    for path, _ in (coded, hd_coded):
        types = {t for _, _, t in rgb_frames(path)}
        assert "B" in types


def test_default_preset_has_no_b_frames(needled):
    assert "B" not in {t for _, _, t in rgb_frames(needled[0])}


@pytest.mark.parametrize("video", ["coded", "hd_coded"])
def test_frame_code_reads_back_on_every_frame(video, request):
    path, key = request.getfixturevalue(video)
    frames = rgb_frames(path)
    assert len(frames) == key.frame_count
    for i, rgb, _ in frames:
        assert read_frame_code(rgb) == i
        assert read_frame_code(downscale(rgb)) == i
        assert read_frame_code(downscale(rgb, (336, 588))) == i


def test_frame_code_all_bits(tmp_path):
    """High bits, alternating bits and the extremes survive YUV->RGB and a 112x196 bicubic downscale."""
    maker = FrameMaker(duration_s=2, width=640, height=360, seed=2)
    painter = FrameCodePainter(640, 360)
    rng = np.random.default_rng(0)
    values = [0, 1, MAX_INDEX, 0x15555, 0x0AAAA, 1 << 16, *rng.integers(0, MAX_INDEX + 1, 20).tolist()]
    for k, value in enumerate(values):
        yuv = maker.render(k)
        planes = yuv.reshape(-1)
        y = planes[: 640 * 360].reshape(360, 640)
        u = planes[640 * 360 : 640 * 360 * 5 // 4].reshape(180, 320)
        v = planes[640 * 360 * 5 // 4 :].reshape(180, 320)
        painter.draw(y, u, v, value)
        rgb = av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_ndarray(format="rgb24")
        assert read_frame_code(rgb) == value
        assert read_frame_code(downscale(rgb)) == value
    with pytest.raises(ValueError):
        painter.draw(y, u, v, MAX_INDEX + 1)


def test_frame_code_only_changes_the_band():
    rows = band_rows(180)
    assert rows <= 0.12 * 180
    plain = FrameMaker(duration_s=2, width=320, height=180, seed=2)
    coded = FrameMaker(duration_s=2, width=320, height=180, seed=2, frame_code=True)
    assert plain.key("v") == dataclasses.replace(coded.key("v"), frame_code=False)
    for i in (0, 17, 59):
        a, b = plain.render(i), coded.render(i)
        assert np.array_equal(a[rows:180], b[rows:180])  # luma below the band
        assert not np.array_equal(a[:rows], b[:rows])
    with pytest.raises(ValueError):  # noise is no frame code
        read_frame_code(np.random.default_rng(0).integers(0, 256, (112, 196, 3), dtype=np.uint8))


def test_needle_label_present_only_inside_its_span(needled):
    path, key = needled
    assert sorted(n.kind for n in key.needles) == ["object", "text"]
    frames = {i: rgb for i, rgb, _ in rgb_frames(path)}
    for n in key.needles:
        first, last = n.frame_range(key.fps)[0], n.frame_range(key.fps)[-1]
        if n.kind == "text":

            def score(rgb, n=n):
                return (crop(rgb, n.box).min(axis=2) > 215).mean()  # white label

        else:
            target = np.array(COLOURS[n.content.split()[0]])

            def score(rgb, n=n, target=target):
                return (np.abs(crop(rgb, n.box).astype(int) - target).max(axis=2) < 60).mean()

        inside = [score(frames[i]) for i in (first, (first + last) // 2, last)]
        outside = [score(frames[i]) for i in (first - 1, last + 1, first - 30, last + 30)]
        # a white label fills its box; a star or cross fills a fifth of it (and an outline is white)
        assert min(inside) > (0.6 if n.kind == "text" else 0.15), (n, inside)
        assert max(outside) < 0.03, (n, outside)


def test_answer_key_json_next_to_video(needled):
    path, key = needled
    json_path = path.with_suffix(".json")
    assert json_path.exists()
    assert load_answer_key(json_path) == key
    assert AnswerKey.from_dict(json.loads(json_path.read_text())) == key
    assert key.video == path.name
    assert (key.width, key.height, key.fps, key.seed, key.gop_s) == (640, 360, 30.0, 11, 2.0)


def test_load_answer_key_errors(tmp_path):
    with pytest.raises(LongLensError, match="not found"):
        load_answer_key(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LongLensError, match="not valid JSON"):
        load_answer_key(bad)
    bad.write_text(json.dumps({"video": "x.mp4"}))
    with pytest.raises(LongLensError):
        load_answer_key(bad)


# --- planning: determinism and needle rules (no encoding) ---------------------------------------------


def test_same_seed_same_key_and_pixels():
    a = FrameMaker(duration_s=120, width=320, height=180, seed=5)
    b = FrameMaker(duration_s=120, width=320, height=180, seed=5)
    assert a.key("v.mp4") == b.key("v.mp4")
    probe = [0, 1, 299, 1500, 3599] + [n.start for n in a.needles]
    for i in probe:
        assert np.array_equal(a.render(i), b.render(i))
    # random access gives the same pixels as sequential rendering
    assert np.array_equal(a.render(1500), FrameMaker(duration_s=120, width=320, height=180, seed=5).render(1500))


def test_different_seed_different_key_and_pixels():
    a = FrameMaker(duration_s=120, width=320, height=180, seed=5)
    b = FrameMaker(duration_s=120, width=320, height=180, seed=6)
    ka, kb = a.key("v.mp4"), b.key("v.mp4")
    assert [n.to_dict() for n in ka.needles] != [n.to_dict() for n in kb.needles]
    assert not np.array_equal(a.render(10), b.render(10))


def test_make_video_is_deterministic(tmp_path, coded):
    path, key = coded
    again = make_video(
        tmp_path / "coded.mp4", duration_s=8, width=320, height=180, gop_s=1.0, seed=7, frame_code=True,
        bframes=2, scene_s=(2.0, 3.5), needles=1,
    )  # fmt: skip
    assert again == key


def test_never_a_still_frame():
    maker = FrameMaker(duration_s=40, width=192, height=108, seed=1)
    prev = maker.render(0)
    for i in range(1, maker.frame_count):
        cur = maker.render(i)
        assert not np.array_equal(cur, prev), i
        prev = cur


@pytest.mark.parametrize("duration", [7, 10, 45, 61, 600, 3600])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_needle_rules(duration, seed):
    maker = FrameMaker(duration_s=duration, width=1280, height=720, seed=seed)
    key = maker.key("v.mp4")
    expected = min(60, max(1, duration // 60))
    assert len(key.needles) == expected == default_needle_count(duration)
    prev_end = 0.0
    texts = {n.content for n in key.needles if n.kind == "text"}
    for n in key.needles:
        assert 2.0 - 1e-9 <= n.end_s - n.start_s <= 8.0 + 1e-9
        assert n.start_s >= 2.0 - 1e-9 and n.end_s <= duration - 2.0 + 1e-9
        assert n.start_s >= prev_end  # sorted, non-overlapping
        prev_end = n.end_s
        x, y, w, h = n.box
        assert 0 <= x and x + w <= 1 and y >= 0.12 and y + h <= 1
        assert not (x + w > 0.70 and y + h > 0.75)  # bottom-right corner stays free
        assert len(set(n.options)) == 4 and n.answer in LETTERS
        truth = n.answer_text
        if n.kind == "text":
            assert truth == n.content
            pool = NUMBERS if n.content in NUMBERS else WORDS
            assert set(n.options) <= set(pool)
            assert not (set(n.options) - {truth}) & texts  # no distractor appears in this video
            assert 0.04 <= h <= 0.1  # small label
        else:
            colour, shape = n.content.split()
            assert colour in COLOURS and shape in SHAPES
            assert truth in (colour, shape)
            assert set(n.options) <= (set(COLOURS) if truth == colour else set(SHAPES))
            assert 0.015 <= w * h <= 0.06  # a few percent of the frame
    ids = [n.id for n in key.needles]
    assert len(set(ids)) == len(ids)


def test_object_questions_are_unambiguous():
    key = FrameMaker(duration_s=3600, width=640, height=360, seed=4, needle_kinds=("object",)).key("v.mp4")
    objects = [tuple(n.content.split()) for n in key.needles]
    assert len(objects) == 60 and len(set(objects)) == 48  # at most 48 distinct pairs
    for n in key.needles:
        if "at about" in n.question:
            continue
        colour, shape = n.content.split()
        others = [o for o in objects if o != (colour, shape)]
        if n.answer_text == colour:  # "what colour is the <shape>": no other option is a <shape> shown
            assert not any((c, shape) in others for c in n.options if c != colour)
        else:
            assert not any((colour, s) in others for s in n.options if s != shape)


def test_needle_count_and_kinds():
    assert FrameMaker(duration_s=5, width=320, height=180).key("v").needles == ()  # does not fit
    assert len(FrameMaker(duration_s=6, width=320, height=180).key("v").needles) == 1
    key = FrameMaker(duration_s=600, width=320, height=180, needles=8, needle_kinds=("text",)).key("v")
    assert len(key.needles) == 8 and {n.kind for n in key.needles} == {"text"}
    assert FrameMaker(duration_s=60, width=320, height=180, needles=0).key("v").needles == ()
    with pytest.raises(SynthError, match="do not fit"):
        FrameMaker(duration_s=10, width=320, height=180, needles=3)
    with pytest.raises(LongLensError, match="unknown needle kind"):
        FrameMaker(duration_s=10, width=320, height=180, needle_kinds=("audio",))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"duration_s": 0},
        {"duration_s": -1},
        {"duration_s": float("nan")},
        {"duration_s": 5, "width": 321},
        {"duration_s": 5, "height": 20},
        {"duration_s": 5, "fps": 0},
        {"duration_s": 5, "gop_s": 0},
        {"duration_s": 5, "preset": "warp"},
        {"duration_s": 5, "crf": 99},
        {"duration_s": 5, "bframes": -1},
        {"duration_s": 5000, "frame_code": True},  # more frames than 17 bits hold
    ],
)
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(LongLensError):
        make_video(tmp_path / "x.mp4", **kwargs)
    assert not (tmp_path / "x.mp4").exists()


def test_word_pool():
    assert len(WORDS) >= 200 and len(set(WORDS)) == len(WORDS)
    assert all(4 <= len(w) <= 8 and w.isalpha() and w.isupper() for w in WORDS)
    assert all(n.isdigit() and 3 <= len(n) <= 4 for n in NUMBERS)
    assert not set(WORDS) & ({c.upper() for c in COLOURS} | {s.upper() for s in SHAPES})


# --- CLI -----------------------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    """`longlens.cli.main.main(argv)`; while sibling commands are still missing, the same contract inline."""
    from longlens.cli import make_video as command

    try:
        from longlens.cli import main as cli_main

        cli_main.build_parser()
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("longlens.cli."):
            raise
        parser = argparse.ArgumentParser(prog="longlens")
        sub = parser.add_subparsers()
        command.add_parser(sub, "make-video").set_defaults(_run=command.run)
        args = parser.parse_args(argv)
        try:
            return int(args._run(args) or 0)
        except LongLensError as err:
            print(f"longlens: error: {err}", file=sys.stderr)
            return 2
    return cli_main.main(argv)


def test_cli_makes_video_and_key(tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    rc = run_cli(["make-video", str(out), "--duration", "12", "--size", "320x180", "--seed", "3", "--frame-code"])
    assert rc == 0
    text = capsys.readouterr().out
    key = load_answer_key(tmp_path / "cli.json")
    assert key.frame_count == 360 and key.frame_code and key.seed == 3
    assert len(key.needles) == 1
    n = key.needles[0]
    assert n.content in text and n.kind in text
    assert str(tmp_path / "cli.json") in text
    assert out.exists()


@pytest.mark.parametrize(
    "extra",
    [
        ["--duration", "-5"],
        ["--duration", "0"],
        ["--duration", "soon"],
        ["--duration", "10", "--size", "big"],
        ["--duration", "10", "--size", "321x180"],
        ["--duration", "10", "--fps", "0"],
        ["--duration", "10", "--kinds", "text,sound"],
        ["--duration", "10", "--needles", "9"],
        ["--duration", "10", "--preset", "warp"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, extra):
    rc = run_cli(["make-video", str(tmp_path / "bad.mp4"), *extra])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("longlens: error:") and "\n" not in err
    assert not (tmp_path / "bad.mp4").exists()


def test_cli_duration_forms():
    from longlens.cli.make_video import parse_duration, parse_size

    assert parse_duration("600") == 600
    assert parse_duration("10m") == 600
    assert parse_duration("1.5h") == 5400
    assert parse_duration("1:30") == 90
    assert parse_duration("1:00:00") == 3600
    assert parse_size("640x360") == (640, 360)
