"""Matrix products: matmul (1-D, 2-D, batched with broadcast batch dims) and linear; PyTorch's
named products (mm, bmm, mv, dot, vdot, vecdot, outer, addmm, ..., multi_dot, chain_matmul).
einsum and the products built on it (tensordot, inner, kron, cross) are in einsum.py, norms in
norms.py, inv, det, slogdet, solve and cholesky in decompositions.py.

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

import contextlib
import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import graph_input
from gradflow.autograd.differentiable import unbroadcast as _unb
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

    def backward_graph(self, g):
        a, b = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        if self.b_vector:
            g = g.unsqueeze(-1)
        if self.a_vector:
            g = g.unsqueeze(-2)
        ga = gb = None
        if need_a:  # the saved 2-D views of 1-D inputs: the graph input is the 1-D array
            tb = (
                graph_input(self, 1, b[:, 0]).unsqueeze(-1)
                if self.b_vector
                else (graph_input(self, 1, b))
            )
            ga = _unb(MatMul.apply(g, tb.transpose(-1, -2)), self.shapes[0])
            ga = ga[0] if self.a_vector else ga
        if need_b:
            ta = (
                graph_input(self, 0, a[0]).unsqueeze(0)
                if self.a_vector
                else (graph_input(self, 0, a))
            )
            gb = _unb(MatMul.apply(ta.transpose(-1, -2), g), self.shapes[1])
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

    def backward_graph(self, g):
        x, weight = self.saved_arrays
        need_x, need_w = self.needs_input_grad[:2]
        gx = MatMul.apply(g, graph_input(self, 1, weight)) if need_x else None
        g2 = g.reshape(-1, g.shape[-1])
        gw = None
        if need_w:
            tx = graph_input(self, 0, x)
            gw = MatMul.apply(g2.transpose(0, 1), tx.reshape(-1, tx.shape[-1]))
        if len(self.needs_input_grad) == 2:
            return gx, gw
        return gx, gw, g2.sum(dim=0) if self.needs_input_grad[2] else None


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


def matmul(input: Any, other: Any) -> Tensor:
    """Matrix product with NumPy's rules: 1-D vectors, 2-D matrices, batched (...,n,k)@(...,k,m)
    with broadcast batch dimensions."""
    a, b = operand(input), operand(other)
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


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias, one graph node (weight: (out_features, in_features))."""
    check_linear_args(input, weight, bias, "linear")
    if bias is None:
        return LinearFunction.apply(input, weight)
    return LinearFunction.apply(input, weight, bias)


def check_linear_args(x: Tensor, weight: Tensor, bias: Tensor | None, op: str) -> None:
    """A ValueError naming op unless x (..., in), weight (out, in) and bias (out,) fit."""
    try:  # the arrays' own shape tuples: this runs on every call
        xs, ws = x.array.shape, weight.array.shape
        bias_shape = None if bias is None else bias.array.shape
    except AttributeError:
        for name, value in (("input", x), ("weight", weight), ("bias", bias)):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"{op}(): argument '{name}' must be a Tensor, not {type(value).__name__}; "
                    "wrap it with gradflow.as_tensor(...)"
                ) from None
        raise
    if not xs or len(ws) != 2 or xs[-1] != ws[-1]:
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} doesn't fit weight of shape "
            f"{tuple(weight.shape)}: expected input (..., in_features) and weight "
            "(out_features, in_features)"
        )
    if bias is not None and bias_shape != (ws[0],):
        raise ValueError(f"{op}: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")


# ---- PyTorch's named products: mm, bmm, mv, dot, outer and the add-products -------------------
def _tensor_args(op: str, **named: Any) -> list:
    """The named operands as Tensors (lists and arrays converted), a TypeError otherwise; an
    integer side takes the other's float dtype, as in matmul."""
    out = []
    for name, x in named.items():
        with contextlib.suppress(TypeError):  # a non-tensor is named below
            x = operand(x)
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: argument '{name}' must be a Tensor, got {type(x).__name__}")
        out.append(x)
    floats = [t.dtype for t in out if t.dtype.kind == "f"]
    if floats:
        out = [t if t.dtype.kind == "f" else t.to(floats[0]) for t in out]
    return out


def _out_dtype(a: Tensor, b: Tensor, out_dtype: Any) -> tuple[Tensor, Tensor]:
    """mm/bmm's out_dtype: both operands cast to it, so the product accumulates in and returns
    that dtype (PyTorch's use: float16/bfloat16 matrices, a float32 product)."""
    if out_dtype is None:
        return a, b
    return a.to(out_dtype), b.to(out_dtype)


def mm(input: Tensor, mat2: Tensor, out_dtype: Any = None) -> Tensor:
    """The product of two matrices, (n, k) @ (k, m); no broadcasting (use matmul for that).
    out_dtype: the product's dtype (both matrices cast to it first)."""
    a, b = _out_dtype(*_tensor_args("mm", input=input, mat2=mat2), out_dtype)
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(
            f"mm: both arguments must be matrices, got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}; use matmul for vectors and batches"
        )
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(
            f"mm: mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
            f"{b.shape[0]}x{b.shape[1]})"
        )
    return MatMul.apply(a, b)


