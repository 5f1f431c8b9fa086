"""The gamma family: lgamma, digamma, polygamma, mvlgamma, igamma and igammac, with their
array functions (lgamma_array, digamma_array, polygamma_array) and the float64-by-blocks
machinery (_blocks, _route, _select, _horner) that ops/special_functions.py (the Bessel
functions, sinc, entr, erfcx, log_ndtr, xlog1py) also uses.

On cpu every function is gradflow's own, in NumPy (no SciPy). lgamma, digamma and polygamma
compute in float64 and round to the input's dtype, over cache-sized blocks (_BLOCK elements:
each function is 20-40 passes over its buffers, which stay in L2).

- lgamma, digamma and polygamma(n >= 1) shift x > 0 up by N with the recurrence (N = 6 for
  float32 and float16 results, 10 for float64; polygamma(n) 2 (n - 1) more), the N factors
  (x + k) taken in pairs, (x + k)(x + N - 1 - k) = u + k(N - 1 - k) with u = x(x + N - 1), and
  evaluate the asymptotic (Stirling, Euler-Maclaurin) series at z = x + N, whose first
  left-out term is below 1e-17 (float64) or 1e-12 (float32) relative. x < 0 takes the
  reflection formulas with sin(pi r), r = x - round(x) (exact); polygamma's reflection
  differentiates cot(pi x) n times (a polynomial in cot, _cot_poly). x below 2^-54 (lgamma:
  -log x) and above 1e15 (no shift) are fixed up on those elements. Against math.lgamma and
  mpmath: within a few ulp in float64 away from the roots (lgamma's 1 and 2: within 1e-14
  absolute there, and exactly 0 at 1 and 2); float32 results are the float64 values rounded
  once (0.5 ulp).
- igamma and igammac (P and Q, the regularized incomplete gamma functions): the series of P
  below x = a + 1 and Q's continued fraction above, iterated on the elements not yet converged
  (about 9 sqrt(a) terms), times x^a exp(-x) / Gamma(a) (relative error about 1e-16 a log a).

On cuda each function is cupyx.scipy.special's where it has one (gammaln, digamma, polygamma,
gammainc and gammaincc, with torch's edge values put back), else the cpu code, with selections
by where instead of boolean indexing (which would synchronize with the host; igamma's
iterations do synchronize).

Gradients are PyTorch's (derivatives.yaml): lgamma' = digamma, digamma' = polygamma(1, .),
polygamma(n)' = polygamma(n + 1), igamma's for x exp(-x) x^(a-1) / Gamma(a) and none for a
(NotImplementedError, as torch). Double backward composes the same public functions.

Where PyTorch's values are artefacts, gradflow gives the mathematical ones: polygamma(1, x) at
a negative integer is +inf (torch: pi^2 / sin(pi x)^2 of a rounded sin, about 1e32);
polygamma(n >= 2, +inf) is 0 (torch: NaN); float32 results come from float64, so they keep
the digits torch's float32 sin(pi x) loses (trigamma of x < -20).

Memory: each op saves its input; igamma both inputs.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy

from gradflow import dtypes
from gradflow.autograd.differentiable import graph_input
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module, is_cuda_array
from gradflow.ops.special import _quiet
from gradflow.tensor import Tensor

_BLOCK = 1 << 14  # float64 elements per block on cpu: a function's few buffers stay in L2
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_TINY = 2.0**-54  # below it lgamma(x) = -log(x) to float64's precision
_BIG = 1e15  # above it no shift is needed (and the shifted products would overflow)

# Stirling: lgamma(z) = (z - 1/2)(log z - 1) - 1/2 + log(2 pi) / 2 + sum_k c_k / z^(2k-1),
# c_k = B_2k / (2k (2k - 1)); digamma(z) = log z - 1 / (2z) - sum_k B_2k / (2k z^2k).
_STIRLING = (
    1 / 12,
    -1 / 360,
    1 / 1260,
    -1 / 1680,
    1 / 1188,
    -691 / 360360,
    1 / 156,
    -3617 / 122400,
)
_DIGAMMA = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12, -3617 / 8160)
# Bernoulli numbers B_2, B_4, ..., B_24 (Euler-Maclaurin for the Hurwitz zeta function)
_BERNOULLI = (
    1 / 6,
    -1 / 30,
    1 / 42,
    -1 / 30,
    5 / 66,
    -691 / 2730,
    7 / 6,
    -3617 / 510,
    43867 / 798,
    -174611 / 330,
    854513 / 138,
    -236364091 / 2730,
)


# ---- array functions ----------------------------------------------------------------------
def _select(xp: Any, result: Any, mask: Any, compute: Any, *arrays: Any) -> Any:
    """result with compute(*arrays) where mask: NumPy computes on those elements only (nothing
    when there are none); CuPy computes on every element and selects (no host sync)."""
    if xp is numpy:
        if mask.any():
            result[mask] = compute(*(a[mask] for a in arrays))
        return result
    return xp.where(mask, compute(*arrays), result)


def _horner(xp: Any, coefficients: tuple, t: Any) -> Any:
    """sum c_k t^k (c_0 first) on a new array."""
    out = xp.full_like(t, coefficients[-1])
    for c in coefficients[-2::-1]:
        out *= t
        out += c
    return out


def _shift(precise: bool) -> int:
    return 10 if precise else 6


def _pairs(n: int) -> list:
    """The constants k (n - 1 - k), k = 1 .. n/2 - 1: (x + k)(x + n - 1 - k) = u + constant."""
    return [k * (n - 1 - k) for k in range(1, n // 2)]


def _sinpi_reduced(xp: Any, w: Any) -> Any:
    """(r, sin(pi r)) with r = w - round(w), in [-1/2, 1/2] (exact): sin(pi w) up to sign."""
    r = w - xp.rint(w)
    return r, xp.sin(math.pi * r)


def _lgamma_positive(a: Any, precise: bool) -> Any:
    """lgamma(a) for float64 a >= 0 (or NaN); a new array."""
    xp = get_array_module(a)
    n = _shift(precise)
    u = a + (n - 1)
    u *= a  # u = a (a + n - 1)
    q = u + _pairs(n)[0]
    q *= u
    t = xp.empty_like(a)
    for c in _pairs(n)[1:]:
        xp.add(u, c, out=t)
        q *= t  # q = a (a + 1) ... (a + n - 1)
    with _quiet():
        xp.log(q, out=q)  # log 0 = -inf: lgamma(0) = +inf
        z = xp.add(a, n, out=u)
        xp.reciprocal(z, out=t)
        series = _horner(xp, _STIRLING if precise else _STIRLING[:6], t * t)
        series *= t
        series += _HALF_LOG_2PI - 0.5
        xp.log(z, out=t)
        t -= 1.0
        z -= 0.5
        z *= t
        z += series
        z -= q
        if xp is not numpy or not (a.min() >= _TINY and a.max() <= _BIG):
            z = _select(xp, z, a < _TINY, lambda v: -xp.log(v), a)
            z = _select(xp, z, a > _BIG, _lgamma_stirling, a)
        # the roots 1 and 2 exactly (the shift's cancellation leaves 1e-14 there)
        roots = (a == 1.0) | (a == 2.0)
        if xp is numpy:
            z[roots] = 0.0
        else:
            z = xp.where(roots, 0.0, z)
    return z


def _lgamma_stirling(a: Any) -> Any:
    """lgamma(a) for a > 1e15 (inf gives inf)."""
    xp = get_array_module(a)
    return (a - 0.5) * (xp.log(a) - 1.0) + (_HALF_LOG_2PI - 0.5 + 1 / 12) / a


def _lgamma64(w: Any, precise: bool) -> Any:
    """lgamma on a 1-D float64 array: poles (0, negative integers, -inf) give +inf."""
    xp = get_array_module(w)
    negative = w < 0
    if xp is numpy and not negative.any():
        return _lgamma_positive(w, precise)
    with _quiet():
        result = _lgamma_positive(xp.where(negative, 1.0 - w, w), precise)

        def reflect(v: Any, lg: Any) -> Any:  # lgamma(v) = log(pi / |sin(pi v)|) - lgamma(1 - v)
            r, s = _sinpi_reduced(xp, v)
            out = xp.log(math.pi / xp.abs(s)) - lg
            return xp.where(xp.abs(r) > 0, out, math.inf)  # r == 0 at the poles, NaN at -inf

        return _select(xp, result, negative, reflect, w, result)


def _digamma_positive(a: Any, precise: bool) -> Any:
    """digamma(a) for float64 a >= 0 (or NaN; +0.0 gives -inf, -0.0 +inf as torch)."""
    xp = get_array_module(a)
    n = _shift(precise)
    with _quiet():
        u = a + (n - 1)
        u *= a
        acc = xp.reciprocal(u)
        t = xp.empty_like(a)
        for c in _pairs(n):
            xp.add(u, c, out=t)
            xp.reciprocal(t, out=t)
            acc += t
        xp.multiply(a, 2.0, out=t)
        t += n - 1
        acc *= t  # sum_k 1 / (a + k), k < n: pairs (2a + n - 1) / (u + c)
        z = xp.add(a, n, out=u)
        xp.reciprocal(z, out=t)
        r2 = t * t
        series = _horner(xp, _DIGAMMA if precise else _DIGAMMA[:6], r2)
        series *= r2
        t *= 0.5
        series += t
        xp.log(z, out=z)
        z -= series
        z -= acc
        if xp is not numpy or not a.max() <= _BIG:
            z = _select(xp, z, a > _BIG, lambda v: xp.log(v) - 0.5 / v, a)
    return z


def _digamma64(w: Any, precise: bool) -> Any:
    """digamma on a 1-D float64 array: NaN at negative integers and -inf, as torch."""
    xp = get_array_module(w)
    negative = w < 0
    if xp is numpy and not negative.any():
        return _digamma_positive(w, precise)
    with _quiet():
        result = _digamma_positive(xp.where(negative, 1.0 - w, w), precise)

        def reflect(v: Any, psi: Any) -> Any:  # psi(v) = psi(1 - v) - pi / tan(pi v)
            r, s = _sinpi_reduced(xp, v)
            out = psi - math.pi * xp.cos(math.pi * r) / s
            return xp.where(r != 0, out, math.nan)

        return _select(xp, result, negative, reflect, w, result)


@functools.cache
def _cot_poly(n: int) -> tuple:
    """Coefficients (c^0 first) of P_n with d^n/dx^n cot(x) = P_n(cot x): P_0 = c,
    P_(k+1) = -(1 + c^2) P_k'(c)."""
    p = [0, 1]
    for _ in range(n):
        d = [k * p[k] for k in range(1, len(p))] + [0, 0]  # P', padded
        q = [0] * (len(p) + 1)
        for k, c in enumerate(d):
            if k < len(q):
                q[k] -= c
            if k + 2 < len(q):
                q[k + 2] -= c
        p = q
    return tuple(float(c) for c in p)


