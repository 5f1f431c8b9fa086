"""NAdam: Adam with Nesterov momentum and a momentum schedule."""

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


def nadam_update(
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
    bias_correction2: float,
    grad_scale: float,
    avg_scale: float,
) -> None:
    """One NAdam step on arrays, in place on p and the state; s and t are scratch.

    PyTorch's rule: g = ±g; decoupled: p *= 1 - lr wd, else g += wd p; m = lerp(m, g,
    1 - beta1); v = beta2 v + (1 - beta2) g^2; denom = sqrt(v / bc2) + eps;
    p += grad_scale g / denom + avg_scale m / denom, with grad_scale = -lr (1 - mu) /
    (1 - mu_product) and avg_scale = -lr mu_next / (1 - mu_product mu_next).
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
    xp.divide(exp_avg_sq, bias_correction2, out=s)
    xp.sqrt(s, out=s)
    s += eps
    xp.divide(g, s, out=t)  # g (possibly in t) is not needed after this
    t *= grad_scale
    p += t
    xp.divide(exp_avg, s, out=t)
    t *= avg_scale
    p += t


class NAdam(Optimizer):
    """NAdam (Dozat), as ``torch.optim.NAdam``; ``decoupled_weight_decay=True`` is NAdamW.

    State per parameter: ``step`` (an int), ``mu_product`` (a float), ``exp_avg`` and
    ``exp_avg_sq``. ``foreach`` and ``capturable`` are accepted and change nothing;
    ``differentiable=True`` is refused.

    Example::

        opt = gradflow.optim.NAdam(model.parameters(), lr=2e-3)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
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
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        name = self._name
        check_number(name, "learning rate lr", group["lr"], 0, "it must be >= 0, e.g. lr=2e-3")
        check_nonnegative(name, group, "eps")
        check_betas(name, group["betas"])
        check_nonnegative(name, group, "weight_decay")
        check_number(
            name,
            "momentum_decay",
            group["momentum_decay"],
            0,
            "it must be >= 0, e.g. momentum_decay=4e-3",
        )
        check_flags(name, group)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        momentum_decay = float(group["momentum_decay"])
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
            if not state:
                state["step"] = 0
                state["mu_product"] = 1.0
            step = state["step"] = state["step"] + 1
            m = state_array(state, "exp_avg", a)
            v = state_array(state, "exp_avg_sq", a)
            # The momentum schedule mu_t = beta1 (1 - 0.96^(t psi) / 2), and its running product.
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
            mu_product = state["mu_product"] = state["mu_product"] * mu
            scales = (
                1 - beta2**step,
                -lr * (1.0 - mu) / (1.0 - mu_product),
                -lr * mu_next / (1.0 - mu_product * mu_next),
            )
            p._version += 1
            update_in_chunks(
                nadam_update, (a, g, m, v), self._scratch, get_array_module(a), *hyper, *scales
            )
