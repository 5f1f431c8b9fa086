"""Matrix products: matmul (1-D, 2-D, batched with broadcast batch dims) and linear; PyTorch's
named products (mm, bmm, mv, dot, outer, addmm, ...), einsum and what is built on it
(tensordot, kron, cross), norms, and inv, det, slogdet, solve.

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
import string
from collections import namedtuple
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


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """The product of two matrices, (n, k) @ (k, m); no broadcasting (use matmul for that)."""
    a, b = _tensor_args("mm", input=input, mat2=mat2)
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


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product (b, n, k) @ (b, k, m), the batch sizes equal (no broadcasting)."""
    a, b = _tensor_args("bmm", input=input, mat2=mat2)
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


def dot(input: Tensor, other: Tensor) -> Tensor:
    """The inner product of two 1-D tensors of one length (a 0-d tensor)."""
    a, b = _tensor_args("dot", input=input, other=other)
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


def addmm(input: Any, mat1: Tensor, mat2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape."""
    return _add_product("addmm", input, mm(mat1, mat2), beta, alpha)


def baddbmm(input: Any, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """beta * input + alpha * bmm(batch1, batch2)."""
    return _add_product("baddbmm", input, bmm(batch1, batch2), beta, alpha)


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


# ---- einsum --------------------------------------------------------------------------------
class Einsum(Function):
    """NumPy's/CuPy's einsum on operands broadcast to the equation's sizes. The gradient of
    each operand is another einsum: the output gradient with the other operands, onto that
    operand's subscripts (an identity matrix per repeated subscript, a vector of ones per
    subscript summed inside that operand only), then summed over its broadcast dims.
    Saves the operands, which each other's gradients read."""

    op_name = "einsum"
    terms: tuple
    output: str
    sizes: dict

    def forward(self, *arrays):
        xp = get_array_module(arrays[0])
        self.shapes = [a.shape for a in arrays]
        full = [
            xp.broadcast_to(a, tuple(self.sizes[c] for c in term))
            for a, term in zip(arrays, self.terms)
        ]
        self.save_for_backward(*full)
        return _einsum(",".join(self.terms) + "->" + self.output, full)

    def backward(self, g):
        full = self.saved_arrays
        xp = get_array_module(g)
        grads = []
        for i, (term, shape) in enumerate(zip(self.terms, self.shapes)):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [(t, a) for j, (t, a) in enumerate(zip(self.terms, full)) if j != i]
            terms = [self.output] + [t for t, _ in others]
            operands = [g] + [a for _, a in others]
            seen = set("".join(terms))
            fresh = iter(c for c in _LETTERS if c not in seen and c not in term)
            target = ""
            for c in term:
                if c in target:  # a repeated subscript (a diagonal): spread by an identity
                    d = next(fresh)
                    terms.append(c + d)
                    operands.append(xp.eye(self.sizes[c], dtype=g.dtype))
                    target += d
                else:
                    if c not in seen:  # summed inside this operand only: broadcast back
                        terms.append(c)
                        operands.append(xp.ones(self.sizes[c], dtype=g.dtype))
                        seen.add(c)
                    target += c
            grad = _einsum(",".join(terms) + "->" + target, operands)
            grads.append(unbroadcast(grad, shape))
        return tuple(grads)


_LETTERS = string.ascii_letters


