"""Named result tuples of the ops that return several tensors (PyTorch's ``torch.return_types``):
``values, indices = x.max(dim=1)`` and ``x.max(1).indices`` both work."""

from __future__ import annotations

from typing import NamedTuple

from gradflow.tensor import Tensor


class max(NamedTuple):
    values: Tensor
    indices: Tensor


class min(NamedTuple):
    values: Tensor
    indices: Tensor


class sort(NamedTuple):
    values: Tensor
    indices: Tensor


class topk(NamedTuple):
    values: Tensor
    indices: Tensor


class kthvalue(NamedTuple):
    values: Tensor
    indices: Tensor


class cummax(NamedTuple):
    values: Tensor
    indices: Tensor


class cummin(NamedTuple):
    values: Tensor
    indices: Tensor


class mode(NamedTuple):
    values: Tensor
    indices: Tensor


class linalg_qr(NamedTuple):
    Q: Tensor
    R: Tensor


class qr(NamedTuple):
    Q: Tensor
    R: Tensor


class linalg_eigh(NamedTuple):
    eigenvalues: Tensor
    eigenvectors: Tensor


class linalg_svd(NamedTuple):
    U: Tensor
    S: Tensor
    Vh: Tensor


class svd(NamedTuple):
    U: Tensor
    S: Tensor
    V: Tensor


class linalg_lstsq(NamedTuple):
    solution: Tensor
    residuals: Tensor
    rank: Tensor
    singular_values: Tensor


class triangular_solve(NamedTuple):
    solution: Tensor
    cloned_coefficient: Tensor


class linalg_lu(NamedTuple):
    P: Tensor
    L: Tensor
    U: Tensor


class linalg_lu_factor(NamedTuple):
    LU: Tensor
    pivots: Tensor


class lu_unpack(NamedTuple):
    P: Tensor
    L: Tensor
    U: Tensor
