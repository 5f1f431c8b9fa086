"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

from typing import Any

from gradflow.backend import get_array_module
from gradflow.kernels.optim import adam_step_multi
from gradflow.optim._arrays import KernelBatches, takes_kernel_route, update_in_chunks
from gradflow.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_betas,
    check_flags,
    check_nonnegative,
    check_number,
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
    if maximize:
        g = xp.negative(g, out=t)
    if weight_decay:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            xp.multiply(p, weight_decay, out=s)
            g = xp.add(g, s, out=t)
    _lerp_toward(m, g, 1 - beta1, s, xp)
    v *= beta2
    xp.multiply(g, g, out=s)
    s *= 1 - beta2
    v += s
    if v_max is not None:
        v = xp.maximum(v_max, v, out=v_max)
    xp.sqrt(v, out=s)
    s += scaled_eps
    xp.divide(m, s, out=s)
    s *= scaled_step
    p -= s


def _lerp_toward(m: Any, g: Any, weight: float, s: Any, xp: Any) -> None:
    """m = lerp(m, g, weight) in place (s is scratch), as PyTorch's lerp_: m + w (g - m) for
    w < 0.5, else g - (g - m)(1 - w), so that w = 1 (beta1 = 0) gives exactly g. With
    m + 1 (g - m) a tiny g after a large m would cancel to 0 (g - m rounds to -m)."""
    if abs(weight) < 0.5:
        xp.subtract(g, m, out=s)
        s *= weight
        m += s
    else:
        xp.subtract(m, g, out=s)  # g - (g - m)(1 - w) = g + (m - g)(1 - w), bit for bit
        s *= 1 - weight
        xp.add(g, s, out=m)


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
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
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
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        amsgrad = bool(group["amsgrad"])
        maximize = bool(group["maximize"])
        decoupled = bool(group["decoupled_weight_decay"])
        hyper = (lr, beta1, beta2, weight_decay, decoupled, maximize)
        state_of = self.state
        scratch = self._scratch
        batches = None
        corrections: dict[int, tuple[float, float]] = {}
        for p, a, g in self._params_with_grads(group):
            state = state_of[p]
            step = state["step"] = state.get("step", 0) + 1
            m = state_array(state, "exp_avg", a)
            v = state_array(state, "exp_avg_sq", a)
            p._version += 1
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
            update_in_chunks(
                adam_update, (a, g, m, v, v_max), scratch, get_array_module(a), *hyper, *scaled
            )
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
