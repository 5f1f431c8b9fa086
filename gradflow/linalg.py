"""gradflow.linalg: the ``torch.linalg`` names gradflow has: norms, products, inv, det, slogdet,
solve, cholesky.

The other decompositions (svd, eigh, qr, pinv, matrix_exp, ...) are not implemented: their
names raise an AttributeError saying so.
"""

from __future__ import annotations

from typing import Any

from gradflow.ops.decompositions import cholesky, solve
from gradflow.ops.decompositions import linalg_det as det
from gradflow.ops.decompositions import linalg_inv as inv
from gradflow.ops.decompositions import linalg_slogdet as slogdet
from gradflow.ops.einsum import linalg_cross as cross
from gradflow.ops.linalg import matmul, multi_dot, vecdot
from gradflow.ops.norms import linalg_norm as norm
from gradflow.ops.norms import matrix_norm, vector_norm

__all__ = [
    "cholesky",
    "cross",
    "det",
    "inv",
    "matmul",
    "matrix_norm",
    "multi_dot",
    "norm",
    "slogdet",
    "solve",
    "vecdot",
    "vector_norm",
]

_NOT_IMPLEMENTED = frozenset(
    {
        "cond",
        "eig",
        "eigh",
        "eigvals",
        "eigvalsh",
        "lstsq",
        "lu",
        "matrix_exp",
        "matrix_power",
        "matrix_rank",
        "pinv",
        "qr",
        "svd",
        "svdvals",
    }
)


def __getattr__(name: str) -> Any:
    if name in _NOT_IMPLEMENTED:
        raise AttributeError(
            f"gradflow.linalg.{name} is not implemented: gradflow.linalg has {', '.join(__all__)}; "
            "compute it with numpy.linalg on tensor.detach().cpu().numpy() outside the graph"
        )
    raise AttributeError(f"module 'gradflow.linalg' has no attribute {name!r}")
