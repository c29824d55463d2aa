"""Any OpenAI-compatible server (vLLM, SGLang, a hosted API) through the official ``openai`` SDK.

What reaches the server per request:

* each video as one ``video_url`` item (`wire.py`): by default a lossless MP4 whose frame rate is the video's
  sampling rate, so the server's loader gives every video its own rate (Qwen2.5-VL's ``second_per_grid_ts``)
  with no per-request keyword arguments; or a JPEG sequence, or loose ``image_url`` frames (`video_format`);
* a forced assistant prefix as a final assistant message with ``continue_final_message=True`` and
  ``add_generation_prompt=False`` (vLLM's chat API);
* greedy decoding unless told otherwise.

With a vLLM server (``/v1/models`` says ``owned_by: vllm``) `check` probes once that the server counts the
visual tokens of a known video as we do (`probe`), and every request then asks for the prompt's token ids
(``return_token_ids``) so each call records the server's tokens per video beside ours. The serve command this
was verified with is in the README and `scripts/vllm-cpu.sh`.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from dataclasses import replace

import numpy as np

from longlens._imports import require
from longlens.backends.base import DEFAULT_GEN, Backend, BackendError, Completion, GenConfig, Usage
from longlens.backends.wire import VIDEO_FORMATS, count_media, encode_ahead, json_bytes, serve_flags, to_openai
from longlens.prompts.messages import Message, Text, Video, forced_prefix

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
PROBES = ("auto", "on", "off")

class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000/v1",
        model: str | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 600.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        video_format: str = "mp4",
        frames_as_images: bool = False,
        jpeg_quality: int = 95,
        extra_body: dict | None = None,
        probe: str = "auto",
        flags: tuple[str, str] = ("--base-url", "--model"),
    ):
        openai = require("openai", "openai", "the OpenAI-compatible backend")
        self._openai = openai
        self.base_url = base_url.rstrip("/")
        self.model = model or ""
        self.flags = flags
        """The user's names for the URL and the model (``--caption-url``, ``caption_url`` ...), for messages."""
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        video_format = "images" if frames_as_images else video_format
        if video_format not in VIDEO_FORMATS:
            raise BackendError(f"--video-format must be one of {', '.join(VIDEO_FORMATS)}, got {video_format!r}")
        if probe not in PROBES:
            raise BackendError(f"probe must be one of {', '.join(PROBES)}, got {probe!r}")
        self.video_format = video_format
        self.probe_mode = probe
        self.owner: str | None = None
        self.video_token_id: int | None = None
        """The server's video placeholder token id (set by `probe`). Once it is known, every request asks for the
        prompt's token ids and each call reports the server's tokens per video."""
        self.jpeg_quality = jpeg_quality
        self.extra_body = dict(extra_body or {})
        key = os.environ.get(api_key_env) or "EMPTY"
        # our own retry loop gives one clear error at the end; the SDK's is off
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout_s, max_retries=0)
        self.aclient = openai.AsyncOpenAI(base_url=self.base_url, api_key=key, timeout=timeout_s, max_retries=0)
        from openai.types.chat import ChatCompletion

        self._chat_type = ChatCompletion
        self._raw_bodies = True
        """Whether the SDK sends a body given as JSON bytes (`post(content=)`); older ones get the dict."""

    # ------------------------------------------------------------------ start-up check
    def check(self) -> None:
        """Ask /models: is the server there, and does it serve our model? Picks the only model if unset."""
        try:
            cards = list(self.client.models.list(timeout=min(self.timeout_s, 30)))
            served = [m.id for m in cards]
        except self._openai.APIConnectionError as exc:
            raise BackendError(
                f"cannot reach an OpenAI-compatible server at {self.base_url} ({_cause(exc)}); "
                f"is it running? check {self.flags[0]}"
            ) from exc
        except self._openai.APIStatusError as exc:
            raise BackendError(
                f"{self.base_url}/models answered HTTP {exc.status_code}; is {self.flags[0]} the server's /v1 root?"
            ) from exc
        if not self.model:
            if len(served) != 1:
                raise BackendError(f"{self.base_url} serves {served or 'no models'}; name one with {self.flags[1]}")
            self.model = served[0]
        elif self.model not in served:
            raise BackendError(f"model {self.model!r} is not served at {self.base_url}; it serves: {', '.join(served)}")
        self.owner = next((getattr(m, "owned_by", None) for m in cards if m.id == self.model), None)
        if self.probe_mode == "on" or (self.probe_mode == "auto" and self.owner == "vllm"):
            if self.video_format != "images":
                self.probe()

    def probe(self) -> None:
        """Check that the server counts a known video's visual tokens as we do, with two tiny requests.

        Two videos of 8 frames at 8 fps, 56x56 and 112x84 pixels: 16 and 48 tokens in Qwen-VL's count, so the
        two prompts must differ by 32 tokens. A server that resizes frames (its processor's default pixel
        limits) or resamples clips (vLLM's loader takes 2 fps unless told otherwise) counts otherwise and is
        refused with the flags that fix it. When the server returns the prompt's token ids (vLLM's
        ``return_token_ids``), the video placeholder's id is read from them and kept in `video_token_id`."""
        counts, ids, tokens = [], [], []
        for h, w in ((56, 56), (112, 84)):
            video = Video(_probe_frames(8, h, w, fps=8.0), label="probe")
            tokens.append(video.frames.visual_tokens)
            messages = (Message("user", (video, Text("Describe the video."))),)
            body = self.request(messages, GenConfig(max_new_tokens=1))
            body.setdefault("extra_body", {})["return_token_ids"] = True
            try:
                response = self.client.chat.completions.create(**body)
            except self._openai.OpenAIError as exc:
                raise self._failure(exc, messages)[1] from exc
            usage = getattr(response, "usage", None)
            counts.append(getattr(usage, "prompt_tokens", None))
            ids.append(_prompt_ids(response))
        if None in counts:
            return  # the server reports no usage: nothing to compare
        expected = tokens[1] - tokens[0]
        if counts[1] - counts[0] != expected:
            raise BackendError(
                f"{self.base_url} counts {counts[1] - counts[0]} more visual tokens for a 112x84 video than for a "
                f"56x56 one of 8 frames at 8 fps, where the model's grid gives {expected}: the server resizes or "
                f"resamples the frames LongLens sends. Start vLLM with {serve_flags()}")
        if ids[0]:
            values, runs = _runs(ids[0])
            longest = int(np.argmax(runs))
            if runs[longest] == tokens[0]:
                self.video_token_id = int(values[longest])

    # ------------------------------------------------------------------ requests
    def request(self, messages: tuple[Message, ...], gen: GenConfig, media: dict[str, str] | None = None) -> dict:
        """The chat-completions body (the SDK's keyword arguments; `extra_body` holds what the SDK does not name).
        With a `media` dict the data URLs are tokens mapped there (`wire.to_openai`)."""
        body: dict = {
            "model": self.model,
            "messages": to_openai(messages, video_format=self.video_format, jpeg_quality=self.jpeg_quality,
                                  media=media),
            "max_tokens": gen.max_new_tokens,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
        }
        if gen.seed is not None:
            body["seed"] = gen.seed
        if gen.stop:
            body["stop"] = list(gen.stop)
        extra = dict(self.extra_body)
        if gen.top_k is not None:
            extra["top_k"] = gen.top_k
        if gen.ignore_eos:
            extra["ignore_eos"] = True  # vLLM / SGLang sampling parameter
        if forced_prefix(messages) is not None:
            extra.update(continue_final_message=True, add_generation_prompt=False)
        if self.video_token_id is not None:
            extra["return_token_ids"] = True  # vLLM: the prompt's token ids, to count each video's tokens
        if extra:
            body["extra_body"] = extra
        return body

    def _completion(self, response, prefix: str, t0: float) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            kind = "no choices" if isinstance(choices, list) else f"a {type(response).__name__} body"
            raise _BadReply(f"{self.base_url} answered HTTP 200 with {kind} instead of a chat completion")
        choice = choices[0]
        text = choice.message.content or ""
        if not isinstance(text, str):
            raise _BadReply(f"{self.base_url} answered HTTP 200 with a message whose content is not text")
        if prefix and text.startswith(prefix):  # some servers echo the continued message
            text = text[len(prefix) :]
        usage = response.usage
        visual = None
        if self.video_token_id is not None and (ids := _prompt_ids(response)):
            values, runs = _runs(ids)
            visual = tuple(int(r) for v, r in zip(values, runs, strict=True) if v == self.video_token_id)
        model, finish = getattr(response, "model", None), getattr(choice, "finish_reason", None)
        return Completion(
            text=text,
            prefix=prefix,
            usage=Usage(_count(getattr(usage, "prompt_tokens", None)),
                        _count(getattr(usage, "completion_tokens", None)), visual_tokens=visual),
            latency_s=time.perf_counter() - t0,
            model=model if isinstance(model, str) and model else self.model,
            finish_reason=finish if isinstance(finish, str) else None,
        )

    def _raw(self, body: dict, media: dict[str, str]) -> bytes:
        """The request's JSON bytes, the data URLs spliced in (`wire.json_bytes`); `extra_body` merged as the SDK
        merges it."""
        flat = {k: v for k, v in body.items() if k != "extra_body"}
        flat.update(body.get("extra_body") or {})
        return json_bytes(flat, media)

    def _call(self, create, body: dict):
        try:
            return create(**body)
        except ValueError as exc:  # a body that is not JSON (json.JSONDecodeError): the server's fault
            raise self._not_json(exc) from exc

    async def _asend(self, body: dict, media: dict[str, str]):
        """`_send` on the async client."""
        if self._raw_bodies:
            try:
                return await self.aclient.post("/chat/completions", content=self._raw(body, media),
                                                cast_to=self._chat_type)
            except TypeError:
                self._raw_bodies = False
        return await self.aclient.chat.completions.create(**_restored(body, media))

    def _send(self, client, body: dict, media: dict[str, str]):
        """POST the request: the body's JSON is written by us with the media spliced in, so
        the SDK does not escape megabytes of base64 for every call (that held the GIL for most of the client's
        time at 64 questions in flight). SDKs without `post(content=)` get the dict."""
        if self._raw_bodies:
            try:
                return client.post("/chat/completions", content=self._raw(body, media), cast_to=self._chat_type)
            except TypeError:  # this SDK cannot send pre-serialized JSON
                self._raw_bodies = False
        return client.chat.completions.create(**_restored(body, media))

    def _not_json(self, exc: ValueError) -> _BadReply:
        return _BadReply(f"{self.base_url} answered HTTP 200 with a body that is not JSON ({str(exc)[:80]})")

    def _failure(self, exc, messages) -> tuple[bool, BackendError]:
        """(retry?, the error to raise if we stop)."""
        o = self._openai
        if isinstance(exc, _BadReply):
            return True, BackendError(f"{exc} after {self.retries + 1} tries; check the server")
        if isinstance(exc, o.APITimeoutError):
            return True, BackendError(
                f"{self.base_url} did not answer within {self.timeout_s:g} s after {self.retries + 1} tries; "
                "raise --timeout or check the server's load"
            )
        if isinstance(exc, o.APIConnectionError):
            return True, BackendError(
                f"lost the connection to {self.base_url} after {self.retries + 1} tries ({_cause(exc)}); "
                "is the server still running?"
            )
        if isinstance(exc, o.APIStatusError):
            detail = _detail(exc)
            if exc.status_code in RETRYABLE_STATUS:
                return True, BackendError(
                    f"{self.base_url} failed with HTTP {exc.status_code} after {self.retries + 1} tries: {detail}"
                )
            return False, BackendError(_refusal(self.base_url, exc.status_code, _detail(exc, None), messages,
                                                self.video_format, self.flags))
        raise exc

    def _brief(self, exc) -> str:
        """One failed try that was retried, in one short line (kept on the reply that came later)."""
        o = self._openai
        if isinstance(exc, o.APITimeoutError):
            return f"no answer within {self.timeout_s:g} s"
        if isinstance(exc, o.APIConnectionError):
            return f"connection failed ({_cause(exc)})"
        if isinstance(exc, o.APIStatusError):
            return f"HTTP {exc.status_code}: {_detail(exc, 160)}"
        return str(exc)[:200]

    def _delay(self, attempt: int) -> float:
        return self.backoff_s * (2**attempt) * (0.5 + random.random() / 2)

    def _retried(self, exc: Exception, messages, attempt: int) -> str:
        """After a failed try: raise the error when it is final (not the server's fault, or the last try),
        else the short form it is recorded as."""
        retry, error = self._failure(exc, messages)
        if not retry or attempt == self.retries:
            raise error from exc
        return self._brief(exc)

    def prepare(self, media) -> None:
        encode_ahead(media, video_format=self.video_format, jpeg_quality=self.jpeg_quality)

    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        media: dict[str, str] = {}
        body = self.request(messages, gen, media)
        prefix, last = forced_prefix(messages) or "", None
        for attempt in range(self.retries + 1):
            t0 = time.perf_counter()
            try:
                done = self._completion(self._call(lambda **b: self._send(self.client, b, media), body), prefix, t0)
                return replace(done, retries=attempt, retry_error=last) if attempt else done
            except (self._openai.OpenAIError, _BadReply) as exc:
                last = self._retried(exc, messages, attempt)
            time.sleep(self._delay(attempt))
        raise AssertionError("unreachable")

    async def agenerate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        """`generate` on the event loop: the same tries, the waits and the request awaited."""
        media: dict[str, str] = {}
        body = await asyncio.to_thread(self.request, messages, gen, media)  # JPEG encoding off the event loop
        prefix, last = forced_prefix(messages) or "", None
        for attempt in range(self.retries + 1):
            t0 = time.perf_counter()
            try:
                try:
                    response = await self._asend(body, media)
                except ValueError as exc:  # a body that is not JSON (json.JSONDecodeError)
                    raise self._not_json(exc) from exc
                done = self._completion(response, prefix, t0)
                return replace(done, retries=attempt, retry_error=last) if attempt else done
            except (self._openai.OpenAIError, _BadReply) as exc:
                last = self._retried(exc, messages, attempt)
            await asyncio.sleep(self._delay(attempt))
        raise AssertionError("unreachable")

    def describe(self) -> str:
        return f"openai:{self.model}@{self.base_url}"


