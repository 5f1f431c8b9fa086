"""ASGD: averaged stochastic gradient descent, keeping a running average of the iterates."""

from __future__ import annotations

from typing import Any

from gradflow.optim._arrays import decayed_grad, update_in_chunks
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_hyperparameters,
    defaults_from,
    hyperparameters,
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
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        check_hyperparameters(self._name, group, "1e-2", "weight_decay")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, alpha, t0 = hyperparameters(group, "lr", "alpha", "t0")
        hyper = hyperparameters(group, "lambd", "weight_decay", "maximize")
        lambd = hyper[0]
        for _, a, g, state, step in self._params_to_step(group):
            if "eta" not in state:
                state.update(eta=lr, mu=1.0)
            ax = state_array(state, "ax", a)
            eta, mu = float(state["eta"]), float(state["mu"])
            update_in_chunks(asgd_update, (a, g, ax), self._scratch, *hyper, eta, mu)
            # The next step's size and averaging weight.
            state["eta"] = lr / (1 + lambd * lr * step) ** alpha
            state["mu"] = 1 / max(1, step - t0)
