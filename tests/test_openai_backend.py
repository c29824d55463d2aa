"""The OpenAI-compatible backend, through the official SDK, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends import BackendError, GenConfig
from longlens.backends.openai_client import OpenAIBackend
from longlens.backends.scripted_server import ScriptedServer
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


def mp4_in(url: str) -> tuple[np.ndarray, Fraction]:
    """The frames and the frame rate of an MP4 data URL, read back with PyAV."""
    head, data = url.split(",", 1)
    assert head == "data:video/mp4;base64"
    with av.open(io.BytesIO(base64.b64decode(data))) as c:
        stream = c.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(stream)])
        return frames, stream.average_rate


def test_zoom_loop_over_http(coded_video):
    with ScriptedServer([ZOOM + "\\boxed{[4, 6]}", "\\boxed{C}"]) as server:
        backend = backend_for(server)
        backend.check()
        trace = ZoomAgent(backend, ZoomConfig(max_steps=2)).run(coded_video, "What colour?", OPTIONS)
    assert trace.choice == "C" and len(server.requests) == 2
    first, forced = server.requests
    videos = [p for p in first["messages"][1]["content"] if p["type"] == "video_url"]
    assert len(videos) == 1  # the fast view is ONE video item, not loose images
    frames, rate = mp4_in(videos[0]["video_url"]["url"])
    assert frames.shape == (40, 168, 280, 3)  # 40 frames: even, no padding
    assert float(rate) == trace.steps[0].prompt[1]["content"][1]["sample_fps"]  # the rate travels in the container
    assert "mm_processor_kwargs" not in first and "media_io_kwargs" not in first
    assert first["messages"][0] == {"role": "system", "content": trace.steps[0].prompt[0]["content"][0]["text"]}
    assert "continue_final_message" not in first
    # the forced step: fast view + clip, a final assistant message continued
    assert forced["messages"][-1] == {"role": "assistant", "content": ANSWER}
    assert forced["continue_final_message"] is True and forced["add_generation_prompt"] is False
    clip = [p for p in forced["messages"][1]["content"] if p["type"] == "video_url"][1]
    assert float(mp4_in(clip["video_url"]["url"])[1]) == trace.steps[1].prompt[1]["content"][3]["sample_fps"]
    assert forced["temperature"] == 0.0 and forced["max_tokens"] == 2048
    assert trace.steps[0].prompt_tokens and trace.steps[1].completion_tokens == 1


def test_a_prefetch_encodes_the_fast_view_the_questions_then_send(coded_video, monkeypatch):
    from longlens.backends import wire

    encoded = []
    real = wire.mp4_bytes
    monkeypatch.setattr(wire, "mp4_bytes", lambda frames, fps, **kw: encoded.append(len(frames)) or real(frames, fps,
                                                                                                         **kw))
    with ScriptedServer(["\\boxed{A}"], repeat_last=True) as server:
        agent = ZoomAgent(backend_for(server), ZoomConfig(agent="no-zoom", max_steps=1))
        agent.prefetch(coded_video)  # a runner does this for the next video while others wait on the model
        assert encoded == [40] and not server.requests
        for _ in range(2):
            assert agent.run(coded_video, "What colour?", OPTIONS).choice == "A"
    assert encoded == [40]  # the questions sent what the prefetch encoded
    sent = [[p["video_url"]["url"] for p in r["messages"][1]["content"] if p["type"] == "video_url"]
            for r in server.requests]
    assert sent[0] == sent[1] and mp4_in(sent[0][0])[0].shape[0] == 40


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


def test_mp4_frames_are_lossless_and_odd_counts_padded():
    from longlens.backends import wire

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 56, 84, 3), dtype=np.uint8)
    back, rate = mp4_in("data:video/mp4;base64," + base64.b64encode(wire.mp4_bytes(frames, 0.21)).decode())
    assert rate == Fraction(21, 100) and float(rate) == 0.21
    assert back.shape == (6, 56, 84, 3)  # padded to an even count with the last frame, as Qwen-VL pads
    assert np.array_equal(back[:5], frames) and np.array_equal(back[5], frames[4])  # bit-exact
    for fps in (29.97, 6.4, 1.07, 2.0, 0.03):
        assert float(wire.container_rate(fps)) == fps


def test_jpeg_and_images_formats(coded_video):
    with ScriptedServer(["\\boxed{A}", "\\boxed{A}"]) as server:
        ZoomAgent(backend_for(server, video_format="jpeg"), ZoomConfig(agent="no-zoom")).run(coded_video, "Q?", OPTIONS)
        ZoomAgent(backend_for(server, frames_as_images=True), ZoomConfig(agent="no-zoom")).run(coded_video, "Q?",
                                                                                             OPTIONS)
    jpeg, images = (r["messages"][1]["content"] for r in server.requests)
    frames = frames_in(next(p for p in jpeg if p["type"] == "video_url")["video_url"]["url"])
    assert len(frames) == 40 and frames[0].size == (280, 168)
    assert [(h, v) for _, h, v, _ in frames[0].layer] == [(1, 1)] * 3  # 4:4:4: no chroma subsampling (smears stamps)
    assert sum(p["type"] == "image_url" for p in images) == 40
    assert not any("mm_processor_kwargs" in r for r in server.requests)


@pytest.mark.parametrize(("message", "fix"), [
    ("The decoder prompt contains a(n) video item with 40500 embedding tokens, which exceeds the pre-allocated "
     "encoder cache size 8960. Please reduce the input size or increase the encoder cache size by setting "
     "--limit-mm-per-prompt at startup.", "--max-num-batched-tokens 40500"),
    ("At most 1 video(s) may be provided in one prompt.", "--limit-mm-per-prompt"),
    ("Per-request mm_processor_kwargs are disabled by default because of security concerns", "--trust-request-mm"),
    ("This model's maximum context length is 8192 tokens. However, your prompt contains 9000", "--max-model-len"),
])
def test_refusals_name_the_server_flag(message, fix):
    dump = "Failed to apply processor on data=" + repr(np.zeros((40, 3, 8, 8))) * 3
    with ScriptedServer([{"status": 400, "error": dump + " " + message}]) as server:
        with pytest.raises(BackendError) as info:
            backend_for(server).generate((Message.text("user", "hi"),))
    line = str(info.value)
    assert fix in line and "\n" not in line and "array(" not in line and len(line) < 900


def test_a_frame_set_is_encoded_once_while_it_is_sent_again(monkeypatch):
    import numpy as np

    from longlens.backends import wire

    calls = []
    real = wire.jpeg_b64
    monkeypatch.setattr(wire, "jpeg_b64", lambda f, q=95: calls.append(1) or real(f, q))
    assert wire.video_url(np.zeros((2, 8, 8, 3), np.uint8), fps=1.0).startswith("data:video/mp4;base64,")
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    first = wire.video_url(frames)
    assert wire.video_url(frames) == first and len(calls) == 3
    other = frames.copy()
    other[0] = 255  # another array (even with the same shape) is encoded on its own
    assert wire.video_url(other) != first and len(calls) == 6
    assert wire.video_url(frames, quality=50) != first and len(calls) == 9


def test_questions_that_start_together_encode_their_frames_once(monkeypatch):
    import threading
    import time

    from longlens.backends import wire

    calls = []
    real = wire.mp4_bytes

    def slow(frames, fps, **kw):
        calls.append(1)
        time.sleep(0.2)  # long enough for every other caller to arrive while the first encodes
        return real(frames, fps, **kw)

    monkeypatch.setattr(wire, "mp4_bytes", slow)
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    urls = []
    threads = [threading.Thread(target=lambda: urls.append(wire.video_url(frames, fps=2.0))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(urls) == 8 and len(set(urls)) == 1

    def broken(frames, fps, **kw):
        calls.append(1)
        time.sleep(0.1)
        raise ValueError("cannot encode")

    monkeypatch.setattr(wire, "mp4_bytes", broken)
    errors = []

    def ask():
        try:
            wire.video_url(np.ones((2, 16, 16, 3), np.uint8), fps=2.0)
        except ValueError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["cannot encode"] * 4  # every caller meets the failure, none hangs


def test_the_spliced_body_is_the_sdk_body(coded_video, monkeypatch):
    """The request's JSON is written by us with the media URLs spliced in; the server receives what the SDK's own
    serialisation of the dict sends, and an SDK that cannot send bytes gets the dict."""
    def ask(backend):
        agent = ZoomAgent(backend, ZoomConfig(agent="no-zoom"))
        agent.run(coded_video, "Q? \"quoted\" \\ é", OPTIONS)
        return backend

    with ScriptedServer(["\\boxed{A}"], repeat_last=True) as server:
        spliced = ask(backend_for(server))
        assert spliced._raw_bodies
        plain = backend_for(server)
        calls = []

        real_post = plain.client.post

        def old_sdk_post(*a, **kw):  # an SDK without post(content=); create() posts a dict through it
            if "content" in kw:
                calls.append(1)
                raise TypeError("post() got an unexpected keyword argument 'content'")
            return real_post(*a, **kw)

        monkeypatch.setattr(plain.client, "post", old_sdk_post)
        ask(plain)
        assert calls == [1] and not plain._raw_bodies
        ask(plain)  # not tried again
        assert calls == [1]
    first, second, third = server.requests
    assert first == second == third
    videos = [p for p in first["messages"][1]["content"] if p["type"] == "video_url"]
    assert len(videos) == 1 and videos[0]["video_url"]["url"].startswith("data:video/mp4;base64,")
    texts = [p.get("text", "") for p in first["messages"][1]["content"]]
    assert any('Q? "quoted" \\ é' in t for t in texts)  # the text around the media went through JSON as usual


def test_probe_stops_a_server_that_counts_other_visual_tokens():
    """A server whose token counts do not grow with the frames' grid (here: the scripted server, which counts words)
    is stopped at start with the serve flags that fix it; `auto` probes vLLM servers only."""
    with ScriptedServer(["x", "y"]) as server:
        OpenAIBackend(server.url).check()  # auto: not a vLLM server, no probe
        assert list(server.requests) == []
        with pytest.raises(BackendError, match=r"counts 0 more visual tokens .* --mm-processor-kwargs .*\"fps\": 30"):
            OpenAIBackend(server.url, probe="on").check()
    sent = [p for r in server.requests for p in r["messages"][0]["content"] if p["type"] == "video_url"]
    assert len(sent) == 2 and all(p["video_url"]["url"].startswith("data:video/mp4;base64,") for p in sent)


def test_readme_serve_command_carries_the_vllm_settings():
    """The README's serve flags (what the real-server tests start vLLM with) are the settings the code names in its
    probe error and gives an in-process engine."""
    import shlex

    from longlens.backends.wire import serve_flags
    from test_vllm_server import readme_serve_flags

    flags = readme_serve_flags()
    wanted = shlex.split(serve_flags())
    assert all(flags[flags.index(k) + 1] == v for k, v in zip(wanted[::2], wanted[1::2], strict=True))
