"""Adafactor: Adam-like steps whose second moment of a matrix is kept factored (row and column
means), PyTorch's algorithm (torch.optim.Adafactor)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy

from gradflow.backend import get_array_module
from gradflow.optim.optimizer import Optimizer, ParamsT, check_number, defaults_from
from gradflow.tensor import Tensor


def _lerp_(start: Any, end: Any, weight: float) -> None:
    """start += weight (end - start) in place, PyTorch's lerp (exact at weight 1); `end` is
    scratch."""
    xp = get_array_module(start)
    if weight < 0.5:
        end -= start
        end *= weight
        start += end
    else:  # end - (end - start) (1 - weight)
        xp.subtract(end, start, out=start)
        start *= 1 - weight
        xp.subtract(end, start, out=start)


def adafactor_update(
    p: Any,
    g: Any,
    state: dict,
    step: int,
    lr: float,
    beta2_decay: float,
    eps1: float | None,
    eps2: float,
    d: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adafactor step on arrays, in place on p and the state's arrays.

    PyTorch's rule: beta = step ** beta2_decay (the weight of the new squares), rho =
    min(lr, 1 / sqrt(step)), alpha = max(eps2, rms(p)) rho; p *= 1 - lr wd; for a matrix
    (the last two dims) row and column means of g^2 are averaged in, v = row col^T /
    mean(row) (the mean at least eps1); for a vector v averages g^2 itself; u = g / sqrt(max(v,
    eps1^2)); p -= alpha / max(1, rms(u) / d) u.
    """
    xp = get_array_module(p)
    dtype = p.dtype.type
    if eps1 is None:
        eps1 = float(numpy.finfo(p.dtype).eps)
    g = -g if maximize else g
    beta = step**beta2_decay
    rho = min(lr, 1 / math.sqrt(step))
    size = p.size
    rms = float(xp.sqrt(xp.vdot(p.ravel(), p.ravel()))) / math.sqrt(size) if size else 0.0
    alpha = max(eps2, rms) * rho
    if weight_decay != 0:
        p *= dtype(1 - lr * weight_decay)
    if g.ndim > 1:
        row_var, col_var = state["row_var"].array, state["col_var"].array
        square = g * g
        row_mean = square.sum(axis=-1, keepdims=True)
        row_mean /= dtype(g.shape[-1])
        col_mean = square.sum(axis=-2, keepdims=True)
        col_mean /= dtype(g.shape[-2])
        _lerp_(row_var, row_mean, beta)
        _lerp_(col_var, col_mean, beta)
        estimate = xp.matmul(row_var, col_var)
        scale = row_var.mean(axis=-2, keepdims=True)
        xp.maximum(scale, dtype(eps1), out=scale)
        estimate /= scale
    else:
        variance = state["variance"].array
        _lerp_(variance, g * g, beta)
        estimate = variance.copy()
    xp.maximum(estimate, dtype(eps1 * eps1), out=estimate)
    xp.sqrt(estimate, out=estimate)
    xp.divide(1, estimate, out=estimate)  # rsqrt, then times g: PyTorch's order
    update = xp.multiply(estimate, g, out=estimate)
    norm = float(xp.sqrt(xp.vdot(update.ravel(), update.ravel()))) if size else 0.0
    denom = max(1.0, norm / (math.sqrt(max(size, 1)) * d))
    update *= dtype(alpha / denom)
    p -= update


class Adafactor(Optimizer):
    """Adafactor (Shazeer and Stern), as ``torch.optim.Adafactor``:
    ``Adafactor(params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
    weight_decay=0.0, *, foreach=None, maximize=False)``.

    State per parameter: ``step`` (an int) and, for a parameter of 2 or more dims,
    ``row_var`` (its shape with the last dim 1) and ``col_var`` (the second-last dim 1), else
    ``variance``. eps[0] None means the dtype's machine epsilon. ``foreach`` is accepted and
    changes nothing.

    Example::

        opt = gradflow.optim.Adafactor(model.parameters(), lr=1e-2)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        name = self._name
        check_number(name, "learning rate lr", group["lr"], 0, "it must be >= 0, e.g. lr=1e-2")
        decay = group["beta2_decay"]
        if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not decay <= 0:
            raise ValueError(f"{name}: beta2_decay should be <= 0 but is: {decay!r}")
        eps = group["eps"]
        if not isinstance(eps, tuple | list) or len(eps) != 2:
            raise ValueError(f"{name}: eps must be a pair (eps1, eps2), e.g. eps=(None, 1e-3)")
        if eps[0] is not None:
            check_number(name, "epsilon1 eps[0]", eps[0], 0, "it must be >= 0 or None")
        check_number(name, "epsilon2 eps[1]", eps[1], 0, "it must be >= 0, e.g. 1e-3")
        check_number(name, "clipping threshold d", group["d"], 1, "it must be >= 1")
        check_number(name, "weight_decay", group["weight_decay"], 0, "it must be >= 0")

    def _step_group(self, group: dict[str, Any]) -> None:
        eps1, eps2 = group["eps"]
        hyper = (
            float(group["lr"]),
            float(group["beta2_decay"]),
            None if eps1 is None else float(eps1),
            float(eps2),
            float(group["d"]),
            float(group["weight_decay"]),
            bool(group["maximize"]),
        )
        for _, a, g, state, step in self._params_to_step(group):
            xp = get_array_module(a)
            if g.ndim > 1 and state.get("row_var") is None:
                state["row_var"] = Tensor._wrap(xp.zeros((*a.shape[:-1], 1), a.dtype))
                state["col_var"] = Tensor._wrap(xp.zeros((*a.shape[:-2], 1, a.shape[-1]), a.dtype))
            elif g.ndim <= 1 and state.get("variance") is None:
                state["variance"] = Tensor._wrap(xp.zeros(a.shape, a.dtype))
            adafactor_update(a, g, state, step, *hyper)
