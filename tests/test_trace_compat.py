"""Typed traces change nothing the agents do: the same scripted questions, asked of the version-1 code (commit
deff023, whose traces are in tests/data/traces-v1/), read back through today's `Trace.load`, equal today's
traces field for field, timings aside. Regenerate the files with the old code on the path:
``PYTHONPATH=<old checkout>/src python tests/test_trace_compat.py tests/data/traces-v1``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from longlens.agents.navigate import NavigateAgent, NavigateConfig
from longlens.agents.zoom import ZoomAgent
from longlens.backends.scripted import ScriptedBackend
from longlens.video import FrameCache

DATA = Path(__file__).parent / "data" / "traces-v1"
OPTIONS = ("red", "blue", "green", "yellow")
QUESTION = "What colour is the object?"
ZOOM = {
    "zoom-overlap": ["I need to zoom in on the video.\n\nlook \\boxed{[10, 30]}", "again \\boxed{[12, 28]}",
                     "I get the answer.\n\nso \\boxed{B}"],
    "zoom-no-action": ["no box at all", "\\boxed{[200, 300]}"],
    "zoom-too-short": ["\\boxed{[70, 80]}", "\\boxed{C}"],
}
TURNS = ["<think>a</think><tool>get_caption((1,))</tool>", "<think>b</think><tool>get_caption((1,2))</tool>",
         "garbage", '<tool>video_qa((1,2,1), "what colour?")</tool>', "<think>c</think><answer>B</answer>"]
TIMING = {"latency_s", "wall_s", "model_s", "role_s", "timings", "captions_store", "path"}


def scenarios(video: Path, cache_dir: Path) -> dict:
    out = {}
    for name, replies in ZOOM.items():
        out[name] = ZoomAgent(ScriptedBackend(replies)).run(video, QUESTION, OPTIONS)
    for on_invalid in ("feedback", "retry"):
        agent = NavigateAgent(ScriptedBackend(list(TURNS)), caption=ScriptedBackend(["a caption"] * 100),
                              videoqa=ScriptedBackend(["it is blue"]), config=NavigateConfig(on_invalid=on_invalid),
                              cache=FrameCache(cache_dir / on_invalid))
        out[f"navigate-{on_invalid}"] = agent.run(video, QUESTION, OPTIONS)
    return out


def make(path: Path) -> Path:
    from longlens.synth import make_video

    make_video(path, duration_s=60, width=320, height=180, fps=10, seed=3)
    return path


def timeless(x):
    if isinstance(x, dict):
        return {k: timeless(v) for k, v in x.items() if k not in TIMING}
    if isinstance(x, list):
        return [timeless(v) for v in x]
    return x


@pytest.fixture(scope="module")
def today(tmp_path_factory):
    root = tmp_path_factory.mktemp("compat")
    return scenarios(make(root / "v.mp4"), root / "cache")


@pytest.mark.parametrize("name", [*ZOOM, "navigate-feedback", "navigate-retry"])
def test_version_1_traces_read_back_equal_todays(today, name):
    from longlens.agents.trace import Trace

    old = Trace.load(DATA / f"{name}.json")
    assert json.loads((DATA / f"{name}.json").read_text())["version"] == 1
    assert timeless(old.to_dict()) == timeless(today[name].to_dict())


def test_outcomes_are_data(today):
    outcomes = {name: [(s.outcome, s.stop) for s in t.steps] for name, t in today.items()}
    assert outcomes["zoom-overlap"] == [("clip_added", None), ("zoom_stopped", "overlap"), (None, None)]
    assert outcomes["zoom-no-action"] == [("zoom_stopped", "no_action"), ("whole_video", None)]
    assert outcomes["zoom-too-short"] == [("zoom_stopped", "too_short"), ("whole_video", None)]
    assert [o for o, _ in outcomes["navigate-feedback"]] == ["fed_back", "tool_ran", "fed_back", "tool_ran", None]
    assert [o for o, _ in outcomes["navigate-retry"]] == ["re_asked", "tool_ran", "re_asked", "tool_ran", None]
    nav = today["navigate-feedback"]
    assert [s.tool["ids"] for s in nav.steps if s.tool] == [[1, 2], [1, 2, 1]]
    assert nav.totals.calls == {"reasoning": 5, "caption": 5, "videoqa": 1} and nav.totals.errors == 2
    assert today["zoom-overlap"].totals.calls == {"vlm": 3}


def test_a_navigate_conversation_is_its_steps_messages(today):
    """What the reasoning model saw, rebuilt from the steps: each step's new messages, then its reply unless
    it was re-asked; the next step's prompt starts where the conversation left off."""
    for name in ("navigate-feedback", "navigate-retry"):
        steps = today[name].steps
        chat = [m for s in steps for m in s.to_messages()]
        assert [m["role"] for m in chat[:2]] == ["system", "user"]
        replies = [m["content"] for m in chat if m["role"] == "assistant"]
        kept = [s.completion for s in steps if s.outcome != "re_asked"]
        assert replies == kept and chat[-1] == {"role": "assistant", "content": TURNS[-1]}


if __name__ == "__main__":  # write the traces of the code on the path (see the docstring)
    import tempfile

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, trace in scenarios(make(Path(tmp) / "v.mp4"), Path(tmp) / "cache").items():
            trace.save(out / f"{name}.json")