def _polygamma_positive(order: int, a: Any, precise: bool) -> Any:
    """polygamma(order >= 1, a) for float64 a >= 0 (or NaN): (-1)^(n+1) n! zeta(n + 1, a), the
    Hurwitz zeta function by n shifts and Euler-Maclaurin at z = a + n."""
    xp = get_array_module(a)
    s = order + 1
    n = _shift(precise) + 2 * (order - 1)  # the series' terms grow with s: shift further
    terms = 8 if precise else 6
    with _quiet():
        acc = xp.zeros_like(a)
        t = xp.empty_like(a)
        if s == 2:  # pairs: 1/(a+k)^2 + 1/(a+n-1-k)^2 = (S^2 - 2p) / p^2, S = 2a + n - 1,
            # p = u + k (n - 1 - k), u = a (a + n - 1); S^2 - 2p is a sum of squares: no
            # cancellation (and p = 0 at a = 0 gives +inf)
            u = a + (n - 1)
            u *= a
            s2 = a * 2.0
            s2 += n - 1
            s2 *= s2
            p = xp.empty_like(a)
            for c in [0, *_pairs(n)]:
                xp.add(u, c, out=p)
                xp.multiply(p, -2.0, out=t)
                t += s2
                p *= p
                t /= p
                acc += t
        else:
            for k in range(n):
                xp.add(a, k, out=t)
                xp.power(t, -s, out=t)
                acc += t
        z = a + n
        r = xp.reciprocal(z)
        r2 = r * r
        # sum_j B_2j / (2j)! s (s + 1) ... (s + 2j - 2) r^(2j - 1)
        coefficients = []
        rising = float(s)  # s (s + 1) ... (s + 2j - 2)
        for j in range(1, terms + 1):
            coefficients.append(_BERNOULLI[j - 1] / math.factorial(2 * j) * rising)
            rising *= (s + 2 * j - 1) * (s + 2 * j)
        series = _horner(xp, tuple(coefficients), r2)
        series *= r
        series += 0.5
        series += z * (1.0 / (s - 1))
        xp.power(z, -s, out=t)
        series *= t
        acc += series
        acc *= (-1) ** (order + 1) * math.factorial(order)
        if xp is not numpy or not a.max() <= _BIG:

            def large(v: Any) -> Any:  # (-1)^(n+1) (n-1)! / v^n (1 + n / (2v))
                head = (-1) ** (order + 1) * math.factorial(order - 1)
                return head * xp.power(v, -order) * (1.0 + order / (2 * v))

            acc = _select(xp, acc, a > _BIG, large, a)
    return acc


