"""Make ``import torchvision`` work where its compiled ops cannot load (a CUDA torchvision on a CPU torch).

transformers' video processors import ``torchvision.transforms.v2``. The torchvision 0.28 wheel that
matches the CPU torch 2.13 links CUDA libraries, so its ``_C`` extension fails to load; torchvision
tolerates that, except that it registers fake kernels for ``torchvision::nms`` and ``qnms`` at import and
fails when those operators were never defined. Defining the two schemas (no kernels) first is enough:
nothing here uses the compiled ops. Where the real ops exist (a GPU machine) this does nothing.
"""

from __future__ import annotations

_LIBRARY = None


def install() -> None:
    """Define the missing operator schemas, once, before torchvision is first imported."""
    global _LIBRARY
    if _LIBRARY is not None:
        return
    import torch

    if _ops_present(torch):
        _LIBRARY = False
        return
    lib = torch.library.Library("torchvision", "FRAGMENT")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY = lib  # keep the library object alive: dropping it would drop the definitions


def _ops_present(torch) -> bool:
    """Whether torchvision's compiled operators are registered (a working torchvision build)."""
    try:
        return torch.ops.torchvision.nms is not None
    except (AttributeError, RuntimeError):
        return False
