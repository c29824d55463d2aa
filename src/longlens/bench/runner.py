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
video is decoded in a background thread while the current one's questions wait for the model. A failing
model server (`BackendError`, after its retries) stops the run: the failed question gets an error record
(``error_kind`` "server"), the questions in flight finish and are written, and rerunning asks the failed ones
again (their last record counts). A question that fails on its input (a broken video) gets an error record
(``error_kind`` "input") and the run goes on. One process owns a run folder at a time (`RunFolder.lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from longlens.agents.trace import Trace
from longlens.backends.base import BackendError
from longlens.bench.sample import Sample
from longlens.bench.scorers import score_reply, score_trace
from longlens.errors import LongLensError
from longlens.jsonl import append_synced, cut_torn_line, dumps, read_lines

__all__ = ["RunFolder", "append_synced", "cut_torn_line", "run_each", "run_eval", "unique_ids"]


def run_each(items: list, work: Callable, write: Callable, concurrency: int = 1) -> None:
    """``write(work(item))`` for every item, `concurrency` works at a time (`write` is called from this
    thread, one result at a time, in order of completion). The first exception of a `work` stops the run:
    the works in flight finish and are written, the others never start, and the exception is raised."""
    if concurrency <= 1:
        for item in items:
            write(work(item))
        return
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(work, item) for item in items]  # FIFO: items start in order
        for fut in as_completed(futures):
            if fut.cancelled():
                continue
            if fut.exception() is None:
                write(fut.result())  # what finished is kept, even after a failure
            elif failure is None:
                failure = fut.exception()
                for other in futures:
                    other.cancel()
    if failure is not None:
        raise failure


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class RunFolder:
    path: Path

    @property
    def results(self) -> Path:
        return self.path / "results.jsonl"

    @contextlib.contextmanager
    def lock(self):
        """Hold the folder for this process (an advisory lock on ``.lock``, released when the process ends,
        however it ends); a second holder is refused with one line naming the first one's PID."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise LongLensError(f"{self.path} is being written by another longlens process (pid {holder}); "
                                    "wait for it to finish, or give another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield self
        finally:
            os.close(fd)  # closing releases the lock

    def prepare(self, config: dict, *, mix: bool = False) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "traces").mkdir(exist_ok=True)
        cfg_file = self.path / "config.json"
        h = config_hash(config)
        if cfg_file.exists():
            old = json.loads(cfg_file.read_text())
            if old.get("hash") != h and not mix:
                raise LongLensError(f"{self.path} holds a run with another configuration (hash {old.get('hash')}, "
                                    f"now {h}); use another --out, or --mix to add to it anyway")
        else:
            cfg_file.write_text(json.dumps({"hash": h, "config": config}, indent=1, default=str))
        self._cut_torn_line()

    def _cut_torn_line(self) -> None:
        cut_torn_line(self.results)

    def records(self) -> list[dict]:
        """The finished records, one per question: a question recorded again (an error retried on resume)
        counts by its last record. A torn last line, not yet cut, is not one."""
        latest: dict[str, dict] = {}
        for r in read_lines(self.results):
            latest.pop(r.get("id"), None)
            latest[r.get("id")] = r
        return list(latest.values())


COST_KEYS = ("steps", "calls", "frames_decoded", "visual_tokens", "text_tokens", "prompt_tokens",
             "completion_tokens", "token_mismatches", "model_s", "wall_s")
"""A record's ``cost``: ``steps`` (zoom steps or navigate rounds), ``calls`` (model calls per role: zoom
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
    if trace.agent == "navigate":
        calls = {"reasoning": t["rounds"], "caption": t["caption_made"], "videoqa": t["videoqa"]}
    else:
        calls = {"vlm": t["steps"]}
    prompt = sum(s.prompt_tokens or 0 for s in trace.steps)
    completion = sum(s.completion_tokens or 0 for s in trace.steps)
    media = sum(sum(s.media_tokens) for s in trace.steps if s.media_tokens and s.prompt_tokens)
    return {"steps": t.get("rounds", t["steps"]), "calls": calls, "frames_decoded": t["frames_decoded"],
            "visual_tokens": t["visual_tokens"], "text_tokens": prompt - media + completion, "prompt_tokens": prompt,
            "completion_tokens": completion, "token_mismatches": t.get("token_mismatches", 0), "model_s": t["model_s"],
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


def unique_ids(samples: Sequence[Sample]) -> None:
    """Raise when a question id appears twice (a resumable run keys on ids)."""
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            raise LongLensError(f"question id {s.id!r} appears twice in the benchmark data; ids must be unique "
                                "for a run to resume (fix or drop the duplicate)")
        seen.add(s.id)


def run_eval(samples: list[Sample], answer: Callable[[Sample], Trace], out: str | Path, config: dict, *,
             concurrency: int = 1, extractor: str = "robust", mix: bool = False,
             progress: Callable[[dict, int, int], None] | None = None,
             prepare: Callable[[Sample], None] | None = None) -> list[dict]:
    """Answer every sample not yet in `out` with `answer(sample) -> Trace`, `concurrency` at a time;
    returns all records of the run folder. When the first question on a video starts, `prepare(sample)`
    is called in a background thread for the first question on the next video (concurrency > 1 only)."""
    unique_ids(samples)
    folder = RunFolder(Path(out))
    with folder.lock():
        return _run_locked(folder, samples, answer, config, concurrency=concurrency, extractor=extractor, mix=mix,
                           progress=progress, prepare=prepare)


def _run_locked(folder: RunFolder, samples, answer, config, *, concurrency, extractor, mix, progress, prepare):
    folder.prepare(config, mix=mix)
    done = {r["id"] for r in folder.records() if r.get("error_kind") != "server"}  # server errors: asked again
    todo = by_video([s for s in samples if s.id not in done])
    lock = threading.Lock()
    total = len(samples)
    finished = len(done)

    ahead = ThreadPoolExecutor(max_workers=1) if prepare and concurrency > 1 else None
    following = {}  # first sample of a video -> first sample of the next video
    firsts = [s for i, s in enumerate(todo) if i == 0 or todo[i - 1].video != s.video]
    for a, b in zip(firsts, firsts[1:], strict=False):
        following[a.id] = b

    def warm(sample: Sample) -> None:
        with contextlib.suppress(Exception):  # only a head start: the question itself meets any failure
            prepare(sample)

    def one(sample: Sample) -> dict:
        if ahead is not None and sample.id in following:
            ahead.submit(warm, following[sample.id])
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
        return {**base, **score_trace(trace, sample, extractor), "error": trace.error, "totals": trace.totals,
                "cost": cost_of(trace, wall), "trace": str(trace_file.relative_to(folder.path)),
                "wall_s": round(wall, 3)}

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