def _polygamma64(order: int, w: Any, precise: bool) -> Any:
    """polygamma(order, w) on a 1-D float64 array; a pole (0, a negative integer) gives
    (-1)^(order+1) inf for order >= 1, as torch."""
    if order == 0:
        return _digamma64(w, precise)
    xp = get_array_module(w)
    negative = w < 0
    if xp is numpy and not negative.any():
        return _polygamma_positive(order, w, precise)
    sign = (-1) ** (order + 1)
    with _quiet():
        result = _polygamma_positive(order, xp.where(negative, 1.0 - w, w), precise)

        def reflect(v: Any, other: Any) -> Any:
            # psi_n(v) = -pi d^n/dv^n cot(pi v) + (-1)^n psi_n(1 - v)
            r, s = _sinpi_reduced(xp, v)
            cot = xp.cos(math.pi * r) / s
            derivative = _horner(xp, _cot_poly(order), cot) * math.pi ** (order + 1)
            out = (-1) ** order * other - derivative
            # poles, and -inf for order >= 2 (torch's zeta; trigamma(-inf) is NaN there)
            pole = (r == 0) if order == 1 else ~(xp.abs(r) > 0)
            return xp.where(pole, sign * math.inf, out)

        return _select(xp, result, negative, reflect, w, result)


