"""The whole LOVE-R1 training pipeline from the CLI, on generated videos with a tiny random model, as
docs/training.md writes it:

needles -> stage-1 rows -> SFT stage 1 -> clip captions -> teacher CoTs -> filter -> SFT stage 2 ->
hard-example mining -> GRPO -> ask. Each command is the one a user types (servers are scripted
OpenAI-compatible ones on 127.0.0.1). And training straight from the released files' formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from longlens.backends.hf.random_model import make_random_model  # noqa: E402
from longlens.backends.scripted_server import ScriptedServer  # noqa: E402
from longlens.cli.main import main  # noqa: E402

torch.set_num_threads(1)
FRAMES = ["fast_frames=16", "fast_budget=3136", "slow_budget=12544"]


def _set(items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from media import needle_suite

    return needle_suite(tmp_path_factory.mktemp("suite"), (1, 2), duration_s=60, needles=2, stem="v")


def test_data_to_sft_to_grpo_to_ask(suite, tmp_path, capsys):
    tiny = tmp_path / "tiny"
    make_random_model(tiny, "tiny")
    data = ["needles", "--data", str(suite)]
    keys = [json.loads(p.read_text()) for p in sorted(suite.glob("*.json"))]
    truths = {f"{p.stem}-{n['id']}": (n["start_s"], n["end_s"], n["answer"])
              for p, k in zip(sorted(suite.glob("*.json")), keys, strict=True) for n in k["needles"]}

    stage1_rows = tmp_path / "stage1.jsonl"
    assert main(["data", "rows", *data, "--stage", "1", "--out", str(stage1_rows)]) == 0
    stage1 = tmp_path / "stage1"
    assert main(["train", "sft", "love-r1-sft-stage1", "--video-root", str(suite), *_set([
        f"model_path={tiny}", f"train_file={stage1_rows}", f"output_dir={stage1}", "trl.max_steps=1",
        "slow_frames=4", "trl.gradient_accumulation_steps=1", "trl.activation_checkpointing=false", *FRAMES])]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 1 and summary["last_loss"] > 0 and summary["rows"] == len(truths)

    with ScriptedServer(["A plain scene."], repeat_last=True) as server:
        assert main(["data", "captions", *data, "--out", str(tmp_path / "caps"), "--caption-url", server.url]) == 0

    cots = tmp_path / "cots.jsonl"
    with ScriptedServer(["The label comes after the opening scene. \\boxed{[10, 40]}"], repeat_last=True) as server:
        assert main(["data", "cot", *data, "--captions", str(tmp_path / "caps"), "--teacher-url", server.url,
                     "--kinds", "zoom", "--out", str(cots), "--concurrency", "1"]) == 0
    rows = [json.loads(line) for line in cots.read_text().splitlines()]
    assert rows and all(r["target"].startswith("I need to zoom in on the video.\n\n") for r in rows)
    assert all(r["id"].removesuffix(":zoom") in truths for r in rows)

    kept = tmp_path / "kept.jsonl"
    assert main(["data", "filter", str(cots), "--out", str(kept), "--min-iou", "0.0"]) == 0
    assert kept.read_text().strip()

    stage2 = tmp_path / "stage2"
    assert main(["train", "sft", "love-r1-sft-stage2", *_set([
        f"model_path={stage1}", f"train_file={kept}", f"video_root={suite}", f"output_dir={stage2}", "trl.max_steps=2",
        "slow_frames=[4,4,4]", "trl.gradient_accumulation_steps=1", "trl.activation_checkpointing=false",
        *FRAMES])]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["last_loss"] > 0
    assert (stage2 / "model.safetensors").is_file() and (stage2 / "longlens-config.yaml").is_file()

    script = tmp_path / "mine.json"  # grounded questions: one rollout hits a truth span, the other misses
    spans = [truths[k] for k in sorted(truths)]
    replies = []
    for s, e, _ in spans:
        replies += [f"\\boxed{{[{int(s)}, {int(e) + 1}]}}", "\\boxed{[0, 2]}"]
    script.write_text(json.dumps(replies))
    rl = tmp_path / "rl.jsonl"
    assert main(["data", "mine", *data, "--backend", "scripted", "--script", str(script), "--rollouts", "2",
                 "--concurrency", "1", "--out", str(rl)]) == 0
    mined = [json.loads(line) for line in rl.read_text().splitlines()]
    assert mined and all(r["kind"] == "local" and sorted(r["correctness"]) == [0.0, 1.0] for r in mined)

    final = tmp_path / "grpo"
    assert main(["train", "grpo", "love-r1-grpo", *_set([
        f"model_path={stage2}", f"rows={rl}", f"videos={suite}", f"output_dir={final}", "trl.max_steps=2",
        "trl.num_generations=2", "trl.per_device_train_batch_size=2", "trl.gradient_accumulation_steps=1",
        "trl.max_completion_length=8", "slow_frames=4", "trl.activation_checkpointing=false", "trl.save_strategy=no",
        *FRAMES])]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and (final / "model.safetensors").is_file()

    video = next(iter(sorted(suite.glob("*.mp4"))))
    assert main(["ask", str(video), "Which word is shown?", "--option", "A1", "--option", "B2", "--backend", "hf",
                 "--model-path", str(final), "--num-fast", "16", "--fast-res", "4", "--num-slow", "4", "--slow-res",
                 "16", "--max-new-tokens", "8"]) == 0
    assert "trace:" in capsys.readouterr().out


def test_navigate_pipeline_eval_sft_rows_grpo_ask(suite, tmp_path, capsys):
    """LongVideo-R1 from the CLI: navigate eval runs -> SFT of the reasoning model on them -> GRPO rows ->
    GRPO -> ask with the trained reasoning model in-process."""
    from longlens.backends.hf.random_model import make_random_text_model

    text = tmp_path / "tiny-text"
    make_random_text_model(text)
    data = ["needles", "--data", str(suite)]
    keys = {p.stem: json.loads(p.read_text()) for p in sorted(suite.glob("*.json"))}
    letters = [n["answer"] for _, k in sorted(keys.items()) for n in k["needles"]]
    script = tmp_path / "reasoning.json"
    script.write_text(json.dumps([f"<think>The captions settle it.</think><answer>{a}</answer>" for a in letters]))
    run = tmp_path / "nav-run"
    with ScriptedServer(["<caption>A plain scene.</caption>"], repeat_last=True) as server:
        assert main(["eval", *data, "--agent", "navigate", "--reasoning-script", str(script), "--caption-url",
                     server.url, "--out", str(run), "--concurrency", "1"]) == 0
        capsys.readouterr()

        sft = tmp_path / "nav-sft"
        assert main(["train", "sft-navigate", "longvideo-r1-sft", *_set([
            f"model_path={text}", f"data=[{run}]", f"output_dir={sft}", "trl.max_steps=2",
            "trl.per_device_train_batch_size=2", "trl.gradient_accumulation_steps=1",
            "trl.activation_checkpointing=false"])]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["trajectories"] == len(letters) and summary["steps"] == 2

        rows = tmp_path / "rows.jsonl"
        assert main(["data", "rows", *data, "--out", str(rows)]) == 0
        assert len(rows.read_text().splitlines()) == len(letters)

        final = tmp_path / "nav-grpo"
        assert main(["train", "grpo-navigate", "longvideo-r1-grpo", *_set([
            f"model_path={sft}", f"rows={rows}", f"videos={suite}", f"output_dir={final}", f"caption_url={server.url}",
            "trl.num_generations=2", "trl.per_device_train_batch_size=2", "trl.gradient_accumulation_steps=1",
            "trl.max_steps=2", "max_rounds=2", "trl.max_completion_length=8", "trl.activation_checkpointing=false",
            "trl.save_strategy=no", "trl.warmup_steps=0"])]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["steps"] == 2 and (final / "model.safetensors").is_file()

        video = next(iter(sorted(suite.glob("*.mp4"))))
        assert main(["ask", str(video), "Which word is shown?", "--option", "A1", "--option", "B2", "--agent",
                     "navigate", "--reasoning-model-path", str(final), "--caption-url", server.url, "--max-rounds",
                     "2", "--max-new-tokens", "8"]) == 0
        assert "trace:" in capsys.readouterr().out


def test_training_reads_the_released_files_as_released(suite, tmp_path, capsys):
    """LOVE-R1's SFT JSON (a stage-1 item and a stage-2 ``cot_data`` item) and RL JSON (the authors' absolute
    paths), LongVideo-R1's RL parquet: each trains one step with its videos mapped by --video-root."""
    from longlens.backends.hf.random_model import make_random_text_model
    from test_released_data import write_parquet

    tiny = tmp_path / "tiny"
    make_random_model(tiny, "tiny")
    disks = tmp_path / "disks"
    (disks / "cg" / "videos").mkdir(parents=True)
    for video in sorted(suite.glob("*.mp4")):
        (disks / "cg" / "videos" / video.name).symlink_to(video)  # a folder of links into a store is fine
    name = sorted(suite.glob("*.mp4"))[0].name
    user = {"role": "user", "content": [{"type": "text", "text": "Which word is shown?\nA. ONE\nB. TWO"}]}
    sft = tmp_path / "cold_start.json"
    sft.write_text(json.dumps([
        {"video": f"CG-Bench/videos/{name}", "tgt": [[5, 9]],
         "messages": [user, {"role": "assistant", "content": "A"}]},
        {"video": f"CG-Bench/videos/{name}", "cot_data": True, "zoomin_intervals": [[4.6, 7.2]],
         "messages": [user, {"role": "assistant", "content": "I get the answer.\n\nIt reads ONE. \\boxed{A}"}]}]))
    out = tmp_path / "sft"
    assert main(["train", "sft", "love-r1-sft-stage2", "--video-root", f"CG-Bench={disks / 'cg'}", *_set([
        f"model_path={tiny}", f"train_file={sft}", f"output_dir={out}", "trl.max_steps=1", "slow_frames=4",
        "trl.per_device_train_batch_size=2", "trl.gradient_accumulation_steps=1",
        "trl.activation_checkpointing=false", *FRAMES])]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == 2 and summary["steps"] == 1 and summary["skipped"] == {}

    rl = tmp_path / "RL-hard.json"
    rl.write_text(json.dumps([
        {"path": f"/mnt/data1/someone/datasets/CG-Bench/videos/{name}", "problem": "Which word is shown?\n",
         "options": ["A. ONE", "B. TWO"], "problem_type": "multiple choice", "solution": "<answer>A</answer>",
         "data_type": "video", "zoomin_intervals": []}]))
    assert main(["train", "grpo", "love-r1-grpo", "--video-root", f"CG-Bench={disks / 'cg'}", *_set([
        f"model_path={tiny}", f"rows={rl}", f"output_dir={tmp_path / 'grpo'}", "trl.max_steps=1",
        "trl.num_generations=2", "trl.per_device_train_batch_size=2", "trl.gradient_accumulation_steps=1",
        "trl.max_completion_length=8", "slow_frames=4", "trl.activation_checkpointing=false", "trl.save_strategy=no",
        *FRAMES])]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 1

    text = tmp_path / "tiny-text"
    make_random_text_model(text)
    user = ("Which word is shown?\nA. ONE\nB. TWO\n\n\nThe total duration of the video is 60.0 seconds.\n\n")
    parquet = write_parquet([{
        "data_source": "videocaption_cgbench", "prompt": [{"role": "system", "content": "s"},
                                                         {"role": "user", "content": user}],
        "ability": "get_caption", "reward_model": {"style": "rule", "ground_truth": "A"},
        "extra_info": {"index": 0, "need_tools_kwargs": True, "video_uid": Path(name).stem, "split": "train",
                       "clue_intervals": [[5.0, 9.0]], "width": 4, "duration": 60.0, "fps": 30.0,
                       "data_source": "videocaption_cgbench"}, "metadata": None}], tmp_path / "rl.parquet")
    with ScriptedServer(["<caption>A plain scene.</caption>"], repeat_last=True) as server:
        assert main(["train", "grpo-navigate", "longvideo-r1-grpo", "--video-root",
                     f"videocaption_cgbench={disks / 'cg' / 'videos'}", *_set([
                         f"model_path={text}", f"rows={parquet}", f"output_dir={tmp_path / 'nav'}",
                         f"caption_url={server.url}", "trl.num_generations=2", "trl.per_device_train_batch_size=2",
                         "trl.gradient_accumulation_steps=1", "trl.max_steps=1", "max_rounds=2",
                         "trl.max_completion_length=8", "trl.activation_checkpointing=false", "trl.save_strategy=no",
                         "trl.warmup_steps=0"])]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 1
