"""A report over one or more run folders: the benchmark's tables, costs, steps, plots and a trace viewer.

`make_report(run_dirs, out)` writes into `out`:

* ``report.md`` and ``report.json``: per run the headline and breakdown tables of `summarize`, a cost
  table (per question mean and total of steps, frames decoded, visual tokens, text tokens, model and wall
  seconds, read from each record's ``cost`` or ``totals``), the questions by step count with their
  accuracy; with several runs a side-by-side table first;
* SVG plots (``<run>-tokens.svg``, ``<run>-steps.svg``, ``runs.svg`` for several runs) and ``index.html``
  showing them;
* ``viewer/index.html``: every question's timeline, thumbnails, reasoning and answer (see `viewer`).

Everything comes from the run folder (records and traces); the videos are read only for thumbnails.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from longlens.bench import plots
from longlens.bench.metrics import summarize
from longlens.errors import LongLensError

COST_KEYS = ("steps", "frames_decoded", "visual_tokens", "prompt_tokens", "completion_tokens",
             "cached_tokens", "model_s", "wall_s")
SKIP_KEYS = {"errors", "invalid"}
CHOICE_TASKS = ("choice", "grounded_choice")


@dataclass
class Run:
    name: str
    path: Path
    config: dict
    records: list[dict]
    shards: list[dict] = field(default_factory=list)
    """`RunFolder.shard_states`: each run that worked on the folder, and how far it got."""
    questions: int | None = None
    """The benchmark's questions as its runs saw them, those without a video included (None: a folder made
    before shard states were kept)."""
    missing_videos: int = 0

    @property
    def bench(self) -> str:
        bench = self.config.get("bench")
        if not bench and self.records:
            bench = self.records[0].get("benchmark")
        return str(bench or "unknown")

    @property
    def extractor(self) -> str:
        """How the run's replies were scored (``official``: its summary uses the official denominators)."""
        return "official" if self.config.get("extractor") == "official" else "robust"

    @property
    def agent(self) -> str:
        return str(self.config.get("agent") or "?")

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in self.name)[:80] or "run"


def load_run(path: str | Path, name: str | None = None) -> Run:
    """A run folder's records (every shard's, one per question), configuration and shard states."""
    from longlens.bench.runner import RunFolder

    path = Path(path)
    folder = RunFolder(path)
    if not folder.results_files():
        raise LongLensError(f"{path} is not a run folder (no results.jsonl); make one with longlens eval")
    records = folder.records()
    config = {}
    cfg_file = path / "config.json"
    if cfg_file.exists():
        config = json.loads(cfg_file.read_text(encoding="utf-8")).get("config") or {}
    planned = folder.planned()
    return Run(name or path.resolve().name, path, config, records, shards=folder.shard_states(records),
               questions=planned and max(planned[0], len(records) + planned[1]),
               missing_videos=planned[1] if planned else 0)


