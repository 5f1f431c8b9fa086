"""The numba-compiled CPU loops behind gradflow.backend.compiled: one pass over memory where NumPy
takes one pass per operation. Imported only by compiled.py, and only when numba is installed; every
function here takes C-contiguous NumPy arrays and writes into the output arrays it is given.

Compiled on first call for each dtype and cached on disk (numba's cache=True, beside this
file or in the user's cache folder). Flags: error_model="numpy" (a division is a plain
vector division, not a checked one that raises ZeroDivisionError: the checked one keeps LLVM
from vectorizing any loop that divides); fastmath limited to contraction into FMAs and
ignoring the sign of zero, plus reassociation for the loops that sum, so NaN and inf keep
their IEEE meaning.

exp, expm1 and log1p in float32 are written out here (expf: Cody-Waite reduction to
[-ln2/2, ln2/2], a degree-6 polynomial, the power of two built from its exponent bits by an
LLVM bitcast): numba's own exp calls libm's scalar expf, 5x NumPy's vector exp, while these
inline into one loop that vectorizes. expf is within 3 ulp of exp over [-87.3, 88]; below
-87.3 it gives 0 (exp is under 1.2e-38 there); callers keep arguments below 88 (sigmoid and
silu recompute the rare elements below SIGMOID_CUTOFF through NumPy).

float32 erf and erfc read float32 and compute in float64 (their forms are within 1e-10 of
the truth, so the float32 result is rounded once: 0.5005 ulp at most); erfc's tail takes a
float64 exp written the same way (_exp64), and float32 erfinv a float64 log (_log64). Loops
whose result keeps the sign of a zero input compile without nsz (signed).
"""

from __future__ import annotations

import math

import numba
import numpy

from gradflow.ops.special import (  # (loaded by then: ops import this module)
    ERF32_P,
    ERF32_Q,
    ERF32_RATIONAL_D,
    ERF32_RATIONAL_N,
    ERFC32_TAIL,
    ERFC32_TAIL_T,
    ERFINV32_CENTER,
    ERFINV32_CENTRAL,
    ERFINV32_TAIL,
    ERFINV32_TAIL_FROM,
    ERFINV32_TAIL_MID,
)

_ELEMENTWISE = {"contract", "nsz"}
_SUMS = {"contract", "nsz", "reassoc"}

f32 = numpy.float32


def _compile(fastmath):
    return numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=fastmath)


elementwise = _compile(_ELEMENTWISE)
sums = _compile(_SUMS)
# Without contraction into FMAs either: where a product is subtracted from its own mean (a
# row's g w - mean(g w)), an FMA keeps the product's rounding error, which invstd (up to
# 1/sqrt(eps) on a constant row) then magnifies; separate roundings cancel exactly.
exact = _compile({"nsz"})
# Without nsz: for loops whose result keeps the sign of a zero input (erf(-0.0) = -0.0).
signed = _compile({"contract"})
# Reassociation (sums) only ever in loops that reduce and write nothing: under it LLVM
# rewrote (x - m) - log_sum as x - (m + log_sum), which is 0 for a row of -1e30. Loops that
# write compile as elementwise or exact and call @sums helpers for their reductions.


@signed
def _horner(coeffs, x):
    """coeffs[0] x^(n-1) + ... + coeffs[n-1] by Horner's rule, for a tuple of constants,
    highest power first (a scalar helper: its loop unrolls and inlines into the caller's)."""
    p = coeffs[0]
    for i in range(1, len(coeffs)):
        p = p * x + coeffs[i]
    return p


# ---- float32 exp ---------------------------------------------------------------------------
_LOG2E = f32(1.4426950408889634)
_LN2_HI = f32(0.693359375)  # ln 2 split in two: hi has few bits, so k * hi is exact
_LN2_LO = f32(-2.12194440e-4)
_EXP_LO = f32(-87.3)  # exp below is 0 (2^-126 is the smallest normal float32)
_EXP_HI = f32(88.0)  # k <= 127 up to here
_P = tuple(
    f32(c)
    for c in (
        1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
        5.0000001201e-1,
    )
)  # fmt: skip


# numba has no scalar bitcast: an LLVM bitcast written as an intrinsic makes 2^k inside the
# loop, so exp, expm1 and log1p are scalar helpers that inline into one loop reading, computing
# and writing, which vectorizes. (Two loops per block, the polynomial and the exponent bits
# into arrays and then their product, ran 1.5x slower; a copy loop followed by arithmetic on
# the cached block, 2x: nothing overlapped the loads.) llvm.maxnum gives a row max that
# vectorizes (a max by compare and select is a reduction LLVM only vectorizes with the nnan
# flag, which we leave off); maxnum ignores NaN, so the loops below let NaN reach the result
# through exp.
@numba.extending.intrinsic
def _bits_f32(typingctx, i):
    """The float32 whose bits are the int32 i."""

    def codegen(context, builder, signature, args):
        import llvmlite.ir

        return builder.bitcast(args[0], llvmlite.ir.FloatType())

    return numba.float32(numba.int32), codegen


@numba.extending.intrinsic
def _maxnum(typingctx, a, b):
    """max of two float32, the other operand where one is NaN (llvm.maxnum)."""

    def codegen(context, builder, signature, args):
        import llvmlite.ir

        f = llvmlite.ir.FloatType()
        fnty = llvmlite.ir.FunctionType(f, [f, f])
        fn = numba.core.cgutils.get_or_insert_function(builder.module, fnty, "llvm.maxnum.f32")
        return builder.call(fn, args)

    return numba.float32(numba.float32, numba.float32), codegen


@elementwise
def _exp_split(v):
    """(2^k, exp(r) - 1) with exp(v) = 2^k exp(r), v clamped to [_EXP_LO, _EXP_HI]: the
    Cody-Waite reduction and polynomial above, the power of two made by _bits_f32."""
    a = min(max(v, _EXP_LO), _EXP_HI)
    k = numpy.floor(a * _LOG2E + f32(0.5))
    r = a - k * _LN2_HI - k * _LN2_LO
    p = _horner(_P, r)
    return _bits_f32((numpy.int32(k) + numpy.int32(127)) << numpy.int32(23)), p * r * r + r


@elementwise
def expf(v):
    """exp(v) of a float32 v <= 88 (callers pass v <= 0): 0 below _EXP_LO, NaN stays NaN."""
    scale, pm1 = _exp_split(v)
    e = f32(0) if v < _EXP_LO else scale * (pm1 + f32(1))
    return e if v == v else v


@elementwise
def expm1f(v):
    """exp(v) - 1 of a float32 v <= 88 without cancellation near 0 (2^k (p - 1) + (2^k - 1),
    both terms exact or small): -1 below _EXP_LO, NaN stays NaN."""
    scale, pm1 = _exp_split(v)
    e = f32(-1) if v < _EXP_LO else scale * pm1 + (scale - f32(1))
    return e if v == v else v


