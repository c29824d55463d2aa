"""`longlens scripted-server SCRIPT`: an OpenAI-compatible server that replies from a script (dry runs)."""

from __future__ import annotations

import time
from contextlib import suppress

from longlens.backends.registry import load_script
from longlens.backends.server import ScriptedServer


def add_parser(sub, name):
    p = sub.add_parser(name, help="serve scripted replies over the OpenAI chat API, for dry runs",
                       description="Serve /v1/models and /v1/chat/completions with replies from a script.")
    p.add_argument("script", help="JSON list of replies (strings, or objects with text/status/delay_s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--model", default="scripted-model", help="model name to serve")
    p.add_argument("--repeat-last", action="store_true", help="repeat the last reply when the script runs out")
    return p


def run(args) -> int:
    server = ScriptedServer(load_script(args.script), model=args.model, host=args.host, port=args.port,
                            repeat_last=args.repeat_last).start()
    print(f"serving {args.model} at {server.url} ({len(server.script)} scripted replies); Ctrl-C stops", flush=True)
    try:
        with suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    finally:
        server.stop()
        print(f"served {len(server.requests)} requests")
    return 0
