"""Losses: cross_entropy, nll_loss, mse_loss, l1_loss, binary_cross_entropy(_with_logits), with
PyTorch's semantics and defaults.

Memory: cross_entropy is one fused node (log-softmax + NLL) that keeps the logits it was given
(a reference, no copy) and one logsumexp per row (its stable log-sum-exp is ops/softmax.py's);
l1_loss keeps an int8 sign. On cuda, cross_entropy with (N, C) logits and class-index targets
runs our fused kernels (kernels/fused.cu, softmax_xent_*). On cuda no loss here synchronizes
with the host: class targets are not read back to be checked (out-of-range ones give NaN rows,
as the kernels do), and no boolean-mask indexing is used (CuPy counts a mask on the host).

Class dimension: inputs are (N, C) or (N, C, d1, ...) with targets (N,) or (N, d1, ...), or (C,)
with a 0-d target, as in PyTorch. The array code below works on any of these with the class
axis at 1 (the public functions lift (C,) to (1, C)).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module, is_cuda_array
from gradflow.backend.routing import uses_kernels
from gradflow.ops._util import float_input, unbroadcast
from gradflow.ops.loss_arguments import (
    binary_args,
    check_reduction,
    check_unit_interval,
    class_target_args,
    float_pair,
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
        x, m, log_sum, target, weight = self.saved_arrays
        s = _grad_scale(g, self.reduction, self.denom)
        xp = get_array_module(x)
        if self.probs:
            return self._backward_probs(x, m, log_sum, target, weight, s, xp)
        n_classes = x.shape[1]
        eps = self.label_smoothing
        safe, keep, w_t, bad = _kept_targets(target, weight, self.ignore_index, n_classes, x.dtype)
        s = _mark_bad(s * keep, bad)  # (N, d1, ...): ignored rows get no gradient
        total_w = n_classes if weight is None else weight.sum()
        dx = log_probs(x, m, log_sum)
        xp.exp(dx, out=dx)  # softmax
        dx *= (s * ((1 - eps) * w_t + (eps / n_classes) * total_w))[:, None]
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


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    *,
    size_average: bool | None = None,
    reduce: bool | None = None,
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
        safe, _, w_t, bad = _kept_targets(target, weight, self.ignore_index, shape[1], dtype)
        s = _mark_bad(_grad_scale(g, self.reduction, self.denom) * w_t, bad)
        dx = xp.zeros(shape, dtype)
        dx[_class_index(safe)] = -s
        return dx, None, None


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    *,
    size_average: bool | None = None,
    reduce: bool | None = None,
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


def mse_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    *,
    size_average: bool | None = None,
    reduce: bool | None = None,
    weight: Tensor | None = None,
) -> Tensor:
    """Mean squared error: (input - target)^2 per element, then reduced ('mean', 'sum',
    'none'); shapes broadcast.

    >>> import gradflow
    >>> mse_loss(gradflow.tensor([1.0, 3.0]), gradflow.tensor([0.0, 0.0]))
    tensor(5.)
    """
    reduction = legacy_reduction(size_average, reduce, reduction, "mse_loss")
    input, target = pair_args(input, target, reduction, "mse_loss")
    warn_if_shapes_differ(input, target, "mse_loss")
    if weight is not None:
        return _weighted(
            MSELossFunction.apply(input, target, reduction="none"),
            weight,
            input,
            reduction,
            "mse_loss",
        )
    return MSELossFunction.apply(input, target, reduction=reduction)


def l1_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    *,
    size_average: bool | None = None,
    reduce: bool | None = None,
    weight: Tensor | None = None,
) -> Tensor:
    """Mean absolute error: |input - target| per element, then reduced; gradient sign(input -
    target), 0 where they are equal.

    >>> import gradflow
    >>> l1_loss(gradflow.tensor([1.0, -3.0]), gradflow.tensor([0.0, 0.0]))
    tensor(2.)
    """
    reduction = legacy_reduction(size_average, reduce, reduction, "l1_loss")
    input, target = pair_args(input, target, reduction, "l1_loss")
    warn_if_shapes_differ(input, target, "l1_loss")
    if weight is not None:
        return _weighted(
            L1LossFunction.apply(input, target, reduction="none"),
            weight,
            input,
            reduction,
            "l1_loss",
        )
    return L1LossFunction.apply(input, target, reduction=reduction)


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


class BCEWithLogits(Function):
    """w ((1 - y) x + (1 + (pw - 1) y) log(1 + exp(-x))): PyTorch's formula, stable for any x."""

    op_name = "binary_cross_entropy_with_logits"
    reduction: str

    def forward(self, x, y, weight, pos_weight):
        # Memory: the four inputs (references, no new arrays); backward recomputes the rest.
        self.save_for_backward(x, y, weight, pos_weight)
        loss = self._unweighted(x, y, pos_weight)
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
        x, y, weight, pos_weight = self.saved_arrays
        need_x, need_y, need_w, need_pw = self.needs_input_grad
        size = numpy.broadcast_shapes(*(a.shape for a in (x, y, weight, pos_weight) if a is not
                                        None))  # fmt: skip
        s = _grad_scale(g, self.reduction, x.dtype.type(int(numpy.prod(size))))
        sw = s if weight is None else s * weight
        dx = dy = dw = dpw = None
        if need_x:
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


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
    *,
    size_average: bool | None = None,
    reduce: bool | None = None,
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
    reduction: str = "mean",
    *,
    size_average: bool | None = None,
    reduce: bool | None = None,
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