_SQRT2 = f32(math.sqrt(2.0))
_LOG_P = tuple(
    f32(c)
    for c in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
)


@elementwise
def log1p_unit(u):
    """log(1 + u) of a float32 u in [0, 1] (softplus's log1p(exp(-|x|))): w = 1 + u reduced
    to [sqrt(1/2), sqrt(2)] by one halving, Cephes logf's polynomial, plus the rounding of
    1 + u as (u - (w - 1)) / w. NaN stays NaN. (Its division is not what costs: 1 / w by a
    polynomial instead ran as fast.)"""
    w = f32(1) + u
    c = (u - (w - f32(1))) / w
    big = w > _SQRT2
    e = f32(1) if big else f32(0)
    x = (w * f32(0.5) if big else w) - f32(1)
    z = x * x
    p = _horner(_LOG_P, x)
    y = p * x * z + e * _LN2_LO - f32(0.5) * z
    return (x + y) + e * _LN2_HI + c


# ---- sigmoid, silu --------------------------------------------------------------------------
SIGMOID_CUTOFF = f32(-87.0)  # below, exp(-x) leaves _EXP_HI: callers recompute these


@elementwise
def sigmoid(x, out, times_x):
    """out = sigmoid(x) (times_x: x * sigmoid(x), silu) for flat float32 arrays, one loop
    (expf below); returns how many elements lie below SIGMOID_CUTOFF, whose values the caller
    recomputes (counted here, where x is in a register, not in a pass of its own)."""
    below = 0
    for i in range(x.size):
        v = x[i]
        s = f32(1) / (f32(1) + expf(-v))
        s = s * v if times_x else s
        out[i] = s if v == v else v  # NaN stays NaN
        below += v < SIGMOID_CUTOFF
    return below


@elementwise
def sigmoid_backward(y, g, out):
    """out = g y (1 - y), from sigmoid's output y."""
    for i in range(y.size):
        out[i] = g[i] * (y[i] * (f32(1) - y[i]))


@elementwise
def silu_backward(x, g, out):
    """out = g s (1 + x (1 - s)), s = sigmoid(x) recomputed from x; returns the count of
    elements below SIGMOID_CUTOFF (there the caller recomputes out)."""
    below = 0
    for i in range(x.size):
        v = x[i]
        s = f32(1) / (f32(1) + expf(-v))
        out[i] = g[i] * (s * (f32(1) + v * (f32(1) - s)))
        below += v < SIGMOID_CUTOFF
    return below


# ---- gelu (erf form) -----------------------------------------------------------------------
# erf(v) = v P(v^2) / Q(v^2) on v clamped to [-4, 4]: the float32 rational form of
# gradflow.ops.special (Eigen's and XLA's), within 4.5e-7 of erf.
_ERF_P = tuple(f32(c) for c in ERF32_P)
_ERF_Q = tuple(f32(c) for c in ERF32_Q)
_INV_SQRT_2 = f32(1 / math.sqrt(2))
_INV_SQRT_2PI = f32(1 / math.sqrt(2 * math.pi))


