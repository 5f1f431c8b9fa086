"""torch.nn.modules.flatten's path: Flatten and Unflatten, from gradflow.nn on use."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "Flatten",
    "Unflatten",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
