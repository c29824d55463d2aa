"""What one zoom step costs the client against a real vLLM server: encoding a 768-frame fast view and sending it.

    python benchmarks/vllm_requests.py --url http://127.0.0.1:8000/v1      # a server started with the README flags
    python benchmarks/vllm_requests.py                                       # starts one: scripts/vllm-cpu.sh

The fast view of a generated 13-minute 640x360 video (768 frames at 32 tokens, 112x196), decoded once. For each
video format: the client's encoding time (cold: the encoding cache is cleared before each repeat), the request's
size, and the round trip of a one-token reply (server decode + processor + a random 4 M-parameter model's
prefill; with a real model the prefill dominates and is the same for both formats). The anchor is the JPEG
sequence (quality 95, the previous default), measured in the same run. Medians of `--repeats`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fast_view(work: Path):
    from longlens.synth import make_video
    from longlens.video import decode, fast_plan, open_video

    path = work / "video.mp4"
    make_video(path, duration_s=13 * 60, width=640, height=360, fps=10, gop_s=5.0, seed=7, needles=4)
    info = open_video(path)
    return decode(info, fast_plan(info))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a vLLM server started with the README flags (default: start one here)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    from longlens.backends import GenConfig, wire
    from longlens.backends.openai_client import OpenAIBackend
    from longlens.prompts.messages import Message, Text, Video

    work = Path(tempfile.mkdtemp(prefix="longlens-vllm-bench-"))
    pid = None
    if not args.url:
        from longlens.backends.hf.random_model import make_random_model

        sys.path.insert(0, str(ROOT / "tests"))
        from test_vllm_server import _free_port, readme_serve_flags

        make_random_model(work / "model", "vllm")
        port = _free_port()
        t0 = time.perf_counter()
        out = subprocess.run(["bash", str(ROOT / "scripts/vllm-cpu.sh"), "serve", str(work / "model"), str(port),
                              *readme_serve_flags()], capture_output=True, text=True, check=True)
        pid = int(out.stdout.split()[-1])
        print(f"server start: {time.perf_counter() - t0:.0f} s")
        args.url = f"http://127.0.0.1:{port}/v1"
    try:
        fs = fast_view(work)
        print(f"fast view: {len(fs)} frames of {fs.frames.shape[2]}x{fs.frames.shape[1]}, {fs.plan.sample_fps} fps, "
              f"{fs.visual_tokens} visual tokens")
        messages = (Message("user", (Video(fs), Text("What is written on the label?"))),)
        rows = {}
        for fmt in ("jpeg", "mp4"):
            backend = OpenAIBackend(args.url, video_format=fmt)
            backend.check()
            enc, trip, size = [], [], 0
            for _ in range(args.repeats):
                wire._ENCODED.items.clear()
                t0 = time.perf_counter()
                body = backend.request(messages, GenConfig(max_new_tokens=1))
                enc.append(time.perf_counter() - t0)
                size = len(next(p for p in body["messages"][0]["content"] if p["type"] == "video_url")
                           ["video_url"]["url"])
                t0 = time.perf_counter()
                backend.client.chat.completions.create(**body)
                trip.append(time.perf_counter() - t0)
            rows[fmt] = (statistics.median(enc), size / 2**20, statistics.median(trip))
        j = rows["jpeg"]
        print(f"{'format':<8}{'encode s':>10}{'request MB':>12}{'round trip s':>14}   ratios to jpeg (anchor)")
        for fmt, (e, mb, t) in rows.items():
            print(f"{fmt:<8}{e:>10.3f}{mb:>12.1f}{t:>14.3f}   encode {e / j[0]:.2f}x, size {mb / j[1]:.2f}x, "
                  f"round trip {t / j[2]:.2f}x")
    finally:
        if pid:
            import os
            import signal

            os.killpg(pid, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
