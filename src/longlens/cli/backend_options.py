"""The backend and zoom-agent options, one definition for every command that calls a model.

`add_backend_options` (the model behind the zoom agent: offline, an OpenAI-compatible server, a local
transformers model, a script) and `add_zoom_options` (the agent's sizes and steps) are shared by ``ask``,
``eval`` and ``data mine``; the transport options (`--api-key-env`, `--timeout`, `--retries`,
`--video-format`, `--probe`) also configure the navigate roles' and caption servers (`roles.py`).
"""

from __future__ import annotations

import argparse
import math

from longlens.backends.base import Backend, GenConfig
from longlens.backends.openai_client import PROBES
from longlens.backends.pool import BALANCE
from longlens.backends.registry import BACKENDS, make_backend
from longlens.backends.wire import VIDEO_FORMATS
from longlens.errors import LongLensError


def add_transport_options(p: argparse.ArgumentParser, *, key_flag: str = "--api-key-env") -> None:
    """How requests reach an OpenAI-compatible server (any role). `key_flag` names the API-key option (`serve`
    keeps ``--api-key-env`` for the key its own clients send)."""
    g = p.add_argument_group("OpenAI-compatible servers (every role)")
    g.add_argument(key_flag, dest="api_key_env", default="OPENAI_API_KEY",
                   help="environment variable holding the model servers' API key")
    g.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for one reply (default 600)")
    g.add_argument("--retries", type=int, default=3,
                   help="retries of a timed-out, refused or 5xx request, with backoff (default 3)")
    g.add_argument("--video-format", choices=VIDEO_FORMATS, default="mp4",
                   help="how videos travel: mp4 (default: lossless frames in an MP4 at the video's sampling rate, "
                        "so every video keeps its own rate), jpeg (a JPEG sequence: the server's one rate), "
                        "images (loose frames, for servers without video input)")
    g.add_argument("--frames-as-images", action="store_const", const="images", dest="video_format",
                   help="the same as --video-format images")
    g.add_argument("--probe", choices=PROBES, default="auto",
                   help="check at start that the server counts visual tokens as LongLens does (auto: on vLLM)")


def add_backend_options(p: argparse.ArgumentParser, *, key_flag: str = "--api-key-env") -> None:
    """The zoom agent's model: ``--backend`` and what each backend needs."""
    p.add_argument("--backend", choices=BACKENDS, default="offline",
                   help="offline (embedded, default), openai (any OpenAI-compatible server), "
                        "hf (a local transformers model), scripted")
    g = p.add_argument_group("openai backend")
    g.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="server URL (default %(default)s)")
    g.add_argument("--endpoints", metavar="URL1,URL2,...",
                   help="several servers of one model, calls spread over them (instead of --base-url)")
    g.add_argument("--balance", choices=BALANCE, default="least-busy",
                   help="how calls are spread over --endpoints: least-busy (default) or round-robin")
    g.add_argument("--model", help="model name (default: the only one served)")
    add_transport_options(p, key_flag=key_flag)
    g = p.add_argument_group("scripted backend")
    g.add_argument("--script", help="JSON list of replies")
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


def openai_options(args: argparse.Namespace) -> dict:
    """The transport settings of `add_transport_options` as `make_backend` keywords."""
    return {"api_key_env": getattr(args, "api_key_env", "OPENAI_API_KEY"), "timeout_s": getattr(args, "timeout", 600.0),
            "retries": getattr(args, "retries", 3), "video_format": getattr(args, "video_format", "mp4"),
            "probe": getattr(args, "probe", "auto")}


def backend_from(args: argparse.Namespace, *, check: bool = True) -> Backend:
    """The backend `add_backend_options` describes (checked: reachable, serving the model, counting tokens)."""
    endpoints = [u.strip() for u in (args.endpoints or "").split(",") if u.strip()] or None
    backend = make_backend(args.backend, base_url=args.base_url, model=args.model, script=args.script,
                           model_path=args.model_path, device=args.device, dtype=args.dtype,
                           attn_implementation=args.attn_implementation, kv_reuse=not args.no_kv_reuse,
                           rope=args.rope, endpoints=endpoints, balance=args.balance, **openai_options(args))
    if check:
        backend.check()
    return backend


