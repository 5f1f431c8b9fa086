"""Learning-rate schedules shaped like torch.optim.lr_scheduler.

A scheduler rewrites ``group["lr"]`` of its optimizer's parameter groups each time ``step()``
is called (once per epoch or per iteration, after ``optimizer.step()``). As in PyTorch, the
constructor records ``initial_lr`` in every group and steps once, so ``get_last_lr()`` is the
learning rate of the first epoch; the updates are PyTorch's recursive forms (each new lr from
the group's current lr), so schedulers that share an optimizer compose the way they do there.
"""

from __future__ import annotations

import copy
import math
import numbers
import types
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from gradflow.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: ``base_lrs``, ``last_epoch``, ``step()``, ``get_last_lr()``, state dicts.

    A subclass computes the next learning rates in ``get_lr()``; ``_is_initial`` is True
    during the step the constructor takes.
    """

    _is_initial = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        _check_optimizer(self, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: param 'initial_lr' is not specified in "
                        f"param_groups[{i}] when resuming with last_epoch={last_epoch}; load "
                        "the optimizer's state dict first, or pass last_epoch=-1 for a fresh run"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """The step the constructor takes (SequentialLR repeats it when a scheduler starts)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates for the epoch ``last_epoch`` (called by ``step()``)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and write the new learning rates into the optimizer's groups.

        ``step(epoch)`` (deprecated in PyTorch, which warns as here) jumps to that epoch,
        using the schedule's closed form where it has one.
        """
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's attributes except the optimizer (a copy, as PyTorch's keys)."""
        return {k: copy.copy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes saved by ``state_dict()`` of a scheduler of the same kind."""
        own = set(self.state_dict())
        given = set(state_dict) if isinstance(state_dict, dict) else set()
        if not isinstance(state_dict, dict) or not own <= given:
            missing = sorted(own - given)
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state dict lacks {missing}; pass "
                f"the dict returned by state_dict() of a {type(self).__name__}"
            )
        self.__dict__.update({k: copy.copy(v) for k, v in state_dict.items()})


EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated where "
    "possible. Please use `scheduler.step()` to step the scheduler. During the deprecation, if "
    "epoch is different from None, the closed form is used instead of the new chainable form, "
    "where available. Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)


class _LRScheduler(LRScheduler):
    """The old name of LRScheduler, kept (as PyTorch keeps it) for custom schedulers."""


class _LambdaScheduler(LRScheduler):
    """The base of LambdaLR and MultiplicativeLR: ``lr_lambdas``, one function of the epoch
    per parameter group, saved in state dicts as PyTorch saves them."""

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _lambdas(self, optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """As PyTorch: functions are not saved; a callable object's attributes are."""
        state = {
            k: copy.copy(v)
            for k, v in self.__dict__.items()
            if k not in ("optimizer", "lr_lambdas")
        }
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", None)
        super().load_state_dict({**state, "lr_lambdas": self.lr_lambdas})
        for fn, attrs in zip(self.lr_lambdas, saved or []):
            if attrs is not None:
                fn.__dict__.update(attrs)


class LambdaLR(_LambdaScheduler):
    """Set the learning rate to base_lr times ``lr_lambda(epoch)`` (one function, or one per
    parameter group).

    Example: a linear warm-up over 100 steps,
    ``LambdaLR(opt, lambda step: min(1.0, (step + 1) / 100))``.
    """

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaScheduler):
    """Multiply the learning rate by ``lr_lambda(epoch)`` each epoch (one function, or one per
    parameter group); the first epoch keeps the initial lr."""

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [
            group["lr"] * fn(self.last_epoch)
            for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)
        ]


