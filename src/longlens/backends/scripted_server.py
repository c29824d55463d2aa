"""A scripted OpenAI-compatible HTTP server: replies come from a script, requests are recorded.

It speaks the chat-completions wire format (``GET /v1/models``, ``POST /v1/chat/completions``), binds
127.0.0.1 by default, and is what the tests drive the real `OpenAIBackend` against. Users can run it for
dry runs: ``longlens scripted-server replies.json``.

A script entry is a reply string, or a dict with optional ``text``, ``status`` (an HTTP error to send,
e.g. 500), ``delay_s`` (wait before answering, to provoke timeouts), ``error`` (the error message),
``body`` (a JSON value sent as the whole 200 answer: ``{"choices": []}``, a string ...) and ``raw`` (bytes,
as text, sent as the whole 200 answer: what a broken proxy returns).
When the script runs out, the last entry repeats if ``repeat_last`` is set, else HTTP 500 is sent.
``latency_s`` adds a fixed wait to every chat completion (a stand-in for a model's time, so that questions
are in flight in throughput benchmarks and crash tests); requests are served in parallel threads.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    def __init__(self, script: list, *, model: str = "scripted-model", host: str = "127.0.0.1", port: int = 0,
                 repeat_last: bool = False, latency_s: float = 0.0, keep_requests: int | None = None):
        if latency_s < 0:
            raise ValueError(f"latency_s must be 0 or more, got {latency_s}")
        self.script = list(script)
        self.latency_s = latency_s
        self.model = model
        self.repeat_last = repeat_last
        self.requests: deque[dict] = deque(maxlen=keep_requests)
        """The request bodies received (the last `keep_requests` of them when that is set)."""
        self.received = 0
        """How many chat requests came in (all of them, kept or not)."""
        self._lock = threading.Lock()
        self._served = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                return None

            def _send(self, status: int, payload, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [
                        {"id": server.model, "object": "model", "created": 0, "owned_by": "longlens"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request"}})
                    return
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                if body.get("model") != server.model:
                    self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                               "type": "NotFoundError"}})
                    return
                entry = server._next(body)
                if entry is None:
                    self._send(500, {"error": {"message": "the script has no more replies", "type": "script"}})
                    return
                wait = server.latency_s + (entry.get("delay_s") or 0)
                if wait:
                    time.sleep(wait)
                if entry.get("status"):
                    self._send(entry["status"], {"error": {"message": entry.get("error", "scripted failure"),
                                                           "type": "scripted"}})
                    return
                if "raw" in entry:
                    self._send(200, None, raw=str(entry["raw"]).encode("utf-8", "surrogatepass"))
                    return
                if "body" in entry:
                    self._send(200, entry["body"])
                    return
                text = entry.get("text", "")
                self._send(200, {
                    "id": f"chatcmpl-{server._served}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": server.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": _prompt_tokens(body), "completion_tokens": len(text.split()),
                              "total_tokens": _prompt_tokens(body) + len(text.split())},
                })

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    def _next(self, body: dict) -> dict | None:
        with self._lock:
            self.requests.append(body)
            self.received += 1
            if self._served < len(self.script):
                entry = self.script[self._served]
            elif self.repeat_last and self.script:
                entry = self.script[-1]
            else:
                return None
            self._served += 1
        return {"text": entry} if isinstance(entry, str) else dict(entry)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ScriptedServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _prompt_tokens(body: dict) -> int:
    """A rough count (words of text parts) so usage is reported like a real server does."""
    n = 0
    for m in body.get("messages", []):
        content = m.get("content")
        if isinstance(content, str):
            n += len(content.split())
        else:
            n += sum(len(p.get("text", "").split()) for p in content or [] if p.get("type") == "text")
    return n
