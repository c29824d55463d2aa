"""`longlens serve`: the agents behind the OpenAI chat API (FastAPI).

``GET /v1/models`` lists the served agents; ``POST /v1/chat/completions`` answers the question of the last user
message about the one video it carries (a ``video_url`` part), plainly or streamed (one chunk per agent step,
the lines ``longlens ask`` prints, then the answer). The reply's ``longlens`` field is the trace in brief
(`service.summary`). Errors have OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``: 4xx for
what the request got wrong, 5xx only for a fault of ours, never a stack trace.
"""


import asyncio
import hmac
import json
import logging
import time
import uuid
from typing import Any

from longlens.agents.trace import Step
from longlens.errors import LongLensError
from longlens.serve.service import RequestError, Service, check_options, reply_text, split_options, summary

log = logging.getLogger("longlens.serve")


Failure = tuple[int, str, str, str | None]
"""(HTTP status, one-line message, OpenAI error code, the request field at fault)."""

INTERNAL: Failure = (500, "internal error in LongLens (logged on the server)", "internal_error", None)


def _error_body(status: int, message: str, code: str, param: str | None = None) -> dict:
    kind = "authentication_error" if status == 401 else "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _error(status: int, message: str, code: str, param: str | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse(_error_body(status, message, code, param), status_code=status)


def _failure(exc: LongLensError) -> Failure:
    """What a client is told of an error raised while answering: a request we refuse (`RequestError`), or the
    model behind the agent failing (a server down, a bad reply ...)."""
    if isinstance(exc, RequestError):
        return exc.status, str(exc), exc.code, exc.param
    return 502, f"the agent's model failed: {exc}", "backend_error", None


