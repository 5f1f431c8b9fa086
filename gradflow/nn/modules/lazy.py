"""torch.nn.modules.lazy's path: LazyModuleMixin (gradflow/nn/lazy.py) and the lazy layers,
gradflow.nn's classes (looked up on use)."""

from gradflow.nn.lazy import LazyModuleMixin
from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
    "LazyLinear",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
__all__ = ["LazyModuleMixin"]
