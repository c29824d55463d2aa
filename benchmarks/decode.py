"""Decode benchmark: LongLens against decord and the frames any exact decoder must decode, in one run.

    python benchmarks/decode.py                  # realistic 60-minute 720p videos, GOP 250 and GOP 60
    python benchmarks/decode.py --minutes 30     # shorter videos (whole 100-s segments)
    python benchmarks/decode.py --synthetic      # also the synthetic needle video (the earlier headline)
    python benchmarks/decode.py --hevc-minutes 20  # also a 20-minute HEVC one
    python benchmarks/decode.py --write-docs     # also update docs/benchmarks.md

The videos are made by `benchmarks/realistic.py` (1280x720 30 fps H.264 at 3.5 Mbit/s, x264 medium, no
scene-cut keyframes, like real uploads) once under .bench/. Every method runs in a fresh process (so its peak
RSS and CPU time are its own); every returned frame's index is read back from the code in its top band, so
the "exact" and error columns come from the pixels, not from what a method says it returned.

Anchors, measured in the same run:
- decord ``VideoReader(width=, height=).get_batch``: what both reference implementations call (its own
  virtualenv under .bench/, made on first use). It resizes inside its decoder and draws no stamps.
- the **minimum frames**: for each GOP holding a target, the frames from its keyframe to the last target in
  decode order that are references (H.264 ``nal_ref_idc`` > 0, HEVC non-``_N`` types) or targets. Any exact
  decoder must decode at least these (a reference frame before a target may be referenced by it); frames
  nothing refers to can be skipped, and nothing after the last target is needed.
- PyAV keyframe-only decoding (``skip_frame="NONKEY"``): the floor of the approximate (`nearest`) mode.

Also timed: where LongLens's time goes (one worker thread: demuxing, decoding, RGB conversion, stamps,
resizing), and opening a 3-hour MP4 from its sample tables against demuxing every packet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "src"))

from _docs import replace_section  # noqa: E402
from realistic import SEGMENT, describe, frame_index, realistic_video  # noqa: E402


# ------------------------------------------------------------------ workers (one per process)
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(method: str, video: str, plan_file: str, out: str, cache_dir: str) -> None:
    plan = json.loads(Path(plan_file).read_text())
    idx, h, w = plan["indices"], plan["height"], plan["width"]
    extra: dict = {}
    if method == "profile":
        Path(out + ".json").write_text(json.dumps(profile(video, plan)))
        return
    if method == "decord":
        import decord

        t0, c0 = time.perf_counter(), _cpu_s()
        vr = decord.VideoReader(video, ctx=decord.cpu(0), width=w, height=h, num_threads=0)
        frames = vr.get_batch(idx).asnumpy()
        reported = None
    elif method == "keyframes":
        import av

        t0, c0 = time.perf_counter(), _cpu_s()
        targets = np.asarray(plan["all_times_s"])[idx]
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
        reported = [float(key_t[i]) for i in pick]
    else:
        from longlens.video import FrameCache, decode, fast_plan, open_video, slow_plan

        mode = "accurate" if method.endswith("accurate") else "nearest"
        t0, c0 = time.perf_counter(), _cpu_s()
        cache = FrameCache(cache_dir) if method.startswith("warm") else None
        info = open_video(video, cache=cache)
        extra["open_s"] = time.perf_counter() - t0
        p = fast_plan(info, mode=mode) if plan["kind"] == "fast" else slow_plan(info, *plan["span_s"], mode=mode)
        assert list(p.indices) == idx and (p.height, p.width) == (h, w)
        fs = decode(info, p, cache=cache)
        frames, reported = np.asarray(fs.frames), list(fs.times_s)
        extra["decoded"] = fs.decoded_frames
        if method.startswith("warm"):
            assert fs.from_cache, "warm run did not hit the cache"
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    np.save(out + ".npy", frames)
    Path(out + ".json").write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, "rss_mb": _rss_mb(),
                                               "reported_s": reported, **extra}))


def profile(video: str, plan: dict) -> dict:
    """Where LongLens's exact decode of `plan` spends its time, on one worker thread (CPU seconds)."""
    import importlib

    import av

    from longlens.video import fast_plan, open_video, slow_plan
    from longlens.video.stamps import draw_stamp_rgb

    dec = importlib.import_module("longlens.video.decode")  # the module (longlens.video.decode is the function)
    info = open_video(video)
    p = fast_plan(info) if plan["kind"] == "fast" else slow_plan(info, *plan["span_s"])
    groups = dec._gop_groups(info, np.unique(dec.choose_frames(info, p)))
    # demuxing only: the packets each GOP's decode reads
    c0 = _cpu_s()
    container = av.open(video)
    stream = container.streams.video[0]
    for key, members in groups:
        last = int(info.pts[members[-1]])
        container.seek(int(info.pts[key]), stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.pts is not None and packet.pts >= last:
                break
    container.close()
    demux = _cpu_s() - c0
    # decoding with the conversion timed piece by piece
    parts = {"to_rgb": 0.0, "stamp": 0.0, "resize": 0.0}

    def convert(self, frame, index):
        t = time.thread_time()
        rgb = frame.to_ndarray(format="rgb24")
        t1 = time.thread_time()
        draw_stamp_rgb(rgb, str(info.second_of(index)))
        t2 = time.thread_time()
        out = av.VideoFrame.from_ndarray(rgb, format="rgb24").to_ndarray(
            format="rgb24", width=p.width, height=p.height, interpolation="BICUBIC")
        t3 = time.thread_time()
        parts["to_rgb"] += t1 - t
        parts["stamp"] += t2 - t1
        parts["resize"] += t3 - t2
        return out

    dec._Converter.__call__ = convert
    c0 = _cpu_s()
    fs = dec.decode(info, p, workers=1)
    total = _cpu_s() - c0
    decode_s = total - sum(parts.values()) - demux
    return {"demux": demux, "decode": decode_s, **parts, "total": total, "decoded": fs.decoded_frames,
            "targets": len(p.indices)}


# ------------------------------------------------------------------ the minimum an exact decoder decodes
def _is_reference(data: bytes, codec: str) -> bool:
    """Whether a packet's first picture slice may be referenced (length-prefixed NAL units, as in MP4)."""
    i = 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        head = data[i + 4]
        if codec == "h264":
            if head & 31 in (1, 5):
                return (head >> 5) & 3 != 0
        elif (head >> 1) & 63 < 32:  # hevc VCL: even types below 16 are sub-layer non-reference
            kind = (head >> 1) & 63
            return not (kind < 16 and kind % 2 == 0)
        i += 4 + n
    return True


def packet_table(video: Path) -> dict:
    import av

    with av.open(str(video)) as c:
        s = c.streams.video[0]
        codec = s.codec_context.name
        rows = [(p.pts, p.is_keyframe, _is_reference(bytes(p), codec)) for p in c.demux(s) if p.size]
    pts = np.array([r[0] for r in rows])
    return {"order": np.argsort(pts, kind="stable"), "key": np.array([r[1] for r in rows]),
            "ref": np.array([r[2] for r in rows])}


def minimum_frames(table: dict, targets) -> int:
    """Frames any exact decoder must decode for `targets` (display indices): see the module doc."""
    pos = np.unique(table["order"][np.asarray(targets)])  # decode positions of the targets
    keys = np.flatnonzero(table["key"])
    need = np.zeros(len(table["ref"]), bool)
    gop = np.searchsorted(keys, pos, side="right") - 1
    for g in np.unique(gop):
        k, last = keys[g], pos[gop == g].max()
        need[k : last + 1] |= table["ref"][k : last + 1]
    need[pos] = True
    return int(need.sum())


# ------------------------------------------------------------------ driver
def synthetic_video(minutes: float) -> Path:
    from longlens.synth import make_video

    path = BENCH / f"bench-{minutes:g}min-720p30.mp4"
    if not path.exists():
        BENCH.mkdir(parents=True, exist_ok=True)
        print(f"making {path.name} (once) ...", flush=True)
        tmp = path.with_suffix(".part.mp4")
        make_video(tmp, duration_s=minutes * 60, width=1280, height=720, fps=30, gop_s=5.0, seed=7,
                   needles=0, preset="superfast", frame_code=True, key_path=path.with_suffix(".json"))
        tmp.rename(path)
    return path


def decord_python() -> Path:
    venv = BENCH / "decord-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        print("creating the decord environment (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "decord==0.6.0", "numpy"], check=True)
    return py


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src"))


