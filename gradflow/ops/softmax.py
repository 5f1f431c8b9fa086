"""Softmax and log_softmax along a dim, computed stably (the max subtracted first), and the
array helpers for a stable log-sum-exp that cross_entropy (ops/losses.py) shares.

Memory: both ops keep their output only (softmax's backward is y * (g - sum(g * y)),
log_softmax's is g - exp(out) * sum(g)).

With numba (gradflow.backend.compiled), both ops along the last dim of a float32 NumPy array run
the compiled row loops (compiled_loops.softmax_rows): per row a max pass, an exp-and-sum pass and
a writing pass, the row in cache; backward two passes per row. A row holding +inf or NaN, or
all -inf, is NaN throughout on both routes, as in PyTorch (the NumPy form shifts by the max
itself, so inf - inf makes the row NaN), and so are its gradients.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy

from gradflow.autograd.differentiable import graph_output
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module
from gradflow.ops._rows import row_dots, row_sums
from gradflow.ops._util import float_input, normalize_dim
from gradflow.tensor import Tensor

# ---- array helpers (also used by cross_entropy) ---------------------------------------------


def max_and_log_sum(x: Any, axis: int) -> tuple[Any, Any]:
    """(m, log sum exp(x - m)) along axis (keepdims), m the max: logsumexp = m + log_sum.

    Kept as two parts because their sum rounds: at |x| ~ 1e4 in float32 one ulp of logsumexp
    is 1e-3, while (x - m) - log_sum keeps the log-probabilities near 0 accurate to 1e-7."""
    xp = get_array_module(x)
    m = _max_keepdims(x, axis)
    m = xp.where(xp.isfinite(m), m, 0)  # an all -inf row gives -inf, not nan
    e = x - m
    xp.exp(e, out=e)
    log_sum = sum_keepdims(e, axis)
    xp.log(log_sum, out=log_sum)
    return m, log_sum


def sum_keepdims(a: Any, axis: int) -> Any:
    """a.sum(axis, keepdims=True); along the last axis of a NumPy array by ops/_rows.py's
    row_sums (a third of ndarray.sum's time on contiguous rows, and fast on a broadcast)."""
    if get_array_module(a) is numpy and axis == a.ndim - 1 and a.size:
        return row_sums(a.reshape(-1, a.shape[-1])).reshape(a.shape[:-1] + (1,))
    return a.sum(axis=axis, keepdims=True)


def log_probs(x: Any, m: Any, log_sum: Any) -> Any:
    """log softmax(x) = (x - m) - log_sum from max_and_log_sum's parts, a new array."""
    out = x - m
    out -= log_sum
    return out


def _max_keepdims(x: Any, axis: int) -> Any:
    """x.max(axis, keepdims=True), -inf along an empty axis (where NumPy and CuPy refuse)."""
    if x.shape[axis] == 0:
        return get_array_module(x).full(
            x.shape[:axis] + (1,) + x.shape[axis + 1 :], -numpy.inf, x.dtype
        )
    return x.max(axis=axis, keepdims=True)


# ---- compiled rows (gradflow.backend.compiled) ---------------------------------------------


def _rows(a: Any) -> Any:
    """a as C-contiguous (rows, last dim) (a copy only when a is not contiguous)."""
    return numpy.ascontiguousarray(a).reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _fused_forward(fn: Function, x: Any, log: bool) -> Any:
    """softmax (log: log_softmax) by compiled_loops.softmax_rows when the loops apply (float32
    NumPy x, last dim); sets fn.fused. None otherwise."""
    loops = compiled.loops(x, float32_only=True) if fn.dim == x.ndim - 1 else None
    fn.fused = loops is not None
    if loops is None:
        return None
    out = numpy.empty(x.shape, x.dtype)
    loops.softmax_rows(_rows(x), _rows(out), log)  # _rows(out): a view of out
    return out


def _fused_backward(fn: Function, y: Any, g: Any, log: bool) -> Any:
    """softmax's (log: log_softmax's) input gradient by the compiled rows from the output y,
    when forward took them and the loops apply to (y, g); None otherwise."""
    if not getattr(fn, "fused", False) or (loops := compiled.loops(y, g)) is None:
        return None
    out = numpy.empty(y.shape, y.dtype)
    loops.softmax_rows_backward(_rows(y), _rows(g), _rows(out), log)
    return out


# ---- ops --------------------------------------------------------------------------------------


class SoftmaxFunction(Function):
    op_name = "softmax"
    dim: int

    def forward(self, x):
        if (y := _fused_forward(self, x, log=False)) is not None:
            self.save_for_backward(y)
            return y
        # Shift by the max itself, as PyTorch: a slice holding +inf or NaN, or all -inf, then
        # holds NaN (inf - inf, or NaN) and is NaN throughout, as the compiled rows give.
        with numpy.errstate(invalid="ignore"):
            y = x - _max_keepdims(x, self.dim)
        get_array_module(x).exp(y, out=y)
        y /= sum_keepdims(y, self.dim)
        self.save_for_backward(y)  # the output: dx = y * (g - sum(g * y))
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        if (out := _fused_backward(self, y, g, log=False)) is not None:
            return out
        if get_array_module(y) is numpy and self.dim == y.ndim - 1 and y.size:
            # (g - sum(g y)) y: the row dots in one pass without a g * y array, then two passes
            k = y.shape[-1]
            dot = row_dots(g.reshape(-1, k), y.reshape(-1, k))
            out = numpy.subtract(g, dot.reshape(y.shape[:-1] + (1,)), dtype=y.dtype)
            out *= y
            return out
        gy = g * y
        gy -= y * gy.sum(axis=self.dim, keepdims=True)
        return gy

    def backward_graph(self, g):
        y = graph_output(self, self.saved_arrays[0])
        gy = g * y
        return gy - y * gy.sum(dim=self.dim, keepdim=True)


class LogSoftmaxFunction(Function):
    op_name = "log_softmax"
    dim: int

    def forward(self, x):
        if (out := _fused_forward(self, x, log=True)) is not None:
            self.save_for_backward(out)
            return out
        xp = get_array_module(x)
        # Shift by the max itself (not max_and_log_sum's finite shift), as PyTorch: a slice
        # holding +inf or NaN, or all -inf, is NaN throughout, as the compiled rows give.
        with numpy.errstate(invalid="ignore"):
            out = x - _max_keepdims(x, self.dim)
        log_sum = sum_keepdims(xp.exp(out), self.dim)  # exp of x - m from out: no second x - m
        xp.log(log_sum, out=log_sum)
        out -= log_sum  # (x - m) - log_sum, as log_probs
        self.save_for_backward(out)  # the output: dx = g - exp(out) * sum(g)
        return out

    def backward(self, g):
        (out,) = self.saved_arrays
        if (dx := _fused_backward(self, out, g, log=True)) is not None:
            return dx
        dx = get_array_module(out).exp(out)
        dx *= -sum_keepdims(g, self.dim)
        dx += g
        return dx

    def backward_graph(self, g):
        y = graph_output(self, self.saved_arrays[0])
        return g - y.exp() * g.sum(dim=self.dim, keepdim=True)


# ---- public functions -------------------------------------------------------------------------


def softmax_input(input: Any, dim: int | None, dtype: Any, op: str, stacklevel: int) -> tuple:
    """(x, dim) for the softmax family as PyTorch reads its arguments: x cast to `dtype` first
    when given; dim None picks PyTorch's implicit dim (0 for 0-, 1- and 3-D inputs, else 1)
    with PyTorch's deprecation warning."""
    x = float_input(input, op) if dtype is None else input.to(dtype)
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {op} has been deprecated. Change the call to "
            "include dim=X as an argument.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return x, normalize_dim(dim, x.ndim, op)


def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """Normalized exponentials along `dim`: softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j -
    max x), so large inputs do not overflow. `dtype` casts the input first, as in PyTorch.

    >>> import gradflow
    >>> softmax(gradflow.tensor([0.0, 0.0]), dim=0)
    tensor([0.5000, 0.5000])
    """
    x, dim = softmax_input(input, dim, dtype, "softmax", _stacklevel)
    if x.ndim == 0:  # one element; NumPy's math on 0-d arrays gives scalars, so lift it
        return SoftmaxFunction.apply(x.reshape(1), dim=0).reshape(())
    return SoftmaxFunction.apply(x, dim=dim)


def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """Log of softmax along `dim`: x_i - logsumexp(x), computed stably (max subtracted first).

    >>> import gradflow
    >>> log_softmax(gradflow.tensor([0.0, 0.0]), dim=0)
    tensor([-0.6931, -0.6931])
    """
    x, dim = softmax_input(input, dim, dtype, "log_softmax", _stacklevel)
    if x.ndim == 0:  # as in softmax
        return LogSoftmaxFunction.apply(x.reshape(1), dim=0).reshape(())
    return LogSoftmaxFunction.apply(x, dim=dim)
