"""Arithmetic with NumPy broadcasting: add, sub, mul, div, neg, pow, maximum, minimum, where,
clip; remainder, fmod, floor_divide; comparisons, logical ops and predicates (isinf, isnan, ...:
no gradient). The rest of the pointwise math (atan2, logaddexp, xlogy, hypot, lerp, addcmul,
isclose, ...) is gradflow/ops/pointwise_math.py.

Every binary op reduces its input gradients back to each input's shape (``unbroadcast``).
Python scalars may stand on either side; they are constants (no gradient).
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import numpy

from gradflow import dtypes
from gradflow.autograd.differentiable import const, graph_input, graph_output
from gradflow.autograd.differentiable import unbroadcast as _unb
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.backend.routing import uses_kernels
from gradflow.ops._util import operand, shape_of, unbroadcast
from gradflow.tensor import Tensor


class Add(Function):
    op_name = "add"

    def forward(self, a, b):
        self.shapes = (getattr(a, "shape", ()), getattr(b, "shape", ()))  # saves shapes only
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g, sa) if need_a else None, unbroadcast(g, sb) if need_b else None)

    def backward_graph(self, g):
        sa, sb = self.shapes
        need_a, need_b = self.needs_input_grad
        return (_unb(g, sa) if need_a else None, _unb(g, sb) if need_b else None)


class Sub(Function):
    op_name = "sub"

    def forward(self, a, b):
        self.shapes = (getattr(a, "shape", ()), getattr(b, "shape", ()))  # saves shapes only
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g, sa) if need_a else None, unbroadcast(-g, sb) if need_b else None)

    def backward_graph(self, g):
        sa, sb = self.shapes
        need_a, need_b = self.needs_input_grad
        return (_unb(g, sa) if need_a else None, _unb(-g, sb) if need_b else None)


class Mul(Function):
    op_name = "mul"

    def forward(self, a, b):
        need_a, need_b = self.needs_input_grad
        # None for a Python number: its gradient is never asked for, and a 0-d array's () must
        # not make `x * 3` look like a same-shape pair for the kernel
        self.shapes = (getattr(a, "shape", None), getattr(b, "shape", None))
        self.save_for_backward(b if need_a else None, a if need_b else None)  # the other operand
        return a * b

    def backward(self, g):
        b, a = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        sa, sb = self.shapes
        if sa == sb == g.shape and uses_kernels(g):
            return _binary_kernel("mul", a, b, g, need_a, need_b)
        return (
            unbroadcast(g * b, sa) if need_a else None,
            unbroadcast(g * a, sb) if need_b else None,
        )

    def backward_graph(self, g):
        b, a = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        sa, sb = self.shapes
        return (
            _unb(g * graph_input(self, 1, b), sa) if need_a else None,
            _unb(g * graph_input(self, 0, a), sb) if need_b else None,
        )


class Div(Function):
    op_name = "div"

    def forward(self, a, b):
        out = a / b
        self.save_for_backward(a, b)  # a for b's gradient; b for both
        return out

    def backward(self, g):
        a, b = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        both_arrays = hasattr(a, "shape") and hasattr(b, "shape")  # not a Python number
        if both_arrays and a.shape == b.shape == g.shape and uses_kernels(g):
            return _binary_kernel("div", a, b, g, need_a, need_b)
        ga = unbroadcast(g / b, shape_of(a)) if need_a else None
        gb = None
        if need_b:  # PyTorch's -g * ((a / b) / b), in one temporary where shapes allow
            gb = a / b
            if getattr(gb, "ndim", 0) and gb.shape == g.shape:
                gb /= b
                gb *= g
                gb = get_array_module(g).negative(gb, out=gb)
            else:
                gb = -g * (gb / b)
            gb = unbroadcast(gb, shape_of(b))
        return ga, gb

    def backward_graph(self, g):
        a, b = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        ta, tb = graph_input(self, 0, a), graph_input(self, 1, b)
        ga = _unb(g / tb, shape_of(a)) if need_a else None
        gb = _unb(-g * ((ta / tb) / tb), shape_of(b)) if need_b else None
        return ga, gb


def _binary_kernel(op: str, a: Any, b: Any, g: Any, need_a: bool, need_b: bool) -> tuple:
    """Both input gradients of a same-shape mul/div in one pass (kernels/elementwise.cu)."""
    from gradflow.kernels import binary_bwd

    xp = get_array_module(g)
    a = a if need_b or op == "div" else xp.empty_like(g)  # mul: a unused when only ga needed
    b = b if need_a or op == "div" else xp.empty_like(g)
    return binary_bwd(op, a, b, g, need_a=need_a, need_b=need_b)


class Neg(Function):
    op_name = "neg"

    def forward(self, a):
        return -a

    def backward(self, g):
        return -g

    def backward_graph(self, g):
        return -g


class Pow(Function):
    """a ** b for tensor or scalar exponents, with PyTorch's gradients at the edges: d/da is 0
    where b == 0 (even at a == 0, where b a^(b-1) is 0 * inf); d/db is g a^b log(a), with the
    factor a^b log(a) taken as 0 where a == 0 and b >= 0 (log(0) is -inf there)."""

    op_name = "pow"

    def forward(self, a, b):
        out = _scalar_power(a, b)
        if out is None:
            out = a**b
        self.save_for_backward(a, b, out if self.needs_input_grad[1] else None)
        return out

    def backward(self, g):
        a, b, out = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        xp = get_array_module(g)
        zero = g.dtype.type(0)
        ga = gb = None
        with _quiet():  # 0 ** negative and log(0) give inf on the way; the where()s pick
            if need_a:
                if not hasattr(b, "shape"):  # a Python number
                    if b == 0:
                        ga = xp.zeros_like(g)
                    elif (
                        xp is numpy
                        and a.shape == g.shape
                        and (t := _scalar_power(a, b - 1)) is not None
                    ):
                        # PyTorch's order, g * (b * a^(b-1)), in one temporary
                        t = numpy.multiply(t, b, out=t)
                        ga = numpy.multiply(t, g, out=t)
                    else:
                        ga = g * b * a ** (b - 1)
                else:
                    ga = xp.where(b == 0, zero, g * (b * a ** (b - 1)))
                ga = unbroadcast(ga, shape_of(a))
            if need_b:
                if hasattr(a, "shape"):
                    factor = xp.where((a == 0) & (b >= 0), zero, out * xp.log(a))
                elif a == 0:
                    factor = xp.where(b >= 0, zero, out * -math.inf)
                else:
                    factor = out * (math.log(a) if a > 0 else math.nan)
                gb = unbroadcast(g * factor, shape_of(b))
        return ga, gb

    def backward_graph(self, g):
        a, b, out = self.saved_arrays
        need_a, need_b = self.needs_input_grad
        ta, tb = graph_input(self, 0, a), graph_input(self, 1, b)
        xp = get_array_module(g.array)
        ga = gb = None
        with _quiet():
            if need_a:
                if not hasattr(b, "shape"):  # a Python number
                    ga = g * 0.0 if b == 0 else g * (b * ta ** (b - 1))
                else:
                    ga = where(const(b == 0), 0.0, g * (tb * ta ** (tb - 1)))
                ga = _unb(ga, shape_of(a))
            if need_b:
                y = graph_output(self, out)
                if hasattr(a, "shape"):
                    factor = where(const((a == 0) & (b >= 0)), 0.0, y * ta.log())
                elif a == 0:
                    factor = where(const(xp.asarray(b >= 0)), 0.0, y * -math.inf)
                else:
                    factor = y * (math.log(a) if a > 0 else math.nan)
                gb = _unb(g * factor, shape_of(b))
        return ga, gb


def _scalar_power(a: Any, b: Any) -> Any:
    """a ** b for a float32/float64 NumPy array and a finite Python-number exponent, or None
    for other operands. The exponents PyTorch computes by multiplication are multiplications
    here too (2: a*a, 3: a*a*a, -1: 1/a, -2: 1/(a*a); 1: a copy, 0: ones); any other
    exponent is pow(|a|, b) with the sign put back for odd integer b and NaN for a finite
    negative base under a non-integer b, as pow gives (NumPy's pow of a negative base takes a
    scalar path ~50x slower; within 1 ulp of it for integer b, the same bits otherwise). The
    result is always a new array."""
    if type(b) is not int and type(b) is not float:
        return None
    if type(a) is not numpy.ndarray or a.ndim == 0:
        return None
    if a.dtype != numpy.float32 and a.dtype != numpy.float64:
        return None
    if b == 1:
        return a.copy()
    if b == 0:
        return numpy.ones_like(a)
    with _quiet():
        if b == 2:
            return numpy.multiply(a, a)
        if b == 3:
            out = numpy.multiply(a, a)
            return numpy.multiply(out, a, out=out)
        if b == -1:
            return numpy.reciprocal(a)
        if b == -2:
            out = numpy.multiply(a, a)
            return numpy.reciprocal(out, out=out)
        try:
            b = float(a.dtype.type(b))  # the exponent NumPy computes with
        except OverflowError:  # an int beyond float: a ** b raises it as NumPy does
            return None
        if not math.isfinite(b) or b == 0.5:  # NumPy's ** 0.5 is sqrt (as PyTorch's)
            return None
        out = numpy.abs(a)
        numpy.power(out, b, out=out)
        if b == int(b):
            if int(b) % 2:
                numpy.copysign(out, a, out=out)
        else:
            negative = numpy.less(a, 0)
            negative &= numpy.greater(a, -math.inf)  # pow(-inf, b) is |-inf| ** b
            numpy.putmask(out, negative, math.nan)
    return out


def _quiet() -> Any:
    """Silence NumPy's warnings where inf/NaN intermediates are expected and then replaced."""
    return numpy.errstate(divide="ignore", invalid="ignore", over="ignore")