def status(record: dict) -> str:
    if record.get("error_kind"):
        return "error"
    if record.get("parsed") is None:
        return "unparsed"
    return "correct" if record.get("correct") else "wrong"


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _flat(d, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in (d or {}).items() if isinstance(d, dict) else ():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif (x := _number(v)) is not None:
            out[f"{prefix}{k}"] = x
    return out


def cost_of(record: dict) -> dict[str, float]:
    """A question's costs: the record's ``cost`` over its ``totals``; wall seconds from the record itself
    when neither has them. Missing keys are simply absent."""
    out = _flat(record.get("totals"))
    out.update(_flat(record.get("cost")))
    if "wall_s" not in out and (w := _number(record.get("wall_s"))) is not None:
        out["wall_s"] = w
    return {k: v for k, v in out.items() if k not in SKIP_KEYS}


def cost_table(records: list[dict]) -> dict[str, dict]:
    """{key: {mean, total, n}} over the questions that report the key; known keys first."""
    costs = [cost_of(r) for r in records]
    keys = [k for k in COST_KEYS if any(k in c for c in costs)]
    keys += sorted({k for c in costs for k in c} - set(keys))
    table = {}
    for k in keys:
        values = [c[k] for c in costs if k in c]
        table[k] = {"mean": sum(values) / len(values), "total": sum(values), "n": len(values)}
    return table


def choice_records(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("task", "choice") in CHOICE_TASKS]


def step_histogram(records: list[dict]) -> dict[int, dict]:
    """{steps: {n, correct, accuracy}} over scored questions that have a step count."""
    hist: dict[int, dict] = {}
    for r in choice_records(records):
        steps = cost_of(r).get("steps")
        if steps is None:
            continue
        h = hist.setdefault(int(steps), {"n": 0, "correct": 0})
        h["n"] += 1
        h["correct"] += bool(r.get("correct"))
    for h in hist.values():
        h["accuracy"] = h["correct"] / h["n"]
    return dict(sorted(hist.items()))


def token_points(records: list[dict]) -> list[dict]:
    points = []
    for r in choice_records(records):
        tokens = cost_of(r).get("visual_tokens")
        if tokens is not None:
            points.append({"id": str(r["id"]), "tokens": tokens, "correct": bool(r.get("correct")),
                           "parsed": r.get("parsed")})
    return points


def token_bins(points: list[dict], max_bins: int = 6) -> list[dict]:
    """Equal-count bins of the questions by visual tokens (ties kept in one bin): {lo, hi, n, accuracy}."""
    if not points:
        return []
    ordered = sorted(points, key=lambda p: p["tokens"])
    k = max(1, min(max_bins, round(math.sqrt(len(ordered)))))
    groups: list[list[dict]] = []
    start = 0
    for i in range(1, k + 1):
        end = max(round(i * len(ordered) / k), start)
        while 0 < end < len(ordered) and ordered[end - 1]["tokens"] == ordered[end]["tokens"]:
            end += 1  # a tie goes with the bin it starts in
        if end > start:
            groups.append(ordered[start:end])
        start = end
    return [{"lo": g[0]["tokens"], "hi": g[-1]["tokens"], "n": len(g),
             "accuracy": sum(p["correct"] for p in g) / len(g)} for g in groups]


def run_report(run: Run, policy: str) -> dict:
    points = token_points(run.records)
    costs = cost_table(run.records)
    from longlens.bench.metrics import accounting

    summary = summarize(run.records, run.bench, policy=policy, extractor=run.extractor)
    if run.questions is not None:
        summary.update(accounting(run.records, run.questions, run.missing_videos))
    return {"name": run.name, "path": str(run.path), "bench": run.bench, "agent": run.agent,
            "backend": run.config.get("backend"), "summary": summary, "shards": run.shards,
            "cost": costs, "steps": step_histogram(run.records), "token_bins": token_bins(points),
            "token_points": points, "plots": {}}


def side_by_side(reports: list[dict]) -> list[dict]:
    rows = []
    for r in reports:
        head, cost = r["summary"]["headline"], r["cost"]
        rows.append({"name": r["name"], "agent": r["agent"], "accuracy": head["value"], "se": head["se"],
                     "n": head["n"], "unparsed": r["summary"]["unparsed"],
                     **{k: cost[k]["mean"] if k in cost else None
                        for k in ("steps", "visual_tokens", "frames_decoded", "model_s", "wall_s")}})
    return rows


def _unique_names(paths: list[Path]) -> list[str]:
    names = [p.resolve().name for p in paths]
    if len(set(names)) == len(names):
        return names
    names = [f"{p.resolve().parent.name}/{p.resolve().name}" for p in paths]
    return names if len(set(names)) == len(names) else [f"{i + 1}-{n}" for i, n in enumerate(names)]


def make_report(run_dirs: list[str | Path], out: str | Path, *, policy: str = "wrong", thumbs: int = 32,
                fast_thumbs: int = 16) -> dict:
    """Write the report of `run_dirs` into `out` (see the module doc); returns what report.json holds."""
    from longlens.bench import viewer

    paths = [Path(p) for p in run_dirs]
    runs = [load_run(p, n) for p, n in zip(paths, _unique_names(paths), strict=True)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reports = [run_report(run, policy) for run in runs]
    for run, rep in zip(runs, reports, strict=True):
        for kind, svg in (("tokens", plots.tokens_plot(rep["token_points"], rep["token_bins"],
                                                       f"Accuracy vs visual tokens: {run.name}")),
                          ("steps", plots.steps_plot(rep["steps"], f"Questions by number of steps: {run.name}"))):
            name = f"{run.slug}-{kind}.svg"
            (out / name).write_text(svg, encoding="utf-8")
            rep["plots"][kind] = name
    report = {"policy": policy, "runs": reports, "side_by_side": side_by_side(reports) if len(runs) > 1 else []}
    if len(runs) > 1:
        rows = [{"name": r["name"], "accuracy": r["accuracy"], "se": r["se"], "tokens": r["visual_tokens"]}
                for r in report["side_by_side"]]
        (out / "runs.svg").write_text(plots.runs_plot(rows), encoding="utf-8")
        report["runs_plot"] = "runs.svg"
    report["viewer"] = viewer.write_viewer(runs, out / "viewer", policy=policy, thumbs=thumbs, fast_thumbs=fast_thumbs)
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    viewer.write_index(report, out)
    return report


# ---------------------------------------------------------------- text
COST_LABELS = {"steps": "steps", "frames_decoded": "frames decoded",
               "visual_tokens": "visual tokens", "prompt_tokens": "prompt tokens",
               "completion_tokens": "completion tokens", "cached_tokens": "cached prompt tokens",
               "model_s": "model seconds", "wall_s": "wall seconds"}


def fmt(v, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.{digits}f}"
    return f"{int(v):,}"


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def numeric(cell: str) -> bool:
    return cell[:1].isdigit() or cell[:1] in "–-"


def sections(report: dict) -> list[dict]:
    """The report as titled blocks: {title, level, lines?, header?, rows?, image?} for markdown and HTML."""
    out: list[dict] = []
    runs = report["runs"]
    if report.get("side_by_side"):
        out.append({"title": "Runs side by side", "level": 2,
                    "header": ["run", "agent", "accuracy", "± SE", "n", "unparsed", "steps", "visual tokens",
                               "frames decoded", "model s", "wall s"],
                    "rows": [[r["name"], r["agent"], pct(r["accuracy"]), pct(r["se"]), fmt(r["n"]),
                              fmt(r["unparsed"]), fmt(r["steps"]), fmt(r["visual_tokens"], 0),
                              fmt(r["frames_decoded"], 0), fmt(r["model_s"]), fmt(r["wall_s"])]
                             for r in report["side_by_side"]],
                    "lines": ["Means per question; accuracy under the unparsed policy "
                              f"`{report['policy']}`, SE clustered by video."],
                    "image": report.get("runs_plot")})
    level = 3
    for rep in runs:
        s, head = rep["summary"], rep["summary"]["headline"]
        lines = [f"`{rep['path']}`: benchmark {rep['bench']}, agent {rep['agent']}, backend "
                 f"{rep.get('backend') or '?'}; {standing(s)}.",
                 f"**{head['name']} {pct(head['value'])} ± {pct(head['se'])}** (n={head['n']}, policy {s['policy']})"]
        if s.get("without_guesses"):
            w = s["without_guesses"]
            lines.append(f"Without the {s['guessed']} answers the backend called guesses: accuracy "
                         f"{pct(w['accuracy'])} ± {pct(w['se'])} (n={w['n']}).")
        if s.get("retries"):
            lines.append(f"{s['retries']} model calls were retried (on {s['retried_questions']} questions).")
        out.append({"title": f"Run {rep['name']}", "level": 2, "lines": lines})
        unfinished = [st for st in rep.get("shards") or () if st["state"] != "complete"]
        if any(st["shard"] != "1/1" for st in rep.get("shards") or ()) or unfinished:
            out.append({"title": "Shards", "level": level, "header": ["shard", "questions", "done", "state"],
                        "rows": [[st["shard"], fmt(st["questions"]), fmt(st["done"]), st["state"]]
                                 for st in rep["shards"]],
                        "lines": [f"{len(unfinished)} not complete: rerun them with the same command (and "
                                  "--shard); their finished questions are kept." if unfinished
                                  else "Every shard is complete."]})
        if s.get("failed"):
            out.append({"title": "Failed questions", "level": level, "header": ["question", "kind", "error"],
                        "rows": [[str(f["id"]), str(f["kind"]), str(f["error"])[:300]] for f in s["failed"]],
                        "lines": [f"{s['errors']} questions got no reply ("
                                  + ", ".join(f"{n} {k}" for k, n in s["errors_by_kind"].items())
                                  + "); scored like unparsed replies. Server failures are asked again when "
                                    "the run is resumed." + (f" The first {len(s['failed'])} are listed."
                                                            if s["errors"] > len(s["failed"]) else "")]})
        for table, rows in s["tables"].items():
            out.append({"title": f"By {table}", "level": level, "header": [table, "accuracy", "± SE", "n", "unparsed"],
                        "rows": [[label, pct(v["accuracy"]), pct(v["se"]), fmt(v["n"]), fmt(v["unparsed"])]
                                 for label, v in rows.items()]})
        out.append({"title": "Cost per question", "level": level, "header": ["cost", "mean", "total", "questions"],
                    "rows": [[COST_LABELS.get(k, k.replace("_", " ")), fmt(v["mean"]), fmt(v["total"]), fmt(v["n"])]
                             for k, v in rep["cost"].items()]})
        total = sum(h["n"] for h in rep["steps"].values()) or 1
        out.append({"title": "Questions by number of steps", "level": level,
                    "header": ["steps", "questions", "share", "accuracy"],
                    "rows": [[str(k), fmt(h["n"]), pct(h["n"] / total), pct(h["accuracy"])]
                             for k, h in rep["steps"].items()],
                    "image": rep["plots"].get("steps")})
        out.append({"title": "Accuracy vs visual tokens", "level": level,
                    "header": ["visual tokens", "questions", "accuracy"],
                    "rows": [[fmt(b["lo"], 0) if b["lo"] == b["hi"] else f"{fmt(b['lo'], 0)}–{fmt(b['hi'], 0)}",
                              fmt(b["n"]), pct(b["accuracy"])]
                             for b in rep["token_bins"]],
                    "image": rep["plots"].get("tokens")})
    return out


def shard_state(st: dict) -> str:
    return st["state"] if st["questions"] is None else f"{st['state']} at {st['done']}/{st['questions']}"


def standing(s: dict) -> str:
    """Where the run's questions stand, in words."""
    parts = [f"{s['questions']} questions"]
    if "answered" in s:
        parts.append(f"{s['answered']} answered")
    parts += [f"{s['unparsed']} unparsed", f"{s.get('guessed', 0)} guessed", f"{s['errors']} failed"]
    if s.get("missing_videos"):
        parts.append(f"{s['missing_videos']} missing videos")
    if s.get("not_run"):
        parts.append(f"{s['not_run']} not run yet")
    return ", ".join(parts)


def markdown(report: dict) -> str:
    lines = ["# LongLens report", ""]
    for sec in sections(report):
        lines += ["#" * sec["level"] + " " + sec["title"], ""]
        if sec.get("lines"):
            lines += [*sec["lines"], ""]
        if sec.get("header"):
            lines.append("| " + " | ".join(sec["header"]) + " |")
            right = [i > 0 and all(numeric(row[i]) for row in sec["rows"]) for i in range(len(sec["header"]))]
            lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in sec["rows"]]
            lines.append("")
        if sec.get("image"):
            lines += [f"![{sec['title']}]({sec['image']})", ""]
    lines += ["Every question, with its timeline, frames and reasoning: [viewer/index.html](viewer/index.html)", ""]
    return "\n".join(lines)
