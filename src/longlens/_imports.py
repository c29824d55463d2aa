"""Optional dependencies: imported lazily, with an install hint when missing."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from longlens.errors import MissingExtraError


def is_available(module: str) -> bool:
    """True if `module` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import `module`, or raise a one-line error naming the extra that provides it. transformers and TRL
    (which import torchvision) are imported after the torchvision shim (`longlens._torchvision_shim`)."""
    if module.split(".")[0] in ("transformers", "trl") and is_available("torch"):
        from longlens._torchvision_shim import install

        install()
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise MissingExtraError(
            f"the optional package '{module}' is needed{what}; install it with: "
            f"pip install 'longlens[{extra}]'"
        ) from exc