class ConstantLR(LRScheduler):
    """Multiply the learning rate by ``factor`` for the first ``total_iters`` epochs."""

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError(
                f"ConstantLR: factor={factor!r} must be between 0 and 1 (the lr is multiplied "
                "by it for total_iters epochs), e.g. factor=1/3"
            )
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        after = self.last_epoch >= self.total_iters
        return [base * (self.factor + after * (1 - self.factor)) for base in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Decay the learning rate to 0 over ``total_iters`` epochs along a polynomial:
    lr = base_lr (1 - min(epoch, total_iters) / total_iters) ** power."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_iters: int = 5,
        power: float = 1.0,
        last_epoch: int = -1,
    ) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        factor = (
            (1.0 - self.last_epoch / self.total_iters)
            / (1.0 - (self.last_epoch - 1) / self.total_iters)
        ) ** self.power
        return [lr * factor for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        done = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (1.0 - done) ** self.power for base in self.base_lrs]


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    lr = base_lr * gamma ** (epoch // step_size).
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        _check_positive_int(self, "step_size", step_size)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each epoch listed in ``milestones``.

    lr = base_lr * gamma ** (number of milestones <= epoch); a milestone listed twice counts
    twice.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        milestones = list(milestones)
        if not all(isinstance(m, numbers.Integral) for m in milestones):
            raise TypeError(
                f"MultiStepLR: milestones must be epoch numbers (ints), got {milestones}"
            )
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        times = self.milestones.get(self.last_epoch, 0)
        if not times:
            return self._current_lrs()
        return [lr * self.gamma**times for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma**passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch: lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Anneal the learning rate from base_lr to ``eta_min`` along a half cosine over ``T_max``.

    lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2, computed recursively
    from the current lr as PyTorch does (past T_max it rises again, with period 2 T_max).
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        _check_positive_int(self, "T_max", T_max)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        epoch, T_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and epoch > 0:
            return [
                eta_min + (base - eta_min) * (1 + math.cos(epoch * math.pi / T_max)) / 2
                for base in self.base_lrs
            ]
        if (epoch - 1 - T_max) % (2 * T_max) == 0:  # the trough: the recursion would divide by 0
            return [
                lr + (base - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
                for base, lr in zip(self.base_lrs, self._current_lrs())
            ]
        ratio = (1 + math.cos(math.pi * epoch / T_max)) / (
            1 + math.cos(math.pi * (epoch - 1) / T_max)
        )
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        cosine = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base - self.eta_min) * cosine / 2 for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from ``start_factor`` to ``end_factor`` (a warm-up).

    lr = base_lr * (start_factor + (end_factor - start_factor) min(epoch, total_iters) /
    total_iters); the defaults warm up from base_lr / 3 to base_lr over 5 epochs.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(
                f"LinearLR: start_factor={start_factor!r} must be in (0, 1] (the first epoch's "
                "lr is base_lr * start_factor), e.g. start_factor=1/3"
            )
        if not 0 <= end_factor <= 1:
            raise ValueError(
                f"LinearLR: end_factor={end_factor!r} must be in [0, 1], e.g. end_factor=1.0"
            )
        _check_positive_int(self, "total_iters", total_iters)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        change = self.end_factor - self.start_factor
        factor = 1.0 + change / (
            self.total_iters * self.start_factor + (self.last_epoch - 1) * change
        )
        return [lr * factor for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        done = min(self.total_iters, self.last_epoch) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * done
        return [base * factor for base in self.base_lrs]


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when a metric has stopped improving.

    ``step(metric)`` each epoch: after more than ``patience`` epochs without improvement (by
    ``threshold``, relative or absolute, in ``mode`` "min" or "max"), each group's lr becomes
    max(lr * factor, min_lr) unless that changes it by no more than ``eps``; then ``cooldown``
    epochs pass before bad epochs count again. Unlike the other schedulers it does not step at
    construction.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: list[float] | float = 0,
        eps: float = 1e-8,
    ) -> None:
        _check_optimizer(self, optimizer)
        if not factor < 1.0:
            raise ValueError(
                f"ReduceLROnPlateau: factor={factor!r} must be < 1.0 (the lr is multiplied by "
                "it), e.g. factor=0.1"
            )
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode {mode!r} is unknown; use 'min' or 'max'")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: threshold_mode {threshold_mode!r} is unknown; use 'rel' or "
                "'abs'"
            )
        mismatch = (
            "ReduceLROnPlateau: expected {groups} min_lrs (one per parameter group), got {given}"
        )
        self.default_min_lr = None if isinstance(min_lr, list | tuple) else min_lr
        self.min_lrs = _format_param("min_lr", optimizer, min_lr, mismatch)
        self.optimizer = optimizer
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record this epoch's metric (e.g. the validation loss); lower the lr on a plateau."""
        current = float(metrics)
        if epoch is None:
            self.last_epoch += 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
            self.last_epoch = epoch
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, current: float) -> bool:
        best, threshold = self.best, self.threshold
        if self.mode == "min":
            return current < (
                best * (1 - threshold) if self.threshold_mode == "rel" else best - threshold
            )
        return current > (
            best * (1 + threshold) if self.threshold_mode == "rel" else best + threshold
        )

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups but "
                    f"min_lr lists {len(self.min_lrs)}; set scheduler.min_lrs to one value per "
                    "group after adding a group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new


def _lambdas(scheduler: Any, optimizer: Optimizer, lr_lambda: Any) -> list[Callable]:
    """One lr_lambda per parameter group: the one given for all, or a list of them."""
    groups = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 1
    if not isinstance(lr_lambda, list | tuple):
        lambdas = [lr_lambda] * groups
    elif len(lr_lambda) != groups:
        raise ValueError(
            f"{type(scheduler).__name__}: expected {groups} lr_lambdas (one per parameter "
            f"group), but got {len(lr_lambda)}"
        )
    else:
        lambdas = list(lr_lambda)
    for fn in lambdas:
        if not callable(fn):
            raise TypeError(
                f"{type(scheduler).__name__}: lr_lambda should be a function of the epoch, but "
                f"got {type(fn).__name__}"
            )
    return lambdas


def _format_param(
    name: str, optimizer: Optimizer, value: Any, mismatch: str | None = None
) -> list[Any]:
    """One value per parameter group: the one given for all, or a list of them. A list of
    another length is a ValueError, in the words of ``mismatch`` when given (a format string
    with {name}, {given} and {groups})."""
    groups = len(optimizer.param_groups)
    if isinstance(value, list | tuple):
        if len(value) != groups:
            mismatch = mismatch or (
                "{name} must have the same length as optimizer.param_groups: {name} has "
                "{given} values, param_groups has {groups}"
            )
            raise ValueError(mismatch.format(name=name, given=len(value), groups=groups))
        return list(value)
    return [value] * groups


def _check_optimizer(scheduler: Any, optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"{type(scheduler).__name__}: expected a gradflow.optim.Optimizer, got "
            f"{type(optimizer).__name__}"
        )


def _check_positive_int(scheduler: Any, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"{type(scheduler).__name__}: {name}={value!r} must be a positive int (a number of "
            "epochs)"
        )


# Defined in their own modules, which import the base class above: the import comes last.
from gradflow.optim._lr_combined import ChainedScheduler, SequentialLR  # noqa: E402
from gradflow.optim._lr_cyclic import (  # noqa: E402
    CosineAnnealingWarmRestarts,
    CyclicLR,
    OneCycleLR,
)

for _cls in (ChainedScheduler, SequentialLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR):
    _cls.__module__ = __name__  # their public home, for reprs and pickles

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
