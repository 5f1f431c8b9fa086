"""Distances and similarities: normalize, cosine_similarity, pairwise_distance, cdist, with
PyTorch's formulas (eps placement included), and the p-norm along a dim they share.

Memory: the p-norm keeps its input and output (a reference and one value per vector); cdist
with p=2 keeps its two inputs and the (.., P, R) distances, never the (.., P, R, M) differences;
other p keep the inputs and recompute the differences in backward.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import float_input, normalize_dim, unbroadcast
from gradflow.tensor import Tensor


def _p_norm(x: Any, p: float, axis: Any, keepdims: bool) -> Any:
    """The p-norm of x along axis on arrays (p > 0, inf, or 0: the count of non-zeros)."""
    xp = get_array_module(x)
    a = xp.abs(x)
    if p == math.inf:
        if not a.size:  # an empty max is an error in NumPy; the norm of nothing is 0
            return a.sum(axis=axis, keepdims=keepdims)
        return a.max(axis=axis, keepdims=keepdims)
    if p == 0:
        return (a != 0).sum(axis=axis, keepdims=keepdims).astype(x.dtype)
    if p == 1:
        return a.sum(axis=axis, keepdims=keepdims)
    if p == 2:
        return xp.sqrt((a * a).sum(axis=axis, keepdims=keepdims))
    return (a ** x.dtype.type(p)).sum(axis=axis, keepdims=keepdims) ** x.dtype.type(1 / p)


def _p_norm_grad(diff: Any, norm: Any, g: Any, p: float) -> Any:
    """d norm / d diff times g; norm and g broadcast against diff (kept dims). 0 where the
    norm is 0, as PyTorch."""
    xp = get_array_module(diff)
    zero = diff.dtype.type(0)
    if p == 0:
        return xp.zeros_like(diff)
    if p == 1:
        return xp.sign(diff) * g
    with numpy.errstate(divide="ignore", invalid="ignore"):
        if p == 2:
            return xp.where(norm == 0, zero, diff * (g / norm))
        if p == math.inf:  # shared evenly between the elements at the max, as PyTorch
            at_max = (xp.abs(diff) == norm).astype(diff.dtype)
            count = at_max.sum(axis=-1, keepdims=True)
            return xp.where(norm == 0, zero, xp.sign(diff) * at_max * (g / count))
        t = diff.dtype.type
        scale = xp.abs(diff) ** t(p - 2) * diff
        return xp.where(norm == 0, zero, scale * (g / norm ** t(p - 1)))


class VectorNorm(Function):
    """The p-norm along one dim."""

    op_name = "norm"
    p: float
    dim: int
    keepdim: bool

    def forward(self, x):
        y = _p_norm(x, self.p, self.dim, self.keepdim)
        self.save_for_backward(x, y)  # the input (a reference) and the norms
        return y

    def backward(self, g):
        x, y = self.saved_arrays
        if not self.keepdim:
            xp = get_array_module(g)
            g, y = xp.expand_dims(g, self.dim), xp.expand_dims(y, self.dim)
        if self.p == math.inf and self.dim not in (-1, x.ndim - 1):
            xp = get_array_module(x)
            moved = _p_norm_grad(
                xp.moveaxis(x, self.dim, -1), xp.moveaxis(y, self.dim, -1),
                xp.moveaxis(g, self.dim, -1), self.p,
            )  # fmt: skip
            return xp.moveaxis(moved, -1, self.dim)
        return _p_norm_grad(x, y, g, self.p)

    def backward_graph(self, g):
        from gradflow.autograd.differentiable import const, graph_input, graph_output
        from gradflow.ops.arithmetic import where

        x_a, y_a = self.saved_arrays
        xp = get_array_module(x_a)
        y = graph_output(self, y_a)
        if not self.keepdim:
            g, y, y_a = g.unsqueeze(self.dim), y.unsqueeze(self.dim), xp.expand_dims(y_a, self.dim)
        p = self.p
        sign = xp.sign(x_a)
        if p == 0:
            return g * 0.0
        if p == 1:
            return g * const(sign)
        zero = const(y_a == 0)
        if p == math.inf:
            at_max = (xp.abs(x_a) == y_a).astype(x_a.dtype)
            share = sign * at_max / xp.maximum(at_max.sum(axis=self.dim, keepdims=True), 1)
            return where(zero, 0.0, g * const(share))
        x = graph_input(self, 0, x_a)
        safe = where(zero, 1.0, y)
        if p == 2:
            return where(zero, 0.0, x * (g / safe))
        with numpy.errstate(divide="ignore", invalid="ignore"):
            nonzero = const(x_a != 0)
            a = where(nonzero, x * const(sign), 1.0)  # |x|, 1 where x is 0 (its term is 0 there)
            scale = where(nonzero, a ** (p - 2) * x, 0.0)
        return where(zero, 0.0, scale * (g / safe ** (p - 1)))


def _norm(x: Tensor, p: float, dim: int, keepdim: bool = False) -> Tensor:
    return VectorNorm.apply(x, p=float(p), dim=dim, keepdim=keepdim)


def _check_p(p: Any, op: str) -> float:
    if not isinstance(p, int | float) or p < 0:
        raise ValueError(f"{op}: p must be a non-negative number, got {p!r}")
    return float(p)


# ---- public functions -------------------------------------------------------------------------


def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None
) -> Tensor:
    """input / max(||input||_p, eps) along dim.

    >>> import gradflow
    >>> normalize(gradflow.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    from gradflow.ops import arithmetic

    op = "normalize"
    x = float_input(input, op)
    d = normalize_dim(dim, x.ndim, op)
    denom = arithmetic.clamp(_norm(x, _check_p(p, op), d, keepdim=True), min=eps)
    result = x / denom
    if out is not None:
        return out.copy_(result)
    return result


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 x2) / (max(||x1||, eps) max(||x2||, eps)) along dim, x1 and x2 broadcast; each
    is divided by its clamped norm first (PyTorch's; the gradient passes the clamp).

    >>> import gradflow
    >>> cosine_similarity(gradflow.tensor([[1.0, 0.0]]), gradflow.tensor([[1.0, 1.0]]))
    tensor([0.7071])
    """
    from gradflow.autograd import no_grad
    from gradflow.ops import arithmetic

    op = "cosine_similarity"
    x1, x2 = float_input(x1, op, "x1"), float_input(x2, op, "x2")
    if x2.dtype != x1.dtype:
        x2 = x2.to(x1.dtype)
    try:
        shape = numpy.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(
            f"{op}: x1 of shape {tuple(x1.shape)} and x2 of shape {tuple(x2.shape)} do not "
            "broadcast"
        ) from None
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    d = normalize_dim(dim, len(shape), op)

    def unit(x: Tensor) -> Tensor:
        n = _norm(x, 2.0, d, keepdim=True)
        with no_grad():  # PyTorch clamps a clone of the norm in place, outside the graph
            lift = arithmetic.clamp(n, min=eps) - n
        return x / (n + lift)

    return (unit(x1) * unit(x2)).sum(dim=d)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """||x1 - x2 + eps||_p along the last dim (PyTorch's: eps is added to the difference).

    >>> import gradflow
    >>> pairwise_distance(gradflow.tensor([[3.0, 4.0]]), gradflow.tensor([[0.0, 0.0]]), eps=0)
    tensor([5.])
    """
    op = "pairwise_distance"
    x1, x2 = float_input(x1, op, "x1"), float_input(x2, op, "x2")
    if x2.dtype != x1.dtype:
        x2 = x2.to(x1.dtype)
    ndim = max(x1.ndim, x2.ndim, 1)
    diff = x1 - x2 + eps
    if diff.ndim == 0:
        diff = diff.reshape(1)
    return _norm(diff, _check_p(p, op), ndim - 1, keepdim)


class Cdist(Function):
    """Distances between the rows of x1 (.., P, M) and x2 (.., R, M): (.., P, R)."""

    op_name = "cdist"
    p: float
    use_mm: bool

    def forward(self, x1, x2):
        xp = get_array_module(x1)
        if self.p == 2 and self.use_mm:
            # PyTorch's _euclidean_dist: |a|^2 + |b|^2 - 2 a.b, clamped at 1e-30, sqrt
            sq = (x1 * x1).sum(-1)[..., :, None] + (x2 * x2).sum(-1)[..., None, :]
            sq -= 2 * xp.matmul(x1, xp.swapaxes(x2, -1, -2))
            y = xp.sqrt(xp.maximum(sq, x1.dtype.type(1e-30)))
            self.clamped = sq <= 1e-30
        else:
            y = _p_norm(x1[..., :, None, :] - x2[..., None, :, :], self.p, -1, False)
        self.save_for_backward(x1, x2, y)  # inputs (references) and the (.., P, R) distances
        return y

    def backward(self, g):
        x1, x2, y = self.saved_arrays
        xp = get_array_module(g)
        need1, need2 = self.needs_input_grad
        if self.p == 2:
            # sum_r G_pr (a_p - b_r) = a_p sum_r G_pr - G b, with G = g / y (0 at y == 0)
            with numpy.errstate(divide="ignore", invalid="ignore"):
                G = xp.where(y == 0, y.dtype.type(0), g / y)
            if self.use_mm:
                G = xp.where(self.clamped, y.dtype.type(0), G)
            d1 = d2 = None
            if need1:
                d1 = x1 * G.sum(-1)[..., None] - xp.matmul(G, x2)
            if need2:
                Gt = xp.swapaxes(G, -1, -2)
                d2 = x2 * Gt.sum(-1)[..., None] - xp.matmul(Gt, x1)
        else:
            diff = x1[..., :, None, :] - x2[..., None, :, :]
            dd = _p_norm_grad(diff, y[..., None], g[..., None], self.p)
            d1 = dd.sum(-2) if need1 else None
            d2 = -dd.sum(-3) if need2 else None
        return (
            unbroadcast(d1, x1.shape) if need1 else None,
            unbroadcast(d2, x2.shape) if need2 else None,
        )

    def backward_graph(self, g):
        from gradflow.autograd.differentiable import (
            const,
            decomposed_backward_graph,
            graph_input,
            graph_output,
        )
        from gradflow.ops.arithmetic import where

        x1_a, x2_a, y_a = self.saved_arrays
        need1, need2 = self.needs_input_grad
        if self.p != 2:  # the p-norm of the differences, differentiated as Tensor ops

            def distances(x1, x2):
                return _norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), self.p, -1)

            return decomposed_backward_graph(self, g, distances, (x1_a, x2_a))
        zero_a = y_a == 0
        if self.use_mm:
            zero_a = zero_a | self.clamped
        zero = const(zero_a)
        G = where(zero, 0.0, g / where(zero, 1.0, graph_output(self, y_a)))
        x1, x2 = graph_input(self, 0, x1_a), graph_input(self, 1, x2_a)
        d1 = x1 * G.sum(-1).unsqueeze(-1) - G @ x2 if need1 else None
        Gt = G.transpose(-1, -2)
        d2 = x2 * Gt.sum(-1).unsqueeze(-1) - Gt @ x1 if need2 else None
        return d1, d2


_COMPUTE_MODES = (
    "use_mm_for_euclid_dist_if_necessary",
    "use_mm_for_euclid_dist",
    "donot_use_mm_for_euclid_dist",
)


def cdist(
    x1: Tensor,
    x2: Tensor,
    p: float = 2.0,
    compute_mode: str = "use_mm_for_euclid_dist_if_necessary",
) -> Tensor:
    """p-norm distances between each row of x1 (B.., P, M) and each row of x2 (B.., R, M):
    (B.., P, R), batch dims broadcast. For p=2 the matrix-product form is used where PyTorch
    uses it (P > 25 or R > 25 by default; compute_mode forces either way).

    >>> import gradflow
    >>> cdist(gradflow.tensor([[0.0, 0.0]]), gradflow.tensor([[3.0, 4.0], [0.0, 1.0]]))
    tensor([[5., 1.]])
    """
    op = "cdist"
    x1, x2 = float_input(x1, op, "x1"), float_input(x2, op, "x2")
    p = _check_p(p, op)
    if compute_mode not in _COMPUTE_MODES:
        raise ValueError(f"{op}: {compute_mode!r} is not a valid value for compute_mode")
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(
            f"{op}: x1 and x2 must have at least 2 dims, got {tuple(x1.shape)} and "
            f"{tuple(x2.shape)}"
        )
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(
            f"{op}: x1 and x2 must have the same number of columns, got x1 {tuple(x1.shape)} "
            f"and x2 {tuple(x2.shape)}"
        )
    if x2.dtype != x1.dtype:
        raise RuntimeError(
            f"{op}: x1 and x2 must have the same dtype, got {x1.dtype} and {x2.dtype}"
        )
    use_mm = compute_mode == "use_mm_for_euclid_dist" or (
        compute_mode == _COMPUTE_MODES[0] and (x1.shape[-2] > 25 or x2.shape[-2] > 25)
    )
    return Cdist.apply(x1, x2, p=p, use_mm=use_mm)
