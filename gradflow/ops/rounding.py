"""Rounding: floor, ceil, trunc (and its alias fix), round(decimals), and frac. They are
piecewise constant, so their gradient is zero (frac's passes through); integer tensors come
back as they are.

Memory: nothing is saved.
"""

from __future__ import annotations

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.tensor import Tensor


class Rounding(Function):
    """floor, ceil, trunc and round(decimals): piecewise constant, so the gradient is zero
    everywhere (as PyTorch, which gives zeros rather than no gradient). Saves nothing."""

    decimals: int = 0
    mode: str

    def forward(self, x):
        xp = get_array_module(x)
        if self.mode == "round":
            return xp.round(x, self.decimals)  # half to even, as PyTorch
        return getattr(xp, self.mode)(x)

    def backward(self, g):
        return get_array_module(g).zeros_like(g)

    def backward_graph(self, g):
        return g * 0.0


class Frac(Function):
    """x - trunc(x); the gradient passes unchanged (as PyTorch). Saves nothing."""

    op_name = "frac"

    def forward(self, x):
        return x - get_array_module(x).trunc(x)

    def backward(self, g):
        return g

    def backward_graph(self, g):
        return g


def _rounding(x: Tensor, mode: str, decimals: int = 0) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{mode}: expected a Tensor, got {type(x).__name__}")
    if x.dtype.kind in "iub":
        if decimals:
            raise RuntimeError(
                f"round: decimals={decimals} is not supported for integer tensors ({x.dtype}); "
                "call .float() first"
            )
        return Tensor._wrap(x.array.copy())  # already integral, as in PyTorch
    return Rounding.apply(x, mode=mode, decimals=int(decimals), op_name=mode)


def floor(input: Tensor) -> Tensor:
    """The largest integer <= x (zero gradient)."""
    return _rounding(input, "floor")


def ceil(input: Tensor) -> Tensor:
    """The smallest integer >= x (zero gradient)."""
    return _rounding(input, "ceil")


def trunc(input: Tensor) -> Tensor:
    """x rounded toward zero (zero gradient)."""
    return _rounding(input, "trunc")


fix = trunc


def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """x rounded to `decimals` places, halves to even (zero gradient)."""
    return _rounding(input, "round", decimals)


def frac(input: Tensor) -> Tensor:
    """The fractional part x - trunc(x), with x's sign; the gradient passes through."""
    if input.dtype.kind != "f":
        raise NotImplementedError(
            f"frac: not implemented for {input.dtype} (an integer has no fractional part); "
            "call .float() first"
        )
    return Frac.apply(input)
