"""The reference projects' released training files, read as released, and where their videos are on this machine.

Formats (``docs/training.md`` lists every field and what each stage uses):

* ``love-r1-sft``: LOVE-R1's SFT items, one JSON list (stage 1 ``cold_start25_153k.json``, stage 2
  ``zoomin_cot_data_0904_38k_filtered.json``): ``video`` (relative to the reference's ``--data_folder``),
  ``messages`` (user: a list whose first part is the text; assistant: the reply), optional ``tgt`` spans;
  stage-2 items carry ``cot_data`` (its presence is the flag) and ``zoomin_intervals``. Read as `TemplateRow`s.
* ``love-r1-rl``: LOVE-R1's GRPO items (``RL-hard_data17.json``): ``path`` (absolute on the authors' disks),
  ``problem``, ``options`` ("A. ..." strings), ``problem_type``, ``solution`` (``<answer>X</answer>``),
  ``data_type``, optional ``tgt``, ``zoomin_intervals``. Read as `RLRow`s.
* ``longvideo-r1-sft``: LongVideo-R1's LLaMA-Factory file (``longvideor1-sft-qwen3-llamafactory.json``, alpaca
  with ``system``, ``history``, ``instruction``, ``input``, ``output``): text only, no videos.
* ``longvideo-r1-rl``: LongVideo-R1's RL parquet (``rl_data/longvideor1-rl-train-data-qwen3.parquet``):
  ``data_source``, ``prompt`` (system + user: question, lettered options, then the top-level captions),
  ``reward_model.ground_truth`` (the letter), ``extra_info`` (``video_uid``, ``clue_intervals``, ``duration``,
  ``width``, ``fps``). The video is ``<video_uid>.mp4`` under the root named by ``data_source``. Read as `RLRow`s.
* ``longlens-template`` / ``longlens-cot`` / ``longlens-rl``: our own JSON lines (`data rows --stage 1`,
  `data cot`, `data rows` / `data mine`).

Videos: `VideoRoots` maps each source data set to a folder on this machine (``--video-root NAME=DIR``, and one
plain ``DIR`` for the rest). A path is looked up by its first folder named like a root (``CG-Bench/videos/x.mp4``
or the authors' ``/mnt/.../datasets/CG-Bench/videos/x.mp4`` with ``CG-Bench=/data/cgbench``); the rest of the
path must stay under that folder (``..`` is refused; a symlink inside is fine: the path is judged, not its target).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from longlens.data.rows import CotRow, RLRow, TemplateRow
from longlens.errors import LongLensError
from longlens.jsonl import complete_lines
from longlens.prompts.zoom import unlettered

FORMATS = ("love-r1-sft", "love-r1-rl", "longvideo-r1-sft", "longvideo-r1-rl", "longlens-template", "longlens-cot",
           "longlens-rl")
TEXT_ONLY = ("longvideo-r1-sft",)
"""Formats without videos (the navigate agent's reasoning model trains on text)."""
NO_SOURCE = "(root)"
ABSOLUTE = "(absolute)"


# ---------------------------------------------------------------- video roots
@dataclass(frozen=True)
class Located:
    """Where one row's video is: its `source` data set, the `path` on this machine (None when it cannot be
    placed), and the `problem` when there is one."""

    source: str
    path: Path | None
    problem: str | None = None


@dataclass(frozen=True)
class VideoRoots:
    """Folders of the source data sets: ``named`` (NAME, DIR) pairs and a `default` for paths no name matches."""

    default: str = ""
    named: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str] = (), default: str = "", flag: str = "--video-root") -> VideoRoots:
        """From ``NAME=DIR`` entries; one plain ``DIR`` entry replaces `default` (the folder of every other path).
        `flag` names the entries in errors."""
        named: list[tuple[str, str]] = []
        plain: str | None = None
        for entry in entries:
            name, sep, folder = str(entry).partition("=")
            if not sep:
                if plain is not None and plain != entry:
                    raise LongLensError(f"{flag} {entry}: a second plain folder (the first: {plain}); name the "
                                        "data set of each further one: NAME=DIR")
                plain = str(entry)
                continue
            name, folder = name.strip().strip("/"), folder.strip()
            if not name or not folder or "/" in name:
                raise LongLensError(f"{flag} {entry!r}: write NAME=DIR, NAME a folder name in the rows' video paths "
                                    "(finevideo=/data/finevideo)")
            if any(n == name for n, _ in named):
                raise LongLensError(f"{flag}: {name} is given twice")
            named.append((name, folder))
        return cls(plain or default, tuple(named))

    def root_of(self, source: str) -> str | None:
        return next((d for n, d in self.named if n == source), None)

    def locate(self, video: str, source: str | None = None) -> Located:
        """Where `video` (a path as a data file writes it) is on this machine. `source` names the data set when
        the file says it elsewhere (LongVideo-R1's ``data_source``); the path is then under that root."""
        if not isinstance(video, str) or not video.strip():
            return Located(source or NO_SOURCE, None, "no video path")
        parts = PurePosixPath(video.replace("\\", "/")).parts
        if source is not None:
            root = self.root_of(source) or self.default
            rest = parts
        else:
            at = next((i for i, p in enumerate(parts) if self.root_of(p) is not None), None)
            if at is not None:
                source, root, rest = parts[at], self.root_of(parts[at]), parts[at + 1:]
            elif PurePosixPath(video).is_absolute() or Path(video).is_absolute():
                return Located(ABSOLUTE, Path(video))
            else:
                source = parts[0] if len(parts) > 1 else NO_SOURCE
                root, rest = self.default, parts
        if not root:
            fix = "DIR (the folder the paths are relative to)" if source == NO_SOURCE else f"{source}=DIR"
            return Located(source, None, f"no folder for {source}: give --video-root {fix}")
        if not rest or ".." in rest:
            return Located(source, None, f"{video}: the path leaves its data set's folder")
        base = Path(os.path.normpath(Path(root).expanduser().absolute()))
        return Located(source, base.joinpath(*rest))


