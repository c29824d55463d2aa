"""Training steps of the zoom agent: one GRPO step's pieces against one SFT step on the same video, in one run.

    python benchmarks/train_steps.py                        # CPU: the small random model
    python benchmarks/train_steps.py --arch qwen2.5-vl-7b   # GPU: the 7B architecture, random bf16 weights
    python benchmarks/train_steps.py --write-docs           # also update docs/benchmarks.md

On one generated video (made once under .bench/), with random weights and generation lengths fixed
(``ignore_eos``) so that a reply costs what a real reply of that length costs:

* **sft step** — the anchor: forward + backward of one stage-2 sample (fast view, one clip, a 128-token
  reply), built by `train.zoom.sft.ZoomSamples` as the SFT trainer builds it;
* **grpo rollout** — ``--generations`` rollouts of one general question through the zoom loop with the
  policy as backend (`train.zoom.rollout.Roller`: up to 3 steps, ``--new-tokens`` per step, KV reuse on);
* **grpo loss** — forward + backward of every step of those rollouts (`grpo_core.sequence_logps`: the
  inference inputs, video included).

No optimiser step is timed (its cost does not depend on the method, and full AdamW state for 7B does not fit
one GPU without DeepSpeed offload). Each case runs in its own process, after a warm-up; peak memory is the
process's (RSS on CPU, `max_memory_allocated` on GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _docs import replace_section

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench"))
CASES = ("sft-step", "grpo-rollout", "grpo-loss")
OPTIONS = ("SANDAL", "TABLE", "LAMP", "CHAIR")


def _model(arch: str, device: str):
    from longlens.backends.hf.torchvision_shim import install

    install()
    import torch

    from longlens.backends.hf.random_model import build_model, make_random_model

    folder = BENCH / "models" / arch
    if arch == "qwen2.5-vl-7b":  # 16 GB of random weights: built in memory, never written
        if not (folder / "config.json").exists():
            make_random_model(folder, arch, save_weights=False)
        from transformers import AutoConfig, AutoProcessor

        torch.manual_seed(0)
        model = build_model(AutoConfig.from_pretrained(folder), dtype="bfloat16", device=device)
        return model, AutoProcessor.from_pretrained(folder)
    if not (folder / "model.safetensors").exists():
        make_random_model(folder, arch)
    from transformers import AutoModelForImageTextToText, AutoProcessor

    return AutoModelForImageTextToText.from_pretrained(folder).to(device), AutoProcessor.from_pretrained(folder)


def worker(case: str, arch: str, video: str, device: str, new_tokens: int, generations: int, out: str) -> None:
    import torch

    from longlens.agents.zoom import ZoomAgent, ZoomConfig
    from longlens.backends.base import GenConfig
    from longlens.backends.hf import HFBackend
    from longlens.data.rows import CotRow, RLRow
    from longlens.train.grpo_core import Item, sequence_logps
    from longlens.train.zoom.rollout import Roller
    from longlens.train.zoom.sft import ZoomSamples, ZoomSFTConfig
    from longlens.video import FrameCache, open_video

    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    model, processor = _model(arch, device)
    for name, p in model.named_parameters():
        p.requires_grad_("visual" not in name)  # the reference freezes the vision tower
    if device.startswith("cuda"):
        model.gradient_checkpointing_enable({"use_reentrant": False})
    cache = FrameCache(BENCH / "frames-cache")
    info = open_video(video, cache=cache)
    d = info.duration_s
    backend = HFBackend.from_model(model, processor, name=arch, kv_reuse=True)
    reply = "I get the answer.\n\n" + " ".join(["The sign in the clip reads SANDAL."] * 20) + " \\boxed{A}"

    def sft_step():
        row = CotRow("q", str(video), d, "Which word appears on the sign?", OPTIONS, "A", "answer",
                     ((0.3 * d, 0.3 * d + 30),), reply)
        cfg = ZoomSFTConfig(model_path="", train_file="", output_dir="", cache_dir=str(BENCH / "frames-cache"))
        samples = ZoomSamples(backend, [row], cfg, cache)
        batch = samples.collate([{"index": 0, "epoch": 0}])
        batch.pop("skipped", None)
        model.train()
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        return {"tokens": int(batch["input_ids"].shape[1])}

    gen = GenConfig(max_new_tokens=new_tokens, temperature=1.0, top_k=50, ignore_eos=True)
    row = RLRow("q", str(video), "Which word appears on the sign?", OPTIONS, "A")

    def rollouts():
        model.eval()
        roller = Roller(ZoomAgent(backend, ZoomConfig(gen=gen), cache=cache))
        backend.reset()
        return [roller.run(row, GenConfig(**{**gen.__dict__, "seed": s})) for s in range(generations)]

    def grpo_loss(done):
        model.train()
        tok = processor.tokenizer
        n_items = 0
        for r in done:
            for step in r.steps:
                n = len(tok(step.completion, add_special_tokens=False)["input_ids"])
                item = Item.tail(backend.encode(step.messages, step.completion), n)
                (-sequence_logps(model, item).mean()).backward()
                n_items += 1
        model.zero_grad(set_to_none=True)
        return {"sequences": n_items}

    def timed(fn, *a):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        extra = fn(*a)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0, extra

    # warm-up (decode frames, compile kernels), then the case itself
    if case == "sft-step":
        sft_step()
    done = rollouts() if case != "sft-step" else None
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    if case == "sft-step":
        seconds, extra = timed(sft_step)
    elif case == "grpo-rollout":
        seconds, done = timed(rollouts)
        extra = {"steps": sum(len(r.steps) for r in done), "generations": generations}
    else:
        seconds, extra = timed(grpo_loss, done)
    peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    Path(out).write_text(json.dumps({
        "case": case, "arch": arch, "seconds": seconds, "peak_mb": peak, **extra,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else f"{os.cpu_count()} CPU cores",
    }))


def make_video(minutes: float) -> Path:
    from longlens.synth import make_video as make

    path = BENCH / f"train-{minutes:g}min.mp4"
    if not path.exists():
        BENCH.mkdir(parents=True, exist_ok=True)
        make(path, duration_s=minutes * 60, width=640, height=360, fps=30, gop_s=5.0, seed=12, needles=4,
             preset="superfast")
    return path


def write_docs(text: str) -> None:
    replace_section(ROOT / "docs" / "benchmarks.md", "train_steps", text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="small")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--device", default=None)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--worker", choices=CASES)
    ap.add_argument("--video")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.arch, args.video, args.device, args.new_tokens, args.generations, args.out)
        return
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    video = make_video(args.minutes)
    results = {}
    for case in CASES:
        out = BENCH / f"train-{args.arch}-{case}.json"
        subprocess.run([sys.executable, __file__, "--worker", case, "--arch", args.arch, "--video", str(video),
                        "--device", device, "--new-tokens", str(args.new_tokens), "--generations",
                        str(args.generations), "--out", str(out)], check=True)
        results[case] = json.loads(out.read_text())
    anchor = results["sft-step"]["seconds"]
    rows = [f"Training steps, `{args.arch}` ({results['sft-step']['device_name']}), a {args.minutes:g}-minute "
            f"video, {args.generations} rollouts of up to 3 steps at {args.new_tokens} new tokens each; "
            "anchor: one SFT step (forward + backward) on the same video.", "",
            "| case | seconds | x sft step | peak MB | detail |", "|---|---:|---:|---:|---|"]
    for case, r in results.items():
        detail = ", ".join(f"{k} {v}" for k, v in r.items() if k in ("tokens", "steps", "sequences", "generations"))
        rows.append(f"| {case} | {r['seconds']:.2f} | {r['seconds'] / anchor:.2f}x | {r['peak_mb']:.0f} | {detail} |")
    text = "\n".join(rows)
    print(text)
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
