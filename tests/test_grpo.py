"""LOVE-R1 GRPO on a tiny random Qwen2.5-VL (CPU): rollouts through the zoom loop, a loss that sees the video."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from longlens.agents.zoom import ZoomAgent, ZoomConfig  # noqa: E402
from longlens.backends.base import GenConfig  # noqa: E402
from longlens.backends.hf import HFBackend  # noqa: E402
from longlens.backends.hf.random_model import make_random_model  # noqa: E402
from longlens.backends.scripted import ScriptedBackend  # noqa: E402
from longlens.data.rows import RLRow, to_jsonl  # noqa: E402
from longlens.errors import LongLensError  # noqa: E402
from longlens.synth import make_video  # noqa: E402
from longlens.train.zoom import rollout  # noqa: E402
from longlens.train.zoom.grpo import ZoomGRPOConfig, load_policy, run_zoom_grpo  # noqa: E402

torch.set_num_threads(1)
SMALL = dict(fast_frames=16, fast_budget=4 * 28 * 28, slow_frames=4, slow_budget=16 * 28 * 28)
OPTIONS = ("SANDAL", "TABLE", "LAMP", "CHAIR")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo")
    make_random_model(root / "tiny", "tiny")
    make_video(root / "videos" / "v.mp4", duration_s=60, width=320, height=180, fps=10, gop_s=2.0, seed=5, needles=1)
    rows = [RLRow("g1", "v.mp4", "Which word is shown?", OPTIONS, "A"),
            RLRow("l1", "v.mp4", "Which word is shown?", OPTIONS, "A", kind="local", truth=((10, 20),),
                  clips=((30, 40),))]
    to_jsonl(rows, root / "rows.jsonl")
    return root


TRL_SMALL = dict(max_completion_length=12, num_generations=2, per_device_train_batch_size=2,
                 gradient_accumulation_steps=1, max_steps=2, learning_rate=1e-2, weight_decay=0.0,
                 activation_checkpointing=False, save_strategy="no")


def config(world, **kw) -> ZoomGRPOConfig:
    """A small run; keyword settings go to the recipe or, for TRL's fields, to its `trl` mapping."""
    import dataclasses

    ours = {f.name for f in dataclasses.fields(ZoomGRPOConfig)}
    base = dict(model_path=str(world / "tiny"), rows=str(world / "rows.jsonl"), videos=str(world / "videos"),
                output_dir=str(world / "out"), **SMALL)
    trl = dict(TRL_SMALL)
    for k, v in kw.items():
        (base if k in ours else trl)[k] = v
    return ZoomGRPOConfig(**base, trl=trl)


def _varied_rewards(monkeypatch):
    """A random model never zooms well or answers right: score its replies in turn so groups differ and the
    advantages are not all zero (the scorers themselves are tested in test_rewards.py)."""
    import itertools

    counters = {}  # per part (the clips shown) and for answers: 1, 0, 1, ... so each group of two rollouts differs

    def turn(key) -> float:
        return float(next(counters.setdefault(key, itertools.count())) % 2 == 0)

    monkeypatch.setattr(rollout, "zoom_reward", lambda c, truth, d=None, clips=(), **k: turn(len(clips)))
    monkeypatch.setattr(rollout, "answer_reward", lambda trace, *a, **k: turn("answer"))