# ---------------------------------------------------------------- records
@dataclass(frozen=True)
class Record:
    """One item of a data file: the row read from it (None when it cannot be read: `problem` says why), the
    video as written, and its `source` data set name (LongVideo-R1: ``data_source``; else found by the roots)."""

    index: int
    row: object | None
    video: str = ""
    source: str | None = None
    problem: str | None = None


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                return part["text"]
    raise ValueError("no text part")


def _spans(value, what: str) -> tuple:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(
            isinstance(s, list | tuple) and len(s) == 2 and all(isinstance(x, int | float) for x in s) for s in value):
        raise ValueError(f"{what} is not a list of [start, end] seconds")
    return tuple((float(a), float(b)) for a, b in value)


def love_r1_sft_row(d: Mapping, id: str):
    """A LOVE-R1 SFT item as a `TemplateRow` (``cot`` when it carries ``cot_data``)."""
    msgs = d["messages"]
    if not isinstance(msgs, list) or len(msgs) != 2 or msgs[0].get("role") != "user" \
            or msgs[1].get("role") != "assistant":
        raise ValueError("messages: expected one user and one assistant message")
    cot = "cot_data" in d
    if cot and "zoomin_intervals" not in d:
        raise ValueError("a cot_data item without zoomin_intervals")
    return TemplateRow(id=str(d.get("id", id)), video=str(d["video"]), question=_text(msgs[0]["content"]),
                       target=_text(msgs[1]["content"]), truth=_spans(d.get("tgt"), "tgt"), cot=cot,
                       clips=_spans(d.get("zoomin_intervals"), "zoomin_intervals") if cot else ())


_SOLUTION = re.compile(r"^\s*<answer>\s*([A-Za-z])\s*</answer>\s*$")


def love_r1_rl_row(d: Mapping, id: str) -> RLRow:
    """A LOVE-R1 GRPO item as an `RLRow` (``local`` when it has ``tgt`` spans)."""
    kind = d.get("problem_type", "multiple choice")
    if kind != "multiple choice":
        raise ValueError(f"problem_type {kind!r}: the zoom agent's GRPO trains multiple-choice items")
    options = d["options"]
    if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
        raise ValueError("options: expected a list of option strings")
    m = _SOLUTION.match(str(d["solution"]))
    if not m:
        raise ValueError(f"solution {str(d['solution'])[:40]!r} is not <answer>X</answer>")
    truth = _spans(d.get("tgt"), "tgt")
    return RLRow(id=str(d.get("id", id)), video=str(d["path"]), question=str(d["problem"]).strip(),
                 options=tuple(unlettered(options)), answer=m.group(1).upper(), kind="local" if truth else "general",
                 truth=truth, clips=_spans(d.get("zoomin_intervals"), "zoomin_intervals"), source="love-r1-rl")


