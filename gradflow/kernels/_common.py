"""Argument checks, launch configuration and the backend interface shared by all launchers.

A launcher validates its arguments here, allocates outputs through a backend and launches
through it, so the same code drives CuPy on a GPU and the CPU emulation on NumPy arrays
(``gradflow.testing.emulation.EmulationBackend``). Contiguity policy: read-only inputs that
are not C-contiguous are copied with the backend's ``ascontiguous``; arrays a kernel updates in
place (optimizer state) must already be contiguous, or the launcher raises ValueError.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Protocol

import numpy as np

from gradflow.backend import routing
from gradflow.kernels.loader import default_backend, scalar_type

BLOCK = 256  # threads per block of the 1-D grid-stride kernels


class KernelBackend(Protocol):
    """What a launcher needs from an array library and a way to run kernels."""

    name: str
    array_type: str  # named in error messages

    def is_array(self, x: Any) -> bool: ...
    def device_of(self, x: Any) -> Hashable: ...
    def empty(self, shape: tuple[int, ...], dtype: Any, device: Hashable) -> Any: ...
    def ascontiguous(self, x: Any) -> Any: ...
    def address(self, x: Any) -> int: ...
    def upload(self, host: np.ndarray, device: Hashable) -> Any: ...
    def max_grid_blocks(self, device: Hashable) -> int: ...
    def launch(
        self,
        family: str,
        dtype: Any,
        kernel: str,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        args: tuple[Any, ...],
        device: Hashable,
    ) -> None: ...


def resolve_backend(backend: KernelBackend | None) -> KernelBackend:
    """``backend`` itself; for None, the backend routed to in this context
    (gradflow.backend.routing), else CuPy."""
    if backend is None:
        backend = routing.kernel_backend()
    return default_backend() if backend is None else backend


def describe(x: Any) -> str:
    return f"shape {tuple(x.shape)} and dtype {x.dtype}"


def check_float_arrays(launcher: str, backend: KernelBackend, **arrays: Any) -> tuple[Any, Any]:
    """Checks that every array is a float32/float64 array of ``backend``, all of one dtype and
    on one device; returns (dtype, device)."""
    dtype = device = first = None
    for name, x in arrays.items():
        check_array_type(launcher, backend, name, x)
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(
                f"{launcher}: argument '{name}' has {describe(x)}; expected float32 or float64"
            )
        if first is None:
            first, dtype, device = name, x.dtype, backend.device_of(x)
            continue
        if x.dtype != dtype:
            raise TypeError(
                f"{launcher}: argument '{name}' has {describe(x)}; expected dtype {dtype} "
                f"like '{first}'"
            )
        check_device(launcher, backend, name, x, device, first)
    return dtype, device


def check_array_type(launcher: str, backend: KernelBackend, name: str, x: Any) -> None:
    if not backend.is_array(x):
        raise TypeError(
            f"{launcher}: argument '{name}' is a {type(x).__name__}; expected a "
            f"{backend.array_type}"
        )


def check_device(
    launcher: str, backend: KernelBackend, name: str, x: Any, device: Any, first: str
) -> None:
    if backend.device_of(x) != device:
        raise ValueError(
            f"{launcher}: argument '{name}' is on device {backend.device_of(x)} but '{first}' "
            f"is on device {device}; move them to one device"
        )


def check_shape(launcher: str, name: str, x: Any, expected: Sequence[int], meaning: str) -> None:
    if tuple(x.shape) != tuple(expected):
        raise ValueError(
            f"{launcher}: argument '{name}' has {describe(x)}; expected shape "
            f"{tuple(expected)} ({meaning})"
        )


def check_ndim(launcher: str, name: str, x: Any, ndim: int, meaning: str) -> None:
    if x.ndim != ndim:
        raise ValueError(
            f"{launcher}: argument '{name}' has {describe(x)}; expected a {ndim}-D array "
            f"({meaning})"
        )


def check_contiguous(launcher: str, name: str, x: Any) -> None:
    if not x.flags.c_contiguous:
        raise ValueError(
            f"{launcher}: argument '{name}' ({describe(x)}) is not C-contiguous; it is updated "
            "in place, so pass a contiguous array"
        )


def check_activation(launcher: str, act: str, allowed: Sequence[str]) -> None:
    if act not in allowed:
        raise ValueError(
            f"{launcher}: unknown activation {act!r}; expected one of {tuple(allowed)}"
        )


def contiguous(backend: KernelBackend, *arrays: Any) -> list[Any]:
    """The arrays, copied to C order where they are not already."""
    return [x if x is None or x.flags.c_contiguous else backend.ascontiguous(x) for x in arrays]


ROW_THREADS = 256  # the one-block-per-row kernels' largest block: fused.cu's ROW_THREADS and
# attention.cu's ATTN_ROW_THREADS, the size of their shared buffers for block_reduce.cuh


def row_threads(n_cols: int) -> int:
    """Threads for one block per row: the row length rounded up to a power of two (as
    block_reduce.cuh needs), 32 to ROW_THREADS, so short rows waste no threads."""
    return min(ROW_THREADS, max(32, 1 << (max(n_cols, 1) - 1).bit_length()))


def grid_1d(backend: KernelBackend, device: Any, work_items: int, block: int = BLOCK) -> int:
    """Blocks for a grid-stride loop over ``work_items``: enough to cover them, capped."""
    return max(1, min(-(-work_items // block), backend.max_grid_blocks(device)))


def scalar(dtype: Any, value: float) -> Any:
    """``value`` as a NumPy scalar of the kernel's scalar_t (``dtype``)."""
    scalar_type(dtype)
    return np.dtype(dtype).type(value)
