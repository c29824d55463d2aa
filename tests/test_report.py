"""longlens report: tables and plots against real offline runs, and the trace viewer in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from longlens.bench.report import cost_of, cost_table, load_run, token_bins
from longlens.cli.main import main

CHROMIUM = Path("/usr/bin/chromium")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from media import needle_suite

    return needle_suite(tmp_path_factory.mktemp("suite"))


@pytest.fixture(scope="module")
def report(suite, tmp_path_factory):
    """An offline zoom run and an offline uniform run of the suite, and the report on both."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for agent in ("zoom", "uniform"):
        out = root / agent
        assert main(["eval", "needles", "--data", str(suite), "--out", str(out), "--backend", "offline",
                     "--agent", agent, "--cache-dir", str(root / "cache")]) == 0
        runs[agent] = out
    rep = root / "report"
    assert main(["report", str(runs["zoom"]), str(runs["uniform"]), "--out", str(rep)]) == 0
    return rep, runs


def records_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def test_report_tables_match_the_records(report):
    rep, runs = report
    data = json.loads((rep / "report.json").read_text())
    md = (rep / "report.md").read_text()
    assert [r["name"] for r in data["runs"]] == ["zoom", "uniform"]
    for r, (agent, run) in zip(data["runs"], runs.items(), strict=True):
        recs = records_of(run)
        assert len(recs) == 4 and r["agent"] == agent
        acc = sum(x["correct"] for x in recs) / len(recs)
        assert r["summary"]["headline"]["value"] == pytest.approx(acc)
        tokens = [x["totals"]["visual_tokens"] for x in recs]
        assert r["cost"]["visual_tokens"] == {"mean": pytest.approx(sum(tokens) / 4), "total": sum(tokens), "n": 4}
        assert r["cost"]["steps"]["total"] == sum(x["totals"]["steps"] for x in recs)
        side = next(s for s in data["side_by_side"] if s["name"] == agent)
        assert f"| {agent} | {agent} | {100 * acc:.1f}% |" in md
        assert side["visual_tokens"] == pytest.approx(sum(tokens) / 4)
        kinds = {x["categories"]["kind"] for x in recs}
        assert set(r["summary"]["tables"]["kind"]) == kinds
    assert "### Cost per question" in md and "| visual tokens |" in md and "## Runs side by side" in md
    # the zoom run looks at more than the fast view, the uniform baseline answers in one step
    zoom, uniform = data["side_by_side"]
    assert uniform["steps"] == 1 and zoom["steps"] > 1
    assert (rep / "index.html").exists() and "Open the trace viewer" in (rep / "index.html").read_text()


def svg(path: Path) -> ET.Element:
    root = ET.fromstring(path.read_text())
    assert root.tag == f"{SVG}svg"
    return root


def test_plots_parse_and_hold_the_numbers(report):
    rep, runs = report
    for agent, run in runs.items():
        recs = records_of(run)
        tokens = svg(rep / f"{agent}-tokens.svg")
        correct = [e for e in tokens.iter() if e.get("class") == "point correct"]
        wrong = [e for e in tokens.iter() if e.get("class") == "point wrong"]
        assert len(correct) == sum(r["correct"] for r in recs) and len(correct) + len(wrong) == len(recs)
        assert sorted(float(e.get("data-tokens")) for e in correct + wrong) == \
            sorted(r["totals"]["visual_tokens"] for r in recs)
        bins = [e for e in tokens.iter() if e.get("class") == "bin"]
        assert bins and sum(int(b.get("data-n")) for b in bins) == len(recs)
        # the step histogram counts what the traces hold
        from_traces: dict[int, int] = {}
        for r in recs:
            steps = len(json.loads((run / r["trace"]).read_text())["steps"])
            from_traces[steps] = from_traces.get(steps, 0) + 1
        bars = [e for e in svg(rep / f"{agent}-steps.svg").iter() if e.get("class") == "bar"]
        assert {int(b.get("data-steps")): int(b.get("data-count")) for b in bars} == from_traces
    side = svg(rep / "runs.svg")
    bars = [e for e in side.iter() if e.get("class") == "bar"]
    errs = [e for e in side.iter() if e.get("class") == "errbar"]
    assert [b.get("data-run") for b in bars] == ["zoom", "uniform"] and len(errs) == 2
    data = json.loads((rep / "report.json").read_text())
    for b, r in zip(bars, data["side_by_side"], strict=True):
        assert float(b.get("data-accuracy")) == pytest.approx(r["accuracy"], abs=1e-4)


