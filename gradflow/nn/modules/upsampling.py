"""torch.nn.modules.upsampling's path: upsampling, gradflow.nn's classes (looked up on use)."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "Upsample",
    "UpsamplingBilinear2d",
    "UpsamplingNearest2d",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
