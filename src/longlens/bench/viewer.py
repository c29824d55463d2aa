"""The report's pages: ``index.html`` (tables and plots) and the trace viewer ``viewer/index.html``.

Both are static files that work from disk with no server and no network. The viewer is one page with
its CSS and JS inline and every question's data in one JSON blob (escaped so no text in it can close
the script element); the page builds its DOM with ``textContent``, so model text is never read as
HTML. Thumbnails are small JPEGs in ``viewer/thumbs/``, decoded from each trace's video at the times
the model saw (a subsample of the fast view, every clip frame up to a cap); a video that is missing or
changed gives a note on its questions instead.
"""

from __future__ import annotations

import json
from html import escape
from importlib.resources import files
from pathlib import Path

import numpy as np

from longlens.agents.trace import Trace
from longlens.errors import LongLensError

THUMB_WIDTH = 96


def asset(name: str) -> str:
    return files("longlens.bench").joinpath("viewer_assets", name).read_text(encoding="utf-8")


def json_blob(data) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' left as such."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def page(title: str, body: str, script: str = "") -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>\n{asset('viewer.css')}</style></head>\n"
            f"<body>\n{body}\n{script}</body></html>\n")


# ---------------------------------------------------------------- questions
def spread(values: list, k: int) -> list:
    """At most `k` of `values`, evenly spaced, first and last included."""
    if k <= 0:
        return []
    if len(values) <= k:
        return list(values)
    if k == 1:
        return [values[0]]
    return [values[round(i * (len(values) - 1) / (k - 1))] for i in range(k)]


def views_of(trace: Trace) -> list[dict]:
    """The distinct videos the model was shown over the steps, in order of first appearance."""
    seen: dict[tuple, dict] = {}
    for step in trace.steps:
        for message in step.prompt:
            for part in message.get("content") or []:
                if not isinstance(part, dict) or part.get("type") != "video":
                    continue
                times = [float(t) for t in part.get("times_s") or []]
                key = (part.get("label"), tuple(times))
                if key not in seen and times:
                    label = str(part.get("label") or "video")
                    seen[key] = {"label": label, "kind": "fast" if label == "fast" else "clip", "times": times,
                                 "span": [min(times), max(times)], "first_step": step.index,
                                 "n_frames": part.get("n_frames", len(times)), "width": part.get("width"),
                                 "height": part.get("height"), "visual_tokens": part.get("visual_tokens")}
    return list(seen.values())


def step_data(step) -> dict:
    return {"index": step.index, "completion": step.completion, "action": step.action,
            "clip_added": step.clip_added, "note": step.note, "error": step.error, "tool": step.tool,
            "visual_tokens": step.visual_tokens, "latency_s": step.latency_s,
            "prompt_tokens": step.prompt_tokens, "completion_tokens": step.completion_tokens}


def question_item(run, record: dict) -> tuple[dict, Trace | None]:
    from longlens.bench.report import cost_of, status

    item = {"run": run.name, "id": str(record.get("id")), "status": status(record), "truth": record.get("truth"),
            "prediction": record.get("prediction"), "parsed": record.get("parsed"),
            "categories": record.get("categories") or {}, "truth_spans": record.get("truth_spans") or [],
            "span": record.get("span"), "iou": record.get("iou"), "error": record.get("error"),
            "error_kind": record.get("error_kind"), "guessed": bool(record.get("guessed")),
            "retries": int(record.get("retries") or 0),
            "cost": cost_of(record), "notes": [], "views": [], "steps": []}
    trace = None
    if record.get("trace"):
        try:
            trace = Trace.load(run.path / record["trace"])
        except (OSError, ValueError, TypeError, KeyError) as exc:
            item["notes"].append(f"trace {record['trace']} could not be read ({exc})")
    if trace is None:
        return item, None
    item.update({"question": trace.question, "options": trace.options, "agent": trace.agent,
                 "answer": trace.answer, "duration_s": (trace.video or {}).get("duration_s"),
                 "video_path": (trace.video or {}).get("path"), "views": views_of(trace),
                 "steps": [step_data(s) for s in trace.steps]})
    if trace.error and not item["error"]:
        item["error"] = trace.error
    return item, trace


# ---------------------------------------------------------------- thumbnails
def nearest_indices(times_s: np.ndarray, wanted: list[float]) -> list[int]:
    """The frame nearest each wanted time (trace times are rounded to the millisecond)."""
    pos = np.clip(np.searchsorted(times_s, wanted), 1, len(times_s) - 1)
    before = times_s[pos - 1]
    after = times_s[pos]
    pick = np.where(np.abs(np.asarray(wanted) - before) <= np.abs(after - np.asarray(wanted)), pos - 1, pos)
    return [int(i) for i in pick]


def make_thumbs(path: str, video_id: str | None, times: set[float], folder: Path) -> tuple[dict, str | None]:
    """Write a JPEG per wanted time of one video; returns ({time: file name}, note or None)."""
    from PIL import Image

    from longlens.video import decode, index_plan, open_video

    if not path or not Path(path).is_file():
        return {}, f"video not found at {path}: no thumbnails"
    try:
        info = open_video(path)
        if video_id and info.fingerprint != video_id:
            return {}, f"{path} is not the video of the trace (its content changed): no thumbnails"
        wanted = sorted(times)
        index = dict(zip(wanted, nearest_indices(info.times_s, wanted), strict=True))
        name = {i: f"{info.fingerprint[:12]}-{i}.jpg" for i in set(index.values())}
        todo = sorted(i for i, n in name.items() if not (folder / n).exists())
        side = round(THUMB_WIDTH * max(info.width, info.height) / max(info.width, 1))
        for start in range(0, len(todo), 256):
            chunk = todo[start:start + 256]
            frames = decode(info, index_plan(info, chunk, max_side=side, kind="thumbs"))
            for i, rgb in zip(chunk, frames.frames, strict=True):  # an accurate plan returns what it asks
                Image.fromarray(rgb).save(folder / name[i], quality=80)
    except (LongLensError, OSError, ValueError) as exc:
        return {}, f"thumbnails of {path} failed: {exc}"
    return {t: name[i] for t, i in index.items()}, None


