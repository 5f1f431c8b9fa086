"""torch.nn.modules.normalization's path: the other normalizations, from gradflow.nn on use."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "GroupNorm",
    "LayerNorm",
    "LocalResponseNorm",
    "RMSNorm",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
