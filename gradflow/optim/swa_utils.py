"""Weight averaging, as torch.optim.swa_utils: AveragedModel (SWA or EMA of a model's
weights), SWALR (the SWA learning rate) and update_bn (batch-norm statistics for the averaged
weights).

Unlike the rest of gradflow.optim this module builds on gradflow.nn (AveragedModel is a
Module), so ``gradflow.optim`` imports it on first use of ``gradflow.optim.swa_utils``.

Example, an exponential moving average of the weights::

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    for x, y in data:
        ...; opt.step(); ema.update_parameters(model)
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

from gradflow import dtypes
from gradflow.autograd import no_grad
from gradflow.backend import get_array_module
from gradflow.creation import tensor as _tensor
from gradflow.nn.module import Module
from gradflow.nn.normalization import _BatchNorm, _InstanceNorm
from gradflow.optim.lr_scheduler import LRScheduler, _format_param
from gradflow.optim.optimizer import Optimizer
from gradflow.tensor import Tensor

__all__ = [
    "SWALR",
    "AveragedModel",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]


def _lerp_(averaged: Tensor, current: Tensor, weight: float) -> None:
    """averaged = lerp(averaged, current, weight) in place, rounded as PyTorch's lerp_."""
    a, b = averaged.array, current.array
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1 - weight)
    averaged._version += 1


def _check_decay(decay: float) -> None:
    if not 0.0 <= decay <= 1.0:
        raise ValueError(
            f"Invalid decay value {decay} provided. Please provide a value in [0,1] range."
        )


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[..., None]:
    """An in-place exponential moving average for AveragedModel's ``multi_avg_fn``:
    ema = decay ema + (1 - decay) param, over lists of tensors."""
    _check_decay(decay)

    def ema_update(ema_params: list[Tensor], current_params: list[Tensor], _: Any) -> None:
        for ema, current in zip(ema_params, current_params):
            if ema.dtype.kind in "fc":
                _lerp_(ema, current, 1 - decay)
            else:
                ema.copy_(ema * decay + current * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> Callable[..., None]:
    """An in-place running mean for AveragedModel's ``multi_avg_fn`` (the SWA average)."""

    def swa_update(averaged: list[Tensor], current: list[Tensor], num_averaged: Any) -> None:
        # With a tensor count (AveragedModel's n_averaged) the weight is a tensor in the
        # default dtype, as PyTorch's (float32 rounds 1/3).
        weight = 1 / (num_averaged + 1)
        weight = float(weight.item() if isinstance(weight, Tensor) else weight)
        for avg, cur in zip(averaged, current):
            _lerp_(avg, cur, weight)

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[..., Tensor]:
    """An exponential moving average for AveragedModel's ``avg_fn``, one tensor at a time."""
    _check_decay(decay)

    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable[..., Tensor]:
    """A running mean for AveragedModel's ``avg_fn``, one tensor at a time."""

    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        with no_grad():
            return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose weights are an average of the model's over training:
    the running mean (SWA) by default, or what ``avg_fn`` (per tensor) or ``multi_avg_fn``
    (over lists, in place) computes, e.g. ``get_ema_multi_avg_fn(0.999)``.

    ``update_parameters(model)`` folds in the model's current weights (the first call copies
    them); ``use_buffers=True`` averages the buffers too, else they are copied. Calling the
    AveragedModel runs the averaged copy.
    """

    def __init__(
        self,
        model: Module,
        device: Any = None,
        avg_fn: Callable[[Tensor, Tensor, Any], Tensor] | None = None,
        multi_avg_fn: Callable[[list[Tensor], list[Tensor], Any], None] | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", _tensor(0, dtype=dtypes.long, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current parameters (and buffers, with use_buffers) into the average."""
        with no_grad():
            self._update(model)

    def _update(self, model: Module) -> None:
        if self.use_buffers:
            ours = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            ours, theirs = list(self.parameters()), list(model.parameters())
        n = int(self.n_averaged.item())
        pairs = []
        for p_avg, p_model in zip(ours, theirs):
            current = p_model.detach().to(p_avg.device)
            pairs.append((p_avg.detach(), current))
            if n == 0:
                p_avg.detach().copy_(current)
        if n > 0:
            if self.multi_avg_fn is not None:
                self.multi_avg_fn([a for a, _ in pairs], [c for _, c in pairs], self.n_averaged)
            elif self.avg_fn is not None:
                for p_avg, current in pairs:
                    p_avg.copy_(self.avg_fn(p_avg, current, self.n_averaged))
            else:
                for p_avg, current in pairs:  # PyTorch's CPU formula: a + (c - a) / (n + 1)
                    a = p_avg.array
                    xp = get_array_module(a)
                    step = xp.subtract(current.array, a) / (n + 1)
                    if a.dtype.kind in "fc":
                        a += step
                    else:  # an integer buffer: the sum truncated, as PyTorch's copy_ does
                        a[...] = (a + step).astype(a.dtype)
                    p_avg._version += 1
        if not self.use_buffers:
            for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                b_avg.detach().copy_(b_model.detach().to(b_avg.device))
        self.n_averaged.array += 1
        self.n_averaged._version += 1


def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recompute the running statistics of ``model``'s batch-norm layers with one pass over
    ``loader`` (batches, or (input, ...) tuples whose first item is the input), as a cumulative
    average; the model's training mode is restored after."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm) and not isinstance(module, _InstanceNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for batch in loader:
            if isinstance(batch, list | tuple):
                batch = batch[0]
            if device is not None:
                batch = batch.to(device)
            model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's learning rate to ``swa_lr`` over ``anneal_epochs`` epochs (cosine
    or linear), then hold it: the schedule of stochastic weight averaging."""

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float | list[float],
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        for lr, group in zip(_format_param("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                "SWALR: anneal_strategy must be one of 'cos' or 'linear', instead got "
                f"{anneal_strategy!r}"
            )
        self._anneal_strategy = anneal_strategy
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(
                f"SWALR: anneal_epochs must be equal or greater than 0, got {anneal_epochs!r}"
            )
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        """The fraction of the way to swa_lr at fraction ``t`` of the annealing."""
        if self._anneal_strategy == "cos":
            return (1 - math.cos(math.pi * t)) / 2
        return t

    def get_lr(self) -> list[float]:
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [
            group["swa_lr"] if prev_alpha == 1 else
            (group["lr"] - prev_alpha * group["swa_lr"]) / (1 - prev_alpha)
            for group in self.optimizer.param_groups
        ]  # fmt: skip
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [
            group["swa_lr"] * alpha + lr * (1 - alpha)
            for group, lr in zip(self.optimizer.param_groups, prev_lrs)
        ]
