"""float32 LAPACK from NumPy's own OpenBLAS: QR, the symmetric eigendecomposition, the SVD, LU
(inv, det, slogdet, solve) and Cholesky in single precision, which numpy.linalg does not do.

numpy.linalg computes every float32 decomposition in float64 and rounds the result back: on
one core a batch of 16 (128, 128) float32 matrices took as long as float64 (qr 13 against 12
ms, eigh 20 against 18, svd 34 against 34), where torch's float32 LAPACK takes about half.
The OpenBLAS NumPy loaded (found as backend/blas.py finds it) exports LAPACK's Fortran
routines; called through ctypes on each matrix of a batch they run in float32:

- ``qr(a, complete)``: sgeqrf then sorgqr on a column-major copy;
- ``eigh(a, lower, vectors)``: ssyevd, which reads the row-major matrix as its transpose (the
  same matrix: it is symmetric), so the triangle asked for is LAPACK's other one;
- ``svd(a, full, vectors)``: sgesdd on the row-major matrix read as its transpose A^T =
  V S U^T, whose column-major U and V^T are the row-major Vh and U of A: no copies;
- ``inv``, ``det``, ``slogdet``, ``solve``: sgetrf on the row-major matrix read as A^T (the
  determinant is the same; getri then leaves (A^T)^-1 = (A^-1)^T column-major, which is A^-1
  row-major; getrs with trans='T' solves A X = B);
- ``cholesky(a)``: spotrf('U') on the row-major symmetric matrix read as its transpose: the
  column-major U with A = U^T U is the row-major lower L.

Each returns None (and the caller takes numpy.linalg) where this route can't answer the same
way: not float32, not a NumPy array, a non-finite value (numpy.linalg raises or returns NaN by
its own rules), LAPACK reporting a failure, no OpenBLAS, GRADFLOW_CBLAS=0 or blas.disabled().
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy

from gradflow.backend import blas

_F32 = numpy.dtype(numpy.float32)
# The smallest matrix side taken: each matrix costs a few ctypes calls of about 4 us, which
# numpy.linalg's batched loop in C does not pay; its float64 arithmetic costs more from here
# (batches of (n, n) float32: inv 2.7 against 3.1 ms at n = 32, det and qr even at 64, qr
# 5.7 against 8.6 ms at 128; at 16, det 1.7 against 0.5).
MIN_SIDE = 64
# the routines and how many arguments each takes, every one a pointer (Fortran)
# (dgetrf and the trtri pair serve ops/triangular.py, in both dtypes)
_ROUTINES = {"sgeqrf": 8, "sorgqr": 9, "ssyevd": 11, "sgesdd": 14, "sgetrf": 6, "sgetri": 7,
             "sgetrs": 9, "spotrf": 5, "dgetrf": 6, "strtri": 6, "dtrtri": 6}  # fmt: skip
_loaded: dict = {"functions": None, "int": None, "why": None}


def _load() -> dict | None:
    """{name: ctypes function} of the LAPACK routines, looked up once; None when off."""
    if os.environ.get("GRADFLOW_CBLAS", "1") == "0" or blas._disabled.get():
        return None
    if _loaded["functions"] is None and _loaded["why"] is None:
        path, why = blas._openblas_file()
        if path is None:
            _loaded["why"] = why
            return None
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            _loaded["why"] = str(exc)
            return None
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
            try:
                found = {r: getattr(lib, f"{prefix}{r}_{suffix}") for r in _ROUTINES}
                config = getattr(lib, f"{prefix}openblas_get_config{suffix}")
            except AttributeError:
                continue
            config.restype = ctypes.c_char_p
            wide = suffix == "64_" or b"USE64BITINT" in (config() or b"")
            for name, fn in found.items():
                fn.restype = None
                fn.argtypes = [ctypes.c_void_p] * _ROUTINES[name]
            _loaded["functions"], _loaded["int"] = found, numpy.int64 if wide else numpy.int32
            break
        else:
            _loaded["why"] = f"no LAPACK exported by {path}"
    return _loaded["functions"]


def routines() -> tuple[dict, Any] | None:
    """({name: ctypes function}, the integer dtype LAPACK takes), or None when the route is
    off: for callers that pass their own arguments (ops/triangular.py's getrf and trtri)."""
    fns = _load()
    return None if fns is None else (fns, _loaded["int"])


def _usable(a: Any) -> bool:
    return (
        type(a) is numpy.ndarray
        and a.dtype == _F32
        and a.ndim >= 2
        and a.size > 0
        and min(a.shape[-2:]) >= MIN_SIDE
        and bool(numpy.isfinite(a).all())
    )


class _Args:
    """Integer and character arguments passed by pointer, kept alive for the calls."""

    def __init__(self, itype: Any) -> None:
        self.itype = itype
        self.keep: list = []

    def int(self, value: int) -> int:
        box = numpy.array([value], dtype=self.itype)
        self.keep.append(box)
        return box.ctypes.data

    def char(self, value: str) -> int:
        box = ctypes.create_string_buffer(value.encode())
        self.keep.append(box)
        return ctypes.addressof(box)


def _lwork(work: numpy.ndarray) -> int:
    return max(1, int(work[0]))


def qr(a: Any, complete: bool) -> tuple[Any, Any] | None:
    """(Q, R) of every matrix of a [..., m, n] float32 array, reduced or complete."""
    fns = _load()
    if fns is None or not _usable(a):
        return None
    m, n = a.shape[-2:]
    k = min(m, n)
    qcols = m if complete else k
    batch = a.shape[:-2]
    mats = a.reshape(-1, m, n)
    count = mats.shape[0]
    # column-major copies with room for Q's columns: [count, max(n, qcols), m] row-major
    width = max(n, qcols)
    work_a = numpy.zeros((count, width, m), dtype=_F32)
    work_a[:, :n] = mats.transpose(0, 2, 1)
    tau = numpy.empty((count, max(k, 1)), dtype=_F32)
    args = _Args(_loaded["int"])
    pm, pn, pk, pq, plda = args.int(m), args.int(n), args.int(k), args.int(qcols), args.int(m)
    info = numpy.zeros(1, dtype=_loaded["int"])
    query = numpy.zeros(1, dtype=_F32)
    fns["sgeqrf"](pm, pn, work_a[0].ctypes.data, plda, tau[0].ctypes.data, query.ctypes.data,
                  args.int(-1), info.ctypes.data)  # fmt: skip
    lwork = _lwork(query)
    fns["sorgqr"](pm, pq, pk, work_a[0].ctypes.data, plda, tau[0].ctypes.data,
                  query.ctypes.data, args.int(-1), info.ctypes.data)  # fmt: skip
    lwork = max(lwork, _lwork(query))
    work = numpy.empty(lwork, dtype=_F32)
    plwork = args.int(lwork)
    r = numpy.empty((count, k if not complete else m, n), dtype=_F32)
    for i in range(count):
        base = work_a[i].ctypes.data
        fns["sgeqrf"](pm, pn, base, plda, tau[i].ctypes.data, work.ctypes.data, plwork,
                      info.ctypes.data)  # fmt: skip
        if info[0] != 0:
            return None
        r[i] = numpy.triu(work_a[i, :n, : r.shape[1]].T)
        fns["sorgqr"](pm, pq, pk, base, plda, tau[i].ctypes.data, work.ctypes.data, plwork,
                      info.ctypes.data)  # fmt: skip
        if info[0] != 0:
            return None
    q = blas.ascontiguous(work_a[:, :qcols].transpose(0, 2, 1))
    return q.reshape(batch + (m, qcols)), r.reshape(batch + r.shape[1:])


def eigh(a: Any, lower: bool, vectors: bool) -> tuple[Any, Any] | None:
    """(eigenvalues ascending [..., n], eigenvectors as columns [..., n, n] or None) of every
    symmetric matrix of a [..., n, n] float32 array, from its lower (or upper) triangle."""
    fns = _load()
    if fns is None or not _usable(a):
        return None
    n = a.shape[-1]
    batch = a.shape[:-2]
    work_a = numpy.array(a.reshape(-1, n, n), dtype=_F32, order="C", copy=True)
    count = work_a.shape[0]
    w = numpy.empty((count, n), dtype=_F32)
    args = _Args(_loaded["int"])
    jobz, uplo = args.char("V" if vectors else "N"), args.char("U" if lower else "L")
    pn = args.int(n)
    info = numpy.zeros(1, dtype=_loaded["int"])
    query = numpy.zeros(1, dtype=_F32)
    iquery = numpy.zeros(1, dtype=_loaded["int"])
    fns["ssyevd"](jobz, uplo, pn, work_a[0].ctypes.data, pn, w[0].ctypes.data, query.ctypes.data,
                  args.int(-1), iquery.ctypes.data, args.int(-1), info.ctypes.data)  # fmt: skip
    lwork, liwork = _lwork(query), max(1, int(iquery[0]))
    work = numpy.empty(lwork, dtype=_F32)
    iwork = numpy.empty(liwork, dtype=_loaded["int"])
    plwork, pliwork = args.int(lwork), args.int(liwork)
    for i in range(count):
        fns["ssyevd"](jobz, uplo, pn, work_a[i].ctypes.data, pn, w[i].ctypes.data,
                      work.ctypes.data, plwork, iwork.ctypes.data, pliwork,
                      info.ctypes.data)  # fmt: skip
        if info[0] != 0:
            return None
    v = None
    if vectors:  # column-major eigenvectors: the row-major buffer holds them as rows
        v = blas.ascontiguous(work_a.transpose(0, 2, 1)).reshape(batch + (n, n))
    return w.reshape(batch + (n,)), v


def svd(a: Any, full: bool, vectors: bool) -> tuple[Any, Any, Any] | None:
    """(U, S, Vh) of every matrix of a [..., m, n] float32 array (U and Vh None without
    vectors), full or reduced, singular values descending."""
    fns = _load()
    if fns is None or not _usable(a):
        return None
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    # the row-major A is the column-major B = A^T [n, m]: B = U_B S V_B^T, A = V_B S U_B^T
    work_a = numpy.array(a.reshape(-1, m, n), dtype=_F32, order="C", copy=True)
    count = work_a.shape[0]
    s = numpy.empty((count, k), dtype=_F32)
    bu_cols = n if full else k  # U_B [n, bu_cols] column-major: Vh of A, [bu_cols, n] row-major
    bvt_rows = m if full else k  # V_B^T [bvt_rows, m] column-major: U of A, [m, bvt_rows]
    vh = numpy.empty((count, bu_cols, n), dtype=_F32) if vectors else None
    u = numpy.empty((count, m, bvt_rows), dtype=_F32) if vectors else None
    dummy = numpy.empty(1, dtype=_F32)
    args = _Args(_loaded["int"])
    jobz = args.char(("A" if full else "S") if vectors else "N")
    pm, pn = args.int(n), args.int(m)  # B's rows and columns
    pldu, pldvt = args.int(n), args.int(bvt_rows if vectors else 1)
    info = numpy.zeros(1, dtype=_loaded["int"])
    iwork = numpy.empty(8 * k, dtype=_loaded["int"])
    query = numpy.zeros(1, dtype=_F32)

    def call(i: int, work: Any, lwork: int) -> None:
        fns["sgesdd"](jobz, pm, pn, work_a[i].ctypes.data, pm, s[i].ctypes.data,
                      (vh[i] if vectors else dummy).ctypes.data, pldu,
                      (u[i] if vectors else dummy).ctypes.data, pldvt, work.ctypes.data,
                      args.int(lwork), iwork.ctypes.data, info.ctypes.data)  # fmt: skip

    call(0, query, -1)
    work = numpy.empty(_lwork(query), dtype=_F32)
    for i in range(count):
        call(i, work, work.shape[0])
        if info[0] != 0:
            return None
    s = s.reshape(batch + (k,))
    if not vectors:
        return None, s, None
    return u.reshape(batch + u.shape[1:]), s, vh.reshape(batch + vh.shape[1:])


def _square_batch(a: Any) -> tuple[Any, int, tuple]:
    """a [..., n, n] as a C-contiguous float32 copy [count, n, n], n and the batch shape."""
    n = a.shape[-1]
    return numpy.array(a.reshape(-1, n, n), dtype=_F32, order="C", copy=True), n, a.shape[:-2]


def _getrf(work: Any, n: int, fns: dict, args: _Args) -> Any | None:
    """getrf on each [n, n] of work in place (each read as its transpose); the pivots
    [count, n], or None when a matrix is exactly singular (info > 0) or LAPACK failed."""
    ipiv = numpy.empty((work.shape[0], max(n, 1)), dtype=_loaded["int"])
    pn = args.int(n)
    info = numpy.zeros(1, dtype=_loaded["int"])
    for i in range(work.shape[0]):
        fns["sgetrf"](pn, pn, work[i].ctypes.data, pn, ipiv[i].ctypes.data, info.ctypes.data)
        if info[0] != 0:
            return None
    return ipiv


def _swaps(ipiv: Any) -> Any:
    """(-1)^(the row exchanges) of getrf's 1-based pivots, per matrix."""
    rows = numpy.arange(1, ipiv.shape[1] + 1, dtype=ipiv.dtype)
    odd = (ipiv != rows).sum(axis=1) % 2
    return numpy.where(odd, -1, 1).astype(_F32)


def inv(a: Any) -> Any | None:
    """A^-1 of every matrix of a [..., n, n] float32 array (None when one is singular)."""
    fns = _load()
    if fns is None or not _usable(a):
        return None
    work, n, batch = _square_batch(a)
    args = _Args(_loaded["int"])
    ipiv = _getrf(work, n, fns, args)
    if ipiv is None:
        return None
    pn = args.int(n)
    info = numpy.zeros(1, dtype=_loaded["int"])
    query = numpy.zeros(1, dtype=_F32)
    fns["sgetri"](pn, work[0].ctypes.data, pn, ipiv[0].ctypes.data, query.ctypes.data,
                  args.int(-1), info.ctypes.data)  # fmt: skip
    scratch = numpy.empty(_lwork(query), dtype=_F32)
    plwork = args.int(scratch.shape[0])
    for i in range(work.shape[0]):
        fns["sgetri"](pn, work[i].ctypes.data, pn, ipiv[i].ctypes.data, scratch.ctypes.data,
                      plwork, info.ctypes.data)  # fmt: skip
        if info[0] != 0:
            return None
    return work.reshape(batch + (n, n))


def slogdet(a: Any) -> tuple[Any, Any] | None:
    """(sign, log|det|) of every matrix of a [..., n, n] float32 array; a singular matrix
    gives (0, -inf), as numpy.linalg.slogdet."""
    fns = _load()
    if fns is None or not _usable(a):
        return None
    work, n, batch = _square_batch(a)
    args = _Args(_loaded["int"])
    ipiv = numpy.empty((work.shape[0], max(n, 1)), dtype=_loaded["int"])
    pn = args.int(n)
    info = numpy.zeros(1, dtype=_loaded["int"])
    for i in range(work.shape[0]):
        fns["sgetrf"](pn, pn, work[i].ctypes.data, pn, ipiv[i].ctypes.data, info.ctypes.data)
        if info[0] < 0:
            return None  # info > 0: an exact zero on U's diagonal, det 0 below
    diag = numpy.diagonal(work, 0, -2, -1)
    with numpy.errstate(divide="ignore"):
        logabs = numpy.log(numpy.abs(diag)).astype(numpy.float64).sum(axis=-1)
    sign = _swaps(ipiv) * numpy.sign(diag).prod(axis=-1)
    logabs = numpy.where(sign == 0, -numpy.inf, logabs).astype(_F32)
    return sign.reshape(batch), logabs.reshape(batch)


def det(a: Any) -> Any | None:
    """det of every matrix of a [..., n, n] float32 array (sign * exp(log|det|) in float32,
    overflowing to inf as torch's float32 det does)."""
    done = slogdet(a)
    if done is None:
        return None
    sign, logabs = done
    with numpy.errstate(over="ignore"):
        return (sign * numpy.exp(logabs.astype(numpy.float64))).astype(_F32)


def lu_factor(a: Any) -> tuple[Any, Any] | None:
    """getrf's factors of every matrix of a [..., n, n] float32 array, for lu_solve (None when
    one is singular or the route is off)."""
    fns = _load()
    if fns is None or not _usable(a):
        return None
    work, n, batch = _square_batch(a)
    ipiv = _getrf(work, n, fns, _Args(_loaded["int"]))
    return None if ipiv is None else (work, ipiv, batch)


def lu_solve(factors: tuple, b: Any, transposed: bool = False) -> Any | None:
    """X with A X = B (A^T X = B when transposed) from lu_factor(A)'s factors and b [..., n, k]
    of A's batch shape."""
    work, ipiv, batch = factors
    n = work.shape[-1]
    if b.shape[:-2] != batch or b.shape[-2] != n or type(b) is not numpy.ndarray:
        return None
    if b.dtype != _F32 or not b.size or not numpy.isfinite(b).all():
        return None
    fns, k = _load(), b.shape[-1]
    if fns is None:
        return None
    x = numpy.array(b.reshape(-1, n, k).transpose(0, 2, 1), dtype=_F32, order="C", copy=True)
    args = _Args(_loaded["int"])
    # the factors are of A^T (the row-major A read column-major): A X = B is trans='T' on them
    trans, pn, pk = args.char("N" if transposed else "T"), args.int(n), args.int(k)
    info = numpy.zeros(1, dtype=_loaded["int"])
    for i in range(work.shape[0]):  # x[i] [k, n] row-major is B column-major [n, k]
        fns["sgetrs"](trans, pn, pk, work[i].ctypes.data, pn, ipiv[i].ctypes.data,
                      x[i].ctypes.data, pn, info.ctypes.data)  # fmt: skip
        if info[0] != 0:
            return None
    return blas.ascontiguous(x.transpose(0, 2, 1)).reshape(batch + (n, k))


def solve(a: Any, b: Any) -> Any | None:
    """X with A X = B for a [..., n, n] and b [..., n, k] float32 arrays of one batch shape
    (None when a matrix is singular)."""
    factors = lu_factor(a) if a.shape[:-2] == b.shape[:-2] else None
    return None if factors is None else lu_solve(factors, b)


def cholesky(a: Any) -> Any | None:
    """The lower L with A = L L^T of every matrix of a [..., n, n] float32 array, read from
    its lower triangle (None when one is not positive-definite: numpy.linalg raises then)."""
    fns = _load()
    if fns is None or not _usable(a):
        return None
    work, n, batch = _square_batch(a)
    args = _Args(_loaded["int"])
    upper, pn = args.char("U"), args.int(n)
    info = numpy.zeros(1, dtype=_loaded["int"])
    for i in range(work.shape[0]):
        fns["spotrf"](upper, pn, work[i].ctypes.data, pn, info.ctypes.data)
        if info[0] != 0:
            return None
    return numpy.tril(work).reshape(batch + (n, n))


def status() -> str:
    """'float32 LAPACK' or why the route is off."""
    return "float32 LAPACK" if _load() is not None else f"off ({_loaded['why'] or 'disabled'})"
