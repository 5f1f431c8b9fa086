"""Unary math and activations: exp, log, trigonometric and hyperbolic functions, erf/erfc/
erfinv (own series, no SciPy), floor/ceil/round/trunc (zero gradient), ..., sigmoid, tanh,
relu, leaky_relu, elu, gelu, silu, softplus.

Memory: each op saves the cheapest thing its backward needs (the output for exp/sigmoid/tanh/
sqrt, a bool mask for relu/leaky_relu). Activation backward on cuda runs our kernels in
kernels/elementwise.cu (see ``_activation_bwd``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module, is_cuda_array
from gradflow.backend.routing import uses_kernels
from gradflow.kernels.activations import kernel_activation
from gradflow.tensor import Tensor


def _activation_bwd(name: str, saved: Any, g: Any, **params: Any) -> Any | None:
    """Our CUDA backward kernel (kernels/elementwise.cu) on the kernel route; None otherwise
    (the NumPy path runs). `saved` is the output for sigmoid/tanh, else the input."""
    if not uses_kernels(g):
        return None
    from gradflow.kernels import activation_bwd

    return activation_bwd(name, saved, g, **params)


class Exp(Function):
    def forward(self, x):
        y = get_array_module(x).exp(x)
        self.save_for_backward(y)  # the output, not the input
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g * y


class Log(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / x


class Log1p(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log1p(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (1 + x)


class Expm1(Function):
    def forward(self, x):
        y = get_array_module(x).expm1(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g * (y + 1)


class Sqrt(Function):
    def forward(self, x):
        y = get_array_module(x).sqrt(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g / (2 * y)


class Rsqrt(Function):
    def forward(self, x):
        y = 1 / get_array_module(x).sqrt(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return -0.5 * g * y * y * y


class Abs(Function):
    def forward(self, x):
        xp = get_array_module(x)
        self.save_for_backward(xp.sign(x))  # the sign (0 at 0, as PyTorch)
        return xp.abs(x)

    def backward(self, g):
        (sign,) = self.saved_arrays
        return g * sign


class Sin(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).sin(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * get_array_module(x).cos(x)


class Cos(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).cos(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return -g * get_array_module(x).sin(x)


def stable_sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)) without overflow and with full relative accuracy in both tails."""
    xp = get_array_module(x)
    e = xp.asarray(xp.abs(x))  # a 0-d x gives a NumPy scalar, which out= can't take
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    e += 1  # 1 + exp(-|x|), in [1, 2]
    # exp(min(x, 0)) / (1 + exp(-|x|)): 1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x))
    # below. A second exp instead of xp.where, which is slow on a random mask (same bits;
    # benchmarks/results/2026-12-07-code-figures.md).
    out = xp.asarray(xp.minimum(x, x.dtype.type(0)))
    xp.exp(out, out=out)
    out /= e
    return out


class SigmoidFunction(Function):
    op_name = "sigmoid"

    def forward(self, x):
        y = stable_sigmoid(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        out = _activation_bwd("sigmoid", y, g)
        if out is None:
            out = get_array_module(y).asarray(1 - y)  # g y (1 - y), in one new array (0-d too)
            out *= y
            out *= g
        return out


class TanhFunction(Function):
    op_name = "tanh"

    def forward(self, x):
        y = get_array_module(x).tanh(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        out = _activation_bwd("tanh", y, g)
        if out is None:
            out = get_array_module(y).asarray(y * y)  # g (1 - y^2), in one new array (0-d too)
            get_array_module(y).subtract(1, out, out=out)
            out *= g
        return out


class ReLUFunction(Function):
    op_name = "relu"

    def forward(self, x):
        y = get_array_module(x).maximum(x, 0)
        if uses_kernels(x):
            self.save_for_backward(y)  # the kernel's mask y > 0 equals x > 0
        else:
            self.save_for_backward(x > 0)  # a bool mask: a quarter of a float32 array
        return y

    def backward(self, g):
        (saved,) = self.saved_arrays
        out = _activation_bwd("relu", saved, g)
        return g * saved if out is None else out


class LeakyReLUFunction(Function):
    op_name = "leaky_relu"
    negative_slope: float

    def forward(self, x):
        mask = x > 0
        self.save_for_backward(x if uses_kernels(x) else mask)  # kernel: input; cpu: a bool mask
        return get_array_module(x).where(mask, x, x * x.dtype.type(self.negative_slope))

    def backward(self, g):
        (saved,) = self.saved_arrays
        out = _activation_bwd("leaky_relu", saved, g, negative_slope=self.negative_slope)
        if out is not None:
            return out
        return get_array_module(g).where(saved, g, g * g.dtype.type(self.negative_slope))


class ELUFunction(Function):
    op_name = "elu"
    alpha: float

    def forward(self, x):
        xp = get_array_module(x)
        alpha = x.dtype.type(self.alpha)
        y = xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))
        self.save_for_backward(x if uses_kernels(x) else y)  # cpu: the output (y > 0 iff x > 0)
        return y

    def backward(self, g):
        (saved,) = self.saved_arrays
        out = _activation_bwd("elu", saved, g, alpha=self.alpha)
        if out is not None:
            return out
        y = saved
        return get_array_module(g).where(y > 0, g, g * (y + y.dtype.type(self.alpha)))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ---- the error function without SciPy ---------------------------------------------------
