"""torch.nn.modules.sparse's path: the embeddings, gradflow.nn's classes (looked up on use)."""

from gradflow.nn.modules._lazy import forward_to_nn

_NAMES = (
    "Embedding",
    "EmbeddingBag",
)
__getattr__, __dir__ = forward_to_nn(__name__, _NAMES)
