"""LongLens: answer questions about long videos, evaluate long-video agents, and train them."""

from longlens.errors import LongLensError, PlanError, VideoError

__version__ = "0.1.0"



def ask(video, question, options=(), **kwargs):
    """Answer a question about a video; see `longlens.api.ask`."""
    from longlens.api import ask as _ask

    return _ask(video, question, options, **kwargs)


__all__ = ["LongLensError", "PlanError", "VideoError", "__version__", "ask"]
