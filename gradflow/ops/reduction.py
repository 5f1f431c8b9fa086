"""Reductions with `dim` (int or tuple; `axis` alias) and `keepdim` (`keepdims` alias)."""

from __future__ import annotations

from typing import Any

from gradflow.autograd.function import Function
from gradflow.ops._util import normalize_dims, xp_of
from gradflow.tensor import Tensor


def _dim_args(x: Tensor, dim: Any, keepdim: bool, kw: dict, op: str) -> tuple:
    if "axis" in kw:
        dim = kw.pop("axis")
    if "keepdims" in kw:
        keepdim = kw.pop("keepdims")
    if kw:
        raise TypeError(f"{op}() got unexpected keyword arguments {sorted(kw)}")
    return normalize_dims(dim, x.ndim, op), bool(keepdim)


def _expand_grad(g: Any, shape: tuple, dims: tuple | None, keepdim: bool) -> Any:
    """Reshape a reduced gradient so it broadcasts against the input shape."""
    if not keepdim:
        if dims is None:
            g = g.reshape((1,) * len(shape))
        else:
            g = xp_of(g).expand_dims(g, dims)
    return g


class Sum(Function):
    def forward(self, x):
        self.shape = x.shape  # saves the shape only
        return x.sum(axis=self.dims, keepdims=self.keepdim)

    def backward(self, g):
        g = _expand_grad(g, self.shape, self.dims, self.keepdim)
        return xp_of(g).broadcast_to(g, self.shape)


class Mean(Function):
    def forward(self, x):
        self.shape = x.shape  # saves the shape only
        return x.mean(axis=self.dims, keepdims=self.keepdim)

    def backward(self, g):
        count = _count(self.shape, self.dims)
        g = _expand_grad(g, self.shape, self.dims, self.keepdim) / g.dtype.type(count)
        return xp_of(g).broadcast_to(g, self.shape)


def _count(shape: tuple, dims: tuple | None) -> int:
    n = 1
    for i, s in enumerate(shape):
        if dims is None or i in dims:
            n *= s
    return n


def sum(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Sum over `dim` (all dims by default)."""
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "sum")
    return Sum.apply(x, dims=dims, keepdim=keepdim)


def mean(x: Tensor, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """Mean over `dim` (all dims by default)."""
    dims, keepdim = _dim_args(x, dim, keepdim, kw, "mean")
    return Mean.apply(x, dims=dims, keepdim=keepdim)
