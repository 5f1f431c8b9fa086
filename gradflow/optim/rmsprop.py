"""RMSprop: steps scaled by a running root mean square of the gradients."""

from __future__ import annotations

from typing import Any

from gradflow.kernels.optim import rmsprop_step_multi
from gradflow.optim._arrays import (
    KernelBatches,
    average_square,
    decayed_grad,
    takes_kernel_route,
    update_in_chunks,
)
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_hyperparameters,
    defaults_from,
    hyperparameters,
    state_array,
)


def rmsprop_update(
    p: Any,
    g: Any,
    square_avg: Any,
    grad_avg: Any,
    buf: Any,
    s: Any,
    t: Any,
    xp: Any,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    maximize: bool,
) -> None:
    """One RMSprop step on arrays, in place on p and the state; s and t are scratch.

    PyTorch's rule: g = ±g + wd p; sq = alpha sq + (1 - alpha) g^2; centered (grad_avg given):
    ga += (1 - alpha)(g - ga), avg = sqrt(sq - ga^2), else avg = sqrt(sq); avg += eps;
    with momentum (buf given): buf = momentum buf + g / avg, p -= lr buf; else p -= lr g / avg.
    """
    g = decayed_grad(p, g, t, xp, weight_decay, maximize)
    average_square(square_avg, g, alpha, s, xp)
    if grad_avg is not None:
        xp.subtract(g, grad_avg, out=s)
        s *= 1 - alpha
        grad_avg += s
        xp.multiply(grad_avg, grad_avg, out=s)
        xp.subtract(square_avg, s, out=s)
        xp.sqrt(s, out=s)
    else:
        xp.sqrt(square_avg, out=s)
    s += eps
    xp.divide(g, s, out=s)
    if buf is not None:
        buf *= momentum
        buf += s
        xp.multiply(buf, lr, out=s)
    else:
        s *= lr
    p -= s


class RMSprop(Optimizer):
    """RMSprop (Hinton), as ``torch.optim.RMSprop``, optionally centered and with momentum.

    State per parameter: ``step`` (an int), ``square_avg``, and ``momentum_buffer`` (momentum
    > 0) and ``grad_avg`` (centered). On cuda (and under
    ``gradflow.testing.emulation.route_kernels()``) a group's float32/float64 parameters are
    updated by one fused multi-tensor kernel launch per dtype and device; other dtypes take
    the array path.

    Example::

        opt = gradflow.optim.RMSprop(model.parameters(), lr=1e-2, alpha=0.99)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        keys = ("eps", "momentum", "weight_decay", "alpha")
        check_hyperparameters(self._name, group, "1e-2", *keys)

    def _step_group(self, group: dict[str, Any]) -> None:
        keys = ("lr", "alpha", "eps", "weight_decay", "momentum", "maximize")
        hyper = hyperparameters(group, *keys)
        lr, alpha, eps, weight_decay, momentum, maximize = hyper
        centered = bool(group["centered"])
        scratch = self._scratch
        batches = None
        for _, a, g, state, _ in self._params_to_step(group):
            square_avg = state_array(state, "square_avg", a)
            grad_avg = state_array(state, "grad_avg", a) if centered else None
            buf = state_array(state, "momentum_buffer", a) if momentum > 0 else None
            if takes_kernel_route(a):
                if batches is None:
                    batches = KernelBatches()
                optional = [x for x in (grad_avg, buf) if x is not None]
                batches.add(None, a, g, square_avg, *optional)
                continue
            arrays = (a, g, square_avg, grad_avg, buf)
            update_in_chunks(rmsprop_update, arrays, scratch, *hyper)
        if batches is not None:
            with self._kernel_launches() as launches:
                for _, (params, grads, square_avgs, *optional) in batches.items():
                    grad_avgs = optional.pop(0) if centered else None
                    bufs = optional.pop(0) if momentum > 0 else None
                    rmsprop_step_multi(
                        params,
                        grads,
                        square_avgs,
                        grad_avgs,
                        bufs,
                        lr=lr,
                        alpha=alpha,
                        eps=eps,
                        weight_decay=weight_decay,
                        momentum=momentum,
                        maximize=maximize,
                        launches=launches,
                    )
