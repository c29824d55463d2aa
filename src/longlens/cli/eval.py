"""`longlens eval BENCH --data FILE --videos DIR --out RUN_DIR`: a benchmark run, resumable."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from longlens.agents.zoom import AGENTS, ZoomAgent
from longlens.bench.benchmarks import BENCHMARKS
from longlens.bench.metrics import summarize
from longlens.bench.scorers import check_extractor
from longlens.bench.solver import ask_agent
from longlens.cli._common import add_cache_options, add_scoring_options, benchmark_samples, cache_from
from longlens.cli.backend_options import add_backend_options, add_zoom_options, backend_from, zoom_config_from
from longlens.cli.roles import add_navigate_options, navigate_agent
from longlens.errors import LongLensError
from longlens.jsonl import write_json


def add_parser(sub, name):
    p = sub.add_parser(name, help="run an agent over a benchmark (resumable: rerun the same command to go on)",
                       description="Run an agent over a benchmark in its native format. Results are appended to "
                                   "RUN_DIR/results.jsonl as each question finishes; rerunning skips what is done.")
    p.add_argument("bench", choices=sorted(BENCHMARKS))
    p.add_argument("--data", required=True, help="the benchmark's annotation file (MLVU: its json folder; "
                                                 "needles: an answer key or a folder of them)")
    p.add_argument("--videos", help="the videos folder (needles: default beside the keys)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (created; reused to resume)")
    p.add_argument("--agent", choices=(*AGENTS, "navigate"), default="zoom",
                   help="zoom (default), a zoom baseline, or navigate (give its roles below)")
    add_backend_options(p)
    add_zoom_options(p)
    p.add_argument("--limit", type=int, help="the first N questions only")
    p.add_argument("--concurrency", type=int, default=1,
                   help="questions in flight (default 1); questions on one video share its decoded frames")
    add_scoring_options(p)
    p.add_argument("--mix", action="store_true", help="add to a run folder made with another configuration")
    p.add_argument("--shard", metavar="I/N", help="run the I-th of N deterministic slices (by video) into the same "
                                                  "RUN_DIR, e.g. one per job of a Slurm array; the summary and "
                                                  "longlens report merge them")
    add_navigate_options(p)
    add_cache_options(p)
    return p


def zoom_agent(args, cache) -> tuple[ZoomAgent, dict]:
    backend = backend_from(args)
    zoom = zoom_config_from(args, args.bench)
    settings = asdict(zoom)
    del settings["gen"]  # max_new_tokens is recorded beside it
    config = {"backend": backend.describe(), "transport": transport_config(backend), "zoom": settings}
    return ZoomAgent(backend, zoom, cache=cache), config


def transport_config(backend) -> dict | None:
    """How videos reached the model server (recorded in the run config): format and the probe's result."""
    if getattr(backend, "video_format", None) is None:
        return None
    return {"video_format": backend.video_format, "probed": getattr(backend, "video_token_id", None) is not None}


def navigate_eval_agent(args, cache):
    agent, roles = navigate_agent(args, cache)
    nav = agent.config
    navigate = {k: v for k, v in asdict(nav).items() if k not in ("gen", "videoqa_gen")}
    config = {"backend": roles["reasoning"].describe(), "caption_model": agent.caption_model,
              "roles": {r: b.describe() if b else None for r, b in roles.items()}, "navigate": navigate}
    return agent, config


