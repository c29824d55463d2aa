"""Fidelity to the LongVideo-R1 reference code: what the navigate agent shows its models equals what the
reference (qiujihao19/LongVideo-R1@77c87ec) produced on generated videos.

The golden file (tests/data/reference/longvideo-r1/golden.json, made as PROVENANCE.md there says) holds,
per video, the frame count and rate the reference read, its caption files' nodes (frame ids, times), its
video_qa frames, and the messages its evaluation sent for a scripted conversation. Partition checks run on
node tables built for those frame counts (a 2-hour video included); the messages and `longlens tree export`
run on real videos of the same frame count and rate.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from longlens.agents.navigate import NavigateAgent
from longlens.agents.navigate.captions import CaptionSettings, CaptionTree
from longlens.agents.navigate.tree import build_tree, tree_width
from longlens.backends.scripted import ScriptedBackend
from longlens.cli.main import main
from longlens.errors import LongLensError
from longlens.prompts.navigate import (
    caption_observation,
    first_message,
    load_navigate_profile,
    seconds,
    seconds_np,
)
from longlens.synth import make_video
from longlens.video import open_video

GOLDEN = json.loads((Path(__file__).parent / "data/reference/longvideo-r1/golden.json").read_text())
VIDEOS = GOLDEN["videos"]
PROFILE = load_navigate_profile()
OPTIONS = [o[3:] for o in GOLDEN["options"]]  # "A. SANDAL" -> "SANDAL": LongLens letters them itself
FRAMES = GOLDEN["caption_frames_per_level"]


class RefInfo:
    """The frame count and average rate the reference read from a golden video, as a VideoInfo."""

    def __init__(self, v: dict):
        self.path = "video.mp4"
        self.n_frames, self.fps = v["n_frames"], v["fps"]
        self.times_s = np.arange(self.n_frames) / self.fps
        self.duration_s = self.n_frames / self.fps


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, separators=(",", ":")).encode()).hexdigest()


def exported(v: dict, **settings) -> dict:
    """`CaptionTree.export_reference` (what `longlens tree export` writes) for a golden video's frames, with
    the default caption settings but for `settings`."""
    info = RefInfo(v)
    resolved = CaptionSettings(**settings).resolve(PROFILE)
    tree = build_tree(info, tree_width(info.duration_s), resolved["partition"])
    return CaptionTree(info, tree, PROFILE, resolved, store=None).export_reference()


def differing(export: dict, v: dict, level: int) -> int:
    """How many nodes of `level` cover other frames than the reference's caption file."""
    ours = [[r["frame_ids"][0], r["frame_ids"][-1]] for r in export["captions"][level - 1]]
    return sum(a != b for a, b in zip(ours, v["caption_nodes"][str(level)], strict=True))


def check_export(export: dict, v: dict) -> None:
    assert export["width"] == v["width"] and export["partition"] == "reference"
    for level in (1, 2, 3):
        rows = export["captions"][level - 1]
        assert differing(export, v, level) == 0, f"level {level}"
        assert digest([r["frame_ids"] for r in rows]) == v["caption_frame_ids_sha256"][str(level)]
        assert digest([r["frame_time"] for r in rows]) == v["caption_frame_time_sha256"][str(level)]


# ---------------------------------------------------------------- the partition, per golden video
@pytest.mark.parametrize("name", VIDEOS)
def test_caption_nodes_are_the_reference_caption_files(name):
    v = VIDEOS[name]
    export = exported(v)
    check_export(export, v)
    for key, sample in v["caption_samples"].items():
        level = key.count(",") + 1
        row = next(r for r in export["captions"][level - 1] if r["frame_ids"][0] == sample["frame_ids"][0])
        assert row["frame_ids"] == sample["frame_ids"] and row["frame_time"] == sample["frame_time"], key


@pytest.mark.parametrize("name", VIDEOS)
def test_videoqa_frames_are_the_reference_nested_leaves(name):
    v = VIDEOS[name]
    info = RefInfo(v)
    tree = build_tree(info, v["width"])  # the default partition
    assert [[n.clip_first, n.clip_last] for n in tree.level(3)] == v["videoqa_nodes"]
    for key, leaf in v["videoqa_leaves"].items():
        ids = tree.node(tuple(int(i) for i in key.split(","))).clip(GOLDEN["videoqa_frames"])
        assert ids.tolist() == leaf["frame_ids"]
        assert [seconds_np(int(i) / info.fps) for i in ids] == [str(t) for t in leaf["frame_time"]]


@pytest.mark.parametrize("name,counts", [("i_2997fps_2h", [0, 56, 503]), ("h_30fps_2h", [0, 0, 504]),
                                         ("a_30fps_45s", [0, 11, 48]), ("c_2997fps_10m", [0, 0, 0])])
def test_the_nested_partition_is_an_option_that_differs_from_the_reference(name, counts):
    """What LongLens did before (one recursive split): at 2 h (29.97 fps) 56 of 64 medium and 503 of 512
    low nodes differ; the high nodes always agree, and some frame counts split alike both ways."""
    nested = exported(VIDEOS[name], partition="nested")
    assert nested["partition"] == "nested"
    assert [differing(nested, VIDEOS[name], level) for level in (1, 2, 3)] == counts


def test_caption_files_of_the_other_partition_are_refused():
    """Captions of the nested split (LongLens exports before the reference partition, which carry no
    partition name) never get mixed into the reference tree: the frame ids tell."""
    v = VIDEOS["e_30fps_w5"]
    info = RefInfo(v)
    tree = CaptionTree(info, build_tree(info, v["width"]), PROFILE, CaptionSettings().resolve(PROFILE), store=None)
    old = exported(v, partition="nested")
    del old["partition"]
    with pytest.raises(LongLensError, match="made with the nested partition.*--partition nested"):
        tree.import_reference(old)


