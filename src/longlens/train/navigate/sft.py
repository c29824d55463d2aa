"""Supervised fine-tuning of the navigate agent's text reasoning model (LongVideo-R1: trajectories from
qiujihao19/LongVideo-R1@77c87ec data/sft_data_generation.py, trained by LLaMA-Factory/examples/train_full/qwen3.yaml).

Trajectories come from two sources:

* our navigate runs (``longlens eval ... --agent navigate``): each record's trace is replayed into the exact
  conversation the agent sent (system, first message, turns, observations, feedback, the last-round message);
  re-asked turns are left out as they were at inference, invalid turns stay in the context without loss
  (`train_invalid_turns`), and only correctly answered questions are kept by default (`only_correct`);
* the reference's released LLaMA-Factory file (alpaca with history: ``system``, ``history`` [[user, assistant],
  ...], ``instruction``, ``input``, ``output``).

Each conversation is rendered with the tokenizer's chat template, as the serving side renders what the agent
sends. Two modes:

* ``per_turn``: one sample per assistant turn: the prompt exactly as inference renders it (the template with
  the generation prompt) and the turn + ``<|im_end|>`` with loss; what LLaMA-Factory's ``mask_history`` does on
  data unrolled per turn. Identical samples (an unrolled file repeats its prefixes) are dropped (`dedupe`).
* ``all_turns``: one sample per trajectory, loss on every assistant turn (+ ``<|im_end|>``), everything else
  masked. The template must be append-only (each turn's prompt extends the previous prompt and reply); one that
  rewrites earlier turns (the stock Qwen3 template strips old ``<think>``) is refused with a clear error.

Samples longer than `max_length` tokens are skipped and counted (LLaMA-Factory's cutoff is 24 576).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from longlens.agents.trace import Trace
from longlens.errors import ConfigError, LongLensError
from longlens.train.config import with_trl
from longlens.train.sft_core import load_text_model, sft_args, train

log = logging.getLogger(__name__)
MODES = ("per_turn", "all_turns")


@dataclass(frozen=True)
class Trajectory:
    """A conversation: ``(role, text)`` messages and, per message, whether it is an assistant turn with loss."""

    id: str
    messages: tuple[tuple[str, str], ...]
    train: tuple[bool, ...]
    source: str = ""

    def chat(self, upto: int | None = None) -> list[dict]:
        return [{"role": r, "content": t} for r, t in self.messages[:upto]]


# ---------------------------------------------------------------- sources
def from_trace(trace: Trace, id: str, *, train_invalid_turns: bool = False) -> Trajectory:
    """The conversation a navigate trace's reasoning model saw, turn by turn (see `NavigateAgent.run`)."""
    if trace.agent != "navigate":
        raise LongLensError(f"{id}: a {trace.agent!r} trace; navigate SFT reads navigate runs")
    msgs, train = [], []
    for step in trace.steps:  # the conversation is the steps' messages, one after the other
        for m in step.to_messages():
            msgs.append((m["role"], m["content"]))
            train.append(m["role"] == "assistant" and (step.error is None or train_invalid_turns))
    return Trajectory(id, tuple(msgs), tuple(train), source=f"trace:{trace.backend}")


def from_run(run_dir: str | Path, *, only_correct: bool = True, train_invalid_turns: bool = False) -> list[Trajectory]:
    """Trajectories of an eval run folder (``results.jsonl`` + ``traces/``)."""
    from longlens.bench.runner import RunFolder

    run = Path(run_dir)
    folder = RunFolder(run)
    if not folder.results_files():
        raise LongLensError(f"{run}: not an eval run folder (no results.jsonl)")
    out = []
    for i, record in enumerate(folder.records(), 1):  # every shard's, one per question
        if only_correct and not record.get("correct"):
            continue
        if not record.get("trace"):
            continue
        try:
            trace = Trace.load(run / record["trace"])
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise LongLensError(f"{run}: question {record.get('id', i)}: cannot read its trace {record['trace']} "
                                f"({e})") from e
        out.append(from_trace(trace, f"{run.name}/{record.get('id', i)}", train_invalid_turns=train_invalid_turns))
    return out