def parse_chat(body: Any) -> tuple[str | None, str, str, tuple[str, ...], bool]:
    """(model, video reference, question, options, stream) of a chat request body; `RequestError` if malformed."""
    if not isinstance(body, dict):
        raise RequestError(400, "invalid_request", "the body must be a JSON object (an OpenAI chat request)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "invalid_request", "'messages' must be a non-empty list", "messages")
    last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    if last is None:
        raise RequestError(400, "invalid_request", "no user message: the last user message carries the video "
                                                   "and the question", "messages")
    content = last.get("content")
    texts: list[str] = []
    videos: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                raise RequestError(400, "invalid_request", "each content part must be an object", "messages")
            kind = part.get("type")
            if kind == "text":
                texts.append(str(part.get("text") or ""))
            elif kind == "video_url":
                url = part.get("video_url")
                url = url.get("url") if isinstance(url, dict) else url
                if not isinstance(url, str):
                    raise RequestError(400, "invalid_video", "video_url needs a 'url' string", "messages")
                videos.append(url)
            else:
                raise RequestError(400, "invalid_request", f"content part type {kind!r} is not taken here; send "
                                                           "'text' and one 'video_url'", "messages")
    else:
        raise RequestError(400, "invalid_request", "the user message has no content", "messages")
    if not videos:
        raise RequestError(400, "missing_video", "the last user message has no video: add a video_url part "
                                                 "(a path under the server's --videos, or a data: URL)", "messages")
    if len(videos) > 1:
        raise RequestError(400, "invalid_video", f"one video a question, got {len(videos)} video_url parts",
                           "messages")
    text = "\n".join(t for t in texts if t.strip())
    options = body.get("options")
    if options is not None:
        question, options = text.strip(), check_options(options)
    else:
        question, options = split_options(text)
    if not question:
        raise RequestError(400, "missing_question", "the last user message has no question text", "messages")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(400, "invalid_request", "'model' must be a string", "model")
    return model, videos[0], question, options, bool(body.get("stream"))


def create_app(service: Service, *, api_key: str | None = None):
    """The ASGI app; `api_key`: the bearer token clients must send (None: none)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app = FastAPI(title="LongLens", docs_url=None, redoc_url=None, openapi_url=None)
    created = int(time.time())
    # a body this large can hold the largest upload allowed (base64 is 4/3 of the bytes) and the rest of the request
    max_body = int(service.limits.max_upload_mb * 2**20 * 4 / 3) + (1 << 20)

    def refused(headers) -> Any:
        """The error response for a request refused on its headers (a wrong key, a body too large), or None."""
        if api_key is not None:
            got = headers.get("authorization", "")
            if not hmac.compare_digest(got.encode(), f"Bearer {api_key}".encode()):
                return _error(401, "missing or wrong API key: send 'Authorization: Bearer KEY'", "invalid_api_key")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            return _error(413, f"the request is {int(length) / 2**20:.0f} MB; this server takes videos of at most "
                               f"{service.limits.max_upload_mb:g} MB (--max-upload-mb)", "video_too_large")
        return None

    @app.exception_handler(Exception)
    async def internal(request, exc):  # a fault of ours: logged here, a one-line 500 there
        log.error("internal error on %s", request.url.path, exc_info=exc)
        return _error(*INTERNAL)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc):
        return _error(exc.status_code, str(exc.detail), "not_found" if exc.status_code == 404 else "http_error")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc):
        return _error(400, "malformed request body", "invalid_request")

    @app.get("/v1/models")
    async def models(request: Request):
        if (no := refused(request.headers)) is not None:
            return no
        return {"object": "list", "data": [{"id": a.name, "object": "model", "created": created,
                                            "owned_by": "longlens", "backend": a.backend}
                                           for a in service.agents.values()]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        t0 = time.perf_counter()
        if (no := refused(request.headers)) is not None:
            return no
        data = bytearray()
        async for part in request.stream():  # read with the limit (a chunked body declares no length)
            data += part
            if len(data) > max_body:
                return _error(413, f"the request is over {max_body / 2**20:.0f} MB; this server takes videos of at "
                                   f"most {service.limits.max_upload_mb:g} MB (--max-upload-mb)", "video_too_large")
        try:
            body = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the body is not JSON", "invalid_request")
        try:
            model, ref, question, options, stream = parse_chat(body)
            agent = service.agent(model)
            path = await asyncio.to_thread(service.resolve, ref)
            info = await asyncio.to_thread(service.open, path)
        except RequestError as exc:
            return _error(*_failure(exc))
        timed_out: Failure = (504, f"no answer within {service.limits.timeout_s:g} s (--request-timeout)", "timeout",
                              None)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        now = int(time.time())
        if not stream:
            try:
                trace = await asyncio.wait_for(
                    asyncio.to_thread(service.answer, agent, info, question, options, None,
                                      waited_s=time.perf_counter() - t0),
                    timeout=service.limits.timeout_s)
            except TimeoutError:
                return _error(*timed_out)
            except LongLensError as exc:
                return _error(*_failure(exc))
            t = trace.totals
            usage = {"prompt_tokens": t.prompt_tokens or 0, "completion_tokens": t.completion_tokens or 0}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            return JSONResponse({
                "id": rid, "object": "chat.completion", "created": now, "model": agent.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply_text(trace)},
                             "finish_reason": "stop"}],
                "usage": usage,
                "longlens": summary(trace, agent, time.perf_counter() - t0),
            })

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def on_step(step: Step) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ("step", step))

        def work():
            try:
                trace = service.answer(agent, info, question, options, on_step, waited_s=time.perf_counter() - t0)
                loop.call_soon_threadsafe(queue.put_nowait, ("done", trace))
            except LongLensError as exc:
                loop.call_soon_threadsafe(queue.put_nowait, ("error", _failure(exc)))
            except Exception:
                log.exception("internal error in a streamed question")
                loop.call_soon_threadsafe(queue.put_nowait, ("error", INTERNAL))

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            data = {"id": rid, "object": "chat.completion.chunk", "created": now, "model": agent.name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(data)}\n\n"

        async def events():
            task = asyncio.create_task(asyncio.to_thread(work))
            deadline = t0 + service.limits.timeout_s
            yield chunk({"role": "assistant", "content": ""})
            while True:
                try:
                    kind, item = await asyncio.wait_for(queue.get(), timeout=max(deadline - time.perf_counter(), 0))
                except TimeoutError:
                    kind, item = "error", timed_out
                if kind == "step":
                    yield chunk({"content": agent.line(item) + "\n"})
                elif kind == "done":
                    yield chunk({"content": reply_text(item)})
                    yield chunk({}, "stop", longlens=summary(item, agent, time.perf_counter() - t0))
                    break
                else:
                    yield f"data: {json.dumps(_error_body(*item))}\n\n"
                    break
            yield "data: [DONE]\n\n"
            if task.done():
                task.result()

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