def _blocks(kernel: Any, x: Any, *args: Any) -> Any:
    """kernel(w, *args, precise) on x as float64 (1-D), rounded to x's dtype: on cpu block by
    block (_BLOCK elements), on cuda in one piece. precise: x is float64 (a float32 result
    needs fewer terms)."""
    xp = get_array_module(x)
    precise = x.dtype == numpy.float64
    flat = xp.ascontiguousarray(x).reshape(-1)
    n = flat.size
    if n == 0:
        return xp.empty(x.shape, x.dtype)
    if xp is not numpy or n <= _BLOCK:
        return kernel(flat.astype(numpy.float64), *args, precise).astype(x.dtype).reshape(x.shape)
    out = numpy.empty(x.shape, x.dtype)
    flat_out = out.reshape(-1)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        flat_out[start:stop] = kernel(flat[start:stop].astype(numpy.float64), *args, precise)
    return out


def _cupy_special(name: str) -> Any:
    """cupyx.scipy.special's function ``name``, or None where it has none."""
    import cupyx.scipy.special

    return getattr(cupyx.scipy.special, name, None)


def _route(name: str, kernel: Any, x: Any, *args: Any) -> Any:
    """CuPy's function on cuda where it has one, else kernel over blocks."""
    if is_cuda_array(x) and (function := _cupy_special(name)) is not None:
        out = function(*args, x.reshape(-1))  # 1-D: CuPy's stand-in's gammaln needs one
        return out.astype(x.dtype, copy=False).reshape(x.shape)
    return _blocks(kernel, x, *args)


def lgamma_array(x: Any) -> Any:
    """log|Gamma(x)| of a float array, in its dtype."""
    return _route("gammaln", _lgamma64, x)


def digamma_array(x: Any) -> Any:
    """digamma(x) = d/dx lgamma(x) of a float array, in its dtype."""
    return _route("digamma", _digamma64, x)


