"""Benchmarks: one module per benchmark under `longlens.bench.benchmarks` (loader, official scorer, rules,
breakdowns, provenance), our answer extractor, span measures, scorers, metrics, the runner and reports."""

from longlens.bench.benchmark import Benchmark
from longlens.bench.benchmarks import BENCHMARKS
from longlens.bench.loading import Loaded
from longlens.bench.sample import Sample
from longlens.bench.scorers import Accuracy, Score, accuracy, breakdown, macro_average, score_choice, score_reply

LOADERS = {name: b.load for name, b in BENCHMARKS.items()}
"""Benchmark name -> loader ``(data, videos) -> Loaded``."""

__all__ = ["BENCHMARKS", "LOADERS", "Accuracy", "Benchmark", "Loaded", "Sample", "Score", "accuracy", "breakdown",
           "macro_average", "score_choice", "score_reply"]
