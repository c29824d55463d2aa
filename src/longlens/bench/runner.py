"""The evaluation runner: resumable, crash-safe, concurrent.

A run folder holds ``config.json`` (the resolved configuration and its hash), ``results.jsonl`` (one
record per finished question, appended and flushed as it completes) and ``traces/`` (one trace per
question). Starting again with the same folder and configuration skips what is done; a torn last line
(``kill -9`` mid-write) is cut off first, so nothing is lost but the questions in flight and nothing is
written twice. A different configuration is refused unless ``mix=True``.

A record is self-sufficient (a report needs no dataset): ``id``, ``video_id``, ``benchmark``, ``task``,
``categories``, ``n_options``, ``truth``, ``truth_spans``, the scored fields of `score_trace`
(``prediction``, ``parsed``, ``correct``; grounding: ``span``, ``iou``, ``iop``), ``error``, ``totals`` (the
trace's costs), ``trace`` (its file, relative to the run folder) and ``wall_s``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from longlens.agents.trace import Trace
from longlens.bench.sample import Sample
from longlens.bench.scorers import score_trace
from longlens.errors import LongLensError


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class RunFolder:
    path: Path

    @property
    def results(self) -> Path:
        return self.path / "results.jsonl"

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
        """Drop a partial last line (a kill mid-write) so the next record starts on its own line."""
        if not self.results.exists():
            return
        data = self.results.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.results.open("r+b") as f:
                f.truncate(keep)

    def records(self) -> list[dict]:
        if not self.results.exists():
            return []
        out = []
        for line in self.results.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out


def run_eval(samples: list[Sample], answer: Callable[[Sample], Trace], out: str | Path, config: dict, *,
             concurrency: int = 1, extractor: str = "robust", mix: bool = False,
             progress: Callable[[dict, int, int], None] | None = None) -> list[dict]:
    """Answer every sample not yet in `out` with `answer(sample) -> Trace`, `concurrency` at a time;
    returns all records of the run folder."""
    folder = RunFolder(Path(out))
    folder.prepare(config, mix=mix)
    done = {r["id"] for r in folder.records()}
    todo = [s for s in samples if s.id not in done]
    lock = threading.Lock()
    total = len(samples)
    finished = len(done)

    def one(sample: Sample) -> dict:
        t0 = time.perf_counter()
        base = {"id": sample.id, "video_id": sample.video_id, "benchmark": sample.benchmark, "task": sample.task,
                "categories": sample.categories, "n_options": len(sample.options), "truth": sample.answer,
                "truth_spans": [list(sp) for sp in sample.spans]}
        try:
            trace = answer(sample)
        except LongLensError as exc:  # bad input (a broken video ...): recorded, the run goes on
            return {**base, "prediction": "", "parsed": None, "correct": False, "error": str(exc),
                    "wall_s": round(time.perf_counter() - t0, 3)}
        trace_file = folder.path / "traces" / f"{_safe(sample.id)}.json"
        trace.save(trace_file)
        return {**base, **score_trace(trace, sample, extractor), "error": trace.error, "totals": trace.totals,
                "trace": str(trace_file.relative_to(folder.path)), "wall_s": round(time.perf_counter() - t0, 3)}

    def write(record: dict) -> None:
        nonlocal finished
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with lock:
            with folder.results.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finished += 1
            if progress:
                progress(record, finished, total)

    if concurrency <= 1:
        for s in todo:
            write(one(s))
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(one, s) for s in todo]
            for fut in as_completed(futures):
                write(fut.result())
    return folder.records()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]