def _einsum(equation: str, arrays: Any) -> Any:
    """xp.einsum; NumPy with three or more operands is told to pick a contraction order (its
    default sums over every index at once, O(product of all sizes))."""
    xp = get_array_module(arrays[0])
    if xp is numpy and len(arrays) > 2:
        return numpy.einsum(equation, *arrays, optimize=True)
    return xp.einsum(equation, *arrays)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation: ``einsum("ij,jk->ik", a, b)`` is a @ b. Subscripts are letters,
    ``...`` stands for broadcast leading dims, and without ``->`` the output is the letters
    that appear once, in alphabetical order (after the ``...`` dims). The operands may also be
    passed as one list."""
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(
            "einsum: the first argument must be the equation string; the sublist format "
            "einsum(op1, [0, 1], op2, [1, 2]) is not supported, write the subscripts as letters"
        )
    tensors = _tensor_args("einsum", **{f"operand {i}": t for i, t in enumerate(operands)})
    if not tensors:
        raise RuntimeError("einsum(): must provide at least one operand")
    terms, output, sizes = _parse_einsum(equation, [tuple(t.shape) for t in tensors])
    return Einsum.apply(*tensors, terms=terms, output=output, sizes=sizes)


def _parse_einsum(equation: str, shapes: list) -> tuple:
    """(input terms, output term, size of each letter) with every ``...`` spelled out in
    letters the equation does not use; RuntimeError for an equation that does not fit."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise RuntimeError(
            f"einsum(): the equation {equation!r} names {len(terms)} operands but "
            f"{len(shapes)} were given"
        )
    for part in [*terms, out]:
        bad = set(part.replace("...", "")) - set(_LETTERS)
        if bad or part.count("...") > 1:
            raise RuntimeError(
                f"einsum(): invalid subscripts {part!r} in {equation!r}: use letters a-z, A-Z "
                "and at most one '...' per operand"
            )
    unused = [c for c in _LETTERS if c not in eq]
    dims = []
    for term, shape in zip(terms, shapes):
        named = len(term.replace("...", ""))
        if len(shape) < named or ("..." not in term and len(shape) != named):
            raise RuntimeError(
                f"einsum(): the subscripts {term!r} need {named} dims"
                f"{' or more' if '...' in term else ''}, but the operand has shape {shape}"
            )
        dims.append(len(shape) - named)
    ellipsis = "".join(unused[: max(dims, default=0)])
    terms = [t.replace("...", ellipsis[len(ellipsis) - n :]) for t, n in zip(terms, dims)]
    if arrow:
        out = out.replace("...", ellipsis)
    else:
        letters = "".join(terms)
        out = ellipsis + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis)
        )
    for c in out:
        if out.count(c) > 1:
            raise RuntimeError(f"einsum(): output subscript {c} appears more than once")
        if not any(c in t for t in terms):
            raise RuntimeError(
                f"einsum(): output subscript {c} does not appear in any input operand"
            )
    sizes: dict = {}
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        for c, n in zip(term, shape):
            seen = sizes.get(c, 1)
            if n != seen and n != 1 and seen != 1:
                raise RuntimeError(
                    f"einsum(): subscript {c} has size {n} for operand {i} which does not "
                    f"broadcast with previously seen size {seen}"
                )
            sizes[c] = n if seen == 1 else seen
    return tuple(terms), out, sizes


# ---- norms -----------------------------------------------------------------------------------
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


