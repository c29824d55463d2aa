"""`longlens eval BENCH --data FILE --videos DIR --out RUN_DIR`: a benchmark run, resumable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from longlens.agents.trace import Trace
from longlens.agents.zoom import AGENTS, ZoomAgent, ZoomConfig
from longlens.backends.base import GenConfig
from longlens.backends.pool import BALANCE
from longlens.backends.registry import BACKENDS, make_backend
from longlens.bench.adapters import LOADERS
from longlens.bench.metrics import summarize
from longlens.bench.sample import Sample
from longlens.bench.scorers import EXTRACTORS, POLICIES
from longlens.cli._common import add_cache_options, cache_from
from longlens.cli.roles import add_role_options, role_backends
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
    p.add_argument("--agent", choices=(*AGENTS, "navigate"), default="zoom",
                   help="zoom (default), a zoom baseline, or navigate (give its roles below)")
    p.add_argument("--backend", choices=BACKENDS, default="offline")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    p.add_argument("--endpoints", metavar="URL1,URL2,...",
                   help="openai backend: several servers of one model, calls spread over them (instead of --base-url)")
    p.add_argument("--balance", choices=BALANCE, default="least-busy",
                   help="how calls are spread over --endpoints: least-busy (default) or round-robin")
    p.add_argument("--model")
    p.add_argument("--model-path", metavar="DIR", help="hf backend: local model folder")
    p.add_argument("--script", help="scripted backend: JSON list of replies")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--max-steps", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=2048)
    p.add_argument("--limit", type=int, help="the first N questions only")
    p.add_argument("--concurrency", type=int, default=1,
                   help="questions in flight (default 1); questions on one video share its decoded frames")
    p.add_argument("--extractor", choices=sorted(EXTRACTORS), default="robust",
                   help="how a letter is read from a reply: robust (default) or a benchmark's official rule")
    p.add_argument("--policy", choices=POLICIES, default="wrong",
                   help="unparsed replies: wrong (default), drop, random")
    p.add_argument("--mix", action="store_true", help="add to a run folder made with another configuration")
    nav = p.add_argument_group("navigate agent (as in longlens ask --agent navigate)")
    nav.add_argument("--max-rounds", type=int, default=30, help="reasoning calls at most (default 30)")
    nav.add_argument("--on-invalid", choices=["feedback", "retry"], default="feedback",
                     help="an invalid turn is explained to the model (default) or re-asked (at most twice)")
    nav.add_argument("--require-think", action="store_true", help="send the 'think first' message when <think> "
                                                                   "is missing (the reference evaluation)")
    nav.add_argument("--videoqa-rule", choices=["allow", "refuse"], default="allow",
                     help="video_qa on a leaf whose caption was not read: allowed (reference) or refused")
    nav.add_argument("--online-captions", action="store_true",
                     help="the reference CLI's caption settings (64/32/16 frames, 300 words)")
    nav.add_argument("--width", type=int, help="tree width (default: round((D/16)^(1/3)) in [4, 8])")
    nav.add_argument("--min-width", type=int, help="lowest width of the cube-root rule (MLVU: 3)")
    add_role_options(p)
    add_cache_options(p)
    return p


def ask_agent(agent, sample: Sample) -> Trace:
    """The one place a benchmark question becomes an agent call.

    Grounding questions (``sample.task`` "grounding" or "grounded_choice") are asked as they are for now:
    question and options unchanged, no span requested.
    """
    return agent.run(sample.video, sample.question, sample.options[: len(LETTERS)])


def zoom_agent(args, cache) -> tuple[ZoomAgent, dict]:
    endpoints = [u.strip() for u in (args.endpoints or "").split(",") if u.strip()] or None
    backend = make_backend(args.backend, base_url=args.base_url, model=args.model, timeout_s=args.timeout,
                           script=args.script, model_path=args.model_path, endpoints=endpoints, balance=args.balance)
    backend.check()
    zoom = ZoomConfig(agent=args.agent, max_steps=args.max_steps, gen=GenConfig(max_new_tokens=args.max_new_tokens))
    config = {"backend": backend.describe(),
              "zoom": {k: v for k, v in zoom.__dict__.items() if k not in ("policy", "gen")}}
    return ZoomAgent(backend, zoom, cache=cache), config


def navigate_agent(args, cache):
    from dataclasses import asdict

    from longlens.agents.captions import CaptionSettings
    from longlens.agents.navigate import NavigateAgent, NavigateConfig

    roles = role_backends(args, timeout_s=args.timeout)
    if roles["reasoning"] is None:
        raise LongLensError("the navigate agent needs a reasoning model: --reasoning-url URL (or "
                            "--reasoning-script FILE)")
    if roles["caption"] is None and not args.caption_model:
        raise LongLensError("the navigate agent needs captions: --caption-url URL for a caption model, or "
                            "--caption-model NAME to read trees built or imported earlier")
    captions = CaptionSettings(online=args.online_captions, width=args.width, min_width=args.min_width)
    nav = NavigateConfig(max_rounds=args.max_rounds, on_invalid=args.on_invalid, require_think=args.require_think,
                         videoqa_needs_caption=args.videoqa_rule, captions=captions,
                         gen=GenConfig(max_new_tokens=args.max_new_tokens))
    agent = NavigateAgent(roles["reasoning"], caption=roles["caption"], videoqa=roles["videoqa"], config=nav,
                          cache=cache, caption_model=args.caption_model)
    navigate = {k: v for k, v in asdict(nav).items() if k not in ("gen", "videoqa_gen")}
    config = {"backend": roles["reasoning"].describe(), "caption_model": agent.caption_model,
              "roles": {r: b.describe() if b else None for r, b in roles.items()}, "navigate": navigate}
    return agent, config


def run(args) -> int:
    from longlens.bench.progress import Progress
    from longlens.bench.runner import RunFolder, cost_summary, run_eval

    if args.bench != "needles" and not args.videos:
        raise LongLensError(f"{args.bench} needs --videos DIR (the folder with its video files)")
    if args.concurrency < 1:
        raise LongLensError(f"--concurrency must be 1 or more, got {args.concurrency}")
    loaded = LOADERS[args.bench](args.data, args.videos)
    samples = loaded.samples[: args.limit] if args.limit else loaded.samples
    missing = {s.video for s in samples} & set(loaded.missing)
    for path in sorted(missing):
        print(f"missing video: {path}", file=sys.stderr)
    runnable = [s for s in samples if s.video not in missing]
    cache = cache_from(args)
    agent, agent_config = (navigate_agent if args.agent == "navigate" else zoom_agent)(args, cache)
    config = {"bench": args.bench, "data": str(args.data), "agent": args.agent, **agent_config,
              "max_new_tokens": args.max_new_tokens, "extractor": args.extractor}

    ids = {s.id for s in runnable}
    previous = [r for r in RunFolder(Path(args.out)).records() if r.get("id") in ids]
    with Progress(len(runnable), previous) as progress:
        prefetch = getattr(agent, "prefetch", None)  # the zoom agent decodes the next video ahead
        records = run_eval(runnable, lambda s: ask_agent(agent, s), args.out, config, concurrency=args.concurrency,
                           extractor=args.extractor, mix=args.mix, progress=progress,
                           prepare=(lambda s: prefetch(s.video)) if prefetch else None)
    summary = summarize(records, args.bench, policy=args.policy)
    head = summary["headline"]
    cost = cost_summary(records)
    summary.update({"questions": len(samples), "answered": len(records), "missing_videos": len(missing),
                    "cost": cost})
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1))
    per = cost["per_question"]
    print(f"{head['name']} {head['value']:.3f} ± {head['se']:.3f} over {head['n']} ({summary['unparsed']} unparsed, "
          f"policy {args.policy}); {len(records)}/{len(samples)} answered, {len(missing)} missing videos; "
          f"results in {args.out}")
    print(f"cost per question: {per['steps']:g} steps, {per['frames_decoded']:g} frames decoded, "
          f"{per['visual_tokens']:,.0f} visual + {per['text_tokens']:,.0f} text tokens, {per['model_s']:.2f} s model, "
          f"{per['wall_s']:.2f} s wall")
    return 0
