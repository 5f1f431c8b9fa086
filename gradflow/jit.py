"""``gradflow.jit``: PyTorch's TorchScript entry points, accepted so code that scripts or
traces a model runs; gradflow runs every model eagerly, so each returns its argument.

A scripted module's ``save()`` (a TorchScript archive) has no counterpart: save the
``state_dict()`` with ``gradflow.save`` instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def script(obj: Any = None, *args: Any, **kwargs: Any) -> Any:
    """Returns `obj` unchanged (eager execution)."""
    return obj


def trace(func: Any, example_inputs: Any = None, *args: Any, **kwargs: Any) -> Any:
    """Returns `func` unchanged (eager execution)."""
    return func


def ignore(func: Callable | None = None, **kwargs: Any) -> Any:
    return func if func is not None else (lambda f: f)


unused = export = ignore
