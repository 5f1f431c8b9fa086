"""Compiled CPU loops, when numba is installed (`pip install 'gradflow[numba]'`): the switch the
ops ask before taking a fused loop instead of their NumPy passes.

NumPy runs one pass over memory per operation; a normalization, a GELU, a softmax or a
cumulative sum that PyTorch runs as one fused loop is four to twenty-five NumPy passes (the
profiles are in benchmarks/results/2026-12-07-cpu-op-sweep-final.md). The loops in
compiled_loops.py do each of those ops in one or two passes. Without numba, or with
GRADFLOW_NUMBA=0 in the environment, every op keeps its NumPy form, which gives the same values
within float rounding; tests compare the two (docs/DESIGN.md §14).

Ops call `loops(*arrays)`: the compiled_loops module when the loops apply to these arrays
(NumPy arrays of one dtype, float32 or float64, or float32 only with float32_only), else None.
numba is imported on the first such call, never by `import gradflow`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from typing import Any

import numpy

_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_loaded: dict = {"module": None, "why": None}
# Per thread and asyncio task, as kernel routing (backend/routing.py): disabling the loops in
# one thread never changes what another runs.
_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar("numba_off", default=False)


def _load() -> Any:
    """The compiled_loops module, imported once; None (with the reason kept) when it can't be."""
    if _loaded["module"] is None and _loaded["why"] is None:
        if os.environ.get("GRADFLOW_NUMBA", "1") == "0":
            _loaded["why"] = "off (GRADFLOW_NUMBA=0)"
        else:
            try:
                from gradflow.backend import compiled_loops
            except ImportError as exc:  # numba absent, or too old/new for this NumPy
                _loaded["why"] = f"off (numba: {exc})"
            else:
                _loaded["module"] = compiled_loops
    return _loaded["module"]


def loops(*arrays: Any, float32_only: bool = False) -> Any:
    """compiled_loops when the compiled loops may run on these arrays, else None."""
    if _disabled.get() or not arrays:
        return None
    dtype = getattr(arrays[0], "dtype", None)
    if dtype not in _FLOATS or (float32_only and dtype != numpy.float32):
        return None
    for a in arrays:
        if type(a) is not numpy.ndarray or a.dtype != dtype:
            return None
    return _load()


def status() -> str:
    """One line for benchmark records: 'numba X.Y' or why the loops are off."""
    module = _load()
    if module is None:
        return _loaded["why"]
    return f"numba {module.numba.__version__}"


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Inside the block every op takes its NumPy form, in this thread or task (tests compare
    the two; benchmarks time them)."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


def flat(a: Any) -> Any:
    """a as a 1-D C-contiguous array (a view when it already is one)."""
    return numpy.ascontiguousarray(a).reshape(-1)


def map_forward(loop: Any, x: Any, *args: Any) -> Any:
    """A new array of x's shape and dtype written by an elementwise loop:
    loop(flat x, *args, flat out)."""
    out = numpy.empty(x.shape, x.dtype)
    loop(flat(x), *args, out.reshape(-1))
    return out


def map_backward(loop: Any, saved: Any, g: Any, *args: Any) -> Any:
    """A new array of saved's shape and dtype written by an elementwise backward loop:
    loop(flat saved, flat g, *args, flat out) (saved: the op's input or output)."""
    out = numpy.empty(saved.shape, saved.dtype)
    loop(flat(saved), flat(g), *args, out.reshape(-1))
    return out
