"""Backends by name: ``make_backend("offline" | "openai" | "hf" | "scripted", **options)``.

``openai`` with ``endpoints`` (several server URLs) gives a `PoolBackend` that spreads calls over them.
"""

from __future__ import annotations

import json
from pathlib import Path

from longlens.backends.base import Backend
from longlens.errors import LongLensError

BACKENDS = ("offline", "openai", "hf", "scripted")


def make_backend(
    name: str,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout_s: float = 600.0,
    retries: int = 3,
    video_format: str = "mp4",
    probe: str = "auto",
    script: str | Path | None = None,
    model_path: str | Path | None = None,
    device: str | None = None,
    dtype: str = "auto",
    attn_implementation: str | None = None,
    kv_reuse: bool = True,
    rope: str = "trained",
    endpoints: list[str] | None = None,
    balance: str = "least-busy",
    flags: tuple[str, str] = ("--base-url", "--model"),
    path_flag: str = "--model-path",
) -> Backend:
    """A backend by name. `flags` are the user's names of the server URL and the model, `path_flag` of the
    model folder (``--caption-url``, ``caption_url`` ...): errors name the setting the user gave."""
    if endpoints and name != "openai":
        raise LongLensError(f"--endpoints works with the openai backend, not {name}; add --backend openai")
    if name == "offline":
        from longlens.backends.offline import OfflineBackend

        return OfflineBackend()
    if name == "openai":
        from longlens.backends.openai_client import OpenAIBackend

        def one(url: str) -> Backend:
            return OpenAIBackend(url, model, api_key_env=api_key_env, timeout_s=timeout_s, retries=retries,
                                 video_format=video_format, probe=probe, flags=flags)

        if endpoints:
            from longlens.backends.pool import PoolBackend

            return PoolBackend([one(url) for url in endpoints], balance=balance, model_flag=flags[1])
        return one(base_url or "http://127.0.0.1:8000/v1")
    if name == "hf":
        if model_path is None:
            raise LongLensError(f"the hf backend needs {path_flag} DIR (a local model folder)")
        from longlens.backends.hf import HFBackend

        return HFBackend(model_path, device=device, dtype=dtype, attn_implementation=attn_implementation,
                         kv_reuse=kv_reuse, rope=rope, flag=path_flag)
    if name == "scripted":
        from longlens.backends.scripted import ScriptedBackend

        return ScriptedBackend(load_script(script), model=model or "scripted")
    raise LongLensError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")


def load_script(path: str | Path | None) -> list:
    """Replies for the scripted backend or server: a JSON list, or a text file with one reply per line."""
    if path is None:
        raise LongLensError("the scripted backend needs --script FILE (a JSON list of replies)")
    p = Path(path)
    if not p.is_file():
        raise LongLensError(f"{p}: no such script file; give a JSON list of replies")
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [line.replace("\\n", "\n") for line in text.splitlines() if line.strip()]
    if not isinstance(data, list):
        raise LongLensError(f"{p}: a script is a JSON list of replies (strings or objects)")
    return data