# Chebyshev series, coefficients computed with mpmath (40 digits) at the Chebyshev nodes:
# erf(x) / x in u = x^2 on [0, 4] (|x| < 2); erfc(x) exp(x^2) on x in [2, 4]; and
# x erfc(x) exp(x^2) in w = 1 / x^2 on [0, 1/16] (|x| >= 4). Evaluated in float64 they are
# within 3e-16 relative of erf (erfc for |x| >= 2) over each range.
_ERF_SMALL = (
    0.7415552820424018,
    -0.30107107338659495,
    0.06899483068983156,
    -0.013916271264722188,
    0.0024207995224334636,
    -0.0003658639685848086,
    4.862098443231905e-05,
    -5.749256558035685e-06,
    6.113243578434765e-07,
    -5.8991015312958435e-08,
    5.2070090920686485e-09,
    -4.2329758799655433e-10,
    3.188113506649175e-11,
    -2.236155018832684e-12,
    1.4673298479909718e-13,
    -9.04400198509749e-15,
    5.254813646827272e-16,
    -2.8874102278205275e-17,
    1.5012626237477286e-18,
)
_ERFC_MID = (
    0.1874295690262241,
    -0.05794652883669097,
    0.008595247387396534,
    -0.0012284613640242594,
    0.00016974366686180488,
    -2.2738329337044562e-05,
    2.959844378804878e-06,
    -3.7513575581379714e-07,
    4.6372828761738244e-08,
    -5.599455392564088e-09,
    6.613160896679916e-10,
    -7.648271522199816e-11,
    8.670904325876594e-12,
    -9.645456274382024e-13,
    1.0536827959351312e-13,
    -1.1312630905748733e-14,
    1.1945180560527113e-15,
    -1.241309600232272e-16,
    1.270125629361294e-17,
    -1.2682476193385773e-18,
)
_ERFC_LARGE = (
    0.555925693425176,
    -0.008090332092115713,
    0.00016776836928685166,
    -5.531041633808364e-06,
    2.443693640463472e-07,
    -1.3327004395823597e-08,
    8.550274891720147e-10,
    -6.254007601349492e-11,
    5.1017351668676914e-12,
    -4.566948477603476e-13,
    4.431063592613763e-14,
    -4.614609676143471e-15,
    5.11800431847921e-16,
    -6.004637367675962e-17,
    7.289455338537993e-18,
)


def _chebyshev(coefficients: tuple, s: Any) -> Any:
    """sum c_j T_j(s) for a 1-D array s in [-1, 1] (Clenshaw's recurrence, in three buffers)."""
    xp = get_array_module(s)
    s2 = 2 * s
    b1 = xp.full_like(s, coefficients[-1])
    b2 = xp.zeros_like(s)
    out = xp.empty_like(s)
    for c in coefficients[-2:0:-1]:
        xp.multiply(s2, b1, out=out)  # b_k = 2 s b_(k+1) - b_(k+2) + c_k
        out -= b2
        out += c
        b2, b1, out = b1, out, b2
    xp.multiply(s, b1, out=out)
    out -= b2
    out += coefficients[0]
    return out


