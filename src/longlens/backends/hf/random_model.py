"""Random-weight Qwen-VL model folders, built locally: for tests, benchmarks and smoke runs without downloads.

``make_random_model(DIR, arch="tiny")`` writes a folder that the ordinary ``from_pretrained`` loads: config,
safetensors weights, a byte-level BPE tokenizer trained here on prompt-like text (with the Qwen special
tokens in their official order), a chat template that renders the Qwen chat format, and a processor whose
pixel limits let our frames through unchanged. Architectures:

* ``tiny`` / ``tiny-qwen3``: a few hundred thousand parameters (Qwen2.5-VL / Qwen3-VL); seconds on a CPU.
* ``small``: a Qwen2.5-VL of about 3 M parameters (4 + 4 layers, width 256/128), for CPU benchmarks where
  the model's arithmetic, not Python, should dominate.
* ``vllm``: a Qwen2.5-VL of about 4 M parameters whose attention heads are 64 wide in both towers (vLLM's CPU
  attention kernels take head sizes of 32 and up), for real vLLM servers in tests and deployment smoke tests:
  ``python -m longlens.backends.hf.random_model OUT_DIR --arch vllm``.
* ``qwen2.5-vl-7b``: the Qwen2.5-VL-7B-Instruct architecture (layer sizes, heads, mRoPE sections, vision
  tower, vocabulary size) with random weights, for speed and memory measurements. Its tokenizer is the
  small local one; generated ids beyond it decode to nothing, so benchmarks fix the generation length.

The output of a random model is noise; these folders test plumbing, shapes, positions and costs only.
"""

from __future__ import annotations

import json
from pathlib import Path

from longlens._imports import require

SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
"""Qwen2.5's special tokens, in the order of the released tokenizers (ids 0..21 here)."""

ARCHS = ("tiny", "tiny-qwen3", "small", "vllm", "qwen2.5-vl-7b")

# A chat template written for these folders. It renders the same chat format as the released Qwen-VL
# templates: a default system turn, <|im_start|>role\n ... <|im_end|>\n, one vision placeholder per
# image or video part, and the generation prompt.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}"
    "{%- elif part['type'] == 'video' -%}{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif part['type'] == 'image' -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def _corpus() -> list[str]:
    from longlens.prompts.profiles import load_profile

    p = load_profile("love-r1")
    lines = [p.system, p.instruction, p.choice_suffix, p.open_suffix, p.zoom_prefix, p.answer_prefix,
             "Full video [0, 3600]:", "Subset zoom-in video clip [600, 630]:", "What is written on the sign?",
             "A. red\nB. blue\nC. green\nD. yellow\n", "The answer is \\boxed{B}.", "\\boxed{[12.5, 40]}",
             "<think>The label appears at 120 seconds.</think>", "0123456789 seconds minutes frames video clip"]
    return [line for line in lines for _ in range(3)]


def make_tokenizer(vocab_size: int = 512):
    """A byte-level BPE `Qwen2Tokenizer` trained on prompt-like text, with Qwen's special tokens."""
    tokenizers = require("tokenizers", "hf", "building a random model")
    transformers = require("transformers", "hf", "building a random model")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    bpe = tokenizers.Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer)
    spec = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    tok = transformers.Qwen2Tokenizer(vocab=spec["vocab"], merges=merges, unk_token=None,
                                      eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": list(SPECIALS[1:])})
    tok.chat_template = CHAT_TEMPLATE
    return tok


def _text_config(arch: str, vocab: int, ids: dict) -> dict:
    common = dict(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    if arch == "qwen2.5-vl-7b":
        return dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                    num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                    tie_word_embeddings=False, rms_norm_eps=1e-6,
                    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
                    **common)
    if arch == "vllm":
        return dict(vocab_size=vocab, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=65536,
                    tie_word_embeddings=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]},
                    **common)
    if arch == "small":
        return dict(vocab_size=vocab, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                    num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=65536,
                    tie_word_embeddings=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]},
                    **common)
    section = [2, 3, 3]  # sums to head_dim / 2 = 8
    text = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=False, **common)
    if arch == "tiny-qwen3":
        text.update(head_dim=16, rope_parameters={"rope_type": "default", "rope_theta": 5e6,
                                                  "mrope_section": section, "mrope_interleaved": True})
    else:
        text.update(rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": section})
    return text


def _vision_config(arch: str) -> dict:
    if arch == "qwen2.5-vl-7b":
        return dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                    patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                    fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act="silu")
    if arch == "small":
        return dict(depth=4, hidden_size=128, intermediate_size=256, num_heads=4, out_hidden_size=256, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[3],
                    tokens_per_second=2, hidden_act="silu")
    if arch == "vllm":
        return dict(depth=2, hidden_size=128, intermediate_size=256, num_heads=2, out_hidden_size=128, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[1],
                    tokens_per_second=2, hidden_act="silu")
    if arch == "tiny-qwen3":
        return dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64, patch_size=16,
                    spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=256,
                    deepstack_visual_indexes=[0])
    return dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64, patch_size=14,
                spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[1],
                tokens_per_second=2)