@elementwise
def _phi(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 (a scalar helper, inlined into the loops)."""
    v = min(max(x * _INV_SQRT_2, f32(-4)), f32(4))
    s = v * v
    p = _horner(_ERF_P, s)
    q = _horner(_ERF_Q, s)
    e = min(max(v * p / q, f32(-1)), f32(1))  # the form is 1 + 6e-8 at the clamp
    return f32(0.5) + f32(0.5) * e


@elementwise
def gelu(x, out):
    """out = x Phi(x) for flat float32 arrays; NaN stays NaN."""
    for i in range(x.size):
        y = x[i] * _phi(x[i])
        out[i] = y if x[i] == x[i] else x[i]


@elementwise
def gelu_backward(x, g, out):
    """out = g (Phi(x) + x phi(x)), both recomputed from x (nothing saved but x); phi's exp
    is 0 where -x^2/2 < -87.3."""
    for i in range(x.size):
        v = x[i]
        pdf = _INV_SQRT_2PI * expf(f32(-0.5) * v * v)
        out[i] = g[i] * (_phi(v) + v * pdf)


# ---- cumulative sum ------------------------------------------------------------------------
@elementwise
def _scan_rows(x, out, reverse):
    """scan for B = 1: one running total in a register per row (a dependent add each)."""
    outer, n, _ = x.shape
    for a in range(outer):
        acc = 0.0
        for j in range(n):
            k = n - 1 - j if reverse else j
            acc += x[a, k, 0]
            out[a, k, 0] = acc


@elementwise
def scan(x, out, reverse):
    """out[a, k, b] = sum of x[a, j, b] over j <= k (reverse: j >= k) for (A, K, B) arrays,
    accumulated in float64 in order (PyTorch's cpu cumsum, the same bits); for B > 1 the B
    columns advance together, so that loop vectorizes."""
    outer, n, inner = x.shape
    if inner == 1:
        _scan_rows(x, out, reverse)
        return
    acc = numpy.empty(inner, numpy.float64)
    for a in range(outer):
        acc[:] = 0.0
        for j in range(n):
            k = n - 1 - j if reverse else j
            for b in range(inner):
                acc[b] += x[a, k, b]
                out[a, k, b] = acc[b]


# ---- row normalizations (layer_norm; group_norm's statistics) ------------------------------
@sums
def _row_sum64(row):
    s = 0.0
    for j in range(row.size):
        s += row[j]
    return s


@sums
def _row_square_sum64(row, mean):
    q = 0.0
    for j in range(row.size):
        d = row[j] - mean
        q += d * d
    return q


@elementwise
def _row_moments(row, eps):
    """(mean, 1 / sqrt(var + eps)) of one row (biased variance), in float64, by two passes
    over the row (in cache): the mean, then the squares of the deviations from it."""
    k = max(row.size, 1)
    mean = _row_sum64(row) / k
    return mean, 1.0 / math.sqrt(_row_square_sum64(row, mean) / k + eps)


@elementwise
def row_moments(x, eps, mean, rstd):
    """mean[r] and rstd[r] = 1 / sqrt(var[r] + eps) of each row of (R, K)."""
    for r in range(x.shape[0]):
        mean[r], rstd[r] = _row_moments(x[r], eps)


@elementwise
def layer_norm(x, weight, bias, eps, out, mean, rstd):
    """out = (x - mean) rstd weight + bias per row of (R, K); mean and rstd kept."""
    rows, k = x.shape
    t = x.dtype.type
    for r in range(rows):
        m, inv = _row_moments(x[r], eps)
        mean[r] = m
        rstd[r] = inv
        mr = t(m)
        ir = t(inv)
        src = x[r]
        dst = out[r]
        for j in range(k):
            dst[j] = (src[j] - mr) * ir * weight[j] + bias[j]


@sums
def _layer_norm_row_sums(g, x, mr, ir, weight, gw, gb):
    """(sum gh, sum gh xhat) of one row, gh = g weight, xhat = (x - mr) ir; gw += g xhat and
    gb += g (each column once per row)."""
    t = x.dtype.type
    s1 = t(0)
    s2 = t(0)
    for j in range(x.size):
        xh = (x[j] - mr) * ir
        gh = g[j] * weight[j]
        s1 += gh
        s2 += gh * xh
        gw[j] += g[j] * xh
        gb[j] += g[j]
    return s1, s2


@exact
def _layer_norm_row_grad(g, x, mr, ir, weight, a, b, out):
    for j in range(x.size):
        xh = (x[j] - mr) * ir
        out[j] = ir * ((g[j] * weight[j] - a) - xh * b)


@elementwise
def layer_norm_backward(g, x, mean, rstd, weight, gx, gw, gb, need_x):
    """For each row of (R, K): gx = rstd (gh - mean(gh) - xhat mean(gh xhat)), gh = g weight,
    xhat = (x - mean) rstd (recomputed); gw += g xhat and gb += g summed over rows. Sums in
    x's dtype (as PyTorch's cpu kernel), by vector lanes."""
    rows, k = x.shape
    t = x.dtype.type
    for r in range(rows):
        mr = t(mean[r])
        ir = t(rstd[r])
        s1, s2 = _layer_norm_row_sums(g[r], x[r], mr, ir, weight, gw, gb)
        if need_x:
            a = s1 / t(max(k, 1))
            b = s2 / t(max(k, 1))
            _layer_norm_row_grad(g[r], x[r], mr, ir, weight, a, b, gx[r])


# ---- per-(sample, channel) maps and sums (group_norm) --------------------------------------
@elementwise
def channel_normalize(x, center, scale, shift, out):
    """out[n, c, l] = (x[n, c, l] - center[n, c]) scale[n, c] + shift[n, c]: x - mean first,
    exact where x is its group's mean (x scale + (shift - mean scale), PyTorch's form, leaves
    the rounding of mean scale, up to 1/sqrt(eps) times x's)."""
    n, c, length = x.shape
    t = x.dtype.type
    for i in range(n):
        for j in range(c):
            m = t(center[i, j])
            a = t(scale[i, j])
            b = t(shift[i, j])
            for p in range(length):
                out[i, j, p] = (x[i, j, p] - m) * a + b


@exact
def channel_normalize_backward(g, x, weight, center, scale, gh_mean, slope, out):
    """group_norm's dx = invstd (g w - mean(g w) - (x - mean) invstd mean(g w xhat)), per
    (n, c): out = scale ((g weight - gh_mean) - (x - center) slope), with scale = invstd and
    slope = invstd mean(g w xhat). The products are not fused into FMAs (exact), so a
    group of one value gets 0, not its rounding error times 1/sqrt(eps)."""
    n, c, length = x.shape
    t = x.dtype.type
    for i in range(n):
        for j in range(c):
            w = t(weight[j])
            mg = t(gh_mean[i, j])
            m = t(center[i, j])
            s = t(scale[i, j])
            k = t(slope[i, j])
            for p in range(length):
                out[i, j, p] = s * ((g[i, j, p] * w - mg) - (x[i, j, p] - m) * k)


@sums
def channel_dots(g, x, dots, sums_out):
    """dots[n, c] = sum_l g x and sums_out[n, c] = sum_l g, in float64 (the products too:
    the caller subtracts mean * sums_out, exactly the dot where x is constant)."""
    n, c, length = x.shape
    f64 = numpy.float64
    for i in range(n):
        for j in range(c):
            d = 0.0
            s = 0.0
            for p in range(length):
                d += f64(g[i, j, p]) * f64(x[i, j, p])
                s += g[i, j, p]
            dots[i, j] = d
            sums_out[i, j] = s


# ---- depthwise convolution, stride 1 (one input and one output channel per group) -------------
# x [N, C, H, W], weight [C, KH, KW], out/dY [N, C, OH, OW]. Each plane (one sample's channel)
# is copied into a zero-padded frame of (OH + (KH-1) dh) rows of Wf = OW + (KW-1) dw values, in
# cache; kernel offset (a, b) then reads the frame at a*dh*Wf + b*dw, so every offset is one
# loop over OH*Wf values (the last Wf - OW of each row are computed and dropped), long enough
# to vectorize, where a loop per output row of 32 values was slower than NumPy.
@elementwise
def _fill_frame(x, i, ch, frame, fh, fw, ph, pw):
    """frame[:fh*fw] = plane (i, ch) of x placed at (ph, pw), zeros around it."""
    h, width = x.shape[2], x.shape[3]
    frame[:] = 0
    first, stop = max(0, pw), min(fw, pw + width)
    for fr in range(fh):
        ih = fr - ph
        if 0 <= ih < h and first < stop:
            frame[fr * fw + first : fr * fw + stop] = x[i, ch, ih, first - pw : stop - pw]


@elementwise
def _frame_shape(out_h, out_w, kh, kw, dh, dw):
    return out_h + (kh - 1) * dh, out_w + (kw - 1) * dw


@elementwise
def depthwise_forward(x, weight, bias, out, ph, pw, dh, dw):
    n, c = x.shape[0], x.shape[1]
    oh, ow = out.shape[2], out.shape[3]
    kh, kw = weight.shape[1], weight.shape[2]
    fh, fw = _frame_shape(oh, ow, kh, kw, dh, dw)
    frame = numpy.empty(fh * fw + fw, x.dtype)  # slack: the last row's offsets read past it
    acc = numpy.empty(oh * fw, x.dtype)
    span = oh * fw
    for i in range(n):
        for ch in range(c):
            _fill_frame(x, i, ch, frame, fh, fw, ph, pw)
            for q in range(span):
                acc[q] = bias[ch]
            for a in range(kh):
                for b in range(kw):
                    wv = weight[ch, a, b]
                    shift = a * dh * fw + b * dw
                    src = frame[shift : shift + span]  # a view: indices from 0, which numba
                    for q in range(span):  # can tell are not negative, so the loop vectorizes
                        acc[q] += wv * src[q]
            for r in range(oh):
                out[i, ch, r, :] = acc[r * fw : r * fw + ow]


@sums
def depthwise_weight_grad(g, x, dweight, ph, pw, dh, dw):
    """dweight[C, KH, KW] (float64, zeroed by the caller) += per plane, the dot product of dY
    (laid on the frame's width, zeros in the dropped columns) with the frame at each offset;
    each dot in x's dtype (vector lanes), added into float64."""
    n, c = x.shape[0], x.shape[1]
    oh, ow = g.shape[2], g.shape[3]
    kh, kw = dweight.shape[1], dweight.shape[2]
    fh, fw = _frame_shape(oh, ow, kh, kw, dh, dw)
    frame = numpy.empty(fh * fw + fw, x.dtype)
    gbuf = numpy.zeros(oh * fw, x.dtype)
    span = oh * fw
    t = x.dtype.type
    for i in range(n):
        for ch in range(c):
            _fill_frame(x, i, ch, frame, fh, fw, ph, pw)
            for r in range(oh):
                gbuf[r * fw : r * fw + ow] = g[i, ch, r, :]
            for a in range(kh):
                for b in range(kw):
                    shift = a * dh * fw + b * dw
                    src = frame[shift : shift + span]
                    s = t(0)
                    for q in range(span):
                        s += gbuf[q] * src[q]
                    dweight[ch, a, b] += s


# ---- softmax rows: softmax, log_softmax and cross_entropy along the last dim (float32) -------
# Each row (in cache after its first pass) takes a max pass, an exp-and-sum pass and a pass
# that writes; PyTorch's semantics: a row holding +inf or NaN, or all -inf, is NaN throughout.
# Only the sums are compiled with reassociation (the @sums helpers): under it LLVM rewrote
# (x - m) - log_sum as x - (m + log_sum), which is 0 for a row of -1e30.
@sums
def _row_max(row):
    m = f32(-numpy.inf)
    for j in range(row.size):
        m = _maxnum(m, row[j])
    return m


@sums
def _row_exp_sum(row, m):
    """sum of exp(row - m)."""
    s = f32(0)
    for j in range(row.size):
        s += expf(row[j] - m)
    return s


@sums
def _row_exp_store_sum(row, m, out):
    """out = exp(row - m); returns its sum."""
    s = f32(0)
    for j in range(row.size):
        e = expf(row[j] - m)
        out[j] = e
        s += e
    return s


@sums
def _row_sum(a):
    s = f32(0)
    for j in range(a.size):
        s += a[j]
    return s


@sums
def _row_dot(a, b):
    s = f32(0)
    for j in range(a.size):
        s += a[j] * b[j]
    return s


@elementwise
def softmax_rows(x, out, log):
    """out = softmax (log: log_softmax) of each row of (R, K) float32 x: exp(x - m) / sum,
    (log: (x - m) - log sum), m the row's max."""
    rows, k = x.shape
    for r in range(rows):
        row = x[r]
        o = out[r]
        m = _row_max(row)
        if log:
            ls = f32(math.log(_row_exp_sum(row, m)))
            for j in range(k):
                o[j] = (row[j] - m) - ls
        else:
            inv = f32(1) / _row_exp_store_sum(row, m, o)
            for j in range(k):
                o[j] = o[j] * inv


@elementwise
def softmax_rows_backward(y, g, out, log):
    """From the output y of (R, K) rows: out = y (g - sum(g y)) (log: g - exp(y) sum(g))."""
    rows, k = y.shape
    for r in range(rows):
        yr = y[r]
        gr = g[r]
        o = out[r]
        if log:
            s = _row_sum(gr)
            for j in range(k):
                o[j] = gr[j] - expf(yr[j]) * s
        else:
            s = _row_dot(gr, yr)
            for j in range(k):
                o[j] = yr[j] * (gr[j] - s)


@elementwise
def cross_entropy_rows(x, target, ignore_index, eps, loss, m_out, ls_out):
    """loss[n] = -log_softmax(x[n])[t] = log sum exp(x[n] - m) - (x[n, t] - m) of (N, C)
    float32 logits, t = target[n]; 0 where t == ignore_index, NaN where t is out of range
    (callers check). With label smoothing eps: (1 - eps) times that plus eps / C times the
    sum over the classes, C ls - sum (x[n, c] - m) (that sum in float64). Keeps each row's
    max m and log-sum for backward; returns the number of targets not ignored ('mean''s
    denominator)."""
    rows, k = x.shape
    kept = 0
    for r in range(rows):
        row = x[r]
        m = _row_max(row)
        ls = f32(math.log(_row_exp_sum(row, m)))
        m_out[r] = m
        ls_out[r] = ls
        t = target[r]
        if t == ignore_index:
            loss[r] = f32(0)
            continue
        kept += 1
        picked = ls - (row[t] - m) if 0 <= t < k else f32(numpy.nan)
        if eps == 0:
            loss[r] = picked
            continue
        total = 0.0
        for j in range(k):
            total += numpy.float64(row[j] - m)
        smooth = f32(k * numpy.float64(ls) - total)
        loss[r] = (f32(1) - eps) * picked + (eps / f32(k)) * smooth
    return kept


@elementwise
def cross_entropy_rows_backward(x, target, ignore_index, eps, m, ls, scale, out):
    """out[n] = scale[n] (softmax(x[n]) - (1 - eps) onehot(t) - eps / C), softmax = exp((x -
    m) - log-sum) as log_softmax's backward computes it; scale 0 where t == ignore_index."""
    rows, k = x.shape
    for r in range(rows):
        t = target[r]
        s = f32(0) if t == ignore_index else scale[r]
        row = x[r]
        o = out[r]
        mr = m[r]
        lr = ls[r]
        shift = s * (eps / f32(k))
        for j in range(k):
            o[j] = expf((row[j] - mr) - lr) * s - shift
        if t != ignore_index and 0 <= t < k:
            o[t] -= s * (f32(1) - eps)


# ---- leaky_relu (float32, float64), elu, softplus (float32): one pass each way -------------
@elementwise
def leaky_relu(x, slope, out):
    """out = x where x > 0, else slope x (NaN stays NaN)."""
    for i in range(x.size):
        out[i] = x[i] if x[i] > 0 else x[i] * slope


@elementwise
def leaky_relu_backward(x, g, slope, out):
    """out = g where x > 0, else slope g (as PyTorch: at NaN, slope g)."""
    for i in range(x.size):
        out[i] = g[i] if x[i] > 0 else g[i] * slope


@elementwise
def elu(x, alpha, out):
    """out = x where x > 0, else alpha expm1(x), float32."""
    for i in range(x.size):
        out[i] = x[i] if x[i] > 0 else alpha * expm1f(x[i])


@elementwise
def elu_backward(y, g, alpha, out):
    """From the output y (alpha >= 0: y > 0 iff x > 0): out = g (y + alpha) where y <= 0,
    else g (at NaN g, as PyTorch's backward from the input)."""
    for i in range(y.size):
        out[i] = g[i] * (y[i] + alpha) if y[i] <= 0 else g[i]


@elementwise
def softplus(x, beta, threshold, out):
    """out = (max(bx, 0) + log1p(exp(-|bx|))) / beta, bx = beta x; x where bx > threshold."""
    for i in range(x.size):
        bx = x[i] * beta
        sp = max(bx, f32(0)) + log1p_unit(expf(-abs(bx)))
        out[i] = x[i] if bx > threshold else sp / beta


@elementwise
def softplus_backward(x, g, beta, threshold, out):
    """out = g sigmoid(bx) (as exp(min(bx, 0)) / (1 + exp(-|bx|))); g where bx > threshold."""
    for i in range(x.size):
        bx = x[i] * beta
        e = expf(-abs(bx))
        num = f32(1) if bx >= 0 else e
        d = g[i] * (num / (f32(1) + e))
        out[i] = g[i] if bx > threshold else d


# ---- activations: logsigmoid, mish, hardswish, hardsigmoid, hardtanh, glu, prelu ----------
# One pass each way, on flat C-contiguous arrays (glu and prelu: 3-D views, see each). float32
# only (expf, or float32 constants), but hardtanh and prelu, which take float64 too. Where a
# comparison decides, each follows PyTorch's vectorized CPU loop (its scalar tail loop differs
# at NaN for hardtanh and hardswish). selu/celu keep NumPy's expm1: expf's 3 ulp broke their
# same-values-as-the-select test (tests/ops/test_unary_cpu_fast.py).
_MISH_CLAMP = f32(20.0)  # exp(x) (exp(x) + 2) past 2^25 from here: tanh(softplus(x)) is 1
_SIXTH = f32(1 / 6)


@elementwise
def logsigmoid(x, out):
    """out = min(x, 0) - log1p(exp(-|x|)), float32 (-inf at -inf, 0 at +inf, NaN stays NaN)."""
    for i in range(x.size):
        v = x[i]
        out[i] = min(v, f32(0)) - log1p_unit(expf(-abs(v)))


@elementwise
def logsigmoid_backward(x, g, out):
    """out = g sigmoid(-x), as exp(min(-x, 0)) / (1 + exp(-|x|)) (PyTorch's: g / (1 + z) for
    x < 0, g z / (1 + z) else, z = exp(-|x|))."""
    for i in range(x.size):
        v = x[i]
        e = expf(-abs(v))
        num = f32(1) if v < 0 else e
        out[i] = g[i] * (num / (f32(1) + e))


@elementwise
def _tanh_softplus(v):
    """(tanh(softplus(v)), sigmoid(v)) of a float32 v: with e = exp(v) and n = e (e + 2),
    tanh(log(1 + e)) = n / (n + 2) and sigmoid(v) = e / (1 + e) (v clamped to 20 for exp)."""
    e = expf(v if v < _MISH_CLAMP else _MISH_CLAMP)
    n = e * (e + f32(2))
    return n / (n + f32(2)), e / (f32(1) + e)


@elementwise
def mish(x, out):
    """out = x tanh(softplus(x)), float32 (NaN at -inf, as PyTorch's -inf * 0)."""
    for i in range(x.size):
        v = x[i]
        th, _ = _tanh_softplus(v)
        out[i] = v * th


@elementwise
def mish_backward(x, g, out):
    """out = g (th + x sigmoid(x) (1 - th th)), th = tanh(softplus(x)), PyTorch's formula."""
    for i in range(x.size):
        v = x[i]
        th, s = _tanh_softplus(v)
        out[i] = g[i] * (th + v * s * (f32(1) - th * th))


@elementwise
def hardswish(x, out):
    """out = x min(max(x + 3, 0), 6) / 6, float32 (NaN stays NaN: x times it)."""
    for i in range(x.size):
        v = x[i]
        c = v + f32(3)
        c = c if c > f32(0) else f32(0)
        c = c if c < f32(6) else f32(6)
        out[i] = v * c / f32(6)


@elementwise
def hardswish_backward(x, g, out):
    """out = g where x >= 3, 0 where x <= -3, else g (x / 3 + 1/2) (NaN at NaN), float32, as
    PyTorch's vectorized loop."""
    for i in range(x.size):
        v = x[i]
        inner = f32(0) if v <= f32(-3) else g[i] * (v / f32(3) + f32(0.5))
        out[i] = g[i] if v >= f32(3) else inner


@elementwise
def hardsigmoid(x, out):
    """out = min(max(x + 3, 0), 6) / 6, float32 (NaN stays NaN)."""
    for i in range(x.size):
        c = x[i] + f32(3)
        c = f32(0) if c < f32(0) else c
        c = f32(6) if c > f32(6) else c
        out[i] = c / f32(6)


@elementwise
def hardsigmoid_backward(x, g, out):
    """out = g / 6 (as g times float32 1/6, PyTorch's) strictly inside (-3, 3), else 0 (0 at
    NaN), float32."""
    for i in range(x.size):
        v = x[i]
        out[i] = g[i] * _SIXTH if (v > f32(-3) and v < f32(3)) else f32(0)


@elementwise
def softshrink(x, lambd, zero, out):
    """out = x - lambd above lambd, x + lambd below -lambd, zero between; NaN stays NaN."""
    for i in range(x.size):
        v = x[i]
        inside = zero if v == v else v
        out[i] = v - lambd if v > lambd else (v + lambd if v < -lambd else inside)


@elementwise
def hardshrink(x, lambd, zero, out):
    """out = x outside [-lambd, lambd], zero inside; NaN stays NaN."""
    for i in range(x.size):
        v = x[i]
        out[i] = v if (v > lambd or v < -lambd or v != v) else zero


@elementwise
def shrink_backward(x, g, lambd, zero, out):
    """out = g outside [-lambd, lambd], else zero (zero at NaN, as PyTorch)."""
    for i in range(x.size):
        v = x[i]
        out[i] = g[i] if (v > lambd or v < -lambd) else zero


@elementwise
def threshold(x, limit, value, out):
    """out = value where x <= limit, else x (NaN stays NaN: PyTorch's rule)."""
    for i in range(x.size):
        v = x[i]
        out[i] = value if v <= limit else v


@elementwise
def threshold_backward(x, g, limit, zero, out):
    """out = zero where x <= limit, else g (g at NaN, as PyTorch)."""
    for i in range(x.size):
        out[i] = zero if x[i] <= limit else g[i]


@elementwise
def hardtanh(x, lo, hi, out):
    """out = x clamped to [lo, hi] (NaN stays NaN)."""
    for i in range(x.size):
        v = x[i]
        v = lo if v < lo else v
        out[i] = hi if v > hi else v


@elementwise
def hardtanh_backward(x, g, lo, hi, zero, out):
    """out = g strictly inside (lo, hi), else zero (zero at NaN, as PyTorch's vectorized
    loop)."""
    for i in range(x.size):
        v = x[i]
        out[i] = g[i] if (v > lo and v < hi) else zero


@elementwise
def glu(x, out):
    """x of shape (outer, 2, inner): out[o, j] = x[o, 0, j] sigmoid(x[o, 1, j]), float32,
    sigmoid as exp(min(b, 0)) / (1 + exp(-|b|))."""
    outer, _, inner = x.shape
    for o in range(outer):
        a = x[o, 0]
        b = x[o, 1]
        r = out[o]
        for j in range(inner):
            v = b[j]
            e = expf(-abs(v))
            num = f32(1) if v >= 0 else e
            r[j] = a[j] * (num / (f32(1) + e))


@elementwise
def _glu_backward_row(a, b, g, da, db):
    """One row of glu_backward on 1-D views (the loop over a row of the 3-D arrays indexed
    in place ran scalar, 10x slower)."""
    for j in range(a.size):
        v = b[j]
        e = expf(-abs(v))
        num = f32(1) if v >= 0 else e
        s = num / (f32(1) + e)
        d = g[j] * s
        da[j] = d
        db[j] = d * a[j] * (f32(1) - s)


@elementwise
def glu_backward(x, g, out):
    """x and out of shape (outer, 2, inner), g (outer, inner): out[:, 0] = g s, out[:, 1] =
    g s a (1 - s), s = sigmoid(b) recomputed."""
    for o in range(x.shape[0]):
        _glu_backward_row(x[o, 0], x[o, 1], g[o], out[o, 0], out[o, 1])


@elementwise
def prelu(x, w, out):
    """x and out of shape (outer, channels, inner), w (channels,): x where x > 0, else w x."""
    outer, channels, inner = x.shape
    for o in range(outer):
        for c in range(channels):
            wc = w[c]
            row = x[o, c]
            r = out[o, c]
            for j in range(inner):
                v = row[j]
                r[j] = v if v > 0 else wc * v


@sums
def _prelu_plane_sum(row, grow):
    """sum of x g over the elements x <= 0 (not x > 0: NaN counted, as PyTorch), float64."""
    acc = 0.0
    for j in range(row.size):
        v = row[j]
        acc += numpy.float64(grow[j] * v) if not v > 0 else 0.0
    return acc


@elementwise
def prelu_backward(x, g, w, dx, dw, need_x, need_w):
    """x, g, dx of shape (outer, channels, inner): dx = g where x > 0, else w g; dw (float64,
    channels) += the sum of x g where not x > 0."""
    outer, channels, inner = x.shape
    for o in range(outer):
        for c in range(channels):
            row = x[o, c]
            grow = g[o, c]
            if need_x:
                wc = w[c]
                r = dx[o, c]
                for j in range(inner):
                    r[j] = grow[j] if row[j] > 0 else wc * grow[j]
            if need_w:
                dw[c] += _prelu_plane_sum(row, grow)


# ---- erf (float32 in, float64 inside) ----------------------------------------------------------
# erf(x) = x N(x^2 - 8) / D(x^2 - 8) on x clamped to [-4, 4]: gradflow.ops.special's
# ERF32_RATIONAL (D monic), evaluated in float64 (within 9e-12 relative of erf: 0.5001 ulp of
# the float32 result). No exp, no branch: the loop vectorizes (float32 loads widened, 13 FMAs
# and a division, narrowed stores), faster than an FMA-only degree-18 polynomial was.
_ERF_N = tuple(float(c) for c in ERF32_RATIONAL_N)
_ERF_D = (1.0, *(float(c) for c in ERF32_RATIONAL_D))  # D monic: its leading 1 written out
assert len(_ERF_N) == 8 and len(_ERF_D) == 8


@signed
def _erf_rational(a):
    """erf(a) for a float64 a in [-4, 4] (a scalar helper, inlined into the loops)."""
    s = a * a - 8.0
    return a * _horner(_ERF_N, s) / _horner(_ERF_D, s)


@signed
def erf(x, out):
    """out = erf(x) for flat float32 arrays; NaN stays NaN, +-inf give +-1, -0.0 stays -0.0."""
    for i in range(x.size):
        v = x[i]
        y = f32(_erf_rational(numpy.float64(min(max(v, f32(-4)), f32(4)))))
        out[i] = y if v == v else v


# erfc: 1 - erf below 0.5; at or above, t exp(P(t - T) - x^2) with t = 2 / (2 + x) and x
# clamped to 10.1 (erfc rounds to 0 in float32 beyond), ERFC32_TAIL of gradflow.ops.special,
# within 3e-11 relative in float64. The exp is float64 (_exp64: Cody-Waite reduction, Taylor
# to degree 10, within 1e-15 on the [-103, 0] it gets); both branches are computed and one
# selected, so the loop still vectorizes.
_ERFC_TAIL = tuple(float(c) for c in ERFC32_TAIL)
assert len(_ERFC_TAIL) == 13
_ERFC_TAIL_T = float(ERFC32_TAIL_T)
_EXP64_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(10, -1, -1))
_LOG2E_64 = 1.4426950408889634
_LN2_HI_64 = 6.93147180369123816490e-01  # its low 32 bits are 0: k * hi is exact
_LN2_LO_64 = 1.90821492927058770002e-10


