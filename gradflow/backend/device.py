"""Devices ("cpu", "cuda", "cuda:N", "auto") and the NumPy/CuPy array-module switch."""

from __future__ import annotations

import logging
from typing import Any

import numpy

from gradflow.backend import _cupy

logger = logging.getLogger("gradflow")
_ndarray = numpy.ndarray


class Device:
    """Where a tensor's data lives: ``Device("cpu")``, ``Device("cuda:1")``, ``Device("auto")``.

    "auto" resolves to cuda:0 when CuPy sees a GPU and to cpu otherwise (said once, at info
    level). No other spelling falls back: asking for cuda without a GPU raises.
    """

    __slots__ = ("index", "type")

    def __init__(self, spec: str | Device | None = "cpu", index: int | None = None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if spec is None:
            spec = "cpu"
        if not isinstance(spec, str):
            raise TypeError(f"device must be a str or Device, got {type(spec).__name__}: {spec!r}")
        text = spec.strip().lower()
        if text == "auto":
            text = _resolve_auto()
        kind, _, num = text.partition(":")
        if kind == "gpu":
            kind = "cuda"
        if kind not in ("cpu", "cuda") or (num and not num.isdigit()) or (kind == "cpu" and num):
            raise ValueError(
                f"unknown device {spec!r}: expected 'cpu', 'cuda', 'cuda:N' (N a GPU index) "
                "or 'auto'"
            )
        if index is not None and num:
            raise ValueError(f"device {spec!r} already names an index; do not also pass index")
        self.type = kind
        self.index = None if kind == "cpu" else int(num) if num else (index or 0)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except ValueError:
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device('{self}')"


CPU = Device("cpu")
_auto_announced = False


def _resolve_auto() -> str:
    global _auto_announced
    chosen = "cuda:0" if _cupy.device_count() > 0 else "cpu"
    if not _auto_announced:
        _auto_announced = True
        if chosen == "cpu":
            reason = _cupy._import_error or "CuPy sees no GPU"
            logger.info("device='auto' chose cpu (%s)", reason)
        else:
            logger.info("device='auto' chose cuda:0")
    return chosen


def device_of(array: Any) -> Device:
    """The Device holding a NumPy or CuPy array."""
    if isinstance(array, numpy.ndarray | numpy.generic):
        return CPU
    cp = _cupy.loaded_cupy()
    if cp is not None and isinstance(array, cp.ndarray):
        return Device("cuda", array.device.id)
    raise TypeError(f"expected a NumPy or CuPy array, got {type(array).__name__}")


def get_array_module(x: Any, *more: Any) -> Any:
    """numpy or cupy: the module of the given arrays or Tensors (numpy for plain scalars), or of
    a Device (cupy checked to exist and to see that GPU). The one way gradflow picks its array
    module; called on every op, so a lone NumPy array returns at once."""
    if not more:
        if type(x) is _ndarray:
            return numpy
        if isinstance(x, Device):
            return numpy if x.type == "cpu" else _cupy.require_cupy(x.index)
    cp = _cupy.loaded_cupy()
    if cp is None:
        return numpy
    for a in (x, *more):
        # A Tensor's raw array is .array (a CuPy array's .data is a MemoryPointer).
        if isinstance(a, cp.ndarray) or isinstance(getattr(a, "array", None), cp.ndarray):
            return cp
    return numpy


def is_cuda_array(array: Any) -> bool:
    """True for a CuPy array (never imports CuPy)."""
    if type(array) is _ndarray:
        return False
    cp = _cupy.loaded_cupy()
    return cp is not None and isinstance(array, cp.ndarray)


def move_array(array: Any, device: Device) -> Any:
    """Copy an array to `device` (no copy when it is already there)."""
    if device.type == "cpu":
        if isinstance(array, numpy.ndarray):
            return array
        return array.get()
    cp = get_array_module(device)
    if isinstance(array, cp.ndarray) and array.device.id == device.index:
        return array
    with cp.cuda.Device(device.index):
        return cp.asarray(array)
