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
from gradflow.backend import get_array_module
from gradflow.ops import softmax as _softmax
from gradflow.ops import unary
from gradflow.ops._util import float_input, normalize_dim
from gradflow.ops.unary import mask_times, stable_sigmoid
from gradflow.tensor import Tensor

# SELU's constants (Klambauer et al. 2017), as PyTorch spells them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _softplus(x: Any) -> Any:
    """log(1 + exp(x)), finite for any x."""
    return get_array_module(x).logaddexp(x.dtype.type(0), x)


# ---- ops --------------------------------------------------------------------------------------


class HardtanhFunction(Function):
    op_name = "hardtanh"
    min_val: float
    max_val: float

    def forward(self, x):
        t = x.dtype.type
        self.save_for_backward((x > t(self.min_val)) & (x < t(self.max_val)))  # a bool mask
        return get_array_module(x).clip(x, t(self.min_val), t(self.max_val))

    def backward(self, g):
        (mask,) = self.saved_arrays
        return mask_times(g, mask)

    def backward_graph(self, g):
        return g * const(self.saved_arrays[0].astype(g.dtype))


class HardswishFunction(Function):
    op_name = "hardswish"

    def forward(self, x):
        self.save_for_backward(x)
        t = x.dtype.type
        return x * get_array_module(x).clip(x + t(3), t(0), t(6)) / t(6)

    def backward(self, g):
        (x,) = self.saved_arrays
        xp = get_array_module(x)
        t = x.dtype.type
        # PyTorch's: 0 below -3, x / 3 + 1/2 on [-3, 3], 1 above
        slope = xp.where(x < t(-3), t(0), xp.where(x <= t(3), x / t(3) + t(0.5), t(1)))
        return g * slope

    def backward_graph(self, g):
        (x_a,) = self.saved_arrays
        x = graph_input(self, 0, x_a)
        inside = const(((x_a >= -3) & (x_a <= 3)).astype(g.dtype))
        above = const((x_a > 3).astype(g.dtype))
        return g * (inside * (x / 3 + 0.5) + above)


class HardsigmoidFunction(Function):
    op_name = "hardsigmoid"

    def forward(self, x):
        t = x.dtype.type
        self.save_for_backward((x > t(-3)) & (x < t(3)))  # a bool mask
        return get_array_module(x).clip(x + t(3), t(0), t(6)) / t(6)

    def backward(self, g):
        (mask,) = self.saved_arrays
        return g * mask / g.dtype.type(6)

    def backward_graph(self, g):
        return g * const(self.saved_arrays[0].astype(g.dtype) / 6)


class MishFunction(Function):
    op_name = "mish"

    def forward(self, x):
        self.save_for_backward(x)
        return x * get_array_module(x).tanh(_softplus(x))

    def backward(self, g):
        (x,) = self.saved_arrays
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
        mask = x > x.dtype.type(self.threshold)
        self.save_for_backward(mask)  # a bool mask
        return get_array_module(x).where(mask, x, x.dtype.type(self.value))

    def backward(self, g):
        (mask,) = self.saved_arrays
        return g * mask

    def backward_graph(self, g):
        return g * const(self.saved_arrays[0].astype(g.dtype))


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
        xp = get_array_module(x)
        lambd = x.dtype.type(self.lambd)
        mask = xp.abs(x) > lambd
        self.save_for_backward(mask)  # a bool mask
        kept = x - xp.sign(x) * lambd if self.soft else x
        return xp.where(mask, kept, x.dtype.type(0))

    def backward(self, g):
        (mask,) = self.saved_arrays
        return g * mask

    def backward_graph(self, g):
        return g * const(self.saved_arrays[0].astype(g.dtype))


class LogSigmoidFunction(Function):
    op_name = "logsigmoid"

    def forward(self, x):
        self.save_for_backward(x)
        return -_softplus(-x)

    def backward(self, g):
        (x,) = self.saved_arrays
        return g * stable_sigmoid(-x)

    def backward_graph(self, g):
        return g * unary.sigmoid(-graph_input(self, 0, self.saved_arrays[0]))


class GLUFunction(Function):
    """a * sigmoid(b), a and b the two halves of x along dim."""

    op_name = "glu"
    dim: int

    def forward(self, x):
        self.save_for_backward(x)
        a, b = get_array_module(x).split(x, 2, axis=self.dim)
        return a * stable_sigmoid(b)

    def backward(self, g):
        (x,) = self.saved_arrays
        xp = get_array_module(x)
        a, b = xp.split(x, 2, axis=self.dim)
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
        return get_array_module(x).where(x > 0, x, wb * x)

    @staticmethod
    def _broadcast(w, ndim):
        if w.size == 1:
            return w.reshape(())
        return w.reshape((1, -1) + (1,) * (ndim - 2))

    def backward(self, g):
        x, w = self.saved_arrays
        xp = get_array_module(x)
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
