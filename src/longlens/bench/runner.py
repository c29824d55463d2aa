"""The evaluation runner: resumable, crash-safe, concurrent.

A run folder holds ``config.json`` (the resolved configuration and its hash), ``results.jsonl`` (one
record per finished question, appended and flushed as it completes) and ``traces/`` (one trace per
question). Starting again with the same folder and configuration skips what is done; a torn last line
(``kill -9`` mid-write) is cut off first, so nothing is lost but the questions in flight and nothing is
written twice. A different configuration is refused unless ``mix=True``.

A record is self-sufficient (a report needs no dataset): ``id``, ``video_id``, ``benchmark``, ``task``,
``categories``, ``n_options``, ``truth``, ``truth_spans``, the scored fields of `score_trace`
(``prediction``, ``parsed``, ``correct``; grounding: ``span``, ``iou``, ``iop``), ``error``, ``totals`` (the
trace's costs), ``cost`` (the same fixed keys for every agent: `cost_of`), ``trace`` (its file, relative to
the run folder) and ``wall_s``.

Questions run grouped by video (in the order videos first appear), so the questions on one video are in
flight together and share its decoded frames; with `prepare` (the zoom agent's `prefetch`), the next
videos are decoded in background threads while the current one's questions wait for the model: as many at once
as the machine's cores allow (cores / the decoder's own threads per video; one on 2 cores), each into the frame
cache, so memory holds only the frames of the questions in flight. A failing
model server (`BackendError`, after its retries) stops the run: the failed question gets an error record
(``error_kind`` "server"), the questions in flight finish and are written, and rerunning asks the failed ones
again (their last record counts). A question that fails on its input (a broken video) gets an error record
(``error_kind`` "input") and the run goes on. One process owns a run folder at a time (`RunFolder.lock`).

**Shards.** ``Shard(i, n)`` runs the i-th of n deterministic slices (videos dealt round-robin in order of first
appearance, so a video's questions stay together) into the same folder: ``results-<i>-of-<n>.jsonl`` and its
own lock, beside the other shards' files; `RunFolder.records` merges every results file. Each run (a shard,
or the whole benchmark as shard 1 of 1) leaves ``shards/<i>-of-<n>.json`` naming its questions, so a report
can say which shards are done, running or stopped (`RunFolder.shard_states`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from longlens.agents.trace import Trace
from longlens.backends.base import BackendError
from longlens.bench.sample import Sample
from longlens.bench.scorers import score_reply, score_trace
from longlens.errors import LongLensError
from longlens.jsonl import append_synced, cut_torn_line, dumps, read_lines, run_each, unique_ids, write_json
from longlens.video.decode import default_workers

__all__ = ["WHOLE", "RunFolder", "Shard", "run_eval"]


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Shard:
    """The `index`-th (1-based) of `count` slices of a benchmark: every `count`-th video, in order of first
    appearance, starting with the `index`-th, with all its questions."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise LongLensError(f"--shard {text!r} is not I/N with 1 <= I <= N (e.g. --shard 3/8 for the third of "
                                "eight slices; in a Slurm array --shard $SLURM_ARRAY_TASK_ID/8 with --array=1-8)")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def name(self) -> str:
        return f"{self.index}-of-{self.count}"

    def select(self, samples: Sequence[Sample]) -> list[Sample]:
        if self.count == 1:
            return list(samples)
        videos: dict[str, int] = {}
        for s in samples:
            videos.setdefault(s.video, len(videos))
        return [s for s in samples if videos[s.video] % self.count == self.index - 1]


WHOLE = Shard()
_SHARD_FILE = re.compile(r"results-(\d+)-of-(\d+)\.jsonl")


