"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

from typing import Any

from gradflow.kernels.optim import adam_step_multi
from gradflow.optim._arrays import (
    KernelBatches,
    average_square,
    decayed_grad,
    lerp_toward,
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


def adam_update(
    p: Any,
    g: Any,
    m: Any,
    v: Any,
    v_max: Any,
    s: Any,
    t: Any,
    xp: Any,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
    decoupled: bool,
    maximize: bool,
    scaled_step: float,
    scaled_eps: float,
) -> None:
    """One Adam step on arrays, in place on p, m, v (and v_max); s and t are scratch.

    PyTorch's rule: g = ±g; decoupled: p *= 1 - lr wd, else g += wd p; m = lerp(m, g, 1 - beta1);
    v = beta2 v + (1 - beta2) g^2; v_max = max(v_max, v) with amsgrad;
    p -= lr / (1 - beta1^step) m / (sqrt(v) / c + eps), c = sqrt(1 - beta2^step).
    The last line runs as p -= scaled_step m / (sqrt(v) + scaled_eps), with scaled_step =
    c lr / (1 - beta1^step) and scaled_eps = c eps: the same value in one pass fewer.
    """
    g = decayed_grad(p, g, t, xp, weight_decay, maximize, decoupled, lr)
    lerp_toward(m, g, 1 - beta1, s, xp)
    average_square(v, g, beta2, s, xp)
    if v_max is not None:
        v = xp.maximum(v_max, v, out=v_max)
    xp.sqrt(v, out=s)
    s += scaled_eps
    xp.divide(m, s, out=s)
    s *= scaled_step
    p -= s


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``; ``decoupled_weight_decay=True`` is AdamW.

    State per parameter: ``step`` (an int), ``exp_avg``, ``exp_avg_sq`` and, with amsgrad,
    ``max_exp_avg_sq``. On cuda (and under ``gradflow.testing.emulation.route_kernels()``) a
    group's float32/float64 parameters are updated by one fused multi-tensor kernel launch per
    dtype, device and step count; ``amsgrad``, ``maximize`` and other dtypes take the array
    path.

    Example::

        opt = gradflow.optim.Adam(model.parameters(), lr=1e-3)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        check_hyperparameters(self._name, group, "1e-3", "eps", "betas", "weight_decay")

    def _step_group(self, group: dict[str, Any]) -> None:
        keys = ("lr", "betas", "weight_decay", "decoupled_weight_decay", "maximize")
        hyper = hyperparameters(group, *keys)
        lr, beta1, beta2, weight_decay, decoupled, maximize = hyper
        eps, amsgrad = hyperparameters(group, "eps", "amsgrad")
        scratch = self._scratch
        batches = None
        corrections: dict[int, tuple[float, float]] = {}
        for _, a, g, state, step in self._params_to_step(group):
            m = state_array(state, "exp_avg", a)
            v = state_array(state, "exp_avg_sq", a)
            if not (amsgrad or maximize) and takes_kernel_route(a):
                if batches is None:
                    batches = KernelBatches()
                batches.add(step, a, g, m, v)
                continue
            scaled = corrections.get(step)
            if scaled is None:
                root = (1 - beta2**step) ** 0.5  # the bias correction of sqrt(v)
                scaled = corrections[step] = (root * lr / (1 - beta1**step), root * eps)
            v_max = state_array(state, "max_exp_avg_sq", a) if amsgrad else None
            update_in_chunks(adam_update, (a, g, m, v, v_max), scratch, *hyper, *scaled)
        if batches is not None:
            with self._kernel_launches() as launches:
                for step, (params, grads, ms, vs) in batches.items():
                    adam_step_multi(
                        params,
                        grads,
                        ms,
                        vs,
                        lr=lr,
                        step=step,
                        beta1=beta1,
                        beta2=beta2,
                        eps=eps,
                        weight_decay=weight_decay,
                        decoupled=decoupled,
                        launches=launches,
                    )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    The decay multiplies the parameter by ``1 - lr * weight_decay`` before the Adam update,
    instead of adding ``weight_decay * p`` to the gradient; the default is 1e-2.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )
