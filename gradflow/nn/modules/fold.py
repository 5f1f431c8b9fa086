"""torch.nn.modules.fold's path: Fold and Unfold, gradflow.nn's classes (looked up on use)."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "Fold",
    "Unfold",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
