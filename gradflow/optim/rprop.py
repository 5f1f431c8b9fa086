"""Rprop: resilient backpropagation, per-element step sizes steered by the gradient's sign."""

from __future__ import annotations

import numbers
from typing import Any

from gradflow.backend import get_array_module
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_flags,
    check_number,
    defaults_from,
)
from gradflow.tensor import Tensor


def rprop_update(
    p: Any,
    g: Any,
    prev: Any,
    step_size: Any,
    xp: Any,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
    maximize: bool,
) -> None:
    """One Rprop step on arrays, in place on p, prev and step_size.

    PyTorch's rule: s = sign(g * prev); step_size *= etaplus where s > 0, etaminus where
    s < 0, 1 where s == 0 (NaN stays NaN), clamped to [min, max]; g = 0 where s < 0;
    p -= sign(g) * step_size; prev = g.
    """
    dtype = step_size.dtype.type
    sign = xp.multiply(g, prev)
    if maximize:
        xp.negative(sign, out=sign)  # (-g) prev
    xp.sign(sign, out=sign)
    flipped = sign < 0
    factor = sign * dtype(0)  # 0, or NaN where the product was NaN (as torch's sign)
    factor += 1
    factor += (sign > 0) * dtype(etaplus - 1)
    factor += flipped * dtype(etaminus - 1)
    step_size *= factor
    xp.clip(step_size, dtype(step_size_min), dtype(step_size_max), out=step_size)
    if maximize:
        xp.negative(g, out=prev)
    else:
        prev[...] = g
    xp.copyto(prev, 0, where=flipped)  # a sign change: no step now, and none remembered
    xp.sign(prev, out=sign)
    sign *= step_size
    p -= sign


class Rprop(Optimizer):
    """Rprop (Riedmiller and Braun), as ``torch.optim.Rprop``.

    State per parameter: ``step`` (an int), ``prev`` (the last gradient used, zero where its
    sign flipped) and ``step_size`` (starts at ``lr``). ``foreach`` and ``capturable`` are
    accepted and change nothing; ``differentiable=True`` is refused.

    Example::

        opt = gradflow.optim.Rprop(model.parameters(), lr=0.01, etas=(0.5, 1.2))
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        name = self._name
        check_number(name, "learning rate lr", group["lr"], 0, "it must be >= 0, e.g. lr=1e-2")
        for key, example in (("etas", "etas=(0.5, 1.2)"), ("step_sizes", "step_sizes=(1e-6, 50)")):
            pair = group[key]
            if (
                not isinstance(pair, tuple | list)
                or len(pair) != 2
                or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in pair)
            ):
                raise ValueError(f"{name}: {key} must be a pair of numbers, e.g. {example}")
        etaminus, etaplus = group["etas"]
        if not 0.0 < etaminus < 1.0 < etaplus:
            raise ValueError(
                f"{name}: Invalid eta values: {etaminus}, {etaplus}; they must satisfy "
                "0 < etaminus < 1 < etaplus, e.g. etas=(0.5, 1.2)"
            )
        check_flags(name, group)

    def _step_group(self, group: dict[str, Any]) -> None:
        etaminus, etaplus = (float(v) for v in group["etas"])
        low, high = (float(v) for v in group["step_sizes"])
        maximize, lr = bool(group["maximize"]), float(group["lr"])
        for _, a, g, state, _ in self._params_to_step(group):
            xp = get_array_module(a)
            if state.get("prev") is None:
                state["prev"] = Tensor._wrap(xp.zeros(a.shape, dtype=a.dtype))
                state["step_size"] = Tensor._wrap(xp.full(a.shape, lr, dtype=a.dtype))
            prev, step_size = state["prev"].array, state["step_size"].array
            rprop_update(a, g, prev, step_size, xp, etaminus, etaplus, low, high, maximize)
