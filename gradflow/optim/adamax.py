"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import Any

from gradflow.optim._arrays import decayed_grad, lerp_toward, update_in_chunks
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_hyperparameters,
    defaults_from,
    hyperparameters,
    state_array,
)


def adamax_update(
    p: Any,
    g: Any,
    exp_avg: Any,
    exp_inf: Any,
    s: Any,
    t: Any,
    xp: Any,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
    clr: float,
) -> None:
    """One Adamax step on arrays, in place on p and the state; s and t are scratch.

    PyTorch's rule: g = ±g + wd p; m = lerp(m, g, 1 - beta1); u = max(beta2 u, |g| + eps);
    p -= clr m / u, where clr = lr / (1 - beta1^step).
    """
    g = decayed_grad(p, g, t, xp, weight_decay, maximize)
    lerp_toward(exp_avg, g, 1 - beta1, s, xp)
    exp_inf *= beta2
    xp.absolute(g, out=s)
    s += eps
    xp.maximum(exp_inf, s, out=exp_inf)
    xp.divide(exp_avg, exp_inf, out=s)
    s *= clr
    p -= s


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, section 7), as ``torch.optim.Adamax``.

    State per parameter: ``step`` (an int), ``exp_avg`` and ``exp_inf``. ``foreach`` and
    ``capturable`` are accepted and change nothing; ``differentiable=True`` is refused.

    Example::

        opt = gradflow.optim.Adamax(model.parameters(), lr=2e-3)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        check_hyperparameters(self._name, group, "2e-3", "eps", "betas", "weight_decay")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        hyper = hyperparameters(group, "betas", "eps", "weight_decay", "maximize")
        beta1 = hyper[0]
        for _, a, g, state, step in self._params_to_step(group):
            m = state_array(state, "exp_avg", a)
            u = state_array(state, "exp_inf", a)
            clr = lr / (1 - beta1**step)
            update_in_chunks(adamax_update, (a, g, m, u), self._scratch, *hyper, clr)
