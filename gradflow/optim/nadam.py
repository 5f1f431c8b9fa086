"""NAdam: Adam with Nesterov momentum and a momentum schedule."""

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
    g = decayed_grad(p, g, t, xp, weight_decay, maximize, decoupled, lr)
    lerp_toward(exp_avg, g, 1 - beta1, s, xp)
    average_square(exp_avg_sq, g, beta2, s, xp)
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
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        keys = ("eps", "betas", "weight_decay", "momentum_decay")
        check_hyperparameters(self._name, group, "2e-3", *keys)

    def _step_group(self, group: dict[str, Any]) -> None:
        keys = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize")
        hyper = hyperparameters(group, *keys)
        lr, beta1, beta2 = hyper[:3]
        momentum_decay = float(group["momentum_decay"])
        for _, a, g, state, step in self._params_to_step(group):
            state.setdefault("mu_product", 1.0)
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
            update_in_chunks(nadam_update, (a, g, m, v), self._scratch, *hyper, *scales)
