"""Adadelta: steps scaled by running averages of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any

from gradflow.optim._arrays import average_square, decayed_grad, update_in_chunks
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_hyperparameters,
    defaults_from,
    hyperparameters,
    state_array,
)


def adadelta_update(
    p: Any,
    g: Any,
    square_avg: Any,
    acc_delta: Any,
    s: Any,
    t: Any,
    xp: Any,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adadelta step on arrays, in place on p and the state; s and t are scratch.

    PyTorch's rule: g = ±g + wd p; sq = rho sq + (1 - rho) g^2;
    delta = sqrt(acc + eps) / sqrt(sq + eps) g; acc = rho acc + (1 - rho) delta^2;
    p -= lr delta.
    """
    g = decayed_grad(p, g, t, xp, weight_decay, maximize)
    average_square(square_avg, g, rho, s, xp)
    xp.add(square_avg, eps, out=s)
    xp.sqrt(s, out=s)
    xp.divide(g, s, out=s)  # g / std; g (possibly in t) is not needed after this
    xp.add(acc_delta, eps, out=t)
    xp.sqrt(t, out=t)
    t *= s  # delta
    average_square(acc_delta, t, rho, s, xp)
    t *= lr
    p -= t


class Adadelta(Optimizer):
    """Adadelta (Zeiler), as ``torch.optim.Adadelta``.

    State per parameter: ``step`` (an int), ``square_avg`` and ``acc_delta``. ``foreach`` and
    ``capturable`` are accepted and change nothing; ``differentiable=True`` is refused.

    Example::

        opt = gradflow.optim.Adadelta(model.parameters(), lr=1.0, rho=0.9)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        name = self._name
        check_hyperparameters(name, group, "1.0", "rho", "eps", "weight_decay")
        if group["rho"] > 1:
            raise ValueError(
                f"{name}: invalid rho={group['rho']!r}; it must be in [0, 1], e.g. rho=0.9"
            )

    def _step_group(self, group: dict[str, Any]) -> None:
        hyper = hyperparameters(group, "lr", "rho", "eps", "weight_decay", "maximize")
        for _, a, g, state, _ in self._params_to_step(group):
            arrays = (a, g, state_array(state, "square_avg", a), state_array(state, "acc_delta", a))
            update_in_chunks(adadelta_update, arrays, self._scratch, *hyper)
