"""Margin and embedding losses: margin_ranking_loss, hinge_embedding_loss, soft_margin_loss,
multilabel_soft_margin_loss, cosine_embedding_loss, triplet_margin_loss,
triplet_margin_with_distance_loss, multi_margin_loss, with PyTorch's signatures
(size_average/reduce included).

Each is a short composition of differentiable ops (no Function of its own), reduced by
losses._reduced: the intermediates the graph keeps are those of the ops it is built from.
"""

from __future__ import annotations

import math
from typing import Any

from gradflow.ops._util import float_input
from gradflow.ops.loss_arguments import check_reduction, float_pair, legacy_reduction
from gradflow.ops.losses import _reduced, _target_like
from gradflow.tensor import Tensor


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
