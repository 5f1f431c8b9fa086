"""Kernel routing: which launcher backend an op's GPU kernel route runs on, per context.

An op has a NumPy path and, for cuda arrays, a route through our CUDA kernels (launched by
gradflow/kernels through CuPy). This module is the one place that says when the kernel route
is taken. By default it is taken for cuda arrays only, on CuPy. Inside ``kernels_through(b)``
every op of the current context (thread or asyncio task) takes it, on backend ``b``: the tests
pass the CPU emulation (gradflow.testing.emulation.route_kernels) so the very same op code,
launchers and kernel sources run on NumPy arrays without a GPU.

The choice lives in a ``contextvars.ContextVar``, like grad mode's per-thread state: routing
one thread through the emulation never changes what another thread runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy

from gradflow.backend.device import is_cuda_array

_route: ContextVar[Any] = ContextVar("gradflow_kernel_route", default=None)
_ndarray = numpy.ndarray


def kernel_backend() -> Any:
    """The launcher backend routed to in this context, or None (CuPy, for cuda arrays)."""
    return _route.get()


KERNEL_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def uses_kernels(array: Any) -> bool:
    """True when an op should take its kernel route for this array: a float32 or float64 cuda
    array, or any such array inside ``kernels_through``. Other dtypes (float16 until the
    kernels have half versions) take the array module's own functions."""
    if _route.get() is None and (type(array) is _ndarray or not is_cuda_array(array)):
        return False
    return array.dtype in KERNEL_DTYPES


@contextlib.contextmanager
def kernels_through(backend: Any) -> Iterator[Any]:
    """Within the block, every op in this context takes its kernel route on ``backend`` (an
    object with the launcher-backend interface of gradflow/kernels/_common.py)."""
    if backend is None:
        raise TypeError("kernels_through: expected a launcher backend, got None")
    token = _route.set(backend)
    try:
        yield backend
    finally:
        _route.reset(token)