class BinaryUfunc(Function):
    """A node computing the array module's binary ufunc `_ufunc` (a or b may be a Python
    number); it keeps both inputs and its output for the subclass's backward."""

    _ufunc = ""

    def forward(self, a, b):
        xp = get_array_module(a if hasattr(a, "dtype") else b)
        out = getattr(xp, self._ufunc)(a, b)
        self.save_for_backward(a, b, out)
        return out


class Maximum(BinaryUfunc):
    """Elementwise max; on ties the gradient is split evenly (as PyTorch)."""

    op_name = "maximum"
    _ufunc = "maximum"

    def backward(self, g):
        return _select_backward(self, g)

    def backward_graph(self, g):
        return _select_backward_graph(self, g)


class Minimum(BinaryUfunc):
    """Elementwise min; on ties the gradient is split evenly (as PyTorch)."""

    op_name = "minimum"
    _ufunc = "minimum"

    def backward(self, g):
        return _select_backward(self, g)

    def backward_graph(self, g):
        return _select_backward_graph(self, g)


def _select_backward(fn: Function, g):
    a, b, out = fn.saved_arrays
    need_a, need_b = fn.needs_input_grad
    a_hit = a == out
    b_hit = b == out
    share = g / (a_hit.astype(g.dtype) + b_hit.astype(g.dtype))
    ga = unbroadcast(share * a_hit, shape_of(a)) if need_a else None
    gb = unbroadcast(share * b_hit, shape_of(b)) if need_b else None
    return ga, gb