def _train(world, cfg):
    model, processor, _ = load_policy(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    summary = run_zoom_grpo(cfg, model=model, processor=processor)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    return summary, changed, set(before)


def test_two_grpo_steps_train_the_vision_tower(world, monkeypatch):
    _varied_rewards(monkeypatch)
    summary, changed, names = _train(world, config(world, freeze_vision=False))
    assert summary["steps"] == 2
    assert torch.isfinite(torch.tensor(summary["train_loss"]))
    vision = {n for n in names if "visual" in n}
    assert vision and vision <= changed, sorted(vision - changed)[:5]  # the loss forward saw the video
    assert changed == names
    assert (world / "out" / "config.json").is_file()


def test_frozen_vision_stays_put_and_the_language_model_moves(world, monkeypatch):
    _varied_rewards(monkeypatch)
    _, changed, names = _train(world, config(world, freeze_vision=True, output_dir=str(world / "out2")))
    assert not {n for n in changed if "visual" in n}
    assert {n for n in names if "visual" not in n} == changed


def test_equal_rewards_give_no_update(world):
    """A random model scores 0 everywhere: every advantage is 0 and, without weight decay, nothing moves."""
    _, changed, _ = _train(world, config(world, output_dir=str(world / "out3")))
    assert changed == set()


def test_loss_inputs_are_the_inference_encoding(world):
    model, processor, _ = load_policy(config(world))
    backend = HFBackend.from_model(model, processor, kv_reuse=False)
    roller = rollout.Roller(ZoomAgent(backend, ZoomConfig(**SMALL)), world / "videos")
    row = RLRow("l1", "v.mp4", "Which word is shown?", OPTIONS, "A", kind="local", truth=((10, 20),), clips=((30, 40),))
    r = roller.run(row, GenConfig(max_new_tokens=8, temperature=1.0, seed=3))
    assert [s.part for s in r.steps] == [0, 1] and len(r.rewards) == 2
    for step in r.steps:
        target = step.completion + ("<|im_end|>" if step.ended else "")
        full = backend.encode(step.messages, target)["input_ids"][0].tolist()
        prompt = backend.encode(step.messages)["input_ids"][0].tolist()
        reply = processor.tokenizer(target, add_special_tokens=False)["input_ids"]
        assert full == prompt + reply  # the completion tokens are the last len(reply) of the scored sequence
        assert step.messages[-1].plain_text == "I need to zoom in on the video.\n\n"


def test_rollouts_through_the_loop_with_scripted_replies(world):
    zoom = "I need to zoom in on the video.\n\nEarly. \\boxed{[10, 18]}"
    answer = "I get the answer.\n\nIt is \\boxed{A}"
    backend = ScriptedBackend([zoom, answer, "\\boxed{[12, 15]}", "\\boxed{[50, 59]}", "no box at all",
                               "still nothing"])
    roller = rollout.Roller(ZoomAgent(backend, ZoomConfig(**SMALL)), world / "videos")
    general = RLRow("g", "v.mp4", "Which word is shown?", OPTIONS, "A")
    r = roller.run(general, GenConfig(temperature=1.0, seed=1))
    assert [s.step for s in r.steps] == ["free", "free"] and r.rewards == (2.0,)  # right answer + both formats
    assert r.details == {"answer": 1.0, "format": 1.0, "steps": 2}
    local = RLRow("l", "v.mp4", "Which word is shown?", OPTIONS, "A", kind="local", truth=((10, 20),),
                  clips=((40, 60),))
    r = roller.run(local, GenConfig(temperature=1.0, seed=1))
    assert [s.step for s in r.steps] == ["zoom", "zoom"]
    assert r.rewards == (2.0, 1.0)  # [12, 15] hits the truth; [50, 59] is a usable clip that misses it
    assert r.details["zoom1"] == 1.0 and r.details["zoom2"] == 0.0
    r = roller.run(general, GenConfig(temperature=1.0, seed=2))
    assert r.rewards == (None,)  # no answer at all: the whole trajectory is masked


def test_missing_rows_and_videos_are_one_line_errors(world, tmp_path):
    with pytest.raises(LongLensError, match="longlens data mine"):
        run_zoom_grpo(config(world, rows=str(tmp_path / "none.jsonl")))
    with pytest.raises(LongLensError, match="missing"):
        run_zoom_grpo(config(world, videos=str(tmp_path)))
    with pytest.raises(LongLensError, match="no such directory"):
        load_policy(config(world, model_path=str(tmp_path / "nothing")))
    with pytest.raises(LongLensError, match="config.json"):
        load_policy(config(world, model_path=str(tmp_path)))


@pytest.mark.parametrize("extra", [{"beta": 0.04}, {"num_iterations": 2, "gradient_accumulation_steps": 2},
                                   {"loss_type": "grpo", "activation_checkpointing": True}])
def test_kl_old_logprobs_and_sequence_loss_paths(world, monkeypatch, extra):
    _varied_rewards(monkeypatch)
    summary, changed, names = _train(world, config(world, output_dir=str(world / "out4"), max_steps=3,
                                                   freeze_vision=False, **extra))
    assert summary["steps"] == 3 and torch.isfinite(torch.tensor(summary["train_loss"]))
    assert changed == names


def test_train_grpo_from_the_cli(world, capsys):
    import json

    from longlens.cli.main import main

    out = world / "cli-run"
    args = ["train", "grpo", "love-r1-grpo", "--set", f"model_path={world / 'tiny'}", "--set",
            f"rows={world / 'rows.jsonl'}", "--set", f"videos={world / 'videos'}", "--set", f"output_dir={out}"]
    small = [f"{k}={v}" for k, v in SMALL.items()] + [
        "trl.num_generations=2", "trl.per_device_train_batch_size=2", "trl.gradient_accumulation_steps=1",
        "trl.max_steps=2", "trl.max_completion_length=8", "trl.activation_checkpointing=false", "trl.save_strategy=no"]
    for item in small:
        args += ["--set", item]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["rows"] == 2
    assert (out / "model.safetensors").is_file() and (out / "longlens-config.yaml").is_file()
    assert "max_steps: 2" in (out / "longlens-config.yaml").read_text()
    assert main(["train", "grpo", "love-r1-grpo", "--set", "lr=1"]) == 2
    assert "not a setting" in capsys.readouterr().err


def test_shipped_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    from longlens.train.config import SHIPPED, load_config, shipped

    assert "love-r1-grpo" in shipped()
    cfg = load_config(ZoomGRPOConfig, "love-r1-grpo", ["trl.learning_rate=2e-6", "trl.bf16=true"], complete=False)
    assert cfg.trl["learning_rate"] == 2e-6 and cfg.trl["bf16"] is True and cfg.trl["num_generations"] == 8
    assert cfg.trl["beta"] == 0.0 and cfg.trl["per_device_train_batch_size"] == 1  # the YAML over TRL_DEFAULTS
    for name in ("zero2", "zero3", "zero3-offload"):
        acc = load_config_from_file(str(SHIPPED / "accelerate" / f"{name}.yaml"))
        assert acc.deepspeed_config["zero_stage"] == int(name[4])
    with pytest.raises(LongLensError, match="takes a number"):
        load_config(ZoomGRPOConfig, None, ["trl.learning_rate=fast"])
    with pytest.raises(LongLensError, match="write it as trl.learning_rate"):
        load_config(ZoomGRPOConfig, None, ["learning_rate=1e-6"])
    with pytest.raises(LongLensError, match="did you mean trl.learning_rate"):
        load_config(ZoomGRPOConfig, None, ["trl.learnin_rate=1e-6"])
    with pytest.raises(LongLensError, match="reward_weights"):
        from longlens.train.grpo_core import grpo_args

        grpo_args(load_config(ZoomGRPOConfig, None, ["trl.reward_weights=[1.0]"], complete=False))
    any_trl_field = load_config(ZoomGRPOConfig, None, ["trl.mask_truncated_completions=true"], complete=False)
    assert grpo_args(any_trl_field).mask_truncated_completions is True


class FakeLLM:
    """Stands for ``vllm.LLM``: records each ``chat`` call, replies from a script (a real one: test_vllm_server)."""

    def __init__(self, replies):
        self.replies, self.calls = list(replies), []

    def chat(self, conversations, params, **kw):
        from types import SimpleNamespace

        self.calls.append((conversations, params, kw))
        text = self.replies[(len(self.calls) - 1) % len(self.replies)]
        out = SimpleNamespace(text=text, token_ids=list(range(len(text.split()))), finish_reason="stop")
        return [SimpleNamespace(outputs=[out], prompt_token_ids=[0] * 7)]


def test_vllm_local_backend_sends_what_a_vllm_server_gets(world):
    from longlens.backends.vllm_local import VLLMLocalBackend

    llm = FakeLLM(["\\boxed{[12, 15]}"])
    backend = VLLMLocalBackend(llm, sampling=dict, frame_factor=28)
    roller = rollout.Roller(ZoomAgent(backend, ZoomConfig(**SMALL)), world / "videos")
    local = RLRow("l", "v.mp4", "Which word is shown?", OPTIONS, "A", kind="local", truth=((10, 20),))
    r = roller.run(local, GenConfig(max_new_tokens=9, temperature=1.0, top_k=50, seed=4))
    assert r.rewards == (2.0,) and r.steps[0].completion == "\\boxed{[12, 15]}"
    (conversation,), params, kw = llm.calls[0]
    assert kw["continue_final_message"] and not kw["add_generation_prompt"]  # the forced zoom prefix
    assert conversation[-1] == {"role": "assistant", "content": "I need to zoom in on the video.\n\n"}
    video = [p for p in conversation[1]["content"] if p["type"] == "video_url"]
    assert len(video) == 1 and video[0]["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert "fps" not in kw["mm_processor_kwargs"]  # each video's rate travels in its own container
    assert params["max_tokens"] == 9 and params["top_k"] == 50 and params["temperature"] == 1.0
    assert params["seed"] is not None


def test_use_vllm_rolls_out_on_the_engine_with_synced_weights(world, monkeypatch):
    """The trainer's vLLM path with TRL's engine replaced by a fake (weights pushed once per optimiser step)."""
    from types import SimpleNamespace

    from longlens.backends.vllm_local import sampling_params
    from longlens.train.grpo_core import grpo_args, read_rows
    from longlens.train.zoom.grpo import _trainer_class

    cfg = config(world, output_dir=str(world / "out-vllm"))
    model, processor, _ = load_policy(cfg)
    trainer = _trainer_class()(model=model, processor=processor, rows=read_rows(cfg), config=cfg,
                               args=grpo_args(cfg))
    syncs = []
    llm = FakeLLM(["I get the answer.\n\n\\boxed{A}", "\\boxed{[11, 19]}", "\\boxed{[1, 3]}"])
    trainer.use_vllm = True
    trainer.vllm_generation = SimpleNamespace(llm=llm, sync_weights=lambda: syncs.append(trainer.state.global_step))
    monkeypatch.setattr("longlens.backends.vllm_local.sampling_params", lambda: dict)
    monkeypatch.setattr(HFBackend, "generate", lambda *a, **k: pytest.fail("generated in-process, not on vLLM"))
    trainer.train()
    assert trainer.state.global_step == 2 and syncs == [0, 1]
    assert len(llm.calls) >= 4  # every rollout generated on the engine
    monkeypatch.undo()
    with pytest.raises(LongLensError, match="pip install vllm"):  # not installed here: one clear line
        sampling_params()


TWO_PROCESSES = """
import json, os, sys, torch
torch.set_num_threads(1)
from longlens.train.zoom import rollout
rollout.zoom_reward = lambda c, *a, **k: float(len(c))  # rewards that differ between ranks' rollouts
rollout.answer_reward = lambda t, *a, **k: float(len(t.steps[-1].completion))
from longlens.train.zoom.grpo import ZoomGRPOConfig, load_policy, run_zoom_grpo
cfg = ZoomGRPOConfig(**json.loads(sys.argv[1]))
model, processor, _ = load_policy(cfg)
before = {n: p.detach().clone() for n, p in model.named_parameters()}
summary = run_zoom_grpo(cfg, model=model, processor=processor)
changed = sorted(n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach()))
digest = [float(p.detach().double().sum()) for _, p in sorted(model.named_parameters())]
with open(os.path.join(cfg.output_dir, f"rank{os.environ['RANK']}.json"), "w") as f:
    json.dump({"changed": changed, "digest": digest, "steps": summary["steps"], "n": len(before)}, f)
"""


@pytest.mark.slow
def test_two_processes_share_groups_and_stay_in_sync(world, tmp_path):
    """torchrun with 2 CPU processes (gloo): each rolls out one of a question's 2 generations, advantages come
    from the rewards gathered across processes, and DDP keeps the two copies equal."""
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "two.py"
    script.write_text(TWO_PROCESSES)
    cfg = {k: v for k, v in vars(config(world, output_dir=str(tmp_path / "out"), per_device_train_batch_size=1,
                                       freeze_vision=False)).items()}
    import socket

    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                          "127.0.0.1", "--master_port", str(port), str(script), json.dumps(cfg)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    ranks = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["steps"] == ranks[1]["steps"] == 2
    assert len(ranks[0]["changed"]) == ranks[0]["n"]  # every parameter moved: the advantages were not all 0
    assert ranks[0]["digest"] == ranks[1]["digest"]  # and both processes hold the same model
