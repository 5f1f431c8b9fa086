"""Unary math and activations: exp, log, log1p, expm1, log2, log10, exp2, sqrt, rsqrt,
reciprocal, square, abs, sign, positive; sigmoid, tanh, relu, leaky_relu, elu, gelu, silu,
softplus. Trigonometric and hyperbolic functions are in trigonometric.py, erf/erfc/erfinv in
special.py, floor/ceil/round/trunc/frac in rounding.py.

Memory: each op saves the cheapest thing its backward needs (the output for exp/sigmoid/tanh/
sqrt, a bool mask for relu and for leaky_relu's NumPy route). Activation backward on cuda runs
our kernels in kernels/elementwise.cu (see ``_activation_bwd``).

With numba installed, sigmoid, silu, gelu ("none"), elu and softplus on float32 NumPy arrays,
and leaky_relu on float32 and float64 ones, run one compiled loop each way
(gradflow.backend.compiled, docs/DESIGN.md §14) and keep what PyTorch keeps: x (silu, gelu,
softplus, leaky_relu) or the output (sigmoid, elu). Their backward recomputes the exp or erf.

Otherwise (NumPy routes) the activations avoid np.where (a slow pass on a random mask): selects
become sums of terms one of which is 0, max/clip, or a factor made by clip; each runs in place
on few new arrays, and forward saves one array more where backward would otherwise recompute an
exp or an erf: silu its sigmoid (and output), softplus exp(-|beta x|), gelu Phi(x) (float32:
the float32 rational erf_float32) or the tanh of its inner term.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import const, graph_input, graph_output
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module
from gradflow.backend.routing import uses_kernels
from gradflow.kernels.activations import kernel_activation
from gradflow.ops.special import _quiet, erf_array, erf_float32
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

    def backward_graph(self, g):
        return g * graph_output(self, self.saved_arrays[0])


class Log(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / x

    def backward_graph(self, g):
        return g / graph_input(self, 0, self.saved_arrays[0])


class Log1p(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log1p(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (1 + x)

    def backward_graph(self, g):
        return g / (1 + graph_input(self, 0, self.saved_arrays[0]))


class Expm1(Function):
    def forward(self, x):
        y = get_array_module(x).expm1(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g * (y + 1)

    def backward_graph(self, g):
        return g * (graph_output(self, self.saved_arrays[0]) + 1)


class Sqrt(Function):
    def forward(self, x):
        y = get_array_module(x).sqrt(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g / (2 * y)

    def backward_graph(self, g):
        return g / (2 * graph_output(self, self.saved_arrays[0]))


class Rsqrt(Function):
    def forward(self, x):
        y = 1 / get_array_module(x).sqrt(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return -0.5 * g * y * y * y

    def backward_graph(self, g):
        y = graph_output(self, self.saved_arrays[0])
        return -0.5 * g * y * y * y


def _sign_cpu(x: Any) -> Any:
    """numpy.sign of a float array in four fast passes instead of its one slow one (0.34 ms
    against 0.59 per 1M float32): x scaled twice by the largest power of two (every nonzero
    value reaches at least 1 in magnitude, large ones inf), clipped to [-1, 1], plus 0 (-0.0
    becomes 0.0, as numpy.sign gives). NaN stays NaN."""
    t = x.dtype.type
    scale = t(2.0 ** (numpy.finfo(x.dtype).maxexp - 1))
    with _quiet():  # overflow to inf is the point
        s = numpy.asarray(numpy.multiply(x, scale))  # 0-d x: keep an array, which out= needs
        s *= scale
    numpy.clip(s, t(-1), t(1), out=s)
    s += t(0)
    return s


class Abs(Function):
    def forward(self, x):
        xp = get_array_module(x)
        cpu_float = xp is numpy and x.dtype.kind == "f"
        # the sign (0 at 0, as PyTorch)
        self.save_for_backward(_sign_cpu(x) if cpu_float else xp.sign(x))
        return xp.abs(x)

    def backward(self, g):
        (sign,) = self.saved_arrays
        return g * sign

    def backward_graph(self, g):
        return g * const(self.saved_arrays[0])


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


def _sigmoid_cpu(x: Any) -> Any:
    """sigmoid of a NumPy array in four passes: 1 / (1 + exp(-x)) in place, within an ulp of
    stable_sigmoid; where exp(-x) overflows (x below -log(dtype max), rare) the elements are
    recomputed as stable_sigmoid does, so the far left tail keeps its tiny values."""
    t = x.dtype.type
    y = numpy.asarray(numpy.negative(x))  # 0-d x: keep an array, which out= needs
    with _quiet():
        numpy.exp(y, out=y)
        y += 1
        numpy.divide(t(1), y, out=y)
    cutoff = t(1.0 - math.log(numpy.finfo(x.dtype).max))
    if x.size and numpy.fmin.reduce(x, axis=None) < cutoff:  # a reduction: no mask pass
        far = x < cutoff
        y[far] = stable_sigmoid(x[far])
    return y


def _sigmoid(x: Any) -> Any:
    """stable_sigmoid, by the compiled loop or _sigmoid_cpu's fewer passes on NumPy."""
    if (y := _fused_sigmoid(x, times_x=False)) is not None:
        return y
    return _sigmoid_cpu(x) if get_array_module(x) is numpy else stable_sigmoid(x)


