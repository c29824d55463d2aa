"""`Benchmark`: everything LongLens knows about one benchmark, in one value (the shape of inspect_ai's Task).

Each benchmark is a module of `longlens.bench.benchmarks` that defines ``BENCHMARK``: its loader (native files
-> `Sample`s), its official scorer reproduced (reply -> scored fields, records -> metrics, with the official
denominators), named answer rules, breakdowns and the official code it follows. The registry is
`longlens.bench.benchmarks.BENCHMARKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

Span = tuple[float, float]


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    load: Callable[[str | Path, str | Path | None], object]
    """``(data, videos) -> Loaded``; `videos` None: names only (scoring predictions made elsewhere)."""
    official: Callable | None = None
    """``(sample, reply | None, spans | None) -> dict``: the scored fields of one reply as the official script
    scores it (``parsed``, ``correct``; grounding ``span``, ``iou``, ...). `reply` None: no prediction.
    `spans`: spans given as data (a predictions file's ``span``/``spans``, an agent's zoom), which win over
    spans read from the reply."""
    official_metrics: Callable[[list[dict]], dict] | None = None
    """Records scored by `official` -> ``{name: metric}`` with the official script's denominators; the first
    entry is the headline. None: the letter accuracy under `official_policy`."""
    official_policy: str = "wrong"
    """Without `official_metrics`: how the official script counts a reply it cannot read (wrong, drop, random)."""
    rules: Mapping[str, Callable] = field(default_factory=dict)
    """Named letter rules for ``--extractor`` (``(reply, sample) -> letter | None``)."""
    breakdowns: tuple[str, ...] = ()
    macro: str | None = None
    """The headline name when it is the plain mean of per-task accuracies (MLVU's M-Avg)."""
    thresholds: tuple[float, ...] = ()
    official_source: str = ""
    """The official code reproduced: repository@commit and file."""
    data_help: str = ""
    """What ``--data`` names."""

    @property
    def has_official(self) -> bool:
        return self.official is not None
