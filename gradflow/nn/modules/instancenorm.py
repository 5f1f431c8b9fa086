"""torch.nn.modules.instancenorm's path: instance normalization, from gradflow.nn on use."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
