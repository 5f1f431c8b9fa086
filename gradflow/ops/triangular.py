"""Triangular solves and LU with gradients: solve_triangular/triangular_solve,
lu/lu_factor/lu_solve (torch.linalg's and the legacy torch.lu, torch.lu_solve, torch.lu_unpack),
and the triangular inverse that they and QR's backward (ops/spectral.py) use.

Triangular inverses and solves use no LU: LAPACK's trtri from the OpenBLAS NumPy loaded (found
as backend/blas.py finds its cblas; the same switches turn it off), else the inverse by 2x2
blocks (batched matmuls). lu_factor is LAPACK's getrf from that OpenBLAS, else a NumPy LU
recursive by column halves (CuPy, another BLAS): the same pivots and factors up to rounding.
LU's backward is PyTorch's linalg_lu_backward, written against ops/spectral.py's
``_ArrayOps``/``_GraphOps`` so double backward comes from the same code; lu_solve is a
composition of differentiable triangular solves.

Errors as PyTorch's (argument checks from ops/spectral.py); lu_factor raises for a zero pivot.

Memory: lu keeps P, L and U; solve_triangular A, T^-1 and the solution.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import graph_input, graph_output
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import unbroadcast
from gradflow.ops.decompositions import _mT
from gradflow.ops.spectral import _ArrayOps, _GraphOps, _matrix
from gradflow.tensor import Tensor

# ---- triangular inverses ---------------------------------------------------------------------


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


def _getrf_functions() -> dict | None:
    """{"fns": {(routine, dtype): ctypes ?getrf / ?trtri}, "int": LAPACK's integer dtype} from
    the OpenBLAS NumPy loaded (backend/lapack.py finds it; its switches, GRADFLOW_CBLAS=0 and
    blas.disabled(), turn this route off too); None when there is none (MKL, Accelerate, no
    threadpoolctl): then the NumPy route below runs."""
    from gradflow.backend import lapack

    found = lapack.routines()
    if found is None:
        return None
    fns, itype = found
    table = {
        (r, numpy.dtype(d)): fns[f"{t}{r}"]
        for r in ("getrf", "trtri")
        for t, d in (("s", numpy.float32), ("d", numpy.float64))
    }
    return {"fns": table, "int": itype}


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
