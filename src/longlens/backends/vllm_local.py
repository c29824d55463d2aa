"""An in-process vLLM engine as a backend: GRPO rollouts on vLLM (TRL's colocate mode) instead of transformers.

`VLLMLocalBackend(llm)` wraps a ``vllm.LLM`` (for training, the one TRL builds and keeps in sync with the
policy's weights). A request goes through ``LLM.chat`` in the same shape the OpenAI-compatible backend sends
to a vLLM server: the messages of `backends.wire` (each video one lossless MP4 ``video_url`` whose frame rate
is the video's sampling rate, so each video keeps its own ``second_per_grid_ts``), and a forced prefix as a
final assistant message continued with ``continue_final_message``. The engine needs the settings of
`ENGINE_KWARGS` (the server flags of the README), or vLLM resizes and resamples the frames: an engine built
without them (TRL builds its own) gets them here, the processor's pixel limits with every ``LLM.chat`` call and
the video loader's settings in the engine's multimodal config, which vLLM reads at every request. vLLM is
imported only when a request is made without a `sampling` factory (tests pass one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from longlens.backends.base import DEFAULT_GEN, Backend, BackendError, Completion, GenConfig, Usage
from longlens.backends.wire import VLLM_SETTINGS, encode_ahead, to_openai
from longlens.errors import MissingExtraError
from longlens.prompts.messages import Message, forced_prefix

ENGINE_KWARGS = VLLM_SETTINGS
"""``vllm.LLM(..., **ENGINE_KWARGS)``: frames on the 28-pixel grid pass unresized, clips are not resampled (the
README's serve flags, `wire.serve_flags`)."""


def sampling_params():
    """vLLM's ``SamplingParams`` (vLLM is not an extra of ours: it pins its own torch; install the build that
    matches yours)."""
    try:
        from vllm import SamplingParams
    except ImportError as exc:
        raise MissingExtraError("use_vllm needs vLLM: pip install vllm (a build for your torch and CUDA)") from exc
    return SamplingParams


class VLLMLocalBackend(Backend):
    name = "vllm"

    def __init__(self, llm, *, model: str = "policy", sampling: Callable[..., object] | None = None,
                 frame_factor: int | None = None):
        self.llm = llm
        self.model = model
        self.frame_factor = frame_factor
        """Side of a visual token in pixels (the zoom agent sizes frames by it); None: the agent's default."""
        self._sampling = sampling
        self._lock = threading.Lock()  # one engine: requests go one at a time
        _video_loader_settings(llm)

    def _params(self, gen: GenConfig):
        make = self._sampling or sampling_params()
        kw = dict(max_tokens=gen.max_new_tokens, temperature=gen.temperature, top_p=gen.top_p,
                  top_k=gen.top_k if gen.top_k else -1, seed=gen.seed, ignore_eos=gen.ignore_eos)
        if gen.stop:
            kw["stop"] = list(gen.stop)
            kw["include_stop_str_in_output"] = True  # the navigate agent reads its closing tag
        return make(**kw)

    def request(self, messages: tuple[Message, ...]) -> tuple[list[dict], dict]:
        """The conversation and the keyword arguments `LLM.chat` gets."""
        prefix = forced_prefix(messages)
        kw: dict = {"use_tqdm": False, "add_generation_prompt": prefix is None,
                    "continue_final_message": prefix is not None,
                    "mm_processor_kwargs": ENGINE_KWARGS["mm_processor_kwargs"]}
        return to_openai(messages), kw

    def prepare(self, media) -> None:
        encode_ahead(media)  # as `request` encodes them: to_openai's defaults

    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        t0 = time.perf_counter()
        conversation, kw = self.request(messages)
        try:
            with self._lock:
                out = self.llm.chat([conversation], self._params(gen), **kw)[0]
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"vLLM could not serve the request: {str(exc).splitlines()[0]}") from exc
        choice = out.outputs[0]
        prefix = forced_prefix(messages) or ""
        return Completion(text=choice.text, prefix=prefix,
                          usage=Usage(len(out.prompt_token_ids or ()), len(choice.token_ids or ())),
                          latency_s=time.perf_counter() - t0, model=self.model,
                          finish_reason="length" if choice.finish_reason == "length" else "stop")


def _video_loader_settings(llm) -> None:
    """Keep every frame of each video (`ENGINE_KWARGS`' ``media_io_kwargs``) in an engine built without them."""
    engine = getattr(llm, "llm_engine", None)
    mm = getattr(getattr(engine, "model_config", None), "multimodal_config", None)
    io = getattr(mm, "media_io_kwargs", None)
    if isinstance(io, dict):
        io.setdefault("video", {}).update(ENGINE_KWARGS["media_io_kwargs"]["video"])
