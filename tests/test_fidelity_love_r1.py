"""What the zoom agent shows a LOVE-R1 checkpoint, compared with what the reference code itself produced.

The golden files in tests/data/reference/love-r1 were written by running the reference inference loop
(HumanMLLM/LOVE-R1@aa1facb, model_sample_frame.py, unmodified) with the model replaced by scripted replies,
on the generated videos in tests/data/reference/videos (PROVENANCE.md says how). Frames are compared by PSNR,
since the resizers legitimately differ (torchvision's antialiased bicubic there, FFmpeg's bicubic here).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from longlens.agents.zoom import ZoomAgent, paper_config
from longlens.backends.scripted import ScriptedBackend
from longlens.prompts import Text, Video
from longlens.video import FrameCache, decode, fast_plan, open_video

HERE = Path(__file__).parent / "data" / "reference"
GOLDEN = {r["name"]: r for r in json.loads((HERE / "love-r1" / "love-r1.json").read_text())}
BENCH = {"Video-MME": "videomme", "LVBench": "lvbench", "MLVU_MCQ": "mlvu", "LongVideoBench": "longvideobench"}
QUESTION = "What colour is the moving square?"
OPTIONS = ("White", "Red", "Blue", "Green")
MIN_PSNR = 35.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def stamp_psnrs(frames: np.ndarray, crops: dict) -> list[float]:
    """PSNR of each frame's stamp region (the golden mosaic holds one reference crop per row)."""
    mosaic = np.asarray(Image.open(HERE / "love-r1" / crops["file"]).convert("RGB"))
    rh = crops["row_height"]
    assert len(crops["boxes"]) == len(frames)
    out = []
    for i, (y0, x0) in enumerate(crops["boxes"]):
        ours = frames[i, y0:, x0:]
        out.append(psnr(ours, mosaic[i * rh : i * rh + ours.shape[0], : ours.shape[1]]))
    return out


class Recording(ScriptedBackend):
    """A scripted model that keeps the messages it was shown (frames included)."""

    def __init__(self, replies):
        super().__init__(replies)
        self.shown = []

    def generate(self, messages, gen=None):
        self.shown.append(messages)
        return super().generate(messages) if gen is None else super().generate(messages, gen)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return FrameCache(tmp_path_factory.mktemp("fidelity-cache"))


ZOOM2 = [n for n in GOLDEN if n.endswith("-zoom2")]


@pytest.mark.parametrize("name", ZOOM2)
def test_default_fast_view_equals_the_reference_frames(name, cache):
    """Same frames, stamps, size and rate; every frame's stamp region and whole frames within 35 dB PSNR."""
    g = GOLDEN[name]
    info = open_video(HERE / "videos" / g["video"], cache=cache)
    assert (info.n_frames, info.width, info.height) == (g["n_frames"], g["width"], g["height"])
    assert info.fps == pytest.approx(g["fps"], rel=1e-9)
    fs = decode(info, fast_plan(info), cache=cache)
    assert list(fs.indices) == g["decoded"][0]["ids"]
    assert [info.second_of(i) for i in fs.indices] == g["decoded"][0]["stamps"]
    assert [len(fs), 3, fs.plan.height, fs.plan.width] == g["steps"][0]["content"][1]["video"]
    assert fs.plan.sample_fps == g["steps"][0]["fps"][0]
    stamps = stamp_psnrs(fs.frames, g["fast_crops"])
    assert min(stamps) >= MIN_PSNR, f"stamp region PSNR {min(stamps):.1f} dB at frame {int(np.argmin(stamps))}"
    for i, file in g["fast_frames"].items():
        whole = psnr(fs.frames[int(i)], np.asarray(Image.open(HERE / "love-r1" / file).convert("RGB")))
        assert whole >= MIN_PSNR, f"frame {i}: whole-frame PSNR {whole:.1f} dB"