@dataclass
class RunFolder:
    path: Path
    shard: Shard = WHOLE

    @property
    def results(self) -> Path:
        """The results file this run appends to (the whole run's, or its shard's)."""
        return self.path / ("results.jsonl" if self.shard == WHOLE else f"results-{self.shard.name}.jsonl")

    def results_files(self) -> list[Path]:
        """Every results file of the folder: ``results.jsonl`` first, then the shards' in order."""
        shards = sorted((tuple(map(int, m.groups())), p) for p in self.path.glob("results-*-of-*.jsonl")
                        if (m := _SHARD_FILE.fullmatch(p.name)))
        whole = self.path / "results.jsonl"
        return ([whole] if whole.exists() else []) + [p for _, p in shards]

    @contextlib.contextmanager
    def lock(self):
        """Hold the folder for this process (advisory locks, released when the process ends, however it ends).
        The whole run holds ``.lock`` alone; a shard holds it shared with the other shards, and its own
        ``.lock-<i>-of-<n>`` alone. A second holder is refused with one line naming the first one's PID."""
        self.path.mkdir(parents=True, exist_ok=True)
        sharded = self.shard != WHOLE
        fds = []
        try:
            for name, mode in ((".lock", fcntl.LOCK_SH if sharded else fcntl.LOCK_EX),
                               *(((f".lock-{self.shard.name}", fcntl.LOCK_EX),) if sharded else ())):
                fd = os.open(self.path / name, os.O_RDWR | os.O_CREAT, 0o644)
                fds.append(fd)
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                except BlockingIOError:
                    what = f"shard {self.shard.index}/{self.shard.count} of " if name != ".lock" else ""
                    raise LongLensError(f"{what}{self.path} is being written by another longlens process (pid "
                                        f"{self._holders(name)}); wait for it to finish, or give another --out"
                                        ) from None
                if mode == fcntl.LOCK_EX:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield self
        finally:
            for fd in fds:
                os.close(fd)  # closing releases the lock

    def _holders(self, name: str) -> str:
        """The PIDs written by the holders of lock file `name` (the whole run's, or the shards' when they hold it)."""
        def pids(files) -> list[str]:
            out = []
            for f in files:
                with contextlib.suppress(OSError):
                    if (pid := f.read_text(errors="replace").strip()) and not self._free(f):
                        out.append(pid)
            return out

        shards = pids(sorted(self.path.glob(".lock-*-of-*"))) if name == ".lock" else []
        return ", ".join(shards or pids([self.path / name])) or "?"

    @staticmethod
    def _free(lock_file: Path) -> bool:
        """Whether nobody holds `lock_file` now."""
        try:
            fd = os.open(lock_file, os.O_RDONLY)
        except OSError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    def prepare(self, config: dict, *, mix: bool = False) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "traces").mkdir(exist_ok=True)
        counts = {int(m.group(2)) for p in self.results_files() if (m := _SHARD_FILE.fullmatch(p.name))}
        if self.shard != WHOLE and counts - {self.shard.count}:
            raise LongLensError(f"{self.path} was split into {sorted(counts)[0]} shards, not {self.shard.count}; "
                                f"give --shard I/{sorted(counts)[0]}, or run it whole (no --shard) to finish it")
        cfg_file = self.path / "config.json"
        h = config_hash(config)
        if cfg_file.exists():
            old = json.loads(cfg_file.read_text())
            if old.get("hash") != h and not mix:
                raise LongLensError(f"{self.path} holds a run with another configuration (hash {old.get('hash')}, "
                                    f"now {h}); use another --out, or --mix to add to it anyway")
        else:
            write_json(cfg_file, {"hash": h, "config": config})  # shards starting together write the same file
        self._cut_torn_line()
        self._sweep()

    def _sweep(self) -> None:
        """Remove the temporary files of writers killed mid-write (a trace, a status): all of them when this
        process holds the whole folder, those over an hour old when shards may be writing beside it."""
        oldest = time.time() - (3600 if self.shard != WHOLE else 0)
        for folder in (self.path / "traces", self.path / "shards", self.path):
            for tmp in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    if tmp.stat().st_mtime < oldest or self.shard == WHOLE:
                        tmp.unlink()

    def _cut_torn_line(self) -> None:
        cut_torn_line(self.results)

    def records(self) -> list[dict]:
        """The finished records of every results file, one per question: a question recorded again (an error
        retried on resume, or by another shard) counts by its last record that is not a server error. A torn
        last line (a run killed mid-write, or one writing now) is not one."""
        latest: dict[str, dict] = {}
        for path in self.results_files():
            for r in read_lines(path):
                key = r.get("id")
                if r.get("error_kind") == "server" and key in latest and latest[key].get("error_kind") != "server":
                    continue
                latest.pop(key, None)
                latest[key] = r
        return list(latest.values())

    # ------------------------------------------------------------ shard states
    def write_status(self, ids: list[str], *, total: int, missing_videos: int, ended: bool) -> None:
        """``shards/<i>-of-<n>.json``: this run's questions, and the whole benchmark's count (`total`, questions
        without their video included)."""
        write_json(self.path / "shards" / f"{self.shard.name}.json",
                   {"shard": [self.shard.index, self.shard.count], "questions": len(ids), "total": total,
                    "missing_videos": missing_videos, "pid": os.getpid(), "ended": ended, "ids": ids}, indent=None)

    def statuses(self) -> list[dict]:
        """The shard status files that can be read, in shard order."""
        files = [(tuple(map(int, m.groups())), f) for f in (self.path / "shards").glob("*-of-*.json")
                 if (m := re.fullmatch(r"(\d+)-of-(\d+)", f.stem))]
        out = []
        for _, f in sorted(files):
            try:
                status = json.loads(f.read_text(encoding="utf-8"))
                i, n = status["shard"]
                out.append({**status, "shard": (int(i), int(n)), "ids": list(status["ids"])})
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a status being replaced, or not ours
        return out

    def shard_states(self, records: list[dict] | None = None) -> list[dict]:
        """Each run that worked on the folder: ``{"shard": "3/8", "questions", "done", "state"}``, state
        ``complete`` (every question has a record that is not a server error), ``running`` (its process holds
        its lock), ``stopped``, or ``not started`` (a shard of a split no run of which has been seen)."""
        records = self.records() if records is None else records
        done = {r.get("id") for r in records if r.get("error_kind") != "server"}
        states, seen = [], set()
        for status in self.statuses():
            (i, n), ids = status["shard"], status["ids"]
            seen.add((i, n))
            finished = sum(1 for q in ids if q in done)
            lock = self.path / (".lock" if n == 1 else f".lock-{i}-of-{n}")
            state = ("complete" if finished == len(ids) else "running" if not self._free(lock) else "stopped")
            states.append({"shard": f"{i}/{n}", "questions": len(ids), "done": finished, "state": state})
        for n in sorted({n for _, n in seen if n > 1}):
            states += [{"shard": f"{i}/{n}", "questions": None, "done": 0, "state": "not started"}
                       for i in range(1, n + 1) if (i, n) not in seen]
        return sorted(states, key=lambda st: tuple(int(x) for x in st["shard"].split("/"))[::-1])

    def planned(self) -> tuple[int, int] | None:
        """(questions of the whole benchmark as its runs saw it, those without their video), or None for a
        folder with no shard states (made before they were kept)."""
        statuses = self.statuses()
        if not statuses:
            return None
        return (max(int(st.get("total") or len(st["ids"])) for st in statuses),
                max(int(st.get("missing_videos") or 0) for st in statuses))


