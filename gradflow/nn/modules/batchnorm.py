"""torch.nn.modules.batchnorm's path: batch normalization, from gradflow.nn on use."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
