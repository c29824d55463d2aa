"""In-process transformers backend for Qwen2-VL, Qwen2.5-VL and Qwen3-VL checkpoints (LOVE-R1 included).

What it does with a request:

* Frames go in as the arrays the video layer decoded, each video with a `VideoMetadata` that gives the
  processor its true sampling rate (Qwen2/2.5-VL: ``second_per_grid_ts = 2 / fps``, the temporal axis of
  mRoPE) or its true frame times (Qwen3-VL: the ``<t seconds>`` stamps). The processor never opens files.
* The processor's pixel limits are widened at load so frames already on the model's grid (multiples of
  28, or 32 for Qwen3-VL) pass through unchanged; others are only rounded to the grid.
* The prompt is the model's own chat template with the generation prompt, plus the forced assistant
  prefix when the conversation ends with one (the model continues from it).
* Positions: Qwen2/2.5-VL use the trained mRoPE rule (see rope.py); Qwen3-VL uses the library's.
* **Prefix KV reuse.** In the zoom template the system prompt and the whole fast view open every step
  of a question, and a step's clips often open the next step too. After each generation the KV cache is
  cut back to the end of the prompt's last video and kept, with a chained digest (text and pixels) per
  video boundary. The next request reuses the longest run of equal leading pieces, so a zoom step only
  pays for the vision encoder and prefill of what is new: its new clip, the question and the reply.
  One cache is kept (the last question's); ``kv_reuse=False`` prefills everything in one pass instead.
* Decoding is a plain loop over the model's forward (greedy by default, or temperature/top-k/top-p with
  a seeded generator), so both paths share it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from longlens._imports import require
from longlens.backends.base import DEFAULT_GEN, Backend, BackendError, Completion, GenConfig, Usage
from longlens.backends.hf.sampling import pick_token
from longlens.backends.hf.segments import Kept, Segment, concat, crop
from longlens.prompts.messages import Image, Message, Text, Video, forced_prefix

ROPE_RULES = ("trained", "transformers")
FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe")
DTYPES = ("auto", "bfloat16", "float16", "float32")
_PLACEHOLDER = {"video": "<|vision_start|><|video_pad|><|vision_end|>",
                "image": "<|vision_start|><|image_pad|><|vision_end|>"}


class HFBackend(Backend):
    name = "hf"

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str | None = None,
        dtype: str = "auto",
        attn_implementation: str | None = None,
        kv_reuse: bool = True,
        rope: str = "trained",
        flag: str = "--model-path",
    ):
        """`flag`: the user's name for the model folder (``--caption-model-path`` ...), for messages."""
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise BackendError(f"{flag} {path}: no such directory; give a local model folder "
                               "(download it first, e.g. `hf download Qwen/Qwen2.5-VL-7B-Instruct --local-dir DIR`)")
        if not (path / "config.json").is_file():
            raise BackendError(f"{flag} {path}: not a model folder (no config.json); give the folder "
                               "that holds config.json and the weights")
        if dtype not in DTYPES:
            raise BackendError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        try:
            family = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError) as exc:
            raise BackendError(f"{flag} {path}: config.json cannot be read ({exc})") from exc
        if family not in FAMILIES:
            raise BackendError(f"{flag} {path}: model type {family!r} is not a Qwen-VL model; "
                               "the hf backend runs Qwen2-VL, Qwen2.5-VL and Qwen3-VL checkpoints")
        torch = require("torch", "hf", "the transformers backend")
        from longlens._torchvision_shim import install

        install()
        transformers = require("transformers", "hf", "the transformers backend")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        kwargs = {"local_files_only": True, "dtype": getattr(torch, dtype), "device_map": device}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        try:
            processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
            net = transformers.AutoModelForImageTextToText.from_pretrained(path, **kwargs)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{flag} {path}: cannot load the model ({first})") from exc
        self._setup(net, processor, name=path.name, kv_reuse=kv_reuse, rope=rope)
        self.path = path

    @classmethod
    def from_model(cls, model, processor, *, name: str = "model", kv_reuse: bool = True,
                   rope: str = "trained") -> HFBackend:
        """A backend around a model already in memory (a model being trained, random weights for a benchmark)."""
        if model.config.model_type not in FAMILIES:
            raise BackendError(f"model type {model.config.model_type!r} is not a Qwen-VL model")
        self = cls.__new__(cls)
        self._setup(model, processor, name=name, kv_reuse=kv_reuse, rope=rope)
        self.path = None
        return self

    def _setup(self, net, processor, *, name: str, kv_reuse: bool, rope: str) -> None:
        if rope not in ROPE_RULES:
            raise BackendError(f"rope must be one of {', '.join(ROPE_RULES)}, got {rope!r}")
        import torch

        self._torch = torch
        self.net = net.eval()
        self.processor = processor
        self.device = str(next(net.parameters()).device)
        self.dtype = str(net.dtype).removeprefix("torch.")
        self.family = net.config.model_type
        self.kv_reuse = kv_reuse
        self.rope = rope
        self.model = name
        self._open_pixel_limits()
        tok = processor.tokenizer
        self._video_id = tok.convert_tokens_to_ids("<|video_pad|>")
        self._image_id = tok.convert_tokens_to_ids("<|image_pad|>")
        eos = net.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self._eos = {int(e) for e in eos} | {tok.convert_tokens_to_ids("<|im_end|>")}
        self._kept: Kept | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ set-up
    @property
    def frame_factor(self) -> int:
        """Side in pixels of one visual token (patch size x merge size): 28, or 32 for Qwen3-VL."""
        vp = self.processor.video_processor
        return int(vp.patch_size * vp.merge_size)

    def _open_pixel_limits(self) -> None:
        """Pixel limits that let frames on the grid pass unchanged (never upscale to a minimum budget)."""
        f = self.frame_factor
        size = {"shortest_edge": f * f, "longest_edge": 16384 * f * f}
        for proc in (self.processor.video_processor, getattr(self.processor, "image_processor", None)):
            if proc is None:
                continue
            proc.size = type(proc.size)(**size) if not isinstance(proc.size, dict) else dict(size)
            for attr, value in (("min_pixels", f * f), ("max_pixels", 16384 * f * f)):
                if getattr(proc, attr, None) is not None:
                    setattr(proc, attr, value)
        vp = self.processor.video_processor
        vp.do_sample_frames = False
        if hasattr(vp, "cap_pixels_per_frame"):
            vp.cap_pixels_per_frame = False

    def describe(self) -> str:
        return f"hf:{self.model}"

    # ------------------------------------------------------------------ rendering
    def _render(self, messages: tuple[Message, ...]) -> tuple[str, list]:
        """The prompt text (chat template + generation prompt + forced prefix) and the media in order."""
        prefix = forced_prefix(messages)
        if prefix is not None:
            messages = messages[:-1]
        conv, media = [], []
        for m in messages:
            if all(isinstance(p, Text) for p in m.parts):
                conv.append({"role": m.role, "content": m.plain_text})
                continue
            content = []
            for p in m.parts:
                if isinstance(p, Text):
                    content.append({"type": "text", "text": p.text})
                elif isinstance(p, Video):
                    content.append({"type": "video"})
                    media.append(p)
                elif isinstance(p, Image):
                    content.append({"type": "image"})
                    media.append(p)
            conv.append({"role": m.role, "content": content})
        text = self.processor.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        return text + (prefix or ""), media

    def _metadata(self, video: Video):
        from transformers.video_utils import VideoMetadata

        fs = video.frames
        n = len(fs)
        if self.family.startswith("qwen3"):
            # timestamps = frames_indices / fps: milliseconds give each frame its true time
            ms = [round(t * 1000) for t in fs.times_s]
            return VideoMetadata(total_num_frames=max(ms) + 1, fps=1000.0, frames_indices=ms)
        # sampled_fps = len(frames_indices) / total_num_frames * fps = the plan's rate, exactly
        return VideoMetadata(total_num_frames=n, fps=float(fs.plan.sample_fps), frames_indices=list(range(n)))

    def _segment(self, text: str, media: list) -> Segment:
        torch = self._torch
        videos = [m for m in media if isinstance(m, Video)]
        images = [m for m in media if isinstance(m, Image)]
        kwargs = {}
        if videos:
            kwargs["videos"] = [v.frames.frames for v in videos]
            kwargs["video_metadata"] = [self._metadata(v) for v in videos]
        if images:
            kwargs["images"] = [i.pixels for i in images]
        with warnings.catch_warnings():
            # frames from the cache are read-only memory maps; the processor only reads them
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            out = self.processor(text=[text], return_tensors="pt", **kwargs)
        ids = out["input_ids"][0]
        types = torch.zeros_like(ids)
        types[ids == self._image_id] = 1
        types[ids == self._video_id] = 2
        grids, vgrids, igrids = [], iter(out.get("video_grid_thw", [])), iter(out.get("image_grid_thw", []))
        for m in media:
            grids.append([int(x) for x in next(vgrids if isinstance(m, Video) else igrids)])
        spg = [float(x) for x in out.get("second_per_grid_ts", [])] or [
            self.processor.video_processor.temporal_patch_size / v.frames.plan.sample_fps for v in videos]
        inputs = {k: out[k] for k in ("pixel_values_videos", "video_grid_thw", "pixel_values", "image_grid_thw")
                  if k in out}
        kinds = [2 if isinstance(m, Video) else 1 for m in media]
        return Segment(ids, types, grids, kinds, spg, inputs)

    def _pieces(self, text: str, media: list) -> list[tuple[str, list, str]]:
        """The prompt cut after every video: (text, media, chained key) per piece; the last piece is the rest.

        A piece's key digests its text and pixels and the key before it, so equal keys mean equal prompts
        up to the end of that piece.
        """
        pieces, start, k = [], 0, 0
        key = hashlib.blake2b(digest_size=16)
        while True:
            cut = text.find(_PLACEHOLDER["video"], start)
            if cut < 0:
                pieces.append((text[start:], media[k:], ""))
                return pieces
            cut += len(_PLACEHOLDER["video"])
            piece = text[start:cut]
            n = piece.count(_PLACEHOLDER["video"]) + piece.count(_PLACEHOLDER["image"])
            items = media[k:k + n]
            key.update(piece.encode())
            for m in items:
                fs = m.frames if isinstance(m, Video) else None
                array = fs.frames if fs is not None else m.pixels
                meta = (fs.plan.sample_fps, fs.times_s) if fs is not None else (m.time_s,)
                key.update(repr((array.shape, meta)).encode())
                key.update(memoryview(np.ascontiguousarray(array).reshape(-1)))
            pieces.append((piece, items, key.hexdigest()))
            start, k = cut, k + n

    # ------------------------------------------------------------------ inputs for a forward pass
    def encode(self, messages: tuple[Message, ...], continuation: str = "") -> dict:
        """Model inputs for `messages` followed by `continuation` (e.g. a target reply for training).

        The same text, pixels, metadata and positions as `generate` uses: a forward with
        ``model(**backend.encode(messages, reply))`` sees exactly what inference saw, plus the reply.
        Keys: input_ids (1, L), position_ids (3, 1, L), mm_token_type_ids (1, L) and the media tensors.
        """
        text, media = self._render(messages)
        segment = self._segment(text + continuation, media)
        return {"input_ids": segment.input_ids[None], "position_ids": self._positions([segment]),
                "mm_token_type_ids": segment.token_types[None].int(), **segment.inputs}

    # ------------------------------------------------------------------ model calls
    def _positions(self, segments: list[Segment]):
        """(3, 1, L) positions of the concatenated segments."""
        torch = self._torch
        types = torch.cat([s.token_types for s in segments])
        grids = [g for s in segments for g in s.grids]
        spg = [x for s in segments for x in s.second_per_grid]
        cfg = self.net.config
        if self.family.startswith("qwen2") and self.rope == "trained":
            from longlens.backends.hf.rope import mrope_positions

            merge = cfg.vision_config.spatial_merge_size
            tps = getattr(cfg.vision_config, "tokens_per_second", 1.0)
            if self.family == "qwen2_vl":
                spg = [1.0] * len(spg)  # Qwen2-VL has no time scaling: one position per temporal patch
            return mrope_positions(types, grids, spg, merge=merge, tokens_per_second=tps)[:, None, :]
        ids = torch.cat([s.input_ids for s in segments])[None]
        kinds = [k for s in segments for k in s.kinds]
        vgrid = [g for g, k in zip(grids, kinds, strict=True) if k == 2]
        igrid = [g for g, k in zip(grids, kinds, strict=True) if k == 1]
        kw = {"mm_token_type_ids": types[None].int()}
        if vgrid:
            kw["video_grid_thw"] = torch.tensor(vgrid)
        if igrid:
            kw["image_grid_thw"] = torch.tensor(igrid)
        if spg and self.family == "qwen2_5_vl":
            kw["second_per_grid_ts"] = torch.tensor(spg)
        positions, _ = self.net.model.get_rope_index(ids, **kw)
        return positions

    def _forward(self, segment: Segment, positions, cache, *, last_only: bool = True):
        torch = self._torch
        dev = self.device
        inputs = {k: v.to(dev) for k, v in segment.inputs.items()}
        for k in ("pixel_values_videos", "pixel_values"):
            if k in inputs:
                inputs[k] = inputs[k].to(self.net.dtype)
        with torch.inference_mode():
            out = self.net(input_ids=segment.input_ids[None].to(dev), position_ids=positions.to(dev),
                           past_key_values=cache, use_cache=True, logits_to_keep=1 if last_only else 0,
                           mm_token_type_ids=segment.token_types[None].int().to(dev), **inputs)
        return out.logits[0, -1].float()

    def _new_cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.net.config)

    def _decode(self, logits, cache, next_pos: int, gen: GenConfig) -> tuple[list[int], str]:
        torch = self._torch
        generator = None
        if gen.temperature > 0:
            generator = torch.Generator(device="cpu")
            generator.manual_seed(gen.seed if gen.seed is not None else int(time.time_ns()))
        tok = self.processor.tokenizer
        out: list[int] = []
        reason = "length"
        for i in range(gen.max_new_tokens):
            t = pick_token(logits.cpu() if generator is not None else logits, gen, generator)
            if t in self._eos and not gen.ignore_eos:
                reason = "stop"
                break
            out.append(t)
            if gen.stop and any(s in tok.decode(out, skip_special_tokens=True) for s in gen.stop):
                reason = "stop"
                break
            if i + 1 == gen.max_new_tokens:
                break
            pos = torch.full((3, 1, 1), next_pos + i, dtype=torch.long)
            with torch.inference_mode():
                o = self.net(input_ids=torch.tensor([[t]], device=self.device), position_ids=pos.to(self.device),
                             past_key_values=cache, use_cache=True)
            logits = o.logits[0, -1].float()
        return out, reason

    # ------------------------------------------------------------------ generate
    def generate(self, messages: tuple[Message, ...], gen: GenConfig = DEFAULT_GEN) -> Completion:
        with self._lock:
            return self._generate(messages, gen)

    def _prefill(self, text: str, media: list, timings: dict):
        """Run the prompt through the model, reusing the kept cache for its leading pieces.

        Returns (logits of the next token, cache, all segments, prompt tokens served from the cache, the
        pieces, positions of the new tokens). The kept cache is given up here; `_generate` keeps the new one.
        """
        pieces = self._pieces(text, media) if self.kv_reuse else [(text, media, "")]
        kept, self._kept = self._kept, None  # a failure below must not leave a half-written cache kept
        reuse = 0  # leading pieces whose KV is in the kept cache
        if kept is not None:
            while reuse < min(len(kept.keys), len(pieces) - 1) and kept.keys[reuse] == pieces[reuse][2]:
                reuse += 1
        if kept is None or reuse == 0:
            del kept  # free the old cache before building a new one
            cache, done = self._new_cache(), []
        else:
            crop(kept.cache, sum(len(s.input_ids) for s in kept.segments[:reuse]))
            cache, done = kept.cache, kept.segments[:reuse]
        cached = sum(len(s.input_ids) for s in done)
        t1 = time.perf_counter()
        new = [self._segment(piece, items) for piece, items, _ in pieces[reuse:]]
        timings["process_s"] = time.perf_counter() - t1
        segments = done + new
        positions = self._positions(segments)[:, :, cached:]
        t1 = time.perf_counter()
        logits = self._forward(concat(new, self._torch), positions, cache)
        timings["prefill_s"] = time.perf_counter() - t1
        return logits, cache, segments, cached, pieces, positions

    def _generate(self, messages: tuple[Message, ...], gen: GenConfig) -> Completion:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        text, media = self._render(messages)
        logits, cache, segments, cached, pieces, positions = self._prefill(text, media, timings)
        t1 = time.perf_counter()
        try:
            ids, reason = self._decode(logits, cache, int(positions[:, 0, -1].max()) + 1, gen)
        finally:
            if self.kv_reuse and len(pieces) > 1:  # keep everything up to the end of the last video
                self._kept = Kept([key for _, _, key in pieces[:-1]], segments[:-1], cache)
                crop(cache, self._kept.length)
        if self.device.startswith("cuda"):
            self._torch.cuda.synchronize()
        timings["decode_s"] = time.perf_counter() - t1
        visual = tuple(int(g[0] * g[1] * g[2]) // self._merge2 for s in segments for g in s.grids)
        usage = Usage(prompt_tokens=sum(len(s.input_ids) for s in segments), completion_tokens=len(ids),
                      cached_tokens=cached, visual_tokens=visual)
        return Completion(
            text=self.processor.tokenizer.decode(ids, skip_special_tokens=True),
            prefix=forced_prefix(messages) or "",
            usage=usage,
            latency_s=time.perf_counter() - t0,
            model=self.model,
            finish_reason=reason,
            timings={k: round(v, 4) for k, v in timings.items()},
        )

    @property
    def _merge2(self) -> int:
        return int(self.processor.video_processor.merge_size) ** 2

    def reset(self) -> None:
        """Drop the kept KV cache (frees its memory)."""
        with self._lock:
            self._kept = None
