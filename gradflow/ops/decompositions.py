"""Inverse, determinant, solve and Cholesky: inv, det, slogdet, logdet, solve, cholesky, each
a call into NumPy's or CuPy's LAPACK-backed linalg with its gradient in closed form.

Memory: inv and cholesky keep their output; det its input and the determinant; slogdet its
input; solve A and, when A needs a gradient, the solution X.
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy

from gradflow.autograd.differentiable import graph_input, graph_output
from gradflow.autograd.differentiable import unbroadcast as unbroadcast_graph
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module, lapack
from gradflow.ops._util import unbroadcast
from gradflow.ops.linalg import _tensor_args
from gradflow.tensor import Tensor


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


# numpy.linalg computes float32 in float64; backend/lapack.py runs float32 LAPACK on NumPy
# arrays and answers None where numpy.linalg must answer (then it does, with its errors).


def _inv_arrays(a: Any) -> Any:
    xp = get_array_module(a)
    done = lapack.inv(a) if xp is numpy else None
    return xp.linalg.inv(a) if done is None else done


def _solve_arrays(a: Any, b: Any) -> Any:
    xp = get_array_module(a)
    done = lapack.solve(a, b) if xp is numpy else None
    return xp.linalg.solve(a, b) if done is None else done


def _cholesky_arrays(a: Any) -> Any:
    xp = get_array_module(a)
    done = lapack.cholesky(a) if xp is numpy else None
    return xp.linalg.cholesky(a) if done is None else done


def _det_arrays(a: Any) -> Any:
    xp = get_array_module(a)
    done = lapack.det(a) if xp is numpy else None
    if done is not None:
        return done
    with numpy.errstate(over="ignore", under="ignore"):  # torch: inf or 0, silently
        return xp.linalg.det(a)


def _mT(a: Any) -> Any:
    return a.swapaxes(-1, -2)


class Inv(Function):
    op_name = "linalg_inv"

    def forward(self, a):
        y = _lapack("linalg.inv", _inv_arrays, a)
        self.save_for_backward(y)  # the output: dA = -Y^T g Y^T
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        yt = _mT(y)
        return -(yt @ g @ yt)

    def backward_graph(self, g):
        yt = graph_output(self, self.saved_arrays[0]).transpose(-1, -2)
        return -(yt @ g @ yt)


class Det(Function):
    op_name = "linalg_det"

    def forward(self, a):
        d = _det_arrays(a)
        self.save_for_backward(a, d)
        return d

    def backward(self, g):
        a, d = self.saved_arrays
        inv = _lapack("linalg.det backward", _inv_arrays, a)
        return (g * d)[..., None, None] * _mT(inv)

    def backward_graph(self, g):
        a, d = self.saved_arrays
        inv_t = Inv.apply(graph_input(self, 0, a)).transpose(-1, -2)
        return (g * graph_output(self, d)).unsqueeze(-1).unsqueeze(-1) * inv_t


class SLogDet(Function):
    """(sign, log|det|); the gradient reaches A through log|det| only: g A^-T."""

    op_name = "linalg_slogdet"

    def forward(self, a):
        xp = get_array_module(a)
        if xp is numpy:
            done = lapack.slogdet(a)
            sign, logabs = numpy.linalg.slogdet(a) if done is None else done
        else:
            sign, logabs = _slogdet_scaled(a)
        self.save_for_backward(a)
        return xp.asarray(sign, a.dtype), xp.asarray(logabs, a.dtype)

    def backward(self, g_sign, g_logabs):
        (a,) = self.saved_arrays
        inv = _lapack("linalg.slogdet backward", _inv_arrays, a)
        return g_logabs[..., None, None] * _mT(inv)

    def backward_graph(self, g_sign, g_logabs):
        (a,) = self.saved_arrays
        inv_t = Inv.apply(graph_input(self, 0, a)).transpose(-1, -2)
        return g_logabs.unsqueeze(-1).unsqueeze(-1) * inv_t


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
        # float32 LAPACK factors A once, and backward solves A^T with the same factors
        self.factors = lapack.lu_factor(a) if xp is numpy else None
        x = lapack.lu_solve(self.factors, b) if self.factors is not None else None
        if x is None:
            self.factors = None
            x = _lapack("linalg.solve", _solve_arrays, a, b)
        self.save_for_backward(a, x if self.needs_input_grad[0] else None)
        return x

    def backward(self, g):
        a, x = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        gb = None
        if self.factors is not None:
            gb = lapack.lu_solve(self.factors, numpy.ascontiguousarray(g), transposed=True)
        if gb is None:
            gb = _lapack("linalg.solve backward", _solve_arrays, _mT(a), g)
        ga = unbroadcast(-(gb @ _mT(x)), self.shapes[0]) if need_a else None
        return ga, unbroadcast(gb, self.shapes[1]) if need_b else None

    def backward_graph(self, g):
        a, x = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        shape = self.shapes[0]
        lead = a.ndim - len(shape)  # forward's broadcast_to, undone: A's own values
        a_own = a[(0,) * lead + tuple(slice(0, 1) if n == 1 else slice(None) for n in shape)]
        gb = Solve.apply(graph_input(self, 0, a_own).transpose(-1, -2), g)
        ga = None
        if need_a:
            ga = unbroadcast_graph(-(gb @ graph_output(self, x).transpose(-1, -2)), shape)
        return ga, unbroadcast_graph(gb, self.shapes[1]) if need_b else None


def inv(input: Tensor) -> Tensor:
    """The inverse of a square matrix (or a batch). A singular matrix raises a RuntimeError on
    cpu; on cuda the result holds inf/NaN (no host sync to check)."""
    return Inv.apply(_square("linalg.inv", input))


def det(input: Tensor) -> Tensor:
    """The determinant of a square matrix (or a batch); the gradient needs it invertible."""
    return Det.apply(_square("linalg.det", input))


_SLogDet = namedtuple("linalg_slogdet", ["sign", "logabsdet"])


def slogdet(input: Tensor) -> Any:
    """(sign, logabsdet) of the determinant, as torch.linalg.slogdet's named tuple."""
    sign, logabsdet = SLogDet.apply(_square("linalg.slogdet", input))
    return _SLogDet(sign, logabsdet)


