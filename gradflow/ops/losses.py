"""Losses: cross_entropy, nll_loss, mse_loss, l1_loss, binary_cross_entropy(_with_logits), with
PyTorch's semantics and defaults; and the helpers the other loss modules share (_reduced,
_target_like, _pair_grads). The other losses: regression_losses.py (smooth_l1, huber, kl_div,
poisson and gaussian NLL), margin_losses.py (margin and embedding losses), ctc_loss.py.

Memory: cross_entropy is one fused node (log-softmax + NLL) that keeps the logits it was given
(a reference, no copy) and one logsumexp per row (its stable log-sum-exp is ops/softmax.py's);
l1_loss keeps an int8 sign. On cuda, cross_entropy with (N, C) logits and class-index targets
runs our fused kernels (kernels/fused.cu, softmax_xent_*). On cuda no loss here synchronizes
with the host: class targets are not read back to be checked (out-of-range ones give NaN rows,
as the kernels do), and no boolean-mask indexing is used (CuPy counts a mask on the host).
With numba (gradflow.backend.compiled), cross_entropy on (N, C) float32 NumPy logits with
class targets, no weight and no label smoothing runs the compiled rows
(compiled_loops.cross_entropy_rows): one row in cache for its max, log-sum-exp and target pick
forward, one writing pass backward.

Class dimension: inputs are (N, C) or (N, C, d1, ...) with targets (N,) or (N, d1, ...), or (C,)
with a 0-d target, as in PyTorch. The array code below works on any of these with the class
axis at 1 (the public functions lift (C,) to (1, C)).
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import const, graph_input, graph_node
from gradflow.autograd.differentiable import unbroadcast as _unb
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module, is_cuda_array
from gradflow.backend.routing import uses_kernels
from gradflow.ops._util import unbroadcast
from gradflow.ops.loss_arguments import (
    binary_args,
    check_unit_interval,
    class_target_args,
    legacy_reduction,
    optional_float,
    pair_args,
    warn_if_shapes_differ,
)
from gradflow.ops.softmax import log_probs, max_and_log_sum
from gradflow.ops.unary import stable_sigmoid
from gradflow.tensor import Tensor

# ---- shared array helpers -------------------------------------------------------------------


def _class_index(target: Any) -> tuple:
    """An index tuple picking x[n, target[n, i, ...], i, ...] (class axis 1) from x, by an open
    grid: the same fancy index gathers the target logits and scatters into the gradient."""
    xp = get_array_module(target)
    k = target.ndim
    grids = [xp.arange(n).reshape((1,) * i + (-1,) + (1,) * (k - 1 - i)) for i, n in
             enumerate(target.shape)]  # fmt: skip
    return (grids[0], target, *grids[1:])


def _class_broadcast(w: Any, ndim: int) -> Any:
    """A (C,) per-class array shaped to broadcast against (N, C, d1, ...)."""
    return w.reshape((1, -1) + (1,) * (ndim - 2))


def _kept_targets(target: Any, weight: Any, ignore_index: int, n_classes: int, dtype: Any):
    """(safe target, kept mask, per-element weight w[t] with 0 at ignored, out-of-range mask or
    None).

    Out-of-range targets are rejected on cpu before the op runs; on cuda checking would cost a
    host synchronization, so they are marked here (bad) and give NaN (like the fused kernel).
    On cuda safe still holds them: CuPy wraps an out-of-range integer index around, so picking
    with it reads some class of the row, and those rows become NaN (_mark_bad)."""
    xp = get_array_module(target)
    keep = target != ignore_index
    safe = xp.where(keep, target, 0)
    bad = None
    if is_cuda_array(target):
        # safe < 0 or safe >= C in one comparison: as unsigned, a negative index is huge
        bad = safe.view(numpy.dtype(f"u{safe.itemsize}")) >= n_classes
    if weight is None:
        w_t = keep.astype(dtype)
    else:
        w_t = xp.where(keep, weight[safe], weight.dtype.type(0))
    return safe, keep, w_t, bad


def _mark_bad(a: Any, bad: Any) -> Any:
    """a with NaN where bad holds (out-of-range targets on cuda); a itself when bad is None.

    A where, not a[bad] = nan: CuPy's boolean-mask assignment counts the mask on the host (a
    synchronization)."""
    if bad is None:
        return a
    return get_array_module(a).where(bad, a.dtype.type(numpy.nan), a)


def _kept_weight_sum(target: Any, weight: Any, ignore_index: int, dtype: Any) -> Any:
    """Sum of w[t] over the targets t != ignore_index (their count when weight is None): the
    'mean' denominator, a 0-d array of dtype (two launches, four with a weight). On cuda an
    out-of-range target counts with the weight its index wraps around to (its loss is NaN)."""
    keep = target != ignore_index
    if weight is None:
        return keep.sum(dtype=dtype)
    xp = get_array_module(target)
    picked = weight[target] if is_cuda_array(target) else weight[xp.where(keep, target, 0)]
    return xp.where(keep, picked, weight.dtype.type(0)).sum()


def _grad_scale(g: Any, reduction: str, denom: Any = None) -> Any:
    """d reduced / d per-element loss, times the upstream gradient g."""
    if reduction == "mean":
        return g / denom
    return g


def _reduce(loss: Any, reduction: str, denom: Any = None) -> Any:
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    with numpy.errstate(invalid="ignore"):  # every target ignored: 0 / 0 = nan, as PyTorch
        return total / denom


def _reduced(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _target_like(target: Any, like: Tensor, op: str, name: str = "target") -> Tensor:
    """target as a Tensor of like's float dtype (PyTorch promotes integer +-1 targets)."""
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: argument '{name}' must be a Tensor, got {type(target).__name__}")
    return target if target.dtype == like.dtype else target.to(like.dtype)


