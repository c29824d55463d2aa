"""Benchmarks: native-format adapters -> `Sample`, answer extractors and scorers."""

from longlens.bench.adapters import Loaded, load_lvbench, load_mlvu, load_needles, load_videomme
from longlens.bench.sample import Sample
from longlens.bench.scorers import Accuracy, Score, accuracy, breakdown, macro_average, score_choice

__all__ = ["Accuracy", "Loaded", "Sample", "Score", "accuracy", "breakdown", "load_lvbench", "load_mlvu",
           "load_needles", "load_videomme", "macro_average", "score_choice"]
