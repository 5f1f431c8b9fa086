"""torch.nn.modules.dropout's path: dropout, gradflow.nn's classes (looked up on use)."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "AlphaDropout",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