COST_KEYS = ("steps", "calls", "frames_decoded", "visual_tokens", "text_tokens", "prompt_tokens",
             "completion_tokens", "token_mismatches", "model_s", "wall_s")
"""A record's ``cost``: ``steps`` (zoom steps or navigate rounds), ``calls`` (`Totals.calls`, model calls per role: zoom
``{"vlm": n}``, navigate ``{"reasoning", "caption", "videoqa"}``), frames decoded, visual tokens, text tokens
(prompt tokens less the media tokens the backend reported, plus completion tokens; servers that count media
in the prompt without saying how many leave them in), prompt and completion tokens as reported, calls whose
reported visual tokens differ from LongLens's count (``token_mismatches``), model seconds and wall seconds
(decoding included)."""


def cost_of(trace: Trace | None, wall_s: float) -> dict:
    """The cost of one question, `COST_KEYS` in order; zeros when no trace was made."""
    if trace is None:
        return {"steps": 0, "calls": {}, "frames_decoded": 0, "visual_tokens": 0, "text_tokens": 0,
                "prompt_tokens": 0, "completion_tokens": 0, "token_mismatches": 0, "model_s": 0.0,
                "wall_s": round(wall_s, 3)}
    t = trace.totals
    prompt = sum(s.prompt_tokens or 0 for s in trace.steps)
    completion = sum(s.completion_tokens or 0 for s in trace.steps)
    media = sum(sum(s.media_tokens) for s in trace.steps if s.media_tokens and s.prompt_tokens)
    return {"steps": t.steps, "calls": dict(t.calls), "frames_decoded": t.frames_decoded,
            "visual_tokens": t.visual_tokens, "text_tokens": prompt - media + completion, "prompt_tokens": prompt,
            "completion_tokens": completion, "token_mismatches": t.token_mismatches, "model_s": t.model_s,
            "wall_s": round(wall_s, 3)}


def cost_summary(records: list[dict]) -> dict:
    """``{"questions": n, "total": {...}, "per_question": {...}}`` over the records that carry a cost."""
    costs = [r["cost"] for r in records if r.get("cost")]
    total: dict = {k: 0 for k in COST_KEYS}
    total["calls"] = {}
    for c in costs:
        for k in COST_KEYS:
            if k == "calls":
                for role, n in c["calls"].items():
                    total["calls"][role] = total["calls"].get(role, 0) + n
            else:
                total[k] += c.get(k) or 0
    n = len(costs)
    mean = {k: (round(v / n, 3) if n else 0.0) for k, v in total.items() if k != "calls"}
    mean["calls"] = {role: round(v / n, 3) for role, v in total["calls"].items()}
    total["model_s"], total["wall_s"] = round(total["model_s"], 3), round(total["wall_s"], 3)
    return {"questions": n, "total": total, "per_question": {k: mean[k] for k in COST_KEYS}}


def by_video(samples: list[Sample]) -> list[Sample]:
    """`samples` grouped by video, videos in order of first appearance, questions in order within one."""
    first: dict[str, int] = {}
    for s in samples:
        first.setdefault(s.video, len(first))
    return sorted(samples, key=lambda s: first[s.video])