def alpaca_problem(d) -> str | None:
    """Why `d` is not an alpaca record with history (LLaMA-Factory's columns), or None."""
    if not isinstance(d, Mapping):
        return "not a JSON object"
    for key in ("instruction", "output"):
        if not isinstance(d.get(key), str):
            return f"no {key} text"
    if not isinstance(d.get("input", ""), str) or not isinstance(d.get("system", ""), str):
        return "input and system must be text"
    history = d.get("history") or []
    if not isinstance(history, list) or not all(
            isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in history):
        return "history must be a list of [user, assistant] texts"
    return None


_OPTION = re.compile(r"^([A-Z])\. (.*)$")
_DURATION = "\n\nThe total duration of the video is "


def longvideo_r1_rl_row(d: Mapping, id: str) -> RLRow:
    """A LongVideo-R1 RL parquet row as an `RLRow`: the question and options from the user prompt (question,
    ``A. ...`` lines, then the captions), the letter from ``reward_model.ground_truth``, the truth from
    ``extra_info.clue_intervals``."""
    extra = d["extra_info"]
    prompt = [dict(m) for m in d["prompt"]]
    user = next(m["content"] for m in prompt if m.get("role") == "user")
    head = user.split(_DURATION, 1)[0].rstrip("\n")
    lines = head.split("\n")
    options: list[str] = []
    while lines and (m := _OPTION.match(lines[-1])):
        options.insert(0, m.group(2))
        lines.pop()
    if not options or [chr(65 + i) for i in range(len(options))] != [
            _OPTION.match(x).group(1) for x in head.split("\n")[len(lines):]]:
        raise ValueError("the user prompt has no A. B. ... option lines after the question")
    answer = str(d["reward_model"]["ground_truth"]).strip()
    if len(answer) != 1 or not answer.isalpha():
        raise ValueError(f"ground_truth {answer[:20]!r} is not an option letter")
    truth = _spans([list(s) for s in extra.get("clue_intervals") or []], "clue_intervals")
    duration = extra.get("duration")
    return RLRow(id=str(extra.get("index", id)), video=f"{extra['video_uid']}.mp4", question="\n".join(lines).strip(),
                 options=tuple(options), answer=answer.upper(), kind="local" if truth else "general", truth=truth,
                 duration_s=float(duration) if duration is not None else None, source=str(d.get("data_source", "")))


# ---------------------------------------------------------------- files
def _json_items(path: Path) -> list:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise LongLensError(f"{path}: cannot read it ({e})") from e
    except ValueError as e:
        raise LongLensError(f"{path}: not JSON ({e}); a released file is one JSON list") from e
    if not isinstance(items, list):
        raise LongLensError(f"{path}: expected a JSON list of items")
    return items


def _jsonl_items(path: Path) -> list:
    out = []
    for i, line in complete_lines(path):
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(f"line {i} is not JSON")
    return out


def _parquet_items(path: Path) -> list:
    from longlens._imports import require

    pq = require("pyarrow.parquet", "train", "reading LongVideo-R1's RL parquet")
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises its own ArrowInvalid etc. for a damaged file
        raise LongLensError(f"{path}: not a readable parquet file ({str(e).splitlines()[0]})") from e


def detect(path: Path, items: Sequence) -> str:
    """The format of a file's items, from the first object's keys."""
    first = next((d for d in items if isinstance(d, Mapping)), None)
    if path.suffix == ".parquet" or (first and "extra_info" in first and "prompt" in first):
        return "longvideo-r1-rl"
    if first is None:
        raise LongLensError(f"{path}: no items")
    keys = set(first)
    if {"video", "messages"} <= keys:
        return "love-r1-sft"
    if {"path", "problem", "solution"} <= keys:
        return "love-r1-rl"
    if {"instruction", "output"} <= keys:
        return "longvideo-r1-sft"
    if {"kind", "clips", "target"} <= keys:
        return "longlens-cot"
    if {"video", "question", "target"} <= keys:
        return "longlens-template"
    if {"video", "question", "answer"} <= keys:
        return "longlens-rl"
    raise LongLensError(f"{path}: not a known training file (first item's fields: {', '.join(sorted(keys)[:8])}); "
                        f"known formats: {', '.join(FORMATS)}")


