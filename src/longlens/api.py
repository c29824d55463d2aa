"""`longlens.ask`: one question about one video, from Python."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from longlens.agents.trace import Trace
from longlens.agents.zoom import ZoomAgent, ZoomConfig
from longlens.backends.base import Backend
from longlens.backends.registry import make_backend
from longlens.video import FrameCache


@dataclass(frozen=True)
class Result:
    answer: str
    """The final boxed content ('' if the model gave none)."""
    choice: str | None
    """The option letter, for multiple-choice questions."""
    trace: Trace


def ask(
    video: str | Path,
    question: str,
    options: list[str] | tuple[str, ...] = (),
    *,
    backend: Backend | str = "offline",
    config: ZoomConfig | None = None,
    cache: FrameCache | None | bool = True,
    **backend_options,
) -> Result:
    """Answer `question` about `video` with the zoom agent (or a baseline, via `config.agent`).

        >>> r = longlens.ask("talk.mp4", "Which word is on the sign?", ["CAT", "DOG", "EMU", "OWL"])
        >>> r.choice, r.trace.totals.visual_tokens

    `backend` is a name (``"offline"``, ``"openai"`` with ``base_url=``, ``"hf"`` with ``model_path=``) or a
    backend object; for many questions build it once (e.g. ``HFBackend(DIR)``, which loads the model
    once) and pass it to every call.
    """
    if isinstance(backend, str):
        backend = make_backend(backend, **backend_options)
    if cache is True:
        cache = FrameCache()
    elif cache is False:
        cache = None
    backend.check()
    trace = ZoomAgent(backend, config or ZoomConfig(), cache=cache).run(video, question, tuple(options))
    return Result(trace.answer, trace.choice, trace)