# ---- cross_entropy ----------------------------------------------------------------------------


class CrossEntropy(Function):
    """log_softmax + NLL (class indices) or soft-target cross-entropy, as one node.

    Row loss with class-index target t, class weights w (ones when None), W = sum w, eps =
    label_smoothing and lse = logsumexp(x):
        (1 - eps) w[t] (lse - x[t]) + eps / C * sum_c w[c] (lse - x[c])
    and 0 where t == ignore_index; 'mean' divides the sum by sum of w[t] over kept targets.
    With probabilities q (smoothed to (1 - eps) q + eps / C): sum_c w[c] q[c] (lse - x[c]),
    'mean' divides by the number of rows (N * d1 * ...).
    """

    op_name = "cross_entropy"
    ignore_index: int
    label_smoothing: float
    probs: bool
    reduction: str

    def _use_kernel(self, x, target) -> bool:
        if self.probs or x.ndim != 2 or x.dtype not in (numpy.float32, numpy.float64):
            return False
        return uses_kernels(x)

    def forward(self, x, target, weight):
        self.kernel = self._use_kernel(x, target)
        if self.kernel:
            return self._forward_kernel(x, target, weight)
        self.fused = self._use_loops(x, target, weight)
        if self.fused:
            return self._forward_fused(x, target, weight)
        m, log_sum = max_and_log_sum(x, 1)
        # Memory: the logits (the input itself, no copy), two values per row (max, log-sum),
        # the target and weight (inputs). Backward rebuilds softmax = exp(x - m - log_sum).
        self.save_for_backward(x, m, log_sum, target, weight)
        if self.probs:
            logp = log_probs(x, m, log_sum)
            logp *= self._weighted_probs(target, weight, x.shape[1])  # never target in place
            loss = -logp.sum(axis=1)
            self.denom = loss.size
            return _reduce(loss, self.reduction, loss.dtype.type(loss.size))
        n_classes = x.shape[1]
        safe, keep, w_t, bad = _kept_targets(target, weight, self.ignore_index, n_classes, x.dtype)
        loss = m[:, 0] - x[_class_index(safe)]
        loss += log_sum[:, 0]
        loss *= w_t
        eps = self.label_smoothing
        if eps:
            logp = log_probs(x, m, log_sum)
            if weight is not None:
                logp *= _class_broadcast(weight, x.ndim)
            smooth = -logp.sum(axis=1)
            smooth *= keep
            loss *= 1 - eps
            loss += (eps / n_classes) * smooth
        self.denom = w_t.sum() if self.reduction == "mean" else None
        return _reduce(_mark_bad(loss, bad), self.reduction, self.denom)

    def _weighted_probs(self, q, weight, n_classes):
        eps = self.label_smoothing
        if eps:
            q = q * (1 - eps) + eps / n_classes
        return q if weight is None else q * _class_broadcast(weight, q.ndim)

    def backward(self, g):
        if self.kernel:
            return self._backward_kernel(g)
        if self.fused and (dx := self._backward_fused(g)) is not None:
            return dx, None, None
        x, m, log_sum, target, weight = self.saved_arrays
        with numpy.errstate(divide="ignore", invalid="ignore"):  # every target ignored: 1 / 0
            s = _grad_scale(g, self.reduction, self.denom)
        xp = get_array_module(x)
        if self.probs:
            return self._backward_probs(x, m, log_sum, target, weight, s, xp)
        n_classes = x.shape[1]
        eps = self.label_smoothing
        safe, keep, w_t, bad = _kept_targets(target, weight, self.ignore_index, n_classes, x.dtype)
        # (N, d1, ...): ignored rows get no gradient, a 0 (not s * 0, NaN when every target is
        # ignored and 'mean' divided by 0), as PyTorch and the compiled rows
        s = _mark_bad(xp.where(keep, s, x.dtype.type(0)), bad)
        total_w = n_classes if weight is None else weight.sum()
        # softmax times the row's scale as exp(x - m) * (scale / sum): three passes over the
        # logits, where (x - m) - log_sum then exp made four
        dx = x - m
        xp.exp(dx, out=dx)
        row = xp.exp(-log_sum)  # 1 / sum exp(x - m), keepdims
        row *= (s * ((1 - eps) * w_t + (eps / n_classes) * total_w))[:, None]
        dx *= row
        dx[_class_index(safe)] -= s * ((1 - eps) * w_t)
        if eps:
            w = 1 if weight is None else _class_broadcast(weight, x.ndim)
            dx -= (s * (eps / n_classes))[:, None] * w
        return dx, None, None

    def _backward_probs(self, x, m, log_sum, target, weight, s, xp):
        need_x, need_target = self.needs_input_grad[:2]
        s = xp.expand_dims(s, 1) if self.reduction == "none" else s
        wq = self._weighted_probs(target, weight, x.shape[1])
        dx = dtarget = None
        if need_x:
            dx = log_probs(x, m, log_sum)
            xp.exp(dx, out=dx)
            dx *= wq.sum(axis=1, keepdims=True)
            dx -= wq
            dx *= s
        if need_target:
            dtarget = log_probs(x, m, log_sum)
            xp.negative(dtarget, out=dtarget)
            if weight is not None:
                dtarget *= _class_broadcast(weight, x.ndim)
            dtarget *= s * (1 - self.label_smoothing)
        return dx, dtarget, None

    # CPU with numba: (N, C) float32 logits, class indices, no weight, no label smoothing run
    # the compiled rows (gradflow.backend.compiled); the rest keeps the array path above.
    def _use_loops(self, x, target, weight) -> bool:
        return (
            not self.probs and weight is None and x.ndim == 2
            and type(target) is numpy.ndarray and target.dtype.kind in "iu"
            and compiled.loops(x, float32_only=True) is not None
        )  # fmt: skip

    def _forward_fused(self, x, target, weight):
        x = numpy.ascontiguousarray(x)  # (a copy only for a non-contiguous x)
        target = numpy.ascontiguousarray(target)
        rows = x.shape[0]
        loss = numpy.empty(rows, x.dtype)
        m = numpy.empty((rows, 1), x.dtype)  # keepdims, as the array path's: its backward
        log_sum = numpy.empty((rows, 1), x.dtype)  # runs on them when the loops are off
        eps = x.dtype.type(self.label_smoothing)
        kept = compiled.loops(x).cross_entropy_rows(
            x, target, self.ignore_index, eps, loss, m.reshape(-1), log_sum.reshape(-1)
        )
        self.save_for_backward(x, m, log_sum, target, weight)
        self.denom = x.dtype.type(kept) if self.reduction == "mean" else None
        return _reduce(loss, self.reduction, self.denom)

    def _backward_fused(self, g):
        x, m, log_sum, target, _ = self.saved_arrays
        if (loops := compiled.loops(x)) is None:
            return None
        with numpy.errstate(divide="ignore", invalid="ignore"):  # every target ignored: 1 / 0
            s = _grad_scale(g, self.reduction, self.denom)  # (ignored rows get scale 0)
        scale = numpy.empty(x.shape[0], x.dtype)
        scale[...] = s
        dx = numpy.empty(x.shape, x.dtype)
        eps = x.dtype.type(self.label_smoothing)
        loops.cross_entropy_rows_backward(
            x, target, self.ignore_index, eps, m.reshape(-1), log_sum.reshape(-1), scale, dx
        )
        return dx

    # GPU: (N, C) class-index cross-entropy runs the fused softmax_xent kernels: one pass over
    # the logits forward (loss and lse per row), one backward. Spatial and probability targets
    # use the array path above with CuPy's functions.
    def _forward_kernel(self, x, target, weight):
        from gradflow.kernels import softmax_xent_fwd

        loss, lse = softmax_xent_fwd(
            x, target, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
            weight=weight,
        )  # fmt: skip
        self.save_for_backward(x, lse, target, weight)  # the logits (a reference), [2, N] stats
        self.denom = None
        if self.reduction == "mean":
            self.denom = _kept_weight_sum(target, weight, self.ignore_index, x.dtype)
        return _reduce(loss, self.reduction, self.denom)

    def _backward_kernel(self, g):
        from gradflow.kernels import softmax_xent_bwd

        x, lse, target, weight = self.saved_arrays
        scale = _grad_scale(g, self.reduction, self.denom)  # a device array: no host sync
        dx = softmax_xent_bwd(
            x, lse, target, scale, ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing, weight=weight,
        )  # fmt: skip
        return dx, None, None

    def backward_graph(self, g):
        from gradflow.ops.softmax import log_softmax, softmax

        saved = self.saved_arrays
        x, target, weight = saved[0], saved[-2], saved[-1]
        xp = get_array_module(x)
        tx = graph_input(self, 0, x)
        s = g / float(self.denom) if self.reduction == "mean" and self.probs else g
        if self.reduction == "none":
            s = s.unsqueeze(1)
        n_classes = x.shape[1]
        eps = self.label_smoothing
        if self.probs:
            need_x, need_target = self.needs_input_grad[:2]
            w_const = None if weight is None else const(weight)
            wq = self._weighted_probs(graph_input(self, 1, target), w_const, n_classes)
            dx = dtarget = None
            if need_x:
                dx = (softmax(tx, 1) * wq.sum(dim=1, keepdim=True) - wq) * s
            if need_target:
                dtarget = -log_softmax(tx, 1) * s * (1 - eps)
                if weight is not None:
                    dtarget = dtarget * const(_class_broadcast(weight, x.ndim))
            return dx, dtarget, None
        safe, keep, w_t, _ = _kept_targets(target, weight, self.ignore_index, n_classes, x.dtype)
        if self.reduction == "mean":  # 1 / denom on kept rows, 0 on ignored ones (as backward)
            with numpy.errstate(divide="ignore"):
                inv = xp.where(keep, 1 / xp.asarray(self.denom, x.dtype), x.dtype.type(0))
            s = g * const(xp.expand_dims(inv.astype(x.dtype), 1))
        total_w = n_classes if weight is None else weight.sum()
        row = keep * ((1 - eps) * w_t + (eps / n_classes) * total_w)  # softmax's factor per row
        picks = xp.zeros(x.shape, x.dtype)
        picks[_class_index(safe)] = (1 - eps) * w_t * keep
        if eps:
            w = 1 if weight is None else _class_broadcast(weight, x.ndim)
            picks += xp.expand_dims(keep * (eps / n_classes), 1) * w
        dx = softmax(tx, 1) * const(xp.expand_dims(row, 1).astype(x.dtype)) - const(picks)
        return dx * s, None, None


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits against class indices or class probabilities (PyTorch's).

    loss_n = (1 - eps) w[t_n] (logsumexp(x_n) - x_n[t_n]) + eps/C sum_c w[c] (logsumexp(x_n)
    - x_n[c]), 0 where t_n == ignore_index; 'mean' divides the sum by sum_n w[t_n] over kept
    targets (weights default to 1). input (N, C) or (N, C, d1, ...) or (C,); target int64
    (N,) / (N, d1, ...) / (), or probabilities of input's shape ('mean' then divides by N*d1*...).
    One fused node: log-softmax is never materialized for backward. `weight` gets no gradient.

    >>> import gradflow
    >>> cross_entropy(gradflow.tensor([[2.0, 0.0]]), gradflow.tensor([0]))
    tensor(0.1269)
    """
    reduction = legacy_reduction(size_average, reduce, reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"cross_entropy: argument 'label_smoothing' is {label_smoothing}; expected a float "
            "in [0, 1]"
        )
    x, target, probs, lifted = class_target_args(
        input, target, weight, ignore_index, reduction, "cross_entropy", allow_probs=True
    )
    out = CrossEntropy.apply(
        x, target, weight, ignore_index=int(ignore_index), reduction=reduction,
        label_smoothing=float(label_smoothing), probs=probs,
    )  # fmt: skip
    return out.reshape(()) if lifted and reduction == "none" else out


# ---- nll_loss ---------------------------------------------------------------------------------


class NLLLossFunction(Function):
    """-w[t] x[t] per element (x: log-probabilities, class axis 1), 0 where t == ignore_index."""

    op_name = "nll_loss"
    ignore_index: int
    reduction: str

    def forward(self, x, target, weight):
        safe, _, w_t, bad = _kept_targets(target, weight, self.ignore_index, x.shape[1], x.dtype)
        loss = _mark_bad(-w_t * x[_class_index(safe)], bad)
        self.save_for_backward(target, weight)  # inputs only (references); x is not needed
        self.input_meta = (x.shape, x.dtype)
        self.denom = w_t.sum() if self.reduction == "mean" else None
        return _reduce(loss, self.reduction, self.denom)

    def backward(self, g):
        target, weight = self.saved_arrays
        shape, dtype = self.input_meta
        xp = get_array_module(target)
        safe, keep, w_t, bad = _kept_targets(target, weight, self.ignore_index, shape[1], dtype)
        with numpy.errstate(divide="ignore", invalid="ignore"):  # every target ignored: 1 / 0
            s = _grad_scale(g, self.reduction, self.denom) * w_t
        s = _mark_bad(xp.where(keep, s, dtype.type(0)), bad)  # ignored rows: 0, as PyTorch
        dx = xp.zeros(shape, dtype)
        dx[_class_index(safe)] = -s
        return dx, None, None

    def backward_graph(self, g):
        target, weight = self.saved_arrays
        shape, dtype = self.input_meta
        xp = get_array_module(target)
        safe, _, w_t, _ = _kept_targets(target, weight, self.ignore_index, shape[1], dtype)
        picks = xp.zeros(shape, dtype)
        picks[_class_index(safe)] = -w_t
        s = g
        if self.reduction == "mean":  # every target ignored (denominator 0): a 0 gradient
            s = g / float(self.denom) if float(self.denom) else g * 0.0
        return const(picks) * (s.unsqueeze(1) if self.reduction == "none" else s), None, None


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities: loss_n = -w[t_n] input_n[t_n] (PyTorch's).

    0 where t_n == ignore_index; 'mean' divides the sum by sum_n w[t_n] over kept targets.
    input (N, C), (N, C, d1, ...) or (C,); target int64 (N,), (N, d1, ...) or ().

    >>> import gradflow
    >>> nll_loss(gradflow.tensor([[-0.1, -2.4]]), gradflow.tensor([1]))
    tensor(2.4000)
    """
    reduction = legacy_reduction(size_average, reduce, reduction, "nll_loss")
    x, target, _, lifted = class_target_args(
        input, target, weight, ignore_index, reduction, "nll_loss", allow_probs=False
    )
    out = NLLLossFunction.apply(
        x, target, weight, ignore_index=int(ignore_index), reduction=reduction
    )
    return out.reshape(()) if lifted and reduction == "none" else out


# ---- regression losses ------------------------------------------------------------------------


def _weighted(loss: Tensor, weight: Any, input: Tensor, reduction: str, op: str) -> Tensor:
    """Per-element weights (input's shape) applied to per-element losses: 'mean' divides the
    weighted sum by the weights' sum (PyTorch's weighted mse_loss/l1_loss)."""
    weight = _target_like(weight, input, op, "weight")
    if weight.shape != input.shape:
        raise ValueError(
            f"{op}: weight has shape {tuple(weight.shape)}; weights and input must have the "
            f"same size, {tuple(input.shape)}"
        )
    loss = loss * weight
    if reduction == "mean":
        return loss.sum() / weight.sum()
    return _reduced(loss, reduction)


def _pair_grads(fn: Function, d: Any) -> tuple[Any, Any]:
    """(d, -d) summed back to the shapes of (input, target), None where no gradient is needed."""
    need_x, need_y = fn.needs_input_grad
    return (
        unbroadcast(d, fn.shapes[0]) if need_x else None,
        unbroadcast(-d, fn.shapes[1]) if need_y else None,
    )


class MSELossFunction(Function):
    op_name = "mse_loss"
    reduction: str

    def forward(self, x, y):
        diff = x - y
        self.save_for_backward(diff)  # the difference only: both gradients are +-2 diff
        self.shapes = (x.shape, y.shape)
        loss = diff * diff
        return _reduce(loss, self.reduction, loss.dtype.type(loss.size))

    def backward(self, g):
        (diff,) = self.saved_arrays
        s = _grad_scale(g, self.reduction, diff.dtype.type(diff.size))
        d = diff * (2 * s)
        return _pair_grads(self, d)

    def backward_graph(self, g):
        from gradflow.ops.arithmetic import Sub

        (diff,) = self.saved_arrays
        d = graph_node(Sub, self, diff, shapes=self.shapes)  # x - y, in the graph
        d = d * (2 * _grad_scale(g, self.reduction, diff.size))
        need_x, need_y = self.needs_input_grad
        return (
            _unb(d, self.shapes[0]) if need_x else None,
            _unb(-d, self.shapes[1]) if need_y else None,
        )


class L1LossFunction(Function):
    op_name = "l1_loss"
    reduction: str

    def forward(self, x, y):
        xp = get_array_module(x)
        diff = xp.asarray(x - y)  # 0-d operands give a NumPy scalar; abs(out=) needs an array
        self.save_for_backward(xp.sign(diff).astype(xp.int8))  # an int8 sign, 0 at 0
        self.shapes = (x.shape, y.shape)
        xp.abs(diff, out=diff)
        return _reduce(diff, self.reduction, diff.dtype.type(diff.size))

    def backward(self, g):
        (sign,) = self.saved_arrays
        s = _grad_scale(g, self.reduction, g.dtype.type(sign.size))
        d = sign * s
        return _pair_grads(self, d)

    def backward_graph(self, g):
        (sign,) = self.saved_arrays
        d = g * const(sign.astype(g.dtype))
        d = d / sign.size if self.reduction == "mean" else d
        need_x, need_y = self.needs_input_grad
        return (
            _unb(d, self.shapes[0]) if need_x else None,
            _unb(-d, self.shapes[1]) if need_y else None,
        )


def _pointwise_loss(function: type, op: str, input: Any, target: Any, reduction: str,
                    size_average: Any, reduce: Any, weight: Any) -> Tensor:  # fmt: skip
    """mse_loss's and l1_loss's arguments checked, then the loss per element (times weight,
    when given) reduced."""
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    input, target = pair_args(input, target, reduction, op)
    warn_if_shapes_differ(input, target, op)
    if weight is not None:
        unreduced = function.apply(input, target, reduction="none")
        return _weighted(unreduced, weight, input, reduction, op)
    return function.apply(input, target, reduction=reduction)


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean squared error: (input - target)^2 per element, then reduced ('mean', 'sum',
    'none'); shapes broadcast.

    >>> import gradflow
    >>> mse_loss(gradflow.tensor([1.0, 3.0]), gradflow.tensor([0.0, 0.0]))
    tensor(5.)
    """
    return _pointwise_loss(
        MSELossFunction, "mse_loss", input, target, reduction, size_average, reduce, weight
    )


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean absolute error: |input - target| per element, then reduced; gradient sign(input -
    target), 0 where they are equal.

    >>> import gradflow
    >>> l1_loss(gradflow.tensor([1.0, -3.0]), gradflow.tensor([0.0, 0.0]))
    tensor(2.)
    """
    return _pointwise_loss(
        L1LossFunction, "l1_loss", input, target, reduction, size_average, reduce, weight
    )


# ---- binary cross-entropy ---------------------------------------------------------------------


def _softplus_neg(x: Any) -> Any:
    """log(1 + exp(-x)) = log1p(exp(-|x|)) + max(-x, 0): finite for any x, no cancellation."""
    xp = get_array_module(x)
    out = xp.asarray(xp.abs(x))  # a 0-d x gives a NumPy scalar, which out= can't take
    xp.negative(out, out=out)
    xp.exp(out, out=out)
    xp.log1p(out, out=out)
    out += xp.maximum(-x, 0)
    return out


def _bce_logits_and_sigmoid(x: Any, y: Any, want_sigmoid: bool) -> tuple[Any, Any]:
    """NumPy, no pos_weight, x and y of one shape: the unweighted loss (1 - y) x + log(1 +
    exp(-x)) and, when asked, sigmoid(x) (else None), from one e = exp(-|x|).

    With h = (x >= 0) as 1 or 0 (numpy.heaviside is far slower): (1 - y) x + max(-x, 0) =
    (h - y) x, so the loss is (h - y) x + log1p(e), and sigmoid(x) = max(e, h) / (1 + e)
    (1 / (1 + e) for x >= 0, e / (1 + e) below: full relative accuracy in both tails, as
    stable_sigmoid). NaN in x stays NaN in both; x = -inf gives a NaN loss, as PyTorch's."""
    t = x.dtype.type
    e = numpy.asarray(numpy.abs(x))  # 0-d x: keep an array, which out= needs
    numpy.negative(e, out=e)
    numpy.exp(e, out=e)
    h = numpy.empty(x.shape, x.dtype)
    numpy.greater_equal(x, t(0), out=h)  # 0 for NaN: the other factors carry it on
    loss = numpy.asarray(numpy.subtract(h, y))
    with numpy.errstate(invalid="ignore"):  # 0 * inf is NaN, as PyTorch's loss has it
        loss *= x
        loss += numpy.log1p(e)
    if x.size and numpy.fmin.reduce(x, axis=None) == -numpy.inf:  # a reduction, no mask pass
        loss[numpy.isneginf(x)] = numpy.nan  # PyTorch's -inf - (-inf), whatever y
    if not want_sigmoid:
        return loss, None
    numpy.maximum(h, e, out=h)
    e += 1
    h /= e
    return loss, h


class BCEWithLogits(Function):
    """w ((1 - y) x + (1 + (pw - 1) y) log(1 + exp(-x))): PyTorch's formula, stable for any x."""

    op_name = "binary_cross_entropy_with_logits"
    reduction: str

    def forward(self, x, y, weight, pos_weight):
        # Memory: the four inputs (references), and on NumPy without pos_weight the sigmoid of
        # x when x needs a gradient (computed with the loss from one exp); backward recomputes
        # the rest.
        sigmoid = None
        if pos_weight is None and get_array_module(x) is numpy and x.shape == y.shape:
            loss, sigmoid = _bce_logits_and_sigmoid(x, y, self.needs_input_grad[0])
        else:
            loss = self._unweighted(x, y, pos_weight)
        self.save_for_backward(x, y, weight, pos_weight, sigmoid)
        if weight is not None:
            loss = loss * weight
        return _reduce(loss, self.reduction, loss.dtype.type(loss.size))

    @staticmethod
    def _unweighted(x, y, pos_weight):
        sp = _softplus_neg(x)
        if pos_weight is not None:
            sp *= 1 + (pos_weight - 1) * y
        return (1 - y) * x + sp

    def backward(self, g):
        x, y, weight, pos_weight, sigmoid = self.saved_arrays
        need_x, need_y, need_w, need_pw = self.needs_input_grad
        size = numpy.broadcast_shapes(*(a.shape for a in (x, y, weight, pos_weight) if a is not
                                        None))  # fmt: skip
        s = _grad_scale(g, self.reduction, x.dtype.type(int(numpy.prod(size))))
        sw = s if weight is None else s * weight
        dx = dy = dw = dpw = None
        if need_x:
            if sigmoid is not None:  # saved by forward (kept as it is: retain_graph)
                dx = numpy.asarray(sigmoid - y)
                if numpy.broadcast_shapes(dx.shape, numpy.shape(sw)) == dx.shape:
                    dx *= sw
                else:
                    dx = dx * sw
                dx = unbroadcast(dx, x.shape)
            else:
                if pos_weight is None:
                    dx = stable_sigmoid(x) - y
                else:  # (1 - y) - (1 + (pw - 1) y) sigmoid(-x)
                    dx = (1 - y) - (1 + (pos_weight - 1) * y) * stable_sigmoid(-x)
                dx = unbroadcast(dx * sw, x.shape)
        if need_y:
            dy = -x if pos_weight is None else (pos_weight - 1) * _softplus_neg(x) - x
            dy = unbroadcast(dy * sw, y.shape)
        if need_w:
            dw = unbroadcast(self._unweighted(x, y, pos_weight) * s, weight.shape)
        if need_pw:
            dpw = unbroadcast(y * _softplus_neg(x) * sw, pos_weight.shape)
        return dx, dy, dw, dpw

    def backward_graph(self, g):
        from gradflow.ops.unary import sigmoid, softplus

        arrays = self.saved_arrays[:4]  # the inputs (the saved sigmoid after them)
        x, y, w, pw = (graph_input(self, i, a) if a is not None else None
                       for i, a in enumerate(arrays))  # fmt: skip
        need_x, need_y, need_w, need_pw = self.needs_input_grad
        size = numpy.broadcast_shapes(*(a.shape for a in arrays if a is not None))
        s = g / int(numpy.prod(size)) if self.reduction == "mean" else g
        sw = s if w is None else s * w
        sp = softplus(-x, 1.0, math.inf)  # log(1 + exp(-x))
        dx = dy = dw = dpw = None
        if need_x:
            dx = sigmoid(x) - y if pw is None else (1 - y) - (1 + (pw - 1) * y) * sigmoid(-x)
            dx = _unb(dx * sw, arrays[0].shape)
        if need_y:
            dy = -x if pw is None else (pw - 1) * sp - x
            dy = _unb(dy * sw, arrays[1].shape)
        if need_w:
            loss = (1 - y) * x + (sp if pw is None else sp * (1 + (pw - 1) * y))
            dw = _unb(loss * s, arrays[2].shape)
        if need_pw:
            dpw = _unb(y * sp * sw, arrays[3].shape)
        return dx, dy, dw, dpw


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross-entropy of logits: -w (pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))),
    computed as w ((1 - y) x + (1 + (pw - 1) y) (log1p(exp(-|x|)) + max(-x, 0))): finite for
    logits of any size. pos_weight broadcasts along the last (class) dim.

    >>> import gradflow
    >>> binary_cross_entropy_with_logits(gradflow.tensor([0.0]), gradflow.tensor([1.0]))
    tensor(0.6931)
    """
    op = "binary_cross_entropy_with_logits"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    input, target = binary_args(input, target, weight, reduction, op)
    optional_float(pos_weight, input, op, "pos_weight")
    return BCEWithLogits.apply(input, target, weight, pos_weight, reduction=reduction)


_LOG_FLOOR = -100.0  # PyTorch clamps log(p) and log(1 - p) here, so p = 0 or 1 stays finite
_BCE_EPS = 1e-12  # and bounds the gradient's denominator p (1 - p) below by this


def _clamped_logs(p: Any, xp: Any) -> tuple[Any, Any]:
    """(log p, log(1 - p)), each clamped below at -100."""
    with numpy.errstate(divide="ignore"):  # log(0) = -inf is expected; the clamp handles it
        return xp.maximum(xp.log(p), _LOG_FLOOR), xp.maximum(xp.log1p(-p), _LOG_FLOOR)


class BCE(Function):
    op_name = "binary_cross_entropy"
    reduction: str

    def forward(self, p, y, weight):
        xp = get_array_module(p)
        self.save_for_backward(p, y, weight)  # the inputs (references, no new arrays)
        loss = xp.asarray(self._logs(p, y, xp))  # an array for 0-d inputs too
        xp.negative(loss, out=loss)
        if weight is not None:
            loss *= weight
        loss = _mark_bad(loss, _targets_off_unit(y))
        return _reduce(loss, self.reduction, loss.dtype.type(loss.size))

    @staticmethod
    def _logs(p, y, xp):
        log_p, log_q = _clamped_logs(p, xp)
        return y * log_p + (1 - y) * log_q

    def backward(self, g):
        p, y, weight = self.saved_arrays
        xp = get_array_module(p)
        need_p, need_y = self.needs_input_grad[:2]
        s = _grad_scale(g, self.reduction, p.dtype.type(p.size))
        sw = s if weight is None else s * weight
        dp = dy = None
        bad = _targets_off_unit(y)
        if need_p:
            dp = _mark_bad((p - y) / xp.maximum(p * (1 - p), _BCE_EPS) * sw, bad)
        if need_y:
            log_p, log_q = _clamped_logs(p, xp)
            dy = _mark_bad((log_q - log_p) * sw, bad)
        return dp, dy, None

    def backward_graph(self, g):
        from gradflow.ops.arithmetic import clip

        arrays = self.saved_arrays
        p, y, w = (graph_input(self, i, a) if a is not None else None
                   for i, a in enumerate(arrays))  # fmt: skip
        need_p, need_y, _ = self.needs_input_grad
        size = numpy.broadcast_shapes(*(a.shape for a in arrays if a is not None))
        s = g / int(numpy.prod(size)) if self.reduction == "mean" else g
        sw = s if w is None else s * w
        dp = dy = None
        if need_p:
            dp = _unb((p - y) / clip(p * (1 - p), _BCE_EPS) * sw, arrays[0].shape)
        if need_y:
            log_p = clip(p.log(), _LOG_FLOOR)
            log_q = clip((-p).log1p(), _LOG_FLOOR)
            dy = _unb((log_q - log_p) * sw, arrays[1].shape)
        return dp, dy, None


def _targets_off_unit(y: Any) -> Any:
    """On cuda, where BCE targets lie outside [0, 1] (their losses and gradients become NaN: a
    check that raises, as on cpu, would synchronize); None on cpu, where they were refused."""
    if not is_cuda_array(y):
        return None
    return get_array_module(y).abs(y - y.dtype.type(0.5)) > 0.5  # NaN is NaN already


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy of probabilities: -w (y log p + (1 - y) log(1 - p)), the logs
    clamped at -100 as in PyTorch. Prefer binary_cross_entropy_with_logits (stable).

    >>> import gradflow
    >>> binary_cross_entropy(gradflow.tensor([0.5]), gradflow.tensor([1.0]))
    tensor(0.6931)
    """
    op = "binary_cross_entropy"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    input, target = binary_args(input, target, weight, reduction, op)
    # On cuda the checks would synchronize: inputs outside [0, 1] give NaN by themselves (the
    # logs of negatives), targets outside [0, 1] are made NaN (BCE).
    if not is_cuda_array(input.array):
        p = input.array
        if ((p < 0) | (p > 1)).any():
            raise ValueError(
                f"{op}: argument 'input' holds values outside [0, 1] (min {p.min()}, max "
                f"{p.max()}); expected probabilities (use binary_cross_entropy_with_logits for "
                "logits)"
            )
        check_unit_interval(target.array, op, "target")  # as PyTorch, NaN too
    return BCE.apply(input, target, weight, reduction=reduction)
