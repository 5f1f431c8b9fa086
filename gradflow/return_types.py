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