def _select_backward_graph(fn: Function, g):
    a, b, out = fn.saved_arrays
    need_a, need_b = fn.needs_input_grad
    a_hit = (a == out).astype(g.dtype)
    b_hit = (b == out).astype(g.dtype)
    share = g / const(a_hit + b_hit)
    ga = _unb(share * const(a_hit), shape_of(a)) if need_a else None
    gb = _unb(share * const(b_hit), shape_of(b)) if need_b else None
    return ga, gb


class Where(Function):
    op_name = "where"

    def forward(self, condition, a, b):
        self.save_for_backward(condition)  # a bool mask, not the float inputs
        self.shapes = (shape_of(a), shape_of(b))
        out = _bitwise_select(condition, a, b)
        if out is None:
            out = get_array_module(condition).where(condition, a, b)
        return out

    def backward(self, g):
        (condition,) = self.saved_arrays
        _, need_a, need_b = self.needs_input_grad
        zero = g.dtype.type(0)
        ga = unbroadcast(g * condition, self.shapes[0]) if need_a else None
        gb = None
        if need_b:
            gb = _bitwise_select(condition, zero, g)
            if gb is None:
                gb = get_array_module(g).where(condition, zero, g)
            gb = unbroadcast(gb, self.shapes[1])
        return None, ga, gb

    def backward_graph(self, g):
        (condition,) = self.saved_arrays
        _, need_a, need_b = self.needs_input_grad
        mask = condition.astype(g.dtype)
        ga = _unb(g * const(mask), self.shapes[0]) if need_a else None
        gb = _unb(g * const(1 - mask), self.shapes[1]) if need_b else None
        return None, ga, gb


_SELECT_INTS = {numpy.dtype(numpy.float32): numpy.int32, numpy.dtype(numpy.float64): numpy.int64}


def _bitwise_select(condition: Any, a: Any, b: Any) -> Any:
    """numpy.where(condition, a, b), bit for bit, as integer masking, for NumPy float32/float64
    arrays of one shape (a may be that dtype's 0): NumPy's where branches per element, ~6x
    slower on a mixed mask. None for other operands and small arrays."""
    if type(condition) is not numpy.ndarray or type(b) is not numpy.ndarray:
        return None
    ints = _SELECT_INTS.get(b.dtype)
    if ints is None or b.size < 4096 or condition.shape != b.shape:
        return None
    if condition.dtype != numpy.bool_:
        return None
    # -1 (all bits) where the condition holds, 0 elsewhere
    mask = numpy.negative(condition.view(numpy.uint8), dtype=ints)
    b_bits = b.view(ints)
    if type(a) is numpy.ndarray:
        if a.dtype != b.dtype or a.shape != b.shape:
            return None
        out = numpy.bitwise_xor(a.view(ints), b_bits)  # b ^ ((a ^ b) & mask)
        out &= mask
        out ^= b_bits
    elif type(a) is b.dtype.type and a == 0 and not numpy.signbit(a):
        out = numpy.invert(mask, out=mask)  # b & ~mask
        out &= b_bits
    else:
        return None
    return out.view(b.dtype)


