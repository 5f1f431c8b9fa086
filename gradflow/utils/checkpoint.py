"""torch.utils.checkpoint's names. PyTorch recomputes a checkpointed segment's forward during
backward to save activation memory; gradflow runs the segment once and keeps its graph, so the
values and gradients are the same and only the memory saving is absent (as ``compile`` returns
its argument, docs/DESIGN.md §11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def checkpoint(
    function: Callable[..., Any],
    *args: Any,
    use_reentrant: bool | None = None,
    context_fn: Any = None,
    determinism_check: str = "default",
    debug: bool = False,
    preserve_rng_state: bool = True,
    early_stop: bool = True,
    **kwargs: Any,
) -> Any:
    """``function(*args, **kwargs)``, differentiable as usual (nothing is recomputed, so
    PyTorch's recomputation options have nothing to act on)."""
    return function(*args, **kwargs)


def checkpoint_sequential(
    functions: Any,
    segments: int,
    input: Any,
    use_reentrant: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Runs the modules of a Sequential (or a list of callables) one after another on `input`."""
    if hasattr(functions, "children") and not isinstance(functions, list | tuple):
        functions = list(functions.children())
    for fn in functions:
        input = fn(input)
    return input