def vector_norm(
    x: Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """The vector p-norm of x over dim (every element when None): ord 2 (default), 1, inf,
    -inf, 0 (the count of nonzeros, no gradient) or any other float."""
    from gradflow.ops._util import normalize_dims

    if not isinstance(x, Tensor):
        raise TypeError(f"linalg.vector_norm: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.kind != "f":
        raise RuntimeError(
            f"linalg.vector_norm: expected a floating-point tensor as input, got {x.dtype}; "
            "call .float() or pass dtype="
        )
    if isinstance(ord, str | bool) or not isinstance(ord, int | float):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    dims = normalize_dims(dim, x.ndim, "linalg.vector_norm") if x.ndim else None
    if dims is not None and len(dims) == 0:
        dims = None  # dim=() reduces over every dim, as PyTorch
    if ord == 0:
        xp = get_array_module(x.array)
        count = (x.array != 0).sum(axis=dims, keepdims=bool(keepdim)).astype(x.dtype)
        return Tensor._wrap(xp.asarray(count))
    if x.array.size == 0 and ord < 0:
        raise RuntimeError(
            f"linalg.vector_norm: cannot compute the {ord} norm of an empty tensor because "
            "the operation does not have an identity"
        )
    return VectorNorm.apply(x, dims=dims, keepdim=bool(keepdim), ord=float(ord))


def matrix_norm(
    A: Tensor, ord: Any = "fro", dim: Any = (-2, -1), keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """The matrix norm over the two dims `dim`: 'fro' (default), 1, -1, inf, -inf. The
    spectral and nuclear norms (2, -2, 'nuc') need an SVD, which gradflow has not: they raise."""
    from gradflow.ops import reduction
    from gradflow.ops._util import normalize_dim

    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.matrix_norm: expected a Tensor, got {type(A).__name__}")
    if dtype is not None:
        A = A.to(dtype)
    if not isinstance(dim, list | tuple) or len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple, got {dim!r}")
    if A.ndim < 2:
        raise RuntimeError(
            f"linalg.matrix_norm: the input tensor must be a matrix or a batch of matrices, "
            f"got shape {tuple(A.shape)}"
        )
    d0, d1 = (normalize_dim(d, A.ndim, "linalg.matrix_norm") for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different, got {tuple(dim)}")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
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
    sums = reduction.sum(_abs(A), summed, keepdim=True)
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
    A: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *, dtype: Any = None
) -> Tensor:
    """torch.linalg.norm: ord None is the 2-norm of the flattened input (or over dim); with an
    ord, a 1-D input (or an int dim) gets a vector norm and a 2-D input (or a 2-tuple dim) a
    matrix norm."""
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim == 1:
            return vector_norm(A, ord, None, keepdim, dtype=dtype)
        if A.ndim == 2:
            return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
        raise RuntimeError(
            f"linalg.norm: with ord={ord!r} the input must be 1-D or 2-D unless dim is given, "
            f"got shape {tuple(A.shape)}"
        )
    if len(dim) == 1:
        return vector_norm(A, ord, dim, keepdim, dtype=dtype)
    if len(dim) == 2:
        return matrix_norm(A, ord, dim, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: dim must be an int or a 2-tuple, got {tuple(dim)}")


# ---- more products built on einsum ---------------------------------------------------------
def tensordot(a: Tensor, b: Tensor, dims: Any = 2) -> Tensor:
    """Contract the last `dims` dims of a with the first `dims` of b, or the dims listed in
    ``dims=([dims of a], [dims of b])``."""
    from gradflow.ops._util import normalize_dim

    a, b = _tensor_args("tensordot", a=a, b=b)
    if isinstance(dims, int):
        if dims < 0 or dims > min(a.ndim, b.ndim):
            raise RuntimeError(
                f"tensordot: dims must be in [0, {min(a.ndim, b.ndim)}] for shapes "
                f"{tuple(a.shape)} and {tuple(b.shape)}, got {dims}"
            )
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
        da = [normalize_dim(d, a.ndim, "tensordot") for d in da]
        db = [normalize_dim(d, b.ndim, "tensordot") for d in db]
        if len(da) != len(db):
            raise RuntimeError(
                f"tensordot: both dims lists must have one length, got {len(da)} and {len(db)}"
            )
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise RuntimeError(
                f"tensordot: contracted dimensions need to match, but first has size "
                f"{a.shape[i]} in dim {i} and second has size {b.shape[j]} in dim {j}"
            )
    sa = _LETTERS[: a.ndim]
    sb = list(_LETTERS[a.ndim : a.ndim + b.ndim])
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = "".join(c for i, c in enumerate(sa) if i not in da)
    out += "".join(c for j, c in enumerate(sb) if j not in db)
    return einsum(f"{sa},{''.join(sb)}->{out}", a, b)


def inner(input: Tensor, other: Tensor) -> Tensor:
    """The sum over the last dims of input and other (a product with a 0-d side)."""
    from gradflow.ops.arithmetic import mul

    a, b = _tensor_args("inner", input=input, other=other)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    return tensordot(a, b, ([-1], [-1]))


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """The inner product of two 1-D tensors (dot; gradflow has no complex dtype to conjugate)."""
    return dot(input, other)


def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: blocks input[i, j] * other, of shape input.shape * other.shape."""
    from gradflow.ops.shape import reshape

    a, b = _tensor_args("kron", input=input, other=other)
    n = max(a.ndim, b.ndim)
    a = reshape(a, (1,) * (n - a.ndim) + tuple(a.shape))
    b = reshape(b, (1,) * (n - b.ndim) + tuple(b.shape))
    sa, sb = _LETTERS[:n], _LETTERS[n : 2 * n]
    pairs = "".join(x + y for x, y in zip(sa, sb))
    shape = tuple(x * y for x, y in zip(a.shape, b.shape))
    return reshape(einsum(f"{sa},{sb}->{pairs}", a, b), shape)


def _levi_civita(like: Tensor) -> Tensor:
    from gradflow.creation import zeros

    eps = zeros(3, 3, 3, dtype=like.dtype, device=like.device)
    for i, j, k, s in ((0, 1, 2, 1), (1, 2, 0, 1), (2, 0, 1, 1), (0, 2, 1, -1), (2, 1, 0, -1)):
        eps.array[i, j, k] = s
    eps.array[1, 0, 2] = -1
    return eps


def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along dim (input and other broadcast)."""
    from gradflow.ops._util import normalize_dim
    from gradflow.ops.shape import reshape

    a, b = _tensor_args("linalg.cross", input=input, other=other)
    n = max(a.ndim, b.ndim)
    a = reshape(a, (1,) * (n - a.ndim) + tuple(a.shape))
    b = reshape(b, (1,) * (n - b.ndim) + tuple(b.shape))
    d = normalize_dim(dim, n, "linalg.cross")
    if a.shape[d] != 3 or b.shape[d] != 3:
        raise RuntimeError(
            f"linalg.cross: inputs dimension {dim} must have length 3, got {a.shape[d]} and "
            f"{b.shape[d]}"
        )
    letters = _LETTERS[3 : 3 + n]  # a, b, c are the Levi-Civita subscripts
    sa = letters[:d] + "a" + letters[d + 1 :]
    sb = letters[:d] + "b" + letters[d + 1 :]
    out = letters[:d] + "c" + letters[d + 1 :]
    return einsum(f"{sa},{sb},abc->{out}", a, b, _levi_civita(a))


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """torch.cross: the cross product along dim (the first dim of size 3 when None)."""
    if dim is None:
        shape = numpy.broadcast_shapes(tuple(input.shape), tuple(other.shape))
        sizes = [i for i, n in enumerate(shape) if n == 3]
        if not sizes:
            raise RuntimeError("cross: no dimension of size 3 in input")
        dim = sizes[0] - len(shape)
    return linalg_cross(input, other, dim=dim)


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


# ---- inverse, determinant, solve -------------------------------------------------------------
def _square(op: str, a: Tensor) -> Tensor:
    if not isinstance(a, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(a).__name__}")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise RuntimeError(
            f"{op}: A must be batches of square matrices, but got shape {tuple(a.shape)}"
        )
    if a.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating-point tensor, got {a.dtype}")
    return a


def _lapack(op: str, fn: Any, *arrays: Any, problem: str = "is singular") -> Any:
    """NumPy's or CuPy's linalg call, its LinAlgError raised as PyTorch's RuntimeError. (CuPy
    gives inf/NaN for a singular matrix instead of raising, without a host sync.)"""
    try:
        return fn(*arrays)
    except numpy.linalg.LinAlgError as exc:
        raise RuntimeError(
            f"{op}: the input matrix {problem} ({exc}); the operation could not be completed"
        ) from None


def _mT(a: Any) -> Any:
    return a.swapaxes(-1, -2)


class Inv(Function):
    op_name = "linalg_inv"

    def forward(self, a):
        y = _lapack("linalg.inv", get_array_module(a).linalg.inv, a)
        self.save_for_backward(y)  # the output: dA = -Y^T g Y^T
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        yt = _mT(y)
        return -(yt @ g @ yt)


class Det(Function):
    op_name = "linalg_det"

    def forward(self, a):
        d = get_array_module(a).linalg.det(a)
        self.save_for_backward(a, d)
        return d

    def backward(self, g):
        a, d = self.saved_arrays
        inv = _lapack("linalg.det backward", get_array_module(a).linalg.inv, a)
        return (g * d)[..., None, None] * _mT(inv)


class SLogDet(Function):
    """(sign, log|det|); the gradient reaches A through log|det| only: g A^-T."""

    op_name = "linalg_slogdet"

    def forward(self, a):
        xp = get_array_module(a)
        if xp is numpy:
            sign, logabs = numpy.linalg.slogdet(a)
        else:
            sign, logabs = _slogdet_scaled(a)
        self.save_for_backward(a)
        return xp.asarray(sign, a.dtype), xp.asarray(logabs, a.dtype)

    def backward(self, g_sign, g_logabs):
        (a,) = self.saved_arrays
        inv = _lapack("linalg.slogdet backward", get_array_module(a).linalg.inv, a)
        return g_logabs[..., None, None] * _mT(inv)


def _slogdet_scaled(a: Any) -> tuple:
    """(sign, log|det|) on CuPy: det of A with each row scaled to unit max-norm, whose |det| is
    at most n^(n/2) (no overflow), plus the log of the scales. It underflows only for
    matrices that are singular to working precision. (CuPy's slogdet returns a plain tuple;
    NumPy's named one does not pass through the CPU stand-in, so one path serves both.)"""
    xp = get_array_module(a)
    scale = xp.abs(a).max(axis=-1, keepdims=True)
    scale = xp.where(scale > 0, scale, 1)
    d = xp.linalg.det(a / scale)
    with numpy.errstate(divide="ignore"):
        logabs = xp.log(xp.abs(d)) + xp.log(scale[..., 0]).sum(axis=-1)
    return xp.sign(d), logabs


class Solve(Function):
    """X = A^-1 B for (..., n, n) A and (..., n, k) B (batch dims broadcast):
    dB = A^-T g, dA = -dB X^T."""

    op_name = "linalg_solve"

    def forward(self, a, b):
        xp = get_array_module(a)
        batch = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        self.shapes = (a.shape, b.shape)
        a = xp.broadcast_to(a, batch + a.shape[-2:])
        b = xp.broadcast_to(b, batch + b.shape[-2:])
        x = _lapack("linalg.solve", xp.linalg.solve, a, b)
        self.save_for_backward(a, x if self.needs_input_grad[0] else None)
        return x

    def backward(self, g):
        a, x = self.saved_arrays
        xp = get_array_module(g)
        need_a, need_b = self.needs_input_grad
        gb = _lapack("linalg.solve backward", xp.linalg.solve, _mT(a), g)
        ga = unbroadcast(-(gb @ _mT(x)), self.shapes[0]) if need_a else None
        return ga, unbroadcast(gb, self.shapes[1]) if need_b else None


def inv(A: Tensor) -> Tensor:
    """The inverse of a square matrix (or a batch). A singular matrix raises a RuntimeError on
    cpu; on cuda the result holds inf/NaN (no host sync to check)."""
    return Inv.apply(_square("linalg.inv", A))


def det(A: Tensor) -> Tensor:
    """The determinant of a square matrix (or a batch); the gradient needs A invertible."""
    return Det.apply(_square("linalg.det", A))


_SLogDet = namedtuple("linalg_slogdet", ["sign", "logabsdet"])


def slogdet(A: Tensor) -> Any:
    """(sign, logabsdet) of the determinant, as torch.linalg.slogdet's named tuple."""
    sign, logabsdet = SLogDet.apply(_square("linalg.slogdet", A))
    return _SLogDet(sign, logabsdet)


def logdet(A: Tensor) -> Tensor:
    """log(det(A)): NaN where the determinant is negative, -inf where it is 0."""
    from gradflow.ops.arithmetic import where

    sign, logabsdet = slogdet(A)
    return where(sign < 0, math.nan, where(sign == 0, -math.inf, logabsdet))


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """X with A @ X = B (A square, batches broadcast). B may be a vector (n,) or a batch of
    vectors (..., n) matching A's batch, as in PyTorch."""
    from gradflow.ops.shape import squeeze, unsqueeze

    if not left:
        raise NotImplementedError(
            "linalg.solve: left=False is not supported; solve A^T X^T = B^T instead "
            "(solve(A.mT, B.mT).mT)"
        )
    A = _square("linalg.solve", A)
    (B,) = _tensor_args("linalg.solve", B=B)
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    if vector:
        B = unsqueeze(B, -1)
    if B.shape[-2] != A.shape[-1]:
        raise RuntimeError(
            f"linalg.solve: incompatible shapes of A {tuple(A.shape)} and B {tuple(B.shape)}"
        )
    x = Solve.apply(A, B)
    return squeeze(x, -1) if vector else x


class Cholesky(Function):
    """L with A = L L^T (lower). Backward (PyTorch's): phi = tril(L^T g) with its diagonal
    halved, dA = L^-T phi L^-1, symmetrized."""

    op_name = "linalg_cholesky"

    def forward(self, a):
        xp = get_array_module(a)
        low = _lapack("linalg.cholesky", xp.linalg.cholesky, a, problem="is not positive-definite")
        self.save_for_backward(low)  # the output
        return low

    def backward(self, g):
        (low,) = self.saved_arrays
        xp = get_array_module(g)
        phi = xp.tril(_mT(low) @ g)
        n = phi.shape[-1]
        phi[..., xp.arange(n), xp.arange(n)] *= 0.5
        inv_low = xp.linalg.inv(low)
        grad = _mT(inv_low) @ phi @ inv_low
        return (grad + _mT(grad)) * 0.5


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """The Cholesky factor of a symmetric positive-definite matrix (or batch): lower L with
    A = L L^T, or upper U = L^T with upper=True. Only A's lower triangle is read. A matrix
    that is not positive-definite raises a RuntimeError on cpu (CuPy gives NaN instead)."""
    low = Cholesky.apply(_square("linalg.cholesky", A))
    return low.mT if upper else low