def run(args) -> int:
    from longlens.bench.progress import Progress
    from longlens.bench.runner import WHOLE, RunFolder, Shard, run_eval

    extractor = args.extractor
    check_extractor(extractor, args.bench)
    shard = Shard.parse(args.shard) if args.shard else WHOLE
    samples, runnable, missing = benchmark_samples(args)
    if samples and not runnable:
        raise LongLensError(f"none of the {len(samples)} questions has its video (e.g. {sorted(missing)[0]}); "
                            "check --videos")
    cache = cache_from(args)
    agent, agent_config = (navigate_eval_agent if args.agent == "navigate" else zoom_agent)(args, cache)
    config = {"bench": args.bench, "data": str(args.data), "agent": args.agent, **agent_config,
              "max_new_tokens": args.max_new_tokens, "extractor": extractor}

    mine = {s.id for s in shard.select(runnable)}
    previous = [r for r in RunFolder(Path(args.out)).records() if r.get("id") in mine]
    started = time.perf_counter()
    with Progress(len(mine), previous) as progress:
        prefetch = getattr(agent, "prefetch", None)  # the zoom agent decodes the next video ahead
        records = run_eval(runnable, lambda s: ask_agent(agent, s), args.out, config,
                           concurrency=args.concurrency, extractor=extractor, mix=args.mix, progress=progress,
                           shard=shard, missing_videos=len(missing),
                           prepare=(lambda s: prefetch(s.video)) if prefetch else None)
    summary = write_summary(RunFolder(Path(args.out)), records, args.bench, policy=args.policy, extractor=extractor,
                            questions=len(samples), missing_videos=len(missing),
                            run_s=time.perf_counter() - started)
    print_summary(summary, args.out)
    return 0


def write_summary(folder, records: list[dict], bench: str, *, policy: str, extractor: str, questions: int,
                  missing_videos: int, run_s: float) -> dict:
    """``RUN_DIR/summary.json`` over every record of the folder (`records`: all shards'), with where each
    question stands."""
    from longlens.bench.metrics import accounting
    from longlens.bench.runner import cost_summary

    summary = summarize(records, bench, policy=policy, extractor=extractor)
    summary.update(accounting(records, questions, missing_videos))
    summary.update({"cost": cost_summary(records), "run_s": round(run_s, 3)})
    states = folder.shard_states(records)
    if any(st["shard"] != "1/1" for st in states):
        summary["shards"] = states
    write_json(folder.path / "summary.json", summary)
    return summary


def print_summary(summary: dict, out) -> None:
    from longlens.bench.report import shard_state

    head, per = summary["headline"], summary["cost"]["per_question"]
    se = "n/a (one video)" if head["se"] is None else f"{head['se']:.3f}"
    print(f"{head['name']} {head['value']:.3f} ± {se} over {head['n']} (policy {summary['policy']}); results in {out}")
    line = (f"{summary['questions']} questions: {summary['answered']} answered ({summary['unparsed']} unparsed, "
            f"{summary['guessed']} guessed), {summary['errors']} failed, {summary['missing_videos']} missing videos")
    if summary["not_run"]:
        line += f", {summary['not_run']} not run yet"
    print(line)
    if summary.get("without_guesses"):
        w = summary["without_guesses"]
        print(f"without the backend's guesses: accuracy {w['accuracy']:.3f} over {w['n']}" if w["n"]
              else "every answer was a guess of the backend")
    if summary["errors"]:
        first = summary["failed"][0]
        kinds = ", ".join(f"{n} {k}" for k, n in summary["errors_by_kind"].items())
        print(f"failed questions ({kinds}), e.g. {first['id']}: {first['error']} (all in summary.json; "
              "rerun the same command to ask the server's again)")
    unfinished = [st for st in summary.get("shards", ()) if st["state"] != "complete"]
    if summary.get("shards"):
        print(f"shards: {len(summary['shards']) - len(unfinished)} complete" + "".join(
            f"; {st['shard']} {shard_state(st)}" for st in unfinished))
    print(f"cost per question: {per['steps']:g} steps, {per['frames_decoded']:g} frames decoded, "
          f"{per['visual_tokens']:,.0f} visual + {per['text_tokens']:,.0f} text tokens, {per['model_s']:.2f} s model, "
          f"{per['wall_s']:.2f} s wall" + (f"; {summary['retries']} model calls retried" if summary["retries"] else ""))
    if summary["cost"]["total"]["token_mismatches"]:
        print(f"warning: {summary['cost']['total']['token_mismatches']} model calls were charged another number of "
              "visual tokens than LongLens sent (the server resized or resampled frames); see media_tokens and "
              "expected_visual_tokens in the traces, and the serve flags in the README")