def run_method(method: str, python: Path, video: Path, plan: dict, cache_dir: Path) -> dict:
    from longlens.synth import read_frame_code

    plan_file = BENCH / "plan.json"
    plan_file.write_text(json.dumps(plan))
    out = BENCH / f"out-{method}-{plan['kind']}"
    cmd = [str(python), __file__, "--worker", method, str(video), str(plan_file), str(out), str(cache_dir)]
    subprocess.run(cmd, check=True, env=_env())
    res = json.loads(Path(str(out) + ".json").read_text())
    if method == "profile":
        return res
    frames = np.load(str(out) + ".npy")
    os.unlink(str(out) + ".npy")
    targets = np.asarray(plan["indices"])
    got = np.array([read_frame_code(f) for f in frames])
    if plan["segment"]:
        got = frame_index(got, targets)
    times = np.asarray(plan["all_times_s"])
    err = np.abs(times[got] - times[targets])
    truthful = None if res["reported_s"] is None else bool(np.allclose(res["reported_s"], times[got], atol=1e-3))
    return {**res, "method": method, "exact": int((err == 0).sum()), "n": len(got), "mean_err_s": float(err.mean()),
            "max_err_s": float(err.max()), "reports_true_times": truthful}


def plans_for(video: Path, segment: int | None) -> list[dict]:
    from longlens.video import fast_plan, open_video, slow_plan

    info = open_video(video)
    times = info.times_s.tolist()
    mid = info.duration_s / 2
    return [{"kind": p.kind, "indices": list(p.indices), "height": p.height, "width": p.width,
             "span_s": list(p.span_s), "all_times_s": times, "segment": segment}
            for p in (fast_plan(info, mode="accurate"), slow_plan(info, mid, mid + 30))]


