"""Decompositions with gradients: qr, eigh/eigvalsh, svd/svdvals, lu/lu_factor/lu_solve, and
what is built on them: pinv, matrix_rank, cond, lstsq, matrix_power, matrix_exp,
solve_triangular/triangular_solve.

qr, eigh and svd are one call into NumPy's or CuPy's batched linalg (they broadcast over
leading dims). Each backward is PyTorch's formula (FunctionsManual.cpp: linalg_qr_backward,
linalg_eig_backward's Hermitian case, svd_backward, pinv_backward, linalg_lu_backward, and the
block-matrix form exp([[A^T, G], [0, A^T]]) for matrix_exp), written once against a small set
of operations (``_ArrayOps`` on raw arrays for the fast first-order backward, ``_GraphOps`` on
gradflow Tensors for ``backward_graph``), so double backward comes from the same code.
cond, lstsq (pinv(A) @ B), matrix_power and lu_solve are compositions of differentiable ops.

Triangular inverses and solves (QR's and LU's backward, solve_triangular) use no LU: LAPACK's
trtri from the OpenBLAS NumPy loaded (found as backend/blas.py finds its cblas; the same
switches turn it off), else the inverse by 2x2 blocks (batched matmuls). lu_factor is LAPACK's
getrf from that OpenBLAS, else a NumPy LU recursive by column halves (CuPy, another BLAS):
the same pivots and factors up to rounding. matrix_exp is scaling and squaring with a Pade
approximant (Higham 2005), its degree picked from the batch's largest 1-norm.

Gauge: eigenvectors and singular vectors are defined up to sign; their gradients divide by
the gaps between eigenvalues (squared singular values): inf/NaN for repeated ones when a
vector output gets a gradient, as in PyTorch; a vector output with none (zeros here, undefined
in PyTorch) adds nothing (``gap_div``). eigvalsh and svdvals have their own nodes.

Errors as PyTorch's: fewer than 2 dims, non-square where square is needed, integer dtypes
(RuntimeError naming the dtype); NaN/inf into eigh/svd raise on cpu (NumPy's LinAlgError as
a RuntimeError; CuPy gives NaN without a host sync); lu_factor raises for a zero pivot.

Memory: qr keeps Q and R; eigh the eigenvalues and eigenvectors; svd U, S, Vh; pinv its input
and output; matrix_exp its input; lu P, L and U; solve_triangular A, T^-1 and the solution.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy

from gradflow.autograd.differentiable import graph_input, graph_output
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import unbroadcast
from gradflow.ops.decompositions import Solve, _lapack, _mT
from gradflow.tensor import Tensor

# ---- the operations the backward formulas are written with ----------------------------------


class _ArrayOps:
    """The backward formulas' operations on NumPy/CuPy arrays."""

    def __init__(self, like: Any) -> None:
        self.xp = get_array_module(like)

    @staticmethod
    def mT(x: Any) -> Any:
        return x.swapaxes(-1, -2)

    def tril(self, x: Any, k: int = 0) -> Any:
        return self.xp.tril(x, k)

    def triu(self, x: Any, k: int = 0) -> Any:
        return self.xp.triu(x, k)

    def diag_embed(self, v: Any) -> Any:
        n = v.shape[-1]
        out = self.xp.zeros(v.shape + (n,), v.dtype)
        idx = self.xp.arange(n)
        out[..., idx, idx] = v
        return out

    def diagonal(self, x: Any) -> Any:
        return self.xp.diagonal(x, 0, -2, -1)

    @staticmethod
    def narrow(x: Any, dim: int, start: int, length: int) -> Any:
        index = [slice(None)] * x.ndim
        index[dim] = slice(start, start + length)
        return x[tuple(index)]

    def const(self, a: Any) -> Any:
        return a

    def gap_div(self, num: Any, gaps: Any) -> Any:
        """num / gaps, 0 where num is 0: a vector output with no gradient (PyTorch's undefined
        one, zeros here) adds nothing even across a repeated eigen/singular value, where the
        gap is 0; a nonzero gradient there gives inf, as in PyTorch."""
        with numpy.errstate(divide="ignore", invalid="ignore"):
            return self.xp.where(num == 0, 0, num / gaps).astype(num.dtype, copy=False)


class _GraphOps(_ArrayOps):
    """The same operations on gradflow Tensors, recorded (for backward_graph)."""

    def __init__(self, like: Any) -> None:
        self.xp = get_array_module(like.array if isinstance(like, Tensor) else like)

    @staticmethod
    def mT(x: Any) -> Any:
        return x.transpose(-1, -2)

    def tril(self, x: Any, k: int = 0) -> Any:
        from gradflow.ops.diagonals import tril

        return tril(x, k)

    def triu(self, x: Any, k: int = 0) -> Any:
        from gradflow.ops.diagonals import triu

        return triu(x, k)

    def diag_embed(self, v: Any) -> Any:
        from gradflow.ops.diagonals import diag_embed

        return diag_embed(v)

    def diagonal(self, x: Any) -> Any:
        from gradflow.ops.diagonals import diagonal

        return diagonal(x, 0, -2, -1)

    def solve(self, a: Any, b: Any) -> Any:
        return Solve.apply(a, b)

    @staticmethod
    def narrow(x: Any, dim: int, start: int, length: int) -> Any:
        index = [slice(None)] * x.ndim
        index[dim] = slice(start, start + length)
        return x[tuple(index)]

    def const(self, a: Any) -> Any:
        from gradflow.autograd.differentiable import const

        return const(a)

    def gap_div(self, num: Any, gaps: Any) -> Any:
        from gradflow.ops.arithmetic import where

        zero = (num == 0).detach()
        with numpy.errstate(divide="ignore", invalid="ignore"):
            return where(zero, 0.0, num / where(zero, 1.0, gaps))


def _right_solve_rt(o: Any, b: Any, r: Any) -> Any:
    """B R^-T for square upper-triangular R: B @ inv(R)^T on arrays (the triangular inverse by
    blocks, a few batched matmuls: several times faster than NumPy's LU solve), solve(R, B^T)^T
    on Tensors (recorded)."""
    if isinstance(o, _GraphOps):
        return o.mT(o.solve(r, o.mT(b)))
    return b @ _mT(_inv_upper(o.xp, r))


def _inv_upper(xp: Any, r: Any) -> Any:
    """The inverse of each upper-triangular matrix of a batch: [[A, B], [0, C]]^-1 =
    [[A^-1, -A^-1 B C^-1], [0, C^-1]], recursively (LAPACK's trtri by blocks). A zero on the
    diagonal gives inf/NaN, as a triangular solve does. On NumPy arrays LAPACK's trtri itself
    when NumPy's OpenBLAS exports it (one call per matrix)."""
    if xp is numpy and r.shape[-1] > 4:
        done = _trtri_upper(r)
        if done is not None:
            return done
    return _inv_upper_blocks(xp, r)


def _inv_upper_blocks(xp: Any, r: Any) -> Any:
    n = r.shape[-1]
    if n <= 4:
        return _small_inv_upper(xp, r)
    h = n // 2
    a_inv = _inv_upper_blocks(xp, r[..., :h, :h])
    c_inv = _inv_upper_blocks(xp, r[..., h:, h:])
    out = xp.zeros_like(r)
    out[..., :h, :h] = a_inv
    out[..., h:, h:] = c_inv
    out[..., :h, h:] = -(a_inv @ r[..., :h, h:]) @ c_inv
    return out


def _small_inv_upper(xp: Any, r: Any) -> Any:
    """Back substitution, row by row from the bottom (n <= 4)."""
    n = r.shape[-1]
    x = xp.zeros_like(r)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        d = 1 / xp.diagonal(r, 0, -2, -1)
        for i in range(n - 1, -1, -1):
            row = -(r[..., i : i + 1, i + 1 :] @ x[..., i + 1 :, :])[..., 0, :]
            row[..., i] += 1
            x[..., i, :] = row * d[..., i : i + 1]
    return x


def _copyltu(o: Any, x: Any) -> Any:
    """X's strict lower triangle copied to the upper one, its diagonal kept."""
    low = o.tril(x, -1)
    return low + o.mT(low) + o.diag_embed(o.diagonal(x))


def _qr_backward_square(o: Any, q: Any, r: Any, gq: Any, gr: Any) -> Any:
    """m >= n (reduced): gA = (gQ + Q copyltu(R gR^T - gQ^T Q)) R^-T."""
    m = r @ o.mT(gr) - o.mT(gq) @ q
    return _right_solve_rt(o, gq + q @ _copyltu(o, m), r)


