"""Robust-regression and likelihood losses: smooth_l1_loss, huber_loss, kl_div,
poisson_nll_loss, gaussian_nll_loss, with PyTorch's signatures (size_average/reduce included).
mse_loss and l1_loss, the core pair, are in losses.py.

Each is a per-element Function (smooth_l1/huber keep the difference input - target, kl_div its
two inputs) or a short composition of differentiable ops, reduced by losses._reduced.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy

from gradflow.autograd.differentiable import const, graph_input, graph_node
from gradflow.autograd.differentiable import unbroadcast as _unb
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import unbroadcast
from gradflow.ops.loss_arguments import (
    check_reduction,
    float_pair,
    legacy_reduction,
    pair_args,
    warn_if_shapes_differ,
)
from gradflow.ops.losses import _grad_scale, _pair_grads, _reduce, _reduced, _target_like
from gradflow.tensor import Tensor


class SmoothL1Function(Function):
    """Per element, d = x - y: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta
    (huber: delta times that, with beta = delta), then reduced ('none', 'sum' or 'mean').

    With a = |d| and c = min(a, beta), both branches are one arithmetic expression, no select:
    c (a - c / 2) is 0.5 a a inside (a - a / 2 = a / 2 exactly) and beta (a - beta / 2)
    outside, which is huber's value exactly as PyTorch rounds it; smooth L1 divides by beta
    (exact for a power-of-two beta, the default 1; within an ulp of PyTorch's otherwise)."""

    op_name = "smooth_l1_loss"
    beta: float
    huber: bool = False
    reduction: str = "none"

    def forward(self, x, y):
        xp = get_array_module(x)
        d = xp.asarray(x - y)  # 0-d operands give a NumPy scalar; out= needs an array
        self.save_for_backward(d)  # the difference: both gradients are +-slope(d)
        self.shapes = (x.shape, y.shape)
        dtype = d.dtype.type
        a = xp.abs(d)
        if self.beta != 0:
            half_c = xp.minimum(a, dtype(self.beta))
            half_c *= dtype(0.5)  # c / 2, exact
            a -= half_c  # a - c / 2
            a *= half_c  # (a - c / 2) c / 2: half the loss, exactly (a scaling by 2)
            scale = 2.0 if self.huber else 2.0 / self.beta
            if _power_of_two(self.beta) or self.huber:
                if self.reduction == "none":
                    a *= dtype(scale)
                else:
                    return _reduce_scaled(a, self.reduction, dtype(scale))
            else:
                a *= dtype(2)
                a /= dtype(self.beta)
        return _reduce(a, self.reduction, dtype(a.size))

    def _slope(self, d, xp):
        """d loss / d d per element, a new array: clip(d / beta, -1, 1) (huber: clip(d, -delta,
        delta); beta 0: sign(d), 0 at NaN), NaN where d is (beta > 0)."""
        beta = d.dtype.type(self.beta)
        if self.huber:
            return xp.clip(d, -beta, beta)
        if self.beta == 0:  # L1's: 0 at NaN, as PyTorch's
            return xp.nan_to_num(xp.asarray(xp.sign(d)), nan=0.0, copy=False)
        slope = xp.asarray(d / beta) if self.beta != 1 else d.copy()  # 0-d: an array
        return xp.clip(slope, -1, 1, out=slope)

    def backward(self, g):
        (d,) = self.saved_arrays
        xp = get_array_module(d)
        slope = xp.asarray(self._slope(d, xp))
        slope *= _grad_scale(g, self.reduction, d.dtype.type(d.size))
        return _pair_grads(self, slope)

    def backward_graph(self, g):
        from gradflow.ops.arithmetic import Sub, clip, where

        (d,) = self.saved_arrays
        xp = get_array_module(d)
        sign = const(xp.nan_to_num(xp.asarray(xp.sign(d)), nan=0.0, copy=False))
        if self.huber:
            slope = clip(graph_node(Sub, self, d, shapes=self.shapes), -self.beta, self.beta)
        elif self.beta == 0:
            slope = sign
        else:
            inside = const(xp.abs(d) < self.beta)
            slope = where(inside, graph_node(Sub, self, d, shapes=self.shapes) / self.beta, sign)
        d = slope * (g / d.size if self.reduction == "mean" else g)
        need_x, need_y = self.needs_input_grad
        return (
            _unb(d, self.shapes[0]) if need_x else None,
            _unb(-d, self.shapes[1]) if need_y else None,
        )


def _power_of_two(value: float) -> bool:
    """Whether multiplying by 2 / value is exact (value a positive power of two)."""
    return value > 0 and math.frexp(value)[0] == 0.5


def _reduce_scaled(half: Any, reduction: str, scale: Any) -> Any:
    """_reduce(half * scale) for a power-of-two scale, the scaling done on the total (exact)."""
    total = half.sum() * scale
    if reduction == "sum":
        return total
    return total / total.dtype.type(half.size)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """Smooth L1: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target).

    >>> import gradflow
    >>> smooth_l1_loss(gradflow.tensor([0.5, 3.0]), gradflow.tensor([0.0, 0.0]))
    tensor(1.3125)
    """
    op = "smooth_l1_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    if beta < 0:
        raise RuntimeError(f"{op}: does not support negative values for beta (got {beta})")
    input, target = pair_args(input, target, reduction, op)
    warn_if_shapes_differ(input, target, op)
    return SmoothL1Function.apply(input, target, beta=float(beta), reduction=reduction)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """Huber: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta); optional per-element
    weight.

    >>> import gradflow
    >>> huber_loss(gradflow.tensor([0.5, 3.0]), gradflow.tensor([0.0, 0.0]), delta=2.0)
    tensor(2.0625)
    """
    op = "huber_loss"
    if not delta > 0:
        raise RuntimeError(f"{op}: does not support non-positive values for delta (got {delta})")
    input, target = pair_args(input, target, reduction, op)
    warn_if_shapes_differ(input, target, op)
    if weight is None:
        return SmoothL1Function.apply(
            input, target, beta=float(delta), huber=True, op_name=op, reduction=reduction
        )
    loss = SmoothL1Function.apply(input, target, beta=float(delta), huber=True, op_name=op)
    return _reduced(loss * _target_like(weight, input, op, "weight"), reduction)


class KLDivFunction(Function):
    """Per element: target (log target - input), 0 where target == 0 (log_target=False), or
    exp(target) (target - input) (log_target=True)."""

    op_name = "kl_div"
    log_target: bool

    def forward(self, x, t):
        xp = get_array_module(x)
        self.save_for_backward(x, t)  # the inputs (references)
        self.shapes = (x.shape, t.shape)
        if self.log_target:
            return xp.exp(t) * (t - x)
        with numpy.errstate(divide="ignore", invalid="ignore"):
            xlogx = xp.where(t > 0, t * xp.log(xp.where(t > 0, t, 1)), t.dtype.type(0))
        return xlogx - t * x

    def backward(self, g):
        x, t = self.saved_arrays
        xp = get_array_module(x)
        need_x, need_t = self.needs_input_grad
        dx = dt = None
        if self.log_target:
            et = xp.exp(t)
            if need_x:
                dx = unbroadcast(-et * g, x.shape)
            if need_t:
                dt = unbroadcast(et * (t - x + 1) * g, t.shape)
            return dx, dt
        if need_x:
            dx = unbroadcast(-t * g, x.shape)
        if need_t:
            with numpy.errstate(divide="ignore"):
                dt = unbroadcast((xp.log(t) + 1 - x) * g, t.shape)
        return dx, dt

    def backward_graph(self, g):
        x_a, t_a = self.saved_arrays
        x, t = graph_input(self, 0, x_a), graph_input(self, 1, t_a)
        need_x, need_t = self.needs_input_grad
        dx = dt = None
        if self.log_target:
            et = t.exp()
            if need_x:
                dx = _unb(-et * g, x_a.shape)
            if need_t:
                dt = _unb(et * (t - x + 1) * g, t_a.shape)
            return dx, dt
        if need_x:
            dx = _unb(-t * g, x_a.shape)
        if need_t:
            with numpy.errstate(divide="ignore"):
                dt = _unb((t.log() + 1 - x) * g, t_a.shape)
        return dx, dt


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence with input as log-probabilities: target (log target -
    input) per element (target given as log-probabilities when log_target). 'batchmean' divides
    the sum by the batch size (input.size(0)), which is the KL divergence; 'mean' divides by the
    number of elements, with PyTorch's warning.

    >>> import gradflow
    >>> kl_div(gradflow.tensor([[-1.0, -0.5]]), gradflow.tensor([[0.5, 0.5]]), reduction="sum")
    tensor(0.0569)
    """
    op = "kl_div"
    if reduction == "batchmean":
        if size_average is not None or reduce is not None:
            reduction = legacy_reduction(size_average, reduce, "mean", op)
    else:
        reduction = legacy_reduction(size_average, reduce, reduction, op)
    if reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            UserWarning,
            stacklevel=2,
        )
    input, target = float_pair(input, target, op, ("input", "target"))
    loss = KLDivFunction.apply(input, target, log_target=bool(log_target))
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduced(loss, reduction)


def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Poisson negative log-likelihood: exp(input) - target input (log_input), else input -
    target log(input + eps); full adds Stirling's term target log target - target +
    0.5 log(2 pi target) where target > 1.

    >>> import gradflow
    >>> poisson_nll_loss(gradflow.tensor([0.0, 1.0]), gradflow.tensor([1.0, 2.0]))
    tensor(0.8591)
    """
    from gradflow.ops import arithmetic, unary

    op = "poisson_nll_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    input, target = float_pair(input, target, op, ("input", "target"))
    if log_input:
        loss = unary.exp(input) - target * input
    else:
        loss = input - target * unary.log(input + eps)
    if full:
        t1 = arithmetic.clamp(target, min=1.0)  # log of t <= 1 is masked out below; keep it finite
        stirling = t1 * unary.log(t1) - t1 + 0.5 * unary.log(2 * math.pi * t1)
        loss = loss + arithmetic.where(target > 1, stirling, 0.0)
    return _reduced(loss, reduction)


def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var: Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """Gaussian negative log-likelihood: 0.5 (log var + (input - target)^2 / var) (+ 0.5
    log(2 pi) when full), var clamped below at eps for the value only (the gradient passes the
    clamp, as in PyTorch). var has input's shape, or lacks its last dim, or has 1 there; a
    float is one variance for all.

    >>> import gradflow
    >>> gaussian_nll_loss(gradflow.tensor([1.0]), gradflow.tensor([0.0]), gradflow.tensor([1.0]))
    tensor(0.5000)
    """
    from gradflow.autograd import no_grad
    from gradflow.ops import arithmetic, unary

    op = "gaussian_nll_loss"
    check_reduction(reduction, op)
    input, target = float_pair(input, target, op, ("input", "target"))
    if not isinstance(var, Tensor):
        var = Tensor._wrap(get_array_module(input.array).full(input.shape, var, input.dtype))
    var = _target_like(var, input, op, "var")
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = var.unsqueeze(-1)
        elif not (
            input.shape[:-1] == var.shape[:-1] and var.ndim == input.ndim and var.shape[-1] == 1
        ):
            raise ValueError(
                f"{op}: var is of incorrect size: {tuple(var.shape)} for input of shape "
                f"{tuple(input.shape)}; expected input's shape, input's shape without its last "
                "dim, or with 1 there"
            )
    with no_grad():
        if bool((var < 0).any()):
            raise ValueError(f"{op}: var has negative entry/entries")
        lift = arithmetic.clamp(var, min=eps) - var  # the clamp as a constant offset
    var = var + lift
    diff = input - target
    loss = 0.5 * (unary.log(var) + diff * diff / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduced(loss, reduction)
