"""torch.nn.modules.container's path: the containers, gradflow.nn's classes (looked up on use)."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "ModuleDict",
    "ModuleList",
    "ParameterDict",
    "ParameterList",
    "Sequential",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
