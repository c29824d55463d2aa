"""The embedded offline backend on generated needle suites: accuracy per agent, length, kind and label density.

    python benchmarks/needles.py                          # the suites below, agents zoom, uniform, random-zoom, no-zoom
    python benchmarks/needles.py --agents zoom,uniform    # some agents only
    python benchmarks/needles.py --before /path/to/checkout  # also the zoom agent of another checkout (anchor)
    python benchmarks/needles.py --write-docs             # also update docs/benchmarks.md

Suites (made once under .bench/needles/ with `longlens bench make-needles`, seeds the tests never use):
- **standard**: 10, 30 and 60 minutes, two videos a length, one with 4 needles and one with 6 (text and
  object, half each), 30 questions;
- **dense**: two 10-minute videos with 10 text labels each, 20 questions.

Each agent answers every question with `longlens eval needles` (its own process, `--concurrency 1`, an empty run
folder and frame cache). The uniform baseline gets at least the zoom agent's visual tokens per question
(`--uniform-budget` = the zoom run's mean, rounded up) and reads every frame it gets. A stated guess counts as
wrong (`guessed` in the record). Visual tokens are the model-side count per question; backend seconds are the
offline backend's time per question (the sum of its calls: one question at a time and a one-thread OCR engine,
so its wall time is its CPU time), the median over the 60-minute questions is the issue's CPU target.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _docs import machine, publish

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("LONGLENS_BENCH_DIR", ROOT / ".bench")) / "needles"
DOCS = ROOT / "docs" / "benchmarks.md"
SEED = 7100  # the tests use small seeds; these videos are held out
SUITES = {  # name -> make-needles arguments of each part
    "standard": [("n4", ["--minutes", "10,30,60", "--needles-per-video", "4", "--seed", str(SEED)]),
                 ("n6", ["--minutes", "10,30,60", "--needles-per-video", "6", "--seed", str(SEED + 17)])],
    "dense": [("d10", ["--minutes", "10", "--count", "2", "--needles-per-video", "10", "--kinds", "text",
                       "--seed", str(SEED + 33)])],
}
AGENTS = ("zoom", "uniform", "random-zoom", "no-zoom")


def longlens(*args: str, src: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src / "src")
    done = subprocess.run([sys.executable, "-m", "longlens", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"longlens {' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done


def make_suites() -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for name, parts in SUITES.items():
        for tag, args in parts:
            folder = BENCH / f"{name}-{tag}"
            print(f"suite {folder.name} ...", flush=True)
            longlens("bench", "make-needles", "--out", str(folder), *args)
            out.setdefault(name, []).append(folder)
    return out


def run_agent(agent: str, suites: dict[str, list[Path]], work: Path, extra: list[str], src: Path | None,
              tag: str) -> list[dict]:
    """Every question of every suite, answered by `agent`; the records, each with its suite's name."""
    records = []
    for name, folders in suites.items():
        for folder in folders:
            out = work / f"{tag}-{folder.name}"
            t0 = time.perf_counter()
            longlens("eval", "needles", "--data", str(folder), "--out", str(out), "--agent", agent,
                     "--concurrency", "1", "--cache-dir", str(work / f"cache-{tag}-{folder.name}"), *extra, src=src)
            got = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
            for r in got:
                r["suite"] = name
            records += got
            print(f"  {tag:<22} {folder.name:<14} {sum(right(r) for r in got)}/{len(got)} "
                  f"in {time.perf_counter() - t0:.0f} s", flush=True)
    return records


def right(r: dict) -> bool:
    return bool(r.get("correct")) and not r.get("guessed")


def minutes(r: dict) -> int:
    return round(float(r["categories"]["length"].split()[0]))


def summary(records: list[dict]) -> dict:
    def share(rs):
        return f"{sum(right(r) for r in rs)}/{len(rs)}" if rs else "-"

    std = [r for r in records if r["suite"] == "standard"]
    dense = [r for r in records if r["suite"] == "dense"]
    long = [r["cost"]["model_s"] for r in std if minutes(r) == 60]
    return {
        "standard": share(std), "standard_pct": 100 * sum(map(right, std)) / max(len(std), 1),
        "dense": share(dense), "dense_pct": 100 * sum(map(right, dense)) / max(len(dense), 1),
        **{f"{m} min": share([r for r in std if minutes(r) == m]) for m in (10, 30, 60)},
        **{k: share([r for r in std if r["categories"]["kind"] == k]) for k in ("text", "object")},
        "guessed": sum(bool(r.get("guessed")) for r in records),
        "tokens": statistics.mean(r["cost"]["visual_tokens"] for r in std),
        "backend_s_60": statistics.median(long) if long else float("nan"),
        "backend_s": statistics.mean(r["cost"]["model_s"] for r in records),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", default=",".join(AGENTS), help=f"comma-separated ({','.join(AGENTS)})")
    ap.add_argument("--before", type=Path, metavar="CHECKOUT", help="also the zoom agent of this checkout (an anchor)")
    ap.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    agents = [a for a in args.agents.split(",") if a]
    if unknown := [a for a in agents if a not in AGENTS]:
        sys.exit(f"unknown agent(s) {', '.join(unknown)}; use some of {', '.join(AGENTS)}")
    suites = make_suites()
    work = BENCH / "runs"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    arms: list[tuple[str, Path | None, str]] = [("", None, a) for a in agents]
    if args.before:
        arms = [(" (before)", args.before.resolve(), "zoom")] + arms
    rows = []
    budget: dict[str, int] = {}  # a checkout's zoom visual tokens per question, for its uniform run
    for label, src, agent in sorted(arms, key=lambda x: (x[2] != "zoom", x[0] == "")):
        extra = []
        if agent == "uniform":  # at least zoom's visual tokens per question, of the same checkout
            if label not in budget:
                sys.exit("the uniform baseline is sized by the zoom run: add zoom to --agents")
            extra = ["--uniform-budget", str(budget[label])]
        tag = f"{agent}{'-before' if src else ''}"
        records = run_agent(agent, suites, work, extra, src, tag)
        s = summary(records)
        if agent == "zoom":
            budget[label] = math.ceil(s["tokens"])
        rows.append((f"{agent}{label}", s))
    lines = [f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/needles.py"
             f"{' --before CHECKOUT' if args.before else ''}` on this machine ({machine()}), offline backend, "
             "one question at a time.",
             "",
             "| agent | standard (30) | 10 min | 30 min | 60 min | text | object | dense labels (20) | stated guesses "
             "| visual tokens / q (standard) | backend s / q, median at 60 min | backend s / q, mean |",
             "|---|---|---|---|---|---|---|---|---:|---:|---:|---:|"]
    for name, s in rows:
        lines.append(f"| {name} | {s['standard']} ({s['standard_pct']:.0f}%) | {s['10 min']} | {s['30 min']} | "
                     f"{s['60 min']} | {s['text']} | {s['object']} | {s['dense']} ({s['dense_pct']:.0f}%) | "
                     f"{s['guessed']} | {s['tokens']:,.0f} | {s['backend_s_60']:.2f} | {s['backend_s']:.2f} |")
    publish("\n".join(lines), DOCS, "needles", args.write_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
