"""torch.special's functions outside the gamma (ops/gamma.py) and erf (ops/special.py)
families: the modified Bessel functions i0, i0e, i1, i1e; sinc, entr, erfcx, log_ndtr and
xlog1py.

On cpu every function is gradflow's own, in NumPy (no SciPy). The Bessel functions, erfcx and
log_ndtr compute in float64 and round to the input's dtype, over cache-sized blocks (ops/gamma.py's
_blocks); sinc and entr compute in the input's dtype, as torch.

- i0 and i1 are their power series in x^2 / 4 up to |x| = 8 (positive terms: no cancellation),
  times exp(-|x|) for i0e and i1e; above 8 Chebyshev series (coefficients from mpmath, 40
  digits) of sqrt(x) i0e(x), sqrt(x) i1e(x) in 16/x - 1, times exp|x| for i0 and i1.
- erfcx is ops/special.py's erfc tail series (which is exp(x^2) erfc(x)) above 2, exp(x^2)
  erfc(x) below; log_ndtr is log(erfcx(-x / sqrt 2) / 2) - x^2 / 2 below -1 (no underflow in
  the far left tail), log1p(-erfc(x / sqrt 2) / 2) above, as torch.

On cuda each function is cupyx.scipy.special's where it has one (i0, i0e, i1, i1e, erfcx,
log_ndtr, with torch's edge values put back), else the cpu code, with selections by where
instead of boolean indexing (which would synchronize with the host).

Gradients are PyTorch's (derivatives.yaml): i0' = i1, i0e' = i1e - sgn(x) i0e, i1' = i0 - i1 / x
(1/2 at 0), i1e' = i0e - i1e (sgn(x) + 1 / x) (1/2 at 0), sinc' = (cos(pi x) - sinc(x)) / x (a
Taylor series below |x| = 0.1, where the difference cancels; 0 at 0), entr' = -(1 + log x),
erfcx' = 2 x erfcx(x) - 2 / sqrt(pi), log_ndtr' = exp(-x^2 / 2 - log_ndtr(x)) / sqrt(2 pi).
Double backward composes the same public functions.

Float32 results come from float64, so they stay finite where torch's float32 intermediates
overflow (i0(-90) is 5.1e37, torch: inf) and keep the digits torch's float32 exp(x^2) loses
(erfcx of x < -8).

Memory: each op saves its input; i0e, i1, i1e, sinc, erfcx and log_ndtr also their output.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import graph_input, graph_output
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops.gamma import _float, _horner, _route, _select
from gradflow.ops.special import _ERFC_LARGE, _ERFC_MID, _chebyshev, _erf_parts, _quiet
from gradflow.tensor import Tensor

# ---- modified Bessel functions ------------------------------------------------------------
# Above 8, Chebyshev series in s = 16 / x - 1 (c_0 first, Clenshaw's sum c_j T_j(s)) of
# sqrt(x) i0e(x) and sqrt(x) i1e(x), coefficients from mpmath at 48 Chebyshev nodes (40
# digits), cut where they fall below 1e-18 of the first.
_I0E_LARGE = (
    0.4022452055070544,
    0.0033691164782556943,
    6.889758346916825e-05,
    2.8913705208347567e-06,
    2.0489185894690638e-07,
    2.266668990498178e-08,
    3.3962320257083865e-09,
    4.94060238822497e-10,
    1.1889147107846439e-11,
    -3.1499165279632416e-11,
    -1.3215811840447713e-11,
    -1.7941785315068062e-12,
    7.180124451383666e-13,
    3.8527783827421426e-13,
    1.54008621752141e-14,
    -4.150569347287222e-14,
    -9.554846698828307e-15,
    3.8116806693526224e-15,
    1.7725601330565263e-15,
    -3.425485619677219e-16,
    -2.8276239805165836e-16,
    3.461222867697461e-17,
    4.46562142029676e-17,
    -4.830504485944178e-18,
    -7.23318048787476e-18,
    9.921475412173676e-19,
    1.1936508908460063e-18,
)
_I1E_LARGE = (
    0.38928811750914005,
    -0.009761097491361469,
    -0.00011058893876262371,
    -3.882564808877691e-06,
    -2.512236237870209e-07,
    -2.6314688468895196e-08,
    -3.835380385964237e-09,
    -5.589743462196584e-10,
    -1.8974958123505413e-11,
    3.2526035830154884e-11,
    1.4125807436613782e-11,
    2.0356285441470896e-12,
    -7.198551776245908e-13,
    -4.0835511110921974e-13,
    -2.1015418427726643e-14,
    4.272440016711951e-14,
    1.0420276984128802e-14,
    -3.8144030724370075e-15,
    -1.8803547755107825e-15,
    3.3082023109209285e-16,
    2.96262899764595e-16,
    -3.209525921993424e-17,
    -4.650305368489358e-17,
    4.414348323071704e-18,
    7.517296310842111e-18,
    -9.314178867326863e-19,
    -1.2421932751949152e-18,
)


# The power series below 8: i0(x) = sum_k t^k / (k!)^2 and i1(x) = x/2 sum_k t^k / (k! (k+1)!),
# t = x^2 / 4; every term positive, so Horner's rule keeps full relative accuracy. At x = 8 the
# first left-out term is below 1e-17 (float64: 23 terms) or 1e-10 (float32: 17) relative.
_I0_SERIES = tuple(1.0 / math.factorial(k) ** 2 for k in range(23))
_I1_SERIES = tuple(0.5 / (math.factorial(k) * math.factorial(k + 1)) for k in range(23))


def _bessel_parts(w: Any, first: bool, scaled: bool, precise: bool) -> Any:
    """i0(w) (first: i1(w)), times exp(-|w|) when scaled, on a 1-D float64 array: the power
    series up to |w| = 8, the scaled Chebyshev series above (i0 and i1 overflow past 713)."""
    xp = get_array_module(w)
    a = xp.abs(w)
    series = _I1_SERIES if first else _I0_SERIES
    series = series if precise else series[:17]
    large = _I1E_LARGE if first else _I0E_LARGE
    with _quiet():
        below = a <= 8.0

        def near(v: Any) -> Any:
            t = v * v
            t *= 0.25
            out = _horner(xp, series, t)
            if first:
                out *= v
            if scaled:
                xp.negative(v, out=t)
                xp.exp(t, out=t)
                out *= t
            return out

        def far(v: Any) -> Any:
            v = xp.maximum(v, 8.0)
            out = _chebyshev(large, 16.0 / v - 1.0) / xp.sqrt(v)
            return out if scaled else out * xp.exp(v)

        if xp is numpy:
            if below.all():
                out = near(a)
            else:
                out = xp.empty_like(a)
                out[below] = near(a[below])
                above = ~below
                out[above] = far(a[above])
        else:
            out = xp.where(below, near(xp.minimum(a, 8.0)), far(a))
    if first:
        xp.copysign(out, w, out=out)  # odd; NaN stays NaN
    return out


def i0_array(x: Any) -> Any:
    return _route("i0", lambda w, p: _bessel_parts(w, False, False, p), x)


def i0e_array(x: Any) -> Any:
    return _route("i0e", lambda w, p: _bessel_parts(w, False, True, p), x)


def i1_array(x: Any) -> Any:
    return _route("i1", lambda w, p: _bessel_parts(w, True, False, p), x)


def i1e_array(x: Any) -> Any:
    return _route("i1e", lambda w, p: _bessel_parts(w, True, True, p), x)


# ---- erfcx, log_ndtr ----------------------------------------------------------------------
def _erfcx_nonnegative(a: Any) -> Any:
    """exp(a^2) erfc(a) for float64 a >= 0 (or NaN): exp(a^2) erfc(a) below 2; above, the
    scaled series that ops/special.py multiplies by exp(-a^2) for erfc."""
    xp = get_array_module(a)
    with _quiet():
        below = a < 2.0

        def near(v: Any) -> Any:
            return xp.exp(v * v) * _erf_parts(xp.minimum(v, 2.0))[1]

        def far(v: Any) -> Any:
            mid = _chebyshev(_ERFC_MID, xp.clip(v, 2.0, 4.0) - 3.0)
            big = xp.maximum(v, 4.0)
            large = _chebyshev(_ERFC_LARGE, 32.0 / (big * big) - 1.0) / big
            return xp.where(v < 4.0, mid, large)

        if xp is numpy:
            out = xp.empty_like(a)
            out[below] = near(a[below])
            above = ~below
            if above.any():
                out[above] = far(a[above])
        else:
            out = xp.where(below, near(a), far(a))
    return out


def _erfcx_float32(w: Any) -> Any:
    """erfcx of float64 values w that are float32 numbers (NumPy, a float32 result): erfc of
    the float32 w (ops/special.py's, within 0.51 ulp) times exp(w^2) in float64, below 4;
    the scaled tail series at 4 and above (where float32 erfc underflows). Within about 1 ulp
    of float32 once rounded: 8 passes where the float64 series are 60."""
    from gradflow.ops.special import erfc_array

    with _quiet():
        out = erfc_array(w.astype(numpy.float32)).astype(numpy.float64)
        t = w * w
        numpy.exp(t, out=t)
        out *= t
        far = w >= 4.0  # and +inf; NaN stays NaN
        if far.any():
            out[far] = _erfcx_nonnegative(w[far])
    return out


def _erfcx64(w: Any, precise: bool) -> Any:
    """erfcx(w) = exp(w^2) erfc(w); below 0, 2 exp(w^2) - erfcx(-w) (inf below -26.6)."""
    xp = get_array_module(w)
    if xp is numpy and not precise:
        return _erfcx_float32(w)  # erfc(w) for w < 0 is in (1, 2]: no cancellation there
    with _quiet():
        out = _erfcx_nonnegative(xp.abs(w))
        return _select(xp, out, w < 0, lambda v, e: 2.0 * xp.exp(v * v) - e, w, out)


def _log_ndtr64(w: Any, precise: bool) -> Any:
    """log(ndtr(w)), as torch: log(erfcx(-w / sqrt 2) / 2) - w^2 / 2 below -1 (exact in the
    far tail), else log1p(-erfc(w / sqrt 2) / 2)."""
    xp = get_array_module(w)
    t = w * (1 / math.sqrt(2))
    if xp is numpy and not precise:
        return _log_ndtr_float32(t)
    with _quiet():
        upper = xp.log1p(-0.5 * _erf_tail(xp, t))
        return _select(
            xp, upper, w < -1.0, lambda v: xp.log(0.5 * _erfcx_nonnegative(-v)) - v * v, t
        )


def _log_ndtr_float32(t: Any) -> Any:
    """log_ndtr for float32 results from t = x / sqrt 2 (float64): with E = erfcx(|t|) at t
    rounded to float32 (erfcx's relative condition number is below 1, so the rounding costs
    6e-8 at most) and exp(-t^2) from the float64 t, ndtr(x) = E exp(-t^2) / 2 below t = 0:
    log(E / 2) - t^2; above, log1p(-E exp(-t^2) / 2). Rounding t to float32 inside erfc would
    lose 2 t^2 ulp instead."""
    with _quiet():
        a = numpy.abs(t)
        e = _erfcx_float32(a.astype(numpy.float32).astype(numpy.float64))
        e *= 0.5
        square = numpy.multiply(t, t, out=a)
        lower = t < 0
        out = numpy.log(e)
        out -= square
        upper = ~lower
        if upper.any():
            tail = e[upper] * numpy.exp(-square[upper])
            out[upper] = numpy.log1p(-tail)
    return out


def _erf_tail(xp: Any, t: Any) -> Any:
    """erfc(t) for float64 t (NaN stays NaN)."""
    value, tail = _erf_parts(xp.abs(t))
    return xp.where(t < 0, 1.0 + value, tail)


def erfcx_array(x: Any) -> Any:
    return _route("erfcx", _erfcx64, x)


def log_ndtr_array(x: Any) -> Any:
    return _route("log_ndtr", _log_ndtr64, x)


# ---- Functions ----------------------------------------------------------------------------
class I0(Function):
    op_name = "i0"

    def forward(self, x):
        self.save_for_backward(x)
        return i0_array(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * i1_array(x)

    def backward_graph(self, g):
        return g * i1(graph_input(self, 0, self.saved_arrays[0]))


class I0e(Function):
    op_name = "special_i0e"

    def forward(self, x):
        y = i0e_array(x)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_arrays
        xp = get_array_module(x)
        return g * (i1e_array(x) - xp.sign(x) * y)

    def backward_graph(self, g):
        x, y = self.saved_arrays
        tx = graph_input(self, 0, x)
        return g * (i1e(tx) - tx.sign() * graph_output(self, y))


class I1(Function):
    op_name = "special_i1"
    _scaled = False  # I1e: exp(-|x|) i1(x)

    def forward(self, x):
        y = i1e_array(x) if self._scaled else i1_array(x)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_arrays
        xp = get_array_module(x)
        with _quiet():
            if self._scaled:
                d = i0e_array(x) - y * (xp.sign(x) + 1 / x)
            else:
                d = i0_array(x) - y / x
        return g * xp.where(x == 0, d.dtype.type(0.5), d)

    def backward_graph(self, g):
        x, y = self.saved_arrays
        tx, ty = graph_input(self, 0, x), graph_output(self, y)
        xp = get_array_module(x)
        zero = Tensor._wrap(xp.asarray(x == 0))
        safe = tx.masked_fill(zero, 1.0)
        if self._scaled:
            d = i0e(tx) - ty * (tx.sign() + 1 / safe)
        else:
            d = i0(tx) - ty / safe
        return g * d.masked_fill(zero, 0.5)


class I1e(I1):
    op_name = "special_i1e"
    _scaled = True


def _sinc_slope_series(x: Any) -> Any:
    """sinc'(x) for |x| < 0.1 by its Taylor series (in x's dtype)."""
    t = x.dtype.type
    x2 = x * x
    return x * (t(-(math.pi**2) / 3) + x2 * (t(math.pi**4 / 30) - x2 * t(math.pi**6 / 840)))


class Sinc(Function):
    op_name = "sinc"

    def forward(self, x):
        xp = get_array_module(x)
        with _quiet():
            t = xp.asarray(x * x.dtype.type(math.pi))
            y = xp.empty_like(t)
            xp.sin(t, out=y)
            y /= t
        if not x.all():
            xp.copyto(y, 1, where=x == 0)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_arrays
        xp = get_array_module(x)
        with _quiet():
            d = xp.asarray(x * x.dtype.type(math.pi))
            xp.cos(d, out=d)
            d -= y
            d /= x
        # below |x| = 0.1 the difference cancels (float32: 5e-4 at 1e-4): the Taylor series
        # -pi^2 x / 3 + pi^4 x^3 / 30 - pi^6 x^5 / 840, within 3e-8 relative there (0 at 0)
        small = xp.abs(x) < 0.1
        d = _select(xp, d, small, _sinc_slope_series, x)
        if g.shape == d.shape and g.dtype == d.dtype:
            d *= g
            return d
        return g * d

    def backward_graph(self, g):
        x, y = self.saved_arrays
        tx, ty = graph_input(self, 0, x), graph_output(self, y)
        zero = Tensor._wrap(get_array_module(x).asarray(x == 0))
        safe = tx.masked_fill(zero, 1.0)
        return g * (((tx * math.pi).cos() - ty) / safe).masked_fill(zero, 0.0)


class Entr(Function):
    op_name = "special_entr"

    def forward(self, x):
        xp = get_array_module(x)
        self.save_for_backward(x)
        with _quiet():
            y = xp.asarray(-x * xp.log(x))
            y = xp.where(x < 0, y.dtype.type(-math.inf), y)
            return xp.where(x == 0, y.dtype.type(0), y)

    def backward(self, g):
        (x,) = self.saved_arrays
        with _quiet():
            return g * -(1 + get_array_module(x).log(x))

    def backward_graph(self, g):
        return g * -(1 + graph_input(self, 0, self.saved_arrays[0]).log())


class Erfcx(Function):
    op_name = "special_erfcx"

    def forward(self, x):
        y = erfcx_array(x)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_arrays
        with _quiet():
            return g * (2 * x * y - x.dtype.type(2 / math.sqrt(math.pi)))

    def backward_graph(self, g):
        x, y = self.saved_arrays
        tx, ty = graph_input(self, 0, x), graph_output(self, y)
        return g * (2 * tx * ty - 2 / math.sqrt(math.pi))


class LogNdtr(Function):
    op_name = "special_log_ndtr"

    def forward(self, x):
        y = log_ndtr_array(x)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_arrays
        xp = get_array_module(x)
        with _quiet():
            return g * (xp.exp(-(y + x * x * 0.5)) * x.dtype.type(1 / math.sqrt(2 * math.pi)))

    def backward_graph(self, g):
        x, y = self.saved_arrays
        tx, ty = graph_input(self, 0, x), graph_output(self, y)
        return g * ((-(ty + tx * tx * 0.5)).exp() * (1 / math.sqrt(2 * math.pi)))


def _log1p(xp: Any, y: Any) -> Any:
    """log1p of an array, or of a Python number as a Python float (which keeps the other
    operand's dtype in NumPy's promotion, as PyTorch's scalars do)."""
    if hasattr(y, "dtype"):
        return xp.log1p(y)
    y = float(y)
    return math.log1p(y) if y > -1 else (-math.inf if y == -1 else math.nan)


class Xlog1py(Function):
    """x * log1p(y), 0 where x == 0 (unless y is NaN); PyTorch's gradients:
    xlog1py(g, y), 0 where x == 0 and y <= -1, for x; g x / (1 + y) for y."""

    op_name = "special_xlog1py"

    def forward(self, x, y):
        xp = get_array_module(x if hasattr(x, "dtype") else y)
        self.save_for_backward(x, y)
        with _quiet():
            value = xp.asarray(x * _log1p(xp, y))
            return xp.where((x == 0) & ~xp.isnan(y), value.dtype.type(0), value)

    def backward(self, g):
        from gradflow.ops._util import shape_of, unbroadcast

        x, y = self.saved_arrays
        need_x, need_y = self.needs_input_grad
        xp = get_array_module(g)
        gx = gy = None
        with _quiet():
            if need_x:
                d = xp.asarray(g * _log1p(xp, y))
                d = xp.where(((g == 0) & ~xp.isnan(y)) | ((x == 0) & (y <= -1)), 0, d)
                gx = unbroadcast(d.astype(g.dtype, copy=False), shape_of(x))
            if need_y:
                gy = unbroadcast(g * x / (1 + y), shape_of(y))
        return gx, gy

    def backward_graph(self, g):
        from gradflow.autograd.differentiable import const
        from gradflow.autograd.differentiable import unbroadcast as unbroadcast_graph
        from gradflow.ops._util import shape_of

        x, y = self.saved_arrays
        need_x, need_y = self.needs_input_grad
        tx, ty = graph_input(self, 0, x), graph_input(self, 1, y)
        gx = gy = None
        with _quiet():
            if need_x:
                xp = get_array_module(g.array)
                keep = ~((xp.asarray(x) == 0) & (xp.asarray(y) <= -1))
                keep = const(keep.astype(g.dtype))
                gx = unbroadcast_graph(xlog1py(g, ty) * keep, shape_of(x))
            if need_y:
                gy = unbroadcast_graph(g * tx / (1 + ty), shape_of(y))
        return gx, gy


# ---- public functions ---------------------------------------------------------------------
def i0(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind, order 0."""
    return I0.apply(_float(input, "i0"))


def i0e(input: Tensor) -> Tensor:
    """exp(-|x|) i0(x), the exponentially scaled i0."""
    return I0e.apply(_float(input, "special_i0e"))


def i1(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind, order 1."""
    return I1.apply(_float(input, "special_i1"))


def i1e(input: Tensor) -> Tensor:
    """exp(-|x|) i1(x), the exponentially scaled i1."""
    return I1e.apply(_float(input, "special_i1e"))


def sinc(input: Tensor) -> Tensor:
    """The normalized sinc, sin(pi x) / (pi x), 1 at 0."""
    return Sinc.apply(_float(input, "sinc"))


def entr(input: Tensor) -> Tensor:
    """-x log(x) elementwise: 0 at 0, -inf for x < 0."""
    return Entr.apply(_float(input, "special_entr"))


def erfcx(input: Tensor) -> Tensor:
    """The scaled complementary error function, exp(x^2) erfc(x), accurate for large x."""
    return Erfcx.apply(_float(input, "special_erfcx"))


def log_ndtr(input: Tensor) -> Tensor:
    """log of the standard normal CDF, accurate in the far left tail."""
    return LogNdtr.apply(_float(input, "special_log_ndtr"))


def xlog1py(input: Any, other: Any) -> Tensor:
    """input * log1p(other), 0 where input is 0 (unless other is NaN)."""
    from gradflow.ops.arithmetic import _binary
    from gradflow.ops.pointwise_math import _as_float

    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError("special_xlog1py(): at least one of input and other must be a Tensor")
    return _binary(Xlog1py, *_as_float(input, other))
