"""In-process transformers backend (``--backend hf --model-path DIR``); needs ``pip install 'longlens[hf]'``."""

from longlens.backends.hf.backend import HFBackend

__all__ = ["HFBackend"]
