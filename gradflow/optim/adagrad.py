"""Adagrad: steps scaled by the root of the running sum of squared gradients."""

from __future__ import annotations

from typing import Any

from gradflow.backend import get_array_module
from gradflow.optim._arrays import decayed_grad, update_in_chunks
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_flags,
    check_nonnegative,
    check_number,
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
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group["initial_accumulator_value"])

    def _init_state(self, p: Tensor, value: float) -> dict[str, Any]:
        a = p.array
        state = self.state[p]
        state["step"] = 0
        state["sum"] = Tensor._wrap(get_array_module(a).full(a.shape, value, dtype=a.dtype))
        return state

    def _check_group(self, group: dict[str, Any]) -> None:
        name = self._name
        check_number(name, "learning rate lr", group["lr"], 0, "it must be >= 0, e.g. lr=1e-2")
        check_number(name, "lr_decay", group["lr_decay"], 0, "it must be >= 0 (0 turns it off)")
        check_nonnegative(name, group, "weight_decay", "eps")
        check_number(
            name,
            "initial_accumulator_value",
            group["initial_accumulator_value"],
            0,
            "it must be >= 0 (default 0)",
        )
        check_flags(name, group)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        lr_decay = float(group["lr_decay"])
        hyper = (float(group["eps"]), float(group["weight_decay"]), bool(group["maximize"]))
        for p, a, g in self._params_with_grads(group):
            state = self.state[p]
            if not state:  # a group added later: PyTorch fills it from the defaults
                state = self._init_state(p, self.defaults["initial_accumulator_value"])
            step = state["step"] = state["step"] + 1
            clr = lr / (1 + (step - 1) * lr_decay)
            p._version += 1
            arrays = (a, g, state["sum"].array)
            update_in_chunks(
                adagrad_update, arrays, self._scratch, get_array_module(a), clr, *hyper
            )