def linalg_inv(A: Tensor) -> Tensor:
    """torch.linalg.inv(A): inv under torch.linalg's argument name."""
    return inv(A)


def linalg_det(A: Tensor) -> Tensor:
    """torch.linalg.det(A): det under torch.linalg's argument name."""
    return det(A)


def linalg_slogdet(A: Tensor) -> Any:
    """torch.linalg.slogdet(A): slogdet under torch.linalg's argument name."""
    return slogdet(A)


def logdet(input: Tensor) -> Tensor:
    """log(det(input)): NaN where the determinant is negative, -inf where it is 0."""
    from gradflow.ops.arithmetic import where

    sign, logabsdet = slogdet(input)
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
        low = _lapack("linalg.cholesky", _cholesky_arrays, a, problem="is not positive-definite")
        self.save_for_backward(low)  # the output
        return low

    def backward(self, g):
        (low,) = self.saved_arrays
        xp = get_array_module(g)
        phi = xp.tril(_mT(low) @ g)
        n = phi.shape[-1]
        phi[..., xp.arange(n), xp.arange(n)] *= 0.5
        from gradflow.ops.triangular import _inv_upper  # (it imports this module)

        inv_low = _mT(_inv_upper(xp, _mT(low)))  # L^-1 = ((L^T)^-1)^T, LAPACK's trtri
        grad = _mT(inv_low) @ phi @ inv_low
        return (grad + _mT(grad)) * 0.5

    def backward_graph(self, g):
        from gradflow.autograd.differentiable import const
        from gradflow.ops.diagonals import tril

        (low_a,) = self.saved_arrays
        xp = get_array_module(low_a)
        low = graph_output(self, low_a)
        n = low_a.shape[-1]
        half_diagonal = xp.ones((n, n), low_a.dtype) - 0.5 * xp.eye(n, dtype=low_a.dtype)
        phi = tril(low.transpose(-1, -2) @ g) * const(half_diagonal)
        inv_low = Inv.apply(low)
        grad = inv_low.transpose(-1, -2) @ phi @ inv_low
        return (grad + grad.transpose(-1, -2)) * 0.5


def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """The Cholesky factor of a symmetric positive-definite matrix (or batch): lower L with
    A = L L^T, or upper U = L^T with upper=True (positional in torch.cholesky, keyword-only in
    torch.linalg.cholesky; this takes both). Only A's lower triangle is read. A matrix
    that is not positive-definite raises a RuntimeError on cpu (CuPy gives NaN instead)."""
    low = Cholesky.apply(_square("linalg.cholesky", input))
    return low.mT if upper else low