class Clip(Function):
    """Clamp to [min, max]; the gradient passes where the input was inside the range."""

    op_name = "clip"

    high: float | None
    low: float | None

    def forward(self, x):
        out = get_array_module(x).clip(x, self.low, self.high)
        if self.needs_input_grad[0]:
            inside = [x >= self.low] if self.low is not None else []
            inside += [x <= self.high] if self.high is not None else []
            self.save_for_backward(inside[0] & inside[-1])  # a bool mask
        return out

    def backward(self, g):
        (mask,) = self.saved_arrays
        return g * mask

    def backward_graph(self, g):
        return g * const(self.saved_arrays[0].astype(g.dtype))


class Remainder(Function):
    """a - floor(a / b) * b (Python's sign convention) on floats; d/da = 1, d/db = -floor(a/b)
    with torch's floor division (Python's: the true floor, -1 for -1e-38 // 1e21, where
    floor(a / b) of the rounded quotient is -0)."""

    op_name = "remainder"

    def forward(self, a, b):
        xp = get_array_module(a if hasattr(a, "dtype") else b)
        quotient = [] if self.needs_input_grad[1] else None
        out = _float_division_remainder(xp, a, b, "floor", quotient)
        if quotient:  # the fast route's exact floor quotient (float32): all backward needs
            self.save_for_backward(quotient[0], None, None)
        elif quotient is not None:
            self.save_for_backward(None, a, b)
        self.shapes = (shape_of(a), shape_of(b))
        return out

    def _quotient(self, xp: Any) -> tuple:
        """(floor(a / b), whether the caller may write into it): the saved float32 quotient
        of the fast route, else Python's (and torch's) float floor division of a and b."""
        q, a, b = self.saved_arrays
        if q is not None:
            return q, False
        with _quiet():
            return xp.floor_divide(a, b), True

    def backward(self, g):
        return _division_grads(self, g)

    def backward_graph(self, g):
        return _division_grads_graph(self, g)


class Fmod(Function):
    """a - trunc(a / b) * b (C's sign convention); d/da = 1, d/db = -trunc(a / b)."""

    op_name = "fmod"

    def forward(self, a, b):
        xp = get_array_module(a if hasattr(a, "dtype") else b)
        self.save_for_backward(a if self.needs_input_grad[1] else None, b)
        self.shapes = (shape_of(a), shape_of(b))
        return _float_division_remainder(xp, a, b, "trunc")

    def _quotient(self, xp: Any) -> tuple:
        """(trunc(a / b), the quotient rounded in the op's dtype as torch's; a new array)."""
        a, b = self.saved_arrays
        with _quiet():
            q = xp.asarray(a / b)
            xp.trunc(q, out=q)
        return q, True

    def backward(self, g):
        return _division_grads(self, g)

    def backward_graph(self, g):
        return _division_grads_graph(self, g)


def _division_grads(fn: Function, g: Any) -> tuple:
    """fmod's and remainder's gradients: g, and -g times the rounded quotient a / b that
    fn._quotient gives (with whether it may be written into), unbroadcast to the operands."""
    need_a, need_b = fn.needs_input_grad
    sa, sb = fn.shapes
    xp = get_array_module(g)
    ga = unbroadcast(g, sa) if need_a else None
    gb = None
    if need_b:
        q, owned = fn._quotient(xp)
        with _quiet():
            if owned and q.shape == g.shape:
                xp.multiply(q, g, out=q)
                gb = unbroadcast(xp.negative(q, out=q), sb)
            else:
                gb = unbroadcast(-g * q, sb)
    return ga, gb


# The exact float32 route of fmod and remainder: NumPy's float32 fmod is a scalar libm loop
# (17 ms per 2^20 elements, torch's 3). For float32 a and b the quotient a / b divided in
# float64 rounds to an integer only when it is one, as long as |quotient| < 2^29 (a - n b,
# when not 0, is at least ulp(b) >= |b| 2^-24, far above float64's rounding of a quotient
# below 2^29); n b is then exact in float64 (29 + 24 bits) and so is a - n b (a multiple of
# ulp(b) below |b| in magnitude, or a + b rounded once when |a| < |b|), so the float32 result
# has torch's bits: fmod's exactly, remainder's as torch's fmod(a, b) + b.
_EXACT_QUOTIENT = 2.0**29


