"""The reference projects' released training files, read as released (small files written in each format, with
the fields their loaders read: LOVE-R1 sft_video.py / grpo.py, LongVideo-R1's LLaMA-Factory dataset_info and
verl-tool's preprocessing), `longlens data check` on them, `data export`'s clips, and every recipe setting
checked before training starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longlens.cli.main import main
from longlens.data.released import VideoRoots, read_records
from longlens.data.rows import RLRow, TemplateRow
from media import write_video


def _run(capsys, argv) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    """Two source data sets' folders as a user has them: CG-Bench/videos/a1.mp4 and finevideo/b1.mp4, and a
    file that is not a video."""
    root = tmp_path_factory.mktemp("disks")
    (root / "cg" / "videos").mkdir(parents=True)
    (root / "fv").mkdir()
    write_video(root / "cg" / "videos" / "a1.mp4", n=90)
    write_video(root / "fv" / "b1.mp4", n=60)
    (root / "cg" / "videos" / "bad.mp4").write_bytes(b"not a video at all")
    return root


def _user(text):
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def love_r1_sft_items():
    """LOVE-R1 SFT items (sft_video.py: video under --data_folder, messages, tgt; stage 2: cot_data +
    zoomin_intervals)."""
    return [
        {"video": "CG-Bench/videos/a1.mp4", "messages": [_user("What happens?"),
                                                         {"role": "assistant", "content": "A square moves."}],
         "tgt": [[0.5, 1.5]]},
        {"video": "finevideo/b1.mp4", "messages": [_user("Which colour?\nA. red\nB. blue"),
                                                   {"role": "assistant", "content": "I get the answer.\n\nIt is "
                                                                                    "red. \\boxed{A}"}],
         "cot_data": True, "zoomin_intervals": [[0.2, 1.4]]},
        {"video": "finevideo/gone.mp4", "messages": [_user("Q3"), {"role": "assistant", "content": "no"}]},
        {"video": "CG-Bench/videos/bad.mp4", "messages": [_user("Q4"), {"role": "assistant", "content": "no"}]},
        {"video": "CG-Bench/videos/a1.mp4", "messages": []},
        {"video": "LLaVA-Video-178K/academic/x.mp4", "messages": [_user("Q5"),
                                                                  {"role": "assistant", "content": "no"}]},
    ]


def love_r1_rl_items():
    """LOVE-R1 GRPO items (grpo.py: path absolute on the authors' disks, problem, options, solution, tgt,
    zoomin_intervals)."""
    base = "/mnt/data1/someone/datasets/CG-Bench/videos/"
    return [
        {"path": base + "a1.mp4", "problem": "What is shown?\n", "options": ["A. cat", "B. dog"],
         "problem_type": "multiple choice", "solution": "<answer>B</answer>", "data_type": "video",
         "tgt": [[0.5, 2.0]], "zoomin_intervals": [[0, 3]]},
        {"path": base + "zz.mp4", "problem": "Q", "options": ["A. a", "B. b"], "problem_type": "multiple choice",
         "solution": "<answer>A</answer>", "data_type": "video", "zoomin_intervals": []},
        {"path": base + "a1.mp4", "problem": "How many?", "options": [], "problem_type": "numerical",
         "solution": "<answer>3</answer>", "data_type": "video", "zoomin_intervals": []},
    ]


def longvideo_r1_rl_rows():
    """LongVideo-R1's RL parquet rows (verl-tool examples/data_preprocess/longvideor1_cgbenchdata.py columns)."""
    def row(i, uid, letter, clues):
        user = ("Which colour is the square?\nA. red\nB. blue\nC. green\n\n\nThe total duration of the video is "
                "3.0 seconds.\n\nHigh-level Caption 1 from 0.0 to 0.7:A square.\n\n")
        return {"data_source": "videocaption_cgbench",
                "prompt": [{"role": "system", "content": "You are ..."}, {"role": "user", "content": user}],
                "ability": "get_caption", "reward_model": {"style": "rule", "ground_truth": letter},
                "extra_info": {"index": i, "need_tools_kwargs": True, "video_uid": uid, "split": "train",
                               "clue_intervals": clues, "width": 4, "duration": 3.0, "fps": 30.0,
                               "data_source": "videocaption_cgbench"},
                "metadata": None}
    return [row(0, "a1", "B", [[1.0, 2.0]]), row(1, "missing-uid", "A", [])]