def _qr_backward(o: Any, q: Any, r: Any, gq: Any, gr: Any) -> Any:
    m, n = q.shape[-2], r.shape[-1]
    if m >= n:
        return _qr_backward_square(o, q, r, gq, gr)
    # m < n: A = [X | Y], X = Q U (square), Y = Q V
    u, v = o.narrow(r, -1, 0, m), o.narrow(r, -1, m, n - m)
    gu, gv = o.narrow(gr, -1, 0, m), o.narrow(gr, -1, m, n - m)
    y = q @ v
    gx = _qr_backward_square(o, q, u, gq + y @ o.mT(gv), gu)
    return _cat_last(o, gx, q @ gv)


def _cat_last(o: Any, a: Any, b: Any) -> Any:
    if isinstance(o, _GraphOps):
        from gradflow.ops.shape import cat

        return cat([a, b], -1)
    return o.xp.concatenate([a, b], -1)


def _eigh_backward(o: Any, w: Any, v: Any, gw: Any, gv: Any) -> Any:
    """gA = V (skew(V^T gV) / E + diag(gL)) V^T, E_ij = L_j - L_i (diagonal 1)."""
    vtgv = o.mT(v) @ gv
    skew = (vtgv - o.mT(vtgv)) * 0.5
    n = w.shape[-1]
    eye = o.const(o.xp.eye(n, dtype=v.dtype if not isinstance(v, Tensor) else v.array.dtype))
    e = w[..., None, :] - w[..., :, None] + eye
    inner = o.gap_div(skew, e) + o.diag_embed(gw)
    return v @ inner @ o.mT(v)


def _svd_backward(o: Any, u: Any, s: Any, vh: Any, gu: Any, gs: Any, gvh: Any) -> Any:
    """PyTorch's svd_backward for real reduced U (m, k), S (k,), Vh (k, n)."""
    m, n = u.shape[-2], vh.shape[-1]
    k = s.shape[-1]
    dtype = s.array.dtype if isinstance(s, Tensor) else s.dtype
    utgu = o.mT(u) @ gu
    utgu = utgu - o.mT(utgu)
    vtgv = vh @ o.mT(gvh)
    vtgv = vtgv - o.mT(vtgv)
    s2 = s * s
    e = s2[..., None, :] - s2[..., :, None] + o.const(o.xp.eye(k, dtype=dtype))
    ga = o.gap_div(utgu * s[..., None, :] + s[..., :, None] * vtgv, e) + o.diag_embed(gs)
    if m > n:
        ga = u @ ga
        gus = gu / s[..., None, :]
        ga = ga + gus - u @ (o.mT(u) @ gus)
        return ga @ vh
    if m < n:
        ga = ga @ vh
        sgvh = gvh / s[..., :, None]
        ga = ga + sgvh - (sgvh @ o.mT(vh)) @ vh
        return u @ ga
    return u @ ga @ vh


def _pinv_backward(o: Any, g: Any, p: Any, a: Any) -> Any:
    """PyTorch's pinv_backward (real)."""
    m, n = a.shape[-2], a.shape[-1]
    pt, gt = o.mT(p), o.mT(g)
    if m <= n:
        k = gt @ p
        kpt = k @ pt
        return -o.mT(p @ k) + kpt - (a @ p) @ kpt + (pt @ p) @ (gt - k @ a)
    k = p @ gt
    ptk = pt @ k
    return -o.mT(k @ p) + (gt - a @ k) @ p @ pt + ptk - ptk @ p @ a


# ---- checks -----------------------------------------------------------------------------------


def _matrix(op: str, a: Any, *, square: bool = False, name: str = "A") -> Tensor:
    if not isinstance(a, Tensor):
        raise TypeError(f"{op}: expected a Tensor as {name}, got {type(a).__name__}")
    if a.ndim < 2:
        raise RuntimeError(
            f"{op}: The input tensor {name} must have at least 2 dimensions (a matrix or a "
            f"batch of matrices), but got shape {tuple(a.shape)}"
        )
    if a.dtype.kind != "f":
        raise RuntimeError(
            f"{op}: Expected a floating point tensor as input. Got {a.dtype}; convert it with "
            ".double() or .float()"
        )
    if square and a.shape[-1] != a.shape[-2]:
        raise RuntimeError(
            f"{op}: {name} must be batches of square matrices, but they are "
            f"{a.shape[-2]} by {a.shape[-1]} matrices"
        )
    return a


def _converge(op: str, fn: Any, *arrays: Any) -> Any:
    return _lapack(op, fn, *arrays, problem="did not converge (it may hold NaN or inf)")


# ---- qr ---------------------------------------------------------------------------------------


class QR(Function):
    op_name = "linalg_qr"
    mode: str

    def forward(self, a):
        xp = get_array_module(a)
        if a.size == 0:
            q, r = _empty_qr(xp, a, self.mode)
        else:
            q, r = xp.linalg.qr(a, mode="complete" if self.mode == "complete" else "reduced")
        if self.mode == "r":
            self.save_for_backward()
            return xp.zeros((0,), a.dtype), xp.ascontiguousarray(r)
        self.save_for_backward(q, r)
        return xp.ascontiguousarray(q), xp.ascontiguousarray(r)

    def _check(self, q):
        if self.mode == "r":
            raise RuntimeError(
                "The derivative of linalg.qr depends on Q, which is not computed when "
                "mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to "
                "differentiate through linalg.qr."
            )
        if self.mode == "complete" and q.shape[-2] > self._n:
            raise RuntimeError(
                "The QR decomposition is not differentiable when mode='complete' and nrows > ncols."
            )

    def backward(self, gq, gr):
        saved = self.saved_arrays
        self._n = gr.shape[-1]
        self._check(saved[0] if saved else gq)
        q, r = saved
        return _qr_backward(_ArrayOps(q), q, r, gq, gr)

    def backward_graph(self, gq, gr):
        saved = self.saved_arrays
        self._n = gr.shape[-1]
        self._check(saved[0] if saved else gq)
        q = graph_output(self, saved[0], 0)
        r = graph_output(self, saved[1], 1)
        return _qr_backward(_GraphOps(q), q, r, gq, gr)


def _empty_qr(xp: Any, a: Any, mode: str) -> tuple:
    m, n = a.shape[-2:]
    batch = a.shape[:-2]
    k = m if mode == "complete" else min(m, n)
    q = xp.zeros(batch + (m, k), a.dtype)
    if k:
        q[..., xp.arange(k), xp.arange(k)] = 1
    return q, xp.zeros(batch + (k, n), a.dtype)


def qr(A: Tensor, mode: str = "reduced") -> Any:
    """torch.linalg.qr: (Q, R) with A = Q R, Q's columns orthonormal and R upper triangular.
    mode "reduced" (Q (m, k), R (k, n), k = min(m, n)), "complete" (Q (m, m), R (m, n)) or
    "r" (R only; Q is an empty tensor). Batched over leading dims. Differentiable except for
    mode "r" and for mode "complete" with m > n (both raise in backward, as in PyTorch)."""
    from gradflow.return_types import linalg_qr

    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
            "'r', or 'complete'"
        )
    q, r = QR.apply(_matrix("linalg.qr", A), mode=mode)
    return linalg_qr(q, r)


def qr_legacy(input: Tensor, some: bool = True) -> Any:
    """torch.qr(input, some=True): linalg.qr with mode "reduced" (some) or "complete"."""
    from gradflow.return_types import qr as qr_tuple

    q, r = qr(input, "reduced" if some else "complete")
    return qr_tuple(q, r)


# ---- eigh -------------------------------------------------------------------------------------


def _check_uplo(uplo: Any) -> str:
    if not isinstance(uplo, str) or uplo.upper() not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {uplo}")
    return uplo.upper()


class Eigh(Function):
    op_name = "linalg_eigh"
    uplo: str

    def forward(self, a):
        xp = get_array_module(a)
        if a.size == 0:
            w, v = xp.zeros(a.shape[:-1], a.dtype), xp.zeros(a.shape, a.dtype)
        else:
            w, v = _converge("linalg.eigh", lambda x: xp.linalg.eigh(x, UPLO=self.uplo), a)
        self.save_for_backward(w, v)
        return w, v

    def backward(self, gw, gv):
        w, v = self.saved_arrays
        return _eigh_backward(_ArrayOps(v), w, v, gw, gv)

    def backward_graph(self, gw, gv):
        w_a, v_a = self.saved_arrays
        w, v = graph_output(self, w_a, 0), graph_output(self, v_a, 1)
        return _eigh_backward(_GraphOps(v_a), w, v, gw, gv)


