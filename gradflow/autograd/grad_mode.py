"""Grad mode: whether ops record a graph. Thread-local, so two threads can train independently."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradState(threading.local):
    enabled = True  # class attribute: every new thread starts with grad mode on


state = _GradState()


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded."""
    return state.enabled


class _GradModeContext:
    """Base of no_grad / enable_grad / set_grad_enabled: a context manager and a decorator."""

    mode = True

    def __enter__(self) -> None:
        self._previous = state.enabled
        state.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        state.enabled = self._previous

    def __call__(self, func: F) -> F:
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            previous = state.enabled
            state.enabled = mode
            try:
                return func(*args, **kwargs)
            finally:
                state.enabled = previous

        return wrapper  # type: ignore[return-value]


class no_grad(_GradModeContext):
    """Record nothing and save nothing for backward (inference, optimizer updates).
    A context manager, or a decorator with or without parentheses (``@no_grad``)."""

    mode = False

    def __new__(cls, func: Any = None) -> Any:
        self = super().__new__(cls)
        if callable(func):  # @no_grad without parentheses
            return self(func)
        return self

    def __init__(self, func: Any = None):
        pass


class inference_mode(no_grad):
    """PyTorch's inference mode: here the same as no_grad (gradflow has no separate inference
    tensors, so there is nothing further to skip). ``inference_mode(False)`` records again."""

    def __new__(cls, mode: Any = True) -> Any:
        return super().__new__(cls, mode if callable(mode) else None)

    def __init__(self, mode: Any = True):
        self.mode = False if callable(mode) else not bool(mode)


class enable_grad(_GradModeContext):
    """Turn recording back on inside a no_grad region."""

    mode = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to `mode`, as a function call, context manager or decorator."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._previous = state.enabled
        state.enabled = self.mode  # takes effect at once when used as a plain call

    def __enter__(self) -> None:
        pass  # already applied in __init__

    def __call__(self, func: F) -> F:
        state.enabled = self._previous  # used as a decorator: apply per call, not now
        return super().__call__(func)
