"""Writing a benchmark's results into docs/benchmarks.md, between its markers ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` (added at the end, after `heading`, the first time)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """The machine a result was measured on, in the words the docs use."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def replace_section(doc: Path, name: str, text: str, *, heading: str = "") -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    body = doc.read_text()
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in body:
        body = body[: body.index(start)] + block + body[body.index(end) + len(end):]
    else:
        body = body.rstrip() + "\n\n" + (f"{heading.rstrip()}\n\n" if heading else "") + block + "\n"
    doc.write_text(body)
    print(f"updated {doc}")


def publish(report: str, doc: Path, name: str, write: bool, *, heading: str = "") -> None:
    """Print a benchmark's report and, with `write` (``--write-docs``), put it in its section of `doc`."""
    print()
    print(report)
    if write:
        replace_section(doc, name, report, heading=heading)