class EigvalsH(Function):
    """Eigenvalues only; the gradient V diag(g) V^T needs the eigenvectors, computed in
    forward only when a gradient is recorded."""

    op_name = "linalg_eigvalsh"
    uplo: str

    def forward(self, a):
        xp = get_array_module(a)
        if a.size == 0:
            return xp.zeros(a.shape[:-1], a.dtype)
        if not self._recording:
            return _converge("linalg.eigh", lambda x: xp.linalg.eigvalsh(x, UPLO=self.uplo), a)
        w, v = _converge("linalg.eigh", lambda x: xp.linalg.eigh(x, UPLO=self.uplo), a)
        self.save_for_backward(v, a)
        return w

    def backward(self, g):
        v, _ = self.saved_arrays
        return (v * g[..., None, :]) @ _mT(v)

    def backward_graph(self, g):
        v = Eigh.apply(graph_input(self, 0, self.saved_arrays[1]), uplo=self.uplo)[1]
        return (v * g.unsqueeze(-2)) @ v.transpose(-1, -2)


def eigh(input: Tensor, UPLO: str = "L") -> Any:
    """torch.linalg.eigh: (eigenvalues ascending, eigenvectors as columns) of a symmetric
    matrix (or batch), reading only its lower (UPLO="L") or upper triangle. The gradient is
    PyTorch's (symmetric; inf/NaN for repeated eigenvalues when the eigenvectors get a
    gradient). NaN/inf input raises a RuntimeError on cpu."""
    from gradflow.return_types import linalg_eigh

    uplo = _check_uplo(UPLO)
    w, v = Eigh.apply(_matrix("linalg.eigh", input, square=True), uplo=uplo)
    return linalg_eigh(w, v)


def eigvalsh(input: Tensor, UPLO: str = "L") -> Tensor:
    """torch.linalg.eigvalsh: the eigenvalues of a symmetric matrix (or batch), ascending."""
    uplo = _check_uplo(UPLO)
    return EigvalsH.apply(_matrix("linalg.eigh", input, square=True), uplo=uplo)


# ---- svd --------------------------------------------------------------------------------------


def _svd_arrays(a: Any, full_matrices: bool) -> tuple:
    xp = get_array_module(a)
    m, n = a.shape[-2:]
    k = min(m, n)
    if a.size == 0:
        mu, nv = (m, n) if full_matrices else (k, k)
        u = xp.zeros(a.shape[:-2] + (m, mu), a.dtype)
        vh = xp.zeros(a.shape[:-2] + (nv, n), a.dtype)
        if mu:
            u[..., xp.arange(mu), xp.arange(mu)] = 1
        if nv:
            vh[..., xp.arange(nv), xp.arange(nv)] = 1
        return u, xp.zeros(a.shape[:-2] + (k,), a.dtype), vh
    return _converge("linalg.svd", lambda x: xp.linalg.svd(x, full_matrices=full_matrices), a)


class SVD(Function):
    op_name = "linalg_svd"
    full_matrices: bool

    def forward(self, a):
        u, s, vh = _svd_arrays(a, self.full_matrices)
        self.save_for_backward(u, s, vh)
        return u, s, vh

    def _narrowed(self, o, u, s, vh, gu, gvh):
        k = s.shape[-1]
        if self.full_matrices and u.shape[-1] != k:
            u, gu = o.narrow(u, -1, 0, k), o.narrow(gu, -1, 0, k)
        if self.full_matrices and vh.shape[-2] != k:
            vh, gvh = o.narrow(vh, -2, 0, k), o.narrow(gvh, -2, 0, k)
        return u, vh, gu, gvh

    def backward(self, gu, gs, gvh):
        u, s, vh = self.saved_arrays
        o = _ArrayOps(s)
        u, vh, gu, gvh = self._narrowed(o, u, s, vh, gu, gvh)
        return _svd_backward(o, u, s, vh, gu, gs, gvh)

    def backward_graph(self, gu, gs, gvh):
        u_a, s_a, vh_a = self.saved_arrays
        u, s, vh = (graph_output(self, x, i) for i, x in enumerate((u_a, s_a, vh_a)))
        o = _GraphOps(s_a)
        u, vh, gu, gvh = self._narrowed(o, u, s, vh, gu, gvh)
        return _svd_backward(o, u, s, vh, gu, gs, gvh)


class SVDVals(Function):
    """Singular values only; gradient U diag(g) Vh."""

    op_name = "linalg_svdvals"

    def forward(self, a):
        xp = get_array_module(a)
        if not self._recording:
            if a.size == 0:
                return xp.zeros(a.shape[:-2] + (min(a.shape[-2:]),), a.dtype)
            return _converge("linalg.svd", lambda x: xp.linalg.svd(x, compute_uv=False), a)
        u, s, vh = _svd_arrays(a, False)
        self.save_for_backward(u, vh, a)
        return s

    def backward(self, g):
        u, vh, _ = self.saved_arrays
        return (u * g[..., None, :]) @ vh

    def backward_graph(self, g):
        a = graph_input(self, 0, self.saved_arrays[2])
        u, _, vh = SVD.apply(a, full_matrices=False)
        return (u * g.unsqueeze(-2)) @ vh


def svd(A: Tensor, full_matrices: bool = True, *, driver: Any = None) -> Any:
    """torch.linalg.svd: (U, S, Vh) with A = U diag(S) Vh, S descending. full_matrices=True
    gives U (m, m) and Vh (n, n); False the reduced (m, k), (k, n). The gradient is PyTorch's:
    the extra columns of full U/Vh get none; inf/NaN for repeated singular values when U or Vh
    get a gradient. ``driver`` (a cuSOLVER choice in PyTorch) is accepted and ignored."""
    from gradflow.return_types import linalg_svd

    _driver(driver, A)
    u, s, vh = SVD.apply(_matrix("linalg.svd", A), full_matrices=bool(full_matrices))
    return linalg_svd(u, s, vh)


def _driver(driver: Any, a: Any) -> None:
    if driver is None:
        return
    if isinstance(a, Tensor) and a.device.type == "cpu":
        raise RuntimeError(
            "torch.linalg.svd: keyword argument `driver=` is only supported on CUDA inputs with "
            "cuSOLVER backend."
        )
    if driver not in ("gesvd", "gesvdj", "gesvda"):
        raise RuntimeError(
            f"torch.linalg.svd: driver must be None, 'gesvd', 'gesvdj' or 'gesvda', got {driver!r}"
        )


def svdvals(A: Tensor, *, driver: Any = None) -> Tensor:
    """torch.linalg.svdvals: the singular values, descending."""
    _driver(driver, A)
    return SVDVals.apply(_matrix("linalg.svdvals", A))


def svd_legacy(input: Tensor, some: bool = True, compute_uv: bool = True) -> Any:
    """torch.svd: (U, S, V) (V, not Vh). some=False gives the full U and V; compute_uv=False
    gives zero-filled U (m, m) and V (n, n) and only S carries a gradient."""
    from gradflow.return_types import svd as svd_tuple

    a = _matrix("svd", input)
    if not compute_uv:
        xp = get_array_module(a.array)
        m, n = a.shape[-2:]
        zeros = a.shape[:-2]
        u = Tensor._wrap(xp.zeros(zeros + (m, m), a.dtype))
        v = Tensor._wrap(xp.zeros(zeros + (n, n), a.dtype))
        return svd_tuple(u, svdvals(a), v)
    u, s, vh = svd(a, full_matrices=not some)
    return svd_tuple(u, s, vh.mT)


# ---- pinv, matrix_rank, cond ------------------------------------------------------------------


def _tolerance(a: Tensor, atol: Any, rtol: Any, op: str) -> tuple:
    """(atol, rtol) as arrays (or numbers) with PyTorch's defaults: rtol = eps * max(m, n)
    when both are None, 0 when only atol is given."""
    if rtol is None:
        rtol = 0.0 if atol is not None and _positive(atol) else None
    if rtol is None:
        rtol = numpy.finfo(a.dtype).eps * max(a.shape[-2:])
    if atol is None:
        atol = 0.0
    return _as_array(a, atol), _as_array(a, rtol)