def fill_cache(python: Path, video: Path, plan: dict, cache_dir: Path, mode: str) -> None:
    code = (
        "import sys; from longlens.video import *; c=FrameCache(sys.argv[2]); i=open_video(sys.argv[1], cache=c); "
        f"p=fast_plan(i, mode='{mode}') if '{plan['kind']}'=='fast' else slow_plan(i, {plan['span_s'][0]!r}, "
        f"{plan['span_s'][1]!r}, mode='{mode}'); decode(i, p, cache=c)"
    )
    subprocess.run([str(python), "-c", code, str(video), str(cache_dir)], check=True, env=_env())


STORE = BENCH / "decode-results.json"


def _stored() -> dict:
    return json.loads(STORE.read_text()) if STORE.exists() else {}


def _store(key: str, row: dict) -> None:
    rows = _stored()
    rows[key] = row
    STORE.write_text(json.dumps(rows))


def bench_video(name: str, video: Path, segment: int | None, dpy: Path, reuse: bool = False) -> dict:
    me = Path(sys.executable)
    cache_dir = BENCH / "warm-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    table = packet_table(video)
    out: dict = {"name": name, "describe": describe(video), "rows": {}, "minimum": {}, "frames": len(table["ref"]),
                 "refs": int(table["ref"].sum()), "keys": int(table["key"].sum())}
    print(out["describe"], flush=True)
    for plan in plans_for(video, segment):
        kind = plan["kind"]
        out["minimum"][kind] = minimum_frames(table, plan["indices"])
        methods = [("decord", dpy), ("longlens-accurate", me), ("warm-accurate", me)]
        if kind == "fast":
            methods[2:2] = [("longlens-nearest", me), ("keyframes", me)]
        for method, py in methods:
            key = f"{video.name}|{kind}|{method}"
            print(f"  {kind:<4} {method:<18}", end=" ", flush=True)
            if reuse and key in _stored():  # measured by an earlier run of this script (--reuse)
                r = _stored()[key]
            else:
                if method.startswith("warm"):  # a cold run fills the cache; a fresh process only reads it
                    fill_cache(me, video, plan, cache_dir, method.split("-")[1])
                r = run_method(method, py, video, plan, cache_dir)
                _store(key, r)
            out["rows"][(kind, method)] = r
            print(f"{r['wall_s']:8.2f} s  cpu {r['cpu_s']:7.2f} s  {r['rss_mb']:6.0f} MB  exact {r['exact']}/{r['n']}  "
                  f"decoded {r.get('decoded', '-')} (minimum {out['minimum'][kind]})", flush=True)
        key = f"{video.name}|{kind}|profile"
        if not (reuse and key in _stored()):
            _store(key, run_method("profile", me, video, plan, cache_dir))
        out["profile", kind] = _stored()[key]
    shutil.rmtree(cache_dir, ignore_errors=True)
    return out


