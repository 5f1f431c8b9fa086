"""PyTorch's top-level helpers that have no other home here: ``is_tensor``, ``numel``,
``compile``, ``set_printoptions``, ``use_deterministic_algorithms``, ``autocast``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

from gradflow.amp import autocast
from gradflow.tensor import Tensor

__all__ = [
    "autocast",
    "compile",
    "equal",
    "is_floating_point",
    "is_tensor",
    "numel",
    "set_printoptions",
    "use_deterministic_algorithms",
]


def is_tensor(obj: Any) -> bool:
    """True for a gradflow Tensor (a Parameter included)."""
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both have the same shape and elements."""
    return input.equal(other)


def numel(input: Tensor) -> int:
    """The number of elements."""
    return input.numel()


def compile(model: Callable | None = None, **options: Any) -> Any:
    """PyTorch's graph compiler has no counterpart here: returns `model` unchanged (so code
    that compiles its model runs, eagerly). Usable as ``compile(model)`` and ``@compile(...)``."""
    if model is None:
        return lambda fn: fn
    return model


def set_printoptions(
    precision: int | None = None,
    threshold: int | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """How tensors print, as PyTorch's (``profile='default'`` restores the defaults)."""
    from gradflow.tensor import PRINT_OPTIONS

    if profile == "default":
        PRINT_OPTIONS.update(precision=4, threshold=1000, edgeitems=3, max_line_width=80)
    elif profile == "full":
        PRINT_OPTIONS.update(threshold=numpy.iinfo(numpy.int64).max)
    elif profile == "short":
        PRINT_OPTIONS.update(precision=2, threshold=1000, edgeitems=2)
    given = {"precision": precision, "threshold": threshold, "edgeitems": edgeitems}
    given["max_line_width"] = linewidth
    PRINT_OPTIONS.update({k: v for k, v in given.items() if v is not None})
    if sci_mode is not None:
        PRINT_OPTIONS["suppress_small"] = not sci_mode


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Accepted: gradflow's cpu ops and cuda kernels are deterministic already (col2im by
    gather, no atomics)."""


def are_deterministic_algorithms_enabled() -> bool:
    return True
