"""Parameters to one flat vector and back (PyTorch's parameters_to_vector and inverse)."""

from __future__ import annotations

from collections.abc import Iterable

from gradflow.ops.shape import cat, reshape
from gradflow.tensor import Tensor


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """One 1-D tensor holding every parameter, flattened and concatenated in order."""
    params = list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return cat([reshape(p, (-1,)) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D `vec` into each parameter, in place."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        got = tuple(vec.shape) if isinstance(vec, Tensor) else type(vec).__name__
        raise ValueError(f"vector_to_parameters: expected a 1-D tensor, got {got}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.numel() != total:
        raise ValueError(
            f"vector_to_parameters: the vector has {vec.numel()} elements, the parameters "
            f"need {total}"
        )
    offset = 0
    for p in params:
        n = p.numel()
        p.array[...] = vec.array[offset : offset + n].reshape(p.shape).astype(p.dtype, copy=False)
        offset += n