def _positive(x: Any) -> bool:
    return True if isinstance(x, Tensor) else x > 0


def _as_array(a: Tensor, x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.array.astype(a.dtype, copy=False)
    return float(x)


def _cutoff(xp: Any, s: Any, atol: Any, rtol: Any) -> Any:
    """max(atol, rtol * max(s)) per matrix, shaped (..., 1) against s (..., k)."""
    smax = s.max(axis=-1, keepdims=True) if s.shape[-1] else xp.zeros(s.shape[:-1] + (1,))
    at = atol[..., None] if hasattr(atol, "ndim") else atol
    rt = rtol[..., None] if hasattr(rtol, "ndim") else rtol
    return xp.maximum(at, rt * smax)


class Pinv(Function):
    op_name = "linalg_pinv"
    atol: Any
    rtol: Any
    hermitian: bool

    def forward(self, a):
        xp = get_array_module(a)
        if self.hermitian:
            if a.size == 0:
                p = xp.zeros(a.shape, a.dtype)
            else:
                w, v = _converge("linalg.pinv", xp.linalg.eigh, a)
                keep = xp.abs(w) > _cutoff(xp, xp.abs(w), self.atol, self.rtol)
                inv_w = xp.where(keep, 1 / xp.where(keep, w, 1), 0).astype(a.dtype)
                p = (v * inv_w[..., None, :]) @ _mT(v)
        else:
            u, s, vh = _svd_arrays(a, False)
            keep = s > _cutoff(xp, s, self.atol, self.rtol)
            inv_s = xp.where(keep, 1 / xp.where(keep, s, 1), 0).astype(a.dtype)
            p = (_mT(vh) * inv_s[..., None, :]) @ _mT(u)
        self.save_for_backward(a, p)
        return p

    def backward(self, g):
        a, p = self.saved_arrays
        return _pinv_backward(_ArrayOps(a), g, p, a)

    def backward_graph(self, g):
        a_a, p_a = self.saved_arrays
        a, p = graph_input(self, 0, a_a), graph_output(self, p_a)
        return _pinv_backward(_GraphOps(a_a), g, p, a)


def pinv(
    input: Tensor,
    rcond: Any = None,
    hermitian: bool = False,
    *,
    atol: Any = None,
    rtol: Any = None,
) -> Tensor:
    """torch.linalg.pinv: the Moore-Penrose pseudo-inverse through the SVD (the eigen-
    decomposition with hermitian=True), singular values at or below max(atol, rtol * s_max)
    treated as 0 (rtol defaults to eps * max(m, n) when both are None, to 0 when only atol is
    given; ``rcond``, PyTorch's older positional form, is rtol with atol 0). The gradient is
    PyTorch's pinv_backward (exact where the rank is constant)."""
    A = input
    if rcond is not None:
        atol, rtol = 0.0, rcond
    if not isinstance(A, Tensor) or A.ndim < 2 or A.dtype.kind != "f":
        shape = tuple(A.shape) if isinstance(A, Tensor) else type(A).__name__
        dtype = A.dtype if isinstance(A, Tensor) else ""
        raise RuntimeError(
            f"linalg.pinv({dtype}{shape}): expected a tensor with 2 or more dimensions of "
            "float or double types"
        )
    if hermitian:
        _matrix("linalg.pinv", A, square=True)
    at, rt = _tolerance(A, atol, rtol, "linalg.pinv")
    return Pinv.apply(A, atol=at, rtol=rt, hermitian=bool(hermitian))


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """torch.pinverse(input, rcond=1e-15): pinv with rtol=rcond."""
    return pinv(input, atol=0.0, rtol=rcond)


def matrix_rank(
    input: Tensor,
    tol: Any = None,
    hermitian: bool = False,
    *,
    atol: Any = None,
    rtol: Any = None,
) -> Tensor:
    """torch.linalg.matrix_rank: the number of singular values (absolute eigenvalues with
    hermitian=True) above max(atol, rtol * s_max), an int64 tensor; ``tol`` is PyTorch's
    older name for atol."""
    A = _matrix("torch.linalg.matrix_rank", input, name="input")
    if tol is not None:
        atol = tol
    xp = get_array_module(A.array)
    at, rt = _tolerance(A, atol, rtol, "linalg.matrix_rank")
    if hermitian:
        _matrix("torch.linalg.matrix_rank", A, square=True, name="input")
        s = xp.abs(EigvalsH.apply(A.detach(), uplo="L").array)
    else:
        s = SVDVals.apply(A.detach()).array
    count = (s > _cutoff(xp, s, at, rt)).sum(axis=-1)
    return Tensor._wrap(xp.asarray(count, dtype=numpy.int64))


def cond(input: Tensor, p: Any = None) -> Tensor:
    """torch.linalg.cond: the condition number in the p-norm (None/2: s_max / s_min, -2:
    s_min / s_max, else matrix_norm(A, p) * matrix_norm(inv(A), p) for square A)."""
    from gradflow.ops.decompositions import inv
    from gradflow.ops.norms import matrix_norm

    A = input
    if not isinstance(A, Tensor) or A.ndim < 2:
        shape = tuple(A.shape) if isinstance(A, Tensor) else type(A).__name__
        raise RuntimeError(
            f"linalg.cond: The input tensor must have at least 2 dimensions, got {shape}"
        )
    if p is None or p in (2, -2):
        s = svdvals(A)
        smax, smin = s[..., 0], s[..., -1]
        return smin / smax if p == -2 else smax / smin
    if p not in ("fro", "nuc", math.inf, -math.inf, 1, -1):
        raise RuntimeError(
            f"linalg.cond got an invalid norm type: {p}; use None, 2, -2, 'fro', 'nuc', "
            "inf, -inf, 1 or -1"
        )
    A = _matrix("linalg.cond", A, square=True)
    try:
        return matrix_norm(A, p) * matrix_norm(inv(A), p)
    except RuntimeError:  # a singular matrix in the batch: its condition number is inf
        pass
    from gradflow.ops.arithmetic import where

    xp = get_array_module(A.array)
    flat = A.array.reshape((-1,) + A.shape[-2:])
    singular = xp.asarray([_is_singular(m) for m in flat]).reshape(A.shape[:-2])
    eye = xp.eye(A.shape[-1], dtype=A.dtype)
    safe = where(Tensor._wrap(singular[..., None, None]), Tensor._wrap(eye), A)
    value = matrix_norm(A, p) * matrix_norm(inv(safe), p)
    return where(Tensor._wrap(singular), math.inf, value)


def _is_singular(m: Any) -> bool:
    try:
        get_array_module(m).linalg.inv(m)
    except numpy.linalg.LinAlgError:
        return True
    return False


# ---- lstsq ------------------------------------------------------------------------------------

_LSTSQ_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(input: Tensor, b: Tensor, rcond: Any = None, *, driver: Any = None) -> Any:
    """torch.linalg.lstsq: the least-squares solution of A X = B (A (..., m, n), B (..., m, k)
    or (..., m); batches broadcast), as PyTorch's named tuple (solution, residuals, rank,
    singular_values), filled as PyTorch fills them on the cpu: rank for every driver but
    "gels", singular_values for "gelsd"/"gelss", residuals (squared residual norms) for m > n
    with full-rank A and a driver other than "gelsy" (the default). The solution is the
    minimum-norm one, pinv(A) @ B, with its gradient."""
    from gradflow.ops.shape import squeeze, unsqueeze
    from gradflow.return_types import linalg_lstsq

    A, B = _matrix("torch.linalg.lstsq", input), b
    if not isinstance(B, Tensor):
        raise TypeError(f"torch.linalg.lstsq: expected a Tensor as b, got {type(B).__name__}")
    B = _matrix("torch.linalg.lstsq", B, name="B") if B.ndim >= 2 else B
    if not isinstance(B, Tensor) or B.dtype.kind != "f":
        raise RuntimeError("torch.linalg.lstsq: expected B to be a floating point tensor")
    if B.dtype != A.dtype:
        raise RuntimeError(
            f"torch.linalg.lstsq: Expected input and other to have the same dtype, but got "
            f"input's dtype {A.dtype} and other's dtype {B.dtype}"
        )
    driver = "gelsy" if driver is None else driver
    if driver not in _LSTSQ_DRIVERS:
        raise RuntimeError(
            f"torch.linalg.lstsq: parameter `driver` should be one of {_LSTSQ_DRIVERS}"
        )
    vector = B.ndim == A.ndim - 1
    if vector:
        B = unsqueeze(B, -1)
    if B.shape[-2] != A.shape[-2]:
        raise RuntimeError(
            f"torch.linalg.lstsq: input.size(-2) should match other.size(-2), got A "
            f"{tuple(A.shape)} and B {tuple(B.shape)}"
        )
    m, n = A.shape[-2:]
    xp = get_array_module(A.array)
    rtol = numpy.finfo(A.dtype).eps * max(m, n) if rcond is None or rcond < 0 else rcond
    x = pinv(A, atol=0.0, rtol=rtol) @ B
    empty = Tensor._wrap(xp.zeros((0,), A.dtype))
    rank = empty_rank = Tensor._wrap(xp.zeros((0,), numpy.int64))
    s = None
    if driver != "gels":
        s = SVDVals.apply(A.detach())
        count = (s.array > _cutoff(xp, s.array, 0.0, float(rtol))).sum(axis=-1)
        rank = Tensor._wrap(xp.asarray(count, dtype=numpy.int64))
    sv = s if driver in ("gelsd", "gelss") else empty
    residuals = empty
    if m > n and driver != "gelsy" and bool((rank if driver != "gels" else empty_rank).numel()):
        if bool((rank.array == n).all()):
            r = A.detach() @ x.detach() - B.detach()
            residuals = (r * r).sum(-2)
    elif m > n and driver == "gels":
        r = A.detach() @ x.detach() - B.detach()
        residuals = (r * r).sum(-2)
    if vector:
        x = squeeze(x, -1)
        if residuals.numel():
            residuals = squeeze(residuals, -1)
    return linalg_lstsq(x, residuals, rank, sv)


# ---- matrix_power, matrix_exp -----------------------------------------------------------------


def matrix_power(input: Tensor, n: int) -> Tensor:
    """torch.linalg.matrix_power: A^n by repeated squaring (n = 0: the identity, n < 0: inv(A)
    to the power -n), a composition of matmuls (and inv), differentiable to any order."""
    return _matrix_power("linalg.matrix_power", input, n)


def matrix_power_legacy(input: Tensor, n: int) -> Tensor:
    """torch.matrix_power(input, n)."""
    return _matrix_power("linalg.matrix_power", input, n)


def _matrix_power(op: str, A: Any, n: Any) -> Tensor:
    from gradflow.ops.decompositions import inv

    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(A).__name__}")
    if isinstance(n, bool) or not isinstance(n, (int, numpy.integer)):
        raise TypeError(f"{op}: n must be an int, got {type(n).__name__}")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(
            f"{op}: A must be batches of square matrices, but they are "
            + (f"{A.shape[-2]} by {A.shape[-1]} matrices" if A.ndim >= 2 else f"{A.ndim}-d")
        )
    n = int(n)
    if n == 0:  # the identity, connected to A's graph with a zero gradient (as in PyTorch)
        from gradflow.ops.arithmetic import where

        xp = get_array_module(A.array)
        eye = xp.broadcast_to(xp.eye(A.shape[-1], dtype=A.dtype), A.shape)
        eye = Tensor._wrap(xp.ascontiguousarray(eye))
        return where(Tensor._wrap(xp.zeros((), bool)), A, eye) if A.requires_grad else eye
    if n == 1:
        from gradflow.ops.conversion import clone

        return clone(A)
    if n < 0:
        if A.dtype.kind != "f":
            raise RuntimeError(
                f"linalg.inv: Expected a floating point tensor as input. Got {A.dtype}"
            )
        A, n = inv(A), -n
    result = None
    base = A
    while True:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if not n:
            return result
        base = base @ base


