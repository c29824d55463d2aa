"""Evaluation throughput: `longlens eval` with questions in flight against one at a time, in one run.

    python benchmarks/eval_throughput.py                       # 64 questions, 8 videos, 500 ms per call
    python benchmarks/eval_throughput.py --concurrency 16 --servers 2 --latency 1.0

The `needles` benchmark over generated videos (60 s, 320x180, made once under .bench/eval_throughput/),
answered by the zoom agent (`python -m longlens eval ... --backend openai`, its own process) against
scripted OpenAI-compatible servers on 127.0.0.1, in this process, that wait a fixed time per call (a
stand-in for a model). The anchor is the same command with
``--concurrency 1``; each mode starts from an empty run folder and an empty frame cache, so both decode
every video. Printed: seconds and questions per second of each mode, the throughput ratio over the time
the questions took (the eval's own `run_s`), and the ratio of the whole commands (start-up and imports,
about 1.4 s of which the openai SDK is 1 s, included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench")) / "eval_throughput"
REPLY = "I get the answer.\n\n\\boxed{A}"


def make_suite(videos: int, per_video: int, duration_s: float) -> Path:
    from longlens.synth import make_video

    folder = BENCH / f"videos-{videos}x{per_video}-{duration_s:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(videos):
        path = folder / f"v{i + 1}.mp4"
        if not (path.exists() and path.with_suffix(".json").exists()):
            make_video(path, duration_s=duration_s, width=320, height=180, fps=24, gop_s=2.0, seed=100 + i,
                       needles=per_video)
    return folder


def run_mode(suite: Path, urls: list[str], concurrency: int, work: Path) -> tuple[float, float, list[dict]]:
    """One `longlens eval` process (the servers stay in this one, as a model server is elsewhere): its wall
    seconds, the seconds its questions took (`run_s` of summary.json: start-up and imports excluded), records."""
    out = work / f"run-c{concurrency}"
    where = ["--endpoints", ",".join(urls)] if len(urls) > 1 else ["--base-url", urls[0]]
    cmd = [sys.executable, "-m", "longlens", "eval", "needles", "--data", str(suite), "--out", str(out),
           "--backend", "openai", *where, "--concurrency", str(concurrency), "--cache-dir",
           str(work / f"cache-c{concurrency}")]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"longlens eval failed with status {done.returncode}: {done.stderr.strip()}")
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    run_s = json.loads((out / "summary.json").read_text())["run_s"]
    return wall, run_s, records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per video (default 60)")
    ap.add_argument("--latency", type=float, default=0.5, help="seconds the server waits per call (default 0.5)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--servers", type=int, default=1, help="scripted servers; more than one uses --endpoints")
    args = ap.parse_args()
    if args.questions % args.videos:
        sys.exit(f"--questions ({args.questions}) must be a multiple of --videos ({args.videos})")

    from longlens.backends.scripted_server import ScriptedServer

    suite = make_suite(args.videos, args.questions // args.videos, args.duration)
    servers = [ScriptedServer([REPLY], repeat_last=True, latency_s=args.latency).start() for _ in range(args.servers)]
    try:
        with tempfile.TemporaryDirectory(dir=BENCH) as tmp:
            seq_wall, seq_s, seq = run_mode(suite, [s.url for s in servers], 1, Path(tmp))
            con_wall, con_s, con = run_mode(suite, [s.url for s in servers], args.concurrency, Path(tmp))
    finally:
        for s in servers:
            s.stop()
    n = args.questions
    assert len(seq) == len(con) == n, (len(seq), len(con))
    ratio = seq_s / con_s
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{n} questions over {args.videos} videos ({args.duration:g} s, 320x180), {args.latency * 1000:.0f} ms per "
          f"call, {args.servers} server(s), 1 call per question")
    print(f"sequential (concurrency 1): {seq_s:7.2f} s  {n / seq_s:6.2f} questions/s   (command {seq_wall:.2f} s)")
    print(f"concurrency {args.concurrency:<14}: {con_s:7.2f} s  {n / con_s:6.2f} questions/s   "
          f"(command {con_wall:.2f} s)")
    print(f"throughput ratio: {ratio:.2f}x (target >= 6x); whole commands, start-up included: "
          f"{seq_wall / con_wall:.2f}x")
    decoded = [sum(r["cost"]["frames_decoded"] for r in rs) for rs in (seq, con)]
    print(f"frames decoded: sequential {decoded[0]}, concurrent {decoded[1]} (same videos, empty caches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
