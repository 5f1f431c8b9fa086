"""RAdam: Adam with its adaptive step rectified while the variance estimate is young."""

from __future__ import annotations

from typing import Any

from gradflow.optim._arrays import average_square, decayed_grad, lerp_toward, update_in_chunks
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_hyperparameters,
    defaults_from,
    hyperparameters,
    state_array,
)


def radam_update(
    p: Any,
    g: Any,
    exp_avg: Any,
    exp_avg_sq: Any,
    s: Any,
    t: Any,
    xp: Any,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    maximize: bool,
    scale: float,
    adaptive: bool,
) -> None:
    """One RAdam step on arrays, in place on p and the state; s and t are scratch.

    PyTorch's rule: g = ±g; decoupled: p *= 1 - lr wd, else g += wd p; m = lerp(m, g,
    1 - beta1); v = beta2 v + (1 - beta2) g^2; then, when the SMA length rho_t > 5
    (``adaptive``), p -= scale m / (sqrt(v) + eps) with scale = lr rect sqrt(bc2) / bc1,
    else p -= scale m with scale = lr / bc1.
    """
    g = decayed_grad(p, g, t, xp, weight_decay, maximize, decoupled, lr)
    lerp_toward(exp_avg, g, 1 - beta1, s, xp)
    average_square(exp_avg_sq, g, beta2, s, xp)
    if adaptive:
        xp.sqrt(exp_avg_sq, out=s)
        s += eps
        xp.divide(exp_avg, s, out=s)
    else:
        xp.copyto(s, exp_avg)
    s *= scale
    p -= s


def radam_scale(lr: float, beta1: float, beta2: float, step: int) -> tuple[float, bool]:
    """(the step's scale, whether it is adaptive) for step ``step``: Liu et al.'s rectifier."""
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:
        rect = (
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        ) ** 0.5
        return lr * rect * bias_correction2**0.5 / bias_correction1, True
    return lr / bias_correction1, False


class RAdam(Optimizer):
    """RAdam (Liu et al.), as ``torch.optim.RAdam``; ``decoupled_weight_decay=True`` is RAdamW.

    State per parameter: ``step`` (an int), ``exp_avg`` and ``exp_avg_sq``. ``foreach`` and
    ``capturable`` are accepted and change nothing; ``differentiable=True`` is refused.

    Example::

        opt = gradflow.optim.RAdam(model.parameters(), lr=1e-3)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        check_hyperparameters(self._name, group, "1e-3", "eps", "betas", "weight_decay")

    def _step_group(self, group: dict[str, Any]) -> None:
        keys = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize")
        hyper = hyperparameters(group, *keys)
        lr, beta1, beta2 = hyper[:3]
        for _, a, g, state, step in self._params_to_step(group):
            m = state_array(state, "exp_avg", a)
            v = state_array(state, "exp_avg_sq", a)
            scale = radam_scale(lr, beta1, beta2, step)
            update_in_chunks(radam_update, (a, g, m, v), self._scratch, *hyper, *scale)
