"""Timing the backward pass of user code on its device, with the timer of timing.py:
``backward(fn, *inputs)`` and ``backward_module(module, *inputs)``.

    result = gradflow.bench.backward(lambda x, w: (x @ w).relu().sum(), x, w)
    print(result.median, result.iqr, result.peak_memory_bytes)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gradflow.bench.timing import (
    DEFAULT_REPEAT,
    DEFAULT_WARMUP,
    BenchResult,
    check_counts,
    measure,
)


def backward(
    fn: Callable[..., Any],
    *inputs: Any,
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    grad_output: Any = None,
    bytes_moved: float = 0,
    flops: float = 0,
    name: str | None = None,
) -> BenchResult:
    """Time the backward pass of ``fn(*inputs)`` alone, on the device of its output.

    The graph is built once, then ``out.backward(grad_output, retain_graph=True)`` is timed
    `repeat` times after `warmup` calls; the grads of the tensor inputs (and of a module's
    parameters, see backward_module) are cleared before each call, outside the timed region,
    so every call does the same work. `fn` must return a one-element tensor (a loss) unless
    `grad_output` is given. Peak memory is that of one backward call.
    """
    return _time_backward(fn, inputs, (), warmup, repeat, grad_output, bytes_moved, flops, name)


def backward_module(
    module: Any,
    *inputs: Any,
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    grad_output: Any = None,
    bytes_moved: float = 0,
    flops: float = 0,
    name: str | None = None,
) -> BenchResult:
    """Time the backward pass of ``module(*inputs)`` (see backward); the output is reduced with
    ``.sum()`` when it has more than one element and no grad_output is given."""
    from gradflow.nn import Module

    if not isinstance(module, Module):
        kind = type(module).__name__
        raise TypeError(f"backward_module expects a gradflow.nn.Module, got {kind}")

    def forward(*xs: Any) -> Any:
        out = module(*xs)
        if isinstance(out, tuple):  # recurrent layers return (output, state)
            out = out[0]
        return out if grad_output is not None or out.numel() == 1 else out.sum()

    label = name or type(module).__name__
    params = list(module.parameters())
    return _time_backward(forward, inputs, params, warmup, repeat, grad_output, bytes_moved,
                          flops, label)  # fmt: skip


def _time_backward(
    fn: Callable[..., Any],
    inputs: tuple,
    params: Iterable[Any],
    warmup: int,
    repeat: int,
    grad_output: Any,
    bytes_moved: float,
    flops: float,
    name: str | None,
) -> BenchResult:
    from gradflow.tensor import Tensor

    if not callable(fn):
        raise TypeError(f"backward() expects a callable as fn, got {type(fn).__name__}")
    check_counts(warmup, repeat)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"fn must return a gradflow Tensor, got {type(out).__name__}")
    if out.grad_fn is None:
        raise ValueError(
            "fn's output has no grad_fn: give some input requires_grad=True, and do not compute "
            "it under no_grad()"
        )
    if grad_output is None and out.numel() != 1:
        raise ValueError(
            f"fn returned a tensor of shape {tuple(out.shape)}; backward() needs a one-element "
            "output (a loss) or grad_output= of that shape"
        )
    leaves = [t for t in (*inputs, *params) if isinstance(t, Tensor) and t.requires_grad]

    def clear() -> None:
        for t in leaves:
            t.grad = None

    result = measure(name or getattr(fn, "__name__", "backward"),
                     lambda: out.backward(grad_output, retain_graph=True), out.device, warmup,
                     repeat, bytes_moved, flops, before=clear)  # fmt: skip
    return result
