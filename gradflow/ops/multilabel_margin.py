"""multilabel_margin_loss: the multi-class multi-label hinge loss of torch.nn.MultiLabelMarginLoss.

One node (MultilabelMarginLoss): the hinges of every (target slot, class) pair at once, an
(N, K, C) array with K the most targets any sample has (K is small in practice; PyTorch's
kernel loops over the same pairs). Saved for backward: the hinges' active mask (bool, N*K*C)
and the target indices. The gradient is linear in the incoming gradient with a constant
coefficient (the loss is piecewise linear), so the double backward is that product on Tensors
(and the second derivative is zero).
"""

from __future__ import annotations

import numpy

from gradflow.autograd.differentiable import const
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import float_input
from gradflow.ops.loss_arguments import legacy_reduction
from gradflow.tensor import Tensor


class MultilabelMarginLoss(Function):
    """Input x (N, C); parameters index (N, K) (the target classes, 0 in padding slots), valid
    (N, K) bool (the slots before the first -1), others (N, C) (1 on non-target classes) and
    reduction. Output: (N,) per-sample losses, or their mean / sum."""

    op_name = "multilabel_margin_loss"
    index: object
    valid: object
    others: object
    reduction: str

    def forward(self, x):
        xp = get_array_module(x)
        n, classes = x.shape
        picked = x[xp.arange(n)[:, None], self.index]  # (N, K): x[y_k]
        hinge = x[:, None, :] - picked[:, :, None]
        hinge += 1
        xp.maximum(hinge, 0, out=hinge)
        hinge *= self.others[:, None, :]
        hinge *= self.valid[:, :, None]
        self.save_for_backward(hinge > 0)
        per_sample = hinge.sum(axis=(1, 2))
        per_sample /= x.dtype.type(classes)
        if self.reduction == "sum":
            return per_sample.sum()
        if self.reduction == "mean":  # of no samples: NaN, without NumPy's warning
            return per_sample.mean() if n else xp.asarray(xp.nan, x.dtype)
        return per_sample

    def _coefficients(self, dtype):
        """d loss_n / d x (N, C) of the per-sample losses."""
        xp = get_array_module(self.index)
        (active,) = self.saved_arrays
        n, _, classes = active.shape
        weights = active.astype(dtype)
        coeff = weights.sum(axis=1)
        per_slot = weights.sum(axis=2)  # (N, K): the active hinges of each target
        rows = xp.arange(n)
        if xp is numpy:  # every (row, target) at once; a target listed twice adds up
            flat = (rows[:, None] * classes + self.index).ravel()
            coeff.ravel()[...] -= numpy.bincount(flat, per_slot.ravel(), n * classes)
        else:
            for k in range(per_slot.shape[1]):  # one target per row at a time: no duplicates
                coeff[rows, self.index[:, k]] -= per_slot[:, k]
        coeff /= dtype.type(classes)
        return coeff

    def _scale(self, g, n):
        if self.reduction == "none":
            return g.reshape(-1, 1)
        return g / max(n, 1) if self.reduction == "mean" else g

    def backward(self, g):
        coeff = self._coefficients(g.dtype)
        coeff *= self._scale(g, coeff.shape[0])
        return coeff

    def backward_graph(self, g):
        coeff = self._coefficients(g.dtype)
        return const(coeff) * self._scale(g, coeff.shape[0])


def multilabel_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """sum over targets j and non-targets i of max(0, 1 - (x[y_j] - x[i])), divided by C, per
    sample. input (C,) or (N, C); target int64 of the same shape holding class indices, the
    sample's targets being those before its first -1 (the rest is padding). A target listed
    twice counts twice, as in PyTorch.

    >>> import gradflow
    >>> x = gradflow.tensor([[0.1, 0.2, 0.4, 0.8]])
    >>> multilabel_margin_loss(x, gradflow.tensor([[3, 0, -1, 1]]))
    tensor(0.8500)
    """
    op = "multilabel_margin_loss"
    reduction = legacy_reduction(size_average, reduce, reduction, op)
    x = float_input(input, op)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: argument 'target' must be a Tensor, got {type(target).__name__}")
    if x.ndim > 2 or (x.ndim == 2 and x.shape[1] == 0) or (x.ndim == 1 and x.shape[0] == 0):
        raise RuntimeError(
            f"{op}: expected non-empty vector or matrix with optional 0-dim batch size, but got: "
            f"{list(x.shape)}"
        )
    if tuple(target.shape) != tuple(x.shape):
        raise RuntimeError(
            f"{op}: inconsistent target size: {list(target.shape)} for input of size: "
            f"{list(x.shape)}; target holds class indices shaped like input, padded with -1"
        )
    if target.dtype.name != "int64":
        raise RuntimeError(
            f"{op}: expected scalar type Long but found {target.dtype} for target; convert it "
            "with target.long()"
        )
    lifted = x.ndim < 2
    if lifted:
        x, target = x.reshape(1, -1), target.reshape(1, -1)
    n, classes = x.shape
    t = target.array
    xp = get_array_module(t)
    if t.size and (int(t.min()) < -1 or int(t.max()) >= classes):
        raise RuntimeError(
            f"{op}: argument #2 'target' is out of range: class indices must be in [0, "
            f"{classes}) or -1 (the padding after a sample's last target)"
        )
    valid = xp.cumsum(t == -1, axis=1) == 0  # the slots before the first -1
    slots = int(xp.count_nonzero(valid.any(axis=0)))  # the most targets of any sample
    valid, t = valid[:, :slots], t[:, :slots]
    index = t * valid  # padding slots point at class 0 (masked off)
    others = xp.ones((n, classes + 1), x.dtype)  # 1 on the non-target classes (and a spare)
    others[xp.arange(n)[:, None], xp.where(valid, t, classes)] = 0
    others = others[:, :classes]
    loss = MultilabelMarginLoss.apply(
        x, index=index, valid=valid.astype(x.dtype), others=others,
        reduction=reduction,
    )  # fmt: skip
    if lifted and reduction == "none":
        loss = loss.reshape(())
    return loss
