"""Navigate agent orchestration overhead: LongLens against the reference `cli.py` loop, in one run.

    python benchmarks/navigate_overhead.py --reference /path/to/LongVideo-R1   # a local checkout, outside this tree
    python benchmarks/navigate_overhead.py --reference DIR --write-docs         # also update docs/benchmarks.md

Both agents answer the same question several times on the same 60-minute generated video, against the
same scripted OpenAI-compatible servers (instant replies): a reasoning server replaying one ~10-round
trajectory (get_caption calls on medium and low nodes, two video_qa calls, an answer) and a VL server for
video_qa. Every caption is already in each agent's cache (the same texts: written in the reference CLI's
cache format, and imported from that file into LongLens's store), so no caption is made.

What is compared is orchestration: per question, wall time minus the time spent waiting for model
replies (each agent's own measurement around its model calls). The reference runs from the given
checkout (never copied into this project), in `.bench/decord-venv` (decord, openai, pillow, numpy; made by
`benchmarks/decode.py` or here), with the settings of its CLI: one `VideoReader` opened at start, 16
decode threads. LongLens runs in this interpreter with the reference CLI's caption settings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _docs import replace_section

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench"))
QUESTION = "Which word appears on the small white label?"
OPTIONS = ["SANDAL", "TABLE", "LAMP", "CHAIR"]
VQA_REPLY = "<reasoning>The label is visible in the middle frames.</reasoning><answer>The label reads SANDAL.</answer>"

REFERENCE_RUNNER = r'''
import contextlib, io, json, sys, time
from argparse import Namespace
sys.path.insert(0, sys.argv[1])
import cli
cfg = json.loads(sys.argv[2])
args = Namespace(video_path=cfg["video"], question=None, cache_dir=cfg["cache_dir"], max_rounds=30, api_key="x",
                 reasoning_base_url=cfg["reasoning"], reasoning_model="longvideor1", caption_base_url=cfg["vl"],
                 caption_model="vl", videoqa_base_url=cfg["vl"], videoqa_model="vl", decode_threads=16)
t0 = time.perf_counter()
demo = cli.LongVideoDemo(args)
init_s = time.perf_counter() - t0
out = []
for _ in range(cfg["questions"]):
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        r = demo.answer_question(cfg["question"])
        wall = time.perf_counter() - t0
    tm = r["timing"]
    model = tm["reasoning_model_seconds"] + tm["get_caption_model_seconds"] + tm["video_qa_model_seconds"]
    out.append({"wall_s": wall, "model_s": model, "answer": r["answer"], "rounds": int(tm["reasoning_model_calls"]),
                "caption_calls": int(tm["get_caption_model_calls"]), "videoqa_calls": int(tm["video_qa_model_calls"])})
print(json.dumps({"init_s": init_s, "questions": out}))
'''


def trajectory(width: int) -> list[str]:
    w = width
    calls = [f"get_caption(({2},{3}))", f"get_caption(({2},{3},{2}))", f"get_caption(({w},{1}))",
             f"get_caption(({w},{1},{w}))", f"get_caption(({1},{w}))", f"get_caption(({1},{w},{1}))",
             f'video_qa(({2},{3},{2}), "which word is on the label?")', f"get_caption(({3},{2},{1}))",
             f'video_qa(({w},{1},{w}), "is there a label in this segment?")']
    turns = [f"<think>Round {i + 1}: looking at the segment that may hold the label.</think>\n<tool>{c}</tool>"
             for i, c in enumerate(calls)]
    return [*turns, "<think>The label reads SANDAL, which is option A.</think>\n<answer>A</answer>"]


def write_captions(info, tree, ref_cache_dir: Path) -> dict:
    """Captions for every node, in the reference CLI's cache layout (what both agents will read)."""
    data = {"meta": {"video_path": os.path.abspath(info.path), "width": tree.width, "num_frames": info.n_frames,
                     "duration": round(info.n_frames / info.fps, 1)},
            "high": {}, "medium": {}, "low": {}}
    for node in tree.nodes.values():
        text = (f"This clip (video) from {node.first_s:.1f}s to {node.last_s:.1f}s shows a street scene with "
                f"people walking past shop windows; segment {node.key}. " * 6).strip()
        level = {1: "high", 2: "medium", 3: "low"}[node.level]
        data[level][node.key] = {"caption": text, "frame_time": [round(node.first_s, 1), round(node.last_s, 1)],
                                 "frame_ids": [node.first, node.last]}
    vp = os.path.abspath(info.path)
    name = f"{Path(vp).stem}_{hashlib.md5(vp.encode('utf-8')).hexdigest()[:8]}.json"
    ref_cache_dir.mkdir(parents=True, exist_ok=True)
    (ref_cache_dir / name).write_text(json.dumps(data, ensure_ascii=False, indent=2))
    return data