def _tail(a: Any) -> Any:
    """erfc(a) for a 1-D float64 array a >= 2 (or NaN): exp(-a^2) times a scaled series."""
    xp = get_array_module(a)
    mid = _chebyshev(_ERFC_MID, xp.clip(a, 2.0, 4.0) - 3.0)
    big = xp.maximum(a, 4.0)
    large = _chebyshev(_ERFC_LARGE, 32.0 / (big * big) - 1.0) / big
    return xp.exp(-(a * a)) * xp.where(a < 4.0, mid, large)


def _erf_parts(a: Any) -> tuple:
    """(erf(a), erfc(a)) for float64 a >= 0 (NaN stays NaN, inf gives (1, 0)), each accurate to
    a few ulp: erf from its series below 2, erfc from its scaled series above. NumPy evaluates
    each series on the elements that need it only; CuPy evaluates both everywhere and selects
    (boolean indexing would synchronize with the host)."""
    xp = get_array_module(a)
    shape = a.shape
    a = a.reshape(-1)
    below = a < 2.0
    with _quiet():
        if xp is numpy:
            value = numpy.empty_like(a)
            tail = numpy.empty_like(a)
            inner = a[below]
            value[below] = inner * _chebyshev(_ERF_SMALL, inner * inner / 2.0 - 1.0)
            tail[below] = 1.0 - value[below]
            above = ~below
            if above.any():
                tail[above] = _tail(a[above])
                value[above] = 1.0 - tail[above]
        else:
            small = a * _chebyshev(_ERF_SMALL, xp.minimum(a * a, 4.0) / 2.0 - 1.0)
            big = _tail(a)
            value = xp.where(below, small, 1.0 - big)
            tail = xp.where(below, 1.0 - small, big)
    return value.reshape(shape), tail.reshape(shape)


def _wide(x: Any) -> Any:
    """x as float64 (the series are float64; float32 and float16 results round from it)."""
    return x.astype(numpy.float64, copy=False)


def erf_array(x: Any) -> Any:
    """The error function on an array: CuPy's on cuda; on cpu gradflow's series (no SciPy),
    computed in float64 and rounded to x's dtype."""
    if is_cuda_array(x):
        from cupyx.scipy.special import erf as cupy_erf

        return cupy_erf(x).astype(x.dtype, copy=False)  # CuPy's erf gives float64 for float16
    xp = get_array_module(x)
    w = _wide(x)
    value, _ = _erf_parts(xp.abs(w))
    return (xp.sign(w) * value).astype(x.dtype, copy=False)


def erfc_array(x: Any) -> Any:
    """1 - erf(x) on an array, accurate in the right tail (CuPy's on cuda)."""
    if is_cuda_array(x):
        from cupyx.scipy.special import erfc as cupy_erfc

        return cupy_erfc(x).astype(x.dtype, copy=False)
    xp = get_array_module(x)
    w = _wide(x)
    _, tail = _erf_parts(xp.abs(w))
    return xp.where(w < 0, 2.0 - tail, tail).astype(x.dtype, copy=False)


def erfinv_array(y: Any) -> Any:
    """The inverse error function on an array, on both devices: Winitzki's closed form (about
    2e-3 relative) refined by two Halley steps on erf, whose residual near |y| = 1 is taken
    as erfc(x) - (1 - |y|) (both exact there), so the tails keep full relative accuracy.
    erfinv(+-1) = +-inf; NaN outside [-1, 1]."""
    xp = get_array_module(y)
    w = _wide(y)
    a = xp.abs(w)
    with _quiet():
        one_minus = 1.0 - a  # exact for a >= 0.5
        log_term = xp.log(one_minus * (1.0 + a))  # log(1 - a^2)
        k = 0.147
        t = 2.0 / (math.pi * k) + 0.5 * log_term
        x = xp.sqrt(xp.sqrt(t * t - log_term / k) - t)
        for _ in range(2):  # cubic convergence: 2e-3 -> 1e-8 -> below float64's ulp
            value, tail = _erf_parts(x)
            residual = xp.where(a < 0.5, value - a, one_minus - tail)
            slope = (2.0 / math.sqrt(math.pi)) * xp.exp(-x * x)
            step = residual / slope
            x = x - step / (1.0 + x * step)  # Halley: f'' / f' = -2x
        x = xp.where(a == 1.0, math.inf, xp.where(a > 1.0, math.nan, x))
    return (xp.sign(w) * x).astype(y.dtype, copy=False)


def _quiet() -> Any:
    """Silence NumPy's warnings where inf/NaN intermediates are expected and then replaced."""
    return numpy.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore")


