"""The solver: the one place a benchmark question becomes an agent call (inspect_ai's Task = dataset + solver +
scorer; the dataset is `Benchmark.load`, the scorer `scorers.score_trace`)."""

from __future__ import annotations

from longlens.agents.trace import Trace
from longlens.bench.sample import Sample
from longlens.prompts.zoom import LETTERS


def ask_agent(agent, sample: Sample) -> Trace:
    """A grounding question (Charades-STA) asks for a ``[start, end]`` span in the agent's own words; a grounded
    multiple-choice question (NExT-GQA, CG-Bench) is asked as multiple choice, and its evidence span is the
    last interval the agent named (`bench.grounding.predicted_span`)."""
    task = "grounding" if sample.task == "grounding" else "choice"
    return agent.run(sample.video, sample.question, sample.options[: len(LETTERS)], task=task)