@numba.extending.intrinsic
def _bits_f64(typingctx, i):
    """The float64 whose bits are the int64 i."""

    def codegen(context, builder, signature, args):
        import llvmlite.ir

        return builder.bitcast(args[0], llvmlite.ir.DoubleType())

    return numba.float64(numba.int64), codegen


@elementwise
def _exp64(y):
    """exp(y) of a float64 y in [-1020, 0] (normal results; the caller passes -103 or more):
    2^k exp(r), |r| <= ln2 / 2."""
    k = numpy.floor(y * _LOG2E_64 + 0.5)
    r = (y - k * _LN2_HI_64) - k * _LN2_LO_64
    p = _horner(_EXP64_TAYLOR, r)
    return _bits_f64((numpy.int64(k) + numpy.int64(1023)) << numpy.int64(52)) * p


@elementwise
def _erfc_tail(a):
    """erfc(a) for a float64 a in [0.5, 10.1] (a scalar helper)."""
    t = 2.0 / (2.0 + a)
    d = t - _ERFC_TAIL_T
    p = _horner(_ERFC_TAIL, d)
    return t * _exp64(p - a * a)


@elementwise
def erfc(x, out):
    """out = erfc(x) for flat float32 arrays; NaN stays NaN, -inf gives 2, +inf 0."""
    for i in range(x.size):
        v = x[i]
        small = 1.0 - _erf_rational(numpy.float64(min(max(v, f32(-4)), f32(4))))
        tail = _erfc_tail(numpy.float64(min(max(v, f32(0.5)), f32(10.1))))
        y = f32(tail if v >= f32(0.5) else small)
        out[i] = y if v == v else v


