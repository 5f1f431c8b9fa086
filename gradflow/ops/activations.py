"""More activations (relu6, hardtanh, hardswish, hardsigmoid, mish, selu, celu, prelu, rrelu,
glu, logsigmoid, softsign, softmin, threshold, tanhshrink, softshrink, hardshrink), the
``inplace=True`` forms of torch.nn.functional's activations and its ``relu_``-style names.

Memory: each op saves the cheapest thing its backward needs: a bool mask for the piecewise
linear ones (hardtanh, hardsigmoid, threshold, the shrinks), the output for selu/celu (their
slope below 0 is y + const), the input where the derivative needs it (hardswish, mish, glu,
logsigmoid, softsign, prelu).

In place (``relu(x, inplace=True)``) goes through Tensor's in-place machinery
(``Tensor._arith_``), as PyTorch's ``relu_``: unrecorded, the result is written into x's storage
and its version bumped; recorded (x requires grad), the op runs on a copy of the old values and
x becomes its output; a leaf that requires grad is refused under grad mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy

from gradflow.autograd.differentiable import const, graph_input, graph_node, graph_output
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module
from gradflow.ops import softmax as _softmax
from gradflow.ops import unary
from gradflow.ops._util import float_input, normalize_dim
from gradflow.ops.unary import _quiet, _sigmoid, mask_times, stable_sigmoid
from gradflow.tensor import Tensor

# SELU's constants (Klambauer et al. 2017), as PyTorch spells them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _softplus(x: Any) -> Any:
    """log(1 + exp(x)), finite for any x: max(x, 0) + log1p(exp(-|x|)) (logaddexp(0, x)'s
    formula, within 3 ulp of it; NumPy's logaddexp is 12x slower)."""
    xp = get_array_module(x)
    e = xp.asarray(xp.abs(x))  # 0-d: an array, which out= needs
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    xp.log1p(e, out=e)
    e += xp.maximum(x, x.dtype.type(0))
    return e


# ---- ops --------------------------------------------------------------------------------------


class HardtanhFunction(Function):
    op_name = "hardtanh"
    min_val: float
    max_val: float

    def forward(self, x):
        t = x.dtype.type
        lo, hi = t(self.min_val), t(self.max_val)
        if (loops := compiled.loops(x)) is not None:  # one compiled pass; x kept (a reference)
            self.save_for_backward(x)
            self.fused = True
            return compiled.map_forward(loops.hardtanh, x, lo, hi)
        self.save_for_backward(self._mask(x))  # a bool mask
        return get_array_module(x).clip(x, lo, hi)

    def _mask(self, x: Any) -> Any:
        """Where the gradient is g: strictly inside (lo, hi) (False at NaN: 0 there, as
        PyTorch's vectorized loop)."""
        t = x.dtype.type
        return (x > t(self.min_val)) & (x < t(self.max_val))

    def _saved_mask(self) -> Any:
        (saved,) = self.saved_arrays
        return self._mask(saved) if getattr(self, "fused", False) else saved

    def backward(self, g):
        (saved,) = self.saved_arrays
        if getattr(self, "fused", False) and (loops := compiled.loops(saved, g)) is not None:
            t = saved.dtype.type
            return compiled.map_backward(
                loops.hardtanh_backward, saved, g, t(self.min_val), t(self.max_val), t(0)
            )
        return mask_times(g, self._saved_mask())

    def backward_graph(self, g):
        return g * const(self._saved_mask().astype(g.dtype))


class HardswishFunction(Function):
    op_name = "hardswish"

    def forward(self, x):
        self.save_for_backward(x)
        t = x.dtype.type
        if (loops := compiled.loops(x, float32_only=True)) is not None:  # one compiled pass
            return compiled.map_forward(loops.hardswish, x)
        xp = get_array_module(x)
        y = xp.asarray(xp.add(x, t(3)))  # x min(max(x + 3, 0), 6) / 6 in place
        xp.clip(y, t(0), t(6), out=y)
        with _quiet():  # -inf * 0: NaN, as PyTorch's
            y *= x
        y /= t(6)
        return y

    def backward(self, g):
        (x,) = self.saved_arrays
        xp = get_array_module(x)
        t = x.dtype.type
        if (loops := compiled.loops(x, g, float32_only=True)) is not None:
            return compiled.map_backward(loops.hardswish_backward, x, g)
        # PyTorch's: 1 where x >= 3, 0 where x <= -3, else x / 3 + 1/2 (NaN at NaN, as its
        # vectorized loop): the middle piece everywhere, then the rare outer elements (|x| >=
        # 3, found by flatnonzero; put and take index in C order, whatever the layout) set to
        # x > 0 as 0/1
        slope = xp.asarray(xp.divide(x, t(3)))
        slope += t(0.5)
        at = xp.flatnonzero(xp.abs(x) >= t(3))
        if at.size:
            xp.put(slope, at, (xp.take(x, at) > t(0)).astype(x.dtype))
        slope *= g
        return slope

    def backward_graph(self, g):
        (x_a,) = self.saved_arrays
        x = graph_input(self, 0, x_a)
        inside = const(((x_a > -3) & (x_a < 3)).astype(g.dtype))
        above = const((x_a >= 3).astype(g.dtype))
        return g * (inside * (x / 3 + 0.5) + above)


class HardsigmoidFunction(Function):
    op_name = "hardsigmoid"

    def forward(self, x):
        t = x.dtype.type
        if (loops := compiled.loops(x, float32_only=True)) is not None:  # one compiled pass
            self.save_for_backward(x)  # (a reference)
            self.fused = True
            return compiled.map_forward(loops.hardsigmoid, x)
        xp = get_array_module(x)
        self.save_for_backward(self._mask(x))  # a bool mask
        y = xp.asarray(xp.add(x, t(3)))  # min(max(x + 3, 0), 6) / 6 in place
        xp.clip(y, t(0), t(6), out=y)
        y /= t(6)
        return y

    @staticmethod
    def _mask(x: Any) -> Any:
        """-3 < x < 3 (False at NaN), as |x| < 3."""
        return get_array_module(x).abs(x) < x.dtype.type(3)

    def _saved_mask(self) -> Any:
        (saved,) = self.saved_arrays
        return self._mask(saved) if getattr(self, "fused", False) else saved

    def backward(self, g):
        (saved,) = self.saved_arrays
        if getattr(self, "fused", False) and (loops := compiled.loops(saved, g)) is not None:
            return compiled.map_backward(loops.hardsigmoid_backward, saved, g)
        # PyTorch's g * (1/6) inside, 0 elsewhere: the mask as 0/1 times g, then 1/6
        d = mask_times(g, self._saved_mask())
        d *= g.dtype.type(1 / 6)
        return d

    def backward_graph(self, g):
        return g * const(self._saved_mask().astype(g.dtype) * g.dtype.type(1 / 6))


class MishFunction(Function):
    op_name = "mish"

    def forward(self, x):
        self.save_for_backward(x)
        if (loops := compiled.loops(x, float32_only=True)) is not None:  # one compiled pass
            return compiled.map_forward(loops.mish, x)
        if get_array_module(x) is numpy:
            th, _ = self._tanh_softplus(x, False)
            with _quiet():  # -inf * 0: NaN, as PyTorch's
                th *= x
            return th
        return x * get_array_module(x).tanh(_softplus(x))

    @staticmethod
    def _tanh_softplus(x: Any, with_sigmoid: bool) -> tuple[Any, Any]:
        """(tanh(softplus(x)), sigmoid(x) or None) on NumPy from one exp: with e = exp(x) and
        n = e (e + 2), tanh(log(1 + e)) = n / (n + 2), sigmoid(x) = e / (1 + e); x clamped to
        20 first (past it n + 2 rounds to n: tanh 1, sigmoid 1), NaN kept."""
        t = x.dtype.type
        e = numpy.asarray(numpy.clip(x, t(-math.inf), t(20)))
        with _quiet():  # (exp underflows to 0 far left: tanh 0, sigmoid 0)
            numpy.exp(e, out=e)
        th = numpy.asarray(numpy.add(e, t(2)))  # (0-d: arrays, which out= needs)
        th *= e
        d = numpy.asarray(numpy.add(th, t(2)))
        th /= d
        sig = None
        if with_sigmoid:
            numpy.add(e, t(1), out=d)
            sig = e
            sig /= d
        return th, sig

    def backward(self, g):
        (x,) = self.saved_arrays
        if (loops := compiled.loops(x, g, float32_only=True)) is not None:
            return compiled.map_backward(loops.mish_backward, x, g)
        if get_array_module(x) is numpy:
            # PyTorch's g (th + x sigmoid(x) (1 - th th)), in place
            th, sig = self._tanh_softplus(x, True)
            with _quiet():  # inf * 0: NaN, as PyTorch's
                sig *= x
                d = numpy.asarray(numpy.multiply(th, th))
                numpy.subtract(x.dtype.type(1), d, out=d)
                sig *= d
                sig += th
                sig *= g
            return sig
        th = get_array_module(x).tanh(_softplus(x))
        return g * (th + x * stable_sigmoid(x) * (1 - th * th))

    def backward_graph(self, g):
        x = graph_input(self, 0, self.saved_arrays[0])
        th = unary.tanh(unary.softplus(x, 1.0, math.inf))
        return g * (th + x * unary.sigmoid(x) * (1 - th * th))


class SELUFunction(Function):
    """scale * (x if x > 0 else alpha * (exp(x) - 1)); also CELU (scale 1, input over alpha)."""

    op_name = "selu"
    alpha: float = _SELU_ALPHA
    scale: float = _SELU_SCALE
    input_scale: float = 1.0

    def _blend(self, xp: Any) -> bool:
        """On NumPy, with finite constants, the selects below are sums of two terms one of
        which is 0 (exact, and without np.where's slow pass on a random mask)."""
        consts = (self.scale, self.alpha, self.input_scale, self.scale * self.alpha)
        return xp is numpy and all(math.isfinite(c) for c in consts)

    def forward(self, x):
        xp = get_array_module(x)
        t = x.dtype.type
        if self._blend(xp):
            # scale max(x, 0) + scale alpha expm1(min(x, 0) in_scale)
            neg = numpy.asarray(numpy.clip(x, t(-math.inf), t(0)))
            neg *= t(self.input_scale)
            numpy.expm1(neg, out=neg)
            neg *= t(self.scale * self.alpha)
            y = numpy.asarray(numpy.clip(x, t(0), t(math.inf)))
            y *= t(self.scale)
            y += neg
        else:
            neg = t(self.scale * self.alpha) * xp.expm1(xp.minimum(x, t(0)) * t(self.input_scale))
            y = xp.where(x > 0, x * t(self.scale), neg)
        self.save_for_backward(y)  # the output: below 0 the slope is (y + scale alpha) in_scale
        return y

    def backward(self, g):
        (y,) = self.saved_arrays
        xp = get_array_module(y)
        t = y.dtype.type
        if self._blend(xp):
            # g (scale m + (min(y, 0) + scale alpha) in_scale (1 - m)), m = (y > 0) as 0/1
            m = numpy.asarray((y > 0).astype(y.dtype))
            d = numpy.asarray(numpy.clip(y, t(-math.inf), t(0)))
            d += t(self.scale * self.alpha)
            d *= t(self.input_scale)
            d *= numpy.subtract(t(1), m)
            if self.scale != 1:
                m *= t(self.scale)
            d += m
            d *= g
            return d
        slope_neg = (y + t(self.scale * self.alpha)) * t(self.input_scale)
        return g * xp.where(y > 0, t(self.scale), slope_neg)

    def backward_graph(self, g):
        (y_a,) = self.saved_arrays
        m = const((y_a > 0).astype(g.dtype))
        y = graph_output(self, y_a)
        below = (y + self.scale * self.alpha) * self.input_scale  # the slope where x <= 0
        return g * (m * self.scale + (1 - m) * below)


class ThresholdFunction(Function):
    op_name = "threshold"
    threshold: float
    value: float

    def forward(self, x):
        # PyTorch's rule: value where x <= threshold, else x (NaN stays NaN, its gradient
        # passes); kept is where the gradient passes
        xp = get_array_module(x)
        t = x.dtype.type
        if (loops := compiled.loops(x)) is not None:  # one compiled pass; x kept (a reference)
            self.save_for_backward(x)
            self.fused = True
            return compiled.map_forward(loops.threshold, x, t(self.threshold), t(self.value))
        kept = ~(x <= t(self.threshold))
        self.save_for_backward(kept)  # a bool mask
        value = t(self.value)
        if xp is not numpy or not math.isfinite(self.value):
            return xp.where(kept, x, value)
        # x * kept + value * (1 - kept): two passes where np.where on a random mask took 3.3 ms
        # per million; an infinite x at or below the threshold (inf * 0 = NaN) is set after
        keep = kept.astype(x.dtype)
        with numpy.errstate(invalid="ignore"):  # inf * 0, replaced below
            y = numpy.multiply(x, keep)
        numpy.subtract(t(1), keep, out=keep)
        keep *= value
        y += keep
        infinite = numpy.isinf(x)
        if infinite.any():
            y[infinite & ~kept] = value
        return y

    def _kept(self) -> Any:
        """Where the gradient passes (the saved mask, or from x when the loop ran)."""
        (saved,) = self.saved_arrays
        if getattr(self, "fused", False):
            return ~(saved <= saved.dtype.type(self.threshold))
        return saved

    def backward(self, g):
        (saved,) = self.saved_arrays
        if getattr(self, "fused", False) and (loops := compiled.loops(saved, g)) is not None:
            t = saved.dtype.type
            return compiled.map_backward(
                loops.threshold_backward, saved, g, t(self.threshold), t(0)
            )
        return g * self._kept()

    def backward_graph(self, g):
        return g * const(self._kept().astype(g.dtype))


class SoftsignFunction(Function):
    op_name = "softsign"

    def forward(self, x):
        self.save_for_backward(x)
        return x / (1 + get_array_module(x).abs(x))

    def backward(self, g):
        (x,) = self.saved_arrays
        d = 1 + get_array_module(x).abs(x)
        return g / (d * d)

    def backward_graph(self, g):
        d = 1 + unary.abs(graph_input(self, 0, self.saved_arrays[0]))
        return g / (d * d)


class TanhshrinkFunction(Function):
    op_name = "tanhshrink"

    def forward(self, x):
        th = get_array_module(x).tanh(x)
        self.save_for_backward(th)  # tanh(x): the gradient is g tanh(x)^2
        return x - th

    def backward(self, g):
        (th,) = self.saved_arrays
        return g * th * th

    def backward_graph(self, g):
        (th_a,) = self.saved_arrays  # tanh(x), as the output of a tanh node on this node's input
        th = graph_node(unary.TanhFunction, self, th_a, _saved=(th_a,),
                        _saved_epoch=self._saved_epoch)  # fmt: skip
        return g * th * th


class ShrinkFunction(Function):
    """softshrink (soft=True: x -+ lambd outside [-lambd, lambd]) or hardshrink (x there); 0
    inside."""

    op_name = "softshrink"
    lambd: float
    soft: bool

    def forward(self, x):
        # Without np.where (3.3 ms per million on a random mask): softshrink is x - clip(x,
        # -lambd, lambd), hardshrink x * mask (+ 0, so that a small negative x gives +0.0, as
        # torch); NaN stays NaN (torch's), its gradient is 0
        xp = get_array_module(x)
        lambd = x.dtype.type(self.lambd)
        if (loops := compiled.loops(x)) is not None:  # one compiled pass; x kept (a reference)
            self.save_for_backward(x)
            self.fused = True
            loop = loops.softshrink if self.soft else loops.hardshrink
            return compiled.map_forward(loop, x, lambd, x.dtype.type(0))
        mask = xp.abs(x) > lambd
        self.save_for_backward(mask)  # a bool mask
        if self.soft:
            return x - xp.clip(x, -lambd, lambd)
        y = xp.multiply(x, mask, dtype=x.dtype)
        y += x.dtype.type(0)
        return y

    def _mask(self) -> Any:
        """Where the gradient passes (the saved mask, or from x when the loop ran)."""
        (saved,) = self.saved_arrays
        if getattr(self, "fused", False):
            return get_array_module(saved).abs(saved) > saved.dtype.type(self.lambd)
        return saved

    def backward(self, g):
        (saved,) = self.saved_arrays
        if getattr(self, "fused", False) and (loops := compiled.loops(saved, g)) is not None:
            t = saved.dtype.type
            return compiled.map_backward(loops.shrink_backward, saved, g, t(self.lambd), t(0))
        return g * self._mask()

    def backward_graph(self, g):
        return g * const(self._mask().astype(g.dtype))


class LogSigmoidFunction(Function):
    op_name = "logsigmoid"

    def forward(self, x):
        if (loops := compiled.loops(x, float32_only=True)) is not None:  # one compiled pass
            self.save_for_backward(x)
            return compiled.map_forward(loops.logsigmoid, x)
        xp = get_array_module(x)
        if xp is not numpy:
            self.save_for_backward(x)
            return -_softplus(-x)
        # min(x, 0) - log1p(exp(-|x|)) in place; exp(-|x|) saved for backward's sigmoid
        t = x.dtype.type
        e = numpy.asarray(numpy.abs(x))
        numpy.negative(e, out=e)
        numpy.exp(e, out=e)
        y = numpy.asarray(numpy.clip(x, t(-math.inf), t(0)))
        y -= numpy.log1p(e)
        self.save_for_backward(x, e)
        return y

    def backward(self, g):
        x = self.saved_arrays[0]
        if len(self.saved_arrays) == 2:  # NumPy: e = exp(-|x|) saved
            # sigmoid(-x) = (1 where x < 0, else e) / (1 + e), PyTorch's two branches; the
            # numerator as max((x < 0) as 0/1, e) (NaN stays NaN)
            e = self.saved_arrays[1]
            d = numpy.asarray((x < 0).astype(x.dtype))
            numpy.maximum(d, e, out=d)
            d /= e + x.dtype.type(1)
            d *= g
            return d
        if (loops := compiled.loops(x, g, float32_only=True)) is not None:
            return compiled.map_backward(loops.logsigmoid_backward, x, g)
        return g * stable_sigmoid(-x)

    def backward_graph(self, g):
        return g * unary.sigmoid(-graph_input(self, 0, self.saved_arrays[0]))


class GLUFunction(Function):
    """a * sigmoid(b), a and b the two halves of x along dim."""

    op_name = "glu"
    dim: int

    def _split3(self, x: Any) -> tuple[int, int]:
        """(outer, inner): x as (outer, 2, inner), the halves at [:, 0] and [:, 1]."""
        outer = math.prod(x.shape[: self.dim])
        inner = math.prod(x.shape[self.dim + 1 :]) * (x.shape[self.dim] // 2)
        return outer, inner

    def forward(self, x):
        if (loops := compiled.loops(x, float32_only=True)) is not None and x.size:  # one pass
            self.save_for_backward(x)  # x only: backward recomputes sigmoid(b)
            outer, inner = self._split3(x)
            shape = list(x.shape)
            shape[self.dim] //= 2
            y = numpy.empty(shape, x.dtype)
            loops.glu(compiled.flat(x).reshape(outer, 2, inner), y.reshape(outer, inner))
            return y
        xp = get_array_module(x)
        a, b = xp.split(x, 2, axis=self.dim)
        if xp is numpy:  # sigmoid(b) kept too (half x's size): backward's costliest part
            s = numpy.asarray(_sigmoid(b))
            self.save_for_backward(x, s)
            return numpy.multiply(a, s)
        self.save_for_backward(x)
        return a * stable_sigmoid(b)

    def backward(self, g):
        x = self.saved_arrays[0]
        xp = get_array_module(x)
        loops = compiled.loops(x, g, float32_only=True) if len(self.saved_arrays) == 1 else None
        if loops is not None:
            outer, inner = self._split3(x)
            out = numpy.empty(x.shape, x.dtype)
            loops.glu_backward(compiled.flat(x).reshape(outer, 2, inner),
                               compiled.flat(g).reshape(outer, inner),
                               out.reshape(outer, 2, inner))  # fmt: skip
            return out
        a, b = xp.split(x, 2, axis=self.dim)
        if xp is numpy:
            # written into the two halves of one array (no concatenate): g s, then g s a (1 - s)
            out = numpy.empty(x.shape, x.dtype)
            da, db = numpy.split(out, 2, axis=self.dim)
            s = self.saved_arrays[1] if len(self.saved_arrays) == 2 else _sigmoid(b)
            numpy.multiply(g, s, out=da)
            numpy.multiply(da, a, out=db)
            db *= numpy.subtract(x.dtype.type(1), s)  # (s is kept: double backward)
            return out
        s = stable_sigmoid(b)
        da = g * s
        db = da * a * (1 - s)
        return xp.concatenate([da, db], axis=self.dim)

    def backward_graph(self, g):
        from gradflow.ops.shape import cat

        x = graph_input(self, 0, self.saved_arrays[0])
        half = x.shape[self.dim] // 2
        lead = (slice(None),) * self.dim
        a, b = x[lead + (slice(0, half),)], x[lead + (slice(half, None),)]
        s = unary.sigmoid(b)
        da = g * s
        return cat([da, da * a * (1 - s)], self.dim)


class PReLUFunction(Function):
    """x where x > 0, else w x; w holds one slope, or one per channel (dim 1)."""

    op_name = "prelu"

    def forward(self, x, w):
        wb = self._broadcast(w, x.ndim)
        self.save_for_backward(x, w)  # the inputs (references)
        if (loops := compiled.loops(x, w)) is not None:  # one compiled pass
            y = numpy.empty(x.shape, x.dtype)
            shape = self._shape3(x, w)
            loops.prelu(compiled.flat(x).reshape(shape), compiled.flat(w), y.reshape(shape))
            return y
        if get_array_module(x) is numpy and numpy.isfinite(w).all():
            # max(x, 0) + w min(x, 0): one of the terms is 0 (w finite), so the sum is
            # exactly the select's value, without np.where's slow pass on a random mask
            t = x.dtype.type
            y = numpy.asarray(numpy.clip(x, t(-math.inf), t(0)))
            y *= wb
            y += numpy.clip(x, t(0), t(math.inf))
            return y
        return get_array_module(x).where(x > 0, x, wb * x)

    @staticmethod
    def _shape3(x, w) -> tuple[int, int, int]:
        """x's shape as (outer, channels, inner) for the compiled loops (channels 1 with one
        weight)."""
        if w.size == 1 or x.ndim < 2:
            return (1, 1, x.size)
        return (x.shape[0], x.shape[1], math.prod(x.shape[2:]))

    @staticmethod
    def _broadcast(w, ndim):
        if w.size == 1:
            return w.reshape(())
        return w.reshape((1, -1) + (1,) * (ndim - 2))

    def backward(self, g):
        x, w = self.saved_arrays
        xp = get_array_module(x)
        if (loops := compiled.loops(x, w, g)) is not None:  # one compiled pass (and plane sums)
            need_x, need_w = bool(self.needs_input_grad[0]), bool(self.needs_input_grad[1])
            dx = numpy.empty(x.shape, x.dtype) if need_x else numpy.empty((1, 1, 1), x.dtype)
            dw64 = numpy.zeros(w.size if w.size else 1, numpy.float64)
            shape = self._shape3(x, w)
            loops.prelu_backward(
                compiled.flat(x).reshape(shape), compiled.flat(g).reshape(shape),
                compiled.flat(w), dx.reshape(shape) if need_x else dx, dw64, need_x, need_w,
            )  # fmt: skip
            dw = dw64[: w.size].astype(w.dtype).reshape(w.shape) if need_w else None
            return (dx if need_x else None), dw
        if xp is numpy and x.size and numpy.isfinite(w).all():
            dx, dw = self._backward_numpy(x, w, g)
            if dw is None or numpy.isfinite(dw).all():
                return dx, dw
        pos = x > 0
        dx = dw = None
        if self.needs_input_grad[0]:
            dx = xp.where(pos, g, g * self._broadcast(w, x.ndim))
        if self.needs_input_grad[1]:
            gx = xp.where(pos, g.dtype.type(0), g * x)
            if w.size == 1:
                dw = gx.sum().reshape(w.shape)
            else:
                axes = tuple(i for i in range(x.ndim) if i != 1)
                dw = gx.sum(axis=axes).reshape(w.shape)
        return dx, dw

    def _backward_numpy(self, x, w, g):
        """dx = g k, k = (x > 0) + w (x <= 0) as 0/1 masks (1 or w exactly: one term is 0);
        dw = the sum of g min(x, 0) per channel, as (N, C, rest) summed along its contiguous
        last axis first. Exact for finite g and x; the caller takes the select route where dw
        comes out non-finite (0 times inf or NaN where x > 0, which PyTorch's select skips)."""
        t = x.dtype.type
        wb = self._broadcast(w, x.ndim)
        dx = dw = None
        if self.needs_input_grad[0]:
            pos = numpy.asarray((x > 0).astype(x.dtype))
            neg = numpy.subtract(t(1), pos)
            neg *= wb
            pos += neg
            del neg
            pos *= g
            dx = pos
        if self.needs_input_grad[1]:
            gx = numpy.asarray(numpy.clip(x, t(-math.inf), t(0)))
            with _quiet():  # (0 * inf: the caller's check sees the NaN)
                gx *= g
            if w.size == 1:
                dw = gx.sum().reshape(w.shape)
            else:
                dw = gx.reshape(x.shape[0], x.shape[1], -1).sum(axis=2).sum(axis=0)
                dw = dw.reshape(w.shape)
        return dx, dw

    def backward_graph(self, g):
        from gradflow.ops.arithmetic import where

        x_a, w_a = self.saved_arrays
        pos = const(x_a > 0)
        dx = dw = None
        if self.needs_input_grad[0]:
            wb = graph_input(self, 1, w_a).reshape(self._broadcast(w_a, x_a.ndim).shape)
            dx = where(pos, g, g * wb)
        if self.needs_input_grad[1]:
            gx = where(pos, 0.0, g * graph_input(self, 0, x_a))
            if w_a.size == 1:
                dw = gx.sum().reshape(w_a.shape)
            else:
                dw = gx.sum(dim=tuple(i for i in range(x_a.ndim) if i != 1)).reshape(w_a.shape)
        return dx, dw


# ---- in place ---------------------------------------------------------------------------------


def _inplace(x: Tensor, what: str, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """x = fn(x) in place, through Tensor's in-place machinery (see the module docstring)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{what}: expected a Tensor, got {type(x).__name__}")

    def op(t: Tensor, _: Any) -> Tensor | None:
        if t is x:  # unrecorded: compute, then write into the storage
            t.array[...] = fn(t).array
            return None
        return fn(t)  # recorded: t is a copy of the old values; x becomes the output

    return x._arith_(what, op, None, None)


def _maybe_inplace(x: Tensor, inplace: bool, what: str, fn: Callable[[Tensor], Tensor]) -> Tensor:
    return _inplace(x, what, fn) if inplace else fn(x)


# ---- public functions: the existing activations with inplace= ----------------------------------


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); ``inplace=True`` writes into input and returns it (PyTorch's relu_).

    >>> import gradflow
    >>> relu(gradflow.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    return _maybe_inplace(input, inplace, "relu_", unary.relu)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x; ``inplace=True`` writes into input."""
    return _maybe_inplace(
        input, inplace, "leaky_relu_", lambda x: unary.leaky_relu(x, negative_slope)
    )


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1); ``inplace=True`` writes into input."""
    return _maybe_inplace(input, inplace, "elu_", lambda x: unary.elu(x, alpha))


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x); ``inplace=True`` writes into input."""
    return _maybe_inplace(input, inplace, "silu_", unary.silu)


# ---- public functions: new activations --------------------------------------------------------


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """x clamped to [min_val, max_val]; gradient 1 strictly inside, 0 elsewhere.

    >>> import gradflow
    >>> hardtanh(gradflow.tensor([-2.0, 0.5, 3.0]))
    tensor([-1.0000,  0.5000,  1.0000])
    """
    if min_val > max_val:
        raise ValueError("hardtanh: min_val cannot be greater than max_val")

    def fn(x: Tensor) -> Tensor:
        x = float_input(x, "hardtanh")
        return HardtanhFunction.apply(x, min_val=float(min_val), max_val=float(max_val))

    return _maybe_inplace(input, inplace, "hardtanh_", fn)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6): hardtanh(x, 0, 6), as PyTorch (its grad_fn is HardtanhBackward)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6 (MobileNetV3)."""
    fn = lambda x: HardswishFunction.apply(float_input(x, "hardswish"))  # noqa: E731
    return _maybe_inplace(input, inplace, "hardswish_", fn)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6; gradient 1/6 strictly inside (-3, 3), 0 elsewhere."""
    fn = lambda x: HardsigmoidFunction.apply(float_input(x, "hardsigmoid"))  # noqa: E731
    return _maybe_inplace(input, inplace, "hardsigmoid_", fn)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    fn = lambda x: MishFunction.apply(float_input(x, "mish"))  # noqa: E731
    return _maybe_inplace(input, inplace, "mish_", fn)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * (x if x > 0 else alpha * (exp(x) - 1)) with PyTorch's alpha and scale."""
    fn = lambda x: SELUFunction.apply(float_input(x, "selu"))  # noqa: E731
    return _maybe_inplace(input, inplace, "selu_", fn)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha * (exp(x / alpha) - 1)."""
    if alpha == 0:
        raise RuntimeError("celu: alpha cannot be 0 (it divides the input)")

    def fn(x: Tensor) -> Tensor:
        x = float_input(x, "celu")
        a = float(alpha)
        return SELUFunction.apply(x, alpha=a, scale=1.0, input_scale=1.0 / a, op_name="celu")

    return _maybe_inplace(input, inplace, "celu_", fn)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    fn = lambda x: ThresholdFunction.apply(  # noqa: E731
        float_input(x, "threshold"), threshold=float(threshold), value=float(value)
    )
    return _maybe_inplace(input, inplace, "threshold_", fn)


_threshold = threshold  # for threshold_, whose argument shadows the name


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return SoftsignFunction.apply(float_input(input, "softsign"))


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return TanhshrinkFunction.apply(float_input(input, "tanhshrink"))


def _check_lambd(lambd: float, op: str) -> float:
    if not lambd >= 0:
        raise RuntimeError(f"{op}: lambd must be >= 0, but found {lambd}")
    return float(lambd)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    x = float_input(input, "softshrink")
    return ShrinkFunction.apply(x, lambd=_check_lambd(lambd, "softshrink"), soft=True)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    x = float_input(input, "hardshrink")
    lambd = _check_lambd(lambd, "hardshrink")
    return ShrinkFunction.apply(x, lambd=lambd, soft=False, op_name="hardshrink")


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), finite for any x."""
    return LogSigmoidFunction.apply(float_input(input, "logsigmoid"))


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: a * sigmoid(b), where a and b are the halves of input along dim."""
    x = float_input(input, "glu")
    if x.ndim == 0:
        raise RuntimeError("glu: does not support scalars because halving size must be even")
    d = normalize_dim(dim, x.ndim, "glu")
    if x.shape[d] % 2:
        raise RuntimeError(
            f"glu: halving dimension must be even, but dimension {d} is size {x.shape[d]}"
        )
    return GLUFunction.apply(x, dim=d)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x; weight holds one slope, or one per channel (dim 1)."""
    x = float_input(input, "prelu")
    w = float_input(weight, "prelu", "weight")
    if w.ndim > 1:
        raise RuntimeError(
            f"prelu: expected 'weight' to be a scalar or 1-D tensor, got ndim = {w.ndim}"
        )
    channels = x.shape[1] if x.ndim >= 2 else 1  # PyTorch's: a 1-D input is one channel
    if w.numel() != 1 and w.numel() != channels:
        raise RuntimeError(
            "prelu: mismatch of parameter numbers and input channel size: found parameter "
            f"numbers = {w.numel()} and channel size = {channels}"
        )
    if w.dtype != x.dtype:
        w = w.to(x.dtype)
    return PReLUFunction.apply(x, w)


def softmin(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """softmax(-x) along dim (dim=None picks PyTorch's implicit dim, with its warning)."""
    x, dim = _softmax.softmax_input(input, dim, dtype, "softmin", _stacklevel)
    return _softmax.softmax(-x, dim)


def rrelu(
    input: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    """Randomized leaky ReLU: x where x >= 0, else a x with a drawn uniformly from [lower,
    upper] per element in training (gradflow's seeded generator), (lower + upper) / 2 in
    evaluation."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)

    def fn(x: Tensor) -> Tensor:
        from gradflow.creation import rand_like
        from gradflow.ops import arithmetic

        x = float_input(x, "rrelu")
        slope = rand_like(x) * (upper - lower) + lower
        return arithmetic.where(x >= 0, x, x * slope)

    return _maybe_inplace(input, inplace, "rrelu_", fn)


# PyTorch's in-place functional spellings (torch.nn.functional.relu_ ...)


def relu_(input: Tensor) -> Tensor:
    """relu(input, inplace=True)."""
    return relu(input, True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """elu(input, alpha, inplace=True)."""
    return elu(input, alpha, True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """leaky_relu(input, negative_slope, inplace=True)."""
    return leaky_relu(input, negative_slope, True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """hardtanh(input, min_val, max_val, inplace=True)."""
    return hardtanh(input, min_val, max_val, True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """threshold(input, threshold, value, inplace=True)."""
    return _threshold(input, threshold, value, True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """celu(input, alpha, inplace=True)."""
    return celu(input, alpha, True)


def selu_(input: Tensor) -> Tensor:
    """selu(input, inplace=True)."""
    return selu(input, True)


def rrelu_(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False
) -> Tensor:
    """rrelu(input, lower, upper, training, inplace=True)."""
    return rrelu(input, lower, upper, training, True)
