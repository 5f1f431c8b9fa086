"""Flatten and Unflatten: reshape between a layer's (N, C, H, W) and a Linear's (N, features)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy

from gradflow.nn.module import Module
from gradflow.ops._util import normalize_dim
from gradflow.ops.shape import flatten, reshape
from gradflow.tensor import Tensor


class Flatten(Module):
    """Merge dims start_dim..end_dim (default: all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim `dim` into `unflattened_size`, sizes whose product is that dim's size (one of
    them may be -1, inferred)."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]):
        super().__init__()
        sizes = tuple(unflattened_size) if isinstance(unflattened_size, Iterable) else None
        if sizes is None or not all(
            isinstance(s, int | numpy.integer) and not isinstance(s, bool) for s in sizes
        ):
            raise TypeError(
                f"Unflatten: unflattened_size must be a sequence of ints, got {unflattened_size!r}"
            )
        if not sizes or any(s < -1 for s in sizes) or sizes.count(-1) > 1:
            raise ValueError(
                f"Unflatten: unflattened_size {sizes} must be non-empty, its sizes >= 0 but for "
                "at most one -1 (inferred)"
            )
        self.dim, self.unflattened_size = dim, tuple(int(s) for s in sizes)

    def forward(self, x: Tensor) -> Tensor:
        d = normalize_dim(self.dim, x.ndim, "Unflatten")
        size = x.shape[d] if x.ndim else 1  # a 0-d tensor's dim 0 has size 1, as in flatten
        return reshape(x, (*x.shape[:d], *self._split(size, x.shape), *x.shape[d + 1 :]))

    def _split(self, size: int, shape: tuple) -> tuple:
        """unflattened_size with its -1 filled in; a ValueError unless its product is `size`
        (reshape alone can't tell: on an empty tensor any split with a 0 holds every element)."""
        sizes = self.unflattened_size
        known = math.prod(s for s in sizes if s != -1)
        if -1 not in sizes and known == size:
            return sizes
        if -1 in sizes and known and size % known == 0:
            return tuple(size // known if s == -1 else s for s in sizes)
        raise ValueError(
            f"Unflatten: unflattened_size {sizes} doesn't split dim {self.dim} of input of shape "
            f"{tuple(shape)}, of size {size}: the sizes must multiply to {size} (one of them may "
            "be -1, inferred, when the others' product is not 0)"
        )

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