def read_records(path: str | Path, fmt: str | None = None) -> tuple[str, list[Record]]:
    """(format, one `Record` per item) of a training file; items that cannot be read are records with a
    `problem` (nothing is dropped silently)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LongLensError(f"{path}: no such file")
    if fmt is not None and fmt not in FORMATS:
        raise LongLensError(f"--format {fmt}: known formats are {', '.join(FORMATS)}")
    if path.suffix == ".parquet":
        items = _parquet_items(path)
    elif path.suffix == ".jsonl":
        items = _jsonl_items(path)
    else:
        items = _json_items(path)
    fmt = fmt or detect(path, items)
    return fmt, [_record(fmt, d, i, path.stem) for i, d in enumerate(items)]


def _record(fmt: str, d, i: int, stem: str) -> Record:
    if isinstance(d, str):  # a JSON-lines line that is not JSON
        return Record(i, None, problem=d)
    if not isinstance(d, Mapping):
        return Record(i, None, problem="not a JSON object")
    id = f"{stem}:{i}"
    try:
        if fmt == "love-r1-sft":
            row = love_r1_sft_row(d, id)
            return Record(i, row, row.video)
        if fmt == "love-r1-rl":
            row = love_r1_rl_row(d, id)
            return Record(i, row, row.video)
        if fmt == "longvideo-r1-rl":
            row = longvideo_r1_rl_row(d, id)
            return Record(i, row, row.video, source=row.source or None)
        if fmt == "longvideo-r1-sft":
            problem = alpaca_problem(d)
            return Record(i, None if problem else d, problem=problem)
        row = {"longlens-template": TemplateRow, "longlens-cot": CotRow, "longlens-rl": RLRow}[fmt].from_dict(d)
        return Record(i, row, row.video)
    except KeyError as e:
        return Record(i, None, str(d.get("video") or d.get("path") or ""), problem=f"no field {e.args[0]!r}")
    except (TypeError, ValueError, AttributeError, StopIteration, LongLensError) as e:
        return Record(i, None, str(d.get("video") or d.get("path") or ""),
                      problem=str(e).splitlines()[0] if str(e) else type(e).__name__)


def placed(rows: Sequence, roots: VideoRoots, what: str, *, sources: Sequence[str | None] | None = None,
           skip_missing: bool = False) -> list:
    """`rows` with each video replaced by its path on this machine (`roots`). A video that cannot be placed or
    is not a file is an error naming how many and the first, unless `skip_missing` (then the row is dropped)."""
    out, missing = [], []
    for k, row in enumerate(rows):
        loc = roots.locate(row.video, sources[k] if sources else None)
        if loc.path is None or not loc.path.is_file():
            missing.append(loc.problem or f"{row.video} -> {loc.path} (no such file)")
            continue
        out.append(replace(row, video=str(loc.path)))
    if missing and not skip_missing:
        raise LongLensError(f"{what}: {len(missing)} of {len(rows)} row videos are missing, the first: {missing[0]}; "
                            "`longlens data check` lists them by source; set video_root / --video-root NAME=DIR, "
                            "or skip_missing=true to train without them")
    return out


def read_rows(path: str | Path, kinds: Sequence[type], roots: VideoRoots, what: str, *,
              skip_missing: bool = False) -> tuple[str, list]:
    """The rows of a training file (any format whose rows are one of `kinds`), their videos placed by `roots`.
    A record that cannot be read is an error naming it (`longlens data check` lists them all)."""
    fmt, records = read_records(path)
    bad = [r for r in records if r.problem]
    if bad:
        raise LongLensError(f"{what} {path}: {len(bad)} of {len(records)} items cannot be read, the first: item "
                            f"{bad[0].index}: {bad[0].problem}; see `longlens data check {path}`")
    rows = [r.row for r in records]
    if not rows:
        raise LongLensError(f"{what} {path}: no rows")
    if fmt in TEXT_ONLY or not all(isinstance(r, tuple(kinds)) for r in rows):
        names = ", ".join(k.__name__ for k in kinds)
        raise LongLensError(f"{what} {path}: a {fmt} file; this recipe reads {names} rows"
                            + (" (`longlens data rows --stage 1` writes stage-1 rows)" if "TemplateRow" in names
                               else ""))
    sources = [r.source for r in records]
    return fmt, placed(rows, roots, f"{what} {path}", sources=sources, skip_missing=skip_missing)