class GELUFunction(Function):
    """x * Phi(x) ("none") or its tanh approximation ("tanh"), as PyTorch."""

    op_name = "gelu"

    approximate: str

    def forward(self, x):
        self.save_for_backward(x)
        xp = get_array_module(x)
        half = x.dtype.type(0.5)
        if self.approximate == "tanh":
            inner = x.dtype.type(_SQRT_2_OVER_PI) * (x + x.dtype.type(0.044715) * x * x * x)
            return half * x * (1 + xp.tanh(inner))
        return half * x * (1 + erf_array(x * x.dtype.type(_INV_SQRT_2)))

    def backward(self, g):
        (x,) = self.saved_arrays
        if uses_kernels(g):
            return _activation_bwd(kernel_activation("gelu", approximate=self.approximate), x, g)
        xp = get_array_module(x)
        t = x.dtype.type
        if self.approximate == "tanh":
            # g (0.5 (1 + th) + 0.5 x (1 - th^2) d_inner), th = tanh(inner), in place on
            # two new arrays (the expression written out made seven)
            x2 = xp.asarray(x * x)  # 0-d x: keep arrays, which in-place ops need
            th = xp.asarray(x2 * t(0.044715))
            th += 1
            th *= x
            th *= t(_SQRT_2_OVER_PI)
            xp.tanh(th, out=th)  # th = tanh(sqrt(2/pi) (x + 0.044715 x^3))
            x2 *= t(3 * 0.044715)
            x2 += 1
            x2 *= t(_SQRT_2_OVER_PI)  # d_inner
            x2 *= x
            x2 *= 1 - th * th  # x (1 - th^2) d_inner
            th += 1
            x2 += th
            x2 *= g
            x2 *= t(0.5)
            return x2
        cdf = t(0.5) * (1 + erf_array(x * t(_INV_SQRT_2)))
        pdf = t(_INV_SQRT_2PI) * xp.exp(t(-0.5) * x * x)
        return g * (cdf + x * pdf)


