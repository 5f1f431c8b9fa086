"""torch.nn.modules.pixelshuffle's path: pixel shuffling, from gradflow.nn on use."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "PixelShuffle",
    "PixelUnshuffle",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