def _float_division_remainder(
    xp: Any, a: Any, b: Any, rounding: str, quotient: list | None = None
) -> Any:
    """fmod (rounding "trunc") or float remainder ("floor") with torch's values and signs: a
    zero result takes the dividend's sign in both (torch's remainder is fmod(a, b) + b where
    the two differ in sign, so remainder(-3., 1.) is -0.0, where NumPy's gives 0.0). A
    quotient list gets the rounded quotient as a float32 array when the fast route knew it
    exactly (below 2^24), else nothing."""
    with _quiet():
        out = _float32_division_remainder(a, b, rounding, quotient) if xp is numpy else None
        if out is not None:
            return out
        m = xp.fmod(a, b)
        if rounding == "trunc":
            return m
        m = xp.asarray(m)
        fix = (m != 0) & ((m < 0) != (xp.asarray(b) < 0))
        return xp.where(fix, m + b, m)


def _float32_division_remainder(a: Any, b: Any, rounding: str, quotient: list | None = None) -> Any:
    """The float64-quotient route for float32 NumPy operands (a Python number is rounded to
    float32 first, as torch's scalar operand); None where it does not apply: another dtype,
    a broadcast other than against a single element, 0-d or empty results, and any NaN, inf,
    zero divisor or quotient of 2^29 or more (those take xp.fmod). Runs in blocks whose
    float64 temporaries stay in cache (whole-array float64 temporaries cost more in page
    faults than in arithmetic)."""
    operands = float32_blocks_operands(a, b)
    if operands is None:
        return None
    shape, flat_a, flat_b = operands
    n = math.prod(shape)
    if numpy.isinf(flat_b).any():  # finite a over infinite b: quotient 0, not caught below
        return None
    out = numpy.empty(n, numpy.float32)
    block = min(n, _BLOCK)
    x, y, q = (numpy.empty(block) for _ in range(3))
    q32 = numpy.empty(n, numpy.float32) if quotient is not None else None
    widest = 0.0
    round_ = getattr(numpy, rounding)
    for start in range(0, n, block):
        stop = min(start + block, n)
        k = stop - start
        xa, yb, qk = x[:k], y[:k], q[:k]
        numpy.copyto(xa, flat_a[start:stop] if flat_a.ndim else flat_a)
        numpy.copyto(yb, flat_b[start:stop] if flat_b.ndim else flat_b)
        numpy.divide(xa, yb, out=qk)
        round_(qk, out=qk)
        # NaN (nan inputs, 0 / 0, inf / inf) fails both tests
        if not (qk.min() > -_EXACT_QUOTIENT and qk.max() < _EXACT_QUOTIENT):
            return None
        if q32 is not None:
            widest = max(widest, -qk.min(), qk.max())
            numpy.copyto(q32[start:stop], qk, casting="same_kind")
        numpy.multiply(qk, yb, out=qk)
        numpy.subtract(qk, xa, out=qk)  # n b - a: +0 where exact
        numpy.multiply(xa, 0.0, out=xa)  # 0 with a's sign (a is finite here)
        numpy.subtract(xa, qk, out=out[start:stop], casting="same_kind")  # a - n b
    if q32 is not None and widest < 2.0**24:
        quotient.append(q32.reshape(shape))
    return out.reshape(shape)


_BLOCK = 1 << 17  # elements per block of the float32 routes: their float64 buffers stay in cache


def float32_blocks_operands(a: Any, b: Any) -> tuple | None:
    """(shape, flat a, flat b) of two float32 NumPy operands for the routes that work through
    them in float64 blocks (fmod, remainder, hypot): a Python number is rounded to float32
    first, as torch's scalar operand, and a one-element operand comes back 0-d. None for other
    dtypes, broadcasts other than against one element, and 0-d or empty results."""
    a32, b32 = (x if hasattr(x, "dtype") else numpy.float32(x) for x in (a, b))
    if a32.dtype != numpy.float32 or b32.dtype != numpy.float32:
        return None
    shape = numpy.broadcast_shapes(numpy.shape(a32), numpy.shape(b32))
    if not shape or math.prod(shape) == 0:
        return None
    if any(x.shape != shape and x.size != 1 for x in (a32, b32)):
        return None
    flat_a, flat_b = (
        numpy.ravel(x) if x.shape == shape else numpy.asarray(x).reshape(()) for x in (a32, b32)
    )
    return shape, flat_a, flat_b


def _division_grads_graph(fn: Function, g: Any) -> tuple:
    """_division_grads on Tensors: the rounded quotient is a constant (its derivative is 0)."""
    need_a, need_b = fn.needs_input_grad
    sa, sb = fn.shapes
    ga = _unb(g, sa) if need_a else None
    gb = None
    if need_b:
        gb = _unb(-g * const(fn._quotient(get_array_module(g.array))[0]), sb)
    return ga, gb