def test_cost_is_read_defensively():
    records = [{"id": "a", "totals": {"steps": 2, "visual_tokens": 100, "prompt_tokens": None}, "wall_s": 1.5},
               {"id": "b", "cost": {"steps": 1, "visual_tokens": 50, "calls": {"reasoning": 2}, "model_s": "x"}},
               {"id": "c", "error": "broken video", "wall_s": 0.2}]
    assert cost_of(records[0]) == {"steps": 2, "visual_tokens": 100, "wall_s": 1.5}
    assert cost_of(records[1]) == {"steps": 1, "visual_tokens": 50, "calls.reasoning": 2}
    table = cost_table(records)
    assert list(table)[:3] == ["steps", "visual_tokens", "wall_s"]
    assert table["steps"] == {"mean": 1.5, "total": 3, "n": 2} and table["wall_s"]["n"] == 2
    assert table["calls.reasoning"]["total"] == 2
    bins = token_bins([{"tokens": t, "correct": c} for t, c in [(10, 1), (10, 0), (10, 1), (20, 1), (30, 0)]])
    assert [(b["lo"], b["hi"], b["n"]) for b in bins] == [(10, 10, 3), (20, 30, 2)]  # ties stay in one bin


def test_report_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path), str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err


# ---------------------------------------------------------------- the viewer in a browser
class Dom(HTMLParser):
    """Elements of a dumped page, each with the index of the question card it sits in."""

    VOID = {"img", "input", "br", "meta", "link", "hr", "source"}

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[dict] = []
        self.stack: list[str] = []
        self.card = -1
        self.card_depth: int | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "article" and "question-card" in classes:
            self.card += 1
            self.card_depth = len(self.stack)
        self.elements.append({"tag": tag, "attrs": a, "classes": classes,
                              "card": self.card if self.card_depth is not None else None})
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID or not self.stack:
            return
        self.stack.pop()
        if self.card_depth is not None and len(self.stack) == self.card_depth:
            self.card_depth = None

    def find(self, cls: str | None = None, tag: str | None = None) -> list[dict]:
        return [e for e in self.elements if (cls is None or cls in e["classes"]) and (tag is None or e["tag"] == tag)]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120)


def needs_chromium():
    if not CHROMIUM.exists():
        pytest.skip("headless Chromium is not installed: apt-get install chromium")


@pytest.mark.slow
def test_viewer_renders_timelines_and_thumbnails_in_chromium(report, tmp_path):
    needs_chromium()
    rep, runs = report
    page = rep / "viewer" / "index.html"
    got = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert got.returncode == 0, got.stderr[-2000:]
    dom = Dom(got.stdout)
    (app,) = [e for e in dom.elements if e["attrs"].get("id") == "app"]
    assert app["attrs"]["data-ready"] == "1" and app["attrs"]["data-cards"] == "8"
    cards = dom.find("question-card", "article")
    assert len(cards) == 8
    recs = {(agent, r["id"]): r for agent, run in runs.items() for r in records_of(run)}
    for i, card in enumerate(cards):
        rec = recs[(card["attrs"]["data-run"], card["attrs"]["data-id"])]
        assert card["attrs"]["data-status"] == ("correct" if rec["correct"] else "wrong")
        inside = [e for e in dom.elements if e["card"] == i]
        assert sum("timeline" in e["classes"] for e in inside) == 1
        truth = [e for e in inside if {"span", "truth"} <= set(e["classes"])]
        assert [[float(e["attrs"]["data-start"]), float(e["attrs"]["data-end"])] for e in truth] == rec["truth_spans"]
        ticks = [e for e in inside if "tick" in e["classes"]]
        trace = json.loads((runs[card["attrs"]["data-run"]] / rec["trace"]).read_text())
        fast = next(p for p in trace["steps"][0]["prompt"][1]["content"] if p.get("label") == "fast")
        assert len(ticks) == len(fast["times_s"])
        clips = [e for e in inside if {"span", "clip"} <= set(e["classes"])]
        assert len(clips) == sum(1 for s in trace["steps"] if s["clip_added"])
        imgs = [e for e in inside if e["tag"] == "img"]
        assert 0 < len(imgs) and all(e["attrs"].get("data-loaded") == "1" for e in imgs)
    # every image on the page loaded (the page counts those with naturalWidth > 0)
    assert int(app["attrs"]["data-images"]) == len(dom.find(tag="img")) > 16
    assert app["attrs"]["data-images-loaded"] == app["attrs"]["data-images"]
    assert {b["attrs"].get("data-filter") for b in dom.find(tag="button")} >= {"all", "correct", "wrong", "unparsed"}

    shot = Path("/tmp/longlens-report-viewer.png")
    shot.unlink(missing_ok=True)
    got = chromium(tmp_path, "--virtual-time-budget=5000", f"--screenshot={shot}", "--window-size=1280,1600",
                   page.as_uri())
    assert got.returncode == 0 and shot.exists(), got.stderr[-2000:]
    from PIL import Image, ImageStat

    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (1280, 1600)
        assert len(rgb.getcolors(1 << 20) or []) > 200 and max(ImageStat.Stat(rgb).stddev) > 20


