"""``Variable``: PyTorch's pre-0.4 wrapper, kept there as a function that returns a Tensor."""

from __future__ import annotations

from typing import Any


def Variable(data: Any, requires_grad: bool = False, volatile: bool = False) -> Any:
    """The Tensor itself (a Tensor sharing its storage when ``requires_grad=True``), as PyTorch
    has done since Variables and Tensors merged. ``volatile`` is ignored, as in PyTorch (use
    ``no_grad()``)."""
    from gradflow.tensor import Tensor

    if not isinstance(data, Tensor):
        raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
    if requires_grad and not data.requires_grad:
        return data.detach().requires_grad_(True)
    return data
