"""The benchmarks, one module each (loader, official scorer, rules, breakdowns, provenance): `BENCHMARKS`."""

from __future__ import annotations

from longlens.bench.benchmark import Benchmark
from longlens.bench.benchmarks import (
    cgbench,
    charades,
    egoschema,
    longvideobench,
    lvbench,
    mlvu,
    mvbench,
    needles,
    nextgqa,
    videomme,
)
from longlens.errors import LongLensError

BENCHMARKS: dict[str, Benchmark] = {m.BENCHMARK.name: m.BENCHMARK for m in (
    videomme, lvbench, mlvu, longvideobench, mvbench, egoschema, cgbench, nextgqa, charades, needles)}
"""Benchmark name -> `Benchmark`: the names ``longlens eval`` and ``longlens score`` accept."""


def get(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise LongLensError(f"unknown benchmark {name!r}; use one of {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name]


__all__ = ["BENCHMARKS", "Benchmark", "get"]
