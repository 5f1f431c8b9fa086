"""torch.nn.modules.module's path: the base class, gradflow.nn's classes (looked up on use)."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = ("Module",)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