def _alpaca(d: Mapping, id: str) -> Trajectory:
    msgs = [("system", d["system"])] if d.get("system") else []
    for pair in d.get("history") or []:
        user, assistant = pair
        msgs += [("user", str(user)), ("assistant", str(assistant))]
    query = d["instruction"] + ("\n" + d["input"] if d.get("input") else "")  # LLaMA-Factory's join
    msgs += [("user", query), ("assistant", str(d["output"]))]
    if not all(isinstance(t, str) for _, t in msgs):
        raise TypeError("texts must be strings")
    return Trajectory(id, tuple(msgs), tuple(r == "assistant" for r, _ in msgs), source="llamafactory")


def from_llamafactory(path: str | Path) -> list[Trajectory]:
    """The reference's alpaca-with-history records: a JSON list, or JSON lines."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        items = json.loads(text) if path.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x.strip()]
    except ValueError as e:
        raise LongLensError(f"{path}: not JSON ({e})") from e
    if not isinstance(items, list):
        raise LongLensError(f"{path}: expected a list of alpaca records")
    out = []
    for i, d in enumerate(items):
        try:
            out.append(_alpaca(d, f"{path.name}/{i}"))
        except (KeyError, TypeError, ValueError) as e:
            raise LongLensError(f"{path}: record {i} is not an alpaca record with history ({e})") from e
    return out


def read_trajectories(paths: Iterable[str], *, only_correct: bool = True,
                      train_invalid_turns: bool = False) -> list[Trajectory]:
    """From each path: an eval run folder, or a LLaMA-Factory file (.json / .jsonl)."""
    out = []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            out += from_run(path, only_correct=only_correct, train_invalid_turns=train_invalid_turns)
        elif path.is_file():
            out += from_llamafactory(path)
        else:
            raise LongLensError(f"data {path}: no such run folder or file")
    return out


# ---------------------------------------------------------------- tokens
def encode(tok, traj: Trajectory, mode: str = "per_turn", end: str = "<|im_end|>") -> list[dict]:
    """Training samples ``{"input_ids", "labels"}`` of one trajectory (see the module notes)."""
    if mode not in MODES:
        raise LongLensError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")

    def ids(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    def prompt(k: int) -> str:
        return tok.apply_chat_template(traj.chat(k), tokenize=False, add_generation_prompt=True)

    turns = [k for k, (r, _) in enumerate(traj.messages) if r == "assistant"]
    if mode == "per_turn":
        out = []
        for k in turns:
            if traj.train[k]:
                p, t = ids(prompt(k)), ids(traj.messages[k][1] + end)
                out.append({"input_ids": p + t, "labels": [-100] * len(p) + t})
        return out
    input_ids: list[int] = []
    labels: list[int] = []
    done = ""
    for k in turns:
        p = prompt(k)
        if not p.startswith(done):
            raise LongLensError(f"{traj.id}: the chat template rewrites earlier turns (turn {k} does not extend the "
                                "conversation before it); use mode per_turn, or an append-only chat_template")
        new, t = ids(p[len(done):]), ids(traj.messages[k][1] + end)
        input_ids += new + t
        labels += [-100] * len(new) + (t if traj.train[k] else [-100] * len(t))
        done = p + traj.messages[k][1] + end
    return [{"input_ids": input_ids, "labels": labels}] if any(x != -100 for x in labels) else []


def build_samples(tok, trajectories: Iterable[Trajectory], *, mode: str, end: str, max_length: int,
                  dedupe: bool = True) -> tuple[list[dict], Counter]:
    """All samples, with skips counted by reason ("too long", "duplicate")."""
    seen: set[bytes] = set()
    samples, skipped = [], Counter()
    for traj in trajectories:
        for s in encode(tok, traj, mode, end):
            if len(s["input_ids"]) > max_length:
                skipped["too long"] += 1
                log.info("skipped a sample of %s: %d tokens > max_length %d", traj.id, len(s["input_ids"]), max_length)
                continue
            key = hashlib.blake2b(json.dumps([s["input_ids"], s["labels"]]).encode(), digest_size=16).digest()
            if dedupe and key in seen:
                skipped["duplicate"] += 1
                continue
            seen.add(key)
            samples.append(s)
    return samples, skipped


# ---------------------------------------------------------------- config and run
TRL_DEFAULTS = {
    "learning_rate": 1e-5, "lr_scheduler_type": "cosine", "warmup_steps": 0.1, "weight_decay": 0.0,
    "per_device_train_batch_size": 8, "gradient_accumulation_steps": 4, "num_train_epochs": 3.0, "max_steps": -1,
    "max_grad_norm": 1.0, "bf16": None, "activation_checkpointing": True, "deepspeed": None,
    "dataloader_num_workers": 0, "seed": 0, "logging_steps": 1, "save_strategy": "no", "report_to": "none",
}
"""TRL `SFTConfig` values of the reference's LLaMA-Factory recipe
(qiujihao19/LongVideo-R1@77c87ec LLaMA-Factory/examples/train_full/qwen3.yaml:30-42):
warm-up over the first 10% of the steps (a ``warmup_steps`` below 1 is a fraction); saved at the end only."""


@dataclass(frozen=True)
class NavigateSFTConfig:
    """LongVideo-R1 SFT: ours (defaults: the reference's), and TRL's `SFTConfig` in `trl`."""

    TRL: ClassVar[str] = "SFTConfig"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model_path", "data", "output_dir")
    model_path: str = ""
    data: tuple[str, ...] = ()
    """Eval run folders (navigate traces) and/or LLaMA-Factory alpaca files (.json / .jsonl)."""
    output_dir: str = ""
    mode: str = "per_turn"
    only_correct: bool = True
    """Run folders: keep only the questions answered correctly."""
    train_invalid_turns: bool = False
    """Run folders: give loss to turns the agent rejected (fed back as invalid) too."""
    dedupe: bool = True
    chat_template: str = ""
    """A .jinja file that replaces the tokenizer's template (and is saved with the model); "": the tokenizer's."""
    end_of_turn: str = "<|im_end|>"
    """What the model writes to end a turn (gets loss after every trained turn)."""
    max_length: int = 24576
    attn_implementation: str = ""
    trl: dict = field(default_factory=dict)
    """TRL `SFTConfig` fields over `TRL_DEFAULTS`."""

    def __post_init__(self):
        with_trl(self, TRL_DEFAULTS)
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        object.__setattr__(self, "data", (self.data,) if isinstance(self.data, str) else tuple(self.data))


def check(cfg: NavigateSFTConfig) -> None:
    """Everything that can be checked before the model loads: TRL's settings and the data paths."""
    sft_args(cfg, cfg.trl["num_train_epochs"])
    for p in cfg.data:
        if not Path(p).expanduser().exists():
            raise LongLensError(f"data {p}: no such run folder or file")


def run_navigate_sft(cfg: NavigateSFTConfig) -> dict:
    """Train the reasoning model on `cfg.data`, save model and tokenizer to `cfg.output_dir`, return a summary."""
    import datasets

    t0 = time.perf_counter()
    trajectories = read_trajectories(cfg.data, only_correct=cfg.only_correct,
                                     train_invalid_turns=cfg.train_invalid_turns)
    model, tok = load_text_model(cfg)
    if tok.convert_tokens_to_ids(cfg.end_of_turn) in (None, tok.unk_token_id):
        raise ConfigError(f"end_of_turn {cfg.end_of_turn!r} is not a token of {cfg.model_path}")
    samples, skipped = build_samples(tok, trajectories, mode=cfg.mode, end=cfg.end_of_turn,
                                     max_length=cfg.max_length, dedupe=cfg.dedupe)
    if not samples:
        raise LongLensError(f"no training samples from {len(trajectories)} trajectories (skipped: {dict(skipped)})")
    summary = train(cfg, model, tok, datasets.Dataset.from_list(samples), None, epochs=cfg.trl["num_train_epochs"],
                    skipped=skipped)
    return {"trajectories": len(trajectories), "samples": len(samples), **summary,
            "seconds": round(time.perf_counter() - t0, 2)}