def _fused_sigmoid(x: Any, times_x: bool) -> Any:
    """sigmoid(x) (times_x: x sigmoid(x)) of a float32 NumPy array in one compiled pass
    (gradflow.backend.compiled); elements whose exp(-x) would overflow (below -87, rare) are
    recomputed by stable_sigmoid. None where the loops don't apply."""
    loops = compiled.loops(x, float32_only=True)
    if loops is None or not x.size:
        return None
    y = numpy.empty(x.shape, x.dtype)
    if loops.sigmoid(compiled.flat(x), y.reshape(-1), times_x):
        far = x < loops.SIGMOID_CUTOFF
        s = stable_sigmoid(x[far])
        with _quiet():  # silu(-inf) = -inf * 0: NaN, as PyTorch
            y[far] = x[far] * s if times_x else s
    return y


class SigmoidFunction(Function):
    op_name = "sigmoid"

    def forward(self, x):
        y = _sigmoid(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        out = _activation_bwd("sigmoid", y, g)
        if out is None and (loops := compiled.loops(y, g)) is not None and y.size:
            out = compiled.map_backward(loops.sigmoid_backward, y, g)  # g y (1 - y), one pass
        if out is None:
            out = get_array_module(y).asarray(1 - y)  # g y (1 - y), in one new array (0-d too)
            out *= y
            out *= g
        return out

    def backward_graph(self, g):
        y = graph_output(self, self.saved_arrays[0])
        return g * (y * (1 - y))


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

    def backward_graph(self, g):
        y = graph_output(self, self.saved_arrays[0])
        return g * (1 - y * y)


def mask_times(g: Any, mask: Any) -> Any:
    """g * mask for a bool mask: on NumPy the mask cast once then multiplied in place (the
    same bits, a quarter faster than the mixed-type multiply)."""
    if get_array_module(g) is not numpy:
        return g * mask
    out = numpy.asarray(mask.astype(numpy.result_type(g.dtype, mask.dtype)))
    out *= g
    return out


class ReLUFunction(Function):
    op_name = "relu"

    def forward(self, x):
        xp = get_array_module(x)
        if xp is numpy:  # clip is a faster pass than maximum(x, 0); -0.0 stays -0.0, as torch
            y = numpy.clip(x, x.dtype.type(0), x.dtype.type(math.inf))
        else:
            y = xp.maximum(x, 0)
        if uses_kernels(x):
            self.save_for_backward(y)  # the kernel's mask y > 0 equals x > 0
        else:
            self.save_for_backward(x > 0)  # a bool mask: a quarter of a float32 array
        return y

    def backward(self, g):
        (saved,) = self.saved_arrays
        out = _activation_bwd("relu", saved, g)
        return mask_times(g, saved) if out is None else out

    def backward_graph(self, g):
        (saved,) = self.saved_arrays  # the bool mask, or (kernel route) the output
        mask = saved if saved.dtype.kind == "b" else saved > 0
        return g * const(mask.astype(g.dtype))


class LeakyReLUFunction(Function):
    op_name = "leaky_relu"
    negative_slope: float

    def forward(self, x):
        if not uses_kernels(x) and (loops := compiled.loops(x)) is not None:  # one compiled pass
            y = compiled.map_forward(loops.leaky_relu, x, x.dtype.type(self.negative_slope))
            self.save_for_backward(x)  # x itself, as PyTorch (no mask pass)
            self.fused = True
            return y
        mask = x > 0
        self.save_for_backward(x if uses_kernels(x) else mask)  # kernel: input; cpu: a bool mask
        xp = get_array_module(x)
        slope = x.dtype.type(self.negative_slope)
        if xp is numpy and 0 < self.negative_slope <= 1:  # (slope 0: max(inf, inf 0) is NaN)
            # max(x, slope x): the same values as the select, without np.where's slow pass
            y = numpy.asarray(x * slope)
            numpy.maximum(x, y, out=y)
            return y
        return xp.where(mask, x, x * slope)

    def backward(self, g):
        (saved,) = self.saved_arrays
        out = _activation_bwd("leaky_relu", saved, g, negative_slope=self.negative_slope)
        if out is not None:
            return out
        t = g.dtype.type
        if getattr(self, "fused", False):  # x saved
            if (loops := compiled.loops(saved, g)) is not None:
                slope = t(self.negative_slope)
                return compiled.map_backward(loops.leaky_relu_backward, saved, g, slope)
            saved = saved > 0  # the loops are off now: the mask the NumPy form saves
        if get_array_module(g) is numpy and 0 <= self.negative_slope <= 1:
            # g * (1 where x > 0, else slope): the factor as clip(mask, slope, inf), exact
            d = numpy.asarray(saved.astype(g.dtype))
            numpy.clip(d, t(self.negative_slope), t(math.inf), out=d)
            d *= g
            return d
        return get_array_module(g).where(saved, g, g * t(self.negative_slope))

    def backward_graph(self, g):
        (saved,) = self.saved_arrays  # the bool mask, or (kernel route) the input
        mask = saved if saved.dtype.kind == "b" else saved > 0
        xp = get_array_module(mask)
        factor = xp.where(mask, g.dtype.type(1), g.dtype.type(self.negative_slope))
        return g * const(factor)


class ELUFunction(Function):
    op_name = "elu"
    alpha: float

    def forward(self, x):
        xp = get_array_module(x)
        t = x.dtype.type
        alpha = t(self.alpha)
        if (loops := self._loops(x, float32_only=True)) is not None:  # one compiled pass
            y = compiled.map_forward(loops.elu, x, alpha)
            self.save_for_backward(y)  # the output, as below
            self.fused = True
            return y
        if xp is numpy and math.isfinite(self.alpha):
            # max(x, 0) + alpha expm1(min(x, 0)): one of the two terms is 0, so the sum is
            # exactly the select's value, without np.where's slow pass
            e = numpy.asarray(numpy.clip(x, t(-math.inf), t(0)))
            numpy.expm1(e, out=e)
            e *= alpha
            y = numpy.asarray(numpy.clip(x, t(0), t(math.inf)))
            y += e
        else:
            y = xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))
        # cpu: the output, when y > 0 iff x > 0 (alpha >= 0); else, as the kernel route, x
        self.save_for_backward(x if self._from_input(x) else y)
        return y

    def _from_input(self, x):
        """Whether backward reads x (the kernel route; an alpha below 0, or NaN, where y > 0
        no longer says x > 0) rather than the output."""
        return uses_kernels(x) or not self.alpha >= 0

    def backward(self, g):
        (saved,) = self.saved_arrays
        out = _activation_bwd("elu", saved, g, alpha=self.alpha)
        if out is not None:
            return out
        y = saved
        t = y.dtype.type
        if self._from_input(saved):  # x saved: g where x > 0, else g alpha e^x (g at NaN)
            xp = get_array_module(g)
            with _quiet():  # e^x overflows where x > 88, whose value the select drops
                return xp.where(saved <= 0, g * (t(self.alpha) * xp.exp(saved)), g)
        if (loops := self._loops(y, g)) is not None:  # one compiled pass (float64 too)
            return compiled.map_backward(loops.elu_backward, y, g, t(self.alpha))
        if get_array_module(g) is numpy and math.isfinite(self.alpha):
            # g * (1 where not y <= 0, else y + alpha) as (fmin(y, 0) + alpha) (1 - m) + m, m
            # the mask (not y <= 0: 1 at NaN too, where PyTorch's x <= 0 ? ... : g gives g) as
            # 0/1: exact, each term 0 where the other is kept (fmin: 0, not NaN, at NaN). In two
            # new arrays (1 - m as a third made the step's peak twice torch's): fmin(y, 0) +
            # alpha, less alpha where the mask is 1 (exactly 0 there), plus the mask.
            a = t(self.alpha)
            n = numpy.asarray(y <= 0)
            numpy.logical_not(n, out=n)
            m = n.astype(y.dtype)
            del n
            d = numpy.asarray(numpy.fmin(y, t(0)))
            d += a
            if a:  # (alpha 0: d is already 0 where the mask is 1)
                m *= a
                d -= m
                numpy.not_equal(m, t(0), out=m)  # the mask again, as 0/1 (m is alpha or 0)
            d += m
            d *= g
            return d
        return get_array_module(g).where(y > 0, g, g * (y + t(self.alpha)))

    def _loops(self, *arrays, float32_only=False):
        """compiled_loops when the compiled elu applies: not the kernel route (which saves x), the
        loops take these arrays, alpha is finite and >= 0 (so that y > 0 iff x > 0, which
        backward reads from the output)."""
        if not (math.isfinite(self.alpha) and self.alpha >= 0) or uses_kernels(arrays[0]):
            return None
        return compiled.loops(*arrays, float32_only=float32_only)

    def backward_graph(self, g):
        (saved,) = self.saved_arrays  # the output, or (see _from_input) the input
        mask = const((saved > 0).astype(g.dtype))
        if self._from_input(saved):
            below = self.alpha * exp(graph_input(self, 0, saved))
        else:
            below = graph_output(self, saved) + self.alpha  # alpha e^x = y + alpha where x <= 0
        return g * (mask + (1 - mask) * below)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELUFunction(Function):
    """x * Phi(x) ("none") or its tanh approximation ("tanh"), as PyTorch.

    On cpu (NumPy) forward saves what backward reads besides x: Phi(x) for "none" (float32:
    erf_float32's rational form in float32 arithmetic; other dtypes: erf_array), tanh of the
    inner term for "tanh"; every step runs in place on a few new arrays."""

    op_name = "gelu"

    approximate: str

    def forward(self, x):
        xp = get_array_module(x)
        t = x.dtype.type
        loops = compiled.loops(x, float32_only=True) if self.approximate == "none" else None
        if loops is not None and x.size:  # one compiled pass; backward recomputes from x
            y = compiled.map_forward(loops.gelu, x)
            self.save_for_backward(x)
            self.fused = True
            return y
        if xp is numpy:
            if self.approximate == "tanh":
                th = xp.asarray(x * x)  # 0-d x: keep arrays, which in-place ops need
                th *= t(_SQRT_2_OVER_PI * 0.044715)
                th += t(_SQRT_2_OVER_PI)
                th *= x
                xp.tanh(th, out=th)  # tanh(sqrt(2/pi) (x + 0.044715 x^3))
            elif x.dtype == numpy.float32:
                th = erf_float32(x, _INV_SQRT_2, 0.5, 0.5)  # Phi(x)
            else:
                th = xp.asarray(erf_array(x * t(_INV_SQRT_2)))
                th += 1
                th *= t(0.5)
            self.save_for_backward(x, th)
            if self.approximate == "tanh":
                y = xp.asarray(th + 1)
                y *= x
                y *= t(0.5)
                return y
            return xp.asarray(x * th)
        self.save_for_backward(x)
        half = t(0.5)
        if self.approximate == "tanh":
            inner = t(_SQRT_2_OVER_PI) * (x + t(0.044715) * x * x * x)
            return half * x * (1 + xp.tanh(inner))
        return half * x * (1 + erf_array(x * t(_INV_SQRT_2)))

    def backward(self, g):
        x = self.saved_arrays[0]
        if uses_kernels(g):
            return _activation_bwd(kernel_activation("gelu", approximate=self.approximate), x, g)
        if getattr(self, "fused", False) and (loops := compiled.loops(x, g)) is not None:
            return compiled.map_backward(loops.gelu_backward, x, g)
        xp = get_array_module(x)
        t = x.dtype.type
        if len(self.saved_arrays) == 2:  # cpu: Phi(x) or tanh(inner) saved
            th = self.saved_arrays[1]
            if self.approximate == "tanh":
                # g (0.5 (1 + th) + 0.5 x (1 - th^2) d_inner), d_inner = c (1 + 3 k x^2)
                d = xp.asarray(x * x)
                d *= t(-1.5 * _SQRT_2_OVER_PI * 0.044715)
                d += t(-0.5 * _SQRT_2_OVER_PI)  # -d_inner / 2
                d *= x
                u = xp.asarray(th * th)
                u -= 1
                d *= u  # 0.5 x (1 - th^2) d_inner
                xp.multiply(th, t(0.5), out=u)
                u += t(0.5)
                d += u
                d *= g
                return d
            # g (Phi + x phi), phi = exp(-x^2 / 2) / sqrt(2 pi)
            d = xp.asarray(x * t(-0.5))
            d *= x
            xp.exp(d, out=d)
            d *= x
            d *= t(_INV_SQRT_2PI)
            d += th
            d *= g
            return d
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

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        if self.approximate == "tanh":
            th = tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + th) + 0.5 * x * (1 - th * th) * d_inner)
        from gradflow.ops.special import erf

        cdf = 0.5 * (1 + erf(x * _INV_SQRT_2))
        pdf = _INV_SQRT_2PI * exp(-0.5 * x * x)
        return g * (cdf + x * pdf)


