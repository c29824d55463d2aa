"""Writing a benchmark's results into docs/benchmarks.md, between its markers ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` (added at the end, after `heading`, the first time)."""

from __future__ import annotations

from pathlib import Path


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
