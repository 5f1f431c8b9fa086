"""Anomaly mode: find the first op whose output or gradient holds NaN or Inf, and say where.

    with gradflow.autograd.detect_anomaly():
        loss = model(x).log().mean()   # a NaN here raises AnomalyError naming the op ("Log")
        loss.backward()                # an Inf gradient raises naming "LogBackward" and the
                                       # line of user code that called log() in forward

Also a decorator (``@detect_anomaly()``) and a plain switch (``set_detect_anomaly(True)``,
``is_anomaly_enabled()``), as in PyTorch.

What it checks, while on:
- forward: after every ``Function.apply``, each floating output with ``xp.isfinite(a).all()``;
  the error names the op (its Function class, e.g. "Log") and the user's line that called it;
- backward: after every node's backward, each gradient it returned; the error names the node
  ("LogBackward"), the input whose gradient is bad, and the user's frames at the time the op
  ran in forward. Other errors raised inside a backward keep their type and get the same
  frames as a note (Python 3.11+).
Where an op was created is recorded in forward (``traceback`` frames outside gradflow, the
innermost few, lines read only when an error is shown), so turn the mode on before forward.
Every Inf counts, intended ones too (a -inf mask built with ops, log(0) on purpose): unlike
PyTorch, which checks backward only, forward is checked so the first bad op is the one named.

Cost: with the mode off, ``Function.apply`` reads one module attribute (``enabled`` below)
per op and the engine reads it once per backward; nothing else. With the mode on, every op
pays a stack walk and one isfinite pass per output; on cuda the check copies one bool to the
host, which synchronizes the device after every op. Use it to debug, not to train.

The flag is global, not per thread (as in PyTorch): a debugging switch set once for the
program, and a module attribute is the cheapest thing the hot path can read (a thread-local
costs more per op). Turning it on in one thread turns it on for all. Reads take no lock
(assigning a module attribute is atomic under the GIL).
Nested ``detect_anomaly`` blocks restore the previous value on exit; two threads entering and
leaving blocks at the same time can leave each other's value behind, so set it from one thread.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from gradflow.backend import get_array_module

F = TypeVar("F", bound=Callable[..., Any])

enabled: bool = False  # read by Function.apply on every op; keep it a plain module attribute
raise_on_values: bool = True  # False (check_nan=False): record where ops ran, raise on no NaN/Inf

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_TRACE_FRAMES = 8  # user frames kept per op (the innermost ones)


class AnomalyError(RuntimeError):
    """A NaN or Inf found by anomaly mode; `op`, `phase`, `index` and `created_at` say where."""

    def __init__(
        self, message: str, op: str, phase: str, index: int, created_at: traceback.StackSummary
    ):
        super().__init__(message)
        self.op = op  # "Log" (forward) or "LogBackward" (backward)
        self.phase = phase  # "forward" or "backward"
        self.index = index  # the output (forward) or input (backward) that holds the values
        self.created_at = created_at  # user frames of the op's forward call (may be empty)


def is_anomaly_enabled() -> bool:
    """True while anomaly mode checks every op for NaN and Inf."""
    return enabled


class set_detect_anomaly:
    """Turn anomaly mode on or off: as a plain call, or as a context manager that restores.
    check_nan=False keeps the op-creation traces for errors but raises on no NaN/Inf."""

    def __init__(self, mode: bool, check_nan: bool = True):
        global enabled, raise_on_values
        self._previous = enabled, raise_on_values
        enabled, raise_on_values = bool(mode), bool(check_nan)  # at once, as a plain call

    def __enter__(self) -> None:
        pass  # already applied in __init__

    def __exit__(self, *exc: object) -> None:
        global enabled, raise_on_values
        enabled, raise_on_values = self._previous


class detect_anomaly:
    """Anomaly mode for a block (``with detect_anomaly():``) or a call (``@detect_anomaly()``);
    check_nan=False records where ops ran without raising on NaN or Inf, as in PyTorch."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = bool(check_nan)

    def __enter__(self) -> None:
        global enabled, raise_on_values
        self._previous = enabled, raise_on_values
        enabled, raise_on_values = True, self.check_nan

    def __exit__(self, *exc: object) -> None:
        global enabled, raise_on_values
        enabled, raise_on_values = self._previous

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(self.check_nan):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def user_frames() -> traceback.StackSummary:
    """The innermost frames of the current stack outside gradflow, outermost first."""
    frame = sys._getframe(1)
    frames = []
    while frame is not None and len(frames) < _TRACE_FRAMES:
        if not frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            frames.append((frame, frame.f_lineno))
        frame = frame.f_back
    stack = traceback.StackSummary.extract(reversed(frames), lookup_lines=False)
    return stack


def check_forward(fn: Any, out: Any) -> None:
    """Record where `fn` ran (when it joins a graph) and raise if an output is not finite."""
    if fn._recording:
        fn._anomaly_trace = user_frames()
    if not raise_on_values:
        return
    outs = out if type(out) is tuple else (out,)
    for index, array in enumerate(outs):
        bad = _non_finite(array)
        if bad is not None:
            created_at = fn._anomaly_trace or user_frames()
            raise AnomalyError(
                f"Function '{fn.name}' returned {bad} values in its output {index} "
                f"{_describe(array)} during forward, called at (most recent call last):\n"
                + _format(created_at),
                fn.name,
                "forward",
                index,
                created_at,
            )


def check_backward(fn: Any, grad_in: tuple) -> None:
    """Raise if a gradient returned by `fn.backward` holds NaN or Inf."""
    if not raise_on_values:
        return
    for index, array in enumerate(grad_in):
        bad = _non_finite(array)
        if bad is not None:
            op = f"{fn.name}Backward"
            created_at = fn._anomaly_trace or traceback.StackSummary()
            raise AnomalyError(
                f"Function '{op}' returned {bad} values in its gradient for input {index} "
                f"{_describe(array)}. {_origin(fn)}",
                op,
                "backward",
                index,
                created_at,
            )


def run_checked(run_node: Callable[..., tuple], fn: Any, *args: Any) -> tuple:
    """The engine's node step in anomaly mode: run it, check its gradients, and add the op's
    forward frames to any error its backward raises."""
    try:
        grad_in = run_node(fn, *args)
    except AnomalyError:
        raise
    except Exception as exc:
        if hasattr(exc, "add_note"):  # Python 3.11+
            exc.add_note(f"Raised in the backward of {fn.name}. {_origin(fn)}")
        raise
    check_backward(fn, grad_in)
    return grad_in


def _non_finite(array: Any) -> str | None:
    """Which non-finite values a floating array holds ("nan" first, else "inf"), or None."""
    if array is None or getattr(array, "dtype", None) is None or array.dtype.kind not in "fc":
        return None
    xp = get_array_module(array)
    if xp.isfinite(array).all():  # on cuda, reading the result synchronizes
        return None
    return "nan" if xp.isnan(array).any() else "inf"


def _describe(array: Any) -> str:
    return f"(shape {tuple(array.shape)}, dtype {array.dtype})"


def _origin(fn: Any) -> str:
    """Where `fn` was created in forward, as traceback lines, or why that is unknown."""
    if not fn._anomaly_trace:
        return (
            f"Where {fn.name} ran in forward was not recorded: that forward ran with anomaly "
            "mode off (turn it on before forward to see it)."
        )
    return f"{fn.name} was created in forward at (most recent call last):\n" + _format(
        fn._anomaly_trace
    )


def _format(stack: traceback.StackSummary) -> str:
    return "".join(stack.format()).rstrip() if stack else "  (no frames outside gradflow)"