# ------------------------------------------------------------------ opening a long MP4
def open_worker(video: str, how: str, out: str) -> None:
    import av

    from longlens.video import open_video

    t0, c0 = time.perf_counter(), _cpu_s()
    if how == "av.open":  # the floor: FFmpeg's own opening of the file, which every decode of it starts with
        with av.open(video) as c:
            frames, source = c.streams.video[0].frames, "av.open"
    else:
        info = open_video(video, from_index=how == "index")
        frames, source = info.n_frames, info.index_source
    Path(out).write_text(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": _cpu_s() - c0,
                                     "source": source, "frames": frames}))


def bench_open(video: Path, repeats: int = 5) -> dict:
    """Fresh processes, the three ways interleaved, after one demux that is not counted: the whole file is then in
    the page cache, the fastest the demux anchor gets (a cold cache only slows the anchor)."""
    res: dict = {"describe": describe(video), "index": [], "demux": [], "av.open": []}
    out = BENCH / "open.json"

    def run(how: str) -> dict:
        subprocess.run([sys.executable, __file__, "--open-worker", str(video), how, str(out)], check=True, env=_env())
        return json.loads(out.read_text())

    run("demux")
    for _ in range(repeats):
        for how in ("index", "demux", "av.open"):
            res[how].append(run(how))
    out.unlink()
    for how in ("index", "demux", "av.open"):
        res[how + "_s"] = statistics.median(r["wall_s"] for r in res[how])
    print(f"open {video.name}: index {res['index_s']:.3f} s ({res['index'][0]['source']}), "
          f"demux {res['demux_s']:.2f} s, av.open alone {res['av.open_s']:.3f} s", flush=True)
    return res