def bmm(input: Tensor, mat2: Tensor, out_dtype: Any = None) -> Tensor:
    """Batched product (b, n, k) @ (b, k, m), the batch sizes equal (no broadcasting);
    out_dtype as in mm."""
    a, b = _out_dtype(*_tensor_args("bmm", input=input, mat2=mat2), out_dtype)
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(
            f"bmm: both arguments must be 3-D tensors (batch, rows, cols), got shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}; use matmul to broadcast"
        )
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(
            f"bmm: expected mat2 of shape ({a.shape[0]}, {a.shape[2]}, m) for input of shape "
            f"{tuple(a.shape)}, got {tuple(b.shape)}"
        )
    return MatMul.apply(a, b)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix times vector, (n, m) @ (m,)."""
    a, v = _tensor_args("mv", input=input, vec=vec)
    if a.ndim != 2 or v.ndim != 1 or a.shape[1] != v.shape[0]:
        raise RuntimeError(
            f"mv: expected a matrix (n, m) and a vector (m,), got shapes {tuple(a.shape)} and "
            f"{tuple(v.shape)}"
        )
    return MatMul.apply(a, v)


def dot(input: Tensor, tensor: Tensor) -> Tensor:
    """The inner product of two 1-D tensors of one length (a 0-d tensor)."""
    a, b = _tensor_args("dot", input=input, tensor=tensor)
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"dot: 1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(
            f"dot: the tensors have {a.shape[0]} and {b.shape[0]} elements; they must match"
        )
    return MatMul.apply(a, b)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """The outer product of two 1-D tensors: out[i, j] = input[i] * vec2[j]."""
    from gradflow.ops.arithmetic import mul

    a, b = _tensor_args("outer", input=input, vec2=vec2)
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"outer: expected 1-D arguments, got {a.ndim}-D and {b.ndim}-D")
    return mul(a.reshape(-1, 1), b.reshape(1, -1))


ger = outer


def _add_product(op: str, input: Any, product: Tensor, beta: Any, alpha: Any) -> Tensor:
    """beta * input + alpha * product; input is ignored when beta is 0 (its NaNs too), as in
    PyTorch."""
    from gradflow.ops.arithmetic import add, mul

    if alpha != 1:
        product = mul(product, alpha)
    if beta == 0:
        return product
    input = operand(input)
    if isinstance(input, Tensor):
        try:
            numpy.broadcast_shapes(tuple(input.shape), tuple(product.shape))
        except ValueError:
            raise RuntimeError(
                f"{op}: input of shape {tuple(input.shape)} does not broadcast to the product's "
                f"shape {tuple(product.shape)}"
            ) from None
    return add(input if beta == 1 else mul(input, beta), product)


def addmm(
    input: Any,
    mat1: Tensor,
    mat2: Tensor,
    out_dtype: Any = None,
    *,
    beta: Any = 1,
    alpha: Any = 1,
) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape;
    out_dtype as in mm."""
    return _add_product("addmm", input, mm(mat1, mat2, out_dtype), beta, alpha)


def baddbmm(
    input: Any,
    batch1: Tensor,
    batch2: Tensor,
    out_dtype: Any = None,
    *,
    beta: Any = 1,
    alpha: Any = 1,
) -> Tensor:
    """beta * input + alpha * bmm(batch1, batch2); out_dtype as in mm."""
    return _add_product("baddbmm", input, bmm(batch1, batch2, out_dtype), beta, alpha)


def addbmm(input: Any, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """beta * input + alpha * the sum over the batch of batch1[i] @ batch2[i]."""
    from gradflow.ops.reduction import sum as _sum

    return _add_product("addbmm", input, _sum(bmm(batch1, batch2), 0), beta, alpha)


def addmv(input: Any, mat: Tensor, vec: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """beta * input + alpha * (mat @ vec)."""
    return _add_product("addmv", input, mv(mat, vec), beta, alpha)


def addr(input: Any, vec1: Tensor, vec2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """beta * input + alpha * outer(vec1, vec2)."""
    return _add_product("addr", input, outer(vec1, vec2), beta, alpha)


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """The inner product of two 1-D tensors (dot; gradflow has no complex dtype to conjugate)."""
    return dot(input, other)


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """The dot product of x and y along dim (broadcast)."""
    from gradflow.ops.arithmetic import mul
    from gradflow.ops.reduction import sum as _sum

    return _sum(mul(x, y), dim)


def multi_dot(tensors: Any) -> Tensor:
    """The product of a chain of matrices, left to right (the first may be a 1-D row vector
    and the last a 1-D column vector)."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        allowed = (1, 2) if i in (0, len(tensors) - 1) else (2,)
        if t.ndim not in allowed:
            raise RuntimeError(
                f"multi_dot(): tensor {i} must be {' or '.join(f'{n}D' for n in allowed)} but "
                f"got {t.ndim}D"
            )
    out = tensors[0]
    for t in tensors[1:]:
        out = matmul(out, t)
    return out


def chain_matmul(*matrices: Tensor) -> Tensor:
    """The product of 2-D matrices, left to right."""
    for i, t in enumerate(matrices):
        if t.ndim != 2:
            raise RuntimeError(f"chain_matmul(): tensor {i} must be 2D but got {t.ndim}D")
    return matrices[0] if len(matrices) == 1 else multi_dot(matrices)
