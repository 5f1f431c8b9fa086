"""gumbel_softmax: samples of the Gumbel-softmax (concrete) distribution, PyTorch's formula.

A composite: Gumbel noise -log(Exp(1)) drawn from gradflow's global generator (so
gradflow.manual_seed makes it repeatable), a softmax, and for ``hard=True`` the one-hot of the
argmax with the soft sample's gradient (straight-through: ``y_hard - y_soft.detach() + y_soft``).
"""

from __future__ import annotations

import warnings

from gradflow.ops._util import float_input, normalize_dim
from gradflow.tensor import Tensor


def gumbel_softmax(
    logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1
) -> Tensor:
    """softmax((logits + g) / tau) along `dim`, g ~ Gumbel(0, 1) i.i.d.; with hard=True the
    one-hot of its argmax in the forward and the soft sample's gradient in the backward.
    ``eps`` is deprecated and unused, as in PyTorch (a warning when it is changed).

    >>> import gradflow
    >>> y = gumbel_softmax(gradflow.zeros(2, 5), tau=0.5, hard=True)
    >>> y.sum(dim=-1).tolist()
    [1.0, 1.0]
    """
    from gradflow.creation import empty, zeros_like
    from gradflow.ops.softmax import softmax

    op = "gumbel_softmax"
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    x = float_input(logits, op, "logits")
    if x.ndim:
        normalize_dim(dim, x.ndim, op)
    elif dim not in (0, -1):
        normalize_dim(dim, 1, op)
    if x.numel() == 0:  # nothing to draw
        return softmax(x / tau, dim)
    gumbels = -empty(tuple(x.shape), dtype=x.dtype, device=x.device).exponential_().log()
    y_soft = softmax((x + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.detach().argmax(dim, keepdim=True) if x.ndim else None
    if index is None:  # a 0-d sample: its only class
        y_hard = zeros_like(x) + 1.0
    else:
        y_hard = zeros_like(x).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft
