"""Every official scorer, and ours, on 100k adversarial replies each: never an exception, always a well-formed
record (model text is data: a reply that breaks an official script is scored, not a traceback)."""

from __future__ import annotations

import itertools
import math
import random
import zlib

import pytest

from longlens.bench.benchmarks import BENCHMARKS
from longlens.bench.sample import Sample
from longlens.bench.scorers import score_reply

N = 100_000
FRAGMENTS = [
    "A", "B", "C", "D", "E", "F", "H", "I", "a", "b", "(A)", "(B) red", "B)", ")", "(", "((B))", "[", "]", "{", "}",
    "```json", "```", '{"result": ', "}", '"C"', "C", "F ", "[[", "]]", ", ", ": ", ":", "null", "true", "NaN",
    "9" * 60, "1e999", "-5", "0", "12.5", "1..2", "3.", " - ", "-", "–", "to", " to ", "stop", "today", "\n", "!",
    "?", ".", "starts at ", "ends at ", "happens in ", "start time", "end", "00:00:18", "1:05", "２７.８",
    "The answer is ", "Best option:", "The best answer is", "\\boxed{", "<answer>", "</answer>", "**", "@", " ",
    "a specific example is : 20.8 - 30.0 seconds", "between 4 and 9", "0.5", "1", "2", "4", "[0.2, 0.5]",
    "\u0000", "\ud7ff", "é", "🙂", "\t",
]


HUGE = [  # once each: what breaks (or hangs) the official scripts
    "", " ", "```json\n" + "[" * 50_000 + "]" * 50_000 + "\n```", "```json\n{\"result\": " + "[" * 3000 + "\n```",
    "```json```", "```json\n\n```", '```json\n{"result": ' + "9" * 5000 + "}\n```", "9" * 5000, "9" * 5000 + " - 1",
    "1." * 2500, "1:" * 2500, "9 " * 2500, "(" * 5000, ")" * 5000, "A " * 2500, "to" * 2500, "[1, 2]" * 800,
]


def replies(seed: int):
    rng = random.Random(seed)
    yield from HUGE
    for _ in range(N):
        yield "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 12)))


def samples() -> dict[str, Sample]:
    opts = ("red", "blue", "green", "white", "black")
    return {
        "videomme": Sample("videomme", "q", "v", "Q?", opts[:4], "B"),
        "lvbench": Sample("lvbench", "q", "v", "Q?", opts[:4], "C", categories={"capability": ["reasoning"]}),
        "mlvu": Sample("mlvu", "q", "v", "Q?", opts[:4], "@", categories={"task": "needle"}),
        "longvideobench": Sample("longvideobench", "q", "v", "Q?", opts, "E"),
        "mvbench": Sample("mvbench", "q", "v", "Q?", opts[:3], "A"),
        "egoschema": Sample("egoschema", "q", "v", "Q?", opts, "D"),
        "cgbench": Sample("cgbench", "q", "v", "Q?", opts + ("x", "y", "z"), "H", spans=((10.0, 20.0), (15.0, 30.0)),
                          task="grounded_choice", duration_s=100.0),
        "nextgqa": Sample("nextgqa", "q", "v", "Q?", opts, "B", spans=((2.0, 9.5), (-0.0, 3.0)),
                          task="grounded_choice", duration_s=40.0),
        "charades": Sample("charades", "q", "v", "a person opens a door", (), None, spans=((24.3, 30.4),),
                           task="grounding"),
    }


def well_formed(record: dict) -> None:
    assert record["parsed"] is None or isinstance(record["parsed"], str)
    assert isinstance(record["correct"], bool)
    for key in ("iou", "iop", "miou"):
        value = record.get(key)
        assert value is None or (isinstance(value, (int, float)) and (math.isfinite(value) or math.isnan(value)))


@pytest.mark.parametrize("bench", sorted(b for b, spec in BENCHMARKS.items() if spec.has_official))
def test_official_scorer_never_raises(bench):
    sample = samples()[bench]
    for i, reply in enumerate(replies(zlib.crc32(bench.encode()))):
        well_formed(score_reply(sample, reply, None, "official"))
        if i % 50 == 0:  # spans as data too, reversed and zero-length ones included
            spans = [(i % 37 - 3.0, (i * 7) % 41 - 3.0)] * (i % 3)
            well_formed(score_reply(sample, reply, spans, "official"))


def test_our_scorer_never_raises():
    for sample in samples().values():
        for reply in itertools.islice(replies(7), N // 10):
            well_formed(score_reply(sample, reply, None, "robust"))


def test_charades_range_pattern_matches_as_the_official_one():
    """The official eval_tvg.py pattern backtracks cubically on digit runs; ours is possessive. Same matches."""
    import re

    from longlens.bench.benchmarks.charades import _RANGE

    official = re.compile(r"(\d+\.*\d*)\s*-\s*(\d+\.*\d*)")
    rng = random.Random(0)
    for _ in range(200_000):
        text = "".join(rng.choice("0123456789.- \na\u0662") for _ in range(rng.randint(0, 14)))
        assert _RANGE.findall(text) == official.findall(text), text
