"""`longlens eval BENCH --data FILE --videos DIR --out RUN_DIR`: a benchmark run, resumable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from longlens.agents.zoom import AGENTS, ZoomAgent, ZoomConfig
from longlens.backends.base import GenConfig
from longlens.backends.registry import BACKENDS, make_backend
from longlens.bench.adapters import LOADERS
from longlens.bench.metrics import summarize
from longlens.bench.scorers import EXTRACTORS, POLICIES
from longlens.cli._common import add_cache_options, cache_from
from longlens.errors import LongLensError
from longlens.prompts.zoom import LETTERS


def add_parser(sub, name):
    p = sub.add_parser(name, help="run an agent over a benchmark (resumable: rerun the same command to go on)",
                       description="Run an agent over a benchmark in its native format. Results are appended to "
                                   "RUN_DIR/results.jsonl as each question finishes; rerunning skips what is done.")
    p.add_argument("bench", choices=sorted(LOADERS))
    p.add_argument("--data", required=True, help="the benchmark's annotation file (MLVU: its json folder; "
                                                 "needles: an answer key or a folder of them)")
    p.add_argument("--videos", help="the videos folder (needles: default beside the keys)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (created; reused to resume)")
    p.add_argument("--agent", choices=AGENTS, default="zoom")
    p.add_argument("--backend", choices=BACKENDS, default="offline")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    p.add_argument("--model")
    p.add_argument("--model-path", metavar="DIR", help="hf backend: local model folder")
    p.add_argument("--script", help="scripted backend: JSON list of replies")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--max-steps", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=2048)
    p.add_argument("--limit", type=int, help="the first N questions only")
    p.add_argument("--concurrency", type=int, default=1, help="questions in flight (default 1)")
    p.add_argument("--extractor", choices=sorted(EXTRACTORS), default="robust",
                   help="how a letter is read from a reply: robust (default) or a benchmark's official rule")
    p.add_argument("--policy", choices=POLICIES, default="wrong",
                   help="unparsed replies: wrong (default), drop, random")
    p.add_argument("--mix", action="store_true", help="add to a run folder made with another configuration")
    add_cache_options(p)
    return p


def run(args) -> int:
    if args.bench != "needles" and not args.videos:
        raise LongLensError(f"{args.bench} needs --videos DIR (the folder with its video files)")
    loaded = LOADERS[args.bench](args.data, args.videos)
    samples = loaded.samples[: args.limit] if args.limit else loaded.samples
    missing = {s.video for s in samples} & set(loaded.missing)
    for path in sorted(missing):
        print(f"missing video: {path}", file=sys.stderr)
    runnable = [s for s in samples if s.video not in missing]
    cache = cache_from(args)
    backend = make_backend(args.backend, base_url=args.base_url, model=args.model, timeout_s=args.timeout,
                           script=args.script, model_path=args.model_path)
    backend.check()
    zoom = ZoomConfig(agent=args.agent, max_steps=args.max_steps, gen=GenConfig(max_new_tokens=args.max_new_tokens))
    agent = ZoomAgent(backend, zoom, cache=cache)
    config = {"bench": args.bench, "data": str(args.data), "agent": args.agent, "backend": backend.describe(),
              "zoom": {k: v for k, v in zoom.__dict__.items() if k not in ("policy", "gen")},
              "max_new_tokens": args.max_new_tokens, "extractor": args.extractor}

    from longlens.bench.runner import run_eval

    def progress(record, done, total):
        mark = "ok" if record["correct"] else ("unparsed" if record["parsed"] is None else "wrong")
        print(f"[{done}/{total}] {record['id']}: {mark}", flush=True)

    records = run_eval(runnable, lambda s: agent.run(s.video, s.question, s.options[: len(LETTERS)]), args.out,
                       config, concurrency=args.concurrency, extractor=args.extractor, mix=args.mix,
                       progress=progress)
    summary = summarize(records, args.bench, policy=args.policy)
    head = summary["headline"]
    summary.update({"questions": len(samples), "answered": len(records), "missing_videos": len(missing)})
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{head['name']} {head['value']:.3f} ± {head['se']:.3f} over {head['n']} ({summary['unparsed']} unparsed, "
          f"policy {args.policy}); {len(records)}/{len(samples)} answered, {len(missing)} missing videos; "
          f"results in {args.out}")
    return 0
