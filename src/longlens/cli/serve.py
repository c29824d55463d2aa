"""`longlens serve`: the agents as an OpenAI-compatible HTTP server (see `longlens.serve.http`)."""

from __future__ import annotations

import argparse
import os
import sys

from longlens.agents.zoom import AGENTS, ZoomAgent
from longlens.cli._common import add_cache_options, cache_from
from longlens.cli.ask import round_line, step_line
from longlens.cli.backend_options import add_backend_options, add_zoom_options, backend_from, zoom_config_from
from longlens.cli.roles import add_navigate_options, navigate_agent
from longlens.errors import LongLensError


def add_common(p: argparse.ArgumentParser, *, port: int | None) -> None:
    """What `serve` and `mcp` share: the agents, the video root and the limits."""
    p.add_argument("--agent", choices=AGENTS, default="zoom",
                   help="the zoom-family agent served as longlens-AGENT (default zoom); the navigate agent is served "
                        "too, as longlens-navigate, when its reasoning role is given")
    p.add_argument("--videos", metavar="DIR",
                   help="the folder request paths are read under (without it, only uploaded videos are taken)")
    p.add_argument("--allow-url", action="store_true", help="also fetch videos named by http(s) URLs")
    p.add_argument("--max-upload-mb", type=float, default=512.0, metavar="MB",
                   help="largest uploaded or fetched video (default 512)")
    p.add_argument("--concurrency", type=int, default=4, help="questions answered at once (default 4); more wait")
    p.add_argument("--request-timeout", type=float, default=600.0, metavar="S",
                   help="seconds a question may take, waiting included (default 600)")
    if port is not None:
        p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
        p.add_argument("--port", type=int, default=port, help=f"port (default {port})")
    add_backend_options(p, key_flag="--backend-api-key-env")
    add_zoom_options(p)
    add_navigate_options(p)
    add_cache_options(p)


def add_parser(sub, name):
    p = sub.add_parser(name, help="serve the agents behind an OpenAI-compatible chat API",
                       description="Serve the agents behind an OpenAI-compatible API: GET /v1/models, "
                                   "POST /v1/chat/completions (a video_url part and the question; options as lines "
                                   "'A. ...' or an 'options' list), plain or streamed.")
    add_common(p, port=8100)
    p.add_argument("--api-key-env", dest="serve_key_env", metavar="NAME",
                   help="environment variable holding the key clients must send as 'Authorization: Bearer KEY' "
                        "(default: no key)")
    return p


def service_from(args: argparse.Namespace):
    """The `Service` (agents, root, cache, limits) the options describe."""
    from longlens.serve.service import Limits, ServedAgent, Service

    limits = Limits(concurrency=args.concurrency, timeout_s=args.request_timeout, max_upload_mb=args.max_upload_mb,
                    allow_url=args.allow_url)
    cache = cache_from(args)
    backend = backend_from(args)
    zoom = ZoomAgent(backend, zoom_config_from(args), cache=cache)
    underneath = backend.name + (f":{backend.model}" if getattr(backend, "model", None) else "")
    agents = {f"longlens-{args.agent}": ServedAgent(f"longlens-{args.agent}", zoom.run, underneath, step_line)}
    if args.reasoning_url or args.reasoning_model_path or args.reasoning_script:
        nav, roles = navigate_agent(args, cache)
        names = ", ".join(f"{r}={b.name}" for r, b in roles.items() if b is not None)
        agents["longlens-navigate"] = ServedAgent("longlens-navigate", nav.run, names, round_line)
    return Service(agents, args.videos, cache, limits)


def run(args) -> int:
    from longlens._imports import require

    require("fastapi", "serve", "longlens serve")
    uvicorn = require("uvicorn", "serve", "longlens serve")
    from longlens.serve.http import create_app

    service = service_from(args)
    key = None
    if args.serve_key_env:
        key = os.environ.get(args.serve_key_env)
        if not key:
            raise LongLensError(f"--api-key-env {args.serve_key_env}: that environment variable is empty or unset")
    app = create_app(service, api_key=key)
    print(f"longlens serve: {', '.join(service.agents)} on http://{args.host}:{args.port}/v1"
          + (f"; videos under {service.videos}" if service.videos else "; uploads only (no --videos)"),
          file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        raise LongLensError(f"cannot listen on {args.host}:{args.port} (in use, or not an address of this "
                            "machine); choose another --port or --host") from exc
    return 0