class SiLUFunction(Function):
    op_name = "silu"

    def forward(self, x):
        if (y := _fused_sigmoid(x, times_x=True)) is not None:  # backward recomputes from x
            self.save_for_backward(x)
            self.fused = True
            return y
        if get_array_module(x) is numpy:  # cpu: sigmoid(x) saved too, for backward
            s = _sigmoid_cpu(x)
            y = numpy.asarray(x * s)
            self.save_for_backward(x, s, y)
            return y
        self.save_for_backward(x)
        return x * stable_sigmoid(x)

    def backward(self, g):
        x = self.saved_arrays[0]
        out = _activation_bwd("silu", x, g)
        if out is not None:
            return out
        if getattr(self, "fused", False) and (loops := compiled.loops(x, g)) is not None:
            out = numpy.empty(x.shape, x.dtype)  # in one compiled pass, s recomputed
            if loops.silu_backward(compiled.flat(x), compiled.flat(g), out.reshape(-1)):
                far = x < loops.SIGMOID_CUTOFF
                s = stable_sigmoid(x[far])
                with _quiet():
                    out[far] = g[far] * (s * (1 + x[far] * (1 - s)))
            return out
        if len(self.saved_arrays) == 3:  # cpu: g (s + y (1 - s)), y = x s, in four passes
            _, s, y = self.saved_arrays
            out = numpy.asarray(numpy.subtract(s.dtype.type(1), s))
            out *= y
            out += s
            out *= g
            return out
        s = stable_sigmoid(x)
        out = get_array_module(s).asarray(1 - s)  # g s (1 + x (1 - s)), in one more new array
        out *= x
        out += 1
        out *= s
        out *= g
        return out

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        s = sigmoid(x)
        return g * (s * (1 + x * (1 - s)))


