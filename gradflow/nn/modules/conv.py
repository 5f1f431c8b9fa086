"""torch.nn.modules.conv's path: the convolutions, gradflow.nn's classes (looked up on use)."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