def make_processor(tok, arch: str = "tiny"):
    """The family's processor with its default settings, as a released checkpoint ships it.

    Those defaults resize frames (the Qwen2.5-VL video processor upscales anything under 128 tokens a
    frame); `HFBackend` widens the limits when it loads a folder, and the tests check that it does.
    """
    transformers = require("transformers", "hf", "building a random model")
    from longlens._torchvision_shim import install

    install()
    patch = 16 if arch == "tiny-qwen3" else 14
    image = transformers.Qwen2VLImageProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2)
    if arch == "tiny-qwen3":
        video = transformers.Qwen3VLVideoProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2,
                                                   cap_pixels_per_frame=False)
        return transformers.Qwen3VLProcessor(image_processor=image, tokenizer=tok, video_processor=video,
                                             chat_template=CHAT_TEMPLATE)
    video = transformers.Qwen2VLVideoProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2,
                                               cap_pixels_per_frame=False)
    return transformers.Qwen2_5_VLProcessor(image_processor=image, tokenizer=tok, video_processor=video,
                                            chat_template=CHAT_TEMPLATE)


def make_random_model(path: str | Path, arch: str = "tiny", *, seed: int = 0, dtype: str = "float32",
                      save_weights: bool = True):
    """Write a random `arch` model folder to `path` and return ``(model, processor)``.

    With ``save_weights=False`` only the config, tokenizer and processor are written (the 7B architecture's
    random weights take 16 GB; benchmarks build them in memory with `build_model` instead).
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; use one of {', '.join(ARCHS)}")
    torch = require("torch", "hf", "building a random model")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer()
    processor = make_processor(tok, arch)
    config = make_config(tok, arch)
    processor.save_pretrained(path)
    if not save_weights:
        config.save_pretrained(path)
        return None, processor
    torch.manual_seed(seed)
    model = build_model(config, dtype=dtype)
    model.save_pretrained(path)
    return model, processor


def make_config(tok, arch: str = "tiny"):
    transformers = require("transformers", "hf", "building a random model")
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    media = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                 vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    cls = transformers.Qwen3VLConfig if arch == "tiny-qwen3" else transformers.Qwen2_5_VLConfig
    return cls(text_config=_text_config(arch, len(tok), ids), vision_config=_vision_config(arch), **media)


def build_model(config, *, dtype: str = "float32", device: str | None = None):
    """A randomly initialised model for `config` (Qwen2.5-VL or Qwen3-VL)."""
    torch = require("torch", "hf", "building a random model")
    transformers = require("transformers", "hf", "building a random model")
    cls = (transformers.Qwen3VLForConditionalGeneration if config.model_type.startswith("qwen3")
           else transformers.Qwen2_5_VLForConditionalGeneration)
    with torch.device(device or "cpu"):
        model = cls(config).to(getattr(torch, dtype))
    model.generation_config.eos_token_id = [config.text_config.eos_token_id, config.text_config.bos_token_id]
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    return model.eval()


def make_random_text_model(path: str | Path, *, seed: int = 0):
    """Write a tiny random Qwen3 causal LM folder (the navigate agent's text reasoning model) to `path`, with the
    local tokenizer and chat template; return ``(model, tokenizer)``."""
    torch = require("torch", "hf", "building a random model")
    transformers = require("transformers", "hf", "building a random model")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    config = transformers.Qwen3Config(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=32768, tie_word_embeddings=False,
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(seed)
    model = transformers.Qwen3ForCausalLM(config).eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok


def main(argv: list[str] | None = None) -> int:
    """``python -m longlens.backends.hf.random_model OUT_DIR [--arch NAME] [--seed N]``: write a random model folder."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m longlens.backends.hf.random_model",
                                description="Write a random-weight Qwen-VL model folder (no downloads). Its output "
                                            "is noise: it tests plumbing, shapes, positions and costs.")
    p.add_argument("out", help="folder to write (created)")
    p.add_argument("--arch", "--preset", choices=ARCHS, default="vllm",
                   help="architecture (default vllm: servable by vLLM, also on its CPU build)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    args = p.parse_args(argv)
    make_random_model(args.out, args.arch, seed=args.seed, dtype=args.dtype,
                      save_weights=args.arch != "qwen2.5-vl-7b")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