def write_parquet(rows, path: Path) -> Path:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_data_check_love_r1_sft_counts_each_source(disks, tmp_path, capsys):
    f = tmp_path / "cold_start.json"
    f.write_text(json.dumps(love_r1_sft_items()))
    code, out, _ = _run(capsys, ["data", "check", str(f), "--video-root", f"CG-Bench={disks / 'cg'}",
                                 "--video-root", f"finevideo={disks / 'fv'}"])
    assert code == 1
    table = {line.split()[0]: line.split()[1:5] for line in out.splitlines()[2:5]}
    assert table == {"CG-Bench": ["2", "1", "0", "1"], "LLaVA-Video-178K": ["1", "0", "1", "0"],
                     "finevideo": ["2", "1", "1", "0"]}
    assert "malformed item 4: messages: expected one user and one assistant message" in out
    assert f"missing item 2 (finevideo): {disks / 'fv' / 'gone.mp4'} (no such file)" in out
    assert "give --video-root LLaVA-Video-178K=DIR" in out
    assert "unreadable item 3 (CG-Bench)" in out and "2 of 5 rows resolve to a readable video" in out

    good = tmp_path / "good.json"
    good.write_text(json.dumps(love_r1_sft_items()[:2]))
    code, out, _ = _run(capsys, ["data", "check", str(good), "--video-root", f"CG-Bench={disks / 'cg'}",
                                 "--video-root", f"finevideo={disks / 'fv'}"])
    assert code == 0 and out.strip().endswith("ok")


def test_data_check_love_r1_rl_maps_the_authors_absolute_paths(disks, tmp_path, capsys):
    f = tmp_path / "RL-hard.json"
    f.write_text(json.dumps(love_r1_rl_items()))
    code, out, _ = _run(capsys, ["data", "check", str(f), "--video-root", f"CG-Bench={disks / 'cg'}"])
    assert code == 1
    assert out.splitlines()[2].split()[:5] == ["CG-Bench", "2", "1", "1", "0"]
    assert "malformed item 2: problem_type 'numerical'" in out
    fmt, records = read_records(f)
    row = records[0].row
    assert fmt == "love-r1-rl" and isinstance(row, RLRow)
    assert (row.question, row.options, row.answer, row.kind, row.truth, row.clips) == (
        "What is shown?", ("cat", "dog"), "B", "local", ((0.5, 2.0),), ((0.0, 3.0),))
    assert records[1].row.kind == "general"


def test_data_check_longvideo_r1_files(disks, tmp_path, capsys):
    parquet = write_parquet(longvideo_r1_rl_rows(), tmp_path / "longvideor1-rl-train-data-qwen3.parquet")
    code, out, _ = _run(capsys, ["data", "check", str(parquet), "--video-root",
                                 f"videocaption_cgbench={disks / 'cg' / 'videos'}"])
    assert code == 1
    assert out.splitlines()[2].split()[:5] == ["videocaption_cgbench", "2", "1", "1", "0"]
    assert f"{disks / 'cg' / 'videos' / 'missing-uid.mp4'} (no such file)" in out
    row = read_records(parquet)[1][0].row
    assert (row.question, row.options, row.answer, row.truth, row.duration_s, row.video) == (
        "Which colour is the square?", ("red", "blue", "green"), "B", ((1.0, 2.0),), 3.0, "a1.mp4")

    lf = tmp_path / "longvideor1-sft-qwen3-llamafactory.json"
    lf.write_text(json.dumps([{"system": "s", "instruction": "q", "input": "", "history": [["u", "a"]],
                               "output": "<answer>A</answer>"}, {"instruction": 3, "output": "x"}]))
    code, out, _ = _run(capsys, ["data", "check", str(lf)])
    assert code == 1 and "1 records read; text only (no videos to place)" in out
    assert "malformed item 1: no instruction text" in out


def test_data_check_bad_files_are_one_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such file" in capsys.readouterr().err
    f = tmp_path / "odd.json"
    f.write_text(json.dumps([{"foo": 1}]))
    assert main(["data", "check", str(f)]) == 2
    assert "not a known training file" in capsys.readouterr().err
    f.write_text("[{")
    assert main(["data", "check", str(f)]) == 2
    err = capsys.readouterr().err
    assert "not JSON" in err and "Traceback" not in err


def test_video_roots_judge_the_path(tmp_path):
    roots = VideoRoots.parse([f"CG-Bench={tmp_path}/cg", str(tmp_path / "rest")])
    assert roots.locate("/mnt/x/datasets/CG-Bench/videos/a.mp4").path == tmp_path / "cg" / "videos" / "a.mp4"
    assert roots.locate("CG-Bench/a.mp4").source == "CG-Bench"
    assert roots.locate("other/a.mp4").path == tmp_path / "rest" / "other" / "a.mp4"
    assert roots.locate("CG-Bench/../../etc/passwd").path is None
    assert roots.locate("../x.mp4").problem.endswith("leaves its data set's folder")
    (tmp_path / "store").mkdir()
    (tmp_path / "cg").mkdir()
    (tmp_path / "cg" / "link.mp4").symlink_to(tmp_path / "store" / "real.mp4")  # a link inside is fine
    assert roots.locate("CG-Bench/link.mp4").path == tmp_path / "cg" / "link.mp4"
    with pytest.raises(Exception, match="write NAME=DIR"):
        VideoRoots.parse(["=x"])