# ---------------------------------------------------------------- what the reasoning model reads
def label_caption(first_label: str) -> str:
    """The caption the scripted caption model gives: it names the first frame label it was shown."""
    return f"<caption>This clip starts at {first_label}</caption>"


@pytest.mark.parametrize("name", VIDEOS)
def test_first_message_duration_line_and_observations(name):
    v = VIDEOS[name]
    tree = build_tree(RefInfo(v), v["width"])
    shown = [label_caption(PROFILE.caption_frame_label.format(t=seconds(n.first_s))) for n in tree.level(1)]
    high = [(n.first_s, n.last_s, c) for n, c in zip(tree.level(1), shown, strict=True)]
    message = first_message(PROFILE, GOLDEN["question"], OPTIONS, tree.last_frame_s, high)
    assert message.plain_text == "\n".join(v["first_message_parts"])
    assert PROFILE.duration_line.format(duration=seconds(tree.last_frame_s)) == v["duration_line"]
    for obs, node_id in zip(v["observations"], [(2, 3), (2, 3, 1)], strict=False):
        node = tree.node(node_id)
        caption = label_caption(PROFILE.caption_frame_label.format(t=seconds(node.first_s)))
        assert caption_observation(PROFILE, node_id, node.first_s, node.last_s, caption).plain_text == obs


def test_the_duration_line_is_the_evaluations_not_the_clis():
    """The evaluation shows the last frame's time, round((N-1)/fps, 1); the reference CLI's round(N/fps, 1)
    differs for some frame counts, and the checkpoints were evaluated with the former."""
    differ = {name for name, v in VIDEOS.items() if f"is {v['cli_duration']} seconds" not in v["duration_line"]}
    assert differ == {"b_25fps_182f", "g_25fps_w7"}
    v = VIDEOS["b_25fps_182f"]
    assert v["duration_line"] == "The total duration of the video is 7.2 seconds." and v["cli_duration"] == 7.3


def test_times_at_rounding_ties_are_printed_as_the_reference_prints_them():
    """29.97 fps frame 1500 * odd lies exactly on a .x5: the caption files (Python round) and the video_qa
    labels (numpy round) print some of them differently, and LongLens follows each."""
    ties = GOLDEN["ties"]
    fps = VIDEOS[ties["video"]]["fps"]
    ids = ties["data"]["frame_ids"]
    assert [seconds(i / fps) for i in ids] == ties["data"]["frame_time"]
    assert [seconds_np(i / fps) for i in ids] == ties["eval"]["frame_time"]
    assert ties["data"]["frame_time"] != ties["eval"]["frame_time"]


# ---------------------------------------------------------------- real videos
def golden_video(path: Path, v: dict) -> Path:
    """A generated video with the golden one's frame count and rate (the content does not matter here)."""
    rate = Fraction(v["generator"]["rate"])  # "30000/1001"
    make_video(path, duration_s=v["n_frames"] / rate, width=112, height=64, fps=rate, gop_s=2.0, seed=1,
               needles=0)
    info = open_video(path)
    assert (info.n_frames, info.fps) == (v["n_frames"], v["fps"])
    return path


@pytest.mark.parametrize("name", ["a_30fps_45s", "c_2997fps_10m"])
def test_tree_export_of_a_real_video_is_the_reference_partition(name, tmp_path):
    """1350 frames (48 of 64 leaves split otherwise by the nested partition) and 17983 frames at 29.97 fps:
    divisible by neither w² nor w³."""
    v = VIDEOS[name]
    video = golden_video(tmp_path / "v.mp4", v)
    out = tmp_path / "tree.json"
    assert main(["tree", "export", str(video), str(out), "--caption-model", "none",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    check_export(json.loads(out.read_text()), v)


@pytest.mark.parametrize("name", ["a_30fps_45s", "b_25fps_182f"])
def test_a_scripted_conversation_sends_what_the_reference_evaluation_sent(name, tmp_path):
    """The reference evaluation's conversation (scripted turns: a medium caption, a low caption, a video_qa,
    an answer) replayed through the agent on a real video: every text the models get is the same. (At 182
    frames, 25 fps, the duration line is 7.2 s, where N/fps would print 7.3.)"""
    v = VIDEOS[name]
    video = golden_video(tmp_path / "v.mp4", v)
    sent: dict[str, list] = {"reasoning": [], "videoqa": []}

    def record(role, reply):
        def f(messages):
            sent[role].append(messages)
            return reply
        return f

    reasoning = ScriptedBackend([record("reasoning", t) for t in GOLDEN["turns"]])
    caption = ScriptedBackend([lambda m: label_caption(m[1].parts[0].text)] * 10, model="vl")
    videoqa = ScriptedBackend([record("videoqa", GOLDEN["videoqa_reply"])], model="vl")
    trace = NavigateAgent(reasoning, caption=caption, videoqa=videoqa).run(video, GOLDEN["question"], OPTIONS)
    assert trace.answer == "A" and trace.meta["partition"] == "reference"
    first, *_, last = sent["reasoning"]
    assert first[1].plain_text == "\n".join(v["first_message_parts"])
    assert [m.plain_text for m in last[2:] if m.role == "user"] == v["observations"]
    qa = sent["videoqa"][0][1]
    assert [p.text for p in qa.parts if hasattr(p, "text")] == v["videoqa_request"]["texts"]
    assert [p.time_s for p in qa.parts if hasattr(p, "pixels")] == \
        pytest.approx([i / v["fps"] for i in v["videoqa_request"]["frame_ids"]])