@elementwise
def gauss_grad(x, g, scale, out):
    """out = g (scale exp(-x^2)) for flat float32 arrays (erf's gradient: scale 2/sqrt(pi);
    erfc's: -2/sqrt(pi)); exp is 0 below -87.3 (|x| > 9.34, +-inf), NaN stays NaN."""
    for i in range(x.size):
        v = x[i]
        out[i] = g[i] * (scale * expf(-(v * v)))


# ---- erfinv (float32 in, float64 inside) -------------------------------------------------------
# y P(w - 3.125) with w = -log((1 - y)(1 + y)) below |y| = 0.999, y Q(sqrt(w) - mid) from there to
# 1: gradflow.ops.special's ERFINV32_CENTRAL and ERFINV32_TAIL (within 1.2e-13 relative in
# float64). The log is float64 and written out (_log64), so the loop vectorizes; P's 19
# coefficients run as two Horner chains (a tuple of 19 is not unrolled, and a loop over it
# inside the element loop kept that loop scalar). The tail (|y| >= 0.999, +-1, beyond, NaN) is
# rare: the first loop counts it and a second, scalar loop rewrites those elements.
@numba.extending.intrinsic
def _f64_bits(typingctx, v):
    """The int64 whose bits are the float64 v."""

    def codegen(context, builder, signature, args):
        import llvmlite.ir

        return builder.bitcast(args[0], llvmlite.ir.IntType(64))

    return numba.int64(numba.float64), codegen


