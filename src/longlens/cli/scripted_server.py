"""`longlens scripted-server SCRIPT`: an OpenAI-compatible server that replies from a script (dry runs)."""

from __future__ import annotations

import time
from contextlib import suppress

from longlens.backends.registry import load_script
from longlens.backends.scripted_server import ScriptedServer
from longlens.errors import LongLensError


def add_parser(sub, name):
    p = sub.add_parser(name, help="serve scripted replies over the OpenAI chat API, for dry runs",
                       description="Serve /v1/models and /v1/chat/completions with replies from a script.")
    p.add_argument("script", help="JSON list of replies (strings, or objects with text/status/delay_s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--model", default="scripted-model", help="model name to serve")
    p.add_argument("--repeat-last", action="store_true", help="repeat the last reply when the script runs out")
    p.add_argument("--latency", type=float, default=0.0, metavar="S",
                   help="seconds added to every completion (a stand-in for a model's time; default 0)")
    p.add_argument("--keep-requests", type=int, default=100, metavar="N",
                   help="request bodies kept in memory, the last N (default 100; all are counted)")
    return p


def run(args) -> int:
    if args.latency < 0 or args.keep_requests < 0:
        raise LongLensError("--latency and --keep-requests take 0 or more")
    try:
        server = ScriptedServer(load_script(args.script), model=args.model, host=args.host, port=args.port,
                                repeat_last=args.repeat_last, latency_s=args.latency,
                                keep_requests=args.keep_requests).start()
    except OSError as exc:
        raise LongLensError(f"cannot serve on {args.host}:{args.port} ({exc.strerror or exc}); "
                            "pick another --port (0 picks a free one)") from None
    print(f"serving {args.model} at {server.url} ({len(server.script)} scripted replies); Ctrl-C stops", flush=True)
    try:
        with suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    finally:
        server.stop()
        print(f"served {server.received} requests")
    return 0
