"""Helpers every op family shares: operand conversion, broadcast reduction, dim arguments."""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.tensor import Tensor

_passthrough = (Tensor, int, float, bool, numpy.number, numpy.bool_)


def operand(x: Any) -> Any:
    """Tensors and Python scalars pass through; NumPy scalars become Python scalars (so
    ``x * numpy.float64(2)`` keeps x's float32, as a Python float does); arrays and lists
    become cpu Tensors."""
    if isinstance(x, _passthrough):
        return x.item() if isinstance(x, numpy.generic) else x
    from gradflow.creation import tensor

    try:
        return tensor(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"unsupported operand of type {type(x).__name__}: expected a Tensor or a number"
        ) from exc


def unbroadcast(g: Any, shape: tuple) -> Any:
    """Sum a broadcast gradient back down to `shape` (the input's shape)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def shape_of(x: Any) -> tuple:
    return getattr(x, "shape", ())


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """A dim in [-ndim, ndim) as a non-negative int; a clear IndexError otherwise."""
    if not isinstance(dim, int | numpy.integer):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: dim {dim} is out of range for a tensor with {ndim} dims "
            f"(expected in [{-n}, {n - 1}])"
        )
    return int(dim) % n


def normalize_dims(dim: Any, ndim: int, op: str) -> tuple | None:
    """dim=None, an int, or a tuple/list of ints, as a sorted tuple of non-negative ints."""
    if dim is None:
        return None
    if isinstance(dim, list | tuple):
        dims = tuple(sorted(normalize_dim(d, ndim, op) for d in dim))
        if len(set(dims)) != len(dims):
            raise ValueError(f"{op}: dim {dim} names a dimension twice")
        return dims
    return (normalize_dim(dim, ndim, op),)


def float_input(x: Any, op: str, name: str = "input") -> Tensor:
    """x itself when it is a floating-point Tensor; a TypeError naming the op otherwise."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument '{name}' must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(
            f"{op}: argument '{name}' has dtype {x.dtype} and shape {tuple(x.shape)}; expected a "
            "floating-point tensor (convert with .float() or .double())"
        )
    return x
