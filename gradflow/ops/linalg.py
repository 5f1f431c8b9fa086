"""Matrix products: matmul (1-D, 2-D, batched with broadcast batch dims) and linear.

Backward multiplies by transposed *views* (``swapaxes``), which BLAS and cuBLAS read with a
transpose flag: no transposed copy is made.

Stacked rows times one matrix, (..., k) @ (k, n) (linear on a (B, T, in) input, matmul with a
2-D right operand), is one 2-D GEMM over the (B * T, k) rows on cuda (``rows_matmul``), and the
weight gradient one GEMM over those rows on both devices. CuPy 14's matmul of a 3-D array by a
2-D one instead copies a non-contiguous operand (``ascontiguousarray``: a fresh copy of
``weight.T`` on every call), launches three kernels building pointer tables for the broadcast
batch, then a batched GEMM; its 2-D product (``dot``) reads a transposed view with a transpose
flag and launches the GEMM alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.backend.routing import uses_kernels
from gradflow.ops._util import operand, unbroadcast
from gradflow.tensor import Tensor


class MatMul(Function):
    op_name = "matmul"

    def forward(self, a, b):
        self.a_vector, self.b_vector = a.ndim == 1, b.ndim == 1
        a2 = a[None, :] if self.a_vector else a
        b2 = b[:, None] if self.b_vector else b
        need_a, need_b = self.needs_input_grad
        self.save_for_backward(a2 if need_b else None, b2 if need_a else None)  # 1-D as 2-D views
        self.shapes = (a2.shape, b2.shape)
        out = rows_matmul(a2, b2) if b2.ndim == 2 else a2 @ b2
        if self.a_vector:
            out = out[..., 0, :]
        if self.b_vector:
            out = out[..., 0]
        return out

    def backward(self, g):
        a, b = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        if self.b_vector:
            g = g[..., None]
        if self.a_vector:
            g = g[..., None, :]
        ga = gb = None
        rows = len(self.shapes[1]) == 2  # a's rows times one matrix: 2-D GEMMs
        if need_a:
            if rows:
                ga = rows_matmul(g, b.swapaxes(-1, -2))
            else:
                ga = unbroadcast(g @ b.swapaxes(-1, -2), self.shapes[0])
            ga = ga[0] if self.a_vector else ga
        if need_b:
            if rows:
                gb = as_rows(a).T @ as_rows(g)
            else:
                gb = unbroadcast(a.swapaxes(-1, -2) @ g, self.shapes[1])
            gb = gb[:, 0] if self.b_vector else gb
        return ga, gb


class LinearFunction(Function):
    """y = x @ W^T + b in one node (x: (..., in), W: (out, in), b: (out,))."""

    op_name = "linear"

    def forward(self, x, weight, bias=None):
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        out = rows_matmul(x, weight.T)  # weight.T: a view, read with a transpose flag
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        x, weight = self.saved_arrays
        return linear_grads(g, x, weight, self.needs_input_grad)


def linear_grads(g: Any, x: Any, weight: Any, needs_input_grad: tuple) -> tuple:
    """(dx, dW[, db]) of z = x @ W^T (+ b) from g = dL/dz; None where not needed.

    x is needed only for dW, W only for dx. Each product is one 2-D GEMM over the rows of g
    and x (views of them when contiguous), g2.T a transposed view: no copies. db is the sum of g
    over all leading axes: CuPy's reduction, or our sum_to_bias kernel where the dispatcher's
    table says it is faster.
    """
    need_x, need_w = needs_input_grad[:2]
    has_bias = len(needs_input_grad) > 2
    gx = rows_matmul(g, weight) if need_x else None
    g2 = as_rows(g)
    gw = g2.T @ as_rows(x) if need_w else None
    if not has_bias:
        return gx, gw
    gb = None
    if needs_input_grad[2]:
        gb = _bias_sum_kernel(g2) if uses_kernels(g2) else None
        if gb is None:
            gb = g2.sum(axis=0)
    return gx, gw, gb


def as_rows(a: Any) -> Any:
    """a (..., k) as the 2-D (rows, k) matrix a GEMM reads: a itself when 2-D, else a reshape
    (a view when a is contiguous; a 1-D a is one row). The row count is explicit when k = 0,
    where reshape can't infer -1."""
    if a.ndim == 2:
        return a
    k = a.shape[-1]
    return a.reshape(a.size // k if k else math.prod(a.shape[:-1]), k)


def rows_matmul(m: Any, w: Any) -> Any:
    """m (..., k) @ w (k, n), w 2-D (a transposed view is fine): on CuPy one 2-D GEMM on m's
    rows, written through a (rows, n) view of a new (..., n) array, which is returned: it owns
    its memory, so the engine keeps it as a leaf's .grad without a copy kernel.

    NumPy keeps its own N-D matmul (the same bits as before): it copies nothing either, and at
    a Linear layer's usual sizes the reshapes would cost more Python time than one BLAS call
    instead of one per stacked matrix saves.
    """
    if m.ndim == 2 or type(m) is numpy.ndarray:
        return m @ w
    xp = get_array_module(m)
    rows = as_rows(m)
    dtype = m.dtype if m.dtype == w.dtype else numpy.result_type(m.dtype, w.dtype)
    out = xp.empty((*m.shape[:-1], w.shape[1]), dtype)
    xp.matmul(rows, w, out=out.reshape(rows.shape[0], w.shape[1]))
    return out


def _bias_sum_kernel(g2: Any) -> Any | None:
    """sum_to_bias (kernels/fused.cu) where the dispatcher picks it for this shape; else None."""
    from gradflow.kernels import dispatch, sum_to_bias

    if dispatch.choose("bias_sum", g2.size, g2) != "kernel":
        return None
    return sum_to_bias(g2)


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's rules: 1-D vectors, 2-D matrices, batched (...,n,k)@(...,k,m)
    with broadcast batch dimensions."""
    a, b = operand(a), operand(b)
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be tensors (use * for scalars)")
    if (a.dtype.kind == "f") != (b.dtype.kind == "f"):  # an integer side takes the float dtype
        a, b = (t.to(a.dtype if a.dtype.kind == "f" else b.dtype) for t in (a, b))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both operands need at least 1 dim, got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}; use * to multiply by a scalar"
        )
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} don't fit: the last dim of "
            f"the first ({k_a}) must equal the {'only' if b.ndim == 1 else 'second-to-last'} "
            f"dim of the second ({k_b})"
        )
    if a.ndim > 2 or b.ndim > 2:
        _check_batch_dims(
            a.shape[:-2] if a.ndim > 1 else (), b.shape[:-2] if b.ndim > 1 else (), a.shape, b.shape
        )
    return MatMul.apply(a, b)


def _check_batch_dims(ba: tuple, bb: tuple, sa: tuple, sb: tuple) -> None:
    for x, y in zip(reversed(ba), reversed(bb)):
        if x != y and x != 1 and y != 1:
            raise ValueError(
                f"matmul: batch dims of shapes {tuple(sa)} and {tuple(sb)} don't broadcast"
            )


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, one graph node (weight: (out_features, in_features))."""
    check_linear_args(x, weight, bias, "linear")
    return (
        LinearFunction.apply(x, weight) if bias is None else LinearFunction.apply(x, weight, bias)
    )


def check_linear_args(x: Tensor, weight: Tensor, bias: Tensor | None, op: str) -> None:
    """A ValueError naming op unless x (..., in), weight (out, in) and bias (out,) fit."""
    if x.ndim == 0 or weight.ndim != 2 or x.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} doesn't fit weight of shape "
            f"{tuple(weight.shape)}: expected input (..., in_features) and weight "
            "(out_features, in_features)"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"{op}: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
