"""Adagrad: steps scaled by the root of the running sum of squared gradients."""

from __future__ import annotations

from typing import Any

from gradflow.backend import get_array_module
from gradflow.optim._arrays import decayed_grad, update_in_chunks
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_hyperparameters,
    defaults_from,
    hyperparameters,
)
from gradflow.tensor import Tensor


def adagrad_update(
    p: Any,
    g: Any,
    state_sum: Any,
    s: Any,
    t: Any,
    xp: Any,
    clr: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adagrad step on arrays, in place on p and the sum; s and t are scratch.

    PyTorch's rule: g = ±g + wd p; sum += g^2; p -= clr g / (sqrt(sum) + eps), where
    clr = lr / (1 + (step - 1) lr_decay).
    """
    g = decayed_grad(p, g, t, xp, weight_decay, maximize)
    xp.multiply(g, g, out=s)
    state_sum += s
    xp.sqrt(state_sum, out=s)
    s += eps
    xp.divide(g, s, out=s)
    s *= clr
    p -= s


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as ``torch.optim.Adagrad``.

    State per parameter: ``step`` (an int) and ``sum``, created for every parameter by the
    constructor (filled with ``initial_accumulator_value``), as PyTorch does. ``foreach`` and
    ``fused`` are accepted and change nothing; ``differentiable=True`` is refused.

    Example::

        opt = gradflow.optim.Adagrad(model.parameters(), lr=1e-2)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, defaults_from(locals()))
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p].update(step=0, sum=_filled_like(p.array, initial_accumulator_value))

    def _check_group(self, group: dict[str, Any]) -> None:
        keys = ("lr_decay", "weight_decay", "eps", "initial_accumulator_value")
        check_hyperparameters(self._name, group, "1e-2", *keys)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay = hyperparameters(group, "lr", "lr_decay")
        hyper = hyperparameters(group, "eps", "weight_decay", "maximize")
        for _, a, g, state, step in self._params_to_step(group):
            if "sum" not in state:  # a group added later: PyTorch fills it from the defaults
                state["sum"] = _filled_like(a, self.defaults["initial_accumulator_value"])
            clr = lr / (1 + (step - 1) * lr_decay)
            arrays = (a, g, state["sum"].array)
            update_in_chunks(adagrad_update, arrays, self._scratch, clr, *hyper)


def _filled_like(a: Any, value: float) -> Tensor:
    """A state tensor shaped like ``a``, every element ``value``."""
    return Tensor._wrap(get_array_module(a).full(a.shape, value, dtype=a.dtype))