class SoftplusFunction(Function):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold (PyTorch's definition)."""

    op_name = "softplus"

    beta: float
    threshold: float

    def forward(self, x):
        xp = get_array_module(x)
        t = x.dtype.type
        loops = None if uses_kernels(x) else compiled.loops(x, float32_only=True)
        if loops is not None:  # one compiled pass
            y = compiled.map_forward(loops.softplus, x, t(self.beta), t(self.threshold))
            self.save_for_backward(x)  # x only: backward recomputes exp(-|bx|)
            self.fused = True
            return y
        if xp is numpy:
            # max(bx, 0) + log1p(exp(-|bx|)) (logaddexp(0, bx)'s formula; within 3 ulp of it), in
            # place; exp(-|bx|) saved, backward's sigmoid is made from it
            bx = x * t(self.beta) if self.beta != 1 else x
            e = numpy.asarray(numpy.abs(bx))
            numpy.negative(e, out=e)
            numpy.exp(e, out=e)
            y = numpy.asarray(numpy.log1p(e))
            y += numpy.clip(bx, t(0), t(math.inf))
            if self.beta != 1:
                y /= t(self.beta)
            if bx.size and numpy.fmax.reduce(bx, axis=None) > self.threshold:
                # past it: x itself (rare; copyto with a sparse mask is a fast pass)
                numpy.copyto(y, x, where=bx > self.threshold)
            self.save_for_backward(x, e)
            return y
        self.save_for_backward(x)
        bx = x * t(self.beta)
        soft = xp.logaddexp(t(0), bx) / t(self.beta)
        return xp.where(bx > self.threshold, x, soft)

    def backward(self, g):
        x = self.saved_arrays[0]
        out = _activation_bwd("softplus", x, g, beta=self.beta, threshold=self.threshold)
        if out is not None:
            return out
        if getattr(self, "fused", False) and (loops := compiled.loops(x, g)) is not None:
            t = x.dtype.type
            beta, threshold = t(self.beta), t(self.threshold)
            return compiled.map_backward(loops.softplus_backward, x, g, beta, threshold)
        if len(self.saved_arrays) == 2:  # cpu: e = exp(-|bx|) saved
            e = self.saved_arrays[1]
            t = x.dtype.type
            # beta > 0: bx's sign and its largest value are x's times beta (rounding is
            # monotone; where x * beta underflows to -0, e = 1 and either sign gives 1)
            bx = x if self.beta > 0 else x * t(self.beta)
            # sigmoid(bx) = exp(min(bx, 0)) / (1 + e), its numerator max(e, bx >= 0): the
            # same bits as stable_sigmoid
            d = numpy.asarray((bx >= 0).astype(x.dtype))
            numpy.maximum(d, e, out=d)
            d /= e + t(1)
            d *= g
            if x.size:
                top = numpy.fmax.reduce(bx, axis=None)
                if self.beta > 0:
                    top = t(top) * t(self.beta)
                if top > self.threshold:
                    numpy.copyto(d, g, where=x * t(self.beta) > self.threshold)
            return d
        bx = x * x.dtype.type(self.beta)
        return get_array_module(x).where(bx > self.threshold, g, g * stable_sigmoid(bx))

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        above = const((self.saved_arrays[0] * self.beta > self.threshold).astype(g.dtype))
        return g * (above + (1 - above) * sigmoid(x * self.beta))


# ---- more pointwise math: each saves its input or its output, whichever backward reads ----
class Log2(Function):
    op_name = "log2"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log2(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (x * x.dtype.type(math.log(2.0)))

    def backward_graph(self, g):
        return g / (graph_input(self, 0, self.saved_arrays[0]) * math.log(2.0))


class Log10(Function):
    op_name = "log10"

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log10(x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g / (x * x.dtype.type(math.log(10.0)))

    def backward_graph(self, g):
        return g / (graph_input(self, 0, self.saved_arrays[0]) * math.log(10.0))


class Exp2(Function):
    op_name = "exp2"

    def forward(self, x):
        y = get_array_module(x).exp2(x)
        self.save_for_backward(y)  # the output
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        return g * y * y.dtype.type(math.log(2.0))

    def backward_graph(self, g):
        return g * graph_output(self, self.saved_arrays[0]) * math.log(2.0)


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

    def backward_graph(self, g):
        y = graph_output(self, self.saved_arrays[0])
        return -g * y * y


def _float_input(x: Any, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        from gradflow import dtypes

        return x.to(dtypes.get_default_dtype())
    return x


def exp(input: Tensor) -> Tensor:
    """e ** x."""
    return Exp.apply(_float_input(input, "exp"))


def log(input: Tensor) -> Tensor:
    """Natural logarithm."""
    return Log.apply(_float_input(input, "log"))


def log1p(input: Tensor) -> Tensor:
    """log(1 + x), accurate for small x."""
    return Log1p.apply(_float_input(input, "log1p"))


def expm1(input: Tensor) -> Tensor:
    """exp(x) - 1, accurate for small x."""
    return Expm1.apply(_float_input(input, "expm1"))


def sqrt(input: Tensor) -> Tensor:
    """Square root."""
    return Sqrt.apply(_float_input(input, "sqrt"))


def rsqrt(input: Tensor) -> Tensor:
    """1 / sqrt(x)."""
    return Rsqrt.apply(_float_input(input, "rsqrt"))


def abs(input: Tensor) -> Tensor:
    """|x| (gradient sign(x), 0 at 0)."""
    if input.dtype.kind != "f":
        return Tensor._wrap(get_array_module(input.array).abs(input.array))
    return Abs.apply(input)


def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of x (a bool tensor: itself); no gradient flows."""
    if input.dtype.kind == "b":
        return Tensor._wrap(input.array.copy())  # NumPy has no bool sign; PyTorch's is x
    return Tensor._wrap(get_array_module(input.array).sign(input.array))


absolute = abs
sgn = sign


def positive(input: Tensor) -> Tensor:
    """input itself (PyTorch's unary plus); a bool tensor raises, as in PyTorch."""
    if input.dtype.kind == "b":
        raise RuntimeError("positive: a bool tensor has no unary plus; use the tensor itself")
    return input


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return TanhFunction.apply(_float_input(input, "tanh"))


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), finite and accurate for any input."""
    return SigmoidFunction.apply(_float_input(input, "sigmoid"))


def relu(input: Tensor) -> Tensor:
    """max(x, 0); gradient 0 at 0."""
    return ReLUFunction.apply(_float_input(input, "relu"))


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return LeakyReLUFunction.apply(
        _float_input(input, "leaky_relu"), negative_slope=float(negative_slope)
    )


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return ELUFunction.apply(_float_input(input, "elu"), alpha=float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: x * Phi(x); approximate="tanh" uses the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELUFunction.apply(_float_input(input, "gelu"), approximate=approximate)


def silu(input: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return SiLUFunction.apply(_float_input(input, "silu"))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, stable for large inputs; x itself past the threshold."""
    return SoftplusFunction.apply(
        _float_input(input, "softplus"), beta=float(beta), threshold=float(threshold)
    )


def square(input: Tensor) -> Tensor:
    """x * x (an integer tensor stays integer, as in PyTorch)."""
    from gradflow import dtypes
    from gradflow.ops.arithmetic import pow as _pow

    if input.dtype.kind == "b":
        input = input.to(dtypes.int64)  # PyTorch squares a bool tensor as int64
    return _pow(input, 2)


def reciprocal(input: Tensor) -> Tensor:
    """1 / x (integer tensors give the default float dtype)."""
    return Reciprocal.apply(_float_input(input, "reciprocal"))


def log2(input: Tensor) -> Tensor:
    """Base-2 logarithm."""
    return Log2.apply(_float_input(input, "log2"))


def log10(input: Tensor) -> Tensor:
    """Base-10 logarithm."""
    return Log10.apply(_float_input(input, "log10"))


def exp2(input: Tensor) -> Tensor:
    """2 ** x."""
    return Exp2.apply(_float_input(input, "exp2"))


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