# ---- more losses (PyTorch's signatures, size_average/reduce included) -------------------------
# The elementwise ones below are a per-element Function, or a short composition of
# differentiable ops, reduced by _reduced; ctc_loss is one Function (a forward-backward
# dynamic program).


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


class SmoothL1Function(Function):
    """Per element, d = x - y: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta
    (huber: delta times that, with beta = delta)."""

    op_name = "smooth_l1_loss"
    beta: float
    huber: bool = False

    def forward(self, x, y):
        xp = get_array_module(x)
        d = xp.asarray(x - y)
        self.save_for_backward(d)  # the difference: both gradients are +-slope(d)
        self.shapes = (x.shape, y.shape)
        beta = d.dtype.type(self.beta)
        ad = xp.abs(d)
        if self.huber:
            return xp.where(ad < beta, d.dtype.type(0.5) * d * d, beta * (ad - beta / 2))
        if self.beta == 0:
            return ad
        return xp.where(ad < beta, d.dtype.type(0.5) * d * d / beta, ad - beta / 2)

    def backward(self, g):
        (d,) = self.saved_arrays
        xp = get_array_module(d)
        beta = d.dtype.type(self.beta)
        if self.huber:  # PyTorch's: d inside [-delta, delta], delta sign(d) outside
            slope = xp.clip(d, -beta, beta)
        elif self.beta == 0:
            slope = xp.sign(d)
        else:
            slope = xp.where(xp.abs(d) < beta, d / beta, xp.sign(d))
        return _pair_grads(self, slope * g)


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
    return _reduced(SmoothL1Function.apply(input, target, beta=float(beta)), reduction)


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
    loss = SmoothL1Function.apply(input, target, beta=float(delta), huber=True, op_name=op)
    if weight is not None:
        loss = loss * _target_like(weight, input, op, "weight")
    return _reduced(loss, reduction)


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


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, -target (input1 - input2) + margin), target +1 or -1.

    >>> import gradflow
    >>> margin_ranking_loss(gradflow.tensor([1.0]), gradflow.tensor([2.0]), gradflow.tensor([1.0]))
    tensor(1.)
    """
    from gradflow.ops import arithmetic

    op = "margin_ranking_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    x1, x2 = float_pair(input1, input2, op, ("input1", "input2"))
    y = _target_like(target, x1, op)
    if not (x1.ndim == x2.ndim == y.ndim):
        raise RuntimeError(
            f"{op}: all input tensors should have the same number of dims, got input1 "
            f"{tuple(x1.shape)}, input2 {tuple(x2.shape)}, target {tuple(y.shape)}"
        )
    return _reduced(arithmetic.clamp(-y * (x1 - x2) + margin, min=0.0), reduction)


def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """input where target == 1, max(0, margin - input) where target == -1 (PyTorch's: both
    terms for other target values).

    >>> import gradflow
    >>> hinge_embedding_loss(gradflow.tensor([0.3, 2.0]), gradflow.tensor([-1.0, 1.0]))
    tensor(1.3500)
    """
    from gradflow.ops import arithmetic

    op = "hinge_embedding_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    x = float_input(input, op)
    y = _target_like(target, x, op)
    margin_part = arithmetic.where(y != 1, arithmetic.clamp(margin - x, min=0.0), 0.0)
    self_part = arithmetic.where(y != -1, x, 0.0)
    return _reduced(margin_part + self_part, reduction)


def soft_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """log(1 + exp(-target input)) per element, computed stably.

    >>> import gradflow
    >>> soft_margin_loss(gradflow.tensor([0.0]), gradflow.tensor([1.0]))
    tensor(0.6931)
    """
    from gradflow.ops import unary

    op = "soft_margin_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    x = float_input(input, op)
    y = _target_like(target, x, op)
    return _reduced(unary.softplus(-y * x, 1.0, math.inf), reduction)


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """-(y log sigmoid(x) + (1 - y) log sigmoid(-x)), weighted, averaged over the classes (the
    last dim), then reduced over the samples.

    >>> import gradflow
    >>> multilabel_soft_margin_loss(gradflow.tensor([[0.0, 0.0]]), gradflow.tensor([[1.0, 0.0]]))
    tensor(0.6931)
    """
    from gradflow.ops.activations import logsigmoid

    op = "multilabel_soft_margin_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    x = float_input(input, op)
    y = _target_like(target, x, op)
    loss = -(y * logsigmoid(x) + (1 - y) * logsigmoid(-x))
    if weight is not None:
        loss = loss * _target_like(weight, x, op, "weight")
    loss = loss.sum(dim=x.ndim - 1) / x.shape[-1]
    return _reduced(loss, reduction)


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """1 - cos(x1, x2) where target == 1, max(0, cos(x1, x2) - margin) where target == -1;
    cos along dim 1 of (N, D) inputs (dim 0 of (D,) ones), as PyTorch (norms get 1e-12).

    >>> import gradflow
    >>> x = gradflow.tensor([[1.0, 0.0]])
    >>> cosine_embedding_loss(x, x, gradflow.tensor([1.0]))
    tensor(0.)
    """
    from gradflow.ops import arithmetic, unary

    op = "cosine_embedding_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    x1, x2 = float_pair(input1, input2, op, ("input1", "input2"))
    if x1.ndim not in (1, 2) or x1.shape != x2.shape:
        raise RuntimeError(
            f"{op}: expected two 1-D or 2-D inputs of one shape, got {tuple(x1.shape)} and "
            f"{tuple(x2.shape)}"
        )
    y = _target_like(target, x1, op)
    if y.ndim != x1.ndim - 1:
        raise RuntimeError(
            f"{op}: expected a {x1.ndim - 1}-D target for {x1.ndim}-D inputs, got shape "
            f"{tuple(y.shape)}"
        )
    dim = x1.ndim - 1
    eps = 1e-12  # PyTorch's EPSILON
    prod = (x1 * x2).sum(dim=dim)
    mag = ((x1 * x1).sum(dim=dim) + eps) * ((x2 * x2).sum(dim=dim) + eps)
    cos = prod / unary.sqrt(mag)
    pos = arithmetic.where(y == 1, 1 - cos, 0.0)
    neg = arithmetic.where(y == -1, arithmetic.clamp(cos - margin, min=0.0), 0.0)
    return _reduced(pos + neg, reduction)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin), d the pairwise p-norm distance (with eps); swap
    uses min(d(a, n), d(p, n)) as the negative distance.

    >>> import gradflow
    >>> a = gradflow.tensor([[0.0, 0.0]])
    >>> triplet_margin_loss(a, a, gradflow.tensor([[3.0, 4.0]]))
    tensor(0.)
    """
    from gradflow.ops import arithmetic
    from gradflow.ops.distance import pairwise_distance

    op = "triplet_margin_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    a = float_input(anchor, op, "anchor")
    pos = float_input(positive, op, "positive")
    neg = float_input(negative, op, "negative")
    if not (a.ndim == pos.ndim == neg.ndim) or a.ndim not in (1, 2):
        raise RuntimeError(
            f"{op}: expected anchor, positive and negative all 1-D or all 2-D, got "
            f"{tuple(a.shape)}, {tuple(pos.shape)}, {tuple(neg.shape)}"
        )
    d_pos = pairwise_distance(a, pos, p, eps)
    d_neg = pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = arithmetic.minimum(d_neg, pairwise_distance(pos, neg, p, eps))
    return _reduced(arithmetic.clamp(margin + d_pos - d_neg, min=0.0), reduction)


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class hinge: sum_{i != y} max(0, margin - x[y] + x[i])^p / C per sample (times
    weight[y]), p 1 or 2; input (N, C) or (C,), target class indices.

    >>> import gradflow
    >>> multi_margin_loss(gradflow.tensor([[0.1, 0.8]]), gradflow.tensor([1]))
    tensor(0.1500)
    """
    from gradflow.ops import arithmetic
    from gradflow.ops.indexing import gather, one_hot

    op = "multi_margin_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    if p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 are supported, got p={p}")
    x = float_input(input, op)
    lifted = x.ndim == 1
    if lifted:
        x, target = x.reshape(1, -1), target.reshape(1)
    if x.ndim != 2 or target.shape != (x.shape[0],) or target.dtype.kind not in "iu":
        raise ValueError(
            f"{op}: expected input (N, C) or (C,) and integer class targets (N,) or (), got "
            f"input {tuple(input.shape)} and target {tuple(target.shape)} {target.dtype}"
        )
    n_classes = x.shape[1]
    idx = target.long().reshape(-1, 1)
    z = arithmetic.clamp(margin - gather(x, 1, idx) + x, min=0.0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * gather(_target_like(weight, x, op, "weight"), 0, idx.reshape(-1)).reshape(-1, 1)
    z = arithmetic.where(one_hot(idx.reshape(-1), n_classes) == 1, 0.0, z)
    loss = z.sum(dim=1) / n_classes
    if lifted and reduction == "none":
        loss = loss.reshape(())
    return _reduced(loss, reduction)


# ---- ctc_loss ---------------------------------------------------------------------------------


def _scatter_add_flat(out: Any, positions: Any, values: Any) -> None:
    """out.reshape(-1)[positions[i]] += values[i] for every i (repeats add up)."""
    flat = out.reshape(-1)
    if is_cuda_array(out):
        import cupyx

        cupyx.scatter_add(flat, positions, values)
    else:
        numpy.add.at(flat, positions, values)


def _logsumexp3(a: Any, b: Any, c: Any) -> Any:
    """log(exp(a) + exp(b) + exp(c)) elementwise, -inf where all three are -inf."""
    xp = get_array_module(a)
    m = xp.maximum(xp.maximum(a, b), c)
    safe = xp.where(xp.isfinite(m), m, a.dtype.type(0))
    with numpy.errstate(divide="ignore"):
        out = xp.log(xp.exp(a - safe) + xp.exp(b - safe) + xp.exp(c - safe)) + safe
    return xp.where(m == -numpy.inf, m, out)


class CTCLossFunction(Function):
    """-log p(target | log_probs) per sequence by the forward-backward (alpha-beta) recursion
    in log space over the extended target (blanks between and around the labels), vectorized
    over the batch with a Python loop over time.

    The gradient is PyTorch's: exp(lp) - exp(log sum_{s: l'_s = c} alpha_t(s) beta_t(s) + nll -
    lp) for t < input_length, 0 after; it is the true gradient once log_probs come from a
    log_softmax (what ctc_loss expects), which is how the tests check it.
    """

    op_name = "ctc_loss"
    blank: int
    zero_infinity: bool

    def forward(self, lp, labels, input_lengths, target_lengths):
        # lp (T, N, C); labels (N, S) int64 padded; lengths (N,) int64 on lp's device
        xp = get_array_module(lp)
        T, N, _ = lp.shape
        S = labels.shape[1]
        L = 2 * S + 1
        ninf = lp.dtype.type(-numpy.inf)
        ext = xp.full((N, L), self.blank, dtype=numpy.int64)  # l': blank, l1, blank, l2, ...
        ext[:, 1::2] = labels
        ext_len = 2 * target_lengths + 1  # (N,)
        pos = xp.arange(L)
        valid = pos[None, :] < ext_len[:, None]  # (N, L)
        skip = xp.zeros((N, L), dtype=bool)  # s-2 -> s allowed: a label unlike the one before
        skip[:, 2:] = (ext[:, 2:] != self.blank) & (ext[:, 2:] != ext[:, :-2])
        rows = xp.arange(N)[:, None]
        emit = lambda t: lp[t][rows, ext]  # noqa: E731  (N, L): log p of l'_s at time t
        alpha = xp.full((T, N, L), ninf, dtype=lp.dtype)
        first = emit(0)
        alpha[0, :, 0] = first[:, 0]
        alpha[0, :, 1] = xp.where(target_lengths > 0, first[:, 1], ninf) if L > 1 else ninf
        for t in range(1, T):
            prev = alpha[t - 1]
            a1 = xp.concatenate([xp.full((N, 1), ninf, lp.dtype), prev[:, :-1]], axis=1)
            a2 = xp.concatenate([xp.full((N, 2), ninf, lp.dtype), prev[:, :-2]], axis=1)[:, :L]
            new = _logsumexp3(prev, a1, xp.where(skip, a2, ninf)) + emit(t)
            new = xp.where(valid, new, ninf)
            alpha[t] = xp.where((t < input_lengths)[:, None], new, prev)  # frozen after T_n
        # nll = -log(alpha_{T_n-1}(L_n - 1) + alpha_{T_n-1}(L_n - 2))
        last_t = xp.maximum(input_lengths - 1, 0)
        final = alpha[last_t, xp.arange(N)]  # (N, L)
        n = xp.arange(N)
        end1 = final[n, ext_len - 1]
        end2 = xp.where(ext_len >= 2, final[n, xp.maximum(ext_len - 2, 0)], ninf)
        ll = xp.logaddexp(end1, end2)
        ll = xp.where(input_lengths > 0, ll, xp.where(target_lengths == 0, 0, ninf))
        nll = -ll
        self.save_for_backward(lp, alpha, nll, ext, valid, skip, input_lengths, ext_len)
        if self.zero_infinity:
            nll = xp.where(xp.isinf(nll), lp.dtype.type(0), nll)
        return nll

    def backward(self, g):
        lp, alpha, nll, ext, valid, skip, input_lengths, ext_len = self.saved_arrays
        xp = get_array_module(lp)
        T, N, C = lp.shape
        L = ext.shape[1]
        ninf = lp.dtype.type(-numpy.inf)
        rows = xp.arange(N)[:, None]
        # beta_t(s): log p of emitting l'_s..end from time t on, lp at t included (PyTorch's)
        beta = xp.full((T, N, L), ninf, dtype=lp.dtype)
        ends = valid & (
            (xp.arange(L)[None, :] == (ext_len - 1)[:, None])
            | (xp.arange(L)[None, :] == (ext_len - 2)[:, None])
        )
        skip_next = xp.zeros((N, L), dtype=bool)  # s+2 -> s allowed
        skip_next[:, :-2] = skip[:, 2:]
        nxt = xp.full((N, L), ninf, dtype=lp.dtype)
        for t in range(T - 1, -1, -1):
            e = lp[t][rows, ext]
            b1 = xp.concatenate([nxt[:, 1:], xp.full((N, 1), ninf, lp.dtype)], axis=1)
            b2 = xp.concatenate([nxt[:, 2:], xp.full((N, 2), ninf, lp.dtype)], axis=1)[:, :L]
            rec = _logsumexp3(nxt, b1, xp.where(skip_next, b2, ninf)) + e
            init = xp.where(ends, e, ninf)
            cur = xp.where((t == input_lengths - 1)[:, None], init, rec)
            cur = xp.where(valid & (t < input_lengths)[:, None], cur, ninf)
            beta[t] = cur
            nxt = cur
        # sum over s with l'_s = c of alpha beta, in log space: a max-shifted exp, then a
        # scatter-add of the (T, N, L) terms into their (t, n, l'_s) slots of (T, N, C)
        ab = alpha + beta  # (T, N, L)
        m = ab.max(axis=2, keepdims=True)
        m = xp.where(xp.isfinite(m), m, lp.dtype.type(0))
        rows_tn = xp.arange(T * N, dtype=numpy.intp).reshape(T, N, 1) * C
        positions = (rows_tn + ext.astype(numpy.intp)[None]).reshape(-1)
        grouped = xp.zeros((T, N, C), dtype=lp.dtype)
        _scatter_add_flat(grouped, positions, xp.exp(ab - m).reshape(-1))
        with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lcab = xp.log(grouped) + m  # (T, N, C)
            grad = xp.exp(lp) - xp.exp(lcab + nll[None, :, None] - lp)
        active = (xp.arange(T)[:, None] < input_lengths[None, :])[:, :, None]
        grad = xp.where(active, grad, lp.dtype.type(0))
        if self.zero_infinity:
            grad = xp.where(xp.isinf(nll)[None, :, None], lp.dtype.type(0), grad)
        grad *= g[None, :, None]
        return grad, None, None, None


def _lengths(x: Any, n: int, op: str, name: str) -> numpy.ndarray:
    """Lengths given as a Tensor or a sequence of ints, as an (n,) int64 NumPy array."""
    if isinstance(x, Tensor):
        a = numpy.asarray(x.detach().cpu().numpy())
        if a.dtype.kind not in "iu":
            raise TypeError(f"{op}: '{name}' must hold integers, got dtype {a.dtype}")
    else:
        a = numpy.asarray(list(x) if not isinstance(x, int) else [x])
    a = a.astype(numpy.int64).reshape(-1)
    if a.shape != (n,):
        raise RuntimeError(f"{op}: expected '{name}' to hold {n} lengths, got {a.size}")
    if (a < 0).any():
        raise RuntimeError(f"{op}: '{name}' holds a negative length: {a.tolist()}")
    return a


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Connectionist Temporal Classification loss (PyTorch's): -log p(target | log_probs),
    summed over all alignments. log_probs (T, N, C) (or (T, C)) from log_softmax; targets (N,
    S) padded or 1-D concatenated; lengths as Tensors or int sequences. 'mean' divides each loss
    by its target length (at least 1), then averages over the batch; zero_infinity turns
    impossible alignments' infinite losses (and their gradients) into 0.

    >>> import gradflow
    >>> lp = gradflow.tensor([[[0.0, -100.0]], [[-100.0, 0.0]]])
    >>> ctc_loss(lp, gradflow.tensor([[1]]), [2], [1], reduction="sum")
    tensor(0.)
    """
    op = "ctc_loss"
    check_reduction(reduction, op)
    lp = float_input(log_probs, op, "log_probs")
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp.unsqueeze(1)
    if lp.ndim != 3:
        raise RuntimeError(
            f"{op}: expected 'log_probs' of shape (T, N, C) or (T, C), got {tuple(log_probs.shape)}"
        )
    T, N, C = lp.shape
    if not 0 <= blank < C:
        raise RuntimeError(f"{op}: blank must be in label range [0, {C}), got {blank}")
    if not isinstance(targets, Tensor):
        raise TypeError(f"{op}: argument 'targets' must be a Tensor, got {type(targets).__name__}")
    in_len = _lengths(input_lengths, N, op, "input_lengths")
    tgt_len = _lengths(target_lengths, N, op, "target_lengths")
    if (in_len > T).any():
        raise RuntimeError(
            f"{op}: expected input_lengths to have value at most {T}, but got value "
            f"{int(in_len.max())}"
        )
    tg = numpy.asarray(targets.detach().cpu().numpy()).astype(numpy.int64)
    if unbatched and tg.ndim == 1 and tg.size == tgt_len.sum() and tg.size != 0:
        tg = tg.reshape(1, -1)
    S = int(tgt_len.max()) if N else 0
    if tg.ndim == 2:
        if tg.shape[0] != N or tg.shape[1] < S:
            raise RuntimeError(
                f"{op}: padded targets of shape {tg.shape} for batch {N} and longest target "
                f"{S}; expected (N, S) with S >= max(target_lengths)"
            )
        labels = tg[:, :S]
    elif tg.ndim == 1:
        if tg.size != tgt_len.sum():
            raise RuntimeError(
                f"{op}: concatenated targets hold {tg.size} labels but target_lengths sum to "
                f"{int(tgt_len.sum())}"
            )
        labels = numpy.full((N, S), blank, dtype=numpy.int64)
        starts = numpy.concatenate([[0], numpy.cumsum(tgt_len)[:-1]])
        for i, (start, k) in enumerate(zip(starts, tgt_len)):
            labels[i, :k] = tg[start : start + k]
    else:
        raise RuntimeError(f"{op}: targets must be 1-D or 2-D, got shape {tg.shape}")
    kept = numpy.arange(S)[None, :] < tgt_len[:, None]
    if ((labels < 0) | (labels >= C) | (labels == blank))[kept].any():
        raise RuntimeError(
            f"{op}: targets must be class indices in [0, {C}) other than blank={blank}"
        )
    labels = numpy.where(kept, labels, blank)
    xp = get_array_module(lp.array)
    device_arrays = [xp.asarray(a) for a in (labels, in_len, tgt_len)]
    nll = CTCLossFunction.apply(
        lp, *device_arrays, blank=int(blank), zero_infinity=bool(zero_infinity)
    )
    if reduction == "mean":
        out = (nll / Tensor._wrap(xp.asarray(numpy.maximum(tgt_len, 1).astype(lp.dtype)))).mean()
    elif reduction == "sum":
        out = nll.sum()
    else:
        out = nll
    return out.reshape(()) if unbatched and reduction == "none" else out


def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function: Any = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin) with any distance function d (pairwise_distance by
    default); swap uses min(d(a, n), d(p, n)).

    >>> import gradflow
    >>> a = gradflow.tensor([[0.0, 0.0]])
    >>> triplet_margin_with_distance_loss(a, a, gradflow.tensor([[0.5, 0.0]]))
    tensor(0.5000)
    """
    from gradflow.ops import arithmetic
    from gradflow.ops.distance import pairwise_distance

    op = "triplet_margin_with_distance_loss"
    check_reduction(reduction, op)
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    d = pairwise_distance if distance_function is None else distance_function
    d_pos, d_neg = d(anchor, positive), d(anchor, negative)
    if swap:
        d_neg = arithmetic.minimum(d_neg, d(positive, negative))
    return _reduced(arithmetic.clamp(margin + d_pos - d_neg, min=0.0), reduction)
