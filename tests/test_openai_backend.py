"""The OpenAI-compatible backend, through the official SDK, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import io
import socket

import pytest
from PIL import Image

from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends import BackendError, GenConfig
from longlens.backends.openai_server import OpenAIBackend
from longlens.backends.server import ScriptedServer
from longlens.prompts import Message

ZOOM = "I need to zoom in on the video.\n\n"
ANSWER = "I get the answer.\n\n"
OPTIONS = ["red", "green", "blue", "white"]


def backend_for(server: ScriptedServer, **kw) -> OpenAIBackend:
    kw.setdefault("backoff_s", 0.01)
    return OpenAIBackend(server.url, "scripted-model", **kw)


def frames_in(url: str) -> list[Image.Image]:
    head, data = url.split(",", 1)
    assert head == "data:video/jpeg;base64"
    return [Image.open(io.BytesIO(base64.b64decode(part))) for part in data.split(",")]


def test_zoom_loop_over_http(coded_video):
    with ScriptedServer([ZOOM + "\\boxed{[4, 6]}", "\\boxed{C}"]) as server:
        backend = backend_for(server)
        backend.check()
        trace = ZoomAgent(backend, ZoomConfig(max_steps=2)).run(coded_video, "What colour?", OPTIONS)
    assert trace.choice == "C" and len(server.requests) == 2
    first, forced = server.requests
    videos = [p for p in first["messages"][1]["content"] if p["type"] == "video_url"]
    assert len(videos) == 1  # the fast view is ONE video item, not loose images
    frames = frames_in(videos[0]["video_url"]["url"])
    assert len(frames) == 40 and frames[0].size == (280, 168)
    assert first["mm_processor_kwargs"]["fps"] == trace.steps[0].prompt[1]["content"][1]["sample_fps"]
    assert first["messages"][0] == {"role": "system", "content": trace.steps[0].prompt[0]["content"][0]["text"]}
    assert "continue_final_message" not in first
    # the forced step: fast view + clip, a final assistant message continued
    assert forced["messages"][-1] == {"role": "assistant", "content": ANSWER}
    assert forced["continue_final_message"] is True and forced["add_generation_prompt"] is False
    assert len(forced["mm_processor_kwargs"]["fps"]) == 2
    assert forced["temperature"] == 0.0 and forced["max_tokens"] == 2048
    assert trace.steps[0].prompt_tokens and trace.steps[1].completion_tokens == 1


def test_frames_as_images_fallback(coded_video):
    with ScriptedServer(["\\boxed{A}"]) as server:
        backend = backend_for(server, frames_as_images=True)
        ZoomAgent(backend, ZoomConfig(agent="no-zoom")).run(coded_video, "Q?", OPTIONS)
    content = server.requests[0]["messages"][1]["content"]
    assert sum(p["type"] == "image_url" for p in content) == 40
    assert not any(p["type"] == "video_url" for p in content)
    assert "mm_processor_kwargs" not in server.requests[0]


def test_500_then_success_is_retried():
    with ScriptedServer([{"status": 500, "error": "boom"}, {"status": 503}, "fine \\boxed{B}"]) as server:
        completion = backend_for(server, retries=2).generate((Message.text("user", "hi"),), GenConfig())
    assert completion.text == "fine \\boxed{B}" and len(server.requests) == 3


def test_persistent_500_is_one_clear_error():
    with ScriptedServer([{"status": 500, "error": "boom"}], repeat_last=True) as server:
        with pytest.raises(BackendError, match="HTTP 500 after 3 tries: boom"):
            backend_for(server, retries=2).generate((Message.text("user", "hi"),))


def test_timeout_is_retried_then_reported():
    with ScriptedServer([{"delay_s": 1.5, "text": "late"}, "on time"]) as server:
        completion = backend_for(server, timeout_s=0.5, retries=1).generate((Message.text("user", "hi"),))
        assert completion.text == "on time"
    with ScriptedServer([{"delay_s": 1.5, "text": "late"}], repeat_last=True) as server:
        with pytest.raises(BackendError, match="did not answer within 0.5 s after 2 tries"):
            backend_for(server, timeout_s=0.5, retries=1).generate((Message.text("user", "hi"),))


def test_startup_checks():
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendError, match="cannot reach .* check --base-url"):
        OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m").check()
    with ScriptedServer([]) as server:
        with pytest.raises(BackendError, match="'other' is not served .* scripted-model"):
            OpenAIBackend(server.url, "other").check()
        auto = OpenAIBackend(server.url)
        auto.check()
        assert auto.model == "scripted-model"


def test_multimodal_limit_error_names_the_flag(coded_video):
    refusal = {"status": 400, "error": "At most 1 video(s) may be provided in one request."}
    with ScriptedServer([ZOOM + "\\boxed{[4, 6]}", refusal]) as server:
        with pytest.raises(BackendError, match="--limit-mm-per-prompt"):
            ZoomAgent(backend_for(server), ZoomConfig(max_steps=2)).run(coded_video, "Q?", OPTIONS)


def test_async_generate():
    with ScriptedServer(["a", "b", "c"]) as server:
        backend = backend_for(server)

        async def many():
            return await asyncio.gather(*(backend.agenerate((Message.text("user", str(i)),)) for i in range(3)))

        texts = sorted(c.text for c in asyncio.run(many()))
    assert texts == ["a", "b", "c"]


def test_server_binds_loopback_and_records():
    with ScriptedServer(["x"]) as server:
        assert server.url.startswith("http://127.0.0.1:")
        backend_for(server).generate((Message.text("user", "hello"),))
        assert server.requests[0]["messages"] == [{"role": "user", "content": "hello"}]


def test_video_fps_modes_and_processor_refusal(coded_video):
    with ScriptedServer([ZOOM + "\\boxed{[4, 6]}", "\\boxed{C}", ZOOM + "\\boxed{[4, 6]}", "\\boxed{C}"]) as server:
        ZoomAgent(backend_for(server, video_fps="single"), ZoomConfig(max_steps=2)).run(coded_video, "Q?", OPTIONS)
        ZoomAgent(backend_for(server, video_fps="off"), ZoomConfig(max_steps=2)).run(coded_video, "Q?", OPTIONS)
    single, off = server.requests[1], server.requests[3]
    assert isinstance(single["mm_processor_kwargs"]["fps"], float) and "mm_processor_kwargs" not in off
    refusal = {"status": 400, "error": "fps must be of type float, got list"}
    with ScriptedServer([ZOOM + "\\boxed{[4, 6]}", refusal]) as server:
        with pytest.raises(BackendError, match="--video-fps single"):
            ZoomAgent(backend_for(server), ZoomConfig(max_steps=2)).run(coded_video, "Q?", OPTIONS)


def test_a_frame_set_is_encoded_once_while_it_is_sent_again(monkeypatch):
    import numpy as np

    from longlens.backends import wire

    calls = []
    real = wire.jpeg_b64
    monkeypatch.setattr(wire, "jpeg_b64", lambda f, q=95: calls.append(1) or real(f, q))
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    first = wire.video_url(frames)
    assert wire.video_url(frames) == first and len(calls) == 3
    other = frames.copy()
    other[0] = 255  # another array (even with the same shape) is encoded on its own
    assert wire.video_url(other) != first and len(calls) == 6
    assert wire.video_url(frames, quality=50) != first and len(calls) == 9
