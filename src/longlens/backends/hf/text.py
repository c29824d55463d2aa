"""In-process transformers backend for a text causal LM: the navigate agent's reasoning model.

The prompt is the tokenizer's chat template over the messages' text with the generation prompt (plus a
forced assistant prefix when the conversation ends with one): the rendering `train.navigate.sft` trains on.
Decoding is a plain loop over the model's forward on a KV cache: greedy by default, or temperature /
top-k / top-p with a `torch.Generator` seeded from `GenConfig.seed`. It stops at ``<|im_end|>`` or the
model's end-of-sequence tokens (finish "stop", the token not part of the text), after a stop string
(finish "stop", the text cut right after it, the stop string included: the agent parses ``</tool>``), or
at `max_new_tokens` (finish "length").

The navigate conversation only grows, so the KV cache of the last request (prompt and reply) is kept and
the next request prefills only the tokens after the longest common prefix (``kv_reuse``). `max_context`
caps prompt + reply tokens (the reference RL's trajectory cap): a reply gets at most what is left, and a
prompt that leaves nothing raises `BackendError` (the agent then ends the question with the error).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from longlens._imports import require
from longlens.backends.base import DEFAULT_GEN, Backend, BackendError, Completion, GenConfig, Usage
from longlens.backends.hf.sampling import pick_token
from longlens.prompts.messages import Message, Text, forced_prefix

DTYPES = ("auto", "bfloat16", "float16", "float32")
END = "<|im_end|>"


class HFTextBackend(Backend):
    name = "hf-text"

    def __init__(self, model_path: str | Path, *, device: str | None = None, dtype: str = "auto",
                 kv_reuse: bool = True, max_context: int | None = None, flag: str = "--reasoning-model-path"):
        """Load a causal LM folder (config.json, weights, a tokenizer with a chat template); `flag` names the
        folder's setting in errors."""
        path = Path(model_path).expanduser()
        if not (path / "config.json").is_file():
            raise BackendError(f"{flag} {path}: not a model folder (no config.json); give a local folder")
        if dtype not in DTYPES:
            raise BackendError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        torch = require("torch", "hf", "the transformers text backend")
        from longlens._torchvision_shim import install

        install()
        transformers = require("transformers", "hf", "the transformers text backend")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        try:
            tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            net = transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True,
                                                                    dtype=getattr(torch, dtype), device_map=device)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{flag} {path}: cannot load the model ({first})") from exc
        self._setup(net, tok, name=path.name, kv_reuse=kv_reuse, max_context=max_context)

    @classmethod
    def from_model(cls, model, tokenizer, *, name: str = "model", kv_reuse: bool = True,
                   max_context: int | None = None) -> HFTextBackend:
        """A backend around a causal LM already in memory (the policy being trained, a random model)."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer, name=name, kv_reuse=kv_reuse, max_context=max_context)
        return self

    def _setup(self, net, tok, *, name: str, kv_reuse: bool, max_context: int | None) -> None:
        import torch

        if not getattr(tok, "chat_template", None):
            raise BackendError(f"{name}: the tokenizer has no chat template; give the model one")
        if max_context is not None and max_context < 2:
            raise BackendError(f"max_context must be at least 2 tokens, got {max_context}")
        self._torch = torch
        self.net = net.eval()
        self.tokenizer = tok
        self.model = name
        self.kv_reuse = kv_reuse
        self.max_context = max_context
        self.device = str(next(net.parameters()).device)
        eos = net.generation_config.eos_token_id if net.generation_config is not None else None
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self._eos = {int(e) for e in eos} | {int(tok.convert_tokens_to_ids(END))}
        if tok.eos_token_id is not None:
            self._eos.add(int(tok.eos_token_id))
        self._kept: tuple[list[int], object] | None = None
        """(token ids in the cache, the cache) of the last request."""
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"hf-text:{self.model}"

    # ------------------------------------------------------------------ rendering
    def render(self, messages: tuple[Message, ...]) -> str:
        """The prompt text: the chat template over the messages' text, the generation prompt, a forced prefix."""
        prefix = forced_prefix(messages)
        if prefix is not None:
            messages = messages[:-1]
        for m in messages:
            if not all(isinstance(p, Text) for p in m.parts):
                raise BackendError(f"the {self.describe()} backend reads text only; a {m.role} message has "
                                   "images or video (use a Qwen-VL backend for vision roles)")
        chat = [{"role": m.role, "content": m.plain_text} for m in messages]
        text = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return text + (prefix or "")

    # ------------------------------------------------------------------ decoding
    def _step(self, ids: list[int], cache):
        torch = self._torch
        with torch.inference_mode():
            out = self.net(input_ids=torch.tensor([ids], device=self.device), past_key_values=cache,
                           use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float().cpu()

    def _prefill(self, prompt: list[int]):
        """(next-token logits, cache, prompt tokens served from the kept cache)."""
        from transformers import DynamicCache

        kept, self._kept = self._kept, None
        reuse = 0
        if kept is not None and self.kv_reuse:
            old = kept[0]
            limit = min(len(old), len(prompt) - 1)  # at least one new token to get logits from
            while reuse < limit and old[reuse] == prompt[reuse]:
                reuse += 1
        if reuse:
            cache = kept[1]
            extra = cache.get_seq_length() - reuse
            if extra > 0:
                cache.crop(-extra)  # transformers 5: a negative count removes that many positions
        else:
            del kept
            cache = DynamicCache(config=self.net.config)
        return self._step(prompt[reuse:], cache), cache, reuse

    @staticmethod
    def _cut(text: str, stops: tuple[str, ...]) -> str | None:
        """`text` up to and including its first stop string, or None if it has none."""
        hits = [(i, s) for s in stops if (i := text.find(s)) >= 0]
        if not hits:
            return None
        i, s = min(hits)
        return text[: i + len(s)]

    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        with self._lock:
            return self._generate(messages, gen)

    def _generate(self, messages: tuple[Message, ...], gen: GenConfig) -> Completion:
        torch = self._torch
        t0 = time.perf_counter()
        prompt = self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]
        budget = gen.max_new_tokens
        if self.max_context is not None:
            if len(prompt) >= self.max_context:
                self._kept = None
                raise BackendError(f"the prompt has {len(prompt)} tokens; the context cap is {self.max_context}")
            budget = min(budget, self.max_context - len(prompt))
        generator = None
        if gen.temperature > 0:
            generator = torch.Generator(device="cpu")
            generator.manual_seed(gen.seed if gen.seed is not None else time.time_ns() % 2**63)
        logits, cache, cached = self._prefill(prompt)
        t1 = time.perf_counter()
        out: list[int] = []
        fed: list[int] = []
        text: str | None = None
        reason = "length"
        window = max((len(s) for s in gen.stop), default=0) + 16
        for _ in range(budget):
            t = pick_token(logits.cpu() if generator is not None else logits, gen, generator)  # CPU generator
            if t in self._eos and not gen.ignore_eos:
                reason = "stop"
                break
            out.append(t)
            if gen.stop and any(s in self.tokenizer.decode(out[-window:], skip_special_tokens=True)
                                for s in gen.stop):
                text = self._cut(self.tokenizer.decode(out, skip_special_tokens=True), gen.stop)
                if text is not None:
                    reason = "stop"
                    break
            if len(out) == budget:
                break
            logits = self._step([t], cache)
            fed.append(t)
        if self.kv_reuse:
            self._kept = (prompt + fed, cache)
        if text is None:
            text = self.tokenizer.decode(out, skip_special_tokens=True)
        usage = Usage(prompt_tokens=len(prompt), completion_tokens=len(out), cached_tokens=cached)
        return Completion(text=text, prefix=forced_prefix(messages) or "", usage=usage,
                          latency_s=time.perf_counter() - t0, model=self.model, finish_reason=reason,
                          timings={"prefill_s": round(t1 - t0, 4), "decode_s": round(time.perf_counter() - t1, 4)})

    def reset(self) -> None:
        """Drop the kept KV cache (the weights changed, or to free memory)."""
        with self._lock:
            self._kept = None
