"""gradflow.linalg: the ``torch.linalg`` names gradflow has: norms, products, inv, det, slogdet,
solve, cholesky, qr, eigh, eigvalsh, svd, svdvals, pinv, matrix_rank, cond, lstsq,
matrix_power, matrix_exp, solve_triangular, lu, lu_factor, lu_solve.

The others (eig, eigvals, ...) are not implemented: their names raise
an AttributeError saying so.
"""

from __future__ import annotations

from typing import Any

from gradflow.ops.decompositions import cholesky, solve
from gradflow.ops.decompositions import linalg_det as det
from gradflow.ops.decompositions import linalg_inv as inv
from gradflow.ops.decompositions import linalg_slogdet as slogdet
from gradflow.ops.einsum import linalg_cross as cross
from gradflow.ops.linalg import matmul, multi_dot, vecdot
from gradflow.ops.matrix_functions import matrix_exp, matrix_power
from gradflow.ops.norms import linalg_norm as norm
from gradflow.ops.norms import matrix_norm, vector_norm
from gradflow.ops.spectral import (
    cond,
    eigh,
    eigvalsh,
    lstsq,
    matrix_rank,
    pinv,
    qr,
    svd,
    svdvals,
)
from gradflow.ops.triangular import lu, lu_factor, lu_solve, solve_triangular

__all__ = [
    "cholesky",
    "cond",
    "cross",
    "det",
    "eigh",
    "eigvalsh",
    "inv",
    "lstsq",
    "lu",
    "lu_factor",
    "lu_solve",
    "matmul",
    "matrix_exp",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "solve_triangular",
    "svd",
    "svdvals",
    "vecdot",
    "vector_norm",
]

_NOT_IMPLEMENTED = frozenset(
    {
        "eig",
        "eigvals",
    }
)


def __getattr__(name: str) -> Any:
    if name in _NOT_IMPLEMENTED:
        raise AttributeError(
            f"gradflow.linalg.{name} is not implemented: gradflow.linalg has {', '.join(__all__)}; "
            "compute it with numpy.linalg on tensor.detach().cpu().numpy() outside the graph"
        )
    raise AttributeError(f"module 'gradflow.linalg' has no attribute {name!r}")
