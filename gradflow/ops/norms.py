"""Norms: vector_norm, matrix_norm, norm (torch.norm) and linalg_norm (torch.linalg.norm).

Memory: VectorNorm keeps its input and the norm (kept dims); matrix_norm's 1/inf norms are
compositions of abs, sum and amax/amin.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import const, graph_input, graph_output
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.tensor import Tensor


class VectorNorm(Function):
    """The p-norm over dims: (sum |x|^p)^(1/p), max |x| for inf, min |x| for -inf. The gradient
    at a zero norm is zero (as PyTorch), and inf/-inf share it among the tied elements."""

    op_name = "linalg_vector_norm"
    dims: tuple | None
    keepdim: bool
    ord: float

    def forward(self, x):
        xp = get_array_module(x)
        a = xp.abs(x)
        p = self.ord
        if p == math.inf:
            out = a.max(axis=self.dims, keepdims=True)
        elif p == -math.inf:
            out = a.min(axis=self.dims, keepdims=True)
        elif p == 2:
            out = xp.sqrt((a * a).sum(axis=self.dims, keepdims=True))
        elif p == 1:
            out = a.sum(axis=self.dims, keepdims=True)
        else:
            with numpy.errstate(divide="ignore"):
                out = ((a**p).sum(axis=self.dims, keepdims=True)) ** (1 / p)
        self.save_for_backward(x, out)  # the input and the kept-dims norm
        if self.keepdim:
            return out
        return out.reshape(()) if self.dims is None else out.squeeze(self.dims)

    def backward(self, g):
        x, out = self.saved_arrays
        xp = get_array_module(g)
        if not self.keepdim:
            g = g.reshape(out.shape)
        p = self.ord
        zero = g.dtype.type(0)
        sign = xp.sign(x)
        with numpy.errstate(divide="ignore", invalid="ignore"):
            if abs(p) == math.inf:
                hit = xp.abs(x) == out
                count = hit.sum(axis=self.dims, keepdims=True).astype(g.dtype)
                return sign * hit * (g / count)
            if p == 1:
                return sign * g
            if p == 2:
                return xp.where(out == 0, zero, x * (g / out))
            a = xp.abs(x)
            grad = sign * a ** (p - 1) * (g / out ** (p - 1))
            return xp.where((out == 0) | (a == 0), zero, grad)

    def backward_graph(self, g):
        from gradflow.ops.arithmetic import where

        x_a, out_a = self.saved_arrays
        xp = get_array_module(x_a)
        if self.keepdim:
            returned = out_a
        else:
            returned = out_a.reshape(()) if self.dims is None else out_a.squeeze(self.dims)
        out = graph_output(self, returned).reshape(out_a.shape)
        if not self.keepdim:
            g = g.reshape(out_a.shape)
        p = self.ord
        sign = xp.sign(x_a)
        if abs(p) == math.inf:
            hit = xp.abs(x_a) == out_a
            share = sign * hit / hit.sum(axis=self.dims, keepdims=True).astype(g.dtype)
            return g * const(share)
        if p == 1:
            return g * const(sign)
        x = graph_input(self, 0, x_a)
        with numpy.errstate(divide="ignore", invalid="ignore"):
            if p == 2:
                zero = const(out_a == 0)
                return where(zero, 0.0, x * (g / where(zero, 1.0, out)))
            zero = const((out_a == 0) | (x_a == 0))
            a = x * const(sign)  # |x|
            safe_a, safe_out = where(zero, 1.0, a), where(zero, 1.0, out)
            return where(zero, 0.0, const(sign) * safe_a ** (p - 1) * (g / safe_out ** (p - 1)))


def vector_norm(
    input: Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """The vector p-norm of input over dim (every element when None): ord 2 (default), 1, inf,
    -inf, 0 (the count of nonzeros, no gradient) or any other float."""
    from gradflow.ops._util import normalize_dims

    if not isinstance(input, Tensor):
        raise TypeError(f"linalg.vector_norm: expected a Tensor, got {type(input).__name__}")
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind != "f":
        raise RuntimeError(
            f"linalg.vector_norm: expected a floating-point tensor as input, got {input.dtype}; "
            "call .float() or pass dtype="
        )
    if isinstance(ord, str | bool) or not isinstance(ord, int | float):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    dims = normalize_dims(dim, input.ndim, "linalg.vector_norm") if input.ndim else None
    if dims is not None and len(dims) == 0:
        dims = None  # dim=() reduces over every dim, as PyTorch
    if ord == 0:
        xp = get_array_module(input.array)
        count = (input.array != 0).sum(axis=dims, keepdims=bool(keepdim)).astype(input.dtype)
        return Tensor._wrap(xp.asarray(count))
    if input.array.size == 0 and ord < 0:
        raise RuntimeError(
            f"linalg.vector_norm: cannot compute the {ord} norm of an empty tensor because "
            "the operation does not have an identity"
        )
    return VectorNorm.apply(input, dims=dims, keepdim=bool(keepdim), ord=float(ord))


def matrix_norm(
    input: Tensor,
    ord: Any = "fro",
    dim: Any = (-2, -1),
    keepdim: bool = False,
    *,
    dtype: Any = None,
) -> Tensor:
    """The matrix norm over the two dims `dim`: 'fro' (default), 1, -1, inf, -inf. The
    spectral and nuclear norms (2, -2, 'nuc') need an SVD, which gradflow has not: they raise."""
    from gradflow.ops import reduction
    from gradflow.ops._util import normalize_dim

    if not isinstance(input, Tensor):
        raise TypeError(f"linalg.matrix_norm: expected a Tensor, got {type(input).__name__}")
    if dtype is not None:
        input = input.to(dtype)
    if not isinstance(dim, list | tuple) or len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple, got {dim!r}")
    if input.ndim < 2:
        raise RuntimeError(
            f"linalg.matrix_norm: the input tensor must be a matrix or a batch of matrices, "
            f"got shape {tuple(input.shape)}"
        )
    d0, d1 = (normalize_dim(d, input.ndim, "linalg.matrix_norm") for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different, got {tuple(dim)}")
    if ord == "fro":
        return vector_norm(input, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        raise NotImplementedError(
            f"linalg.matrix_norm: ord={ord!r} needs singular values, which gradflow does not "
            "compute; use ord='fro', 1, -1, inf or -inf"
        )
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(
            f"linalg.matrix_norm: order {ord!r} not supported; use 'fro', 1, -1, inf or -inf"
        )
    from gradflow.ops.unary import abs as _abs

    # 1/-1: the largest/smallest column sum of |A| (sum over rows d0); inf/-inf: row sums
    summed, other = (d0, d1) if abs(ord) == 1 else (d1, d0)
    sums = reduction.sum(_abs(input), summed, keepdim=True)
    pick = reduction.amax if ord > 0 else reduction.amin
    out = pick(sums, other, keepdim=True)
    return out if keepdim else _squeeze2(out, d0, d1)


def _squeeze2(t: Tensor, d0: int, d1: int) -> Tensor:
    from gradflow.ops.shape import squeeze

    for d in sorted((d0, d1), reverse=True):
        t = squeeze(t, d)
    return t


def norm(
    input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None
) -> Tensor:
    """torch.norm: the 2-norm of every element ('fro', the default), a vector p-norm over dim
    (p a number), or the Frobenius norm over a 2-tuple dim. 'nuc' is not supported (no SVD)."""
    if p == "nuc":
        raise NotImplementedError(
            "norm: p='nuc' needs singular values, which gradflow does not compute; use 'fro'"
        )
    if isinstance(p, str) and p != "fro":
        raise RuntimeError(f"norm: p must be 'fro', 'nuc' or a number, got {p!r}")
    if isinstance(dim, int):
        dim = (dim,)
    if p == "fro":
        if dim is not None and len(dim) > 2:
            raise RuntimeError(f"norm: 'fro' takes at most 2 dims, got {tuple(dim)}")
        p = 2
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


def linalg_norm(
    input: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """torch.linalg.norm: ord None is the 2-norm of the flattened input (or over dim); with an
    ord, a 1-D input (or an int dim) gets a vector norm and a 2-D input (or a 2-tuple dim) a
    matrix norm."""
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        return vector_norm(input, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if input.ndim == 1:
            return vector_norm(input, ord, None, keepdim, dtype=dtype)
        if input.ndim == 2:
            return matrix_norm(input, ord, (-2, -1), keepdim, dtype=dtype)
        raise RuntimeError(
            f"linalg.norm: with ord={ord!r} the input must be 1-D or 2-D unless dim is given, "
            f"got shape {tuple(input.shape)}"
        )
    if len(dim) == 1:
        return vector_norm(input, ord, dim, keepdim, dtype=dtype)
    if len(dim) == 2:
        return matrix_norm(input, ord, dim, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: dim must be an int or a 2-tuple, got {tuple(dim)}")