def test_model_text_stays_text_and_a_missing_video_is_a_note(suite, tmp_path):
    one = tmp_path / "suite"
    one.mkdir()
    for name in ("n1.mp4", "n1.json"):
        shutil.copy(suite / name, one / name)
    script = tmp_path / "replies.json"
    evil = "<script>alert(1)</script><b id=bold>not bold</b> \\boxed{A}"
    script.write_text(json.dumps([evil]))
    run = tmp_path / "run"
    assert main(["eval", "needles", "--data", str(one), "--out", str(run), "--backend", "scripted", "--script",
                 str(script), "--max-steps", "1", "--limit", "1", "--cache-dir", str(tmp_path / "cache")]) == 0
    (one / "n1.mp4").unlink()
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "viewer" / "index.html").read_text()
    assert "<script>alert" not in page and "<b id=bold>" not in page
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["viewer"]["thumbnails"] == 0 and "video not found" in data["viewer"]["notes"][0]
    (record,) = load_run(run).records
    assert record["parsed"] == "A" and record["correct"] == (record["truth"] == "A")
    tokens = ET.fromstring((tmp_path / "rep" / "run-tokens.svg").read_text())
    kind = "point correct" if record["correct"] else "point wrong"
    assert [e.get("data-id") for e in tokens.iter() if e.get("class") == kind] == [record["id"]]
    needs_chromium()
    got = chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", (tmp_path / "rep/viewer/index.html").as_uri())
    assert got.returncode == 0, got.stderr[-2000:]
    dom = Dom(got.stdout)
    assert not [e for e in dom.elements if e["attrs"].get("id") == "bold"]
    scripts = dom.find(tag="script")
    assert len(scripts) == 2  # the data blob and the page's own code, nothing from the reply
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b id=bold&gt;" in got.stdout
    notes = [e for e in dom.find("note") if e["card"] == 0]
    assert notes and "video not found" in got.stdout and not dom.find(tag="img")


def test_navigate_trace_shows_its_tool_calls(tmp_path):
    from longlens.agents.trace import Step, Trace, totals

    run = tmp_path / "nav"
    steps = [Step(1, [{"role": "user", "content": [{"type": "text", "text": "Q?"}]}], None,
                  "<think>look</think><tool>get_caption(1, 2)</tool>", {"kind": "tool", "think": True},
                  tool={"name": "get_caption", "ids": [1, 2], "node": "1,2", "role": "caption", "cache": "hit",
                        "latency_s": 0.0, "result": "A man <i>waves</i> a red flag."}),
             Step(2, [], None, "<answer>B</answer>", {"kind": "answer", "answer": "B", "choice": "B"})]
    trace = Trace("Which flag?", ["blue", "red"], {"path": str(tmp_path / "gone.mp4"), "id": "x", "duration_s": 600.0},
                  "navigate", "scripted", {}, steps, "B", "B", totals(steps, 1.0, calls={"reasoning": 2}))
    trace.save(run / "traces" / "q1.json")
    record = {"id": "q1", "video_id": "v", "benchmark": "lvbench", "task": "choice", "categories": {}, "n_options": 2,
              "truth": "B", "truth_spans": [[100.0, 160.0]], "prediction": "B", "parsed": "B", "correct": True,
              "error": None, "totals": asdict(trace.totals), "trace": "traces/q1.json", "wall_s": 1.0}
    (run / "results.jsonl").write_text(json.dumps(record) + "\n")
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| calls.reasoning | 2 | 2 | 1 |" in md and "| steps | 2 | 2 | 1 |" in md
    needs_chromium()
    got = chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", (tmp_path / "rep/viewer/index.html").as_uri())
    dom = Dom(got.stdout)
    assert [e["tag"] for e in dom.find("tool-call")] == ["div"] and not dom.find(tag="i")
    assert "A man &lt;i&gt;waves&lt;/i&gt; a red flag." in got.stdout
    truth = [e for e in dom.find("truth") if "span" in e["classes"]]
    assert [(e["attrs"]["data-start"], e["attrs"]["data-end"]) for e in truth] == [("100", "160")]
