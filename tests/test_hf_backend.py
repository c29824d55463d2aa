"""The transformers backend on tiny random Qwen2.5-VL / Qwen3-VL folders built here (no downloads, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from hf_models import ZOOM_REPLIES, frameset, teach_zoomer
from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends.base import BackendError, GenConfig
from longlens.backends.hf import HFBackend
from longlens.backends.hf.random_model import make_random_model
from longlens.backends.hf.rope import mrope_positions
from longlens.prompts import ClipView, format_question, load_profile, zoom_messages
from longlens.synth import make_video
from longlens.video import open_video

torch.set_num_threads(1)
PROFILE = load_profile("love-r1")
QUESTION = format_question(PROFILE, "Which word is shown?", ["SANDAL", "TABLE", "LAMP", "CHAIR"])
GEN = GenConfig(max_new_tokens=12)
SMALL = dict(fast_frames=16, fast_budget=4 * 28 * 28, slow_frames=4, slow_budget=16 * 28 * 28)
SMALL_ARGS = ["--num-fast", "16", "--fast-res", "4", "--num-slow", "4", "--slow-res", "16"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny-qwen2.5-vl"
    make_random_model(path, "tiny")
    return path


@pytest.fixture(scope="module")
def tiny3_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny-qwen3-vl"
    make_random_model(path, "tiny-qwen3")
    return path


@pytest.fixture(scope="module")
def backend(tiny_dir):
    return HFBackend(tiny_dir)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("videos") / "two-minutes.mp4"
    make_video(path, duration_s=120, width=320, height=180, fps=10, gop_s=2.0, seed=5, needles=2)
    return path


def three_steps(fast, clips, prefix=PROFILE.answer_prefix):
    """The messages of a three-step zoom question: no clip, one clip, two clips + the forced prefix."""
    return (zoom_messages(PROFILE, QUESTION, 64.0, fast, []),
            zoom_messages(PROFILE, QUESTION, 64.0, fast, clips[:1]),
            zoom_messages(PROFILE, QUESTION, 64.0, fast, clips, prefix=prefix))


# ---------------------------------------------------------------- loading
def test_random_folder_round_trips(tiny_dir, backend):
    from safetensors.torch import load_file

    saved = load_file(tiny_dir / "model.safetensors")  # the checkpoint layout: model.layers.*, visual.*
    loaded = {k.replace("model.language_model.", "model.").replace("model.visual.", "visual."): v
              for k, v in backend.net.state_dict().items()}
    assert type(backend.net).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(backend.processor).__name__ == "Qwen2_5_VLProcessor"
    assert saved.keys() == loaded.keys() and len(saved) > 50
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert backend.device == "cpu" and backend.dtype == "float32" and backend.frame_factor == 28
    assert backend.describe() == "hf:tiny-qwen2.5-vl"


def test_missing_or_wrong_folder_is_one_clear_line(tmp_path):
    with pytest.raises(BackendError, match="no such directory"):
        HFBackend(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match="no config.json"):
        HFBackend(tmp_path / "empty")
    r = subprocess.run([sys.executable, "-m", "longlens", "ask", str(tmp_path / "v.mp4"), "q?", "--backend", "hf",
                        "--model-path", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "--model-path" in r.stderr and "no such directory" in r.stderr


# ---------------------------------------------------------------- what the model is given
def test_exact_visual_tokens_for_fast_view_and_two_clips(backend):
    fast = frameset(16, 168, 168, fps=0.25)
    clips = [ClipView(16, 24, frameset(4, 448, 448, fps=0.5, start_s=16, seed=1)),
             ClipView(40, 48, frameset(4, 448, 448, fps=0.5, start_s=40, seed=2))]
    messages = zoom_messages(PROFILE, QUESTION, 64.0, fast, clips)
    inputs = backend.encode(messages)
    assert inputs["video_grid_thw"].tolist() == [[8, 12, 12], [2, 32, 32], [2, 32, 32]]
    assert int((inputs["mm_token_type_ids"] == 2).sum()) == 288 + 512 + 512
    c = backend.generate(messages, GEN)
    assert c.usage.visual_tokens == (288, 512, 512) == (fast.visual_tokens, 512, 512)
    assert c.usage.prompt_tokens == inputs["input_ids"].shape[1]
    assert c.usage.text_tokens == c.usage.prompt_tokens - 1312 > 100


def test_frames_are_not_upscaled_by_the_default_processor(tiny_dir, backend):
    """Released processors upscale small frames (128 tokens a frame at least); the backend does not."""
    from transformers import AutoProcessor
    from transformers.video_utils import VideoMetadata

    fast = frameset(16, 168, 168, fps=0.25)
    plain = AutoProcessor.from_pretrained(tiny_dir)
    meta = VideoMetadata(total_num_frames=16, fps=0.25, frames_indices=list(range(16)))
    out = plain(text=["<|vision_start|><|video_pad|><|vision_end|>"], videos=[fast.frames], video_metadata=[meta],
                return_tensors="pt")
    assert out["video_grid_thw"].tolist() == [[8, 24, 24]]  # 336 px: what the defaults would feed the model
    ours = backend.encode(zoom_messages(PROFILE, QUESTION, 64.0, fast))
    assert ours["video_grid_thw"].tolist() == [[8, 12, 12]]
    # and the pixels are the frames themselves, normalised, not resampled
    vp = backend.processor.video_processor
    patch = ours["pixel_values_videos"][0].reshape(3, 2, 14, 14)[:, 0]
    mean, std = torch.tensor(vp.image_mean)[:, None, None], torch.tensor(vp.image_std)[:, None, None]
    expected = (torch.tensor(fast.frames[0, :14, :14]).permute(2, 0, 1) / 255 - mean) / std
    assert torch.allclose(patch, expected, atol=1e-5)


def test_second_per_grid_follows_each_videos_fps(backend):
    fast = frameset(16, 168, 168, fps=0.25)
    clip = ClipView(16, 18, frameset(4, 448, 448, fps=2.0, start_s=16, seed=1))
    messages = zoom_messages(PROFILE, QUESTION, 64.0, fast, [clip])
    text, media = backend._render(messages)
    segment = backend._segment(text, media)
    assert segment.second_per_grid == [8.0, 1.0]  # 2 frames per patch / fps
    inputs = backend.encode(messages)
    pos, types = inputs["position_ids"][:, 0], inputs["mm_token_type_ids"][0]
    video = pos[:, types == 2]
    fast_t = video[0, :288].reshape(8, 36)[:, 0] - video[0, 0]
    clip_t = video[0, 288:].reshape(2, 256)[:, 0] - video[0, 288]
    assert fast_t.tolist() == [0, 16, 32, 48, 64, 80, 96, 112]  # 8 s per patch x 2 positions per second
    assert clip_t.tolist() == [0, 2]


def test_trained_position_rule():
    """Text after a video continues after its largest position, temporal axis included (transformers 4.49, vLLM)."""
    types = torch.tensor([0] * 3 + [2] * 12 + [0] * 2)
    pos = mrope_positions(types, [(3, 4, 4)], [2.0], merge=2, tokens_per_second=2)
    assert pos[:, :3].tolist() == [[0, 1, 2]] * 3
    assert pos[0, 3:15].tolist() == [3] * 4 + [7] * 4 + [11] * 4
    assert pos[1, 3:7].tolist() == [3, 3, 4, 4] and pos[2, 3:7].tolist() == [3, 4, 3, 4]
    assert pos[:, 15:].tolist() == [[12, 13]] * 3


def test_trained_rule_matches_transformers_where_they_agree_and_is_selectable(tiny_dir, backend):
    """With one temporal patch both rules agree; with a long fast view transformers 5 restarts text early."""
    fast = frameset(2, 168, 168, fps=2.0)
    messages = zoom_messages(PROFILE, QUESTION, 64.0, fast)
    lib = HFBackend(tiny_dir, rope="transformers")
    assert torch.equal(backend.encode(messages)["position_ids"], lib.encode(messages)["position_ids"])
    long_fast = zoom_messages(PROFILE, QUESTION, 64.0, frameset(16, 168, 168, fps=0.25))
    ours, theirs = backend.encode(long_fast)["position_ids"], lib.encode(long_fast)["position_ids"]
    assert ours[0, 0, -1] > theirs[0, 0, -1]


def test_forced_prefix_is_continued(backend):
    fast = frameset(4, 56, 56, fps=1.0)
    messages = zoom_messages(PROFILE, QUESTION, 4.0, fast, prefix=PROFILE.answer_prefix)
    ids = backend.encode(messages)["input_ids"][0]
    text = backend.processor.tokenizer.decode(ids)
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\nI get the answer.\n\n")
    # the whole prompt, byte for byte, as the checkpoints saw it
    # (HumanMLLM/LOVE-R1@aa1facb VLMEvalKit/vlmeval/vlm/qwen2_vl/model_sample_frame.py:478-511, 625-634)
    expected = ("<|im_start|>system\n" + PROFILE.system + "<|im_end|>\n<|im_start|>user\nFull video [0, 4]:"
                "<|vision_start|>" + "<|video_pad|>" * 8 + "<|vision_end|>" + QUESTION + PROFILE.instruction
                + "<|im_end|>\n<|im_start|>assistant\nI get the answer.\n\n")
    assert text == expected
    c = backend.generate(messages, GEN)
    assert c.prefix == PROFILE.answer_prefix and c.full_text == PROFILE.answer_prefix + c.text


# ---------------------------------------------------------------- KV reuse
def test_kv_reuse_equals_recompute(tiny_dir, backend):
    fast = frameset(16, 112, 196, fps=0.25)
    clips = [ClipView(8, 16, frameset(4, 224, 392, fps=0.5, start_s=8, seed=1)),
             ClipView(40, 48, frameset(4, 224, 392, fps=0.5, start_s=40, seed=2))]
    fresh = HFBackend(tiny_dir, kv_reuse=False)
    backend.reset()
    gen = GenConfig(max_new_tokens=24)
    reused = [backend.generate(m, gen) for m in three_steps(fast, clips)]
    again = [fresh.generate(m, gen) for m in three_steps(fast, clips)]
    assert [c.text for c in reused] == [c.text for c in again]
    assert all(c.usage.completion_tokens == 24 for c in reused)
    cached = [c.usage.cached_tokens for c in reused]
    assert cached[0] == 0 and cached[1] > 8 * 28  # step 2 reuses the system prompt and the fast view
    assert cached[2] - cached[1] > 224  # step 3 also reuses the first clip (224 visual tokens)
    assert all(c.usage.cached_tokens == 0 for c in again)
    assert [c.usage.prompt_tokens for c in reused] == [c.usage.prompt_tokens for c in again]
    # a clip that sorts before the kept one: only the fast view is reused, and the answer is unchanged
    early = ClipView(0, 4, frameset(4, 224, 392, fps=1.0, start_s=0, seed=3))
    backend.generate(three_steps(fast, clips)[1], gen)
    both = zoom_messages(PROFILE, QUESTION, 64.0, fast, [early, clips[0]])
    got = backend.generate(both, gen)
    assert got.usage.cached_tokens == cached[1] and got.text == fresh.generate(both, gen).text
    # the step after a different fast view does not reuse the kept prefix
    other = backend.generate(three_steps(frameset(16, 112, 196, fps=0.25, seed=9), clips)[1], gen)
    assert other.usage.cached_tokens == 0


def test_kv_reuse_gives_the_same_logits(tiny_dir, backend):
    fast = frameset(16, 112, 196, fps=0.25)
    clip = ClipView(8, 16, frameset(4, 224, 392, fps=0.5, start_s=8, seed=1))
    messages = zoom_messages(PROFILE, QUESTION, 64.0, fast, [clip])
    backend.reset()
    backend.generate(zoom_messages(PROFILE, QUESTION, 64.0, fast), GEN)  # keeps the prefix
    with torch.inference_mode():
        full = backend.net(**backend.encode(messages)).logits[0, -1]
    text, media = backend._render(messages)
    reused, _, _, cached, *_ = backend._prefill(text, media, {})
    assert cached > 8 * 28 and torch.allclose(full, reused, atol=1e-5)


def test_decode_loop_matches_transformers_generate(tiny_dir):
    """Our decode loop is the library's greedy generate (same positions rule, one prefill)."""
    lib = HFBackend(tiny_dir, rope="transformers", kv_reuse=False)
    fast = frameset(16, 112, 196, fps=0.25)
    messages = zoom_messages(PROFILE, QUESTION, 64.0, fast)
    ours = lib.generate(messages, GenConfig(max_new_tokens=20))
    text, media = lib._render(messages)
    inputs = lib.processor(text=[text], videos=[fast.frames], video_metadata=[lib._metadata(media[0])],
                           return_tensors="pt")
    with torch.inference_mode():
        out = lib.net.generate(**inputs, max_new_tokens=20, do_sample=False)
    theirs = lib.processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert ours.text == theirs


