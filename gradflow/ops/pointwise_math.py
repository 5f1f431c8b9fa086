"""Pointwise math beyond the four operations, in PyTorch's names: binary atan2, logaddexp,
float_power, xlogy, hypot, copysign; ternary lerp, addcmul, addcdiv; nan_to_num, logit,
deg2rad, rad2deg; and the predicates isclose, allclose, signbit (no gradient).

Built on gradflow/ops/arithmetic.py's broadcasting and promotion (_binary): the binary ops
reduce their input gradients to each input's shape, and Python scalars are constants.

Memory: atan2, xlogy and logaddexp keep both inputs; hypot both inputs and the output;
copysign only the signs (+-1, 0) its gradient needs; nan_to_num a bool mask of the finite
inputs. The composites (lerp, addcmul, addcdiv, logit, ...) keep what their parts keep.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow import dtypes
from gradflow.autograd.differentiable import const, graph_input, graph_output
from gradflow.autograd.differentiable import unbroadcast as unbroadcast_graph
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module
from gradflow.ops._util import operand, shape_of, unbroadcast
from gradflow.ops.arithmetic import (
    _BLOCK,
    BinaryUfunc,
    Pow,
    _binary,
    _quiet,
    add,
    clip,
    div,
    float32_blocks_operands,
    mul,
    neg,
    sub,
)
from gradflow.tensor import Tensor


class Atan2(Function):
    """atan2(a, b): the angle of the point (b, a); d/da = b / r^2, d/db = -a / r^2."""

    op_name = "atan2"

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return get_array_module(a if hasattr(a, "dtype") else b).arctan2(a, b)

    def backward(self, g):
        a, b = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        with _quiet():
            scale = g / (a * a + b * b)
        ga = unbroadcast(scale * b, shape_of(a)) if need_a else None
        gb = unbroadcast(-scale * a, shape_of(b)) if need_b else None
        return ga, gb

    def backward_graph(self, g):
        a, b = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        ta, tb = graph_input(self, 0, a), graph_input(self, 1, b)
        scale = g / (ta * ta + tb * tb)
        ga = unbroadcast_graph(scale * tb, shape_of(a)) if need_a else None
        gb = unbroadcast_graph(-scale * ta, shape_of(b)) if need_b else None
        return ga, gb


class LogAddExp(BinaryUfunc):
    """log(exp(a) + exp(b)) without overflow, as torch computes it: max(a, b) +
    log1p(exp(-|a - b|)), a where a == b == +-inf; the gradients are torch's
    g / (1 + exp(b - a)) and g / (1 + exp(a - b)) (NaN where a == b == +-inf, as torch)."""

    op_name = "logaddexp"
    _ufunc = "logaddexp"

    def forward(self, a, b):
        # NumPy's float32 logaddexp is a scalar loop (21 ms per 2^20 elements, torch's 3):
        # these are seven vector passes, in place.
        xp = get_array_module(a if hasattr(a, "dtype") else b)
        with _quiet():
            d = xp.asarray(xp.subtract(a, b))
            xp.abs(d, out=d)
            xp.negative(d, out=d)
            xp.exp(d, out=d)
            xp.log1p(d, out=d)
            # NaN where a == b == +-inf (inf - inf): any finite value then leaves max(a, b)
            # alone; a NaN input still gives NaN through the max
            xp.fmin(d, 1, out=d)
            out = xp.add(xp.maximum(a, b), d, out=d)
        self.save_for_backward(a, b)  # (torch's gradient needs no output)
        return out

    def backward(self, g):
        a, b = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        xp = get_array_module(g)
        with _quiet():
            ga = unbroadcast(_softmax_weight(xp, g, b, a), shape_of(a)) if need_a else None
            gb = unbroadcast(_softmax_weight(xp, g, a, b), shape_of(b)) if need_b else None
        return ga, gb

    def backward_graph(self, g):
        a, b = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        ta, tb = graph_input(self, 0, a), graph_input(self, 1, b)
        ga = unbroadcast_graph(g / ((tb - ta).exp() + 1), shape_of(a)) if need_a else None
        gb = unbroadcast_graph(g / ((ta - tb).exp() + 1), shape_of(b)) if need_b else None
        return ga, gb


def _softmax_weight(xp: Any, g: Any, other: Any, this: Any) -> Any:
    """g / (1 + exp(other - this)) (torch's logaddexp gradient), in place where the shapes
    allow."""
    t = xp.asarray(xp.subtract(other, this))
    xp.exp(t, out=t)
    xp.add(t, 1, out=t)
    if t.shape == g.shape and t.dtype == g.dtype:
        return xp.divide(g, t, out=t)
    return g / t


class NanToNum(Function):
    """NaN, +inf and -inf replaced by numbers; the gradient passes where x was finite."""

    op_name = "nan_to_num"
    nan: float
    posinf: float | None
    neginf: float | None

    def forward(self, x):
        xp = get_array_module(x)
        if self.needs_input_grad[0]:
            self.save_for_backward(xp.isfinite(x))  # a bool mask
        return xp.nan_to_num(x, nan=self.nan, posinf=self.posinf, neginf=self.neginf)

    def backward(self, g):
        (finite,) = self.saved_arrays
        return g * finite

    def backward_graph(self, g):
        return g * const(self.saved_arrays[0].astype(g.dtype))


class XLogY(Function):
    """x * log(y), 0 where x == 0 (unless y is NaN); PyTorch's gradients: xlogy(x != 0, y)
    for x and x / y for y."""

    op_name = "xlogy"

    def forward(self, x, y):
        xp = get_array_module(x if hasattr(x, "dtype") else y)
        self.save_for_backward(x, y)
        with _quiet():
            value = xp.asarray(x * _log(xp, y))
            return xp.where((x == 0) & ~_isnan(xp, y), value.dtype.type(0), value)

    def backward(self, g):
        x, y = self.saved_arrays
        need_x, need_y = self.needs_input_grad
        xp = get_array_module(g)
        gx = gy = None
        with _quiet():
            if need_x:
                gx = unbroadcast(g * xp.where(x != 0, _log(xp, y), g.dtype.type(0)), shape_of(x))
            if need_y:
                gy = unbroadcast(g * x / y, shape_of(y))
        return gx, gy

    def backward_graph(self, g):
        x, y = self.saved_arrays
        need_x, need_y = self.needs_input_grad
        tx, ty = graph_input(self, 0, x), graph_input(self, 1, y)
        gx = gy = None
        with _quiet():
            if need_x:
                xp = get_array_module(g.array)
                nonzero = const(xp.asarray(x != 0).astype(g.dtype))
                gx = unbroadcast_graph(g * nonzero * ty.log(), shape_of(x))
            if need_y:
                gy = unbroadcast_graph(g * tx / ty, shape_of(y))
        return gx, gy


def _log(xp: Any, y: Any) -> Any:
    """log of an array, or of a Python number as a Python float (a NumPy float64 scalar would
    promote a float32 array)."""
    return xp.log(y) if hasattr(y, "dtype") else float(numpy.log(numpy.float64(y)))


def _isnan(xp: Any, y: Any) -> Any:
    return xp.isnan(y) if hasattr(y, "dtype") else math.isnan(y)


class Hypot(BinaryUfunc):
    """sqrt(a^2 + b^2) without overflow; d/da = a / out, d/db = b / out."""

    op_name = "hypot"
    _ufunc = "hypot"

    def forward(self, a, b):
        xp = get_array_module(a if hasattr(a, "dtype") else b)
        with _quiet():  # (a float32 overflow to inf is hypot's value there)
            out = _hypot_float32(a, b) if xp is numpy else None
        if out is None:
            out = xp.hypot(a, b)
        self.save_for_backward(a, b, out)
        return out

    def backward(self, g):
        a, b, out = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        xp = get_array_module(g)
        with _quiet():  # torch's order, g * a / out: its NaN where g * a overflows and out is inf
            ga = unbroadcast(_times_over(xp, g, a, out), shape_of(a)) if need_a else None
            gb = unbroadcast(_times_over(xp, g, b, out), shape_of(b)) if need_b else None
        return ga, gb

    def backward_graph(self, g):
        a, b, out = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        y = graph_output(self, out)
        ga = unbroadcast_graph(g * graph_input(self, 0, a) / y, shape_of(a)) if need_a else None
        gb = unbroadcast_graph(g * graph_input(self, 1, b) / y, shape_of(b)) if need_b else None
        return ga, gb


def _times_over(xp: Any, g: Any, x: Any, out: Any) -> Any:
    """g * x / out, in place where the shapes allow."""
    t = xp.asarray(g * x)
    if t.shape == out.shape and t.dtype == out.dtype:
        return xp.divide(t, out, out=t)
    return t / out


def _hypot_float32(a: Any, b: Any) -> Any:
    """hypot of float32 NumPy operands as sqrt(a^2 + b^2) in float64 (the squares are exact,
    the sum rounded once, no overflow): NumPy's float32 hypot is a scalar libm loop, 3x
    these passes. Runs in blocks whose float64 temporaries stay in cache. None for other
    dtypes, broadcasts other than against one element, 0-d or empty results, and where a NaN
    comes out (hypot(inf, nan) is inf): those take xp.hypot."""
    operands = float32_blocks_operands(a, b)
    if operands is None:
        return None
    shape, flat_a, flat_b = operands
    n = math.prod(shape)
    out = numpy.empty(n, numpy.float32)
    block = min(n, _BLOCK)
    x, y = numpy.empty(block), numpy.empty(block)
    for start in range(0, n, block):
        stop = min(start + block, n)
        xa, yb = x[: stop - start], y[: stop - start]
        numpy.copyto(xa, flat_a[start:stop] if flat_a.ndim else flat_a)
        numpy.copyto(yb, flat_b[start:stop] if flat_b.ndim else flat_b)
        numpy.multiply(xa, xa, out=xa)
        numpy.multiply(yb, yb, out=yb)
        numpy.add(xa, yb, out=xa)
        numpy.sqrt(xa, out=xa)
        numpy.copyto(out[start:stop], xa, casting="same_kind")
    if numpy.isnan(out).any():
        return None
    return out.reshape(shape)


class CopySign(Function):
    """|a| with the sign of b; d/da = sign(a) sign(out) (0 at a == 0), none for b."""

    op_name = "copysign"

    def forward(self, a, b):
        xp = get_array_module(a if hasattr(a, "dtype") else b)
        out = xp.copysign(a, b)
        if self.needs_input_grad[0]:
            self.save_for_backward(xp.sign(a) * xp.sign(out))  # +-1, 0 where a is 0
        self.shapes = (shape_of(a), shape_of(b))
        return out

    def backward(self, g):
        (factor,) = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        ga = unbroadcast(g * factor, self.shapes[0]) if need_a else None
        gb = get_array_module(g).zeros(self.shapes[1], g.dtype) if need_b else None
        return ga, gb

    def backward_graph(self, g):
        (factor,) = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        ga = unbroadcast_graph(g * const(factor), self.shapes[0]) if need_a else None
        gb = const(get_array_module(g.array).zeros(self.shapes[1], g.dtype)) if need_b else None
        return ga, gb


def atan2(input: Any, other: Any) -> Tensor:
    """The angle of the point (other, input) in (-pi, pi]: atan(input / other) in the right
    quadrant. Integer tensors give the default float dtype."""
    return _binary(Atan2, *_as_float(input, other))


arctan2 = atan2


def logaddexp(input: Any, other: Any) -> Tensor:
    """log(exp(input) + exp(other)), without overflow."""
    return _binary(LogAddExp, *_as_float(input, other))


def _as_float(a: Any, b: Any) -> tuple:
    """Both operands with a float side: integer tensors take the default float dtype when
    neither side is a float tensor (PyTorch's rule for ops defined on floats only)."""
    a, b = operand(a), operand(b)
    if not any(isinstance(x, Tensor) and x.dtype.kind == "f" for x in (a, b)):
        default = dtypes.get_default_dtype()
        a = a.to(default) if isinstance(a, Tensor) else float(a)
        b = b.to(default) if isinstance(b, Tensor) else float(b)
    return a, b


def float_power(input: Any, exponent: Any) -> Tensor:
    """input ** exponent computed in float64, whatever the inputs' dtypes (PyTorch's rule)."""
    a, b = operand(input), operand(exponent)
    a = a.to(dtypes.float64) if isinstance(a, Tensor) else float(a)
    b = b.to(dtypes.float64) if isinstance(b, Tensor) else float(b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("float_power: at least one of input and exponent must be a Tensor")
    return _binary(Pow, a, b)


def _require_float_tensor(op: str, *tensors: Any) -> None:
    for t in tensors:
        if isinstance(t, Tensor) and t.dtype.kind != "f":
            raise RuntimeError(
                f"{op}: expected floating-point tensors, got {t.dtype}; convert with .float() "
                "(PyTorch has no integer kernel for this op either)"
            )


class Lerp(Function):
    """lerp with a number weight, PyTorch's formula: input + w (end - input) where |w| < 0.5,
    else end - (end - input) (1 - w), w and 1 - w in the inputs' dtype (so lerp(a, b, 1) is
    b). One compiled loop with numba for same-shape operands (the product and sum fused, as
    torch's kernel: its bits), else three in-place passes. Backward: g (1 - w) and g w, the
    products PyTorch computes. Saves nothing."""

    op_name = "lerp"
    weight: float

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        t = a.dtype.type
        w = t(self.weight)
        small = bool(abs(w) < 0.5)
        if a.shape == b.shape and (loops := compiled.loops(a, b)) is not None:
            return compiled.map_backward(loops.lerp, a, b, w, t(1) - w, small)
        xp = get_array_module(a)
        with _quiet():  # inf - inf: NaN, as torch's, without NumPy's warning
            out = xp.subtract(b, a)
            if small:
                out *= w
                out += a
            else:
                out *= t(1) - w
                xp.subtract(b, out, out=out)
        return out

    def backward(self, g):
        sa, sb = self.shapes
        need_a, need_b = self.needs_input_grad
        t = g.dtype.type
        ga = unbroadcast(g * t(1 - self.weight), sa) if need_a else None
        gb = unbroadcast(g * t(self.weight), sb) if need_b else None
        return ga, gb

    def backward_graph(self, g):
        sa, sb = self.shapes
        need_a, need_b = self.needs_input_grad
        ga = unbroadcast_graph(g * (1 - self.weight), sa) if need_a else None
        gb = unbroadcast_graph(g * self.weight, sb) if need_b else None
        return ga, gb


def lerp(input: Tensor, end: Any, weight: Any) -> Tensor:
    """input + weight * (end - input), weight a number or a tensor (broadcast); for a number
    weight, PyTorch's formula (end - (end - input) * (1 - weight) where |weight| >= 0.5)."""
    _require_float_tensor("lerp", input, end, weight)
    if (
        type(input) is Tensor and type(end) is Tensor and input.dtype == end.dtype
        and input.dtype.kind == "f" and type(weight) in (float, int)
        and type(input.array) is type(end.array)
    ):  # fmt: skip
        return Lerp.apply(input, end, weight=float(weight))
    return add(input, mul(weight, sub(end, input)))


def addcmul(input: Tensor, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
    """input + value * tensor1 * tensor2 (broadcast)."""
    product = mul(tensor1, tensor2)
    return add(input, product if value == 1 else mul(product, value))


def addcdiv(input: Tensor, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
    """input + value * tensor1 / tensor2 (broadcast). Integer tensor1 and tensor2 raise, as in
    PyTorch (it once truncated the quotient)."""
    if all(isinstance(t, Tensor) and t.dtype.kind in "iub" for t in (tensor1, tensor2)):
        raise RuntimeError(
            "addcdiv: integer division with addcdiv is not supported; use "
            "input + value * tensor1 / tensor2 for a true division, or "
            "(input + value * trunc(tensor1 / tensor2)).to(input.dtype) for the old behaviour"
        )
    quotient = div(tensor1, tensor2)
    return add(input, quotient if value == 1 else mul(quotient, value))


def isclose(
    input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> Tensor:
    """|input - other| <= atol + rtol * |other| elementwise (a bool tensor, no gradient)."""
    a, b = operand(input), operand(other)
    xa = a.array if isinstance(a, Tensor) else a
    xb = b.array if isinstance(b, Tensor) else b
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if type(xa) is not type(xb):
            raise RuntimeError(
                f"isclose: expected both tensors on one device, got {a.device} and {b.device}"
            )
        if a.dtype != b.dtype:
            raise RuntimeError(
                f"isclose: {a.dtype} did not match {b.dtype}; convert one of them first "
                "(PyTorch compares tensors of one dtype only)"
            )
    xp = get_array_module(xa if isinstance(a, Tensor) else xb)
    return Tensor._wrap(xp.asarray(xp.isclose(xa, xb, rtol=rtol, atol=atol, equal_nan=equal_nan)))


def allclose(
    input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """Whether isclose holds everywhere, as a Python bool (one host sync on cuda)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).array.all())


def nan_to_num(
    input: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> Tensor:
    """NaN replaced by `nan`, +inf/-inf by `posinf`/`neginf` (the dtype's largest and lowest
    values by default); integer tensors are returned as copies. The gradient passes where the
    input was finite."""
    if input.dtype.kind != "f":
        return Tensor._wrap(input.array.copy())
    return NanToNum.apply(input, nan=float(nan), posinf=posinf, neginf=neginf)


def xlogy(input: Any, other: Any) -> Tensor:
    """input * log(other), 0 where input is 0 (unless other is NaN)."""
    return _binary(XLogY, *_as_float(input, other))


def hypot(input: Any, other: Any) -> Tensor:
    """sqrt(input^2 + other^2), elementwise, without overflow."""
    _require_float_tensor("hypot", input, other)
    return _binary(Hypot, input, other)


def copysign(input: Any, other: Any) -> Tensor:
    """|input| with the sign of other (a float result; no gradient for other, as PyTorch)."""
    return _binary(CopySign, *_as_float(input, other))


def signbit(input: Tensor) -> Tensor:
    """Whether the sign bit is set (True for -0.0 and negative values; a bool tensor)."""
    return Tensor._wrap(get_array_module(input.array).signbit(input.array))


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)); with eps, p is first clamped to [eps, 1 - eps] (zero gradient
    outside, as PyTorch)."""
    from gradflow.ops.unary import log, log1p

    if input.dtype.kind != "f":
        input = input.to(dtypes.get_default_dtype())
    p = input if eps is None else clip(input, eps, 1 - eps)
    return sub(log(p), log1p(neg(p)))


def deg2rad(input: Tensor) -> Tensor:
    """Degrees to radians."""
    return mul(_as_float(input, 1.0)[0], math.pi / 180)


def rad2deg(input: Tensor) -> Tensor:
    """Radians to degrees."""
    return mul(_as_float(input, 1.0)[0], 180 / math.pi)
