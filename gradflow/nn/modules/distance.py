"""torch.nn.modules.distance's path: the distances, gradflow.nn's classes (looked up on use)."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "CosineSimilarity",
    "PairwiseDistance",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
