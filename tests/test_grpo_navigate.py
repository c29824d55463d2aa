"""LongVideo-R1 GRPO on a tiny random Qwen3 text model (CPU): rollouts through the navigate loop, the policy as
its own reasoning backend (HFTextBackend), a loss on exactly the assistant turns."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from longlens._torchvision_shim import install  # noqa: E402

install()

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from longlens.agents.navigate.tree import build_tree  # noqa: E402
from longlens.backends.base import DEFAULT_GEN, BackendError, GenConfig  # noqa: E402
from longlens.backends.hf.random_model import make_random_text_model  # noqa: E402
from longlens.backends.hf.text import HFTextBackend  # noqa: E402
from longlens.backends.scripted import ScriptedBackend  # noqa: E402
from longlens.data.rows import RLRow, to_jsonl  # noqa: E402
from longlens.errors import LongLensError  # noqa: E402
from longlens.prompts.messages import Image, Message, Text  # noqa: E402
from longlens.rewards import TrajectoryReward, trajectory_reward  # noqa: E402
from longlens.synth import make_video  # noqa: E402
from longlens.train.config import load_config  # noqa: E402
from longlens.train.navigate import grpo as grpo_navigate  # noqa: E402
from longlens.train.navigate.grpo import (  # noqa: E402
    NavigateGRPOConfig,
    load_policy,
    make_roller,
    role_backends,
    run_navigate_grpo,
    trajectory_item,
)
from longlens.video import open_video  # noqa: E402

torch.set_num_threads(1)
END = "<|im_end|>"
OPTIONS = ("SANDAL", "TABLE", "LAMP", "CHAIR")
TRUTH = ((22.0, 27.0),)
ROW = RLRow("q1", "v.mp4", "Which word is shown?", OPTIONS, "A", truth=TRUTH)
SMALL = ["trl.num_generations=2", "trl.per_device_train_batch_size=2", "trl.gradient_accumulation_steps=1",
         "trl.max_steps=2", "max_rounds=3", "trl.max_completion_length=12", "trl.learning_rate=1e-2",
         "trl.activation_checkpointing=false", "trl.save_strategy=no", "trl.warmup_steps=0", "online_captions=true"]


def captioner(n: int = 10_000) -> ScriptedBackend:
    """Captions (and video_qa answers) that name the frames they were shown."""
    return ScriptedBackend([lambda m: f"<caption>{m[1].parts[0].text[:30]}</caption><answer>SANDAL</answer>"] * n,
                           model="vl")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo-navigate")
    make_random_text_model(root / "tiny")
    make_video(root / "videos" / "v.mp4", duration_s=60, width=320, height=180, fps=10, gop_s=2.0, seed=5, needles=1)
    to_jsonl([ROW, RLRow("q2", "v.mp4", "What colour is the lamp?", OPTIONS, "C", truth=((40.0, 45.0),))],
             root / "rows.jsonl")
    return root


@pytest.fixture(scope="module")
def policy(world):
    return AutoModelForCausalLM.from_pretrained(world / "tiny"), AutoTokenizer.from_pretrained(world / "tiny")


def config(world, *extra: str, out: str = "out") -> NavigateGRPOConfig:
    paths = [f"model_path={world / 'tiny'}", f"rows={world / 'rows.jsonl'}", f"videos={world / 'videos'}",
             f"output_dir={world / out}", f"cache_dir={world / 'cache'}"]
    return load_config(NavigateGRPOConfig, "longvideo-r1-grpo", paths + SMALL + list(extra))


# ---------------------------------------------------------------- the text backend
def test_text_backend_renders_as_sft_samples_and_decodes_like_generate(policy):
    model, tok = policy
    backend = HFTextBackend.from_model(model, tok, kv_reuse=False)
    msgs = (Message.text("system", "You walk a caption tree."), Message.text("user", "Which word is shown?"))
    chat = [{"role": m.role, "content": m.plain_text} for m in msgs]
    prompt = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert backend.render(msgs) == prompt
    greedy = backend.generate(msgs, GenConfig(max_new_tokens=16))
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False)
    assert greedy.text == tok.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)
    assert greedy.usage.prompt_tokens == ids.shape[1] and greedy.usage.completion_tokens == 16
    assert greedy.finish_reason == "length"
    loaded = HFTextBackend(model.name_or_path)  # from the folder: the same model, the same reply
    assert loaded.generate(msgs, GenConfig(max_new_tokens=16)).text == greedy.text
    with pytest.raises(BackendError, match="no config.json"):
        HFTextBackend(model.name_or_path + "-missing")

    def sample(seed, **kw):
        return backend.generate(msgs, GenConfig(max_new_tokens=24, temperature=1.0, top_p=0.95, top_k=100,
                                                seed=seed, **kw))

    a, b, c = sample(3), sample(3), sample(4)
    assert a.text == b.text and a.text != c.text
    stop = a.text[5:7]
    cut = sample(3, stop=(stop,))
    assert cut.finish_reason == "stop" and cut.text == a.text[: a.text.index(stop) + len(stop)]
    with pytest.raises(BackendError, match="text only"):
        backend.render((Message("user", (Text("x"), Image(np.zeros((28, 28, 3), np.uint8)))),))


def test_kv_reuse_gives_the_same_replies_and_the_context_cap(policy):
    model, tok = policy
    fresh = HFTextBackend.from_model(model, tok, kv_reuse=False)
    kept = HFTextBackend.from_model(model, tok, kv_reuse=True)
    msgs = (Message.text("system", "You walk a caption tree."), Message.text("user", "Which word is shown?"))
    gen = GenConfig(max_new_tokens=10, temperature=1.0, seed=7)
    first = kept.generate(msgs, gen)
    msgs += (Message.text("assistant", first.text), Message.text("user", "Medium-level Caption 2,3: a lamp."))
    again, plain = kept.generate(msgs, gen), fresh.generate(msgs, gen)
    assert again.text == plain.text and again.usage.cached_tokens > first.usage.prompt_tokens // 2
    assert plain.usage.cached_tokens == 0
    n = plain.usage.prompt_tokens
    capped = HFTextBackend.from_model(model, tok, max_context=n + 3).generate(msgs, GenConfig(max_new_tokens=10))
    assert capped.usage.completion_tokens <= 3 and capped.finish_reason in ("stop", "length")
    with pytest.raises(BackendError, match="context cap"):
        HFTextBackend.from_model(model, tok, max_context=n).generate(msgs, gen)


# ---------------------------------------------------------------- rollouts
REPLIES = ["<think>The second quarter.</think>\n<tool>get_caption((2,2))</tool>",
           "no tags at all",
           "<think>Closer.</think><tool>get_caption((2,2,4))</tool>",
           "<think>Check it.</think><tool>video_qa((2,2,4), \"which word?\")</tool>",
           "<think>Again.</think><tool>get_caption((2,2,4))</tool>",
           "<think>It says SANDAL.</think>\n<answer>A</answer>"]


class Reasoner(ScriptedBackend):
    """Scripted turns; keeps the seed of every call."""

    def __init__(self, replies):
        super().__init__(replies, model="reasoner")
        self.seeds = []

    def generate(self, messages, gen=DEFAULT_GEN):
        self.seeds.append(gen.seed)
        return super().generate(messages, gen)


def scripted_rollout(world, seed=1, caption=None, replies=REPLIES, cache="cache"):
    cfg = config(world, "max_rounds=8", f"cache_dir={world / cache}")
    roller = make_roller(cfg, caption or captioner())
    reasoner = Reasoner(replies)
    r = roller.run(reasoner, ROW, seed)
    return roller, r, reasoner.seeds


def test_the_rollout_reward_is_the_trajectory_reward_of_its_trace(world):
    roller, r, seeds = scripted_rollout(world)
    trace = r.trace
    assert trace.answer == "A" and len(trace.steps) == 6 and r.masked is None
    tree = build_tree(open_video(world / "videos" / "v.mp4"), trace.meta["width"])
    expected = trajectory_reward(trace, "A", TRUTH, tree, options=OPTIONS)
    assert r.parts == expected and r.reward == expected.total
    assert expected.answer == 1.0 and 0 < expected.location <= 1 and expected.repeat == pytest.approx(1 / 3)
    assert r.metrics == {"answered": 1.0, "correct": 1.0, "location": expected.location, "repeat": expected.repeat,
                         "rounds": 6.0, "invalid": 1.0, "failed": 0.0, "context_full": 0.0}
    assert len(set(seeds)) == 6 and scripted_rollout(world)[2] == seeds  # a seed per round, from the rollout's
    again = roller.run(ScriptedBackend(REPLIES), ROW, 2)  # the captions are in the store now
    assert again.trace.totals.calls["caption"] == 0 and again.reward == r.reward


def test_the_item_masks_exactly_the_assistant_turns(world, policy):
    _, tok = policy
    _, r, _ = scripted_rollout(world)
    item = trajectory_item(tok, r)
    ids = item.inputs["input_ids"][0]
    assert item.mask.shape == ids.shape and item.part == 0
    assert tok.decode(ids[item.mask]) == "".join(t + END for t in REPLIES)  # the invalid turn too
    runs = torch.diff(item.mask.int()).eq(1).sum().item() + int(item.mask[0])
    assert runs == len(REPLIES)  # one span per turn, observations between them masked
    chat = [{"role": ref["role"], "content": "".join(p["text"] for p in ref["content"])}
            for s in r.trace.steps for ref in s.prompt]
    assert chat[0]["role"] == "system" and all(m["role"] != "assistant" for m in chat)
    text = tok.decode(ids)
    for m in chat:  # every message the agent sent is in the sequence, and none of it is a loss token
        assert m["content"] in text and m["content"] not in tok.decode(ids[item.mask])


def test_the_policy_rollout_item_is_its_own_turns(world, policy):
    model, tok = policy
    cfg = config(world)
    backend = HFTextBackend.from_model(model, tok, max_context=cfg.max_context_tokens)
    r = make_roller(cfg, captioner()).run(backend, ROW, 11)
    assert len(r.trace.steps) == 3 and r.reward == 0.0  # a random model: no answer, no visit
    item = trajectory_item(tok, r)
    got = tok.decode(item.inputs["input_ids"][0][item.mask])
    assert got == "".join(s.completion + END for s in r.trace.steps)


def test_failures_tool_servers_mask_the_policy_scores(world, policy):
    _, tok = policy
    # a caption server that dies after the high-level captions: not the model's doing, masked
    _, r, _ = scripted_rollout(world, caption=captioner(5), cache="cache-dies")
    assert r.reward is None and "get_caption failed at round 3" in r.masked and r.metrics == {"failed": 1.0}
    item = trajectory_item(tok, r)
    assert tok.decode(item.inputs["input_ids"][0][item.mask]) == REPLIES[0] + END + REPLIES[1] + END
    # the policy itself failing (its context cap): scored by the reward's rule, no answer
    _, r, _ = scripted_rollout(world, replies=REPLIES[:1])
    assert r.masked is None and r.metrics["context_full"] == 1.0 and r.metrics["answered"] == 0.0
    assert r.reward == r.parts.total == r.parts.location > 0
    # the high-level captions fail: no turn at all, masked, and nothing to train (the loss is a graph-keeping 0)
    _, r, _ = scripted_rollout(world, caption=captioner(0), cache="cache-dead")
    assert r.reward is None and not r.trace.steps and trajectory_item(tok, r) is None


# ---------------------------------------------------------------- training
def _varied_rewards(monkeypatch):
    """A random model never answers or visits a node: reward its trajectories by length so that groups differ
    and the advantages are not all zero (the reward itself is tested in test_rewards.py)."""
    def by_length(trace, *a, **k):
        n = sum(len(s.completion) for s in trace.steps) / 100
        return TrajectoryReward(0.0, 0.0, 0.0, n, False, 0)

    monkeypatch.setattr(grpo_navigate, "trajectory_reward", by_length)


def _train(world, cfg):
    model, tok = load_policy(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    summary = run_navigate_grpo(cfg, model=model, tokenizer=tok, caption=captioner())
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    return summary, changed, set(before)


def test_two_grpo_steps_move_the_policy(world, monkeypatch):
    _varied_rewards(monkeypatch)
    summary, changed, names = _train(world, config(world))
    assert summary["steps"] == 2 and summary["rows"] == 2
    assert torch.isfinite(torch.tensor(summary["train_loss"]))
    assert changed == names
    last = summary["last"]
    assert last["rollout/rounds"] == 3 and last["rollout/failed"] == 0 and "kl" in last
    assert (world / "out" / "model.safetensors").is_file() and (world / "out" / "tokenizer_config.json").is_file()


def test_equal_rewards_give_no_update(world):
    """The random model scores 0 everywhere: every advantage is 0 and, without weight decay, nothing moves."""
    summary, changed, _ = _train(world, config(world, "trl.weight_decay=0.0", out="out-equal"))
    assert summary["steps"] == 2 and changed == set()


def test_a_batch_without_turns_trains_on_nothing(world, tmp_path):
    """Caption servers dead from the start: every rollout is masked with no tokens, the loss is a graph-keeping 0."""
    cfg = config(world, "trl.weight_decay=0.0", f"cache_dir={tmp_path / 'cache'}", out="out-empty")
    model, tok = load_policy(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    summary = run_navigate_grpo(cfg, model=model, tokenizer=tok, caption=captioner(0))
    assert summary["steps"] == 2 and summary["train_loss"] == 0.0
    assert summary["last"]["rollout/no_turns"] == 1.0
    assert all(torch.equal(before[n], p.detach()) for n, p in model.named_parameters())


# ---------------------------------------------------------------- config and errors
def test_the_shipped_config_has_the_reference_values():
    cfg = load_config(NavigateGRPOConfig, "longvideo-r1-grpo", complete=False)
    t = cfg.trl
    assert (t["num_generations"], t["learning_rate"], t["beta"], t["epsilon"], t["weight_decay"]) == (16, 1e-6, 1e-4,
                                                                                                      0.2, 0.01)
    assert (cfg.max_rounds, t["temperature"], t["top_p"], t["num_train_epochs"], t["warmup_steps"]) == (16, 1.0, 1.0,
                                                                                                       2.0, 10.0)
    assert cfg.stop == ("</tool>", "</answer>") and cfg.max_context_tokens == 20480 and t["loss_type"] == "bnpo"
    from longlens.train.grpo_core import grpo_args

    nav = cfg.navigate_config(grpo_args(cfg))
    assert nav.max_rounds == 16 and not nav.last_round_message and nav.gen.stop == cfg.stop
    assert nav.gen.top_k is None and nav.gen.max_new_tokens == 8192
    assert NavigateGRPOConfig() == cfg  # the YAML states the defaults


def test_default_roles_are_the_offline_backend():
    from longlens.backends.offline import OfflineBackend

    caption, videoqa = role_backends(NavigateGRPOConfig())
    assert isinstance(caption, OfflineBackend) and videoqa is caption


def test_bad_input_is_one_clear_line(world, tmp_path):
    with pytest.raises(LongLensError, match="no such file"):
        run_navigate_grpo(config(world, f"rows={tmp_path / 'none.jsonl'}"), caption=captioner())
    with pytest.raises(LongLensError, match="missing"):
        run_navigate_grpo(config(world, f"videos={tmp_path}"), caption=captioner())
    with pytest.raises(LongLensError, match="config.json"):
        load_policy(config(world, f"model_path={tmp_path}"))
    rewrites = tmp_path / "rewrites.jinja"  # old assistant turns rendered differently: no one-sequence trajectory
    rewrites.write_text(AutoTokenizer.from_pretrained(world / "tiny").chat_template.replace(
        "{%- if message['content'] is string -%}",
        "{%- if message['role'] == 'assistant' and not loop.last -%}{{- 'old' -}}"
        "{%- elif message['content'] is string -%}"))
    with pytest.raises(LongLensError, match="rewrites earlier turns"):
        load_policy(config(world, f"chat_template={rewrites}"))
    with pytest.raises(LongLensError, match="on_invalid must be one of"):
        config(world, "on_invalid=ignore")
    with pytest.raises(LongLensError, match="not a setting"):
        config(world, "max_turns=15")
