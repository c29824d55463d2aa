"""`longlens ask VIDEO "QUESTION" [--option TEXT ...]`: answer one question, one line per step."""

from __future__ import annotations

import json
import time
from pathlib import Path

from longlens.agents.trace import Outcome, Stop, Trace
from longlens.agents.zoom import AGENTS, ZoomAgent
from longlens.cli._common import add_cache_options, cache_from, human_count
from longlens.cli.backend_options import add_backend_options, add_zoom_options, backend_from, zoom_config_from
from longlens.cli.roles import add_navigate_options, navigate_agent
from longlens.video import default_cache_dir


def add_parser(sub, name):
    p = sub.add_parser(name, help="answer a question about a video (zoom agent or a baseline)",
                       description="Answer a question about a video and print one line per step.")
    p.add_argument("video", help="path to a video file")
    p.add_argument("question", help="the question")
    p.add_argument("--option", action="append", default=[], metavar="TEXT",
                   help="an answer option (repeat for A, B, C, ...); without options the question is open")
    p.add_argument("--agent", choices=(*AGENTS, "navigate"), default="zoom",
                   help="zoom (default; LOVE-R1), a zoom baseline, or navigate (LongVideo-R1: a text model walks "
                        "a caption tree; give the roles below)")
    add_backend_options(p)
    add_zoom_options(p)
    p.add_argument("--trace", help="write the trace here (default: a file under the cache folder)")
    p.add_argument("--json", action="store_true", help="print the whole trace as JSON")
    add_navigate_options(p)
    add_cache_options(p)
    return p


def step_line(step) -> str:
    a = step.action
    if a["kind"] == "zoom":
        added = step.clip_added
        what = f"zoom [{a['start_s']:g}, {a['end_s']:g}]" + (f" -> [{added[0]:g}, {added[1]:g}]" if added else "")
    elif a["kind"] == "answer":
        what = f"answer {a['text'][:40]}"
    else:
        what = "no action"
    line = (f"step {step.index}  {what:<28} {step.frames_shown:>4} frames  "
            f"{human_count(step.visual_tokens):>6} visual tokens  {step.latency_s:.1f} s")
    if step.cached_tokens:
        line += f"  ({human_count(step.cached_tokens)} tokens reused)"
    if step.error:
        line += f"  [model mistake: {step.error}]"
    if step.retries:
        line += f"  ({step.retries} failed tries retried; last: {step.retry_error})"
    if step.outcome == Outcome.ZOOM_STOPPED:
        line += f"  (zooming stops: {STOPS.get(step.stop, 'no clip')})"
    elif step.outcome == Outcome.WHOLE_VIDEO:
        line += "  (no clip accepted: the whole video is shown as the slow clip)"
    return line


STOPS = {Stop.NO_ACTION: "no answer and no interval", Stop.REVERSED: "the interval is reversed",
         Stop.OUTSIDE: "the interval lies outside the video", Stop.TOO_SHORT: "the clip is too short",
         Stop.OVERLAP: "the clip overlaps one already shown"}


def answer_line(trace: Trace) -> str:
    if trace.choice and trace.options:
        line = f"answer: {trace.choice} ({trace.options[ord(trace.choice) - 65]})"
    else:
        line = f"answer: {trace.answer or '(none)'}"
    if trace.totals.guessed:
        line += f"  [a guess: {trace.backend} found no evidence for it]"
    return line


def report(trace: Trace) -> None:
    for step in trace.steps:
        print(step_line(step))
    print(answer_line(trace))
    t = trace.totals
    print(f"total: {t.steps} steps, {t.frames_decoded} frames decoded, "
          f"{human_count(t.visual_tokens)} visual tokens, {t.model_s:.1f} s model, {t.wall_s:.1f} s wall")


def run(args) -> int:
    if args.agent == "navigate":
        return run_navigate(args)
    cache = cache_from(args)
    backend = backend_from(args)
    config = zoom_config_from(args)
    trace = ZoomAgent(backend, config, cache=cache).run(args.video, args.question, tuple(args.option))
    path = Path(args.trace) if args.trace else _default_trace_path(cache, trace)
    trace.save(path)
    if args.json:
        print(json.dumps(trace.to_dict(), indent=1))
    else:
        report(trace)
        print(f"trace: {path}")
    return 0


def _default_trace_path(cache, trace: Trace) -> Path:
    root = cache.root if cache else default_cache_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / "traces" / f"{stamp}-{trace.video['id'][:8]}.json"


# ---------------------------------------------------------------- the navigate agent
def run_navigate(args) -> int:
    cache = cache_from(args)
    agent, _ = navigate_agent(args, cache)
    trace = agent.run(args.video, args.question, tuple(args.option))
    path = Path(args.trace) if args.trace else _default_trace_path(cache, trace)
    trace.save(path)
    if args.json:
        print(json.dumps(trace.to_dict(), indent=1))
    else:
        for step in trace.steps:
            print(round_line(step))
        if trace.error:
            print(f"error: {trace.error}")
        print(answer_line(trace))
        t = trace.totals
        calls, secs = t.calls, t.role_s
        print(f"total: {t.steps} rounds, {calls.get('caption', 0)} captions made, {t.caption_reused} reused, "
              f"{calls.get('videoqa', 0)} video_qa, {t.errors} invalid; reasoning {secs.get('reasoning', 0):.1f} s, "
              f"caption {secs.get('caption', 0):.1f} s, video_qa {secs.get('videoqa', 0):.1f} s, {t.wall_s:.1f} s wall")
        print(f"trace: {path}")
    return 0


def round_line(step) -> str:
    a = step.action
    if a["kind"] == "answer":
        what = f"answer {a['answer'][:40]}"
    elif a["kind"] == "tool":
        what = a["call"]["text"][:60]
    else:
        what = "no action"
    line = f"round {step.index:>2}  {what:<48} {step.latency_s:6.1f} s"
    if step.tool:
        cache = f", {step.tool['cache']}" if step.tool.get("cache") else ""
        line += f"  [{step.tool['role']}{cache} {step.tool['latency_s']:.1f} s]"
    if step.error:
        line += f"  [model mistake: {step.error}]"
    return line
