"""Shape ops: reshape/view, transpose, permute (views where NumPy gives one)."""

from __future__ import annotations

from typing import Any

from gradflow.autograd.function import Function
from gradflow.tensor import Tensor


class Reshape(Function):
    def forward(self, x):
        self.source = x.shape  # saves the shape only
        return x.reshape(self.shape)

    def backward(self, g):
        return g.reshape(self.source)


class Permute(Function):
    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return g.transpose(inverse)


def reshape(x: Tensor, shape: tuple) -> Tensor:
    """The same elements in a new shape (one dim may be -1)."""
    return Reshape.apply(x, shape=tuple(shape))


view = reshape


def permute(x: Tensor, dims: tuple) -> Tensor:
    """Reorder dimensions."""
    return Permute.apply(x, dims=tuple(d % x.ndim for d in dims))


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(x, tuple(dims))


def _todo(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


expand = broadcast_to = squeeze = unsqueeze = flatten = split = chunk = _todo
flip = repeat = tile = contiguous = _todo
