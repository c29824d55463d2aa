"""Evaluation memory: RSS of `longlens eval` over many videos, glibc's malloc as it is against LongLens's bound.

    python benchmarks/eval_rss.py                          # 40 videos of 2 min (854x480), concurrency 16
    python benchmarks/eval_rss.py --videos-dir DIR         # videos and answer keys made before (v01.mp4, ...)
    python benchmarks/eval_rss.py --mmap                   # a third arm: LONGLENS_MALLOC=mmap
    python benchmarks/eval_rss.py --write-docs             # also update docs/benchmarks.md

The `needles` benchmark over generated videos (made once under .bench/eval_rss/: 30 fps, H.264 at crf 10,
about 3 Mbit/s like an upload, a keyframe at least every 5 s, two needles each), answered by the zoom agent
with the default offline backend, each arm its own `python -m longlens eval` process with an empty run
folder and an empty frame cache. The anchor is the same command with ``LONGLENS_MALLOC=system`` (glibc's
malloc left as it is, the behaviour before `longlens.memory.bound_allocator`); LongLens is the default
(``trim``: arenas capped, their free memory given back every second).
The process's RSS (/proc/PID/status) is sampled every 0.5 s. "start" is the RSS when the first question
finished; the run is cut into four windows by questions finished (videos 0-10, 10-20, 20-30, 30-40 at the
defaults) and each window's median RSS is shown (what is in flight differs from sample to sample: the median
of a window is steadier than the RSS at one instant); "growth per 10 videos" is the least-squares slope through
the medians of the last three windows (the first is the warm-up); "peak" is the kernel's high-water mark
(VmHWM); "end" is the RSS after the last question, nothing in flight (what the allocator kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _docs import machine, replace_section

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench")) / "eval_rss"
DOCS = ROOT / "docs" / "benchmarks.md"
WINDOWS = 4
ARMS = (("anchor: glibc malloc as is (`LONGLENS_MALLOC=system`)", "anchor", {"LONGLENS_MALLOC": "system"}),
        ("longlens (default: `trim`)", "longlens", {}))
MMAP_ARM = (("`LONGLENS_MALLOC=mmap`", "mmap", {"LONGLENS_MALLOC": "mmap"}),)


def make_suite(videos: int, duration_s: float, size: tuple[int, int], crf: int) -> Path:
    from longlens.synth import make_video

    w, h = size
    folder = BENCH / f"videos-{videos}x{duration_s:g}s-{w}x{h}-crf{crf}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(videos):
        path = folder / f"v{i + 1:02d}.mp4"
        if not (path.exists() and path.with_suffix(".json").exists()):
            t0 = time.perf_counter()
            make_video(path, duration_s=duration_s, width=w, height=h, fps=30, gop_s=5.0, seed=1000 + i, crf=crf)
            print(f"made {path.name} ({i + 1}/{videos}) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return folder


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in kB (empty once it has exited)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M)}


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for line in f if line.endswith(b"\n"))
    except OSError:
        return 0


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0


def run_arm(suite: Path, work: Path, name: str, tag: str, extra_env: dict, concurrency: int, questions: int,
            videos: int, interval: float = 0.5) -> dict:
    """One `longlens eval` process (this environment without malloc settings, plus `extra_env`), its RSS
    sampled; returns the samples and the summary numbers (MB)."""
    out, cache = work / f"run-{tag}", work / f"cache-{tag}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("LONGLENS_MALLOC", "GLIBC_TUNABLES")}
    env.update(extra_env)
    cmd = [sys.executable, "-m", "longlens", "eval", "needles", "--data", str(suite), "--out", str(out),
           "--concurrency", str(concurrency), "--cache-dir", str(cache)]
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, int, int]] = []  # (seconds, questions done, RSS kB)
    hwm = 0
    while proc.poll() is None:
        st = _status(proc.pid)
        if st:
            hwm = max(hwm, st.get("VmHWM", 0))
            samples.append((time.perf_counter() - t0, _lines(out / "results.jsonl"), st["VmRSS"]))
        time.sleep(interval)
    err = proc.stderr.read()
    if proc.returncode != 0:
        sys.exit(f"{name}: longlens eval failed with status {proc.returncode}: {err.strip()[-2000:]}")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    done = _lines(out / "results.jsonl")
    if done != questions:
        sys.exit(f"{name}: {done} results, expected {questions}")
    mb = [(t, q, kb / 1024) for t, q, kb in samples if kb]
    started = [r for t, q, r in mb if q >= 1]
    windows = []  # (videos done at the window's end, median RSS MB while its questions were finishing)
    for k in range(WINDOWS):
        lo, hi = questions * k // WINDOWS, questions * (k + 1) // WINDOWS
        inside = [r for t, q, r in mb if lo <= q < hi] or [mb[-1][2]]
        windows.append((videos * (k + 1) / WINDOWS, statistics.median(inside)))
    later = windows[1:]  # the first window is the warm-up
    return {"name": name, "wall_s": wall, "cpu_s": cpu, "start": started[0] if started else mb[0][2],
            "peak": hwm / 1024, "end": mb[-1][2], "windows": windows, "samples": mb,
            "growth_per_10": 10 * slope([w[0] for w in later], [w[1] for w in later]),
            "run_s": json.loads((out / "summary.json").read_text())["run_s"]}


def table(results: list[dict]) -> str:
    marks = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in zip([0] + [w[0] for w in results[0]["windows"][:-1]],
                                                          [w[0] for w in results[0]["windows"]], strict=True))
    rows = [f"| arm | start MB | median RSS over videos {marks} MB | peak MB | end MB | growth per 10 videos MB "
            "| run s | CPU s |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        cps = " / ".join(f"{w[1]:.0f}" for w in r["windows"])
        rows.append(f"| {r['name']} | {r['start']:.0f} | {cps} | {r['peak']:.0f} | {r['end']:.0f} | "
                    f"{r['growth_per_10']:+.1f} | {r['run_s']:.1f} | {r['cpu_s']:.1f} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds per video (default 120)")
    ap.add_argument("--size", default="854x480", help="frame size of the generated videos (854x480)")
    ap.add_argument("--crf", type=int, default=10, help="x264 quality of the generated videos (10: ~3 Mbit/s)")
    ap.add_argument("--videos-dir", type=Path, help="use the needles videos and keys here instead of making them")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--mmap", action="store_true", help="also run LONGLENS_MALLOC=mmap (a fixed mmap threshold)")
    ap.add_argument("--write-docs", action="store_true", help=f"replace the eval_rss section of {DOCS.name}")
    args = ap.parse_args()
    if args.videos_dir:
        suite = args.videos_dir
        keys = sorted(suite.glob("*.json"))
        videos = len(keys)
    else:
        w, h = (int(x) for x in args.size.lower().split("x"))
        suite = make_suite(args.videos, args.duration, (w, h), args.crf)
        keys = [suite / f"v{i + 1:02d}.json" for i in range(args.videos)]
        videos = args.videos
    questions = sum(len(json.loads(k.read_text())["needles"]) for k in keys)
    if questions < 4:
        sys.exit(f"{suite}: {questions} questions; need at least 4")
    mbits = [8 * k.with_suffix(".mp4").stat().st_size / json.loads(k.read_text())["duration_s"] / 1e6
             for k in keys if k.with_suffix(".mp4").exists()]

    BENCH.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(dir=BENCH) as tmp:
        for name, tag, extra_env in ARMS + (MMAP_ARM if args.mmap else ()):
            results.append(run_arm(suite, Path(tmp), name, tag, extra_env, args.concurrency, questions, videos))
            print(f"{name}: done in {results[-1]['wall_s']:.1f} s", file=sys.stderr)

    anchor, ours = results[:2]
    where = f"{machine()}, glibc {platform.libc_ver()[1] or '?'}"
    command = " ".join(["python benchmarks/eval_rss.py", *sys.argv[1:]])
    head = (f"Measured {date.today().isoformat()} with `{command}`; machine: {where}.\n\n"
            f"{videos} videos ({suite.name}, mean {sum(mbits) / max(len(mbits), 1):.1f} Mbit/s), {questions} "
            f"questions, `longlens eval needles --concurrency {args.concurrency}` (zoom agent, offline backend), "
            "an empty frame cache per arm.")
    ratio_peak = anchor["peak"] / ours["peak"]
    ratio_end = anchor["end"] / ours["end"]
    growth = ours["growth_per_10"]
    flat = growth <= max(5.0, 0.1 * anchor["growth_per_10"])  # not growing (noise between windows: tens of MB)
    ratios = "\n".join([
        "| ratio | value | target | met |", "|---|---|---|---|",
        f"| anchor / longlens, end RSS | {ratio_end:.2f}x | - | - |",
        f"| anchor / longlens, peak RSS | {ratio_peak:.2f}x | - | - |",
        f"| longlens growth per 10 videos | {growth:+.1f} MB (anchor {anchor['growth_per_10']:+.1f} MB) | "
        f"≈ 0 (at most 5 MB or a tenth of the anchor's) | {'yes' if flat else 'no'} |",
        f"| longlens / anchor, run time | {ours['run_s'] / anchor['run_s']:.2f}x | - | - |",
        f"| longlens / anchor, CPU time of the process | {ours['cpu_s'] / anchor['cpu_s']:.2f}x | - | - |",
    ])
    report = f"{head}\n\n{table(results)}\n\n{ratios}"
    print(report)
    samples_file = BENCH / "samples.json"
    samples_file.write_text(json.dumps({r["name"]: r["samples"] for r in results}))
    print(f"\nRSS samples (seconds, questions done, MB) in {samples_file}", file=sys.stderr)
    if args.write_docs:
        replace_section(DOCS, "eval_rss", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