def test_sampling_is_seeded(backend):
    messages = zoom_messages(PROFILE, QUESTION, 8.0, frameset(4, 56, 56, fps=1.0))
    hot = GenConfig(max_new_tokens=16, temperature=1.0, top_p=0.9, top_k=50, seed=7)
    assert backend.generate(messages, hot).text == backend.generate(messages, hot).text


# ---------------------------------------------------------------- Qwen3-VL
def test_qwen3_vl_folder_runs_with_true_frame_times(tiny3_dir):
    b = HFBackend(tiny3_dir)
    assert type(b.net).__name__ == "Qwen3VLForConditionalGeneration" and b.frame_factor == 32
    fast = frameset(8, 128, 224, fps=0.25)
    clip = ClipView(20, 24, frameset(4, 256, 448, fps=1.0, start_s=20.0, seed=1))
    inputs = b.encode(zoom_messages(PROFILE, QUESTION, 32.0, fast, [clip]))
    text = b.processor.tokenizer.decode(inputs["input_ids"][0])
    assert "<2.0 seconds>" in text and "<26.0 seconds>" in text  # patch mid-times: fast from 0 s, clip from 20 s
    assert "<20.5 seconds>" in text and "<22.5 seconds>" in text
    assert inputs["video_grid_thw"].tolist() == [[4, 8, 14], [2, 16, 28]]
    steps = three_steps(fast, [clip, ClipView(28, 32, frameset(4, 256, 448, fps=1.0, start_s=28.0, seed=2))])
    again = HFBackend(tiny3_dir, kv_reuse=False)
    assert [b.generate(m, GEN).text for m in steps] == [again.generate(m, GEN).text for m in steps]


