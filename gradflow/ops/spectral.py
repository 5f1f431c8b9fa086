"""Decompositions with gradients: qr, eigh/eigvalsh, svd/svdvals, and what is built on their
results: pinv, matrix_rank, cond, lstsq. Also the shared machinery of the linear-algebra
backward formulas (``_ArrayOps``, ``_GraphOps``) and the argument checks (``_matrix``), which
ops/triangular.py (triangular solves, LU) and ops/matrix_functions.py (matrix_power,
matrix_exp) import.

qr, eigh and svd are one call into NumPy's or CuPy's batched linalg (they broadcast over
leading dims). Each backward is PyTorch's formula (FunctionsManual.cpp: linalg_qr_backward,
linalg_eig_backward's Hermitian case, svd_backward, pinv_backward), written once against a
small set of operations (``_ArrayOps`` on raw arrays for the fast first-order backward,
``_GraphOps`` on gradflow Tensors for ``backward_graph``), so double backward comes from the
same code. cond and lstsq (pinv(A) @ B) are compositions of differentiable ops. QR's backward
takes R's inverse from ops/triangular.py (LAPACK's trtri, else by 2x2 blocks; no LU).

Gauge: eigenvectors and singular vectors are defined up to sign; their gradients divide by
the gaps between eigenvalues (squared singular values): inf/NaN for repeated ones when a
vector output gets a gradient, as in PyTorch; a vector output with none (zeros here, undefined
in PyTorch) adds nothing (``gap_div``). eigvalsh and svdvals have their own nodes.

Errors as PyTorch's: fewer than 2 dims, non-square where square is needed, integer dtypes
(RuntimeError naming the dtype); NaN/inf into eigh/svd raise on cpu (NumPy's LinAlgError as
a RuntimeError; CuPy gives NaN without a host sync).

Memory: qr keeps Q and R; eigh the eigenvalues and eigenvectors; svd U, S, Vh; pinv its input
and output.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import graph_input, graph_output
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module, lapack
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
    from gradflow.ops.triangular import _inv_upper

    if isinstance(o, _GraphOps):
        return o.mT(o.solve(r, o.mT(b)))
    return b @ _mT(_inv_upper(o.xp, r))


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


# numpy.linalg computes float32 in float64; backend/lapack.py runs float32 LAPACK on NumPy
# arrays (about 1.5x faster at (16, 128, 128)) and answers None where it can't: then NumPy's.


def _qr_arrays(xp: Any, a: Any, complete: bool) -> tuple:
    if xp is numpy:
        done = lapack.qr(a, complete)
        if done is not None:
            return done
    return xp.linalg.qr(a, mode="complete" if complete else "reduced")


def _eigh_arrays(xp: Any, a: Any, uplo: str, vectors: bool = True) -> Any:
    if xp is numpy:
        done = lapack.eigh(a, uplo == "L", vectors)
        if done is not None:
            return done if vectors else done[0]
    if vectors:
        return xp.linalg.eigh(a, UPLO=uplo)
    return xp.linalg.eigvalsh(a, UPLO=uplo)


def _svd_lapack(xp: Any, a: Any, full_matrices: bool, compute_uv: bool = True) -> Any:
    if xp is numpy:
        done = lapack.svd(a, full_matrices, compute_uv)
        if done is not None:
            return done if compute_uv else done[1]
    return xp.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)


# ---- qr ---------------------------------------------------------------------------------------


class QR(Function):
    op_name = "linalg_qr"
    mode: str

    def forward(self, a):
        xp = get_array_module(a)
        if a.size == 0:
            q, r = _empty_qr(xp, a, self.mode)
        else:
            q, r = _qr_arrays(xp, a, self.mode == "complete")
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
            w, v = _converge("linalg.eigh", lambda x: _eigh_arrays(xp, x, self.uplo), a)
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
            return _converge("linalg.eigh", lambda x: _eigh_arrays(xp, x, self.uplo, False), a)
        w, v = _converge("linalg.eigh", lambda x: _eigh_arrays(xp, x, self.uplo), a)
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
    return _converge("linalg.svd", lambda x: _svd_lapack(xp, x, full_matrices), a)


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
            return _converge("linalg.svd", lambda x: _svd_lapack(xp, x, False, False), a)
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
                w, v = _converge("linalg.pinv", lambda x: _eigh_arrays(xp, x, "L"), a)
                inv_w = self._inverse_above_cutoff(xp, w, xp.abs(w), a.dtype)
                p = (v * inv_w[..., None, :]) @ _mT(v)
        else:
            u, s, vh = _svd_arrays(a, False)
            inv_s = self._inverse_above_cutoff(xp, s, s, a.dtype)
            p = (_mT(vh) * inv_s[..., None, :]) @ _mT(u)
        self.save_for_backward(a, p)
        return p

    def _inverse_above_cutoff(self, xp: Any, values: Any, size: Any, dtype: Any) -> Any:
        """1 / values where size > max(atol, rtol * max(size)), else 0 (dropped)."""
        keep = size > _cutoff(xp, size, self.atol, self.rtol)
        return xp.where(keep, 1 / xp.where(keep, values, 1), 0).astype(dtype)

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
