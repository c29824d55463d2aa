"""In-process transformers backends (``--backend hf --model-path DIR``; `HFTextBackend` for text reasoning
models); need ``pip install 'longlens[hf]'``."""

from longlens.backends.hf.backend import HFBackend
from longlens.backends.hf.text import HFTextBackend

__all__ = ["HFBackend", "HFTextBackend"]
