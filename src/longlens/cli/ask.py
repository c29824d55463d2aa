"""`longlens ask VIDEO "QUESTION" [--option TEXT ...]`: answer one question, one line per step."""

from __future__ import annotations

import json
import time
from pathlib import Path

from longlens.agents.trace import Trace
from longlens.agents.zoom import AGENTS, ZoomAgent, ZoomConfig
from longlens.backends.base import GenConfig
from longlens.backends.registry import BACKENDS, make_backend
from longlens.cli._common import add_cache_options, cache_from, human_count
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
    p.add_argument("--backend", choices=BACKENDS, default="offline",
                   help="offline (embedded, default), openai (any OpenAI-compatible server), "
                        "hf (a local transformers model), scripted")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai backend: server URL")
    p.add_argument("--model", help="openai backend: model name (default: the only one served)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for one reply (default 600)")
    p.add_argument("--frames-as-images", action="store_true", help="send frames as images, for servers without video")
    p.add_argument("--video-fps", choices=["per-video", "single", "off"], default="per-video",
                   help="openai backend: send each video's sampling rate (default), only the first, or none")
    p.add_argument("--script", help="scripted backend: JSON list of replies")
    hf = p.add_argument_group("hf backend (in-process transformers)")
    hf.add_argument("--model-path", metavar="DIR", help="local model folder (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LOVE-R1)")
    hf.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    hf.add_argument("--dtype", choices=["auto", "bfloat16", "float16", "float32"], default="auto",
                    help="weights dtype (default auto: bfloat16 on GPU, float32 on CPU)")
    hf.add_argument("--attn-implementation", help="passed to from_pretrained (e.g. sdpa, flash_attention_2, eager)")
    hf.add_argument("--no-kv-reuse", action="store_true",
                    help="recompute the fast view's KV cache at every step instead of reusing it")
    hf.add_argument("--rope", choices=["trained", "transformers"], default="trained",
                    help="Qwen2/2.5-VL positions: the rule the checkpoints were trained with (default) or the "
                         "installed transformers' rule")
    p.add_argument("--max-steps", type=int, default=3, help="generations at most; the last is forced (default 3)")
    p.add_argument("--template", choices=["a", "b", "c"], default="c", help="video template (default c)")
    p.add_argument("--num-fast", type=int, default=768, metavar="N", help="fast-view frames at most (default 768)")
    p.add_argument("--fast-res", type=int, default=32, metavar="TOKENS",
                   help="fast-view pixel budget per frame, in 28x28 tokens (default 32)")
    p.add_argument("--num-slow", type=int, default=32, metavar="N", help="frames per zoom-in clip at most (default 32)")
    p.add_argument("--slow-res", type=int, default=256, metavar="TOKENS",
                   help="zoom-in clip pixel budget per frame, in 28x28 tokens (default 256)")
    p.add_argument("--profile", default="love-r1", help="prompt profile (default love-r1)")
    p.add_argument("--fast-mode", choices=["nearest", "accurate"], default="nearest",
                   help="fast-view decoding: nearest (default, cheapest frame within half an interval) or "
                        "accurate (the exact frames the reference samples)")
    p.add_argument("--max-new-tokens", type=int, default=2048)
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
    if step.note and ("stops" in step.note or "whole video" in step.note):
        line += f"  ({step.note.split('; ')[-1]})"
    return line


def answer_line(trace: Trace) -> str:
    if trace.choice and trace.options:
        return f"answer: {trace.choice} ({trace.options[ord(trace.choice) - 65]})"
    return f"answer: {trace.answer or '(none)'}"


def report(trace: Trace) -> None:
    for step in trace.steps:
        print(step_line(step))
    print(answer_line(trace))
    t = trace.totals
    print(f"total: {t['steps']} steps, {t['frames_decoded']} frames decoded, "
          f"{human_count(t['visual_tokens'])} visual tokens, {t['model_s']:.1f} s model, {t['wall_s']:.1f} s wall")


def run(args) -> int:
    if args.agent == "navigate":
        return run_navigate(args)
    cache = cache_from(args)
    backend = make_backend(args.backend, base_url=args.base_url, model=args.model, api_key_env=args.api_key_env,
                           timeout_s=args.timeout, frames_as_images=args.frames_as_images,
                           video_fps=args.video_fps, script=args.script, model_path=args.model_path,
                           device=args.device, dtype=args.dtype, attn_implementation=args.attn_implementation,
                           kv_reuse=not args.no_kv_reuse, rope=args.rope)
    backend.check()
    config = ZoomConfig(agent=args.agent, max_steps=args.max_steps, template=args.template, profile=args.profile,
                        fast_frames=args.num_fast, fast_budget=args.fast_res * 28 * 28, slow_frames=args.num_slow,
                        slow_budget=args.slow_res * 28 * 28,
                        fast_mode=args.fast_mode, gen=GenConfig(max_new_tokens=args.max_new_tokens))
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
        print(f"total: {t['rounds']} rounds, {t['caption_made']} captions made, {t['caption_reused']} reused, "
              f"{t['videoqa']} video_qa, {t['invalid']} invalid; reasoning {t['reasoning_s']:.1f} s, "
              f"caption {t['caption_s']:.1f} s, video_qa {t['videoqa_s']:.1f} s, {t['wall_s']:.1f} s wall")
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
