"""Dropout as modules: active in training mode, the identity in eval mode. Dropout zeroes
elements, Dropout1d/2d/3d whole channels, AlphaDropout and FeatureAlphaDropout keep SELU's
self-normalization."""

from __future__ import annotations

from gradflow.nn.module import Module
from gradflow.ops import dropout as dropout_ops
from gradflow.tensor import Tensor


class _DropoutNd(Module):
    """What the dropout modules share: p checked as PyTorch does, inplace kept (the result is
    computed out of place and returned), the repr."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability p during training and scale the rest by 1/(1-p)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout_ops.dropout(x, self.p, self.training)


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) or (C, L) inputs with probability p (training)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout_ops.dropout1d(x, self.p, self.training)


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) inputs with probability p (training)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout_ops.dropout2d(x, self.p, self.training)


class Dropout3d(_DropoutNd):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) inputs with probability p."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout_ops.dropout3d(x, self.p, self.training)


class AlphaDropout(_DropoutNd):
    """Alpha dropout for SELU networks (mean and variance kept); identity in eval mode."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout_ops.alpha_dropout(x, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels; identity in eval mode."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout_ops.feature_alpha_dropout(x, self.p, self.training)
