"""Stopping criteria for a training loop: EarlyStopping (patience, target, time limit, nan) and
check_loss (a non-finite training loss at one step).

``gradflow train`` uses them (``--patience``, ``--target-accuracy``, ``--max-time``); any loop
of your own can too: call ``stopper.step(metrics, model, epoch)`` once per epoch and stop when
it returns True; ``stopper.stop_reason`` says why. The names follow Keras and Lightning's
EarlyStopping (PyTorch has none): monitor, mode, patience, min_delta, restore_best.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["EarlyStopping", "check_loss"]

_MODES = ("min", "max")


class EarlyStopping:
    """Says when to stop training: the monitored value stopped improving, reached a target,
    time ran out, or it is nan/inf; keeps a copy of the best weights to restore.

    Args:
        monitor: the key of the metrics dict to watch ("val_loss", "val_accuracy", ...), or a
            callable ``metrics -> float`` (then give `mode`).
        mode: "min" (lower is better) or "max". None: "min" for a name containing "loss",
            "max" for one containing "acc".
        patience: how many epochs in a row without an improvement stop the run (1: the first
            one does); None: never stop for that (only on `target`, `max_time` or nan).
        min_delta: an improvement is a change of more than this (0 or more) in the good
            direction.
        restore_best: keep a copy of ``model.state_dict()`` at each improvement (when `step`
            gets a model), for `restore`.
        target: stop once the value reaches this (``<=`` in "min" mode, ``>=`` in "max").
        max_time: stop at the first `step` at least this many seconds after the first `step`
            call (the clock is not part of `state_dict`: a resumed run starts it afresh).
        check_finite: stop when the monitored value is nan or infinite.

    Example (your own loop)::

        stopper = EarlyStopping("val_loss", patience=3, min_delta=1e-3)
        for epoch in range(1, 101):
            train_one_epoch(model, optimizer)
            if stopper.step({"val_loss": validation_loss(model)}, model, epoch):
                break
        stopper.restore(model)         # the weights of the best epoch
        print(stopper.stop_reason)     # "val_loss did not improve by more than 0.001 for 3 ..."
    """

    def __init__(
        self,
        monitor: str | Callable[[Mapping[str, Any]], float] = "val_loss",
        mode: str | None = None,
        patience: int | None = 5,
        min_delta: float = 0.0,
        restore_best: bool = True,
        target: float | None = None,
        max_time: float | None = None,
        check_finite: bool = True,
    ):
        if isinstance(monitor, str):
            if not monitor:
                raise ValueError("EarlyStopping: monitor must be a metric's name, got ''")
            self.name = monitor
        elif callable(monitor):
            name = getattr(monitor, "__name__", "")
            self.name = name if name.isidentifier() else "the monitored value"
        else:
            raise TypeError(
                "EarlyStopping: monitor must be a metric's name such as 'val_loss' or a "
                f"callable metrics -> float, got {type(monitor).__name__}"
            )
        self.monitor = monitor
        self.mode = _mode(monitor, mode)
        if patience is not None and not (_is_int(patience) and patience >= 1):
            raise ValueError(
                f"EarlyStopping: patience must be an integer, 1 or more (or None: never stop "
                f"for lack of improvement), got {patience!r}"
            )
        if not (_is_real(min_delta) and 0 <= min_delta < math.inf):
            raise ValueError(
                f"EarlyStopping: min_delta must be a finite number, 0 or more, got {min_delta!r}"
            )
        for flag, value in (("restore_best", restore_best), ("check_finite", check_finite)):
            if not isinstance(value, bool):
                raise TypeError(f"EarlyStopping: {flag} must be True or False, got {value!r}")
        if target is not None and not (_is_real(target) and math.isfinite(target)):
            raise ValueError(
                f"EarlyStopping: target must be a finite number or None, got {target!r}"
            )
        if max_time is not None and not (_is_real(max_time) and 0 < max_time < math.inf):
            raise ValueError(
                f"EarlyStopping: max_time must be a positive number of seconds or None, got "
                f"{max_time!r}"
            )
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.target = None if target is None else float(target)
        self.max_time = None if max_time is None else float(max_time)
        self.check_finite = check_finite
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, Any] | None = None  # a copy of the best model.state_dict()
        self.wait = 0  # epochs since the last improvement
        self.epochs = 0  # step calls so far
        self.stopped_epoch: int | None = None
        self.stop_reason: str | None = None
        self._start: float | None = None

    def step(self, metrics: Mapping[str, Any], model: Any = None, epoch: int | None = None) -> bool:
        """Record one epoch's `metrics`; True when training should stop now (`stop_reason`
        says why). `epoch` numbers the epoch in the reasons (default: the count of calls).
        With `model` (and restore_best), an improvement keeps a copy of its weights."""
        if self._start is None:
            self._start = time.monotonic()
        self.epochs += 1
        epoch = self.epochs if epoch is None else epoch
        value = self._value(metrics)
        if self.check_finite and not math.isfinite(value):
            return self._stop(epoch, f"{self.name} is {value} at epoch {epoch}")
        if self._improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if model is not None and self.restore_best:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.wait += 1
        if self.target is not None and (
            value <= self.target if self.mode == "min" else value >= self.target
        ):
            return self._stop(
                epoch, f"{self.name} reached the target {self.target:g} at epoch {epoch}"
            )
        if self.patience is not None and self.wait >= self.patience:
            by = f" by more than {self.min_delta:g}" if self.min_delta else ""
            best = (
                ""
                if self.best_epoch is None
                else f" (best {self.best:.4g} at epoch {self.best_epoch})"
            )
            epochs = "epoch" if self.wait == 1 else "epochs"
            return self._stop(
                epoch, f"{self.name} did not improve{by} for {self.wait} {epochs}{best}"
            )
        if self.max_time is not None and time.monotonic() - self._start >= self.max_time:
            return self._stop(epoch, time_limit_reason(self.max_time))
        return False

    def improved(self, epoch: int) -> bool:
        """Whether `epoch` was the best so far (its `step` improved the monitored value)."""
        return self.best_epoch == epoch

    def restore(self, model: Any) -> None:
        """Load the best epoch's weights into `model` (in place)."""
        if self.best_state is None:
            raise ValueError(
                "EarlyStopping.restore: no best weights were kept; pass the model to step() "
                "(with restore_best=True) so that each improvement keeps a copy"
            )
        model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        """The stopper's progress (best value and epoch, wait, stop), to resume a run; with
        the best weights under "best_state" when a copy is kept."""
        state = {
            "monitor": self.name,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "epochs": self.epochs,
            "stopped_epoch": self.stopped_epoch,
            "stop_reason": self.stop_reason,
        }
        if self.best_state is not None:
            state["best_state"] = self.best_state
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from `state_dict()`'s result; refuses one of another monitor or mode."""
        if not isinstance(state, Mapping):
            raise TypeError(
                f"EarlyStopping.load_state_dict: expected a dict, got {type(state).__name__}"
            )
        missing = [k for k in ("monitor", "mode", "best", "best_epoch", "wait") if k not in state]
        if missing:
            raise ValueError(f"EarlyStopping.load_state_dict: the state lacks {missing}")
        if (state["monitor"], state["mode"]) != (self.name, self.mode):
            raise ValueError(
                f"EarlyStopping.load_state_dict: the state watched {state['monitor']!r} "
                f"({state['mode']}), this stopper watches {self.name!r} ({self.mode})"
            )
        if not (_is_real(state["best"]) and _is_int(state["wait"]) and state["wait"] >= 0):
            raise ValueError(
                f"EarlyStopping.load_state_dict: best must be a number and wait an integer, 0 or "
                f"more, got best={state['best']!r}, wait={state['wait']!r}"
            )
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]
        self.wait, self.epochs = int(state["wait"]), int(state.get("epochs", 0))
        self.stopped_epoch = state.get("stopped_epoch")
        self.stop_reason = state.get("stop_reason")
        if state.get("best_state") is not None:
            self.best_state = dict(state["best_state"])

    def _value(self, metrics: Mapping[str, Any]) -> float:
        if callable(self.monitor):
            value = self.monitor(metrics)
        else:
            if not isinstance(metrics, Mapping):
                raise TypeError(
                    f"EarlyStopping.step: metrics must be a dict such as "
                    f"{{{self.name!r}: 0.25}}, got {type(metrics).__name__}"
                )
            if self.monitor not in metrics:
                raise KeyError(
                    f"EarlyStopping.step: the metrics have no {self.monitor!r} (they have "
                    f"{sorted(metrics)}); pass it, or monitor one of those"
                )
            value = metrics[self.monitor]
        try:
            return float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"EarlyStopping.step: {self.name} must be a number or a 0-d tensor, got "
                f"{type(value).__name__}"
            ) from None

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def _stop(self, epoch: int, reason: str) -> bool:
        self.stopped_epoch, self.stop_reason = epoch, reason
        return True


def check_loss(loss: Any, epoch: int, step: int) -> str | None:
    """Why training must stop at this step, when `loss` (a number or 0-d tensor) is nan or
    infinite: "the training loss is nan at epoch 3, step 12"; None when it is finite."""
    value = float(loss)
    if math.isfinite(value):
        return None
    return f"the training loss is {value} at epoch {epoch}, step {step}"


def time_limit_reason(max_time: float) -> str:
    """The stop reason for a time limit of `max_time` seconds."""
    return f"the time limit of {max_time:g} s was reached"


def _mode(monitor: Any, mode: str | None) -> str:
    if mode is not None:
        if mode not in _MODES:
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        return mode
    if isinstance(monitor, str):
        if "loss" in monitor:
            return "min"
        if "acc" in monitor:
            return "max"
    raise ValueError(
        f"EarlyStopping: can't tell whether {monitor!r} should fall or rise; pass "
        "mode='min' or mode='max'"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
