"""SGD: stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any

from gradflow.backend import get_array_module
from gradflow.kernels.optim import sgd_step_multi
from gradflow.optim._arrays import (
    KernelBatches,
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
)
from gradflow.tensor import Tensor


def sgd_update(
    p: Any,
    g: Any,
    buf: Any,
    s: Any,
    t: Any,
    xp: Any,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first: bool,
) -> None:
    """One SGD step on arrays, in place on p (and buf); s and t are scratch. PyTorch's rule:

    d = ±g + weight_decay p; buf = d on the first step, else momentum buf + (1 - dampening) d;
    d = d + momentum buf (nesterov) or buf; p -= lr d.
    """
    d = decayed_grad(p, g, s, xp, weight_decay, maximize)
    if momentum:
        if first:
            xp.copyto(buf, d)
        else:
            buf *= momentum
            if dampening:
                buf += xp.multiply(d, 1 - dampening, out=t)
            else:
                buf += d
        if nesterov:
            xp.multiply(buf, momentum, out=t)
            t += d
            d = t
        else:
            d = buf
    xp.multiply(d, lr, out=s)
    p -= s


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    With momentum the state holds ``momentum_buffer`` per parameter. On cuda (and under
    ``gradflow.testing.emulation.route_kernels()``) a group's float32/float64 parameters are
    updated by one fused multi-tensor kernel launch per dtype and device; ``maximize`` and
    other dtypes take the array path.

    Example::

        opt = gradflow.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, defaults_from(locals()))

    def _check_group(self, group: dict[str, Any]) -> None:
        name = self._name
        check_hyperparameters(name, group, "0.01", "momentum", "dampening", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"{name}: Nesterov momentum requires a momentum and zero dampening (got "
                f"momentum={group['momentum']}, dampening={group['dampening']}); pass e.g. "
                "momentum=0.9 with dampening=0, or nesterov=False"
            )

    def _step_group(self, group: dict[str, Any]) -> None:
        keys = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
        hyper = hyperparameters(group, *keys)
        lr, momentum, dampening, weight_decay, nesterov, maximize = hyper
        state_of = self.state
        scratch = self._scratch
        batches = None
        for p, a, g in self._params_with_grads(group):
            first = False
            buf = None
            if momentum:
                state = state_of[p]
                holder = state.get("momentum_buffer")
                if holder is None:
                    first = True
                    holder = state["momentum_buffer"] = _new_buffer(a)
                buf = holder.array
            p._version += 1
            if not maximize and takes_kernel_route(a):
                if batches is None:
                    batches = KernelBatches()
                batches.add(first, a, g, *((buf,) if momentum else ()))
                continue
            update_in_chunks(sgd_update, (a, g, buf), scratch, *hyper, first)
        if batches is not None:
            with self._kernel_launches() as launches:
                for first, (params, grads, *bufs) in batches.items():
                    sgd_step_multi(
                        params,
                        grads,
                        bufs[0] if bufs else None,
                        lr=lr,
                        momentum=momentum,
                        dampening=dampening,
                        nesterov=nesterov,
                        weight_decay=weight_decay,
                        first_step=first,
                        launches=launches,
                    )


def _new_buffer(a: Any) -> Tensor:
    """An uninitialized momentum buffer shaped like ``a`` (the first step writes all of it)."""
    return Tensor._wrap(get_array_module(a).empty(a.shape, dtype=a.dtype))
