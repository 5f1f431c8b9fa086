"""Automatic mixed precision, PyTorch's API (``autocast``, ``GradScaler``), without the
precision change.

gradflow does not lower precision automatically: ``autocast`` regions run in the tensors' own
dtypes (float32), so results are at least as accurate as PyTorch's and no loss scaling is
needed. ``GradScaler`` keeps PyTorch's protocol (scale, unscale_, step, update) and its one
effect that matters without scaling: ``step`` skips the optimizer step when a gradient holds
inf or NaN. Code written for AMP runs unchanged; for float16 speed on a GPU, convert the
model with ``model.half()`` explicitly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class autocast:
    """Accepted as a context manager or decorator; computes in the tensors' own dtypes."""

    def __init__(
        self,
        device_type: str = "cuda",
        dtype: Any = None,
        enabled: bool = True,
        cache_enabled: bool | None = None,
    ):
        self.device_type = device_type
        self.fast_dtype = dtype
        self.enabled = enabled

    def __enter__(self) -> autocast:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper


class GradScaler:
    """PyTorch's loss scaler with a scale of 1 (nothing underflows without float16 autocast);
    ``step`` skips the update when a gradient is not finite, as PyTorch's does."""

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ):
        self._enabled = enabled
        self._found_inf: dict[int, bool] = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def scale(self, outputs: Any) -> Any:
        return outputs

    def get_scale(self) -> float:
        return 1.0

    def unscale_(self, optimizer: Any) -> None:
        self._found_inf[id(optimizer)] = _has_nonfinite_grad(optimizer)

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        found = self._found_inf.pop(id(optimizer), None)
        if found is None:
            found = _has_nonfinite_grad(optimizer)
        if self._enabled and found:
            return None  # PyTorch skips the step when a gradient overflowed
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: Any = None) -> None:
        self._found_inf.clear()

    def state_dict(self) -> dict:
        return {"scale": 1.0, "enabled": self._enabled} if self._enabled else {}

    def load_state_dict(self, state: dict) -> None:
        return None


def _has_nonfinite_grad(optimizer: Any) -> bool:
    from gradflow.backend import get_array_module

    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                xp = get_array_module(p.grad.array)
                if not bool(xp.isfinite(p.grad.array).all()):
                    return True
    return False
