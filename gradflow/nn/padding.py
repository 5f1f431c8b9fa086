"""Padding layers (torch.nn's): ZeroPad1d/2d/3d, ConstantPad1d/2d/3d, ReflectionPad1d/2d/3d,
ReplicationPad1d/2d/3d and CircularPad1d/2d/3d, each F.pad with a fixed mode.

`padding` is an int (the same on every side) or a tuple in F.pad's order: (left, right) for
1-D, (left, right, top, bottom) for 2-D, and a front/back pair more for 3-D.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.nn.module import Module
from gradflow.ops.padding import pad
from gradflow.tensor import Tensor


def _padding(value: Any, dims: int, layer: str) -> tuple[int, ...]:
    """An int for every side, or a tuple of 2 * dims ints, as a tuple of 2 * dims ints."""
    if isinstance(value, int | numpy.integer) and not isinstance(value, bool):
        return (int(value),) * (2 * dims)
    if (
        isinstance(value, tuple | list)
        and len(value) == 2 * dims
        and all(isinstance(v, int | numpy.integer) and not isinstance(v, bool) for v in value)
    ):
        return tuple(int(v) for v in value)
    raise TypeError(f"{layer}: padding must be an int or a tuple of {2 * dims} ints, got {value!r}")


class _PadNd(Module):
    """F.pad with `mode` and a fixed padding; inputs need dims + 1 or dims + 2 dims, as
    PyTorch's non-constant modes do (constant modes take any input of enough dims)."""

    _dims = 1
    _mode = "constant"

    def __init__(self, padding: Any, value: float = 0.0):
        super().__init__()
        self.padding = _padding(padding, self._dims, type(self).__name__)
        self.value = value

    def forward(self, x: Tensor) -> Tensor:
        dims, layer = self._dims, type(self).__name__
        if (
            self._mode != "constant"
            and isinstance(x, Tensor)
            and x.ndim not in (dims + 1, dims + 2)
        ):
            raise ValueError(
                f"{layer}: expected {dims + 1}D or {dims + 2}D input (got {x.ndim}D input)"
            )
        return pad(x, self.padding, self._mode, self.value)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding: Any, value: float):
        super().__init__(padding, value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with `value`."""


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims with `value`."""

    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dims with `value`."""

    _dims = 3


class ZeroPad1d(_PadNd):
    """Pad the last dim with zeros."""

    def __init__(self, padding: Any):
        super().__init__(padding, 0.0)


class ZeroPad2d(ZeroPad1d):
    """Pad the last two dims with zeros."""

    _dims = 2


class ZeroPad3d(ZeroPad1d):
    """Pad the last three dims with zeros."""

    _dims = 3


class _ModePad(_PadNd):
    def __init__(self, padding: Any):
        super().__init__(padding)


class ReflectionPad1d(_ModePad):
    """Pad the last dim with its mirror image (the edge not repeated)."""

    _mode = "reflect"


class ReflectionPad2d(ReflectionPad1d):
    """Pad the last two dims with their mirror image."""

    _dims = 2


class ReflectionPad3d(ReflectionPad1d):
    """Pad the last three dims with their mirror image."""

    _dims = 3


class ReplicationPad1d(_ModePad):
    """Pad the last dim by repeating its edge values."""

    _mode = "replicate"


class ReplicationPad2d(ReplicationPad1d):
    """Pad the last two dims by repeating their edges."""

    _dims = 2


class ReplicationPad3d(ReplicationPad1d):
    """Pad the last three dims by repeating their edges."""

    _dims = 3


class CircularPad1d(_ModePad):
    """Pad the last dim by wrapping around."""

    _mode = "circular"


class CircularPad2d(CircularPad1d):
    """Pad the last two dims by wrapping around."""

    _dims = 2


class CircularPad3d(CircularPad1d):
    """Pad the last three dims by wrapping around."""

    _dims = 3
