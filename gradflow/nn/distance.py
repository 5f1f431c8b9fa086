"""Distance modules (CosineSimilarity, PairwiseDistance), wrapping ops/distance.py with
PyTorch's constructor arguments."""

from __future__ import annotations

from gradflow.nn.module import Module
from gradflow.ops import distance
from gradflow.tensor import Tensor


class CosineSimilarity(Module):
    """Cosine similarity of x1 and x2 along dim."""

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return distance.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """||x1 - x2 + eps||_p along the last dim."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return distance.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