def _promote(a: Any, b: Any, true_division: bool = False) -> tuple:
    """PyTorch's type promotion for elementwise arithmetic: integer/bool tensors take the
    float dtype of the other side (a float tensor's, or the default float for a Python float);
    two float tensors meet at the wider dtype (float32 + float64 is float64), except that a
    0-d tensor does not widen a tensor with dimensions (x32 + tensor(1.0, float64) is
    float32). The cast is differentiable. Ops other than elementwise arithmetic (matmul, conv,
    ...) refuse mixed float dtypes, as PyTorch's do."""
    a, b = operand(a), operand(b)
    target = None
    floats = [x for x in (a, b) if isinstance(x, Tensor) and x.dtype.kind == "f"]
    if len(floats) == 2 and floats[0].dtype != floats[1].dtype:
        dimensioned = [x for x in floats if x.ndim > 0]
        pool = dimensioned if len(dimensioned) == 1 else floats
        target = max((x.dtype for x in pool), key=lambda d: d.itemsize)
        a, b = (x.to(target) if x.dtype != target else x for x in (a, b))
    for x in (a, b):
        if isinstance(x, Tensor) and x.dtype.kind == "f":
            target = x.dtype
            break
    if target is None and (true_division or isinstance(a, float) or isinstance(b, float)):
        target = dtypes.get_default_dtype()
    if target is not None:
        if isinstance(a, Tensor) and a.dtype.kind in "iub":
            a = a.to(target)
        if isinstance(b, Tensor) and b.dtype.kind in "iub":
            b = b.to(target)
    return a, b


def _binary(fn_cls: type, a: Any, b: Any) -> Tensor:
    ta, tb = type(a), type(b)
    try:
        if ta is Tensor:
            if tb is Tensor:
                if a.array.dtype is b.array.dtype:
                    return fn_cls.apply(a, b)
            elif (tb is float or tb is int) and a.array.dtype.kind == "f":
                return fn_cls.apply(a, b)  # the common case: float tensor and a Python number
        elif tb is Tensor and (ta is float or ta is int) and b.array.dtype.kind == "f":
            return fn_cls.apply(a, b)
        return fn_cls.apply(*_promote(a, b))
    except (ValueError, TypeError, OverflowError) as exc:
        _raise_named(fn_cls.op_name, exc, a, b)


def _raise_named(op: str, exc: Exception, *operands: Any) -> NoReturn:
    """Re-raise NumPy's error from an op's forward (shapes that don't broadcast, a Python int
    outside the tensor's dtype, bool subtraction, ...) as a ValueError or TypeError that names
    the op and its operands; gradflow's own errors, which name the op already, go on as they
    are."""
    message = str(exc).strip()
    if message.lower().startswith(op):
        raise exc
    described = ", ".join(
        f"Tensor(shape={tuple(x.shape)}, dtype={x.dtype})" if isinstance(x, Tensor) else repr(x)
        for x in operands
    )
    kind = TypeError if isinstance(exc, TypeError) else ValueError
    raise kind(f"{op}: {message} (operands: {described})") from exc


def add(input: Any, other: Any, alpha: Any = 1) -> Tensor:
    """input + alpha * other with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    return _binary(Add, input, other)


def sub(input: Any, other: Any, alpha: Any = 1) -> Tensor:
    """input - alpha * other with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    return _binary(Sub, input, other)


def rsub(input: Any, other: Any, alpha: Any = 1) -> Tensor:
    """other - alpha * input (sub with the operands swapped)."""
    return sub(other, input, alpha=alpha)


def mul(input: Any, other: Any) -> Tensor:
    """input * other with broadcasting."""
    return _binary(Mul, input, other)


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """input / other with broadcasting (true division: integer inputs give the default float).
    rounding_mode "floor" or "trunc" rounds the quotient (integers stay integers; floats get
    a zero gradient, as in PyTorch)."""
    if rounding_mode is not None:
        return _rounded_div(input, other, rounding_mode)
    try:
        return Div.apply(*_promote(input, other, true_division=True))
    except (ValueError, TypeError, OverflowError) as exc:
        _raise_named("div", exc, input, other)


def _rounded_div(a: Any, b: Any, rounding_mode: str) -> Tensor:
    if rounding_mode not in ("floor", "trunc"):
        raise RuntimeError(
            "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
            f"{rounding_mode!r}"
        )
    if _is_integral(_raw(a)) and _is_integral(_raw(b)):
        floored = _ufunc_without_grad("floor_divide", a, b)  # raises on a zero divisor
        if rounding_mode == "floor":
            return floored
        # trunc: one up where the exact quotient is negative and not whole
        xa, xb = _raw(a), _raw(b)
        xp = get_array_module(floored.array)
        inexact = xp.remainder(xa, xb) != 0
        negative = (xp.asarray(xa) < 0) != (xp.asarray(xb) < 0)
        return Tensor._wrap(floored.array + (inexact & negative))
    from gradflow.ops.rounding import _rounding

    return _rounding(div(a, b), rounding_mode)


