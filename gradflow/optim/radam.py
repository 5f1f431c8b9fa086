"""RAdam: Adam with its adaptive step rectified while the variance estimate is young."""

from __future__ import annotations

from typing import Any

from gradflow.backend import get_array_module
from gradflow.optim._arrays import decayed_grad, update_in_chunks
from gradflow.optim.adam import _lerp_toward
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_betas,
    check_flags,
    check_nonnegative,
    check_number,
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
    if decoupled:
        g = decayed_grad(p, g, t, xp, 0.0, maximize)
        if weight_decay:
            p *= 1 - lr * weight_decay
    else:
        g = decayed_grad(p, g, t, xp, weight_decay, maximize)
    _lerp_toward(exp_avg, g, 1 - beta1, s, xp)
    exp_avg_sq *= beta2
    xp.multiply(g, g, out=s)
    s *= 1 - beta2
    exp_avg_sq += s
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
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        name = self._name
        check_number(name, "learning rate lr", group["lr"], 0, "it must be >= 0, e.g. lr=1e-3")
        check_nonnegative(name, group, "eps")
        check_betas(name, group["betas"])
        check_nonnegative(name, group, "weight_decay")
        check_flags(name, group)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        hyper = (
            lr,
            beta1,
            beta2,
            float(group["eps"]),
            float(group["weight_decay"]),
            bool(group["decoupled_weight_decay"]),
            bool(group["maximize"]),
        )
        for p, a, g in self._params_with_grads(group):
            state = self.state[p]
            step = state["step"] = state.get("step", 0) + 1
            m = state_array(state, "exp_avg", a)
            v = state_array(state, "exp_avg_sq", a)
            scale = radam_scale(lr, beta1, beta2, step)
            p._version += 1
            update_in_chunks(
                radam_update, (a, g, m, v), self._scratch, get_array_module(a), *hyper, *scale
            )