def run_eval(samples: list[Sample], answer: Callable[[Sample], Trace], out: str | Path, config: dict, *,
             concurrency: int = 1, extractor: str = "robust", mix: bool = False,
             progress: Callable[[dict, int, int], None] | None = None,
             prepare: Callable[[Sample], None] | None = None, shard: Shard = WHOLE,
             missing_videos: int = 0) -> list[dict]:
    """Answer every sample (of `shard`'s slice) not yet in `out` with `answer(sample) -> Trace`, `concurrency`
    at a time; returns all records of the run folder, every shard's. When the first question on a video
    starts, `prepare(sample)` is called in background threads for the first questions on the next videos
    (concurrency > 1 only)."""
    unique_ids(samples)
    folder = RunFolder(Path(out), shard)
    with folder.lock():
        folder.prepare(config, mix=mix)
        mine = shard.select(samples)
        status = {"total": len(samples) + missing_videos, "missing_videos": missing_videos}
        folder.write_status([s.id for s in mine], **status, ended=False)
        try:
            return _run_locked(folder, mine, answer, concurrency=concurrency, extractor=extractor,
                               progress=progress, prepare=prepare)
        finally:
            folder.write_status([s.id for s in mine], **status, ended=True)


def _run_locked(folder: RunFolder, samples, answer, *, concurrency, extractor, progress, prepare):
    ids = {s.id for s in samples}
    done = {r["id"] for r in folder.records() if r.get("error_kind") != "server" and r.get("id") in ids}
    todo = by_video([s for s in samples if s.id not in done])  # server errors are asked again
    lock = threading.Lock()
    total = len(samples)
    finished = len(done)

    # decode ahead: as many videos at once as the cores allow (each decode already runs default_workers() threads)
    width = max(1, (os.cpu_count() or 1) // default_workers())
    ahead = ThreadPoolExecutor(max_workers=width) if prepare and concurrency > 1 else None
    following: dict[str, list[Sample]] = {}  # first sample of a video -> first samples of the next `width` videos
    firsts = [s for i, s in enumerate(todo) if i == 0 or todo[i - 1].video != s.video]
    for i, a in enumerate(firsts):
        following[a.id] = firsts[i + 1 : i + 1 + width]
    submitted: set[str] = set()

    def warm(sample: Sample) -> None:
        with contextlib.suppress(Exception):  # only a head start: the question itself meets any failure
            prepare(sample)

    def one(sample: Sample) -> dict:
        if ahead is not None and sample.id in following:
            with lock:
                nexts = [b for b in following[sample.id] if b.id not in submitted]
                submitted.update(b.id for b in nexts)
            for b in nexts:
                ahead.submit(warm, b)
        t0 = time.perf_counter()
        base = {"id": sample.id, "video_id": sample.video_id, "benchmark": sample.benchmark, "task": sample.task,
                "categories": sample.categories, "n_options": len(sample.options), "truth": sample.answer,
                "truth_spans": [list(sp) for sp in sample.spans]}
        def failed(exc: Exception, kind: str) -> dict:
            wall = time.perf_counter() - t0
            return {**base, **score_reply(sample, None, None, extractor), "prediction": "", "error": str(exc),
                    "error_kind": kind, "cost": cost_of(None, wall), "wall_s": round(wall, 3)}

        try:
            trace = answer(sample)
        except BackendError as exc:  # the server, after its retries: recorded, then the run stops (a rerun
            write(failed(exc, "server"))  # asks this question again)
            raise
        except LongLensError as exc:  # bad input (a broken video ...): recorded, the run goes on
            return failed(exc, "input")
        if trace.meta.get("server_failed"):  # an agent that ends the question itself on a failing server
            error = BackendError(trace.error or "the model server failed")
            write(failed(error, "server"))
            raise error
        trace_file = folder.path / "traces" / f"{_safe(sample.id)}.json"
        trace.save(trace_file)
        wall = time.perf_counter() - t0
        return {**base, **score_trace(trace, sample, extractor), "error": trace.error,
                "guessed": trace.totals.guessed, "retries": trace.totals.retries,
                "totals": asdict(trace.totals), "cost": cost_of(trace, wall),
                "trace": str(trace_file.relative_to(folder.path)), "wall_s": round(wall, 3)}

    def write(record: dict) -> None:
        nonlocal finished
        line = dumps(record) + "\n"
        with lock:
            append_synced(folder.results, line)
            finished += 1
            if progress:
                progress(record, finished, total)

    try:
        run_each(todo, one, write, concurrency)  # FIFO: one video's questions start together
    finally:
        if ahead is not None:
            ahead.shutdown(cancel_futures=True)
    return folder.records()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]