# log(1 + f) = 2 atanh(s), s = f / (2 + f), |s| <= 0.1716 for 1 + f in [sqrt(1/2), sqrt(2)]: its
# series 2 (s + s^3 / 3 + ...) to s^19 (the next term is under 3e-17 of the sum), in fdlibm's
# arrangement f - (f^2 / 2 - s (f^2 / 2 + R)), which keeps f exact; within 2.3e-16 relative of
# numpy.log.
_LOG64_SERIES = tuple(2.0 / (2 * k + 1) for k in range(9, 0, -1))
_SQRT2_64 = math.sqrt(2.0)


@elementwise
def _log64(t):
    """log(t) of a positive normal float64 t (a scalar helper)."""
    bits = _f64_bits(t)
    e = ((bits >> numpy.int64(52)) & numpy.int64(0x7FF)) - numpy.int64(1023)
    m = _bits_f64((bits & numpy.int64(0xFFFFFFFFFFFFF)) | numpy.int64(0x3FF0000000000000))
    big = m > _SQRT2_64
    k = numpy.float64(e + (numpy.int64(1) if big else numpy.int64(0)))
    f = (m * 0.5 if big else m) - 1.0
    s = f / (2.0 + f)
    z = s * s
    half_f2 = 0.5 * f * f
    r = z * _horner(_LOG64_SERIES, z)
    return k * _LN2_HI_64 - ((half_f2 - (s * (half_f2 + r) + k * _LN2_LO_64)) - f)


