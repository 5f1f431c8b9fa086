"""``gradflow.cuda``: is a GPU there, how many, wait for it, how much memory is in use."""

from __future__ import annotations

from gradflow.backend import _cupy
from gradflow.backend.device import Device


def is_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return _cupy.device_count() > 0


def device_count() -> int:
    """Number of CUDA devices CuPy sees (0 without CuPy or a driver)."""
    return _cupy.device_count()


def synchronize(device: str | Device | int | None = None) -> None:
    """Block until all work queued on the (current or given) CUDA device has finished."""
    index = _index(device)
    cp = _cupy.require_cupy(index)
    with cp.cuda.Device(index):
        cp.cuda.get_current_stream().synchronize()


def memory_allocated(device: str | Device | int | None = None) -> int:
    """Bytes held by live arrays in CuPy's memory pool on the device."""
    index = _index(device)
    cp = _cupy.require_cupy(index)
    with cp.cuda.Device(index):
        return int(cp.get_default_memory_pool().used_bytes())


def memory_reserved(device: str | Device | int | None = None) -> int:
    """Bytes CuPy's memory pool holds from the driver (used plus cached)."""
    index = _index(device)
    cp = _cupy.require_cupy(index)
    with cp.cuda.Device(index):
        return int(cp.get_default_memory_pool().total_bytes())


def empty_cache() -> None:
    """Return the memory pool's cached, unused blocks to the driver."""
    cp = _cupy.require_cupy()
    cp.get_default_memory_pool().free_all_blocks()


def _index(device: str | Device | int | None) -> int:
    if device is None:
        return 0
    if isinstance(device, int):
        return device
    dev = Device(device)
    if dev.type != "cuda":
        raise ValueError(f"expected a cuda device, got {dev}")
    return dev.index
