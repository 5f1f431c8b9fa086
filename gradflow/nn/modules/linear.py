"""torch.nn.modules.linear's path: Linear, Identity, Bilinear, from gradflow.nn on use."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "Bilinear",
    "Identity",
    "LazyLinear",
    "Linear",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
