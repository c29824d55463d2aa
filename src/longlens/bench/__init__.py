"""Benchmarks: native-format adapters -> `Sample`, answer extractors, span measures, scorers and metrics."""

from longlens.bench.adapters import LOADERS, Loaded, load_lvbench, load_mlvu, load_needles, load_videomme
from longlens.bench.adapters_more import (
    load_cgbench,
    load_charades,
    load_egoschema,
    load_longvideobench,
    load_mvbench,
    load_nextgqa,
)
from longlens.bench.sample import Sample
from longlens.bench.scorers import Accuracy, Score, accuracy, breakdown, macro_average, score_choice

__all__ = ["LOADERS", "Accuracy", "Loaded", "Sample", "Score", "accuracy", "breakdown", "load_cgbench",
           "load_charades", "load_egoschema", "load_longvideobench", "load_lvbench", "load_mlvu", "load_mvbench",
           "load_needles", "load_nextgqa", "load_videomme", "macro_average", "score_choice"]
