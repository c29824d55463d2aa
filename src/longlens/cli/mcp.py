"""`longlens mcp`: the agents as MCP tools (stdio by default, or streamable HTTP on 127.0.0.1)."""

from __future__ import annotations

import sys

from longlens.cli.serve import add_common, service_from


def add_parser(sub, name):
    p = sub.add_parser(name, help="serve the agents as MCP tools (ask_video, video_info, video_frames)",
                       description="Serve the agents as MCP tools over stdio (for an MCP client that starts this "
                                   "command) or, with --http, streamable HTTP at http://HOST:PORT/mcp.")
    p.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    add_common(p, port=8101)
    return p


def run(args) -> int:
    from longlens._imports import require

    require("mcp", "serve", "longlens mcp")
    from longlens.serve.mcp import create_server

    server = create_server(service_from(args))
    if not args.http:
        server.run("stdio")
        return 0
    print(f"longlens mcp: tools ask_video, video_info, video_frames at http://{args.host}:{args.port}/mcp",
          file=sys.stderr, flush=True)
    server.run("streamable-http", host=args.host, port=args.port)
    return 0

