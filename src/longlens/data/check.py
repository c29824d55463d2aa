"""`longlens data check`: does every row of a training file find a readable video on this machine?

Per source data set (the folder a row's path names, or LongVideo-R1's ``data_source``): rows, rows whose video
resolves to a readable file, rows whose video is missing or cannot be placed, rows whose file exists but does
not open; items that cannot be read at all are counted apart. Each distinct video is opened once
(`video.open_video`, the container's header and index), several at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from longlens.data.released import ABSOLUTE, NO_SOURCE, TEXT_ONLY, Located, VideoRoots, read_records
from longlens.errors import VideoError


@dataclass(frozen=True)
class Problem:
    index: int
    """The item's position in the file (0-based)."""
    source: str
    what: str
    """"missing", "unreadable" or "malformed"."""
    detail: str


@dataclass(frozen=True)
class SourceCount:
    source: str
    root: str | None
    rows: int = 0
    resolved: int = 0
    missing: int = 0
    unreadable: int = 0


@dataclass(frozen=True)
class CheckReport:
    file: str
    format: str
    items: int
    sources: tuple[SourceCount, ...]
    malformed: int
    problems: tuple[Problem, ...] = field(default=())
    opened: bool = True
    """Whether videos were opened (False: only their existence was checked)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def check_file(path: str | Path, video_roots: Sequence[str] = (), *, fmt: str | None = None,
               open_videos: bool = True, concurrency: int = 4,
               progress: Callable[[object, int, int], None] | None = None) -> CheckReport:
    """Check `path` (see the module notes); `video_roots` are ``NAME=DIR`` / ``DIR`` entries."""
    roots = VideoRoots.parse(video_roots)
    fmt, records = read_records(path, fmt)
    problems: list[Problem] = []
    located: list[tuple[int, Located]] = []
    for rec in records:
        if rec.problem:
            problems.append(Problem(rec.index, rec.source or "", "malformed", rec.problem))
        elif fmt not in TEXT_ONLY:
            located.append((rec.index, roots.locate(rec.video, rec.source)))
    readable = _readable({loc.path for _, loc in located if loc.path is not None}, open_videos, concurrency, progress)
    counts: dict[str, Counter] = {}
    for index, loc in located:
        c = counts.setdefault(loc.source, Counter())
        c["rows"] += 1
        if loc.path is None:
            c["missing"] += 1
            problems.append(Problem(index, loc.source, "missing", loc.problem or "cannot be placed"))
            continue
        state = readable[loc.path]
        if state is None:
            c["resolved"] += 1
        elif state == "missing":
            c["missing"] += 1
            problems.append(Problem(index, loc.source, "missing", f"{loc.path} (no such file)"))
        else:
            c["unreadable"] += 1
            problems.append(Problem(index, loc.source, "unreadable", state))
    sources = tuple(SourceCount(s, None if s == ABSOLUTE else roots.root_of(s) or roots.default or None, c["rows"],
                                c["resolved"], c["missing"], c["unreadable"]) for s, c in sorted(counts.items()))
    return CheckReport(str(path), fmt, len(records), sources, sum(p.what == "malformed" for p in problems),
                       tuple(sorted(problems, key=lambda p: p.index)), open_videos)


def _readable(paths: set[Path], open_videos: bool, concurrency: int, progress) -> dict[Path, str | None]:
    """Per path: None (readable), "missing", or why it does not open."""
    from longlens.video import open_video

    def one(p: Path) -> str | None:
        if not p.is_file():
            return "missing"
        if not open_videos:
            return None
        try:
            open_video(p)
        except VideoError as exc:
            return str(exc)
        return None

    ordered = sorted(paths)
    out: dict[Path, str | None] = {}
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        for k, (p, state) in enumerate(zip(ordered, pool.map(one, ordered), strict=True), 1):
            out[p] = state
            if progress is not None and open_videos:
                progress(p, k, len(ordered))
    return out


def _folder(s: SourceCount) -> str:
    if s.source == ABSOLUTE:
        return "(absolute paths, as written; a --video-root NAME=DIR naming one of their folders maps them)"
    if s.root:
        return s.root
    return "(none: give --video-root " + ("DIR" if s.source == NO_SOURCE else f"{s.source}=DIR") + ")"


def report_lines(report: CheckReport, *, show: int = 10) -> list[str]:
    """The report as the command prints it: a table per source, then the first `show` problems of each kind."""
    lines = [f"{report.file}: {report.format}, {report.items} items"]
    if report.format in TEXT_ONLY:
        lines.append(f"{report.items - report.malformed} records read; text only (no videos to place)")
    if report.sources:
        name_w = max(6, *(len(s.source) for s in report.sources))
        readable = "readable" if report.opened else "found"
        lines.append(f"{'source':<{name_w}}  {'rows':>7}  {readable:>8}  {'missing':>7}  {'unreadable':>10}  folder")
        for s in report.sources:
            lines.append(f"{s.source:<{name_w}}  {s.rows:>7}  {s.resolved:>8}  {s.missing:>7}  {s.unreadable:>10}  "
                         f"{_folder(s)}")
    for what in ("malformed", "missing", "unreadable"):
        found = [p for p in report.problems if p.what == what]
        for p in found[:show]:
            source = p.source if p.source.startswith("(") else f"({p.source})"
            lines.append(f"{what} item {p.index}" + (f" {source}" if p.source else "") + f": {p.detail}")
        if len(found) > show:
            lines.append(f"... {len(found) - show} more {what} (--show N lists more)")
    total = sum(s.resolved for s in report.sources)
    rows = sum(s.rows for s in report.sources)
    if report.format not in TEXT_ONLY:
        lines.append(f"{total} of {rows} rows resolve to a {'readable' if report.opened else 'present'} video"
                     + (f"; {report.malformed} items malformed" if report.malformed else ""))
    lines.append("ok" if report.ok else "problems found")
    return lines