_ERFINV_P1 = tuple(float(c) for c in ERFINV32_CENTRAL[:10])
_ERFINV_P2 = tuple(float(c) for c in ERFINV32_CENTRAL[10:])
_ERFINV_Q = tuple(float(c) for c in ERFINV32_TAIL)
assert len(_ERFINV_P1) + len(_ERFINV_P2) == 19 and len(_ERFINV_Q) == 15
_ERFINV_CENTER = float(ERFINV32_CENTER)
_ERFINV_TAIL_FROM = float(ERFINV32_TAIL_FROM)
_ERFINV_TAIL_MID = float(ERFINV32_TAIL_MID)


@signed
def _horner_on(p, coeffs, x):
    """Horner's rule continued from p: p x^n + coeffs[0] x^(n-1) + ... + coeffs[n-1]."""
    for i in range(len(coeffs)):
        p = p * x + coeffs[i]
    return p


@elementwise
def _erfinv_tail(v):
    """erfinv of a float64 v with |v| >= 0.999 or NaN (a scalar helper)."""
    a = abs(v)
    if a < 1.0:
        w = -_log64((1.0 - a) * (1.0 + a))
        return v * _horner(_ERFINV_Q, math.sqrt(w) - _ERFINV_TAIL_MID)
    if a == 1.0:
        return math.copysign(math.inf, v)
    return math.nan


@signed
def erfinv(x, out):
    """out = erfinv(x) for flat float32 arrays: +-inf at +-1, NaN beyond and for NaN, -0.0
    stays -0.0."""
    tails = 0
    for i in range(x.size):
        v = numpy.float64(x[i])
        a = abs(v)
        inner = a < _ERFINV_TAIL_FROM
        b = a if inner else 0.5  # any finite w: the tail is rewritten below
        d = -_log64((1.0 - b) * (1.0 + b)) - _ERFINV_CENTER
        out[i] = f32(v * _horner_on(_horner(_ERFINV_P1, d), _ERFINV_P2, d))
        tails += 0 if inner else 1
    if tails:
        for i in range(x.size):
            v = numpy.float64(x[i])
            if not abs(v) < _ERFINV_TAIL_FROM:
                out[i] = f32(_erfinv_tail(v))


@elementwise
def erfinv_backward(y, g, scale, out):
    """out = g (scale exp(y^2)) for flat float32 arrays (y = erfinv(x), scale sqrt(pi) / 2):
    y^2 <= 14.7 for every finite y; inf (y = +-inf) stays inf and NaN stays NaN."""
    for i in range(y.size):
        s = y[i] * y[i]
        e = expf(s) if s <= f32(88) else s
        out[i] = g[i] * (scale * e)


# ---- Tensor.unfold's backward ------------------------------------------------------------------
@elementwise
def unfold_backward(g, dx, step):
    """dx [O, L, I] (zeroed by the caller) += every window's gradient: g [O, n, I, size] (any
    strides: a broadcast gradient is read where it lies), window k's element j at k step + j.
    A position's windows add in window order."""
    outer, n, inner, size = g.shape
    for o in range(outer):
        for k in range(n):
            base = k * step
            if inner == 1:
                row = dx[o, base : base + size, 0]
                window = g[o, k, 0]
                for j in range(size):
                    row[j] += window[j]
            else:
                for j in range(size):
                    row = dx[o, base + j]
                    for i in range(inner):
                        row[i] += g[o, k, i, j]


# ---- lerp with a number weight ----------------------------------------------------------------
@elementwise
def lerp(a, b, w, one_minus_w, small, out):
    """out = a + w (b - a) (small: |w| < 0.5) or b - (b - a)(1 - w), flat arrays of one dtype,
    the product and the sum contracted into one FMA, as torch's lerp kernel (called through
    compiled.map_backward, which passes a and b flat)."""
    if small:
        for i in range(a.size):
            out[i] = a[i] + w * (b[i] - a[i])
    else:
        for i in range(a.size):
            out[i] = b[i] - (b[i] - a[i]) * one_minus_w