def add_zoom_options(p: argparse.ArgumentParser, *, max_new_tokens: int = 2048) -> None:
    """The zoom agent's steps, template, profile and frame budgets. Unset options take the profile's settings
    (for ``eval``, the reference's settings for that benchmark: `agents.zoom.paper_config`)."""
    g = p.add_argument_group("zoom agent (unset: the profile's paper settings, per benchmark in eval)")
    g.add_argument("--max-steps", type=int, help="generations at most; the last is forced (default 3)")
    g.add_argument("--template", choices=["a", "b", "c"], help="video template (default c)")
    g.add_argument("--num-fast", type=int, metavar="N", help="fast-view frames at most (default 768; MLVU 384)")
    g.add_argument("--fast-res", type=int, metavar="TOKENS",
                   help="fast-view pixel budget per frame, in 28x28 tokens (default 32; MLVU 64)")
    g.add_argument("--num-slow", type=int, metavar="N",
                   help="frames per zoom-in clip at most (default 32; LongVideoBench 16)")
    g.add_argument("--slow-res", type=int, metavar="TOKENS",
                   help="zoom-in clip pixel budget per frame, in 28x28 tokens (default 256)")
    g.add_argument("--profile", default="love-r1", help="prompt profile (default love-r1)")
    g.add_argument("--fast-mode", choices=["accurate", "nearest"],
                   help="fast-view decoding: accurate (default: the exact frames the reference samples) or nearest "
                        "(the cheapest frame within half a sampling interval: faster, frames the checkpoints never "
                        "saw; recorded in the run config)")
    g.add_argument("--intervals", choices=["reference", "lenient"],
                   help="how zoom requests are read: reference (default: whole seconds, as the checkpoints' code; "
                        "[12.5, 40] or [2:00, 2:30] end zooming) or lenient (decimals and clock times zoom too)")
    g.add_argument("--uniform-frames", type=int, metavar="N",
                   help="--agent uniform: frames over the whole video (default 64)")
    g.add_argument("--uniform-res", type=int, metavar="TOKENS",
                   help="--agent uniform: pixel budget per frame, in 28x28 tokens (default 256)")
    g.add_argument("--uniform-budget", type=int, metavar="TOKENS",
                   help="--agent uniform: visual tokens for the whole sample, spread over its frames (instead of "
                        "--uniform-res; frame sides round to the 28-pixel grid, so within a few percent); e.g. a zoom "
                        "run's cost.per_question.visual_tokens, for an equal-budget comparison")
    g.add_argument("--max-new-tokens", type=int, default=max_new_tokens,
                   help=f"tokens generated per step at most (default {max_new_tokens})")


def zoom_config_from(args: argparse.Namespace, bench: str | None = None, **overrides):
    """The `ZoomConfig` of `add_zoom_options` (and ``--agent`` when the command has it): the profile's paper
    settings for `bench`, with the options given on the command line on top (listed as deviations)."""
    from longlens.agents.zoom import paper_config
    from longlens.video.plan import PATCH

    given = {"agent": getattr(args, "agent", None), "max_steps": args.max_steps, "template": args.template,
             "fast_frames": args.num_fast, "fast_budget": args.fast_res and args.fast_res * PATCH * PATCH,
             "slow_frames": args.num_slow, "slow_budget": args.slow_res and args.slow_res * PATCH * PATCH,
             "fast_mode": args.fast_mode, "intervals": args.intervals,
             "uniform_frames": getattr(args, "uniform_frames", None),
             "uniform_budget": _uniform_budget(args)}
    settings = {k: v for k, v in given.items() if v is not None}
    settings.update(overrides)
    return paper_config(bench, args.profile, gen=GenConfig(max_new_tokens=args.max_new_tokens), **settings)


def _uniform_budget(args: argparse.Namespace) -> int | None:
    """The uniform agent's pixel budget per frame, from --uniform-res (per frame) or --uniform-budget (the whole
    sample's visual tokens: two frames share each token, as the model's temporal patch of 2 merges them)."""
    from longlens.agents.zoom import ZoomConfig
    from longlens.video.plan import PATCH, TEMPORAL_PATCH

    res, total = getattr(args, "uniform_res", None), getattr(args, "uniform_budget", None)
    if res is not None and total is not None:
        raise LongLensError("give --uniform-res (per frame) or --uniform-budget (the whole sample), not both")
    if total is None:
        return res and res * PATCH * PATCH
    frames = getattr(args, "uniform_frames", None) or ZoomConfig.uniform_frames
    per_frame = total // math.ceil(frames / TEMPORAL_PATCH)
    if per_frame < 4:
        raise LongLensError(f"--uniform-budget {total} leaves {per_frame} tokens per frame for {frames} frames; "
                            "give more tokens or fewer --uniform-frames")
    return per_frame * PATCH * PATCH