_PADE = {
    3: (120.0, 60.0, 12.0, 1.0),
    5: (30240.0, 15120.0, 3360.0, 420.0, 30.0, 1.0),
    7: (17297280.0, 8648640.0, 1995840.0, 277200.0, 25200.0, 1512.0, 56.0, 1.0),
    9: (
        17643225600.0,
        8821612800.0,
        2075673600.0,
        302702400.0,
        30270240.0,
        2162160.0,
        110880.0,
        3960.0,
        90.0,
        1.0,
    ),
    13: (
        64764752532480000.0,
        32382376266240000.0,
        7771770303897600.0,
        1187353796428800.0,
        129060195264000.0,
        10559470521600.0,
        670442572800.0,
        33522128640.0,
        1323241920.0,
        40840800.0,
        960960.0,
        16380.0,
        182.0,
        1.0,
    ),
}
# Higham (2005): the largest 1-norm for which the degree-m Pade approximant is accurate to
# double precision.
_THETA = ((3, 1.495585217958292e-2), (5, 2.539398330063230e-1), (7, 9.504178996162932e-1),
          (9, 2.097847961257068), (13, 5.371920351148152))  # fmt: skip


def _expm(a: Any) -> Any:
    """exp of each matrix of a batch: scaling and squaring with a Pade approximant (Higham
    2005), the degree picked from the batch's largest 1-norm, each matrix scaled by its own
    power of two."""
    xp = get_array_module(a)
    n = a.shape[-1]
    if a.size == 0:
        return a.copy()
    norm = xp.abs(a).sum(axis=-2).max(axis=-1)  # the 1-norm of each matrix
    top = float(norm.max())
    if not math.isfinite(top):
        return xp.full(a.shape, math.nan, a.dtype)
    eye = xp.eye(n, dtype=a.dtype)
    squarings = None
    degree = next((d for d, theta in _THETA if top <= theta), 0)
    if not degree:
        degree = 13
        with numpy.errstate(divide="ignore"):
            s = xp.ceil(xp.log2(xp.maximum(norm / _THETA[-1][1], 1.0)))
        squarings = s.astype(numpy.int64)
        a = a * xp.exp2(-s).astype(a.dtype)[..., None, None]
    b = _PADE[degree]
    a2 = a @ a
    if degree == 13:
        a4 = a2 @ a2
        a6 = a4 @ a2
        u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4
                 + b[3] * a2 + b[1] * eye)  # fmt: skip
        v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2
        v = v + b[0] * eye
    else:
        powers = [eye, a2]
        while len(powers) <= degree // 2:
            powers.append(powers[-1] @ a2)
        u = a @ sum(b[2 * i + 1] * powers[i] for i in range(degree // 2 + 1))
        v = sum(b[2 * i] * powers[i] for i in range(degree // 2 + 1))
    r = xp.linalg.solve(v - u, v + u)
    if squarings is not None:
        most = int(squarings.max())
        for k in range(most):
            sq = r @ r
            if bool((squarings == most).all()):
                r = sq
            else:
                pick = (squarings > k)[..., None, None]
                r = xp.where(pick, sq, r)
    return r


class MatrixExp(Function):
    """exp(A); backward: the top-right block of exp([[A^T, G], [0, A^T]])."""

    op_name = "linalg_matrix_exp"

    def forward(self, a):
        self.save_for_backward(a)
        return _expm(a)

    def backward(self, g):
        (a,) = self.saved_arrays
        xp = get_array_module(a)
        n = a.shape[-1]
        batch = numpy.broadcast_shapes(a.shape[:-2], g.shape[:-2])
        big = xp.zeros(batch + (2 * n, 2 * n), a.dtype)
        at = _mT(a)
        big[..., :n, :n] = at
        big[..., n:, n:] = at
        big[..., :n, n:] = g
        return _expm(big)[..., :n, n:]

    def backward_graph(self, g):
        from gradflow.ops.shape import cat

        (a_a,) = self.saved_arrays
        xp = get_array_module(a_a)
        at = graph_input(self, 0, a_a).transpose(-1, -2)
        zeros = Tensor._wrap(xp.zeros(a_a.shape, a_a.dtype))
        big = cat([cat([at, g], -1), cat([zeros, at], -1)], -2)
        n = a_a.shape[-1]
        return MatrixExp.apply(big)[..., :n, n:]


def matrix_exp(input: Tensor) -> Tensor:
    """torch.linalg.matrix_exp: the matrix exponential of a square matrix (or batch)."""
    return MatrixExp.apply(_matrix("linalg.matrix_exp", input, square=True))


# ---- triangular solves ------------------------------------------------------------------------


def _triangle_mask(xp: Any, n: int, upper: bool, unit: bool, dtype: Any) -> Any:
    """The entries of A a triangular solve reads (1) and ignores (0)."""
    ones = xp.ones((n, n), dtype)
    k = 1 if unit else 0
    return xp.triu(ones, k) if upper else xp.tril(ones, -k)


def _triangle_array(xp: Any, a: Any, upper: bool, unit: bool) -> Any:
    t = xp.triu(a, 1 if unit else 0) if upper else xp.tril(a, -1 if unit else 0)
    if unit:
        n = a.shape[-1]
        t = t + xp.eye(n, dtype=a.dtype)
    return t


def _inv_triangular(xp: Any, t: Any, upper: bool) -> Any:
    if upper:
        return _inv_upper(xp, t)
    return _mT(_inv_upper(xp, _mT(t)))


class TriangularSolve(Function):
    """X = T^-1 B (left) or B T^-1 (right), T the upper/lower triangle of A (unit diagonal
    with unitriangular), through T's inverse by blocks (_inv_upper): batched matmuls, no LU.
    A zero on T's diagonal gives inf/NaN, as LAPACK's trsm does. Backward: gB = T^-T g,
    gA = -gB X^T masked to the triangle read (left; the transposed forms for right)."""

    op_name = "linalg_solve_triangular"
    upper: bool
    left: bool
    unitriangular: bool

    def forward(self, a, b):
        xp = get_array_module(a)
        self.shapes = (a.shape, b.shape)
        t = _triangle_array(xp, a, self.upper, self.unitriangular)
        with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t_inv = _inv_triangular(xp, t, self.upper)
            x = t_inv @ b if self.left else b @ t_inv
        self.save_for_backward(a, t_inv, x if self.needs_input_grad[0] else None)
        return x

    def backward(self, g):
        _, t_inv, x = self.saved_arrays
        xp = get_array_module(g)
        need_a, need_b = self.needs_input_grad
        gb = _mT(t_inv) @ g if self.left else g @ _mT(t_inv)
        ga = None
        if need_a:
            ga = -(gb @ _mT(x)) if self.left else -(_mT(x) @ gb)
            n = ga.shape[-1]
            ga = unbroadcast(ga, self.shapes[0])
            ga = ga * _triangle_mask(xp, n, self.upper, self.unitriangular, ga.dtype)
        return ga, unbroadcast(gb, self.shapes[1]) if need_b else None

    def backward_graph(self, g):
        from gradflow.autograd.differentiable import const
        from gradflow.autograd.differentiable import unbroadcast as unbroadcast_graph

        a_a, t_inv_a, x_a = self.saved_arrays
        xp = get_array_module(t_inv_a)
        need_a, need_b = self.needs_input_grad
        a = graph_input(self, 0, a_a)
        t = _triangle(a, self.upper, self.unitriangular)
        # T^-T g: the same solve on T^T (differentiable in T and in g)
        if self.left:
            gb = TriangularSolve.apply(
                t.mT, g, upper=not self.upper, left=True, unitriangular=False
            )
        else:
            gb = TriangularSolve.apply(
                t.mT, g, upper=not self.upper, left=False, unitriangular=False
            )
        ga = None
        if need_a:
            x = graph_output(self, x_a)
            ga = -(gb @ x.transpose(-1, -2)) if self.left else -(x.transpose(-1, -2) @ gb)
            ga = unbroadcast_graph(ga, self.shapes[0])
            n = self.shapes[0][-1]
            ga = ga * const(_triangle_mask(xp, n, self.upper, self.unitriangular, t_inv_a.dtype))
        return ga, unbroadcast_graph(gb, self.shapes[1]) if need_b else None


def _triangle(A: Tensor, upper: bool, unitriangular: bool) -> Tensor:
    from gradflow.ops.diagonals import tril, triu

    if unitriangular:
        xp = get_array_module(A.array)
        eye = Tensor._wrap(xp.eye(A.shape[-1], dtype=A.dtype))
        return (triu(A, 1) if upper else tril(A, -1)) + eye
    return triu(A) if upper else tril(A)


def solve_triangular(
    A: Tensor, B: Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False
) -> Tensor:
    """torch.linalg.solve_triangular: X with A X = B (left) or X A = B (left=False), reading
    only A's upper (upper=True) or lower triangle, its diagonal taken as ones with
    unitriangular=True. Batches broadcast. Differentiable in A (its triangle) and B."""
    A = _matrix("linalg.solve_triangular", A, square=True)
    B = _matrix("linalg.solve_triangular", B, name="B")
    if A.dtype != B.dtype:
        raise RuntimeError(
            f"linalg.solve_triangular: Expected A and B to have the same dtype, but found A of "
            f"type {A.dtype} and B of type {B.dtype} instead"
        )
    k = A.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != k:
        raise RuntimeError(
            f"linalg.solve_triangular: Incompatible shapes of A and B for the equation "
            f"{'AX = B' if left else 'XA = B'} ({tuple(A.shape)} and {tuple(B.shape)})"
        )
    return TriangularSolve.apply(
        A, B, upper=bool(upper), left=bool(left), unitriangular=bool(unitriangular)
    )


def triangular_solve(
    input: Tensor,
    A: Tensor,
    upper: bool = True,
    transpose: bool = False,
    unitriangular: bool = False,
) -> Any:
    """torch.triangular_solve: (solution, cloned_coefficient) of A X = b (A^T X = b with
    transpose=True)."""
    from gradflow.ops.conversion import clone
    from gradflow.return_types import triangular_solve as result

    b = input
    A = _matrix("triangular_solve", A, square=True)
    if transpose:
        x = solve_triangular(A.mT, b, upper=not upper, unitriangular=unitriangular)
    else:
        x = solve_triangular(A, b, upper=upper, unitriangular=unitriangular)
    return result(x, clone(A))


# ---- LU ---------------------------------------------------------------------------------------


_GETRF: dict = {"functions": None, "why": None}


def _getrf_functions() -> dict | None:
    """{dtype: ctypes ?getrf} from the OpenBLAS NumPy loaded (backend/blas.py finds it; its
    switches, GRADFLOW_CBLAS=0 and blas.disabled(), turn this route off too); None when there
    is none (MKL, Accelerate, no threadpoolctl): then the NumPy route below runs."""
    import ctypes

    from gradflow.backend import blas

    if os.environ.get("GRADFLOW_CBLAS", "1") == "0" or blas._disabled.get():
        return None
    if _GETRF["functions"] is None and _GETRF["why"] is None:
        path, why = blas._openblas_file()
        if path is None:
            _GETRF["why"] = why
            return None
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            _GETRF["why"] = str(exc)
            return None
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
            try:
                found = {
                    (r, numpy.dtype(d)): getattr(lib, f"{prefix}{t}{r}_{suffix}")
                    for r in ("getrf", "trtri")
                    for t, d in (("s", numpy.float32), ("d", numpy.float64))
                }
                config = getattr(lib, f"{prefix}openblas_get_config{suffix}")
            except AttributeError:
                continue
            config.restype = ctypes.c_char_p
            wide = suffix == "64_" or b"USE64BITINT" in (config() or b"")
            for fn in found.values():
                fn.restype = None
                # getrf: m, n, a, lda, ipiv, info; trtri: uplo, diag, n, a, lda, info (pointers)
                fn.argtypes = [ctypes.c_void_p] * 6
            _GETRF["functions"] = {"fns": found, "int": numpy.int64 if wide else numpy.int32}
            break
        else:
            _GETRF["why"] = f"no getrf exported by {path}"
    return _GETRF["functions"]


def _lu_lapack(a: Any) -> tuple | None:
    """LAPACK's getrf on each matrix (column-major copies), or None when that route is off."""
    found = _getrf_functions()
    if found is None or type(a) is not numpy.ndarray or a.dtype not in _FLOATS:
        return None
    fn, itype = found["fns"]["getrf", a.dtype], found["int"]
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    work = numpy.ascontiguousarray(_mT(a)).reshape((-1, n, m))  # each matrix column-major
    count = work.shape[0]
    ipiv = numpy.zeros((count, max(k, 1)), itype)
    dims = numpy.array([m, n, max(m, 1), 0], itype)  # m, n, lda, info
    step = work.strides[0]
    base = work.ctypes.data
    ptr = dims.ctypes.data
    size = dims.itemsize
    for i in range(count):
        fn(ptr, ptr + size, base + i * step, ptr + 2 * size, ipiv[i].ctypes.data, ptr + 3 * size)
    lu = _mT(work).reshape(batch + (m, n))
    piv = ipiv[:, :k].astype(numpy.int32).reshape(batch + (k,))
    return numpy.ascontiguousarray(lu), piv, _perm_from_pivots(numpy, piv, m)


_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def _trtri_upper(r: Any) -> Any | None:
    """The inverses of a batch of upper-triangular matrices by LAPACK's trtri (NumPy arrays,
    when the route is on; else None). A row-major upper R is a column-major lower R^T:
    trtri('L') on it in place leaves R^-1 in row-major order."""
    found = _getrf_functions()
    if found is None or type(r) is not numpy.ndarray or r.dtype not in _FLOATS or not r.size:
        return None
    fn, itype = found["fns"]["trtri", r.dtype], found["int"]
    n = r.shape[-1]
    out = numpy.ascontiguousarray(numpy.triu(r))  # a new array, the other triangle zero
    work = out.reshape((-1, n, n))
    dims = numpy.array([n, max(n, 1), 0], itype)  # n, lda, info
    flags = numpy.frombuffer(b"LN", numpy.uint8).copy()  # uplo "L", diag "N"
    ptr, size, fp = dims.ctypes.data, dims.itemsize, flags.ctypes.data
    step, base = work.strides[0], work.ctypes.data
    for i in range(work.shape[0]):
        fn(fp, fp + 1, ptr, base + i * step, ptr + size, ptr + 2 * size)
    if not dims[2]:
        return out
    return None  # a zero on a diagonal (info > 0): the block route gives its inf/NaN


def _lu_arrays(a: Any) -> tuple:
    """Partial-pivoting LU of each matrix of a batch, LAPACK's getrf result: (LU packed
    (..., m, n), pivots (..., k) int32 1-based, perm (..., m): the rows of P^T A = A[perm]).
    On NumPy arrays, LAPACK's getrf itself (from NumPy's OpenBLAS); otherwise (CuPy, another
    BLAS) recursive by column halves (the trailing updates batched matmuls, each column a few
    vectorized steps): the same factors up to rounding. A column of zeros leaves a zero pivot,
    as getrf does."""
    if a.size:
        done = _lu_lapack(a)
        if done is not None:
            return done
    xp = get_array_module(a)
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    lu = xp.array(a, copy=True, order="C")
    count = math.prod(batch)
    flat = lu.reshape((count, m, n))
    piv = xp.zeros((count, k), numpy.int32)
    perm = xp.broadcast_to(xp.arange(m), (count, m)).copy()
    rows = xp.arange(count)

    def column(j: int, stop: int) -> None:
        p = xp.argmax(xp.abs(flat[:, j:, j]), axis=1) + j
        piv[:, j] = p + 1
        top = flat[rows, j].copy()
        flat[rows, j] = flat[rows, p]
        flat[rows, p] = top
        top_perm = perm[rows, j].copy()
        perm[rows, j] = perm[rows, p]
        perm[rows, p] = top_perm
        pivot = flat[:, j, j]
        safe = xp.where(pivot == 0, 1, pivot)
        flat[:, j + 1 :, j] /= safe[:, None]
        if stop > j + 1:
            below = flat[:, j + 1 :, j : j + 1]
            flat[:, j + 1 :, j + 1 : stop] -= below * flat[:, j : j + 1, j + 1 : stop]

    def unit_lower_inv(j0: int, j1: int) -> Any:
        block = flat[:, j0:j1, j0:j1]
        t = xp.tril(block, -1) + xp.eye(j1 - j0, dtype=block.dtype)
        return _inv_triangular(xp, t, False)

    def factor(j0: int, j1: int) -> None:
        if j1 - j0 <= 8:
            for j in range(j0, j1):
                column(j, j1)
            return
        h = (j0 + j1) // 2
        factor(j0, h)
        u12 = unit_lower_inv(j0, h) @ flat[:, j0:h, h:j1]
        flat[:, j0:h, h:j1] = u12
        flat[:, h:, h:j1] -= flat[:, h:, j0:h] @ u12
        factor(h, j1)

    if count and k:
        with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
            factor(0, k)
            if n > k:  # wide: U's columns past the square part
                flat[:, :k, k:] = unit_lower_inv(0, k) @ flat[:, :k, k:]
    return lu, piv.reshape(batch + (k,)), perm.reshape(batch + (m,))


def _permutation_matrix(xp: Any, perm: Any, dtype: Any) -> Any:
    """P with A = P L U from perm (P^T A = A[perm]): P[perm[i], i] = 1."""
    m = perm.shape[-1]
    eye = xp.eye(m, dtype=dtype)
    return xp.ascontiguousarray(_mT(eye[perm]))


def _unpack_arrays(xp: Any, lu: Any) -> tuple:
    m, n = lu.shape[-2:]
    k = min(m, n)
    low = xp.tril(lu[..., :, :k], -1) + xp.eye(m, k, dtype=lu.dtype)
    up = xp.triu(lu[..., :k, :])
    return low, up


class LU(Function):
    """(P, L, U, pivots) of a partial-pivoting LU; backward: PyTorch's linalg_lu_backward
    (square; tall and wide through their square block)."""

    op_name = "linalg_lu"

    def forward(self, a):
        xp = get_array_module(a)
        lu, piv, perm = _lu_arrays(a)
        low, up = _unpack_arrays(xp, lu)
        p = _permutation_matrix(xp, perm, a.dtype)
        self.save_for_backward(p, low, up)
        return p, low, up, piv

    def backward(self, gp, gl, gu, gpiv):
        p, low, up = self.saved_arrays
        return _lu_backward(_ArrayOps(low), p, low, up, gl, gu)

    def backward_graph(self, gp, gl, gu, gpiv):
        p_a, l_a, u_a = self.saved_arrays
        o = _GraphOps(l_a)
        low, up = graph_output(self, l_a, 1), graph_output(self, u_a, 2)
        return _lu_backward(o, o.const(p_a), low, up, gl, gu)


def _solve_tri(o: Any, a: Any, b: Any, upper: bool, left: bool = True, unit: bool = False) -> Any:
    if isinstance(o, _GraphOps):
        return TriangularSolve.apply(a, b, upper=upper, left=left, unitriangular=unit)
    t_inv = _inv_triangular(o.xp, _triangle_array(o.xp, a, upper, unit), upper)
    return t_inv @ b if left else b @ t_inv


def _lu_square_backward(o: Any, low: Any, up: Any, gl: Any, gu: Any) -> Any:
    """L^-T [tril(L^T gL, -1) + triu(gU U^T)] U^-T."""
    inner = o.tril(o.mT(low) @ gl, -1) + o.triu(gu @ o.mT(up))
    x = _solve_tri(o, o.mT(low), inner, upper=True, unit=True)
    return _solve_tri(o, o.mT(up), x, upper=False, left=False)


def _lu_backward(o: Any, p: Any, low: Any, up: Any, gl: Any, gu: Any) -> Any:
    m, n = low.shape[-2], up.shape[-1]
    k = min(m, n)
    with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if m == n:
            return p @ _lu_square_backward(o, low, up, gl, gu)
        if m < n:  # A = P L [U1 | U2]: U2 = L^-1 P^T A2
            u1, u2 = o.narrow(up, -1, 0, k), o.narrow(up, -1, k, n - k)
            gu1, gu2 = o.narrow(gu, -1, 0, k), o.narrow(gu, -1, k, n - k)
            g2 = _solve_tri(o, o.mT(low), gu2, upper=True, unit=True)  # L^-T gU2
            g1 = _lu_square_backward(o, low, u1, gl - g2 @ o.mT(u2), gu1)
            return p @ _cat(o, [g1, g2], -1)
        # m > n: A = P [L1; L2] U: L2 = (P^T A)2 U^-1
        l1, l2 = o.narrow(low, -2, 0, k), o.narrow(low, -2, k, m - k)
        gl1, gl2 = o.narrow(gl, -2, 0, k), o.narrow(gl, -2, k, m - k)
        g2 = _solve_tri(o, o.mT(up), gl2, upper=False, left=False)  # gL2 U^-T
        g1 = _lu_square_backward(o, l1, up, gl1, gu - o.mT(l2) @ g2)
        return p @ _cat(o, [g1, g2], -2)


def _cat(o: Any, parts: list, dim: int) -> Any:
    if isinstance(o, _GraphOps):
        from gradflow.ops.shape import cat

        return cat(parts, dim)
    return o.xp.concatenate(parts, dim)


def _check_pivot(op: str, pivot: Any) -> None:
    if not pivot:
        raise RuntimeError(
            f"{op}: LU without pivoting is not implemented on the CPU; use pivot=True"
        )


def lu(A: Tensor, *, pivot: bool = True) -> Any:
    """torch.linalg.lu: (P, L, U) with A = P L U, L (m, k) unit lower, U (k, n) upper
    (k = min(m, n)), P a permutation matrix; partial pivoting as LAPACK's getrf. The gradient
    is PyTorch's (none reaches P)."""
    from gradflow.return_types import linalg_lu

    _check_pivot("linalg.lu", pivot)
    p, low, up, _ = LU.apply(_matrix("linalg.lu", A))
    return linalg_lu(p, low, up)


def lu_factor(A: Tensor, *, pivot: bool = True) -> Any:
    """torch.linalg.lu_factor: (LU, pivots), L and U packed in one matrix (L's unit diagonal
    implied) and the int32 row interchanges (1-based), as LAPACK's getrf gives them. A zero
    pivot (a singular square matrix) raises a RuntimeError, as in PyTorch (linalg.lu does
    not). Differentiable through L and U."""
    from gradflow.return_types import linalg_lu_factor

    _check_pivot("linalg.lu_factor", pivot)
    packed, piv, zero = _lu_factor_parts(_matrix("linalg.lu_factor", A))
    if zero.size and bool(zero.any()):
        k = zero.shape[-1]
        first = Tensor._wrap(zero.reshape((-1, k))).cpu().numpy()  # the first singular matrix's
        i = int(numpy.argmax(first[first.any(axis=1)][0]))
        raise RuntimeError(
            f"torch.linalg.lu_factor: U[{i + 1},{i + 1}] is zero and using it on lu_solve would "
            "result in a division by zero. If you still want to perform the factorization, "
            "consider calling linalg.lu(A, pivot)"
        )
    return linalg_lu_factor(packed, piv)


def _lu_factor_parts(A: Tensor) -> tuple:
    """(LU packed, pivots, where U's diagonal is 0 (an array))."""
    _, low, up, piv = LU.apply(A)
    m, n = A.shape[-2:]
    zero = get_array_module(up.array).diagonal(up.array, 0, -2, -1) == 0
    return _pack(low, up, m, n, min(m, n)), piv, zero


def lu_legacy(A: Tensor, pivot: bool = True, get_infos: bool = False) -> tuple:
    """torch.lu: (LU, pivots) as linalg.lu_factor (raising for a zero pivot), or with
    get_infos=True (LU, pivots, infos) without raising, infos (int32, one per matrix) the
    1-based index of U's first zero diagonal entry, 0 where there is none."""
    if not get_infos:
        return tuple(lu_factor(A, pivot=pivot))
    _check_pivot("lu", pivot)
    packed, piv, zero = _lu_factor_parts(_matrix("lu", A))
    xp = get_array_module(zero)
    if zero.shape[-1]:
        info = xp.where(zero.any(axis=-1), xp.argmax(zero, axis=-1) + 1, 0)
    else:
        info = xp.zeros(zero.shape[:-1], numpy.int32)
    return packed, piv, Tensor._wrap(info.astype(numpy.int32))


def _pack(low: Tensor, up: Tensor, m: int, n: int, k: int) -> Tensor:
    """L's strict lower part and U in one (m, n) matrix."""
    from gradflow.ops.diagonals import tril
    from gradflow.ops.padding import pad

    strict = tril(low, -1)
    if n > k:
        strict = pad(strict, (0, n - k))
    upper = pad(up, (0, 0, 0, m - k)) if m > k else up
    return strict + upper


def lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True, adjoint: bool = False):
    """torch.linalg.lu_solve: X with A X = B (left) or X A = B (left=False), A^T in A's place
    with adjoint=True, from lu_factor's (LU, pivots). Batches broadcast. Differentiable in LU
    and B (a composition of triangular solves)."""
    LU = _matrix("linalg.lu_solve", LU, square=True, name="LU")
    B = _matrix("linalg.lu_solve", B, name="B")
    if not isinstance(pivots, Tensor) or pivots.dtype.kind not in "iu":
        raise TypeError("linalg.lu_solve: pivots must be an integer Tensor (lu_factor's pivots)")
    n = LU.shape[-1]
    if tuple(pivots.shape) != tuple(LU.shape[:-1]):
        raise RuntimeError(
            f"linalg.lu_solve: Expected pivots of shape {tuple(LU.shape[:-1])} (LU's batch and "
            f"size), got {tuple(pivots.shape)}"
        )
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise RuntimeError(
            f"linalg.lu_solve: Incompatible shapes of A and B for the equation "
            f"{'AX = B' if left else 'XA = B'} ({tuple(LU.shape)} and {tuple(B.shape)})"
        )
    if B.dtype != LU.dtype:
        raise RuntimeError(
            f"linalg.lu_solve: Expected LU and B to have the same dtype, but got {LU.dtype} "
            f"and {B.dtype}"
        )
    xp = get_array_module(LU.array)
    p = Tensor._wrap(_permutation_matrix(xp, _perm_from_pivots(xp, pivots.array, n), LU.dtype))

    def tri(t: Tensor, x: Tensor, upper: bool, unit: bool, side: bool) -> Tensor:
        return TriangularSolve.apply(t, x, upper=upper, left=side, unitriangular=unit)

    if left and not adjoint:  # P L U X = B
        return tri(LU, tri(LU, p.mT @ B, False, True, True), True, False, True)
    if left:  # U^T L^T P^T X = B
        return p @ tri(LU.mT, tri(LU.mT, B, False, False, True), True, True, True)
    if not adjoint:  # X P L U = B
        return tri(LU, tri(LU, B, True, False, False), False, True, False) @ p.mT
    # X U^T L^T P^T = B
    return tri(LU.mT, tri(LU.mT, B @ p, True, True, False), False, False, False)


def _perm_from_pivots(xp: Any, piv: Any, m: int) -> Any:
    """The row order perm (P^T A = A[perm]) from getrf's 1-based interchanges: vectorized over
    the batch (one step per pivot), or per matrix in Python when the batch is the smaller."""
    batch = piv.shape[:-1]
    count = math.prod(batch)
    flat = piv.reshape((count, piv.shape[-1])).astype(numpy.int64) - 1
    if xp is numpy and count * 4 < flat.shape[1]:
        out = numpy.empty((count, m), numpy.int64)
        for i, swaps in enumerate(flat.tolist()):
            order = list(range(m))
            for j, p in enumerate(swaps):
                order[j], order[p] = order[p], order[j]
            out[i] = order
        return out.reshape(batch + (m,))
    perm = xp.broadcast_to(xp.arange(m), (count, m)).copy()
    rows = xp.arange(count)
    for j in range(flat.shape[1]):
        p = flat[:, j]
        top = perm[rows, j].copy()
        perm[rows, j] = perm[rows, p]
        perm[rows, p] = top
    return perm.reshape(batch + (m,))


def lu_solve_legacy(input: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:
    """torch.lu_solve(b, LU_data, LU_pivots): linalg.lu_solve(LU_data, LU_pivots, b)."""
    return lu_solve(LU_data, LU_pivots, input)


def lu_unpack(
    LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True, unpack_pivots: bool = True
) -> Any:
    """torch.lu_unpack: (P, L, U) from lu_factor's (LU, pivots); empty tensors for the parts
    not unpacked. Differentiable in LU_data."""
    from gradflow.ops.diagonals import tril, triu
    from gradflow.return_types import lu_unpack as result

    LU_data = _matrix("lu_unpack", LU_data, name="LU_data")
    xp = get_array_module(LU_data.array)
    m, n = LU_data.shape[-2:]
    k = min(m, n)
    empty = Tensor._wrap(xp.zeros((0,), LU_data.dtype))
    low = up = empty
    if unpack_data:
        eye = Tensor._wrap(xp.eye(m, k, dtype=LU_data.dtype))
        low = tril(LU_data[..., :, :k], -1) + eye
        up = triu(LU_data[..., :k, :])
    p = empty
    if unpack_pivots:
        perm = _perm_from_pivots(xp, LU_pivots.array, m)
        p = Tensor._wrap(_permutation_matrix(xp, perm, LU_data.dtype))
    return result(p, low, up)
