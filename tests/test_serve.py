"""`longlens serve` and `longlens mcp` as real processes, talked to with the official `openai` and `mcp` SDKs."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from longlens.cli.demo import FPS, HEIGHT, TEXT_CAP, WIDTH  # noqa: E402
from longlens.synth import make_video  # noqa: E402

QUESTION_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """The demo's video (its maker's settings: 640x360, 15 fps, one small text label), 2 minutes, and a broken one."""
    root = tmp_path_factory.mktemp("served")
    key = make_video(root / "demo.mp4", duration_s=120, width=WIDTH, height=HEIGHT, fps=FPS, seed=0, needles=1,
                     needle_kinds=("text",), text_cap=TEXT_CAP)
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.mp4").write_bytes((root / "demo.mp4").read_bytes())
    (root / "link.mp4").symlink_to(outside / "secret.mp4")  # inside by its path: the operator's choice
    return root, key.needles[0], outside


class Server:
    def __init__(self, args: list[str], env: dict | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc = subprocess.Popen([sys.executable, "-m", "longlens", "serve", "--port", str(self.port), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.proc.stderr.read()}")
            try:
                urllib.request.urlopen(f"{self.url}/models", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # up (and asking for a key)
            except OSError:
                time.sleep(0.3)
        raise AssertionError("serve did not start")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


@pytest.fixture(scope="module")
def offline(videos, tmp_path_factory):
    root, _, _ = videos
    server = Server(["--backend", "offline", "--videos", str(root), "--max-upload-mb", "1", "--concurrency", "2",
                     "--cache-dir", str(tmp_path_factory.mktemp("serve-cache"))])
    yield server
    err = server.stop()
    assert "Traceback" not in err, err


def client(server: Server, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=key, timeout=QUESTION_TIMEOUT_S, max_retries=0)


def question(needle, video: str = "demo.mp4", options: bool = True) -> list[dict]:
    text = needle.question + ("".join(f"\n{chr(65 + i)}. {o}" for i, o in enumerate(needle.options)) if options else "")
    return [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": video}},
                                         {"type": "text", "text": text}]}]


def test_models_lists_the_served_agents(offline):
    models = client(offline).models.list().data
    assert [m.id for m in models] == ["longlens-zoom"]
    assert models[0].model_extra["backend"].startswith("offline")


def test_the_demo_question_is_answered_plainly_and_streamed(offline, videos):
    _, needle, _ = videos
    c = client(offline)
    r = c.chat.completions.create(model="longlens-zoom", messages=question(needle))
    truth = f"{needle.answer}. {needle.options[ord(needle.answer) - 65]}"
    assert r.choices[0].message.content == truth
    info = r.model_extra["longlens"]
    assert info["choice"] == needle.answer and info["guessed"] is False and info["steps"] >= 2
    assert info["spans"] and info["visual_tokens"] > 0
    assert any(a <= needle.start_s <= b or a <= needle.end_s <= b for a, b in info["spans"])

    # streamed, options in an extra field: one chunk per step (the CLI's lines), then the answer, then the summary
    chunks = list(c.chat.completions.create(model="longlens-zoom", messages=question(needle, options=False),
                                            stream=True, extra_body={"options": list(needle.options)}))
    texts = [ch.choices[0].delta.content for ch in chunks if ch.choices[0].delta.content]
    assert texts[0].startswith("step 1  zoom [") and texts[-2].startswith("step 2  answer")
    assert texts[-1] == truth
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["longlens"]["choice"] == needle.answer


def test_two_clients_at_once(offline, videos):
    _, needle, _ = videos
    got: list = []

    def one():
        r = client(offline).chat.completions.create(model="longlens-zoom", messages=question(needle))
        got.append(r.choices[0].message.content)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(QUESTION_TIMEOUT_S)
    assert len(got) == 2 and got[0] == got[1] and got[0].startswith(needle.answer)


def test_an_uploaded_or_fetched_video_is_answered(videos, tmp_path):
    import functools
    import http.server

    root, needle, _ = videos
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(root)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    # no --videos: uploads (and, allowed here, URLs) only
    server = Server(["--backend", "offline", "--allow-url", "--cache-dir", str(tmp_path / "cache")])
    try:
        data = base64.b64encode((root / "demo.mp4").read_bytes()).decode()
        r = client(server).chat.completions.create(model="longlens-zoom",
                                                   messages=question(needle, f"data:video/mp4;base64,{data}"))
        assert r.choices[0].message.content.startswith(needle.answer)
        url = f"http://127.0.0.1:{files.server_address[1]}/demo.mp4"
        r = client(server).chat.completions.create(model="longlens-zoom", messages=question(needle, url))
        assert r.choices[0].message.content.startswith(needle.answer)
        stored = list((tmp_path / "cache" / "uploads").iterdir())
        assert len(stored) == 1  # the upload and the download are the same bytes: stored once
        with pytest.raises(openai.BadRequestError, match="HTTP 404"):
            client(server).chat.completions.create(model="longlens-zoom", messages=question(needle, url + ".gone"))
        with pytest.raises(openai.BadRequestError, match="takes no video paths"):
            client(server).chat.completions.create(model="longlens-zoom", messages=question(needle))
    finally:
        files.shutdown()
        assert "Traceback" not in server.stop()


@pytest.mark.parametrize("case", ["no video", "no question", "unreadable", "outside", "missing", "too large",
                                  "url", "unknown model", "two videos", "not json"])
def test_bad_requests_get_one_line_4xx_errors(offline, videos, case):
    root, needle, outside = videos
    c = client(offline)
    messages = question(needle)
    model = "longlens-zoom"
    if case == "no video":
        messages = [{"role": "user", "content": needle.question}]
    elif case == "no question":
        messages = [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "demo.mp4"}}]}]
    elif case == "unreadable":
        messages = question(needle, "broken.mp4")
    elif case == "outside":
        messages = question(needle, str(outside / "secret.mp4"))
    elif case == "missing":
        messages = question(needle, "nowhere.mp4")
    elif case == "too large":  # the server takes at most 1 MB
        messages = question(needle, "data:video/mp4;base64," + base64.b64encode(os.urandom(2 << 20)).decode())
    elif case == "url":
        messages = question(needle, "http://127.0.0.1:9/video.mp4")
    elif case == "unknown model":
        model = "gpt-5"
    elif case == "two videos":
        messages[0]["content"].append({"type": "video_url", "video_url": {"url": "demo.mp4"}})
    if case == "not json":
        req = urllib.request.Request(f"{offline.url}/chat/completions", data=b"{nope", method="POST",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=30)
        status, body = info.value.code, json.loads(info.value.read())
    else:
        with pytest.raises(openai.APIStatusError) as info:
            c.chat.completions.create(model=model, messages=messages)
        status, body = info.value.status_code, info.value.body
    expected = {"no video": 400, "no question": 400, "unreadable": 400, "outside": 403, "missing": 404,
                "too large": 413, "url": 403, "unknown model": 404, "two videos": 400, "not json": 400}[case]
    assert status == expected, body
    err = body["error"] if "error" in body else body
    message = err["message"]
    assert "\n" not in message and "Traceback" not in message and len(message) < 300
    assert str(root) not in message  # the server's folders are not shown to clients
    assert err["type"] == "invalid_request_error" and err["code"]


def test_a_symlink_inside_the_root_is_judged_by_its_path(offline, videos):
    _, needle, _ = videos
    r = client(offline).chat.completions.create(model="longlens-zoom", messages=question(needle, "link.mp4"))
    assert r.choices[0].message.content.startswith(needle.answer)


def test_scripted_backend_behind_a_key(videos, tmp_path):
    root, needle, _ = videos
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["\\boxed{C}"]))
    server = Server(["--backend", "scripted", "--script", str(script), "--videos", str(root), "--api-key-env",
                     "TEST_SERVE_KEY", "--cache-dir", str(tmp_path / "cache")], env={"TEST_SERVE_KEY": "s3cret"})
    try:
        with pytest.raises(openai.AuthenticationError):
            client(server, "wrong").models.list()
        c = client(server, "s3cret")
        r = c.chat.completions.create(model="longlens-zoom", messages=question(needle))
        assert r.choices[0].message.content == f"C. {needle.options[2]}"
        assert r.model_extra["longlens"]["steps"] == 1 and r.model_extra["longlens"]["backend"].startswith("scripted")
        # the script is spent: the model behind the agent failed, a 502 in one line
        with pytest.raises(openai.APIStatusError) as info:
            c.chat.completions.create(model="longlens-zoom", messages=question(needle))
        assert info.value.status_code == 502 and "script has 1 replies" in info.value.body["message"]
    finally:
        assert "Traceback" not in server.stop()


def test_a_busy_port_is_one_line(offline, tmp_path):
    (tmp_path / "s.json").write_text("[]")
    done = subprocess.run([sys.executable, "-m", "longlens", "serve", "--backend", "scripted", "--script",
                           str(tmp_path / "s.json"), "--port", str(offline.port)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "choose another --port" in done.stderr.strip().splitlines()[-1]


def test_mcp_tools_over_stdio(videos, tmp_path):
    mcp = pytest.importorskip("mcp")
    root, needle, outside = videos

    async def session():
        params = mcp.StdioServerParameters(command=sys.executable, args=[
            "-m", "longlens", "mcp", "--backend", "offline", "--videos", str(root), "--cache-dir", str(tmp_path)])
        async with mcp.Client(params) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            info = await c.call_tool("video_info", {"path": "demo.mp4"})
            answer = await c.call_tool("ask_video", {"path": "demo.mp4", "question": needle.question,
                                                     "options": list(needle.options)})
            frames = await c.call_tool("video_frames", {"path": "demo.mp4", "start_s": needle.start_s,
                                                        "end_s": needle.end_s, "n": 3})
            refused = await c.call_tool("video_info", {"path": str(outside / "secret.mp4")})
            return names, info, answer, frames, refused

    names, info, answer, frames, refused = asyncio.run(session())
    assert names == {"ask_video", "video_info", "video_frames"}
    got = json.loads(info.content[0].text)
    assert got["width"] == WIDTH and got["height"] == HEIGHT and abs(got["duration_s"] - 120) < 0.5
    result = json.loads(answer.content[0].text)
    assert result["choice"] == needle.answer and result["answer"].startswith(f"{needle.answer}. ")
    images = [p for p in frames.content if getattr(p, "type", "") == "image"]
    assert len(images) == 3 and all(p.mime_type == "image/jpeg" for p in images)
    assert refused.is_error and "outside the server's video folder" in refused.content[0].text
    assert str(root) not in refused.content[0].text


def test_mcp_over_streamable_http(videos, tmp_path):
    mcp = pytest.importorskip("mcp")
    root, _, _ = videos
    port = free_port()
    (tmp_path / "s.json").write_text("[]")
    proc = subprocess.Popen([sys.executable, "-m", "longlens", "mcp", "--http", "--port", str(port), "--backend",
                             "scripted", "--script", str(tmp_path / "s.json"), "--videos", str(root), "--cache-dir",
                             str(tmp_path / "cache")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def session():
        async with mcp.Client(f"http://127.0.0.1:{port}/mcp") as c:
            return await c.call_tool("video_info", {"path": "demo.mp4"})

    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() else "no start"
                time.sleep(0.3)
        got = json.loads(asyncio.run(session()).content[0].text)
        assert got["width"] == WIDTH and got["frames"] > 0
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
