"""Decode benchmark: LongLens against decord and the PyAV keyframe-only floor, in one run.

    python benchmarks/decode.py                 # 60-minute 720p30 H.264 video (made once, kept in .bench/)
    python benchmarks/decode.py --minutes 10    # a shorter video
    python benchmarks/decode.py --write-docs    # also update docs/benchmarks.md

Every method runs in a fresh process (so its peak RSS is its own) on the same generated video,
whose frames show their own index (the frame code); the error columns come from reading that code
back from every returned frame, not from what a method says it returned. Anchors, measured in the
same run: decord ``VideoReader(width=, height=).get_batch`` (what both reference implementations
call; it lives in its own virtualenv under .bench/, made on first use) and PyAV keyframe-only
decoding (``skip_frame="NONKEY"``, the nearest keyframe to each target: the floor). decord gets the
resize for free inside its decoder and draws no stamps; LongLens draws stamps.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench"))


# ------------------------------------------------------------------ workers (one per process)
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(method: str, video: str, plan_file: str, out: str, cache_dir: str) -> None:
    plan = json.loads(Path(plan_file).read_text())
    idx, h, w = plan["indices"], plan["height"], plan["width"]
    if method == "decord":
        import decord

        t0 = time.perf_counter()
        vr = decord.VideoReader(video, ctx=decord.cpu(0), width=w, height=h, num_threads=0)
        frames = vr.get_batch(idx).asnumpy()
        wall = time.perf_counter() - t0
        reported = None
    elif method == "keyframes":
        import av

        t0 = time.perf_counter()
        times = np.asarray(plan["all_times_s"])
        targets = times[idx]
        container = av.open(video)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONKEY"
        key_t, key_f = [], []
        for frame in container.decode(stream):
            key_t.append(float(frame.time))
            key_f.append(frame.to_ndarray(width=w, height=h, format="rgb24", interpolation="BICUBIC"))
        key_t = np.asarray(key_t)
        pick = np.abs(key_t[None, :] - targets[:, None]).argmin(axis=1)
        frames = np.stack([key_f[i] for i in pick])
        wall = time.perf_counter() - t0
        reported = [float(key_t[i]) for i in pick]
    else:
        from longlens.video import FrameCache, decode, fast_plan, open_video, slow_plan

        mode = "accurate" if method.endswith("accurate") else "nearest"
        t0 = time.perf_counter()
        cache = FrameCache(cache_dir) if method.startswith("warm") else None
        info = open_video(video, cache=cache)
        if plan["kind"] == "fast":
            p = fast_plan(info, mode=mode)
        else:
            p = slow_plan(info, *plan["span_s"], mode=mode)
        assert list(p.indices) == idx and (p.height, p.width) == (h, w)
        fs = decode(info, p, cache=cache)
        wall = time.perf_counter() - t0
        frames, reported = np.asarray(fs.frames), list(fs.times_s)
        if method.startswith("warm"):
            assert fs.from_cache, "warm run did not hit the cache"
    np.save(out + ".npy", frames)
    Path(out + ".json").write_text(json.dumps({"wall_s": wall, "rss_mb": _rss_mb(), "reported_s": reported}))


# ------------------------------------------------------------------ driver
def ensure_video(minutes: float) -> Path:
    from longlens.synth import make_video

    path = BENCH / f"bench-{minutes:g}min-720p30.mp4"
    if not path.exists():
        BENCH.mkdir(parents=True, exist_ok=True)
        print(f"making {path.name} (once) ...", flush=True)
        t0 = time.perf_counter()
        tmp = path.with_suffix(".part.mp4")
        make_video(tmp, duration_s=minutes * 60, width=1280, height=720, fps=30, gop_s=5.0, seed=7,
                   needles=0, preset="superfast", frame_code=True, key_path=path.with_suffix(".json"))
        tmp.rename(path)
        print(f"  made in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def decord_python() -> Path:
    venv = BENCH / "decord-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        print("creating the decord environment (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "decord==0.6.0", "numpy"], check=True)
    return py


def run_method(method: str, python: Path, video: Path, plan: dict, cache_dir: Path) -> dict:
    from longlens.synth import read_frame_code

    plan_file = BENCH / "plan.json"
    plan_file.write_text(json.dumps(plan))
    out = BENCH / f"out-{method}-{plan['kind']}"
    cmd = [str(python), __file__, "--worker", method, str(video), str(plan_file), str(out), str(cache_dir)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run(cmd, check=True, env=env)
    res = json.loads(Path(str(out) + ".json").read_text())
    frames = np.load(str(out) + ".npy")
    got = np.array([read_frame_code(f) for f in frames])
    times = np.asarray(plan["all_times_s"])
    err = np.abs(times[got] - times[plan["indices"]])
    truthful = None if res["reported_s"] is None else bool(np.allclose(res["reported_s"], times[got], atol=1e-3))
    os.unlink(str(out) + ".npy")
    return {"method": method, "wall_s": res["wall_s"], "rss_mb": res["rss_mb"],
            "exact": int((err == 0).sum()), "n": len(got), "mean_err_s": float(err.mean()),
            "max_err_s": float(err.max()), "reports_true_times": truthful}


def plans_for(video: Path) -> list[dict]:
    from longlens.video import fast_plan, open_video, slow_plan

    info = open_video(video)
    times = info.times_s.tolist()
    mid = info.duration_s / 2
    out = []
    for p in (fast_plan(info, mode="accurate"), slow_plan(info, mid, mid + 30)):
        out.append({"kind": p.kind, "indices": list(p.indices), "height": p.height, "width": p.width,
                    "span_s": list(p.span_s), "all_times_s": times})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md with the results")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    video = ensure_video(args.minutes)
    dpy = decord_python()
    cache_dir = BENCH / "warm-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    me = Path(sys.executable)
    rows = {}
    for plan in plans_for(video):
        kind = plan["kind"]
        methods = [("keyframes", me), ("longlens-nearest", me), ("longlens-accurate", me), ("decord", dpy)]
        if kind == "slow":
            methods = [("longlens-accurate", me), ("decord", dpy)]
        # the warm run reads what a cold run with the cache wrote
        methods.append(("warm-nearest" if kind == "fast" else "warm-accurate", me))
        for method, py in methods:
            if method.startswith("warm"):
                # fill the cache with one cold run, then time a fresh process that only reads it
                fill_cache(me, video, plan, cache_dir, method.split("-")[1])
            print(f"  {kind:<4} {method:<18}", end=" ", flush=True)
            r = run_method(method, py, video, plan, cache_dir)
            rows[(kind, method)] = r
            print(f"{r['wall_s']:8.2f} s  {r['rss_mb']:6.0f} MB  exact {r['exact']}/{r['n']}  "
                  f"err mean {r['mean_err_s']:.2f} max {r['max_err_s']:.2f} s", flush=True)
    report = render(rows, video, args.minutes)
    print()
    print(report)
    if args.write_docs:
        write_docs(report)


def fill_cache(python: Path, video: Path, plan: dict, cache_dir: Path, mode: str) -> None:
    code = (
        "import sys; from longlens.video import *; c=FrameCache(sys.argv[2]); i=open_video(sys.argv[1], cache=c); "
        f"p=fast_plan(i, mode='{mode}') if '{plan['kind']}'=='fast' else slow_plan(i, {plan['span_s'][0]!r}, "
        f"{plan['span_s'][1]!r}, mode='{mode}'); decode(i, p, cache=c)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run([str(python), "-c", code, str(video), str(cache_dir)], check=True, env=env)


def render(rows: dict, video: Path, minutes: float) -> str:
    import platform

    lines = [
        f"Video: {video.name} ({minutes:g} min, 1280x720, 30 fps, H.264 superfast, keyframe every 5 s, "
        f"B-frames). Machine: {os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        "| plan | method | wall s | peak RSS MB | exact frames | mean err s | max err s | true times |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (kind, method), r in rows.items():
        lines.append(
            f"| {kind} | {method} | {r['wall_s']:.2f} | {r['rss_mb']:.0f} | {r['exact']}/{r['n']} | "
            f"{r['mean_err_s']:.2f} | {r['max_err_s']:.2f} | {_yes(r['reports_true_times'])} |"
        )
    w = {k: r["wall_s"] for k, r in rows.items()}
    m = {k: r["rss_mb"] for k, r in rows.items()}
    checks = [
        ("fast nearest cold / keyframe floor", w[("fast", "longlens-nearest")] / w[("fast", "keyframes")], "<=", 1.5),
        ("decord / fast nearest cold", w[("fast", "decord")] / w[("fast", "longlens-nearest")], ">=", 12),
        ("decord / fast accurate cold", w[("fast", "decord")] / w[("fast", "longlens-accurate")], ">=", 1.5),
        ("decord / fast warm (cache)", w[("fast", "decord")] / w[("fast", "warm-nearest")], ">=", 200),
        ("decord / slow accurate cold", w[("slow", "decord")] / w[("slow", "longlens-accurate")], ">=", 1.5),
        ("decord peak RSS / longlens worst peak RSS (fast)",
         m[("fast", "decord")] / max(m[("fast", "longlens-nearest")], m[("fast", "longlens-accurate")]), ">", 1.0),
    ]
    lines += ["", "| ratio | value | target | met |", "|---|---|---|---|"]
    for name, value, op, target in checks:
        ok = value <= target if op == "<=" else value >= target if op == ">=" else value > target
        lines.append(f"| {name} | {value:.2f}x | {op} {target}x | {'yes' if ok else 'NO'} |")
    return "\n".join(lines)


def _yes(flag: bool | None) -> str:
    return "n/a (reports none)" if flag is None else "yes" if flag else "NO"


def write_docs(report: str) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    start, end = "<!-- decode:start -->", "<!-- decode:end -->"
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n## Decoding\n\n{start}\n{end}\n"
    if start not in text:
        text += f"\n## Decoding\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    stamp = time.strftime("%Y-%m-%d")
    doc.write_text(f"{head}{start}\nMeasured {stamp} with `python benchmarks/decode.py`.\n\n{report}\n{end}{tail}")
    print(f"updated {doc}")


if __name__ == "__main__":
    main()