# ---- tril / triu ------------------------------------------------------------------------------
@elementwise
def triangle(x, out, diagonal, upper):
    """out [B, n, m] = x's upper (j >= i + diagonal) or lower (j <= i + diagonal) triangle of
    each matrix, zeros elsewhere (x: any strides). One select per element, no mask array: the
    row loop vectorizes (as fast as a copy; a fill and a copy per row ran 2x slower)."""
    batch, n, m = x.shape
    zero = out.dtype.type(0)
    for b in range(batch):
        for i in range(n):
            cut = min(max(i + diagonal if upper else i + diagonal + 1, 0), m)
            for j in range(m):
                keep = j >= cut if upper else j < cut
                out[b, i, j] = x[b, i, j] if keep else zero


# ---- embedding's weight gradient ---------------------------------------------------------------
@elementwise
def add_rows(out, rows, values):
    """out[rows[i]] += values[i] for i in order (out [M, W] C-contiguous, values [N, W] any
    strides): repeated rows add up in index order, numpy.add.at's bits, without its per-element
    position array (4096 rows of 64: 2 ms through flat positions)."""
    for i in range(rows.size):
        dst = out[rows[i]]
        src = values[i]
        for j in range(dst.size):
            dst[j] += src[j]


# ---- grid_sample, 2-D (bilinear and nearest) ---------------------------------------------------
# x [N, C, H*W], the source positions ix, iy [N, P] (after padding_mode: resample.py's
# _source_index, NaN-free: NaN positions take the NumPy route), out / dY [N, C, P]. Per sample,
# each output's corners (flat pixel, weight with validity, and for the grid its weight's
# derivatives times validity) go into [K, P] tables, the same float arithmetic as the NumPy
# route's GridSample._corners; then per channel one loop over P gathers (forward) or scatters
# (backward) them, the plane in cache. Compiled without contraction (exact): the forward's sum of
# rounded products and the backward's scatter of rounded products then have the NumPy route's
# bits (the order of the adds per pixel is its numpy.add.at order: channel, corner, output).
@exact
def _grid_corners(ix, iy, i, h, w, nearest, flat, weight, cx, cy):
    """flat, weight, cx, cy [K, P] of sample i (K = 1 nearest, 4 bilinear: nw, ne, sw, se)."""
    t = ix.dtype.type
    zero, one = t(0), t(1)
    xmax, ymax = t(w - 1), t(h - 1)
    for p in range(ix.shape[1]):
        u, v = ix[i, p], iy[i, p]
        if nearest:
            a, b = numpy.rint(u), numpy.rint(v)  # half to even, as the NumPy route
            ok = a >= zero and a <= xmax and b >= zero and b <= ymax
            col = numpy.int64(min(max(a, zero), xmax))
            row = numpy.int64(min(max(b, zero), ymax))
            flat[0, p] = row * w + col
            weight[0, p] = one if ok else zero
            continue
        x0, y0 = numpy.floor(u), numpy.floor(v)
        tx, ty = u - x0, v - y0
        ux, uy = one - tx, one - ty
        x1, y1 = x0 + one, y0 + one
        okx0, okx1 = x0 >= zero and x0 <= xmax, x1 >= zero and x1 <= xmax
        oky0, oky1 = y0 >= zero and y0 <= ymax, y1 >= zero and y1 <= ymax
        c0 = numpy.int64(min(max(x0, zero), xmax))
        c1 = numpy.int64(min(max(x1, zero), xmax))
        r0 = numpy.int64(min(max(y0, zero), ymax)) * w
        r1 = numpy.int64(min(max(y1, zero), ymax)) * w
        for k in range(4):
            right, low = k % 2 == 1, k >= 2
            okc = okx1 if right else okx0
            okr = oky1 if low else oky0
            m = one if okc and okr else zero  # a multiplier, as the NumPy route's bool mask
            flat[k, p] = (r1 if low else r0) + (c1 if right else c0)
            wx, wy = (tx if right else ux), (ty if low else uy)
            weight[k, p] = (wx * wy) * m
            dwx = wy if right else -wy
            dwy = wx if low else -wx
            cx[k, p] = dwx * m
            cy[k, p] = dwy * m


@exact
def grid_sample_forward(x, ix, iy, out, h, w, nearest):
    n, c, size = x.shape[0], x.shape[1], ix.shape[1]
    kk = 1 if nearest else 4
    flat = numpy.empty((kk, size), numpy.int64)
    weight = numpy.empty((kk, size), x.dtype)
    cx = numpy.empty((kk, size), x.dtype)
    cy = numpy.empty((kk, size), x.dtype)
    for i in range(n):
        _grid_corners(ix, iy, i, h, w, nearest, flat, weight, cx, cy)
        for ch in range(c):
            plane = x[i, ch]
            row = out[i, ch]
            for p in range(size):
                acc = plane[flat[0, p]] * weight[0, p]
                for k in range(1, kk):
                    acc = acc + plane[flat[k, p]] * weight[k, p]
                row[p] = acc


@exact
def grid_sample_backward(g, x, ix, iy, dix, diy, dx, dgrid, h, w, nearest, need_x, need_grid):
    """dx [N, C, H*W] (zeroed by the caller) += the corners' weighted gradients; dgrid [N, P, 2]
    = the weights' derivatives dotted with g x over the channels (zero for nearest)."""
    n, c, size = g.shape[0], g.shape[1], ix.shape[1]
    kk = 1 if nearest else 4
    t = g.dtype.type
    flat = numpy.empty((kk, size), numpy.int64)
    weight = numpy.empty((kk, size), g.dtype)
    cx = numpy.empty((kk, size), g.dtype)
    cy = numpy.empty((kk, size), g.dtype)
    gv = numpy.empty((kk, size), g.dtype)
    grid_too = need_grid and not nearest
    for i in range(n):
        _grid_corners(ix, iy, i, h, w, nearest, flat, weight, cx, cy)
        if need_x:
            for k in range(kk):  # an invalid corner's NaN weight (inf - inf) adds nothing
                for p in range(size):
                    if weight[k, p] != weight[k, p]:
                        weight[k, p] = t(0)
            for ch in range(c):
                gr = g[i, ch]
                plane = dx[i, ch]
                for k in range(kk):
                    for p in range(size):
                        plane[flat[k, p]] += gr[p] * weight[k, p]
        if grid_too:
            gv[:] = 0
            for ch in range(c):
                gr = g[i, ch]
                plane = x[i, ch]
                for k in range(kk):
                    for p in range(size):
                        gv[k, p] += gr[p] * plane[flat[k, p]]
        if need_grid:
            for p in range(size):
                if not grid_too:
                    dgrid[i, p, 0] = t(0)
                    dgrid[i, p, 1] = t(0)
                    continue
                sx, sy = t(0), t(0)
                for k in range(kk):
                    sx = sx + gv[k, p] * cx[k, p]
                    sy = sy + gv[k, p] * cy[k, p]
                dgrid[i, p, 0] = sx * dix[i, p]
                dgrid[i, p, 1] = sy * diy[i, p]
