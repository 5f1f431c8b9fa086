"""Dropout as a module: active in training mode, the identity in eval mode."""

from __future__ import annotations

from gradflow.nn.module import Module
from gradflow.ops.dropout import dropout
from gradflow.tensor import Tensor


class Dropout(Module):
    """Zero each element with probability p during training and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
