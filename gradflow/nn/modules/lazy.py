"""torch.nn.modules.lazy's path: LazyModuleMixin (gradflow/nn/lazy.py) and the lazy layers,
gradflow.nn's classes (looked up on use)."""

from gradflow.nn import lazy as _lazy
from gradflow.nn.lazy import LazyModuleMixin
from gradflow.nn.modules._lazy import forward_to_nn

__getattr__, __dir__ = forward_to_nn(__name__, tuple(_lazy.__all__))
__all__ = ["LazyModuleMixin"]
