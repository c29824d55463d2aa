"""Entry point of the `longlens` command.

Each command lives in its own module with `add_parser(subparsers)` and `run(args) -> int`.
Bad input (a `LongLensError`) is printed as one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from longlens import __version__
from longlens.errors import LongLensError
from longlens.memory import bound_allocator

# command name -> module under longlens.cli
COMMANDS = {
    "demo": "demo",
    "ask": "ask",
    "make-video": "make_video",
    "info": "info",
    "plan": "plan",
    "frames": "frames",
    "cache": "cache",
    "scripted-server": "scripted_server",
    "tree": "tree",
    "eval": "eval",
    "score": "score",
    "bench": "bench",
    "data": "data",
    "report": "report",
    "train": "train",
    "serve": "serve",
    "mcp": "mcp",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="longlens",
        description="Answer questions about long videos, evaluate long-video agents, and train them.",
    )
    parser.add_argument("--version", action="version", version=f"longlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"longlens.cli.{module}")
        p = mod.add_parser(sub, name)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    bound_allocator()  # freed frame memory goes back to the system (glibc); LONGLENS_MALLOC=system turns it off
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except LongLensError as exc:
        print(f"longlens: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("longlens: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