def _content(messages) -> list:
    """The user turn as the reference's content list: texts, and videos as [T, 3, h, w]."""
    out = []
    for part in messages[1].parts:
        if isinstance(part, Text):
            out.append({"text": part.text})
        else:
            assert isinstance(part, Video)
            t, h, w, _ = part.frames.frames.shape
            out.append({"video": [t, 3, h, w]})
    return out


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_step_shows_what_the_reference_shows(name, cache):
    """Scripted replies (zooms, overlaps, decimals, clock times, three numbers, no box, [B]) give the same
    prompts, clips, rates and forced prefixes, step by step, and the same final answer, under the paper preset."""
    g = GOLDEN[name]
    backend = Recording(g["replies"])
    config = paper_config(BENCH[g["dataset"]])
    assert config.deviations == ()
    trace = ZoomAgent(backend, config, cache=cache).run(HERE / "videos" / g["video"], QUESTION, OPTIONS)
    assert len(backend.shown) == len(g["steps"])
    for k, (messages, ref) in enumerate(zip(backend.shown, g["steps"], strict=True)):
        assert messages[0].parts[0].text == ref["system"]
        assert _content(messages) == ref["content"], f"step {k + 1}"
        videos = [p.frames for p in messages[1].parts if isinstance(p, Video)]
        assert [v.plan.sample_fps for v in videos] == ref["fps"], f"step {k + 1}"
        prefix = messages[2].parts[0].text if len(messages) > 2 else ""
        assert prefix == ref["forced_prefix"], f"step {k + 1}"
    assert trace.answer == g["response"].strip()
    # the clips of the last step: the reference's frame ids and stamps
    info = open_video(HERE / "videos" / g["video"], cache=cache)
    clips = [p.frames for p in backend.shown[-1][1].parts if isinstance(p, Video)][1:]
    decoded = g["decoded"][len(g["decoded"]) - len(clips):] if clips else []
    for clip, ref in zip(clips, decoded, strict=True):
        assert list(clip.indices) == ref["ids"]
        assert [info.second_of(i) for i in clip.indices] == ref["stamps"]
    for clip, crops in zip(clips, g["slow_crops"], strict=True) if "slow_crops" in g else ():
        stamps = stamp_psnrs(clip.frames, crops)
        assert min(stamps) >= MIN_PSNR, f"clip stamp region PSNR {min(stamps):.1f} dB"


def test_frames_cli_writes_the_reference_frames_losslessly(tmp_path, capsys):
    """``longlens frames VIDEO --format png --json``: the default fast view, lossless, with ids, times, stamps."""
    from longlens.cli.main import main

    g = GOLDEN["d45-zoom2"]
    out = tmp_path / "frames"
    assert main(["frames", str(HERE / "videos" / g["video"]), "--format", "png", "--json", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    meta = json.loads((out / "frames.json").read_text())
    assert [f["index"] for f in meta["frames"]] == g["decoded"][0]["ids"]
    assert [f["stamp"] for f in meta["frames"]] == [str(s) for s in g["decoded"][0]["stamps"]]
    assert meta["plan"]["mode"] == "accurate" and meta["plan"]["sample_fps"] == g["steps"][0]["fps"][0]
    frames = np.stack([np.asarray(Image.open(out / f["file"])) for f in meta["frames"]])
    assert min(stamp_psnrs(frames, g["fast_crops"])) >= MIN_PSNR
    info = open_video(HERE / "videos" / g["video"])
    assert np.array_equal(frames, decode(info, fast_plan(info)).frames)  # PNG is lossless


def test_eval_applies_and_records_the_paper_preset(tmp_path, capsys):
    """``longlens eval lvbench``: the reference's LVBench question and instruction; MLVU's 384 frames at 64
    tokens; the preset and any deviation from it in the run config."""
    from longlens.cli.main import main

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "d45.mp4").symlink_to(HERE / "videos" / "d45.mp4")
    question = QUESTION + "\n" + "\n".join(f"({k}) {o}" for k, o in zip("ABCD", OPTIONS, strict=True))
    meta = tmp_path / "video_info.meta.jsonl"
    meta.write_text(json.dumps({"key": "d45", "type": "t", "qa": [{"uid": "1", "question": question, "answer": "A",
                                                                   "question_type": ["x"]}]}) + "\n")
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["\\boxed{A}"]))
    common = ["--data", str(meta), "--videos", str(videos), "--backend", "scripted", "--script", str(script),
              "--cache-dir", str(tmp_path / "cache")]
    assert main(["eval", "lvbench", *common, "--out", str(tmp_path / "run")]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]["zoom"]
    assert config["preset"] == "love-r1/lvbench" and config["deviations"] == []
    assert config["question_style"] == "lvbench" and config["fast_mode"] == "accurate"
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    trace = json.loads(next((tmp_path / "run" / "traces").rglob("*.json")).read_text())
    last_text = trace["steps"][0]["prompt"][1]["content"][-1]["text"]
    assert last_text.startswith(question + "\nRespond with only the letter (A, B, C, or D) of the correct option.\n")
    assert record["correct"] is True
    # a deviation is recorded
    assert main(["eval", "lvbench", *common, "--out", str(tmp_path / "run2"), "--fast-mode", "nearest",
                 "--num-fast", "64"]) == 0
    config = json.loads((tmp_path / "run2" / "config.json").read_text())["config"]["zoom"]
    assert config["preset"] == "love-r1/lvbench" and config["deviations"] == ["fast_frames", "fast_mode"]
