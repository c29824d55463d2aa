"""What `longlens serve` adds to a question: its latency through the HTTP API against the same question answered
in-process, same backend, warm cache.

    python benchmarks/serve_overhead.py                 # 20 questions a backend, offline and scripted
    python benchmarks/serve_overhead.py --write-docs    # also update docs/benchmarks.md

The anchor is what `longlens ask` spends on a question once it has started: `open_video` (the fingerprint and the
cached index) and the zoom agent's run, in one process that keeps its backend and frame cache (the CLI's own
start-up, imports and OCR model load, 3-5 s, are not counted against it). The server runs as its own process with
the same backend and a frame cache that is already warm. Through the server, two clients: plain HTTP on one
kept-alive connection (what the server adds) and the official `openai` SDK (what its users see: the SDK's own
request building and reply parsing included). Questions alternate between the three ways, medians of each. The
scripted backend (a reply costs nothing) shows the overhead in milliseconds with nothing to hide it; the offline
backend is the ratio the target is about.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _docs import machine, publish

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench")) / "serve"
DOCS = ROOT / "docs" / "benchmarks.md"
MINUTES = 10


def demo_video() -> tuple[Path, object]:
    from longlens.cli.demo import FPS, HEIGHT, TEXT_CAP, WIDTH
    from longlens.synth import load_answer_key, make_video

    video = BENCH / f"demo-{MINUTES}min.mp4"
    if not video.with_suffix(".json").exists():
        BENCH.mkdir(parents=True, exist_ok=True)
        print(f"making {video} ...", flush=True)
        make_video(video, duration_s=MINUTES * 60, width=WIDTH, height=HEIGHT, fps=FPS, seed=0, needles=1,
                   needle_kinds=("text",), text_cap=TEXT_CAP)
    return video, load_answer_key(video.with_suffix(".json")).needles[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(backend: str, n: int, video: Path, needle) -> dict:
    from openai import OpenAI

    from longlens.agents.zoom import ZoomAgent, ZoomConfig
    from longlens.backends.registry import make_backend
    from longlens.video import FrameCache, open_video

    cache_dir = BENCH / "cache"
    script = BENCH / "script.json"
    replies = 3 * n + 12
    script.write_text(json.dumps(["\\boxed{A}"] * replies))
    extra = ["--script", str(script)] if backend == "scripted" else []
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "longlens", "serve", "--backend", backend, *extra, "--videos",
                               str(video.parent), "--cache-dir", str(cache_dir), "--port", str(port),
                               "--concurrency", "1"], stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        client = OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)
        text = needle.question + "".join(f"\n{chr(65 + i)}. {o}" for i, o in enumerate(needle.options))
        messages = [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": video.name}},
                                                 {"type": "text", "text": text}]}]
        model = make_backend(backend, script=str(script)) if backend == "scripted" else make_backend(backend)
        model.check()
        cache = FrameCache(cache_dir)
        agent = ZoomAgent(model, ZoomConfig(), cache=cache)

        def direct() -> str:
            info = open_video(video, cache=cache)
            return agent.run(info, needle.question, needle.options).choice

        def sdk() -> str:
            r = client.chat.completions.create(model="longlens-zoom", messages=messages)
            return r.model_extra["longlens"]["choice"]

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)  # one kept-alive connection
        body = json.dumps({"model": "longlens-zoom", "messages": messages}).encode()

        def served() -> str:
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())["longlens"]["choice"]

        ways = (("direct", direct), ("served", served), ("sdk", sdk))
        for _ in range(2):  # warm: the frame cache, the OCR model, the server's first request
            for _, fn in ways:
                fn()
        times: dict[str, list[float]] = {name: [] for name, _ in ways}
        answers = set()
        for _ in range(n):
            for name, fn in ways:
                t0 = time.perf_counter()
                answers.add((name, fn()))
                times[name].append(time.perf_counter() - t0)
        if len({a for _, a in answers}) != 1:
            raise SystemExit(f"the two ways answered differently: {sorted(answers)}")
    finally:
        server.terminate()
        server.communicate(timeout=30)
    d, s, k = (statistics.median(times[w]) for w in ("direct", "served", "sdk"))
    out = {"backend": backend, "n": n, "direct_s": d, "served_s": s, "sdk_s": k, "overhead_ms": 1000 * (s - d),
           "overhead_pct": 100 * (s - d) / d, "sdk_pct": 100 * (k - d) / d}
    print(f"{backend:<9} direct {d * 1000:8.1f} ms  served {s * 1000:8.1f} ms ({out['overhead_pct']:+.1f}%)  "
          f"openai SDK {k * 1000:8.1f} ms ({out['sdk_pct']:+.1f}%)", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    video, needle = demo_video()
    rows = [measure(b, args.questions, video, needle) for b in ("scripted", "offline")]
    lines = [f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/serve_overhead.py` on this machine "
             f"({machine()}): the demo's "
             f"{MINUTES}-minute video, one question at a time, warm frame cache, medians of {args.questions} "
             "alternating questions.", "",
             "| backend | in-process (open_video + agent), ms | through `longlens serve`, ms | server overhead | "
             "target | through the openai SDK, ms | SDK + server overhead |", "|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        target = "<= 5%: " + ("met" if r["overhead_pct"] <= 5 else "NOT met") if r["backend"] == "offline" else "-"
        lines.append(f"| {r['backend']} | {r['direct_s'] * 1000:.1f} | {r['served_s'] * 1000:.1f} | "
                     f"{r['overhead_ms']:+.1f} ms ({r['overhead_pct']:+.1f}%) | {target} | {r['sdk_s'] * 1000:.1f} | "
                     f"{1000 * (r['sdk_s'] - r['direct_s']):+.1f} ms ({r['sdk_pct']:+.1f}%) |")
    publish("\n".join(lines), DOCS, "serve", args.write_docs, heading=(
            "## Serving overhead (`longlens serve`)\n\nWhat the server adds: parsing the request, resolving the "
            "path, and the reply's JSON over HTTP on 127.0.0.1; the question itself runs the same agent on the "
            "same backend."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
