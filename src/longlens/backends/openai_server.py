"""Any OpenAI-compatible server (vLLM, SGLang, a hosted API) through the official ``openai`` SDK.

What reaches the server per request:

* each video as one ``video_url`` JPEG sequence (see `wire.py`), or loose ``image_url`` frames with
  ``frames_as_images``;
* ``mm_processor_kwargs.fps``: the sampling rate of each video, in order — Qwen2.5-VL's processor turns it
  into ``second_per_grid_ts`` (the temporal positions the checkpoints were trained with);
* a forced assistant prefix as a final assistant message with ``continue_final_message=True`` and
  ``add_generation_prompt=False`` (vLLM's chat API);
* greedy decoding unless told otherwise.

What vLLM cannot carry (documented in the README): the exact timestamp of each frame (it derives times
from one fps per video; our frames are uniform in time to within the decode tolerance, and the red
stamps carry the true second), and lossless pixels (frames travel as JPEG, quality 95). vLLM must be
started with ``--limit-mm-per-prompt '{"video": 3}'`` (the fast view and two clips) and, on versions that
cap JPEG sequences, ``--media-io-kwargs '{"video": {"num_frames": -1}}'``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

from longlens._imports import require
from longlens.backends.base import DEFAULT_GEN, Backend, BackendError, Completion, GenConfig, Usage
from longlens.backends.wire import count_media, to_openai, video_fps
from longlens.prompts.messages import Message, forced_prefix

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
VIDEO_FPS = ("per-video", "single", "off")
"""How ``mm_processor_kwargs.fps`` is sent: a list with one rate per video (transformers 4.x processors),
the first video's rate only (processors that accept a single number, e.g. transformers 5.x), or not at all."""


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
        frames_as_images: bool = False,
        video_fps: str = "per-video",
        jpeg_quality: int = 95,
        extra_body: dict | None = None,
    ):
        openai = require("openai", "openai", "the OpenAI-compatible backend")
        self._openai = openai
        self.base_url = base_url.rstrip("/")
        self.model = model or ""
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.frames_as_images = frames_as_images
        if video_fps not in VIDEO_FPS:
            raise BackendError(f"video_fps must be one of {', '.join(VIDEO_FPS)}, got {video_fps!r}")
        self.video_fps = video_fps
        self.jpeg_quality = jpeg_quality
        self.extra_body = dict(extra_body or {})
        key = os.environ.get(api_key_env) or "EMPTY"
        # our own retry loop gives one clear error at the end; the SDK's is off
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout_s, max_retries=0)
        self.aclient = openai.AsyncOpenAI(base_url=self.base_url, api_key=key, timeout=timeout_s, max_retries=0)

    # ------------------------------------------------------------------ start-up check
    def check(self) -> None:
        """Ask /models: is the server there, and does it serve our model? Picks the only model if unset."""
        try:
            served = [m.id for m in self.client.models.list(timeout=min(self.timeout_s, 30))]
        except self._openai.APIConnectionError as exc:
            raise BackendError(
                f"cannot reach an OpenAI-compatible server at {self.base_url} ({_cause(exc)}); "
                "is it running? check --base-url"
            ) from exc
        except self._openai.APIStatusError as exc:
            raise BackendError(
                f"{self.base_url}/models answered HTTP {exc.status_code}; is --base-url the server's /v1 root?"
            ) from exc
        if not self.model:
            if len(served) != 1:
                raise BackendError(f"{self.base_url} serves {served or 'no models'}; name one with --model")
            self.model = served[0]
        elif self.model not in served:
            raise BackendError(f"model {self.model!r} is not served at {self.base_url}; it serves: {', '.join(served)}")

    # ------------------------------------------------------------------ requests
    def request(self, messages: tuple[Message, ...], gen: GenConfig) -> dict:
        body: dict = {
            "model": self.model,
            "messages": to_openai(messages, frames_as_images=self.frames_as_images, jpeg_quality=self.jpeg_quality),
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
        fps = video_fps(messages)
        if self.video_fps != "off" and fps and not self.frames_as_images:
            value = fps if self.video_fps == "per-video" and len(fps) > 1 else fps[0]
            extra.setdefault("mm_processor_kwargs", {})["fps"] = value
        if extra:
            body["extra_body"] = extra
        return body

    def _completion(self, response, prefix: str, t0: float) -> Completion:
        choice = response.choices[0]
        text = choice.message.content or ""
        if prefix and text.startswith(prefix):  # some servers echo the continued message
            text = text[len(prefix) :]
        usage = response.usage
        return Completion(
            text=text,
            prefix=prefix,
            usage=Usage(getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)),
            latency_s=time.perf_counter() - t0,
            model=response.model or self.model,
            finish_reason=choice.finish_reason,
        )

    def _failure(self, exc, messages) -> tuple[bool, BackendError]:
        """(retry?, the error to raise if we stop)."""
        o = self._openai
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
            lowered = detail.lower()
            if "at most" in lowered or ("limit" in lowered and ("video" in lowered or "image" in lowered)):
                media = count_media(messages, self.frames_as_images)
                return False, BackendError(
                    f"the server refused {media['video']} video(s) / {media['image']} image(s) in one prompt "
                    f"({detail}); start vLLM with --limit-mm-per-prompt '{{\"video\": 3, \"image\": 0}}' or higher"
                )
            if "fps" in lowered:
                return False, BackendError(
                    f"the server's video processor rejected the per-video fps ({detail}); "
                    "retry with --video-fps single (or off)"
                )
            if exc.status_code == 404:
                return False, BackendError(
                    f"HTTP 404 from {self.base_url}: {detail}; check --model and --base-url"
                )
            return False, BackendError(f"{self.base_url} rejected the request (HTTP {exc.status_code}): {detail}")
        raise exc

    def _delay(self, attempt: int) -> float:
        return self.backoff_s * (2**attempt) * (0.5 + random.random() / 2)

    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        body = self.request(messages, gen)
        prefix = forced_prefix(messages) or ""
        for attempt in range(self.retries + 1):
            t0 = time.perf_counter()
            try:
                return self._completion(self.client.chat.completions.create(**body), prefix, t0)
            except self._openai.OpenAIError as exc:
                retry, error = self._failure(exc, messages)
                if not retry or attempt == self.retries:
                    raise error from exc
            time.sleep(self._delay(attempt))
        raise AssertionError("unreachable")

    async def agenerate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        body = await asyncio.to_thread(self.request, messages, gen)  # JPEG encoding off the event loop
        prefix = forced_prefix(messages) or ""
        for attempt in range(self.retries + 1):
            t0 = time.perf_counter()
            try:
                return self._completion(await self.aclient.chat.completions.create(**body), prefix, t0)
            except self._openai.OpenAIError as exc:
                retry, error = self._failure(exc, messages)
                if not retry or attempt == self.retries:
                    raise error from exc
            await asyncio.sleep(self._delay(attempt))
        raise AssertionError("unreachable")

    def describe(self) -> str:
        return f"openai:{self.model}@{self.base_url}"


def _cause(exc) -> str:
    cause = exc.__cause__ or exc.__context__
    return str(cause or exc).splitlines()[0][:160]


def _detail(exc) -> str:
    body = getattr(exc, "body", None)
    msg = None
    if isinstance(body, dict):
        err = body.get("error")
        msg = err.get("message") if isinstance(err, dict) else body.get("message")
    return str(msg or exc).splitlines()[0][:300]
