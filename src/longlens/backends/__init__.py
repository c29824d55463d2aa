"""Backends: model servers and in-process models behind one method, ``generate(messages, gen)``."""

from longlens.backends.base import Backend, BackendError, Completion, GenConfig, Usage
from longlens.backends.scripted import ScriptedBackend

__all__ = ["Backend", "BackendError", "Completion", "GenConfig", "ScriptedBackend", "Usage"]
