"""The pointwise torch.* functions outside ops/pointwise_math.py, in PyTorch's names and
argument order: fmax, fmin, heaviside, ldexp, logaddexp2, frexp, nextafter, gcd, lcm, the
bitwise ops (bitwise_and/or/xor/not, bitwise_left_shift/right_shift), isin, isreal. Also the
argument checks and dtype promotion (_tensor, _result_dtype, _name, ...) that
ops/differences.py, ops/statistics.py and ops/construction.py import.

Most are compositions of differentiable gradflow ops (so they have double backward and run on
CuPy unchanged); Frexp (two outputs) is a Function of its own.

Memory: frexp keeps the int32 exponents; the compositions keep what their parts keep.
Integer, bool and comparison results carry no gradient.
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy

from gradflow import dtypes
from gradflow.autograd.differentiable import const
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops import arithmetic as _arith
from gradflow.ops._util import operand
from gradflow.tensor import Tensor

# torch.return_types' named tuples of these functions
_frexp = namedtuple("frexp", ["mantissa", "exponent"])


# PyTorch's names of the dtypes, for its "not implemented for 'Float'" messages
_TORCH_NAMES = {
    "float16": "Half",
    "float32": "Float",
    "float64": "Double",
    "bool": "Bool",
    "uint8": "Byte",
    "int8": "Char",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
}


def _name(dtype: Any) -> str:
    return _TORCH_NAMES.get(numpy.dtype(dtype).name, str(dtype))


def _tensor(x: Any, op: str, what: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument '{what}' must be Tensor, not {type(x).__name__}")
    return x


def _wrap(array: Any) -> Tensor:
    return Tensor._wrap(array)


def _result_dtype(arrays: Sequence[Any]) -> numpy.dtype:
    """PyTorch's promotion across tensors: the widest float if any is a float, else NumPy's
    integer promotion (which agrees with PyTorch's for int and bool), else bool."""
    kinds = [numpy.dtype(a.dtype) for a in arrays]
    floats = [d for d in kinds if d.kind == "f"]
    if floats:
        return builtins.max(floats, key=lambda d: d.itemsize)
    return numpy.result_type(*kinds) if kinds else dtypes.get_default_dtype()


def _as(x: Tensor, dtype: Any) -> Tensor:
    return x if x.dtype == dtype else x.to(dtype)


def _float(x: Tensor) -> Tensor:
    """x, or x in the default float dtype when it is an integer or bool tensor."""
    return x if x.dtype.kind == "f" else x.to(dtypes.get_default_dtype())


def _along(d: int, ndim: int, key: Any) -> tuple:
    return (slice(None),) * d + (key,) + (slice(None),) * (ndim - d - 1)


# ---- pointwise -------------------------------------------------------------------------------
def _two_tensors(input: Any, other: Any, op: str) -> tuple:
    input, other = _tensor(input, op), _tensor(other, op, "other")
    target = _result_dtype([input.array, other.array])
    return _as(input, target), _as(other, target)


def fmax(input: Tensor, other: Tensor) -> Tensor:
    """The elementwise maximum, ignoring NaN (NaN only where both are NaN). The gradient goes
    to input where input >= other or other is NaN, else to other (as PyTorch)."""
    a, b = _two_tensors(input, other, "fmax")
    if a.dtype.kind != "f":
        return _arith.maximum(a, b)
    return _arith.where(_arith.logical_or(_arith.ge(a, b), _arith.isnan(b)), a, b)


def fmin(input: Tensor, other: Tensor) -> Tensor:
    """The elementwise minimum, ignoring NaN (NaN only where both are NaN)."""
    a, b = _two_tensors(input, other, "fmin")
    if a.dtype.kind != "f":
        return _arith.minimum(a, b)
    return _arith.where(_arith.logical_or(_arith.le(a, b), _arith.isnan(b)), a, b)


def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """0 where input < 0, values where input == 0, 1 where input > 0 (0 for NaN, as PyTorch);
    input and values must share a dtype. No gradient (PyTorch has none)."""
    input, values = _tensor(input, "heaviside"), _tensor(values, "heaviside", "values")
    if input.dtype != values.dtype:
        raise RuntimeError(
            "heaviside is not yet implemented for tensors with different dtypes "
            f"({input.dtype} and {values.dtype}); convert one with .to()"
        )
    a, v = input.array, values.array
    xp = get_array_module(a)
    with _arith._quiet():
        out = xp.where(a == 0, v, (a > 0).astype(a.dtype))
    return _wrap(xp.asarray(out, dtype=a.dtype))


def ldexp(input: Tensor, other: Tensor) -> Tensor:
    """input * 2 ** other, a float result."""
    return _arith.mul(input, _arith.pow(2.0, other))


def logaddexp2(input: Tensor, other: Tensor) -> Tensor:
    """log2(2 ** input + 2 ** other), without overflow (float tensors only, as PyTorch)."""
    from gradflow.ops.pointwise_math import logaddexp

    a, b = _two_tensors(input, other, "logaddexp2")
    if a.dtype.kind != "f":
        raise NotImplementedError(f"\"logaddexp2_cpu\" not implemented for '{_name(a.dtype)}'")
    ln2 = math.log(2.0)
    return _arith.div(logaddexp(_arith.mul(a, ln2), _arith.mul(b, ln2)), ln2)


class Frexp(Function):
    """(mantissa, exponent) with input = mantissa * 2 ** exponent, |mantissa| in [0.5, 1);
    the mantissa's gradient is g / 2 ** exponent."""

    op_name = "frexp"

    def forward(self, x):
        xp = get_array_module(x)
        mantissa, exponent = xp.frexp(x)
        exponent = exponent.astype("int32", copy=False)
        self.save_for_backward(exponent)  # int32 exponents
        return mantissa, exponent

    def backward(self, gm, ge=None):
        (exponent,) = self.saved_arrays
        if gm is None:
            return get_array_module(exponent).zeros(exponent.shape, "float32")
        with _arith._quiet():  # a subnormal input's 2 ** -exponent overflows to inf, as torch
            return get_array_module(gm).ldexp(gm, -exponent)

    def backward_graph(self, gm, ge=None):
        (exponent,) = self.saved_arrays
        xp = get_array_module(exponent)
        with _arith._quiet():
            return gm * const(xp.ldexp(xp.ones((), gm.dtype), -exponent))


def frexp(input: Tensor) -> Any:
    """The named tuple (mantissa, exponent): input = mantissa * 2 ** exponent, the mantissa in
    input's dtype with |mantissa| in [0.5, 1) (0 for 0), the exponent int32."""
    input = _tensor(input, "frexp")
    if input.dtype.kind != "f":
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    mantissa, exponent = Frexp.apply(input)
    return _frexp(mantissa, exponent)


def nextafter(input: Tensor, other: Tensor) -> Tensor:
    """The next float after input towards other (float tensors; no gradient)."""
    a, b = _two_tensors(input, other, "nextafter")
    if a.dtype.kind != "f":
        raise NotImplementedError(f"\"nextafter_cpu\" not implemented for '{_name(a.dtype)}'")
    xp = get_array_module(a.array)
    return _wrap(xp.asarray(xp.nextafter(a.array, b.array)))


def _integer_operands(input: Any, other: Any, op: str, kernel: str, bool_ok: bool) -> tuple:
    """Both operands' arrays (Python ints allowed on one side) after checking PyTorch's rules:
    integer (and bool where bool_ok) tensors only, NotImplementedError otherwise."""
    input, other = operand(input), operand(other)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError(f"{op}(): expected at least one Tensor, got two numbers")
    arrays = []
    all_bool = all(not isinstance(x, Tensor) or x.dtype.kind == "b" for x in (input, other))
    all_bool = all_bool and not any(type(x) is int for x in (input, other))
    for x in (input, other):
        if isinstance(x, Tensor):
            kind = x.dtype.kind
            if kind == "f" or (kind == "b" and not bool_ok and all_bool):
                raise NotImplementedError(
                    f"\"{kernel}_cpu\" not implemented for '{_name(x.dtype)}'; {op} takes integer"
                    + (" or bool" if bool_ok else "")
                    + " tensors"
                )
            arrays.append(x.array)
        elif isinstance(x, float):
            raise NotImplementedError(
                f"\"{kernel}_cpu\" not implemented for 'Float'; {op} takes integers"
            )
        else:
            arrays.append(x)
    a, b = arrays
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        if type(a) is not type(b):
            raise RuntimeError(
                f"{op}: expected both tensors on one device, got {input.device} and {other.device}"
            )
        target = numpy.result_type(a.dtype, b.dtype)
        a, b = a.astype(target, copy=False), b.astype(target, copy=False)
    xp = get_array_module(a if isinstance(input, Tensor) else b)
    if not isinstance(input, Tensor):
        a = xp.asarray(a, dtype=b.dtype if b.dtype.kind != "b" else "int64")
    if not isinstance(other, Tensor):
        b = xp.asarray(b, dtype=a.dtype if a.dtype.kind != "b" else "int64")
    return xp, a, b


def _integer_binary(ufunc: str, kernel: str, op: str, bool_ok: bool = True):
    def fn(input: Any, other: Any) -> Tensor:
        xp, a, b = _integer_operands(input, other, op, kernel, bool_ok)
        return _wrap(xp.asarray(getattr(xp, ufunc)(a, b)))

    fn.__name__ = fn.__qualname__ = op
    return fn


_bitwise_and = _integer_binary("bitwise_and", "bitwise_and", "bitwise_and")
_bitwise_or = _integer_binary("bitwise_or", "bitwise_or", "bitwise_or")
_bitwise_xor = _integer_binary("bitwise_xor", "bitwise_xor", "bitwise_xor")
_left_shift = _integer_binary("left_shift", "lshift", "bitwise_left_shift", bool_ok=False)
_right_shift = _integer_binary("right_shift", "rshift", "bitwise_right_shift", bool_ok=False)
_gcd = _integer_binary("gcd", "gcd", "gcd", bool_ok=False)
_lcm = _integer_binary("lcm", "lcm", "lcm", bool_ok=False)


def bitwise_and(input: Any, other: Any) -> Tensor:
    """input & other for integer and bool tensors (a Python int may stand on one side)."""
    return _bitwise_and(input, other)


def bitwise_or(input: Any, other: Any) -> Tensor:
    """input | other for integer and bool tensors."""
    return _bitwise_or(input, other)


def bitwise_xor(input: Any, other: Any) -> Tensor:
    """input ^ other for integer and bool tensors."""
    return _bitwise_xor(input, other)


def bitwise_left_shift(input: Any, other: Any) -> Tensor:
    """input << other for integer tensors (0 once the shift reaches the width, as PyTorch)."""
    return _left_shift(input, other)


def bitwise_right_shift(input: Any, other: Any) -> Tensor:
    """input >> other for integer tensors (arithmetic: the sign fills)."""
    return _right_shift(input, other)


def bitwise_not(input: Tensor) -> Tensor:
    """~input: the bits flipped (logical not for bool tensors)."""
    input = _tensor(input, "bitwise_not")
    if input.dtype.kind == "f":
        raise NotImplementedError(
            f"\"bitwise_not_cpu\" not implemented for '{_name(input.dtype)}'; bitwise_not takes "
            "integer or bool tensors"
        )
    xp = get_array_module(input.array)
    return _wrap(xp.asarray(xp.invert(input.array)))


def gcd(input: Tensor, other: Tensor) -> Tensor:
    """The greatest common divisor (non-negative) of integer tensors."""
    return _gcd(input, other)


def lcm(input: Tensor, other: Tensor) -> Tensor:
    """The least common multiple (non-negative) of integer tensors."""
    return _lcm(input, other)


def isin(
    elements: Any = None,
    test_elements: Any = None,
    *,
    assume_unique: bool = False,
    invert: bool = False,
    element: Any = None,
    test_element: Any = None,
) -> Tensor:
    """Whether each of elements is in test_elements (either may be a number: PyTorch then
    names it element= or test_element=); a bool tensor of elements' shape."""
    elements = element if elements is None else elements
    test_elements = test_element if test_elements is None else test_elements
    if elements is None or test_elements is None:
        raise TypeError("isin() missing elements or test_elements")
    elements, test_elements = operand(elements), operand(test_elements)
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin(): expected elements or test_elements to be a Tensor")
    like = elements if isinstance(elements, Tensor) else test_elements
    for x in (elements, test_elements):
        if isinstance(x, Tensor) and x.dtype.kind == "b":
            raise RuntimeError(
                "Unsupported input type encountered for isin(): Bool; convert with .long()"
            )
    xp = get_array_module(like.array)
    e = elements.array if isinstance(elements, Tensor) else xp.asarray(elements)
    t = test_elements.array if isinstance(test_elements, Tensor) else xp.asarray(test_elements)
    out = xp.isin(e, t, assume_unique=assume_unique, invert=invert)
    return _wrap(xp.asarray(out).reshape(e.shape))


def isreal(input: Tensor) -> Tensor:
    """True everywhere: gradflow's tensors are real."""
    input = _tensor(input, "isreal")
    return _wrap(get_array_module(input.array).ones(input.shape, bool))
