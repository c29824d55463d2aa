"""LongLens: answer questions about long videos, evaluate long-video agents, and train them."""

from longlens.errors import LongLensError, PlanError, VideoError

__version__ = "0.1.0"

__all__ = ["LongLensError", "PlanError", "VideoError", "__version__"]
