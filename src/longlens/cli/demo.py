"""`longlens demo`: a synthetic long video with a hidden text needle, answered by the offline zoom agent.

Makes a 10-minute 720p video (once; it is kept in the cache folder) with one small text label that is
unreadable in the fast view, asks its multiple-choice question with the embedded offline backend, and
prints each step, the answer against the truth, and where the trace and the contact sheets are.
"""

from __future__ import annotations

import time
from pathlib import Path

from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends.offline import OfflineBackend
from longlens.cli._common import add_cache_options, cache_from
from longlens.cli.ask import report
from longlens.cli.plan import describe
from longlens.synth import load_answer_key, make_video
from longlens.video import decode, default_cache_dir, fast_plan, open_video, slow_plan
from longlens.video.sheet import contact_sheet


def add_parser(sub, name):
    p = sub.add_parser(name, help="make a synthetic video with a hidden needle and answer its question offline",
                       description="Make a synthetic long video with a known answer and answer it offline.")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the demo video (default: 10)")
    p.add_argument("--out", help="folder for the video, trace and contact sheets (default: <cache>/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic video (default: 0)")
    add_cache_options(p)
    return p


def run(args) -> int:
    cache = cache_from(args)
    out = Path(args.out) if args.out else (cache.root if cache else default_cache_dir()) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    video = out / f"demo-{args.minutes:g}min-seed{args.seed}.mp4"
    key_path = video.with_suffix(".json")
    if video.exists() and key_path.exists():
        key = load_answer_key(key_path)
        print(f"video     {video} (made earlier)")
    else:
        t0 = time.perf_counter()
        print(f"making a {args.minutes:g}-minute 1280x720 synthetic video with a small text needle ...", flush=True)
        key = make_video(video, duration_s=args.minutes * 60, seed=args.seed, needles=1, needle_kinds=("text",))
        print(f"video     {video} ({time.perf_counter() - t0:.0f} s to make)")
    needle = key.needles[0]
    print(f"needle    {needle.content!r} on screen {needle.start_s:.1f}-{needle.end_s:.1f} s (hidden from the agent)")
    print(f"question  {needle.question}")
    for letter, option in zip("ABCD", needle.options, strict=False):
        print(f"          {letter}. {option}")
    info = open_video(video, cache=cache)
    print(f"plan      {describe(fast_plan(info))}")
    backend = OfflineBackend()
    backend.check()
    trace = ZoomAgent(backend, ZoomConfig(), cache=cache).run(info, needle.question, needle.options)
    report(trace)
    verdict = "right" if trace.choice == needle.answer else f"wrong (the answer is {needle.answer})"
    print(f"verdict   {verdict}")
    trace_path = trace.save(out / f"{video.stem}-trace.json")
    print(f"trace     {trace_path}")
    sheets = [("fast", fast_plan(info))]
    clip = next((s.clip_added for s in trace.steps if s.clip_added), None)
    if clip:
        sheets.append(("zoom", slow_plan(info, *clip)))
    for name, plan in sheets:
        path = out / f"{video.stem}-{name}.jpg"
        contact_sheet(decode(info, plan, cache=cache).frames).save(path, quality=88)
        print(f"sheet     {path}")
    return 0