def run_reference(reference: Path, video: Path, cache_dir: Path, reasoning_url: str, vl_url: str, n: int) -> dict:
    py = BENCH / "decord-venv" / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(py.parents[1])], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "decord==0.6.0", "numpy", "pillow", "openai"], check=True)
    question = QUESTION + "\n" + "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(OPTIONS))
    cfg = {"video": str(video), "cache_dir": str(cache_dir), "reasoning": reasoning_url, "vl": vl_url,
           "questions": n, "question": question}
    out = subprocess.run([str(py), "-c", REFERENCE_RUNNER, str(reference), json.dumps(cfg)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_longlens(video: Path, reasoning_url: str, vl_url: str, n: int, cache_dir: Path) -> dict:
    from longlens.agents.navigate import NavigateAgent, NavigateConfig
    from longlens.agents.navigate.captions import CaptionSettings
    from longlens.backends.openai_client import OpenAIBackend
    from longlens.video import FrameCache

    cache = FrameCache(cache_dir)
    t0 = time.perf_counter()
    reasoning = OpenAIBackend(reasoning_url, "longvideor1")
    vl = OpenAIBackend(vl_url, "vl")
    agent = NavigateAgent(reasoning, videoqa=vl, caption_model="bench-captions", cache=cache,
                          config=NavigateConfig(captions=CaptionSettings(online=True)))
    init_s = time.perf_counter() - t0
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        trace = agent.run(video, QUESTION, OPTIONS)
        wall = time.perf_counter() - t0
        t = trace.totals
        out.append({"wall_s": wall, "model_s": t.model_s, "answer": trace.choice, "rounds": t.steps,
                    "caption_calls": t.calls["caption"], "videoqa_calls": t.calls["videoqa"]})
    return {"init_s": init_s, "questions": out}


def summary(name: str, res: dict) -> dict:
    qs = res["questions"]
    over = [q["wall_s"] - q["model_s"] for q in qs]
    return {"name": name, "init_s": res["init_s"], "first_overhead_s": over[0],
            "median_overhead_s": statistics.median(over), "median_wall_s": statistics.median(q["wall_s"] for q in qs),
            "median_model_s": statistics.median(q["model_s"] for q in qs), "rounds": qs[0]["rounds"],
            "caption_calls": qs[0]["caption_calls"], "videoqa_calls": qs[0]["videoqa_calls"],
            "answers": sorted({str(q["answer"]) for q in qs})}


def table(video: Path, info, width: int, n: int, rows: list[dict]) -> str:
    lines = [f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/navigate_overhead.py`; video "
             f"{video.name} ({info.duration_s / 60:.0f} min, {info.width}x{info.height}, tree width {width}); "
             f"{n} questions each, same scripted trajectory; machine: {os.cpu_count()} cores.", "",
             "| agent | start-up s | overhead, first question s | overhead, median s | wall, median s "
             "| model wait, median s | rounds | captions made | video_qa calls | answers |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['init_s']:.2f} | {r['first_overhead_s']:.3f} | {r['median_overhead_s']:.3f} "
                     f"| {r['median_wall_s']:.3f} | {r['median_model_s']:.3f} | {r['rounds']} | {r['caption_calls']} "
                     f"| {r['videoqa_calls']} | {', '.join(r['answers'])} |")
    ours, ref = rows
    ratio = ours["median_overhead_s"] / ref["median_overhead_s"]
    first = ours["first_overhead_s"] / ref["first_overhead_s"]
    lines += ["", "| ratio | value | target | met |", "|---|---|---|---|",
              f"| LongLens / reference overhead per question (median) | {ratio:.3f} | <= 0.2 | "
              f"{'yes' if ratio <= 0.2 else 'no'} |",
              f"| LongLens / reference overhead, first question (cold frames) | {first:.3f} | - | - |"]
    return "\n".join(lines) + "\n"


def write_docs(text: str) -> None:
    replace_section(ROOT / "docs" / "benchmarks.md", "navigate_overhead", text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True, type=Path,
                    help="a local checkout of qiujihao19/LongVideo-R1 (the folder holding cli.py), outside this tree")
    ap.add_argument("--video", type=Path, default=BENCH / "bench-60min-720p30.mp4",
                    help="the video (default: the decode benchmark's 60-minute video, made if missing)")
    ap.add_argument("--questions", type=int, default=5)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    if not (args.reference / "cli.py").is_file():
        sys.exit(f"{args.reference}: no cli.py; give a checkout of qiujihao19/LongVideo-R1")
    if ROOT in args.reference.resolve().parents:
        sys.exit("keep the reference outside this project tree")
    from longlens.agents.navigate.captions import CaptionSettings, CaptionTree
    from longlens.backends.scripted_server import ScriptedServer
    from longlens.video import FrameCache, open_video

    if not args.video.exists():
        from longlens.synth import make_video

        print(f"making {args.video.name} (60 min) ...", flush=True)
        make_video(args.video, duration_s=3600, width=1280, height=720, fps=30, gop_s=5.0, seed=1, needles=6,
                   preset="superfast")
    work = BENCH / "navigate"
    shutil.rmtree(work, ignore_errors=True)  # cold caches: the first question decodes its frames
    ours_cache = work / "longlens-cache"
    info = open_video(args.video, cache=FrameCache(ours_cache))
    tree = CaptionTree.open(info, None, CaptionSettings(online=True), cache=FrameCache(ours_cache),
                            model="bench-captions")
    data = write_captions(info, tree.tree, work / "reference-cache")
    tree.import_reference(data)
    turns = trajectory(tree.tree.width)
    n = args.questions
    with ScriptedServer(turns * n, model="longvideor1") as reasoner, \
            ScriptedServer([VQA_REPLY], model="vl", repeat_last=True) as vl:
        print("reference ...", flush=True)
        ref = run_reference(args.reference, args.video, work / "reference-cache", reasoner.url, vl.url, n)
    with ScriptedServer(turns * n, model="longvideor1") as reasoner, \
            ScriptedServer([VQA_REPLY], model="vl", repeat_last=True) as vl:
        print("longlens ...", flush=True)
        ours = run_longlens(args.video, reasoner.url, vl.url, n, ours_cache)
    rows = [summary("longlens", ours), summary("reference cli.py", ref)]
    text = table(args.video, info, tree.tree.width, n, rows)
    print(text)
    (work / "results.json").write_text(json.dumps({"longlens": ours, "reference": ref}, indent=1))
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