def attach_thumbs(items: list[dict], traces: list, folder: Path, thumbs: int, fast_thumbs: int) -> dict:
    """Choose the frames to show for every item, decode them once per video, and put their files in."""
    wanted: dict[str, dict] = {}
    for item, trace in zip(items, traces, strict=True):
        if trace is None:
            continue
        for view in item["views"]:
            view["shown"] = spread(view["times"], fast_thumbs if view["kind"] == "fast" else thumbs)
            if view["shown"]:
                entry = wanted.setdefault(item["video_path"], {"id": (trace.video or {}).get("id"), "times": set()})
                entry["times"].update(view["shown"])
    folder.mkdir(parents=True, exist_ok=True)
    made, notes = {}, {}
    for path, entry in wanted.items():
        made[path], notes[path] = make_thumbs(path, entry["id"], entry["times"], folder)
    count = 0
    for item in items:
        files_of = made.get(item.get("video_path"), {})
        if notes.get(item.get("video_path")):
            item["notes"].append(notes[item["video_path"]])
        for view in item["views"]:
            view["thumbs"] = [{"t": t, "src": f"thumbs/{files_of[t]}"} for t in view.pop("shown", [])
                              if t in files_of]
            count += len(view["thumbs"])
    return {"thumbnails": count, "files": len(list(folder.glob("*.jpg"))),
            "notes": sorted({n for n in notes.values() if n})}


# ---------------------------------------------------------------- pages
def write_viewer(runs, folder: str | Path, *, policy: str = "wrong", thumbs: int = 32, fast_thumbs: int = 16) -> dict:
    """Write ``folder/index.html`` and ``folder/thumbs/``; returns counts and notes."""
    from longlens.bench.metrics import summarize

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items, traces, heads = [], [], []
    for run in runs:
        for record in run.records:
            item, trace = question_item(run, record)
            items.append(item)
            traces.append(trace)
        head = summarize(run.records, run.bench, policy=policy, extractor=run.extractor)["headline"]
        heads.append({"name": run.name, "bench": run.bench, "agent": run.agent, "metric": head["name"],
                      "value": head["value"], "se": head["se"], "n": head["n"]})
    made = attach_thumbs(items, traces, folder / "thumbs", thumbs, fast_thumbs)
    data = {"runs": heads, "questions": items}
    body = ('<div id="app" data-ready="0"><p class="note">This page needs JavaScript to show the traces.</p></div>\n'
            f'<script id="data" type="application/json">{json_blob(data)}</script>\n')
    (folder / "index.html").write_text(page("LongLens traces", body, f"<script>\n{asset('viewer.js')}</script>\n"),
                                       encoding="utf-8")
    return {"page": "viewer/index.html", "questions": len(items), **made}


def write_index(report: dict, out: Path) -> Path:
    """``out/index.html``: the report's sections with the SVG plots inline and a link to the viewer."""
    from longlens.bench.report import pct, sections

    heads = " · ".join(f'<span class="headline"><b>{escape(r["name"])}</b> {escape(r["summary"]["headline"]["name"])} '
                       f'{pct(r["summary"]["headline"]["value"])} ± {pct(r["summary"]["headline"]["se"])} '
                       f'<small>(n={r["summary"]["headline"]["n"]})</small></span>' for r in report["runs"])
    html = [f'<header class="top"><h1>LongLens report</h1><div>{heads}</div><div class="spacer"></div>'
            f'<a class="button" href="viewer/index.html">Open the trace viewer →</a></header><main class="report">']
    open_card = False
    for sec in sections(report):
        if sec["level"] <= 2:
            html.append("</div></section>" if open_card else "")
            html.append(f'<section class="card"><h2>{escape(sec["title"])}</h2><div class="subs">')
            open_card = True
        title = "" if sec["level"] <= 2 else f"<h3>{escape(sec['title'])}</h3>"
        html.append(f'<div class="sub">{title}')
        for line in sec.get("lines") or []:
            html.append(f"<p>{inline_md(line)}</p>")
        if sec.get("header"):
            head = "".join(f"<th>{escape(h)}</th>" for h in sec["header"])
            rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in sec["rows"])
            html.append(f'<table class="table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
        if sec.get("image") and (out / sec["image"]).exists():
            html.append(f'<figure class="plot">{(out / sec["image"]).read_text(encoding="utf-8")}</figure>')
        html.append("</div>")
    html.append("</div></section></main>" if open_card else "</main>")
    path = out / "index.html"
    path.write_text(page("LongLens report", "\n".join(html)), encoding="utf-8")
    return path


def inline_md(text: str) -> str:
    """The two inline marks `sections` uses (``code`` and **bold**), on escaped text."""
    out, parts = [], escape(text).split("`")
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{part}</code>")
        else:
            bits = part.split("**")
            out.append("".join(f"<b>{b}</b>" if j % 2 else b for j, b in enumerate(bits)))
    return "".join(out)
