"""ASGD: averaged stochastic gradient descent, keeping a running average of the iterates."""

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
    state_array,
)


def asgd_update(
    p: Any,
    g: Any,
    ax: Any,
    s: Any,
    t: Any,
    xp: Any,
    lambd: float,
    weight_decay: float,
    maximize: bool,
    eta: float,
    mu: float,
) -> None:
    """One ASGD step on arrays, in place on p and ax; s and t are scratch.

    PyTorch's rule: g = ±g + wd p; p *= 1 - lambd eta; p -= eta g; ax += mu (p - ax), or
    ax = p when mu is 1.
    """
    g = decayed_grad(p, g, t, xp, weight_decay, maximize)
    p *= 1 - lambd * eta
    xp.multiply(g, eta, out=s)
    p -= s
    if mu != 1:
        xp.subtract(p, ax, out=s)
        s *= mu
        ax += s
    else:
        xp.copyto(ax, p)


class ASGD(Optimizer):
    """Averaged SGD (Polyak & Juditsky), as ``torch.optim.ASGD``.

    State per parameter: ``step`` (an int), ``eta`` (the step size) and ``mu`` (the averaging
    weight), both floats, and ``ax``, the average of the iterates after step ``t0``.
    ``foreach`` and ``capturable`` are accepted and change nothing; ``differentiable=True`` is
    refused.

    Example::

        opt = gradflow.optim.ASGD(model.parameters(), lr=1e-2, t0=100)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "lambd": lambd,
            "alpha": alpha,
            "t0": t0,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        name = self._name
        check_number(name, "learning rate lr", group["lr"], 0, "it must be >= 0, e.g. lr=1e-2")
        check_nonnegative(name, group, "weight_decay")
        check_flags(name, group)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        lambd = float(group["lambd"])
        alpha = float(group["alpha"])
        t0 = float(group["t0"])
        hyper = (lambd, float(group["weight_decay"]), bool(group["maximize"]))
        for p, a, g in self._params_with_grads(group):
            state = self.state[p]
            if not state:
                state.update(step=0, eta=lr, mu=1.0)
            ax = state_array(state, "ax", a)
            step = state["step"] = state["step"] + 1
            p._version += 1
            update_in_chunks(
                asgd_update,
                (a, g, ax),
                self._scratch,
                get_array_module(a),
                *hyper,
                float(state["eta"]),
                float(state["mu"]),
            )
            # The next step's size and averaging weight.
            state["eta"] = lr / (1 + lambd * lr * step) ** alpha
            state["mu"] = 1 / max(1, step - t0)
