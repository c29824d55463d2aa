"""SFT of both agents on tiny random models (CPU): samples equal inference, labels, clip rules, two real steps."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from safetensors.torch import load_file

from longlens._torchvision_shim import install
from longlens.agents.navigate import NavigateAgent
from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends.hf import HFBackend
from longlens.backends.hf.random_model import make_random_model, make_random_text_model
from longlens.backends.scripted import ScriptedBackend
from longlens.data.released import read_records
from longlens.data.rows import CotRow, to_jsonl
from longlens.errors import LongLensError
from longlens.synth import make_video
from longlens.train.navigate.sft import (
    NavigateSFTConfig,
    Trajectory,
    build_samples,
    encode,
    from_llamafactory,
    from_run,
    read_trajectories,
    run_navigate_sft,
)
from longlens.train.zoom.sft import (
    END,
    EpochTag,
    TemplateRow,
    ZoomSamples,
    ZoomSFTConfig,
    row_index,
    run_zoom_sft,
    simulate_clips,
    slow_frames_for,
    stage2_clips,
)
from longlens.video import FrameCache

install()
torch.set_num_threads(1)
OPTIONS = ("SANDAL", "TABLE", "LAMP", "CHAIR")
TARGET = "I get the answer.\n\nThe sign reads SANDAL. \\boxed{A}"
SMALL = dict(fast_frames=16, fast_budget=4 * 28 * 28, slow_budget=16 * 28 * 28, slow_frames=(4, 4, 4))
FAST_TRL = dict(gradient_accumulation_steps=1, max_steps=2, activation_checkpointing=False, warmup_steps=0.0,
                learning_rate=1e-3)


def fast(**trl) -> dict:
    """Two quick optimiser steps (TRL's SFTConfig fields, `trl` over them)."""
    return {"trl": {**FAST_TRL, **trl}}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny-qwen2.5-vl"
    make_random_model(path, "tiny")
    return path


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny-qwen3"
    make_random_text_model(path)
    return path


@pytest.fixture(scope="module")
def backend(tiny_dir):
    return HFBackend(tiny_dir, kv_reuse=False)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("videos") / "two-minutes.mp4"
    make_video(path, duration_s=120, width=320, height=180, fps=10, gop_s=2.0, seed=5, needles=2)
    return path


def cot(video, clips=(), target=TARGET, id="r0"):
    return CotRow(id=id, video=str(video), duration_s=120.0, question="Which word is shown?", options=OPTIONS,
                  answer="A", kind="answer", clips=clips, target=target)


def samples_for(backend, rows, **kw):
    cfg = ZoomSFTConfig(model_path="-", train_file="-", output_dir="-", **{**SMALL, **kw})
    return ZoomSamples(backend, rows, cfg, FrameCache())


# ---------------------------------------------------------------- clip rules
class Scripted(random.Random):
    """An RNG that returns scripted draws, to walk the reference rule by hand."""

    def __init__(self, floats=(), ints=()):
        super().__init__(0)
        self.floats, self.ints = list(floats), list(ints)

    def random(self):
        return self.floats.pop(0)

    def randint(self, a, b):
        v = self.ints.pop(0)
        assert a <= v <= b, (a, v, b)
        return v

    def sample(self, seq, k):
        return list(seq)[:k]


def test_stage1_clip_rule_by_hand():
    truth = [(10.7, 20.2), (18, 30), (50, 55)]
    # u < 0.6: truth cast to int, overlaps merged, each widened by randint(0, 5) a side, clamped
    assert simulate_clips(100.5, truth, Scripted([0.3], [2, 3, 0, 5])) == [(8, 33), (50, 60)]
    assert simulate_clips(56.0, [(1, 5), (52, 55)], Scripted([0.1], [4, 0, 0, 5])) == [(0, 5), (52, 56)]
    assert simulate_clips(100.5, truth, Scripted([0.7])) == [(0, 100)]  # the whole video
    assert simulate_clips(100.5, truth, Scripted([0.85])) == []  # no clip
    many = [(0, 5), (10, 15), (20, 25), (30, 35)]  # more than 3: a random 3 kept
    assert len(simulate_clips(100, many, Scripted([0.0], [0] * 6))) == 3
    # no truth: 0.9 the whole video; 0.1 random clips (count 0-3 at >= 180 s, length >= 16 s)
    assert simulate_clips(200.0, [], Scripted([0.5])) == [(0, 200)]
    assert simulate_clips(200.0, [], Scripted([0.05], [2, 3, 100, 20, 0])) == [(0, 20), (100, 116)]
    assert simulate_clips(10.0, [], Scripted([0.05], [1, 0, 0])) == [(0, 10)]  # cut to a short video
    with pytest.raises(AssertionError):  # under 30 s at most one clip is drawn
        simulate_clips(20.0, [], Scripted([0.05], [2]))


def test_stage1_clip_rule_is_seeded_and_has_the_reference_odds():
    draws = [simulate_clips(300.0, [(100, 110)], random.Random(f"0:0:{i}")) for i in range(3000)]
    assert draws == [simulate_clips(300.0, [(100, 110)], random.Random(f"0:0:{i}")) for i in range(3000)]
    whole = sum(d == [(0, 300)] for d in draws) / len(draws)
    none = sum(d == [] for d in draws) / len(draws)
    truth = [d for d in draws if d and d != [(0, 300)]]
    assert abs(whole - 0.2) < 0.03 and abs(none - 0.2) < 0.03
    assert all(95 <= s <= 100 and 110 <= e <= 115 for (s, e), in truth)
    plain = [simulate_clips(300.0, [], random.Random(i)) for i in range(2000)]
    assert abs(sum(d == [(0, 300)] for d in plain) / 2000 - 0.9) < 0.03


def test_stage2_clips_and_slow_frames():
    assert stage2_clips([(3.4, 5.6)], 100) == [(1.0, 7.0)]  # 3-6 is short: 6 s around int(4.5)
    assert stage2_clips([(0.2, 2)], 100) == [(0.0, 4.0)]
    assert stage2_clips([(98, 100.4)], 100.4) == [(96.0, 100.0)]  # clamped to int(D)
    assert stage2_clips([(40.5, 70.5), (10.5, 20.2)], 100) == [(10.0, 20.0), (40.0, 70.0)]  # Python round
    assert [slow_frames_for(n, (32, 24, 16)) for n in (0, 1, 2, 3, 5)] == [32, 32, 24, 16, 16]
    assert [slow_frames_for(n, (32, 16)) for n in (1, 2, 3)] == [32, 16, 16]


# ---------------------------------------------------------------- samples and labels
class Recording(ScriptedBackend):
    """A scripted backend that keeps the messages themselves (frames included)."""

    frame_factor = 28

    def generate(self, messages, gen=None):
        self.sent = [*getattr(self, "sent", []), messages]
        return super().generate(messages)


def test_training_sample_is_the_inference_encoding(backend, video):
    agent_backend = Recording(["I need to zoom in on the video.\n\nEarly. \\boxed{[50, 60]}", TARGET])
    config = ZoomConfig(fast_frames=16, fast_budget=4 * 28 * 28, slow_frames=4, slow_budget=16 * 28 * 28, max_steps=2)
    trace = ZoomAgent(agent_backend, config).run(video, "Which word is shown?", OPTIONS)
    assert trace.steps[0].clip_added == [45.0, 65.0]
    step2 = agent_backend.sent[1][:-1]  # the forced answer prefix is part of the target in SFT
    expected = backend.encode(step2, TARGET + END)
    s = samples_for(backend, [cot(video, clips=((45, 65),))]).sample(0)
    assert torch.equal(s["input_ids"], expected["input_ids"][0])
    assert torch.equal(s["position_ids"], expected["position_ids"][:, 0])
    assert torch.equal(s["pixel_values_videos"], expected["pixel_values_videos"])
    assert s["video_grid_thw"].tolist() == expected["video_grid_thw"].tolist() and len(s["video_grid_thw"]) == 2


def test_assistant_labels_are_the_target_and_end(backend, video):
    tok = backend.processor.tokenizer
    s = samples_for(backend, [cot(video, clips=((45, 65),))]).sample(0)
    kept = s["labels"] != -100
    assert tok.decode(s["input_ids"][kept]) == TARGET + END
    assert kept.nonzero().min() == len(s["input_ids"]) - kept.sum()  # one run at the end


def test_all_labels_cover_every_text_token_but_not_vision_or_pad(backend, video):
    tok = backend.processor.tokenizer
    s = samples_for(backend, [cot(video, clips=((45, 65),))], loss="all").sample(0)
    ids, labels = s["input_ids"], s["labels"]
    vision = torch.isin(ids, torch.tensor([tok.convert_tokens_to_ids(t) for t in
                                           ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>")]))
    assert vision.sum() > 20 and torch.equal(labels == -100, vision)
    text = tok.decode(ids[labels != -100])
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant. The red numbers") and text.endswith(
        TARGET + END)
    assert "Full video [0, 120]:Subset zoom-in video clip [45, 65]:Which word is shown?" in text


def test_overlong_samples_are_skipped_counted_and_replaced(backend, video):
    rows = [cot(video, clips=((10, 30), (45, 65), (80, 100)), id="long"), cot(video, id="short")]
    n_short = len(samples_for(backend, rows).sample(1)["input_ids"])
    samples = samples_for(backend, rows, max_length=n_short + 5)
    batch = samples.collate([{"index": 0, "epoch": 0}])
    assert batch["skipped"] == ["too long"] and batch["input_ids"].shape == (1, n_short)
    with pytest.raises(LongLensError, match="in a row were skipped"):
        samples_for(backend, rows, max_length=50, max_retries=1).collate([{"index": 0, "epoch": 0}])


def test_stage1_samples_draw_clips_per_fetch(backend, video):
    row = TemplateRow(id="t", video=str(video), question="Describe the video.", target="A red sign.",
                      truth=((50, 55),))
    samples = samples_for(backend, [row], stage=1)
    clips = [tuple(samples.clips_for(row, 120.0, epoch=e, index=0)) for e in range(12)]
    assert clips == [tuple(samples.clips_for(row, 120.0, epoch=e, index=0)) for e in range(12)]
    assert len(set(clips)) > 2  # a new draw each epoch
    tag = EpochTag()
    dataset = row_index(3, tag)
    tag.epoch = 2  # what the trainer's epoch callback does; the collator seeds the draw with it
    assert [dataset[i] for i in range(3)] == [{"index": i, "epoch": 2} for i in range(3)]
    msgs, target = samples.messages(row, epoch=0, index=0)
    text = msgs[1].plain_text
    assert target == "A red sign." and text.endswith("Describe the video.") and "\\boxed" not in text


# ---------------------------------------------------------------- training runs
def visual(weights):
    return {k: v for k, v in weights.items() if "visual" in k}


def test_stage2_two_steps_train_the_vision_tower_only_when_asked(tiny_dir, video, tmp_path):
    rows = tmp_path / "rows.jsonl"
    to_jsonl([cot(video, clips=((45, 65),), id="a"), cot(video, id="b")], rows)
    before = load_file(tiny_dir / "model.safetensors")
    for freeze in (False, True):
        out = tmp_path / f"out-{freeze}"
        summary = run_zoom_sft(ZoomSFTConfig(model_path=str(tiny_dir), train_file=str(rows), output_dir=str(out),
                                             freeze_vision=freeze, **SMALL, **fast()))
        assert summary["steps"] == 2 and math.isfinite(summary["last_loss"]) and summary["skipped"] == {}
        after = load_file(out / "model.safetensors")
        assert after.keys() == before.keys()
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert any("visual" not in k for k in changed)
        assert bool(changed & visual(before).keys()) is not freeze
        assert (out / "preprocessor_config.json").is_file() or (out / "processor_config.json").is_file()


def test_stage1_batch_of_two_from_reference_items(tiny_dir, video, tmp_path):
    items = [{"video": video.name, "tgt": [[50, 56]],
              "messages": [{"role": "user", "content": [{"type": "text", "text": "What is shown?"},
                                                        {"type": "video"}]},
                           {"role": "assistant", "content": "A sign."}]},
             {"video": video.name, "messages": [{"role": "user", "content": "Describe it."},
                                                {"role": "assistant", "content": [{"type": "text",
                                                                                   "text": "Shapes."}]}]}]
    path = tmp_path / "stage1.json"
    path.write_text(json.dumps(items))
    rows = [r.row for r in read_records(path)[1]]
    assert [(r.question, r.target, r.truth) for r in rows] == [("What is shown?", "A sign.", ((50.0, 56.0),)),
                                                              ("Describe it.", "Shapes.", ())]
    summary = run_zoom_sft(ZoomSFTConfig(model_path=str(tiny_dir), train_file=str(path), output_dir=str(tmp_path / "o"),
                                         stage=1, video_root=str(video.parent), loss="all",
                                         **SMALL, **fast(per_device_train_batch_size=2)))
    assert summary["steps"] == 2 and math.isfinite(summary["last_loss"])


def test_bad_input_is_one_clear_line(tiny_dir, video, tmp_path):
    rows = tmp_path / "rows.jsonl"
    to_jsonl([cot(video)], rows)
    base = dict(train_file=str(rows), output_dir=str(tmp_path / "o"))
    with pytest.raises(LongLensError, match="no such directory"):
        run_zoom_sft(ZoomSFTConfig(model_path=str(tmp_path / "nope"), **base))
    with pytest.raises(LongLensError, match="no such file"):
        run_zoom_sft(ZoomSFTConfig(model_path=str(tiny_dir), **{**base, "train_file": str(tmp_path / "x.jsonl")}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "video": "v.mp4"}\n')
    with pytest.raises(LongLensError, match=r"bad.jsonl: not a known training file"):
        run_zoom_sft(ZoomSFTConfig(model_path=str(tiny_dir), **{**base, "train_file": str(bad)}))
    gone = tmp_path / "gone.jsonl"
    to_jsonl([cot("gone.mp4")], gone)
    with pytest.raises(LongLensError, match="1 of 1 row videos are missing"):
        run_zoom_sft(ZoomSFTConfig(model_path=str(tiny_dir), **{**base, "train_file": str(gone)},
                                   video_root=str(tmp_path)))
    with pytest.raises(LongLensError, match="loss must be one of"):
        ZoomSFTConfig(model_path="m", loss="prompt", **base)
    with pytest.raises(LongLensError, match="no such run folder or file"):
        read_trajectories([str(tmp_path / "nothing")])


# ---------------------------------------------------------------- navigate
REPLIES = ["<think>Second quarter.</think>\n<tool>get_caption((2,3))</tool>",
           "I do not know",
           "<think>It says SANDAL.</think>\n<answer>A</answer>"]


def captioner():
    return ScriptedBackend([lambda m: f"<caption>From {m[1].parts[0].text}</caption>"] * 100, model="vl")


@pytest.fixture(scope="module")
def run_dir(video, tmp_path_factory):
    """An eval run folder with one correct navigate question and one wrong one; the reasoning requests."""
    root = tmp_path_factory.mktemp("run")
    cache = FrameCache(root / "cache")
    reason = ScriptedBackend(REPLIES, model="reasoner")
    right = NavigateAgent(reason, caption=captioner(), cache=cache).run(video, "Which word?", list(OPTIONS))
    wrong = NavigateAgent(ScriptedBackend(["<think>No idea.</think><answer>C</answer>"]), caption=captioner(),
                          cache=cache).run(video, "Which word?", list(OPTIONS))
    run = root / "navigate-run"
    records = []
    for name, trace, ok in (("q1", right, True), ("q2", wrong, False)):
        trace.save(run / "traces" / f"{name}.json")
        records.append({"id": name, "correct": ok, "trace": f"traces/{name}.json"})
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run, reason.requests


def chat_of(request):
    return [(m["role"], "".join(p["text"] for p in m["content"])) for m in request["messages"]]


def test_run_trajectories_replay_what_the_agent_sent(run_dir):
    run, requests = run_dir
    (traj,) = from_run(run)
    assert len(from_run(run, only_correct=False)) == 2
    turns = [k for k, (r, _) in enumerate(traj.messages) if r == "assistant"]
    assert [traj.messages[k][1] for k in turns] == REPLIES
    for k, request in zip(turns, requests, strict=True):  # the context of each turn is what was sent
        assert list(traj.messages[:k]) == chat_of(request)
    assert [traj.train[k] for k in turns] == [True, False, True]  # the invalid turn is context only
    assert traj.messages[0][0] == "system" and "High-level Caption 1 from 0.0" in traj.messages[1][1]


def alpaca():
    full = {"system": "SYS", "history": [["u1", "<think>a</think><tool>get_caption((1,2))</tool>"],
                                         ["obs", "<think>b</think><tool>get_caption((1,2,3))</tool>"]],
            "instruction": "obs2", "input": "", "output": "<think>c</think><answer>B</answer>"}
    prefix = {**full, "history": full["history"][:1], "instruction": "obs",
              "output": full["history"][1][1]}
    return [full, prefix]


def test_llamafactory_rows_and_per_turn_labels(text_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(text_dir)
    path = tmp_path / "lf.json"
    path.write_text(json.dumps(alpaca()))
    trajs = from_llamafactory(path)
    assert trajs[0].messages[0] == ("system", "SYS") and trajs[0].messages[-2] == ("user", "obs2")
    samples, skipped = build_samples(tok, trajs, mode="per_turn", end=END, max_length=10_000)
    assert len(samples) == 3 and skipped == {"duplicate": 2}  # the unrolled prefix repeats two turns
    for s, k in zip(samples, (2, 4, 6), strict=True):
        ids, labels = s["input_ids"], s["labels"]
        n = sum(x != -100 for x in labels)
        assert tok.decode(ids[-n:]) == trajs[0].messages[k][1] + END and all(x == -100 for x in labels[:-n])
        assert tok.decode(ids[:-n]) == tok.apply_chat_template(trajs[0].chat(k), tokenize=False,
                                                               add_generation_prompt=True)
    assert build_samples(tok, trajs, mode="per_turn", end=END, max_length=40)[1]["too long"] >= 1


def test_all_turns_labels_and_a_template_that_rewrites_history(text_dir, run_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(text_dir)
    (traj,) = from_run(run_dir[0])
    (s,) = encode(tok, traj, "all_turns", END)
    ids, labels = s["input_ids"], s["labels"]
    assert tok.decode(ids) + "\n" == tok.apply_chat_template(traj.chat(), tokenize=False)
    assert tok.decode([i for i, x in zip(ids, labels, strict=True) if x != -100]) == (REPLIES[0] + END
                                                                                        + REPLIES[2] + END)
    tok.chat_template = tok.chat_template.replace(
        "{%- if message['content'] is string -%}",
        "{%- if message['role'] == 'assistant' and not loop.last -%}{{- 'old' -}}"
        "{%- elif message['content'] is string -%}")
    with pytest.raises(LongLensError, match="rewrites earlier turns"):
        encode(tok, traj, "all_turns", END)
    assert len(encode(tok, traj, "per_turn", END)) == 2  # per turn is what inference renders, whatever the template


@pytest.mark.parametrize("mode", ["per_turn", "all_turns"])
def test_navigate_two_steps(text_dir, run_dir, tmp_path, mode):
    lf = tmp_path / "lf.jsonl"
    lf.write_text("".join(json.dumps(d) + "\n" for d in alpaca()))
    out = tmp_path / "out"
    summary = run_navigate_sft(NavigateSFTConfig(model_path=str(text_dir), data=(str(run_dir[0]), str(lf)),
                                                 output_dir=str(out), mode=mode,
                                                 **fast(per_device_train_batch_size=2)))
    assert summary["trajectories"] == 3 and summary["steps"] == 2 and math.isfinite(summary["last_loss"])
    assert summary["samples"] == (5 if mode == "per_turn" else 3)
    before, after = load_file(text_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (out / "tokenizer_config.json").is_file()


def test_trajectory_needs_a_known_mode(text_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(text_dir)
    with pytest.raises(LongLensError, match="mode must be one of"):
        encode(tok, Trajectory("x", (("user", "u"), ("assistant", "a")), (False, True)), "prefix")
