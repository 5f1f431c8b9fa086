"""Data types: NumPy dtypes under PyTorch's names, and the default floating type."""

from __future__ import annotations

import builtins
from typing import Any

import numpy

_py_float, _py_int, _py_bool = builtins.float, builtins.int, builtins.bool

float16 = half = numpy.dtype("float16")
float32 = float = numpy.dtype("float32")
float64 = double = numpy.dtype("float64")
int8 = numpy.dtype("int8")
int16 = short = numpy.dtype("int16")
int32 = int = numpy.dtype("int32")
int64 = long = numpy.dtype("int64")
uint8 = numpy.dtype("uint8")
bool = numpy.dtype("bool")

_SUPPORTED = {float16, float32, float64, int8, int16, int32, int64, uint8, bool}

# PyTorch's dtype helpers: ``finfo(float32).eps`` (below), ``iinfo(int64).max``,
# ``isinstance(d, dtype)``.
iinfo = numpy.iinfo
dtype = numpy.dtype


class _UnsupportedDtype:
    """A PyTorch dtype NumPy has no type for: naming it works, using it says what to do."""

    def __init__(self, name: str, advice: str):
        self.name, self.advice = name, advice
        self.is_floating_point = name.startswith(("bfloat", "float"))
        self.itemsize = 2

    def __repr__(self) -> str:
        return f"gradflow.{self.name}"


bfloat16 = _UnsupportedDtype(
    "bfloat16", "NumPy and CuPy have no bfloat16; use float16 (or float32) instead"
)
complex64 = cfloat = _UnsupportedDtype(
    "complex64", "gradflow tensors are real; complex dtypes are not supported"
)
complex128 = cdouble = _UnsupportedDtype("complex128", complex64.advice)
_default_float = float32


def get_default_dtype() -> numpy.dtype:
    """The floating dtype used for Python floats and random factories (float32 unless set)."""
    return _default_float


class finfo:
    """torch.finfo: a floating dtype's limits as Python floats, as PyTorch gives them
    (``scores.masked_fill(mask, finfo(dtype).min)``); ``dtype`` is the dtype's name. With no
    argument, the default dtype's."""

    def __init__(self, type: Any = None) -> None:
        if isinstance(type, _UnsupportedDtype):
            raise TypeError(f"finfo: {type.name} is not supported: {type.advice}")
        info = numpy.finfo(numpy.dtype(_default_float if type is None else type))
        self.bits = info.bits
        self.eps, self.max, self.min = _py_float(info.eps), _py_float(info.max), _py_float(info.min)
        self.tiny = self.smallest_normal = _py_float(info.smallest_normal)
        self.resolution = 10.0**-info.precision  # PyTorch's 1e-3 for float16, not NumPy's
        self.dtype = info.dtype.name

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
            f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, "
            f"dtype={self.dtype})"
        )


def set_default_dtype(d: Any) -> None:
    """Set the default floating dtype (float32 or float64)."""
    global _default_float
    d = as_dtype(d)
    if d not in (float32, float64):
        raise TypeError(f"default dtype must be float32 or float64, got {d}")
    _default_float = d


def as_dtype(dtype: Any) -> numpy.dtype:
    """Normalize a dtype spelling (gradflow/NumPy dtype, 'float32', Python float/int/bool)."""
    if dtype is _py_float:
        return _default_float
    if dtype is _py_int:
        return int64
    if dtype is _py_bool:
        return bool
    if isinstance(dtype, _UnsupportedDtype):
        raise TypeError(f"dtype {dtype.name} is not supported: {dtype.advice}")
    try:
        d = numpy.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"unknown dtype {dtype!r}") from exc
    if d not in _SUPPORTED:
        raise TypeError(
            f"dtype {d} is not supported; use one of "
            + ", ".join(sorted(str(s) for s in _SUPPORTED))
        )
    return d


def is_floating_point(dtype: numpy.dtype) -> bool:
    return dtype.kind == "f"


# PyTorch's legacy type names ('torch.FloatTensor', x.type()) for each dtype.
_TYPE_NAMES = {
    float16: "HalfTensor",
    float32: "FloatTensor",
    float64: "DoubleTensor",
    int8: "CharTensor",
    int16: "ShortTensor",
    int32: "IntTensor",
    int64: "LongTensor",
    uint8: "ByteTensor",
    bool: "BoolTensor",
}


def tensor_type_name(dtype: numpy.dtype) -> str:
    """'FloatTensor' for float32 and so on: the name ``Tensor.type()`` reports."""
    return _TYPE_NAMES[dtype]


def from_tensor_type_name(name: str) -> numpy.dtype:
    """The dtype of a legacy type name: 'torch.LongTensor', 'gradflow.cuda.FloatTensor'."""
    short = name.rsplit(".", 1)[-1]
    for d, type_name in _TYPE_NAMES.items():
        if type_name == short:
            return d
    raise TypeError(f"unknown tensor type {name!r}; expected one of {sorted(_TYPE_NAMES.values())}")