def _restored(body: dict, media: dict[str, str]) -> dict:
    """`body` with every media token in its messages replaced by its URL again (in place), for the SDK's dict path."""
    for token, url in media.items():
        _restore(body["messages"], token, url)
    return body


def _restore(value, token: str, url: str) -> None:
    """Put `url` back where `token` stands in the messages (in place)."""
    if isinstance(value, list):
        for item in value:
            _restore(item, token, url)
    elif isinstance(value, dict):
        for k, v in value.items():
            if v == token:
                value[k] = url
            elif isinstance(v, list | dict):
                _restore(v, token, url)


def _count(value) -> int | None:
    """A token count as the server reported it, or None when what it sent is no count ("many", -1, 2.5)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _cause(exc) -> str:
    cause = exc.__cause__ or exc.__context__
    return str(cause or exc).splitlines()[0][:160]


class _BadReply(Exception):
    """A 200 answer that is not a chat completion (retried like a server error)."""


_ARRAY = re.compile(r"array\(\[.*?\](?:, shape=\([\d, ]*\))?(?:, dtype=[\w.]+)?\)|\[\[[\d\s.,\[\]-]{40,}\]\]", re.S)


def _detail(exc, limit: int | None = 400) -> str:
    """The server's reason, in one line: the error message of the body, without array dumps (at most `limit`
    characters: its start and its end, where vLLM puts the reason)."""
    body = getattr(exc, "body", None)
    msg = None
    if isinstance(body, dict):
        err = body.get("error")
        msg = err.get("message") if isinstance(err, dict) else body.get("message") or body.get("detail")
    text = _ARRAY.sub("<array>", str(msg or exc))
    text = " ".join(text.split())
    return text if limit is None or len(text) <= limit else text[: limit // 2] + " ... " + text[-(limit // 2) :]


def _refusal(url: str, status: int, detail: str, messages, video_format: str,
             flags: tuple[str, str] = ("--base-url", "--model")) -> str:
    """One line for a request the server refused (4xx), naming the server flag or option that fixes it."""
    low = detail.lower()
    n = re.search(r"with (\d+) embedding tokens", detail)
    detail = detail if len(detail) <= 400 else detail[:200] + " ... " + detail[-200:]
    if "encoder cache" in low:
        need = f" {n.group(1)}" if n else ""
        return (f"{url}: a video has more visual tokens than vLLM's encoder cache holds ({detail}); start vLLM "
                f"with --max-num-batched-tokens{need or ' N'} or more (it sizes the encoder cache) and a "
                "--max-model-len that fits the prompt, or send fewer/smaller frames (--num-fast, --fast-res)")
    if "mm_processor_kwargs" in low or "media_io_kwargs" in low:
        return (f"{url} refuses per-request processor settings ({detail}); LongLens sends none by default: "
                "remove them from --extra-body, or start vLLM with --trust-request-mm-kwargs")
    if "may be provided in one" in low or "at most" in low or ("limit" in low and ("video" in low or "image" in low)):
        media = count_media(messages, video_format == "images")
        return (f"the server refused {media['video']} video(s) / {media['image']} image(s) in one prompt "
                f"({detail}); start vLLM with --limit-mm-per-prompt '{{\"video\": 3, \"image\": 0}}' or higher")
    if "maximum context length" in low or "max_model_len" in low or "too long" in low:
        return (f"{url}: the prompt is longer than the server allows ({detail}); start vLLM with a larger "
                "--max-model-len, or send fewer/smaller frames (--num-fast, --fast-res)")
    if "fps" in low or ("video" in low and ("decode" in low or "load" in low)):
        return (f"{url} could not read a video LongLens sent ({detail}); try --video-format jpeg (no per-video "
                "rates) or images")
    if status == 404:
        return f"HTTP 404 from {url}: {detail}; check {flags[1]} and {flags[0]}"
    return f"{url} rejected the request (HTTP {status}): {detail}"


def _prompt_ids(response) -> list[int] | None:
    """The prompt's token ids when the server returned them (vLLM's ``return_token_ids``)."""
    ids = getattr(response, "prompt_token_ids", None)
    if ids is None:
        extra = getattr(response, "model_extra", None) or {}
        ids = extra.get("prompt_token_ids")
    return [int(i) for i in ids] if isinstance(ids, list) and all(isinstance(i, int) for i in ids) else None


def _runs(ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(value, length) of each run of equal consecutive token ids."""
    a = np.asarray(ids)
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
    return a[starts], np.diff(np.r_[starts, len(a)])


def _probe_frames(n: int, h: int, w: int, *, fps: float):
    """A small synthetic frame set for the token-count probe (grey ramps; content does not matter)."""
    from longlens.video import FramePlan, FrameSet

    times = tuple(i / fps for i in range(n))
    plan = FramePlan(kind="slow", indices=tuple(range(n)), times_s=times, height=h, width=w, sample_fps=fps,
                     span_s=(0.0, n / fps))
    frames = np.broadcast_to(np.linspace(0, 255, w, dtype=np.uint8)[None, None, :, None], (n, h, w, 3)).copy()
    return FrameSet(frames=frames, indices=plan.indices, times_s=times, plan=plan, video_path="probe",
                    video_id="probe")