def test_stage1_rows_from_a_benchmark(tmp_path, capsys):
    from media import needle_suite

    suite = needle_suite(tmp_path / "suite", (1,), duration_s=20, needles=1, stem="v")
    out = tmp_path / "stage1.jsonl"
    code, text, _ = _run(capsys, ["data", "rows", "needles", "--data", str(suite), "--stage", "1", "--out", str(out)])
    assert code == 0 and "1 stage-1 SFT rows" in text
    row = TemplateRow.from_dict(json.loads(out.read_text().splitlines()[0]))
    key = json.loads(next(suite.glob("*.json")).read_text())["needles"][0]
    assert row.target == key["answer"] and len(row.options) == 4 and row.truth == ((key["start_s"], key["end_s"]),)
    assert (suite / row.video).is_file()


def test_export_cuts_the_clips_it_names(disks, tmp_path, capsys):
    from longlens.data.rows import CotRow, to_jsonl
    from longlens.video import open_video

    rows = tmp_path / "cots.jsonl"
    to_jsonl([CotRow("r1", "videos/a1.mp4", 3.0, "Q?", ("x", "y"), "A", "answer", ((0.5, 1.5),),
                     "I get the answer.\n\nx \\boxed{A}")], rows)
    out = tmp_path / "lf.json"
    assert main(["data", "export", str(rows), "--videos", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "--videos" in capsys.readouterr().err and not out.exists()

    code, text, _ = _run(capsys, ["data", "export", str(rows), "--videos", str(disks / "cg"), "--clips",
                                  str(tmp_path / "clips"), "--out", str(out)])
    assert code == 0 and "1 cut" in text
    record = json.loads(out.read_text())[0]
    clip = Path(record["videos"][1])
    assert clip == tmp_path / "clips" / "a1_0-1.mp4" and record["videos"][0] == str(disks / "cg" / "videos/a1.mp4")
    info = open_video(clip)
    assert info.n_frames == 31  # frames 15..45 of the 30 fps source: times 0.5 s to 1.5 s, both ends in
    code, text, _ = _run(capsys, ["data", "export", str(rows), "--videos", str(disks / "cg"), "--clips",
                                  str(tmp_path / "clips"), "--out", str(out)])
    assert "0 cut, 1 already there" in text


@pytest.mark.parametrize("recipe,config", [("sft", "love-r1-sft-stage1"), ("sft", "love-r1-sft-stage2"),
                                           ("grpo", "love-r1-grpo"), ("sft-navigate", "longvideo-r1-sft"),
                                           ("grpo-navigate", "longvideo-r1-grpo")])
def test_a_shipped_recipe_prints_with_nothing_set(recipe, config, capsys):
    assert main(["train", recipe, config, "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["trl"] and "to train, set model_path" in err


BAD = [
    (["--set", "slow_frames=[32, a]"], "--set: slow_frames[1] takes a whole number, got 'a'"),
    (["--set", "slow_frames=[0]"], "slow_frames must be at least 1 each"),
    (["--set", "fast_frames=2.5"], "--set: fast_frames takes a whole number, got 2.5"),
    (["--set", "loss=every"], "loss must be one of assistant, all"),
    (["--set", "trl.learning_rat=1e-5"], "did you mean trl.learning_rate"),
    (["--set", "trl.learning_rate=fast"], "trl.learning_rate takes a number"),
    (["--set", "trl.lr_scheduler_type=wobbly"], "SFT settings (TRL"),
    (["--video-root", "a", "--video-root", "b"], "--video-root b: a second plain folder"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_a_bad_setting_is_one_line_before_anything_is_written(extra, message, tmp_path, capsys):
    out = tmp_path / "out"
    rows = tmp_path / "rows.jsonl"
    rows.write_text("")
    assert main(["train", "sft", "love-r1-sft-stage1", "--set", f"model_path={tmp_path}", "--set",
                 f"train_file={rows}", "--set", f"output_dir={out}", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_single_slow_frames_value_is_a_list_of_one(tmp_path, capsys):
    assert main(["train", "sft", "love-r1-sft-stage1", "--set", "slow_frames=4", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["slow_frames"] == [4]


def test_grpo_batch_that_does_not_split_into_groups_is_refused_before_loading(tmp_path, capsys):
    assert main(["train", "grpo", "love-r1-grpo", "--set", f"model_path={tmp_path}", "--set", f"rows={tmp_path}/r",
                 "--set", f"output_dir={tmp_path}/out", "--set", "trl.num_generations=3"]) == 2
    err = capsys.readouterr().err
    assert "must be divisible by num_generations" in err and "trl.gradient_accumulation_steps" in err
    assert not (tmp_path / "out").exists()


def test_an_unreachable_server_error_names_the_flag_given(tmp_path, capsys):
    from media import needle_suite

    suite = needle_suite(tmp_path / "s", (1,), duration_s=10, needles=1, stem="v")
    assert main(["data", "captions", "needles", "--data", str(suite), "--out", str(tmp_path / "caps"),
                 "--caption-url", "http://127.0.0.1:9/v1", "--retries", "0"]) == 2
    err = capsys.readouterr().err
    assert "check --caption-url" in err and "--base-url" not in err
