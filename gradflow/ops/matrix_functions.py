"""Matrix functions with gradients: matrix_power (torch.linalg.matrix_power and
torch.matrix_power) and matrix_exp.

matrix_power is repeated squaring, a composition of differentiable matmuls (and inv for n < 0),
so it has gradients of any order. matrix_exp is scaling and squaring with a Pade approximant
(Higham 2005), its degree picked from the batch's largest 1-norm; its backward is PyTorch's
block-matrix form, the top-right block of exp([[A^T, G], [0, A^T]]), and double backward
records the same block matrix. Argument checks come from ops/spectral.py.

Memory: matrix_exp keeps its input; matrix_power what its matmuls keep.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import graph_input
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops.decompositions import _mT, _solve_arrays
from gradflow.ops.spectral import _matrix
from gradflow.tensor import Tensor

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
    r = _solve_arrays(v - u, v + u)  # float32 LAPACK from 64 rows (decompositions.py)
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
