"""The error function family: erf, erfc, erfinv, and the array functions erf_array,
erfc_array, erfinv_array that GELU (unary.py) also uses. On cpu they are our own Chebyshev
series (no SciPy), computed in float64; on cuda erf and erfc are CuPy's. A float32 erf and
erfc on cpu are computed in float64 and rounded once (within 0.51 ulp of math.erf and
math.erfc): a rational form (ERF32_RATIONAL_N/D) and erfc's right tail (ERFC32_TAIL), in one
compiled loop where numba is installed, else in NumPy passes over cache-sized blocks.
erf_float32 is a float32 rational form evaluated in float32 (within 4.5e-7 of erf), for
GELU's cpu path. A float32 erfinv on cpu is two float64 polynomials in w = -log(1 - y^2)
(ERFINV32_CENTRAL, ERFINV32_TAIL), rounded once (within 0.5001 ulp of the truth on every
float32): a compiled loop with numba, else NumPy passes over cache-sized blocks.

Memory: erf and erfc save their input, erfinv its output.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import graph_input
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module, is_cuda_array
from gradflow.tensor import Tensor

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


# ---- a float32 erf: one float64 rational form ------------------------------------------
# erf(x) = x N(x^2 - 8) / D(x^2 - 8) on x clamped to [-4, 4] (erf(4) = 1 - 1.5e-8 rounds to 1
# in float32), N and D of degree 7 (D monic, its leading 1 left out; both highest power
# first; D > 0 on the range), fitted to erf(sqrt(u)) / sqrt(u) on u in [0, 16] by weighted
# least squares (Lawson's iteration) at 3000 Chebyshev nodes against mpmath's values: within
# 9e-12 relative of erf in float64, so the float32 result is within 0.5001 ulp of math.erf's
# (every float32 checked; torch's float32 erf: 0.72). x^2 and x^2 - 8 are exact in float64
# for a float32 x (the evaluation loses 3e-15 at most); the sign and -0.0 come from the
# factor x; tiny and subnormal x give x * 2/sqrt(pi), rounded once. No exp, no branch: 13
# multiply-adds and a division in one compiled loop that vectorizes (compiled_loops.erf:
# faster there than a degree-18 polynomial), or 30 NumPy passes over cache-sized blocks.
ERF32_RATIONAL_N = (
    0.04099360843019779,
    12.56560846564017,
    845.2864839690778,
    29482.576098455047,
    592953.2643057595,
    7286545.577724027,
    50935180.50153912,
    163859341.63982198,
)
ERF32_RATIONAL_D = (
    117.65162640536435,
    5824.67105349218,
    161362.21726812696,
    2738938.540478027,
    28715130.800989624,
    173012903.38901472,
    463493565.3677049,
)

# erfc(x) for x in [0.5, 10.1] (float32 results; erfc(10.1) = 2.8e-46 rounds to 0, and so
# does every larger x, clamped to 10.1): t exp(P(t - ERFC32_TAIL_T) - x^2) with t = 2 / (2 + x)
# (Numerical Recipes' form), P of degree 12, highest power first: the Chebyshev interpolant of
# log(erfc(x) / t) + x^2 on t in [2/12.1, 0.8] (mpmath), within 3e-11 of it (the relative
# error of erfc) in float64. Below 0.5, erfc = 1 - erf by ERF32_RATIONAL (erfc > 0.47 there).
ERFC32_TAIL_T = 0.4826446280991736
ERFC32_TAIL = (
    0.09609108139916701,
    -0.2996875176871584,
    -0.007077535928788429,
    0.3419218555173338,
    -0.09329268122860096,
    -0.2904824255362282,
    0.14861523151721034,
    0.26876832239518655,
    -0.18190595476510696,
    -0.36336067706672526,
    0.2086065301731433,
    1.3383775823594346,
    -0.6950830433332756,
)
_ERFC32_TAIL_FROM = 0.5
_ERFC32_TAIL_TO = 10.1

# ---- a float32 erfinv: two float64 polynomials -------------------------------------------
# erfinv(y) = y P(w - 3.125) with w = -log((1 - y)(1 + y)) for |y| < 0.999 (w < 6.22; Giles'
# form, "Approximating the erfinv function", 2010), and y Q(sqrt(w) - ERFINV32_TAIL_MID) for
# 0.999 <= |y| < 1 (w up to 15.95 for the float32 next to 1), both highest power first,
# fitted to erfinv(y) / y by relative least squares at 500 Chebyshev nodes against mpmath's
# values: within 2e-14 (P) and 1.2e-13 (Q) relative in float64, so the float32 result is
# rounded once and within 0.5001 ulp of the truth (every float32 checked). For a float32 y,
# 1 - |y| and 1 + |y| are exact in float64 and w loses about 1e-16 absolute, which P (slope
# below 0.3) turns into a relative error of the same size; tiny and subnormal y give
# y * sqrt(pi) / 2 rounded once, and -0.0 stays -0.0 (the factor y).
ERFINV32_CENTER = 3.125
ERFINV32_CENTRAL = (
    -7.690153141023388e-17,
    3.2749153939399966e-16,
    5.533019395720824e-15,
    -4.5156114956483314e-14,
    -6.943441461364837e-14,
    2.6753835757917983e-12,
    -1.3054999639452428e-11,
    -5.43917243852266e-11,
    1.05153729259726e-09,
    -4.111795039775687e-09,
    -2.90711679510696e-08,
    4.234770057477104e-07,
    -1.3654680901308943e-06,
    -1.3882521308810156e-05,
    0.00018673420726617677,
    -0.0007407025352575448,
    -0.006033670871230718,
    0.24015818242576073,
    1.6536545626830947,
)
ERFINV32_TAIL_FROM = 0.999
ERFINV32_TAIL_MID = 3.244989959798873
ERFINV32_TAIL = (
    8.360682995437783e-07,
    -3.7829616180781455e-06,
    3.8297965603947135e-06,
    1.193350182240085e-05,
    -4.8325493929820895e-05,
    7.08437674667341e-05,
    2.0990104724725098e-05,
    -0.000355980253005212,
    0.0009657426405118952,
    -0.0017171137882321728,
    0.002534095307378282,
    -0.00380156385814349,
    0.00542767298866341,
    1.0052048669725828,
    3.0788493579376492,
)

_ERF32_BLOCK64 = 1 << 15  # float64 elements per block on cpu: four buffers stay in L2


def _erf_float32_blocks(x: Any, complement: bool = False) -> Any:
    """erf of a float32 NumPy array by ERF32_RATIONAL in float64 (complement: 1 - erf,
    rounded once), block by block: about 32 passes over four cache-resident float64 buffers.
    NaN stays NaN (clip keeps it), +-inf give +-1."""
    out = numpy.empty(x.shape, numpy.float32)
    n_head, n_second, *n_rest = ERF32_RATIONAL_N
    d_second, *d_rest = ERF32_RATIONAL_D
    for _, x_block, out_block, (a_buf, s_buf, p_buf, q_buf) in _float32_blocks(x, out, 4):
        a = numpy.clip(x_block, -4.0, 4.0, out=a_buf)  # widened to float64
        s = numpy.multiply(a, a, out=s_buf)
        s -= 8.0
        p = numpy.multiply(s, n_head, out=p_buf)
        p += n_second
        for c in n_rest:
            p *= s
            p += c
        q = numpy.add(s, d_second, out=q_buf)
        for c in d_rest:
            q *= s
            q += c
        p *= a
        if complement:
            p /= q
            numpy.subtract(1.0, p, out=out_block, casting="same_kind")
        else:
            numpy.divide(p, q, out=out_block, casting="same_kind")
    return out


def _float32_blocks(x: Any, out: Any, buffers: int) -> Any:
    """Walk a float32 NumPy array x and its result out (a new C-contiguous float32 array shaped
    like x) in blocks of _ERF32_BLOCK64 elements: yields (start, x's block, out's block, a list
    of `buffers` float64 work buffers of the block's length), the buffers reused throughout."""
    flat_x = numpy.ascontiguousarray(x).reshape(-1)
    flat_out = out.reshape(-1)
    n = flat_x.size
    block = min(n, _ERF32_BLOCK64)
    work = [numpy.empty(block, numpy.float64) for _ in range(buffers)]
    for start in range(0, n, max(block, 1)):
        stop = min(start + block, n)
        m = stop - start
        yield start, flat_x[start:stop], flat_out[start:stop], [w[:m] for w in work]


def _horner_high_first(coefficients: tuple, t: Any, out: Any = None) -> Any:
    """sum c_k t^(n-1-k) (the highest power's coefficient first) by Horner's rule, in place on
    out (a new array when None)."""
    head, *rest = coefficients
    p = numpy.multiply(t, head, out=out)
    for c in rest[:-1]:
        p += c
        p *= t
    p += rest[-1]
    return p


def _erfc_tail(a: Any) -> Any:
    """erfc(a) in float64 for a float64 array a in [0.5, 10.1] (ERFC32_TAIL; relative error
    3e-11, for float32 results); a is overwritten."""
    t = numpy.add(a, 2.0)
    numpy.divide(2.0, t, out=t)
    d = t - ERFC32_TAIL_T
    p = _horner_high_first(ERFC32_TAIL, d)
    a *= a
    p -= a
    numpy.exp(p, out=p)
    p *= t
    return p


def _erfc_float32(x: Any) -> Any:
    """erfc of a float32 NumPy array: 1 - erf by ERF32_RATIONAL, then the elements at or above
    0.5 (NaN is not) replaced by the tail form, computed on those elements only."""
    out = _erf_float32_blocks(x, complement=True)
    flat_out = out.reshape(-1)
    flat_x = numpy.ascontiguousarray(x).reshape(-1)
    where = numpy.flatnonzero(flat_x >= _ERFC32_TAIL_FROM)
    if where.size:
        a = numpy.minimum(flat_x[where], _ERFC32_TAIL_TO, dtype=numpy.float64)
        with _quiet():
            flat_out[where] = _erfc_tail(a)
    return out


def erf_array(x: Any) -> Any:
    """The error function on an array: CuPy's on cuda; on cpu gradflow's own (no SciPy):
    float32 by ERF32_RATIONAL (a compiled loop with numba), other dtypes by the float64 series,
    rounded to x's dtype."""
    if is_cuda_array(x):
        from cupyx.scipy.special import erf as cupy_erf

        return cupy_erf(x).astype(x.dtype, copy=False)  # CuPy's erf gives float64 for float16
    xp = get_array_module(x)
    if xp is numpy and x.dtype == numpy.float32:
        if (loops := compiled.loops(x, float32_only=True)) is not None:
            return compiled.map_forward(loops.erf, x)
        return _erf_float32_blocks(x)
    w = _wide(x)
    value, _ = _erf_parts(xp.abs(w))
    return (xp.sign(w) * value).astype(x.dtype, copy=False)


def erfc_array(x: Any) -> Any:
    """1 - erf(x) on an array, accurate in the right tail (CuPy's on cuda; float32 on cpu
    by ERF32_RATIONAL and ERFC32_TAIL, a compiled loop with numba)."""
    if is_cuda_array(x):
        from cupyx.scipy.special import erfc as cupy_erfc

        return cupy_erfc(x).astype(x.dtype, copy=False)
    xp = get_array_module(x)
    if xp is numpy and x.dtype == numpy.float32:
        if (loops := compiled.loops(x, float32_only=True)) is not None:
            return compiled.map_forward(loops.erfc, x)
        return _erfc_float32(x)
    w = _wide(x)
    _, tail = _erf_parts(xp.abs(w))
    return xp.where(w < 0, 2.0 - tail, tail).astype(x.dtype, copy=False)


def _erfinv_tail(v: Any) -> Any:
    """erfinv of a float64 array v whose elements have |v| >= ERFINV32_TAIL_FROM or are NaN:
    y Q(sqrt(w) - ERFINV32_TAIL_MID) below 1, +-inf at +-1, NaN beyond and for NaN."""
    a = numpy.abs(v)
    with _quiet():
        t = numpy.subtract(1.0, a)
        t *= a + 1.0
        numpy.log(t, out=t)
        numpy.negative(t, out=t)
        numpy.sqrt(t, out=t)
        t -= ERFINV32_TAIL_MID
        p = _horner_high_first(ERFINV32_TAIL, t)
        p *= v
    p[a == 1.0] = numpy.copysign(numpy.inf, v[a == 1.0])
    p[~(a <= 1.0)] = numpy.nan
    return p


def _erfinv_float32_blocks(x: Any) -> Any:
    """erfinv of a float32 NumPy array: y P(w - 3.125) (ERFINV32_CENTRAL) in float64 on
    cache-sized blocks (about 45 passes over two float64 buffers), rounded once; then the
    elements at or beyond ERFINV32_TAIL_FROM (and NaN), on those elements only."""
    out = numpy.empty(x.shape, numpy.float32)
    tails = []
    for start, x_block, out_block, (a_buf, p_buf) in _float32_blocks(x, out, 2):
        a = numpy.abs(x_block, out=a_buf)  # widened to float64
        tail = numpy.flatnonzero(~(a < ERFINV32_TAIL_FROM))
        if tail.size:
            tails.append(tail + start)
            a[tail] = 0.5  # a finite w; these are recomputed below
        d = numpy.subtract(1.0, a, out=p_buf)
        a += 1.0
        d *= a
        numpy.log(d, out=d)
        d += ERFINV32_CENTER
        numpy.negative(d, out=d)  # w - 3.125 = -(log(t) + 3.125), the same rounding
        p = _horner_high_first(ERFINV32_CENTRAL, d, out=a)
        numpy.multiply(p, x_block, out=out_block, casting="same_kind")
    if tails:
        where = numpy.concatenate(tails)
        flat_x = numpy.ascontiguousarray(x).reshape(-1)
        out.reshape(-1)[where] = _erfinv_tail(flat_x[where].astype(numpy.float64))
    return out


def erfinv_array(y: Any) -> Any:
    """The inverse error function on an array. float32 on cpu: ERFINV32_CENTRAL and
    ERFINV32_TAIL in float64, rounded once (a compiled loop with numba). Other dtypes and
    cuda: Winitzki's closed form (about 2e-3 relative) refined by two Halley steps on erf,
    whose residual near |y| = 1 is taken as erfc(x) - (1 - |y|) (both exact there), so the
    tails keep full relative accuracy. erfinv(+-1) = +-inf; NaN outside [-1, 1]."""
    xp = get_array_module(y)
    if xp is numpy and y.dtype == numpy.float32:
        if (loops := compiled.loops(y, float32_only=True)) is not None:
            return compiled.map_forward(loops.erfinv, y)
        return _erfinv_float32_blocks(y)
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


# ---- a float32 erf in float32 arithmetic (GELU's cpu path) -------------------------------
# erf(x) = x P(x^2) / Q(x^2) on x clamped to [-4, 4] (erf(4) rounds to 1 in float32): the
# rational approximation Eigen and XLA use for float32, within 4.5e-7 absolute (8 ulp) of
# math.erf over the whole range. Odd numerator, even denominator, highest power first.
ERF32_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
ERF32_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


_ERF32_BLOCK = 1 << 17  # elements per block on cpu: the block's buffers stay in L2 cache


def erf_float32(x: Any, inner: float = 1.0, outer: float = 1.0, offset: float = 0.0) -> Any:
    """offset + outer * erf(inner * x) for a float32 NumPy or CuPy array x (inner > 0), in
    float32 arithmetic: the rational form above with inner and outer folded into its
    coefficients and its denominator made monic (about 25 in-place passes), the result
    bounded by |outer| (|erf| <= 1 holds exactly). On NumPy the
    passes run block by block (_ERF32_BLOCK elements) on three block-sized buffers, so they
    read and write cache rather than memory (same bits). NaN stays NaN; +-inf give
    offset +- outer."""
    xp = get_array_module(x)
    t = numpy.float32
    lead = ERF32_Q[0] * inner**8  # Q's leading coefficient, divided out of both polynomials
    p_coef = [t(c * inner ** (2 * (6 - k) + 1) * outer / lead) for k, c in enumerate(ERF32_P)]
    q_coef = [t(c * inner ** (2 * (4 - k)) / lead) for k, c in enumerate(ERF32_Q)]
    bound = t(4.0 / inner)
    out = xp.empty(x.shape, numpy.float32)
    flat_x = xp.ascontiguousarray(x).reshape(-1)
    flat_out = out.reshape(-1)
    n = flat_x.size
    block = n if xp is not numpy else min(n, _ERF32_BLOCK)
    xc_buf = xp.empty(block, numpy.float32)
    s_buf = xp.empty(block, numpy.float32)
    q_buf = xp.empty(block, numpy.float32)
    for start in range(0, n, max(block, 1)):
        stop = min(start + block, n)
        m = stop - start
        xc = xp.clip(flat_x[start:stop], -bound, bound, out=xc_buf[:m])
        s = xp.multiply(xc, xc, out=s_buf[:m])
        p = xp.multiply(s, p_coef[0], out=flat_out[start:stop])
        p += p_coef[1]
        for c in p_coef[2:]:
            p *= s
            p += c
        p *= xc  # the odd numerator
        q = xp.add(s, q_coef[1], out=q_buf[:m])  # monic
        for c in q_coef[2:]:
            q *= s
            q += c
        p /= q
        # at the clamp the rational form is 1 + 6e-8: bound it, or Phi(x) = 0.5 + 0.5 erf
        # goes below 0 and gelu(-1e30) = -1e30 Phi(-1e30) comes out large and positive
        xp.clip(p, -abs(t(outer)), abs(t(outer)), out=p)
        if offset:
            p += t(offset)
    return out


def _quiet() -> Any:
    """Silence NumPy's warnings where inf/NaN intermediates are expected and then replaced."""
    return numpy.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore")


def _gauss_grad(x: Any, g: Any, scale: float) -> Any:
    """g * (scale * exp(-x^2)), erf's and erfc's gradient: one compiled loop for float32
    NumPy arrays of one shape where numba is installed (its float32 exp), else in-place
    passes on one new array (g's dtype and shape decide the result's, as g * (...) would)."""
    xp = get_array_module(x)
    if g.shape == x.shape and (loops := compiled.loops(x, g, float32_only=True)) is not None:
        return compiled.map_backward(loops.gauss_grad, x, g, numpy.float32(scale))
    with _quiet():  # x^2 overflows to inf for |x| > 1.8e19: exp(-inf) = 0
        t = xp.asarray(x * x)  # 0-d x: keep an array, which the in-place passes need
        xp.negative(t, out=t)
        xp.exp(t, out=t)
    t *= x.dtype.type(scale)
    if g.shape == t.shape and g.dtype == t.dtype:
        t *= g
        return t
    return g * t


class Erf(Function):
    op_name = "erf"

    def forward(self, x):
        self.save_for_backward(x)
        return erf_array(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return _gauss_grad(x, g, 2 / math.sqrt(math.pi))

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        return g * ((2 / math.sqrt(math.pi)) * (-x * x).exp())


class Erfc(Function):
    op_name = "erfc"

    def forward(self, x):
        self.save_for_backward(x)
        return erfc_array(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return _gauss_grad(x, g, -2 / math.sqrt(math.pi))

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        return g * ((-2 / math.sqrt(math.pi)) * (-x * x).exp())


class Erfinv(Function):
    op_name = "erfinv"

    def forward(self, x):
        y = erfinv_array(x)
        self.save_for_backward(y)  # the output: d erfinv = sqrt(pi) / 2 exp(erfinv^2)
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        scale = y.dtype.type(math.sqrt(math.pi) / 2)
        if g.shape == y.shape and (loops := compiled.loops(y, g, float32_only=True)) is not None:
            return compiled.map_backward(loops.erfinv_backward, y, g, scale)
        return g * (scale * get_array_module(y).exp(y * y))

    def backward_graph(self, g):
        from gradflow.autograd.differentiable import graph_output

        y = graph_output(self, self.saved_arrays[0])
        return g * ((math.sqrt(math.pi) / 2) * (y * y).exp())


def erf(input: Tensor) -> Tensor:
    """The error function, 2 / sqrt(pi) * integral of exp(-t^2) from 0 to x.

    >>> import gradflow
    >>> print(f"{erf(gradflow.tensor(1.0)).item():.4f}")
    0.8427
    """
    from gradflow.ops.unary import _float_input  # unary imports this module (erf_array)

    return Erf.apply(_float_input(input, "erf"))


def erfc(input: Tensor) -> Tensor:
    """1 - erf(x), accurate where erf(x) is close to 1."""
    from gradflow.ops.unary import _float_input

    return Erfc.apply(_float_input(input, "erfc"))


def erfinv(input: Tensor) -> Tensor:
    """The inverse of erf on [-1, 1] (+-inf at +-1, NaN outside)."""
    from gradflow.ops.unary import _float_input

    return Erfinv.apply(_float_input(input, "erfinv"))
