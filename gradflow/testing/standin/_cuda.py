"""The stand-in's ``cupy.cuda``: one device (an H100's properties), streams, events, the pool."""

from __future__ import annotations

import time
import types
from typing import Any

from gradflow.testing.standin._array import allocated_bytes, count_sync

DEVICE_COUNT = 1
_PROPERTIES = {
    "name": b"gradflow CuPy stand-in (CPU)",
    "totalGlobalMem": 80 * 2**30,
    "multiProcessorCount": 132,
    "major": 9,
    "minor": 0,
    "maxThreadsPerBlock": 1024,
    "sharedMemPerBlock": 48 * 1024,
    "warpSize": 32,
    "clockRate": 1_980_000,
    "memoryClockRate": 2_619_000,
    "memoryBusWidth": 5120,
    "l2CacheSize": 50 * 2**20,
}
_ATTRIBUTES = {
    "MultiProcessorCount": 132,
    "MaxThreadsPerBlock": 1024,
    "MaxBlockDimX": 1024,
    "MaxGridDimX": 2**31 - 1,
    "MaxGridDimY": 65535,
    "WarpSize": 32,
    "ComputeCapabilityMajor": 9,
    "ComputeCapabilityMinor": 0,
}


class CUDARuntimeError(RuntimeError):
    """cupy_backends.cuda.api.runtime.CUDARuntimeError."""


class CUDADriverError(RuntimeError):
    """cupy_backends.cuda.api.driver.CUDADriverError."""


_current = [0]


def _check(index: int) -> int:
    if not 0 <= index < DEVICE_COUNT:
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
    return index


class Device:
    """``cupy.cuda.Device``: a context manager that makes a device current."""

    def __init__(self, device: Any = None) -> None:
        self.id = _current[-1] if device is None else int(device)
        self._stack: list[int] = []

    def __enter__(self) -> Device:
        self._stack.append(_current[-1])
        _current.append(_check(self.id))
        return self

    def __exit__(self, *exc: Any) -> None:
        _current.pop()
        self._stack.pop()

    def use(self) -> Device:
        _current[-1] = _check(self.id)
        return self

    def synchronize(self) -> None:
        count_sync("Device.synchronize")

    @property
    def attributes(self) -> dict[str, int]:
        _check(self.id)
        return dict(_ATTRIBUTES)

    @property
    def compute_capability(self) -> str:
        return "90"

    @property
    def mem_info(self) -> tuple[int, int]:
        total = _PROPERTIES["totalGlobalMem"]
        return total - allocated_bytes(), total

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.id == self.id

    __hash__ = None  # type: ignore[assignment]  (CuPy's Device defines __eq__ only)

    def __int__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


def get_device_id() -> int:
    return _current[-1]


class Stream:
    """``cupy.cuda.Stream``: work runs at once on the stand-in, so waiting is free (but counted)."""

    null: Stream

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False) -> None:
        self.ptr = 0 if null else id(self)

    def synchronize(self) -> None:
        count_sync("Stream.synchronize")

    def use(self) -> Stream:
        return self

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @property
    def done(self) -> bool:
        return True


Stream.null = Stream(null=True)


def get_current_stream(device_id: int = -1) -> Stream:
    return Stream.null


class Event:
    """``cupy.cuda.Event``: records the host clock (the stand-in's timings mean nothing)."""

    def __init__(
        self, block: bool = False, disable_timing: bool = False, interprocess: bool = False
    ) -> None:
        self.time: float | None = None

    def record(self, stream: Any = None) -> None:
        self.time = time.perf_counter()

    def synchronize(self) -> None:
        count_sync("Event.synchronize")

    @property
    def done(self) -> bool:
        return True


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds between two recorded events."""
    if start_event.time is None or end_event.time is None:
        raise CUDARuntimeError("cudaErrorInvalidResourceHandle: event not recorded")
    return (end_event.time - start_event.time) * 1e3


class MemoryPool:
    """``cupy.cuda.MemoryPool``: live arrays' bytes; nothing is cached, so total == used."""

    def __init__(self, allocator: Any = None) -> None:
        self._limit = 0

    def used_bytes(self) -> int:
        return allocated_bytes()

    def total_bytes(self) -> int:
        return allocated_bytes()

    def free_bytes(self) -> int:
        return 0

    def n_free_blocks(self) -> int:
        return 0

    def free_all_blocks(self, stream: Any = None) -> None:
        return None

    def set_limit(self, size: Any = None, fraction: Any = None) -> None:
        self._limit = int(size or 0)

    def get_limit(self) -> int:
        return self._limit


class PinnedMemoryPool(MemoryPool):
    pass


def _runtime_module() -> types.ModuleType:
    runtime = types.ModuleType("cupy.cuda.runtime")
    runtime.CUDARuntimeError = CUDARuntimeError
    runtime.is_hip = False
    runtime.getDeviceCount = lambda: DEVICE_COUNT
    runtime.getDevice = get_device_id
    runtime.setDevice = lambda index: Device(index).use()
    runtime.getDeviceProperties = lambda index: dict(_PROPERTIES) if _check(index) >= 0 else {}
    runtime.runtimeGetVersion = lambda: 13000
    runtime.driverGetVersion = lambda: 13000
    runtime.deviceSynchronize = lambda: count_sync("runtime.deviceSynchronize")
    runtime.memGetInfo = lambda: Device().mem_info
    return runtime


class MemoryHook:
    """``cupy.cuda.memory_hook.MemoryHook``: inside ``with hook:``, ``malloc_postprocess`` is
    called for each new device buffer and ``free_postprocess`` when it is freed (keywords
    device_id, mem_size, mem_ptr, pmem_id, as CuPy's pool calls them)."""

    name = "MemoryHook"

    def __enter__(self) -> MemoryHook:
        from gradflow.testing.standin._array import _memory_hooks

        _memory_hooks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        from gradflow.testing.standin._array import _memory_hooks

        _memory_hooks.remove(self)

    def malloc_postprocess(self, **kwargs: Any) -> None:
        return None

    def free_postprocess(self, **kwargs: Any) -> None:
        return None


def _memory_hook_module() -> types.ModuleType:
    module = types.ModuleType("cupy.cuda.memory_hook")
    module.MemoryHook = MemoryHook
    return module


def _driver_module() -> types.ModuleType:
    driver = types.ModuleType("cupy.cuda.driver")
    driver.CUDADriverError = CUDADriverError
    driver.get_build_version = lambda: 13000
    return driver


def build(names: frozenset[str]) -> types.ModuleType:
    cuda = types.ModuleType("cupy.cuda")
    members = {
        "Device": Device,
        "Stream": Stream,
        "Event": Event,
        "MemoryPool": MemoryPool,
        "PinnedMemoryPool": PinnedMemoryPool,
        "get_current_stream": get_current_stream,
        "get_elapsed_time": get_elapsed_time,
        "get_device_id": get_device_id,
        "is_available": lambda: True,
        "runtime": _runtime_module(),
        "driver": _driver_module(),
    }
    from gradflow.testing.standin._array import MemoryPointer

    members["MemoryPointer"] = MemoryPointer
    members["memory_hook"] = _memory_hook_module()
    for name, value in members.items():
        if name not in names:
            raise AssertionError(f"cupy.cuda.{name} is not a CuPy 14.2 name")
        setattr(cuda, name, value)
    return cuda
