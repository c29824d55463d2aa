"""Zoom steps in the transformers backend: with and without KV reuse, against uniform sampling, in one run.

    python benchmarks/hf_steps.py                          # CPU: the tiny and small random models
    python benchmarks/hf_steps.py --arch qwen2.5-vl-7b     # GPU: the 7B architecture, random bf16 weights
    python benchmarks/hf_steps.py --write-docs             # also update docs/benchmarks.md

Per question, on one generated video (made once under .bench/), with the generation length fixed
(``ignore_eos``) so random weights cost what a real reply of that length costs:

* **zoom, reuse** — the three LOVE-R1 steps (fast view; fast view + clip 1; fast view + both clips with
  the forced answer prefix) through one `HFBackend` that keeps its KV cache between steps;
* **zoom, recompute** — the same steps with ``kv_reuse=False`` (every step prefills its whole prompt,
  as the reference does);
* **uniform-128** — the anchor: one forced step on 128 frames at 256 tokens a frame (LOVE-R1 Table 7's
  uniform baseline).

Each case runs in its own process (peak memory is its own: RSS on CPU, `max_memory_allocated` on GPU),
after one warm-up question on a different video view. Frames are decoded (and cached) before timing:
what is timed is the backend's work for the question, processor included. Random weights say nothing
about accuracy; this is about time and memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _docs import replace_section

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench"))
CASES = ("zoom-reuse", "zoom-recompute", "uniform-128")


# ------------------------------------------------------------------ one case, in its own process
def worker(case: str, arch: str, video: str, device: str, new_tokens: int, repeats: int, out: str) -> None:
    import torch

    from longlens.agents.zoom import ZoomAgent, ZoomConfig
    from longlens.backends.base import GenConfig
    from longlens.backends.hf import HFBackend
    from longlens.backends.hf.random_model import build_model, make_random_model
    from longlens.prompts import format_question, load_profile, zoom_messages
    from longlens.video import FrameCache, decode, open_video, uniform_plan

    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    folder = BENCH / "models" / arch
    if arch == "qwen2.5-vl-7b":  # 16 GB of random weights: built in memory, never written
        if not (folder / "config.json").exists():
            make_random_model(folder, arch, save_weights=False)
        from transformers import AutoConfig, AutoProcessor

        torch.manual_seed(0)
        torch.set_default_dtype(torch.bfloat16)
        model = build_model(AutoConfig.from_pretrained(folder), dtype="bfloat16", device=device)
        torch.set_default_dtype(torch.float32)
        backend = HFBackend.from_model(model, AutoProcessor.from_pretrained(folder), name=arch,
                                       kv_reuse=case == "zoom-reuse")
    else:
        if not (folder / "model.safetensors").exists():
            make_random_model(folder, arch)
        backend = HFBackend(folder, device=device, kv_reuse=case == "zoom-reuse")

    cache = FrameCache(BENCH / "frames-cache")
    info = open_video(video, cache=cache)
    agent = ZoomAgent(backend, ZoomConfig(), cache=cache)
    profile = load_profile("love-r1")
    q = format_question(profile, "Which word appears on the sign?", ["SANDAL", "TABLE", "LAMP", "CHAIR"])
    d = info.duration_s
    fast = agent._fast(info)
    clips = [agent._clip(info, 0.30 * d, 0.30 * d + 30), agent._clip(info, 0.60 * d, 0.60 * d + 30)]
    if case == "uniform-128":
        frames = decode(info, uniform_plan(info, 128, budget=256 * 28 * 28), cache=cache)
        question = [zoom_messages(profile, q, d, frames, prefix=profile.answer_prefix)]
    else:
        question = [zoom_messages(profile, q, d, fast, clips[:k]) for k in (0, 1)]
        question.append(zoom_messages(profile, q, d, fast, clips, prefix=profile.answer_prefix))
    gen = GenConfig(max_new_tokens=new_tokens, ignore_eos=True)
    # warm-up: one short question on the first clip alone (other pixels, so nothing is reused from it)
    backend.generate(zoom_messages(profile, q, d, clips[0].frames), GenConfig(max_new_tokens=4, ignore_eos=True))
    backend.reset()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    runs = []
    for _ in range(repeats):
        backend.reset()
        steps = []
        for messages in question:
            c = backend.generate(messages, gen)
            steps.append({"latency_s": c.latency_s, "prompt_tokens": c.usage.prompt_tokens,
                          "cached_tokens": c.usage.cached_tokens, "visual_tokens": list(c.usage.visual_tokens),
                          "completion_tokens": c.usage.completion_tokens, "timings": c.timings})
        runs.append(steps)
    totals = [sum(s["latency_s"] for s in steps) for steps in runs]
    best = runs[totals.index(statistics.median_low(totals))]
    if device.startswith("cuda"):
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
        weights_mb = base / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        weights_mb = sum(p.numel() * p.element_size() for p in backend.net.parameters()) / 2**20
    Path(out).write_text(json.dumps({
        "case": case, "arch": arch, "device": device, "total_s": statistics.median(totals), "all_s": totals,
        "steps": best, "peak_mb": peak_mb, "weights_mb": weights_mb,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else f"{os.cpu_count()} CPU cores",
    }))


# ------------------------------------------------------------------ driver
def make_video(minutes: float, size: str) -> Path:
    from longlens.synth import make_video as make

    w, h = (int(x) for x in size.split("x"))
    path = BENCH / f"hf-{minutes:g}min-{size}.mp4"
    if not path.exists():
        BENCH.mkdir(parents=True, exist_ok=True)
        print(f"making {path.name} ...", flush=True)
        make(path, duration_s=minutes * 60, width=w, height=h, fps=30, gop_s=5.0, seed=11, needles=4,
             preset="superfast")
    return path


def run_arch(arch: str, video: Path, device: str, new_tokens: int, repeats: int) -> dict:
    results = {}
    for case in CASES:
        out = BENCH / f"hf-{arch}-{case}.json"
        cmd = [sys.executable, __file__, "--worker", case, "--arch", arch, "--video", str(video), "--device", device,
               "--new-tokens", str(new_tokens), "--repeats", str(repeats), "--out", str(out)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        results[case] = json.loads(out.read_text())
        print(f"  {arch:>14} {case:<15} {results[case]['total_s']:8.2f} s  peak {results[case]['peak_mb']:8.0f} MB"
              f"  ({time.perf_counter() - t0:.0f} s with start-up)", flush=True)
    return results


def table(all_results: dict, new_tokens: int) -> str:
    lines = ["| model | case | step latencies s | total s | prompt tokens per step | reused tokens per step "
             "| peak MB |", "|---|---|---|---|---|---|---|"]
    ratios = ["| model | zoom reuse / uniform-128 | zoom recompute / uniform-128 | recompute / reuse "
              "| peak MB reuse / uniform-128 |", "|---|---|---|---|---|"]
    for arch, res in all_results.items():
        for case in CASES:
            r = res[case]
            lat = " / ".join(f"{s['latency_s']:.2f}" for s in r["steps"])
            toks = " / ".join(str(s["prompt_tokens"]) for s in r["steps"])
            cached = " / ".join(str(s["cached_tokens"]) for s in r["steps"])
            lines.append(f"| {arch} | {case} | {lat} | {r['total_s']:.2f} | {toks} | {cached} | {r['peak_mb']:.0f} |")
        u, z, n = res["uniform-128"], res["zoom-reuse"], res["zoom-recompute"]
        ratios.append(f"| {arch} | {z['total_s'] / u['total_s']:.2f}x | {n['total_s'] / u['total_s']:.2f}x | "
                      f"{n['total_s'] / z['total_s']:.2f}x | {z['peak_mb'] / u['peak_mb']:.2f}x |")
    first = next(iter(all_results.values()))["uniform-128"]
    head = (f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/hf_steps.py`; device: "
            f"{first['device_name']} ({first['device']}); {new_tokens} generated tokens per step; "
            "median of the repeats.\n")
    return head + "\n" + "\n".join(lines) + "\n\n" + "\n".join(ratios) + "\n"


def write_docs(text: str) -> None:
    replace_section(ROOT / "docs" / "benchmarks.md", "hf_steps", text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", help="tiny, small, qwen2.5-vl-7b (default: tiny and small on CPU, "
                                                    "qwen2.5-vl-7b on a GPU)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--minutes", type=float, default=None, help="video length (default 10 on CPU, 60 on a GPU)")
    ap.add_argument("--size", default="640x360", help="video size (default 640x360)")
    ap.add_argument("--new-tokens", type=int, default=None, help="generated tokens per step (default 32 CPU, 256 GPU)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    ap.add_argument("--video", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.arch[0], args.video, args.device, args.new_tokens, args.repeats, args.out)
        return
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    archs = args.arch or (["qwen2.5-vl-7b"] if device == "cuda" else ["tiny", "small"])
    minutes = args.minutes or (60 if device == "cuda" else 10)
    new_tokens = args.new_tokens or (256 if device == "cuda" else 32)
    video = make_video(minutes, args.size)
    print(f"video {video.name}, device {device}, {new_tokens} tokens per step", flush=True)
    results = {arch: run_arch(arch, video, device, new_tokens, args.repeats) for arch in archs}
    text = table(results, new_tokens)
    print(text)
    (BENCH / f"hf-steps-{device}.json").write_text(json.dumps(results, indent=1))
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