# ---------------------------------------------------------------- the zoom agent from the CLI
@pytest.fixture(scope="module")
def zoomer_dir(tmp_path_factory, tiny_dir, video):
    """The tiny model taught to zoom on [10, 40], then [60, 90], then answer A, on this video's prompts."""
    backend = HFBackend(tiny_dir)
    agent = ZoomAgent(backend, ZoomConfig(**SMALL))
    info = open_video(video)
    fast = agent._fast(info)
    clips = [agent._clip(info, 5, 45), agent._clip(info, 55, 95)]  # [10, 40] and [60, 90] padded by 5 s
    prompts = [zoom_messages(PROFILE, QUESTION, info.duration_s, fast, clips[:k]) for k in (0, 1)]
    prompts.append(zoom_messages(PROFILE, QUESTION, info.duration_s, fast, clips, prefix=PROFILE.answer_prefix))
    teach_zoomer(backend, prompts)
    out = tmp_path_factory.mktemp("models") / "tiny-zoomer"
    backend.net.save_pretrained(out)
    backend.processor.save_pretrained(out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("reuse", [True, False])
def test_zoom_agent_runs_three_steps_from_the_cli(zoomer_dir, video, tmp_path, reuse):
    trace_path = tmp_path / "trace.json"
    cmd = [sys.executable, "-m", "longlens", "ask", str(video), "Which word is shown?", "--option", "SANDAL",
           "--option", "TABLE", "--option", "LAMP", "--option", "CHAIR", "--backend", "hf", "--model-path",
           str(zoomer_dir), "--max-new-tokens", "48", "--trace", str(trace_path), *SMALL_ARGS]
    if not reuse:
        cmd.append("--no-kv-reuse")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("step 1  zoom [10, 40] -> [5, 45]")
    assert lines[1].startswith("step 2  zoom [60, 90] -> [55, 95]")
    assert lines[2].startswith("step 3  answer A") and "answer: A (SANDAL)" in r.stdout
    trace = json.loads(trace_path.read_text())
    steps = trace["steps"]
    assert [s["completion"] for s in steps] == [ZOOM_REPLIES[0], ZOOM_REPLIES[1], ZOOM_REPLIES[2]]
    assert steps[2]["forced_prefix"] == PROFILE.answer_prefix
    fast_tokens = 8 * 2  # 16 frames at 28x56
    assert [s["media_tokens"] for s in steps] == [[fast_tokens], [fast_tokens, 30], [fast_tokens, 30, 30]]
    assert all(s["visual_tokens"] == sum(s["media_tokens"]) for s in steps)
    cached = [s["cached_tokens"] for s in steps]
    if reuse:  # step 2 reuses the fast view, step 3 the fast view and the first clip
        assert cached[0] == 0 and fast_tokens < cached[1] < cached[2] - 30
    else:
        assert cached == [0, 0, 0]
    assert all(s["prompt_tokens"] > s["visual_tokens"] and s["completion_tokens"] > 5 for s in steps)
    assert trace["backend"] == "hf:tiny-zoomer" and trace["totals"]["steps"] == 3


def test_hf_backend_serves_the_navigate_caption_role(backend, video, tmp_path):
    """Caption requests are loose images with their times; the hf backend takes them as images."""
    from longlens.agents.navigate.captions import CaptionTree
    from longlens.video import FrameCache

    info = open_video(video)
    tree = CaptionTree.open(info, backend, cache=FrameCache(tmp_path / "c"))
    leaf = tree.tree.level(3)[5]
    caption, stored = tree.get(leaf)
    assert not stored and caption.model == "tiny-qwen2.5-vl" and tree.captions[leaf.key] is caption
    assert backend.generate(tree_messages(tree, leaf), GenConfig(max_new_tokens=4)).usage.visual_tokens[0] > 0


def tree_messages(tree, leaf):
    from longlens.prompts.navigate import caption_messages
    from longlens.video import decode, index_plan

    frames = decode(tree.info, index_plan(tree.info, leaf.sample(4), max_side=224))
    return caption_messages(tree.profile, frames, level=3, words=50)