class SiLUFunction(Function):
    op_name = "silu"

    def forward(self, x):
        self.save_for_backward(x)
        return x * stable_sigmoid(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        out = _activation_bwd("silu", x, g)
        if out is not None:
            return out
        s = stable_sigmoid(x)
        out = get_array_module(s).asarray(1 - s)  # g s (1 + x (1 - s)), in one more new array
        out *= x
        out += 1
        out *= s
        out *= g
        return out


class SoftplusFunction(Function):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold (PyTorch's definition)."""

    op_name = "softplus"

    beta: float
    threshold: float

    def forward(self, x):
        self.save_for_backward(x)
        xp = get_array_module(x)
        bx = x * x.dtype.type(self.beta)
        soft = xp.logaddexp(x.dtype.type(0), bx) / x.dtype.type(self.beta)
        return xp.where(bx > self.threshold, x, soft)

    def backward(self, g):
        (x,) = self.saved_arrays
        out = _activation_bwd("softplus", x, g, beta=self.beta, threshold=self.threshold)
        if out is not None:
            return out
        bx = x * x.dtype.type(self.beta)
        return get_array_module(x).where(bx > self.threshold, g, g * stable_sigmoid(bx))


# ---- more pointwise math: each saves its input or its output, whichever backward reads ----
class Tan(Function):
    op_name = "tan"

    def forward(self, x):
        y = get_array_module(x).tan(x)
        self.save_for_backward(y)  # the output: d tan = 1 + tan^2
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g * (1 + y * y)


class Asin(Function):
    op_name = "asin"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arcsin(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / get_array_module(x).sqrt(1 - x * x)


class Acos(Function):
    op_name = "acos"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arccos(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return -g / get_array_module(x).sqrt(1 - x * x)


class Atan(Function):
    op_name = "atan"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arctan(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (1 + x * x)


class Sinh(Function):
    op_name = "sinh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).sinh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * get_array_module(x).cosh(x)


class Cosh(Function):
    op_name = "cosh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).cosh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * get_array_module(x).sinh(x)


class Asinh(Function):
    op_name = "asinh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arcsinh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / get_array_module(x).sqrt(x * x + 1)


class Acosh(Function):
    op_name = "acosh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arccosh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / get_array_module(x).sqrt((x - 1) * (x + 1))  # PyTorch's form


class Atanh(Function):
    op_name = "atanh"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).arctanh(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (1 - x * x)


class Log2(Function):
    op_name = "log2"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log2(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (x * x.dtype.type(math.log(2.0)))


class Log10(Function):
    op_name = "log10"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log10(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (x * x.dtype.type(math.log(10.0)))


class Exp2(Function):
    op_name = "exp2"

    def forward(self, x):
        y = get_array_module(x).exp2(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g * y * y.dtype.type(math.log(2.0))


class Reciprocal(Function):
    op_name = "reciprocal"

    def forward(self, x):
        with _quiet():  # 1 / 0 is inf, as in PyTorch
            y = 1 / x
        self.save_for_backward(y)  # the output: d(1/x) = -1/x^2
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return -g * y * y


class Erf(Function):
    op_name = "erf"

    def forward(self, x):
        self.save_for_backward(x)
        return erf_array(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * (x.dtype.type(2 / math.sqrt(math.pi)) * get_array_module(x).exp(-x * x))


class Erfc(Function):
    op_name = "erfc"

    def forward(self, x):
        self.save_for_backward(x)
        return erfc_array(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * (x.dtype.type(-2 / math.sqrt(math.pi)) * get_array_module(x).exp(-x * x))


class Erfinv(Function):
    op_name = "erfinv"

    def forward(self, x):
        y = erfinv_array(x)
        self.save_for_backward(y)  # the output: d erfinv = sqrt(pi) / 2 exp(erfinv^2)
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g * (y.dtype.type(math.sqrt(math.pi) / 2) * get_array_module(y).exp(y * y))


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


class Frac(Function):
    """x - trunc(x); the gradient passes unchanged (as PyTorch). Saves nothing."""

    op_name = "frac"

    def forward(self, x):
        return x - get_array_module(x).trunc(x)

    def backward(self, g):
        return g


def _float_input(x: Any, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        from gradflow import dtypes

        return x.to(dtypes.get_default_dtype())
    return x


def exp(x: Tensor) -> Tensor:
    """e ** x."""
    return Exp.apply(_float_input(x, "exp"))


def log(x: Tensor) -> Tensor:
    """Natural logarithm."""
    return Log.apply(_float_input(x, "log"))


def log1p(x: Tensor) -> Tensor:
    """log(1 + x), accurate for small x."""
    return Log1p.apply(_float_input(x, "log1p"))


def expm1(x: Tensor) -> Tensor:
    """exp(x) - 1, accurate for small x."""
    return Expm1.apply(_float_input(x, "expm1"))


def sqrt(x: Tensor) -> Tensor:
    """Square root."""
    return Sqrt.apply(_float_input(x, "sqrt"))


def rsqrt(x: Tensor) -> Tensor:
    """1 / sqrt(x)."""
    return Rsqrt.apply(_float_input(x, "rsqrt"))


def abs(x: Tensor) -> Tensor:
    """|x| (gradient sign(x), 0 at 0)."""
    if x.dtype.kind != "f":
        return Tensor._wrap(get_array_module(x.array).abs(x.array))
    return Abs.apply(x)


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of x (a bool tensor: itself); no gradient flows."""
    if x.dtype.kind == "b":
        return Tensor._wrap(x.array.copy())  # NumPy has no bool sign; PyTorch's is x
    return Tensor._wrap(get_array_module(x.array).sign(x.array))


absolute = abs
sgn = sign


def positive(x: Tensor) -> Tensor:
    """x itself (PyTorch's unary plus); a bool tensor raises, as in PyTorch."""
    if x.dtype.kind == "b":
        raise RuntimeError("positive: a bool tensor has no unary plus; use the tensor itself")
    return x


def sin(x: Tensor) -> Tensor:
    return Sin.apply(_float_input(x, "sin"))


def cos(x: Tensor) -> Tensor:
    return Cos.apply(_float_input(x, "cos"))


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return TanhFunction.apply(_float_input(x, "tanh"))


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), finite and accurate for any input."""
    return SigmoidFunction.apply(_float_input(x, "sigmoid"))


def relu(x: Tensor) -> Tensor:
    """max(x, 0); gradient 0 at 0."""
    return ReLUFunction.apply(_float_input(x, "relu"))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return LeakyReLUFunction.apply(
        _float_input(x, "leaky_relu"), negative_slope=float(negative_slope)
    )


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return ELUFunction.apply(_float_input(x, "elu"), alpha=float(alpha))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: x * Phi(x); approximate="tanh" uses the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELUFunction.apply(_float_input(x, "gelu"), approximate=approximate)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return SiLUFunction.apply(_float_input(x, "silu"))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, stable for large inputs; x itself past the threshold."""
    return SoftplusFunction.apply(
        _float_input(x, "softplus"), beta=float(beta), threshold=float(threshold)
    )


def square(x: Tensor) -> Tensor:
    """x * x (an integer tensor stays integer, as in PyTorch)."""
    from gradflow import dtypes
    from gradflow.ops.arithmetic import pow as _pow

    if x.dtype.kind == "b":
        x = x.to(dtypes.int64)  # PyTorch squares a bool tensor as int64
    return _pow(x, 2)


def reciprocal(x: Tensor) -> Tensor:
    """1 / x (integer tensors give the default float dtype)."""
    return Reciprocal.apply(_float_input(x, "reciprocal"))


def tan(x: Tensor) -> Tensor:
    return Tan.apply(_float_input(x, "tan"))


def asin(x: Tensor) -> Tensor:
    return Asin.apply(_float_input(x, "asin"))


def acos(x: Tensor) -> Tensor:
    return Acos.apply(_float_input(x, "acos"))


def atan(x: Tensor) -> Tensor:
    return Atan.apply(_float_input(x, "atan"))


def sinh(x: Tensor) -> Tensor:
    return Sinh.apply(_float_input(x, "sinh"))


def cosh(x: Tensor) -> Tensor:
    return Cosh.apply(_float_input(x, "cosh"))


def asinh(x: Tensor) -> Tensor:
    return Asinh.apply(_float_input(x, "asinh"))


def acosh(x: Tensor) -> Tensor:
    return Acosh.apply(_float_input(x, "acosh"))


def atanh(x: Tensor) -> Tensor:
    return Atanh.apply(_float_input(x, "atanh"))


def log2(x: Tensor) -> Tensor:
    """Base-2 logarithm."""
    return Log2.apply(_float_input(x, "log2"))


def log10(x: Tensor) -> Tensor:
    """Base-10 logarithm."""
    return Log10.apply(_float_input(x, "log10"))


def exp2(x: Tensor) -> Tensor:
    """2 ** x."""
    return Exp2.apply(_float_input(x, "exp2"))


def erf(x: Tensor) -> Tensor:
    """The error function, 2 / sqrt(pi) * integral of exp(-t^2) from 0 to x.

    >>> import gradflow
    >>> print(f"{erf(gradflow.tensor(1.0)).item():.4f}")
    0.8427
    """
    return Erf.apply(_float_input(x, "erf"))


def erfc(x: Tensor) -> Tensor:
    """1 - erf(x), accurate where erf(x) is close to 1."""
    return Erfc.apply(_float_input(x, "erfc"))


def erfinv(x: Tensor) -> Tensor:
    """The inverse of erf on [-1, 1] (+-inf at +-1, NaN outside)."""
    return Erfinv.apply(_float_input(x, "erfinv"))


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


def floor(x: Tensor) -> Tensor:
    """The largest integer <= x (zero gradient)."""
    return _rounding(x, "floor")


def ceil(x: Tensor) -> Tensor:
    """The smallest integer >= x (zero gradient)."""
    return _rounding(x, "ceil")


def trunc(x: Tensor) -> Tensor:
    """x rounded toward zero (zero gradient)."""
    return _rounding(x, "trunc")


fix = trunc


def round(x: Tensor, *, decimals: int = 0) -> Tensor:
    """x rounded to `decimals` places, halves to even (zero gradient)."""
    return _rounding(x, "round", decimals)


def frac(x: Tensor) -> Tensor:
    """The fractional part x - trunc(x), with x's sign; the gradient passes through."""
    if x.dtype.kind != "f":
        raise NotImplementedError(
            f"frac: not implemented for {x.dtype} (an integer has no fractional part); "
            "call .float() first"
        )
    return Frac.apply(x)


# The activation ops by public name, for ops that reuse their math (ops.fused).
ACTIVATION_FUNCTIONS = {
    cls.op_name: cls
    for cls in (
        SigmoidFunction,
        TanhFunction,
        ReLUFunction,
        LeakyReLUFunction,
        ELUFunction,
        GELUFunction,
        SiLUFunction,
        SoftplusFunction,
    )
}