def polygamma_array(n: int, x: Any) -> Any:
    """The n-th derivative of digamma of a float array, in its dtype."""
    if n == 0:
        return digamma_array(x)
    if is_cuda_array(x) and (function := _cupy_special("polygamma")) is not None:
        order = get_array_module(x).asarray(float(n), dtype=x.dtype)  # CuPy broadcasts arrays
        return function(order, x).astype(x.dtype, copy=False)
    return _blocks(lambda w, precise: _polygamma64(n, w, precise), x)


# ---- Functions ----------------------------------------------------------------------------
class Lgamma(Function):
    op_name = "lgamma"

    def forward(self, x):
        self.save_for_backward(x)
        return lgamma_array(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * digamma_array(x)

    def backward_graph(self, g):
        return g * digamma(graph_input(self, 0, self.saved_arrays[0]))


class Digamma(Function):
    op_name = "digamma"

    def forward(self, x):
        self.save_for_backward(x)
        return digamma_array(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * polygamma_array(1, x)

    def backward_graph(self, g):
        return g * polygamma(1, graph_input(self, 0, self.saved_arrays[0]))


class Polygamma(Function):
    op_name = "polygamma"
    n: int

    def forward(self, x):
        self.save_for_backward(x)
        return polygamma_array(self.n, x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * polygamma_array(self.n + 1, x)

    def backward_graph(self, g):
        return g * polygamma(self.n + 1, graph_input(self, 0, self.saved_arrays[0]))


# ---- public functions ---------------------------------------------------------------------
def _float(input: Any, op: str) -> Tensor:
    """input as a float Tensor: integer and bool tensors take the default float dtype."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input.dtype.kind != "f":
        return input.to(dtypes.get_default_dtype())
    return input


def _order(n: Any, op: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | numpy.integer):
        raise TypeError(f"{op}(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError(f"{op}(n, x) does not support negative n (got n={n}); n must be >= 0")
    return int(n)


def lgamma(input: Tensor) -> Tensor:
    """log|Gamma(x)|, elementwise; +inf at the poles (0, negative integers) and at -inf.

    >>> import gradflow
    >>> print(f"{lgamma(gradflow.tensor(0.5)).item():.4f}")
    0.5724
    """
    return Lgamma.apply(_float(input, "lgamma"))


def digamma(input: Tensor) -> Tensor:
    """The logarithmic derivative of Gamma, d/dx lgamma(x); -inf at 0 (+inf at -0.0), NaN at
    the negative integers, as PyTorch."""
    return Digamma.apply(_float(input, "digamma"))


def polygamma(n: int, input: Tensor) -> Tensor:
    """The n-th derivative of digamma (n >= 0; polygamma(0, x) is digamma(x))."""
    n = _order(n, "polygamma")
    x = _float(input, "polygamma")
    if n == 0:
        return Digamma.apply(x)
    return Polygamma.apply(x, n=n)


def mvlgamma(input: Tensor, p: int) -> Tensor:
    """The multivariate log-gamma function of dimension p: sum_(i < p) lgamma(x - i / 2) +
    p (p - 1) / 4 log(pi). Defined for x > (p - 1) / 2; elsewhere the lgamma terms' values
    (+inf where one meets a pole), as PyTorch 2.x, which no longer raises there."""
    if isinstance(p, bool) or not isinstance(p, int | numpy.integer):
        raise TypeError(f"mvlgamma(): argument 'p' must be int, not {type(p).__name__}")
    if p < 1:
        raise RuntimeError(f"mvlgamma: p has to be greater than or equal to 1 (got p={p})")
    x = _float(input, "mvlgamma")
    from gradflow.creation import arange

    offsets = arange(p, dtype=x.dtype, device=x.device) * -0.5
    terms = lgamma(x.unsqueeze(-1) + offsets)
    return terms.sum(-1) + p * (p - 1) / 4 * math.log(math.pi)


# ---- the regularized incomplete gamma functions -------------------------------------------
_IGAMMA_MAX_TERMS = 20000  # the series and the fraction need about 9 sqrt(a) terms
_IGAMMA_BLOCK = 1 << 16  # elements per block on cpu (iterations on larger blocks: less Python)


def _igamma64(a: Any, x: Any) -> tuple:
    """(P(a, x), Q(a, x)) for 1-D float64 arrays a, x of one shape: the lower and upper
    regularized incomplete gamma functions, by the series of P where x < a + 1 and the
    continued fraction of Q (modified Lentz) elsewhere (Numerical Recipes' gser and gcf), each
    times x^a exp(-x) / Gamma(a) taken as exp(a log x - x - lgamma(a)) (relative error about
    1e-16 a log a); iterated on the elements not yet converged. Edges as torch: a == 0 gives
    P = 1 for x > 0; x == 0 gives P = 0 for a > 0; x = inf gives P = 1 and a = inf P = 0 (the
    other finite); NaN for a < 0, x < 0, a == x == 0, both infinite and NaN."""
    xp = get_array_module(a)
    p = xp.full(a.shape, math.nan)
    with _quiet():
        finite, one, zero = _igamma_edges(a, x)
        p[one] = 1.0
        p[zero] = 0.0
        q = 1.0 - p
        index = xp.flatnonzero(finite)
        if index.size:
            av, xv = a[index], x[index]
            log_factor = av * xp.log(xv) - xv - _lgamma64(av, True)
            series = xv < av + 1.0
            s_index = xp.flatnonzero(series)
            f_index = xp.flatnonzero(~series)
            if s_index.size:
                lower = _igamma_series(av[s_index], xv[s_index])
                lower *= xp.exp(log_factor[s_index])
                p[index[s_index]] = lower
                q[index[s_index]] = 1.0 - lower
            if f_index.size:
                upper = _igamma_fraction(av[f_index], xv[f_index])
                upper *= xp.exp(log_factor[f_index])
                q[index[f_index]] = upper
                p[index[f_index]] = 1.0 - upper
    return p, q


def _igamma_edges(a: Any, x: Any) -> tuple:
    """Masks (finite, one, zero): where the series or fraction applies, where P is 1 and
    where P is 0 (torch's edges); P is NaN elsewhere."""
    finite = (a > 0) & (x > 0) & (a < math.inf) & (x < math.inf)
    one = ((a == 0) & (x > 0)) | ((x == math.inf) & (a > 0) & (a < math.inf))
    zero = ((x == 0) & (a > 0)) | ((a == math.inf) & (x > 0) & (x < math.inf))
    return finite, one, zero


_IGAMMA_CHECK = 8  # iterations between convergence checks (and compactions of the rest)


def _iterate(step: Any, state: list, done: Any, result_of: Any) -> Any:
    """Run step(state, i) on the compacted per-element arrays in state until done(state) holds
    for every element; converged elements leave the arrays every _IGAMMA_CHECK iterations (no
    fancy indexing inside the iterations). Returns result_of(state) for every element, in
    order."""
    xp = get_array_module(state[0])
    out = xp.empty_like(state[0])
    where = xp.arange(state[0].size)
    i = 0
    while where.size and i < _IGAMMA_MAX_TERMS:
        for _ in range(_IGAMMA_CHECK):
            i += 1
            step(state, i)
        finished = done(state)
        finished |= i >= _IGAMMA_MAX_TERMS
        if finished.all():
            out[where] = result_of(state)
            break
        out[where[finished]] = result_of(state)[finished]
        keep = ~finished
        state[:] = [v[keep] for v in state]
        where = where[keep]
    return out


def _igamma_series(a: Any, x: Any) -> Any:
    """sum_n x^n / (a (a + 1) ... (a + n)) for x < a + 1 (terms fall by x / (a + n) < 1)."""
    xp = get_array_module(a)
    total = 1.0 / a
    state = [a.copy(), x, total.copy(), total, xp.empty_like(a)]  # den, x, term, total, tmp

    def step(st: list, i: int) -> None:
        den, xv, term, tot, tmp = st
        den += 1.0
        xp.divide(xv, den, out=tmp)
        term *= tmp
        tot += term

    return _iterate(
        step,
        state,
        lambda st: xp.abs(st[2]) <= xp.abs(st[3]) * 1e-17,
        lambda st: st[3],
    )


def _igamma_fraction(a: Any, x: Any) -> Any:
    """The continued fraction 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - ...)) of Q's scaled
    value, by the modified Lentz method, for x >= a + 1."""
    xp = get_array_module(a)
    tiny = 1e-300
    b = x + 1.0 - a
    d = 1.0 / b
    # a, b, c, d, h, the last step's delta, and a buffer
    state = [a, b, xp.full_like(a, 1.0 / tiny), d, d.copy(), xp.zeros_like(a), xp.empty_like(a)]

    def step(st: list, i: int) -> None:
        av, bv, c, dv, h, delta, an = st
        xp.subtract(av, i, out=an)
        an *= i  # -i (i - a)
        bv += 2.0
        dv *= an
        dv += bv
        xp.copyto(dv, tiny, where=dv == 0)
        xp.divide(an, c, out=c)
        c += bv
        xp.copyto(c, tiny, where=c == 0)
        xp.reciprocal(dv, out=dv)
        xp.multiply(dv, c, out=delta)
        h *= delta

    return _iterate(step, state, lambda st: xp.abs(st[5] - 1.0) <= 1e-16, lambda st: st[4])


class Igamma(Function):
    """P(a, x) (upper: Q(a, x)); PyTorch's gradient for x, +-exp(-x) x^(a-1) / Gamma(a), and
    none for a (NotImplementedError, as torch)."""

    op_name = "igamma"
    upper: bool = False

    def forward(self, a, x):
        xp = get_array_module(a if hasattr(a, "dtype") else x)
        self.save_for_backward(a, x)
        av, xv = xp.broadcast_arrays(xp.asarray(a), xp.asarray(x))
        dtype = numpy.result_type(av, xv)
        shape = av.shape
        if is_cuda_array(av) and (
            function := _cupy_special("gammaincc" if self.upper else "gammainc")
        ):
            with _quiet():  # CuPy's values with torch's edges
                finite, one, zero = _igamma_edges(av, xv)
                out = xp.where(finite, function(av, xv), math.nan)
                out = xp.where(one, 0.0 if self.upper else 1.0, out)
                out = xp.where(zero, 1.0 if self.upper else 0.0, out)
            return out.astype(dtype, copy=False)
        flat_a = av.astype(numpy.float64).reshape(-1)
        flat_x = xv.astype(numpy.float64).reshape(-1)
        out = xp.empty(flat_a.shape, dtype)
        step = _IGAMMA_BLOCK if xp is numpy else max(flat_a.size, 1)  # cpu: blocks in cache
        for start in range(0, flat_a.size, step):
            p, q = _igamma64(flat_a[start : start + step], flat_x[start : start + step])
            out[start : start + step] = q if self.upper else p
        return out.reshape(shape)

    def backward(self, g):
        from gradflow.ops._util import shape_of, unbroadcast

        a, x = self.saved_arrays
        need_a, need_x = self.needs_input_grad
        if need_a:
            raise NotImplementedError(
                f"the derivative for '{self.op_name}: input' is not implemented (as in "
                "PyTorch); detach input or compute it without requires_grad"
            )
        if not need_x:
            return None, None
        xp = get_array_module(g)
        a64 = xp.asarray(a, dtype=numpy.float64)
        x64 = xp.asarray(x, dtype=numpy.float64)
        with _quiet():  # exp(-x) x^(a-1) / Gamma(a); x^0 = 1 at x = 0
            power = xp.where(a64 == 1, 0.0, (a64 - 1) * xp.log(x64))
            d = xp.exp(power - x64 - lgamma_array(a64))
        d = (-d if self.upper else d).astype(g.dtype, copy=False)
        return None, unbroadcast(g * d, shape_of(x))


def _igamma_call(op: str, input: Any, other: Any, upper: bool) -> Tensor:
    for name, t in (("input", input), ("other", other)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(t).__name__}")
        if t.dtype.kind != "f":
            raise NotImplementedError(
                f"{op}: not implemented for {t.dtype} tensors; convert them with .float()"
            )
    from gradflow.ops.arithmetic import _binary

    return _binary(Igamma if not upper else IgammaUpper, input, other)


class IgammaUpper(Igamma):
    op_name = "igammac"
    upper = True


def igamma(input: Tensor, other: Tensor) -> Tensor:
    """The regularized lower incomplete gamma function P(input, other) (a = input > 0,
    x = other >= 0); differentiable in other only, as PyTorch."""
    return _igamma_call("igamma", input, other, upper=False)


def igammac(input: Tensor, other: Tensor) -> Tensor:
    """The regularized upper incomplete gamma function Q(input, other) = 1 - P."""
    return _igamma_call("igammac", input, other, upper=True)