divide = div
multiply = mul
subtract = sub


true_divide = div


def neg(input: Tensor) -> Tensor:
    """-input (not defined for bool tensors: use logical_not)."""
    if input.array.dtype.kind == "b":
        raise RuntimeError(
            "neg: negation, the `-` operator, on a bool tensor is not supported; to invert a "
            "mask use the `~` or logical_not() operator"
        )
    return Neg.apply(input)


def pow(input: Any, exponent: Any) -> Tensor:
    """input ** exponent, for tensor or scalar exponent and base."""
    return _binary(Pow, input, exponent)


def maximum(input: Any, other: Any) -> Tensor:
    """Elementwise maximum with broadcasting; ties split the gradient evenly."""
    return _binary(Maximum, input, other)


def minimum(input: Any, other: Any) -> Tensor:
    """Elementwise minimum with broadcasting; ties split the gradient evenly."""
    return _binary(Minimum, input, other)


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """Elements of `input` where `condition` holds, else of `other` (broadcast together).
    ``where(condition)`` alone is ``nonzero(condition, as_tuple=True)``, as in PyTorch."""
    if input is None and other is None:
        from gradflow.ops.sorting import nonzero

        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where() takes a condition alone, or a condition, input and other")
    condition = operand(condition)
    if not isinstance(condition, Tensor) or condition.dtype.kind != "b":
        raise TypeError(
            "where: condition must be a bool tensor, got "
            f"{getattr(condition, 'dtype', type(condition).__name__)}; compare first (x > 0)"
        )
    a, b = _promote(input, other)  # integer/bool tensors take the other side's float dtype
    if not isinstance(a, Tensor) and isinstance(b, Tensor):
        a = _scalar_like(a, b)
    if not isinstance(b, Tensor) and isinstance(a, Tensor):
        b = _scalar_like(b, a)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor) and float in (type(a), type(b)):
        a, b = (dtypes.get_default_dtype().type(v) for v in (a, b))  # two numbers, as PyTorch
    try:
        return Where.apply(condition, a, b)
    except (ValueError, TypeError, OverflowError) as exc:
        _raise_named("where", exc, condition, a, b)


def _scalar_like(value: Any, like: Tensor) -> Any:
    """A Python number as a scalar of `like`'s float dtype (so where() keeps float32)."""
    return like.dtype.type(value) if like.dtype.kind == "f" else value