# ------------------------------------------------------------------ report
def render(results: list[dict], opened: dict | None) -> str:
    lines = [f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; wall and CPU seconds from "
             "opening the file to the plan's RGB frames in memory, each method a fresh process.", ""]
    checks = []
    for res in results:
        name, rows, mins = res["name"], res["rows"], res["minimum"]
        lines += [f"**{name}**: {res['describe']}; {res['frames']} frames, {res['refs']} of them references, "
                  f"{res['keys']} keyframes.", "",
                  "| plan | method | wall s | CPU s | peak RSS MB | frames decoded | exact frames | mean err s | "
                  "max err s |", "|---|---|---:|---:|---:|---:|---|---:|---:|"]
        for (kind, method), r in rows.items():
            decoded = r.get("decoded")
            dec = "-" if decoded is None else f"{decoded} ({decoded / mins[kind]:.2f}x min)" if decoded else "0"
            lines.append(f"| {kind} | {method} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['rss_mb']:.0f} | {dec} | "
                         f"{r['exact']}/{r['n']} | {r['mean_err_s']:.2f} | {r['max_err_s']:.2f} |")
        lines += ["", f"Minimum frames an exact decoder decodes: fast {mins['fast']}, slow {mins['slow']}.", ""]
        for kind in ("fast", "slow"):
            d, a = rows[(kind, "decord")], rows[(kind, "longlens-accurate")]
            target = 3 if kind == "fast" else 2
            prof = res["profile", kind]
            per_frame = prof["decode"] / max(prof["decoded"], 1)
            floor_cpu = mins[kind] * per_frame
            checks += [
                (f"{name}, {kind}: decord / accurate, wall", d["wall_s"] / a["wall_s"], ">=", target),
                (f"{name}, {kind}: decord / accurate, CPU", d["cpu_s"] / a["cpu_s"], ">=", target),
                (f"{name}, {kind}: frames decoded / minimum", a["decoded"] / mins[kind], "<=", 1.2),
                (f"{name}, {kind}: decord CPU / the minimum's decode CPU (the physics bound)",
                 d["cpu_s"] / floor_cpu, "-", None),
            ]
        n, k = rows[("fast", "longlens-nearest")], rows[("fast", "keyframes")]
        checks += [(f"{name}, fast: accurate / nearest, wall (what exactness costs)",
                    rows[("fast", "longlens-accurate")]["wall_s"] / n["wall_s"], "-", None),
                   (f"{name}, fast: nearest / keyframe-only floor, wall", n["wall_s"] / k["wall_s"], "-", None),
                   (f"{name}, fast: decord / warm cache, wall", rows[("fast", "decord")]["wall_s"]
                    / rows[("fast", "warm-accurate")]["wall_s"], "-", None)]
    lines += ["Where LongLens's exact decode spends its CPU (one worker thread, seconds):", "",
              "| video | plan | demux | decode | to RGB | stamps | resize | total | frames decoded | decode ms/frame |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        for kind in ("fast", "slow"):
            p = res["profile", kind]
            lines.append(f"| {res['name']} | {kind} | {p['demux']:.2f} | {p['decode']:.2f} | {p['to_rgb']:.2f} | "
                         f"{p['stamp']:.2f} | {p['resize']:.2f} | {p['total']:.2f} | {p['decoded']} | "
                         f"{1000 * p['decode'] / max(p['decoded'], 1):.2f} |")
    if opened:
        ratio = opened["demux_s"] / opened["index_s"]
        lines += ["", f"Opening {opened['describe']} (fresh processes, no frame cache, the file in the page cache, "
                      f"median of {len(opened['index'])}): from the sample tables {opened['index_s']:.3f} s, "
                      f"demuxing every packet {opened['demux_s']:.2f} s; FFmpeg's own `av.open` of the file "
                      f"alone (the floor: every decode starts with it) {opened['av.open_s']:.3f} s.", ""]
        checks += [("open 3-hour MP4 from its index, s", opened["index_s"], "<=", 0.5),
                   ("open 3-hour MP4: demux / index", ratio, ">=", 20)]
    lines += ["", "| ratio | value | target | met |", "|---|---|---|---|"]
    for label, value, op, target in checks:
        if target is None:
            lines.append(f"| {label} | {value:.2f}x | - | - |")
            continue
        ok = value <= target if op == "<=" else value >= target
        unit = "" if label.endswith(", s") else "x"
        lines.append(f"| {label} | {value:.2f}{unit} | {op} {target}{unit} | {'yes' if ok else 'NO'} |")
    return "\n".join(lines)


def write_docs(report: str, argv: str) -> None:
    stamp = time.strftime("%Y-%m-%d")
    replace_section(ROOT / "docs" / "benchmarks.md", "decode",
                    f"Measured {stamp} with `python benchmarks/decode.py{argv}`.\n\n{report}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--open-hours", type=float, default=3, help="length of the MP4 opened (0: skip)")
    ap.add_argument("--synthetic", action="store_true", help="also the synthetic needle video")
    ap.add_argument("--hevc-minutes", type=float, default=0,
                    help="also an HEVC (x265, GOP 250) realistic video this long (0: none; its encode takes minutes)")
    ap.add_argument("--only", choices=["gop250", "gop60", "hevc", "synthetic", "open"], help="one part only")
    ap.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md with the results")
    ap.add_argument("--reuse", action="store_true", help="keep rows an earlier run measured")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--open-worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(*args.worker)
    if args.open_worker:
        return open_worker(*args.open_worker)
    dpy = decord_python()
    results = []
    for name, gop in (("realistic, GOP 250", 250), ("realistic, GOP 60", 60)):
        if args.only in (None, f"gop{gop}"):
            results.append(bench_video(name, realistic_video(args.minutes, gop), SEGMENT, dpy, args.reuse))
    if args.hevc_minutes and args.only in (None, "hevc"):
        video = realistic_video(args.hevc_minutes, 250, "hevc")
        results.append(bench_video("realistic HEVC, GOP 250", video, SEGMENT, dpy, args.reuse))
    if args.synthetic or args.only == "synthetic":
        results.append(bench_video("synthetic", synthetic_video(args.minutes), None, dpy, args.reuse))
    opened = None
    if args.open_hours and args.only in (None, "open"):
        opened = bench_open(realistic_video(args.open_hours * 60, 250))
    report = render(results, opened)
    print()
    print(report)
    if args.write_docs:
        write_docs(report, "".join(f" {a}" for a in sys.argv[1:] if a not in ("--write-docs", "--reuse")))


if __name__ == "__main__":
    main()