def clip(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Clamp to [min, max] (either may be None); the gradient is 0 outside the range."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        # tensor bounds (broadcast): the gradient goes to the bound where it is taken and to
        # input elsewhere, ties included, as PyTorch
        out = input
        if min is not None:
            out = where(lt(out, min), min, out)
        if max is not None:
            out = where(gt(out, max), max, out)
        return out
    if input.dtype.kind in "iub" and (isinstance(min, float) or isinstance(max, float)):
        input = input.to(dtypes.get_default_dtype())  # as a Python float does in arithmetic
    try:
        return Clip.apply(input, low=min, high=max)
    except (ValueError, TypeError, OverflowError) as exc:
        _raise_named("clip", exc, input, min, max)


clamp = clip


def clamp_min(input: Tensor, min: Any) -> Tensor:
    """max(input, min) elementwise (clamp with a lower bound only)."""
    return clip(input, min=min)


def clamp_max(input: Tensor, max: Any) -> Tensor:
    """min(input, max) elementwise (clamp with an upper bound only)."""
    return clip(input, max=max)


# ---- comparisons, logic, floor_divide, remainder: nothing is recorded ----------------------
_PUBLIC_NAMES = {
    "equal": "eq",
    "not_equal": "ne",
    "less": "lt",
    "less_equal": "le",
    "greater": "gt",
    "greater_equal": "ge",
}


def _ufunc_without_grad(ufunc_name: str, a: Any, b: Any) -> Tensor:
    """The NumPy/CuPy binary ufunc on the operands' arrays, as a Tensor outside the graph: the
    comparisons, the logical ops, floor_divide and remainder (PyTorch gives none of them a
    gradient)."""
    op = _PUBLIC_NAMES.get(ufunc_name, ufunc_name)
    a, b = operand(a), operand(b)
    xa = a.array if isinstance(a, Tensor) else a
    xb = b.array if isinstance(b, Tensor) else b
    if isinstance(a, Tensor) and isinstance(b, Tensor) and type(xa) is not type(xb):
        raise RuntimeError(
            f"{op}: expected both tensors on one device, got {a.device} and {b.device}"
        )
    xp = get_array_module(xa if isinstance(a, Tensor) else xb)
    if ufunc_name in ("floor_divide", "remainder", "fmod"):
        _check_integer_divisor(op, xa, xb, xp)
    try:
        return Tensor._wrap(getattr(xp, ufunc_name)(xa, xb))
    except (ValueError, TypeError, OverflowError) as exc:
        _raise_named(op, exc, a, b)


def _is_integral(x: Any) -> bool:
    """An integer or bool array, or a Python int (bool included): floor_divide and remainder
    of two of these are integer ops."""
    dtype = getattr(x, "dtype", None)
    return dtype.kind in "iub" if dtype is not None else isinstance(x, int)


def _check_integer_divisor(op: str, xa: Any, xb: Any, xp: Any) -> None:
    """Integer floor_divide/remainder by zero raises ZeroDivisionError, as Python's // and %
    (PyTorch raises a RuntimeError 'ZeroDivisionError' on cpu); NumPy would give 0 and a
    warning. A Python-int divisor is checked as it is; a tensor's zeros are looked for on the
    device and read back in one host synchronization on cuda (floats divide to inf/nan, no
    check)."""
    if not (_is_integral(xa) and _is_integral(xb)):
        return
    if hasattr(xb, "dtype"):
        if xb.size == 0 or not bool((xb == 0).any()):  # cuda: the one synchronization
            return
        where = f"the divisor tensor of shape {tuple(xb.shape)} holds 0"
    elif xb != 0:
        return
    else:
        where = "the divisor is 0"
    raise ZeroDivisionError(
        f"{op}: integer division by zero ({where}); divide floats (x.float()) for inf/nan instead"
    )


def eq(input: Any, other: Any) -> Tensor:
    return _ufunc_without_grad("equal", input, other)


def ne(input: Any, other: Any) -> Tensor:
    return _ufunc_without_grad("not_equal", input, other)


def lt(input: Any, other: Any) -> Tensor:
    return _ufunc_without_grad("less", input, other)


def le(input: Any, other: Any) -> Tensor:
    return _ufunc_without_grad("less_equal", input, other)


def gt(input: Any, other: Any) -> Tensor:
    return _ufunc_without_grad("greater", input, other)


def ge(input: Any, other: Any) -> Tensor:
    return _ufunc_without_grad("greater_equal", input, other)


def logical_and(input: Any, other: Any) -> Tensor:
    return _ufunc_without_grad("logical_and", input, other)


def logical_or(input: Any, other: Any) -> Tensor:
    return _ufunc_without_grad("logical_or", input, other)


def logical_xor(input: Any, other: Any) -> Tensor:
    return _ufunc_without_grad("logical_xor", input, other)


def logical_not(input: Tensor) -> Tensor:
    return Tensor._wrap(get_array_module(input.array).logical_not(input.array))


def floor_divide(input: Any, other: Any) -> Tensor:
    """input // other (no gradient)."""
    return _ufunc_without_grad("floor_divide", input, other)


def remainder(input: Any, other: Any) -> Tensor:
    """input % other, Python's sign convention (the divisor's sign). Floats are
    differentiable (d/dinput = 1, d/dother = -floor(input / other)); integer division by zero
    raises ZeroDivisionError."""
    if _is_integral(_raw(input)) and _is_integral(_raw(other)):
        return _ufunc_without_grad("remainder", input, other)
    return _binary(Remainder, input, other)


def fmod(input: Any, other: Any) -> Tensor:
    """C's remainder: input - trunc(input / other) * other, with the dividend's sign. Floats
    are differentiable (d/dinput = 1, d/dother = -trunc(input / other)); integer division by
    zero raises ZeroDivisionError."""
    if _is_integral(_raw(input)) and _is_integral(_raw(other)):
        return _ufunc_without_grad("fmod", input, other)
    return _binary(Fmod, input, other)


def _raw(x: Any) -> Any:
    x = operand(x)
    return x.array if isinstance(x, Tensor) else x


def isfinite(input: Tensor) -> Tensor:
    return Tensor._wrap(get_array_module(input.array).isfinite(input.array))


def isnan(input: Tensor) -> Tensor:
    return Tensor._wrap(get_array_module(input.array).isnan(input.array))


def isinf(input: Tensor) -> Tensor:
    """Where input is +inf or -inf (a bool tensor)."""
    return Tensor._wrap(get_array_module(input.array).isinf(input.array))


def isposinf(input: Tensor) -> Tensor:
    """Where input is +inf."""
    return Tensor._wrap(input.array == math.inf) if input.dtype.kind == "f" else _all_false(input)


def isneginf(input: Tensor) -> Tensor:
    """Where input is -inf."""
    return Tensor._wrap(input.array == -math.inf) if input.dtype.kind == "f" else _all_false(input)


def _all_false(a: Tensor) -> Tensor:
    return Tensor._wrap(get_array_module(a.array).zeros(a.shape, dtype=bool))
