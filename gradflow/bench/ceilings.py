"""The ceilings a figure is compared with: the device copy bandwidth (a large array copy) and
the BLAS/cuBLAS float32 GEMM rate (a square matmul), measured once per process and device,
and the same two at a workload's own size; the fraction of a ceiling a figure reaches.

A memory-bound case is compared with a copy of its own working set (case_ceilings), not the
64 MiB copy: a case whose arrays sit in a cache runs at cache bandwidth, and against a copy
from DRAM relu backward at 16K elements read 168-186% of the ceiling."""

from __future__ import annotations

import contextlib
import glob
import os
from functools import cache

import numpy

from gradflow.backend import Device, get_array_module
from gradflow.bench.timing import time_calls

# CPU sizes are kept small enough for a 2-core machine to measure both in well under a second,
# yet past the last-level cache (copy) and large enough for BLAS to reach its rate (GEMM).
COPY_BYTES = {"cpu": 64 * 2**20, "cuda": 1 * 2**30}
GEMM_SIDE = {"cpu": 1024, "cuda": 8192}
# A copy smaller than this is repeated within one timed call, so the timer's own overhead
# (a few µs) does not lower the ceiling of a small working set.
MIN_TIMED_BYTES = 16 * 2**20
SMALLEST_COPY = 4096


def copy_rate(nbytes: int, device: str = "cpu", repeat: int = 7) -> float:
    """Bytes per second of the best of `repeat` device-to-device copies of `nbytes`, counting
    the read and the write; a copy under MIN_TIMED_BYTES is timed as a loop of as many copies
    as make up that size (one copy call each, as a NumPy or CuPy op would make)."""
    dev = Device(device)
    xp = get_array_module(dev)
    n = max(1, nbytes // 4)
    number = max(1, MIN_TIMED_BYTES // (4 * n))
    with _on(dev):
        src = xp.ones(n, dtype=numpy.float32)
        dst = xp.empty_like(src)

        def copies() -> None:
            for _ in range(number):
                xp.copyto(dst, src)

        times = time_calls(copies, dev, warmup=2, repeat=repeat)
    return 2 * n * 4 * number / min(times)


def gemm_rate_of(rows: int, inner: int, cols: int, device: str = "cpu", repeat: int = 5) -> float:
    """FLOPs per second of the best of `repeat` float32 (rows, inner) @ (inner, cols) matmuls
    (NumPy's BLAS or cuBLAS): the rate a workload made of GEMMs of that shape could reach."""
    dev = Device(device)
    xp = get_array_module(dev)
    with _on(dev):
        a = xp.ones((rows, inner), dtype=numpy.float32)
        b = xp.ones((inner, cols), dtype=numpy.float32)
        times = time_calls(lambda: a @ b, dev, warmup=1, repeat=repeat)
    return 2 * rows * inner * cols / min(times)


@cache
def copy_bandwidth(device: str = "cpu") -> float:
    """Bytes per second of a large device-to-device copy, counting the read and the write."""
    return copy_rate(COPY_BYTES[Device(device).type], device)


@cache
def gemm_rate(device: str = "cpu") -> float:
    """FLOPs per second of one square float32 matmul (NumPy's BLAS or cuBLAS)."""
    side = GEMM_SIDE[Device(device).type]
    return gemm_rate_of(side, side, side, device)


def ceilings(device: str = "cpu") -> dict:
    """Both ceilings of `device` as a dict (GB/s and TFLOP/s), measured once and cached."""
    key = str(Device(device))
    return {"copy_GBps": copy_bandwidth(key) / 1e9, "gemm_TFLOPs": gemm_rate(key) / 1e12}


@cache
def _copy_rate_cached(nbytes: int, device: str) -> float:
    return copy_rate(nbytes, device)


def last_level_cache_bytes() -> int | None:
    """The CPU's largest data cache in bytes (Linux's /sys, else sysconf), or None where the
    OS does not say."""
    sizes = []
    for index in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(f"{index}/type", encoding="ascii") as f:
                kind = f.read().strip()
            with open(f"{index}/size", encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if kind != "Instruction" and digits.isdigit():
            sizes.append(int(digits) * scale)
    for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        with contextlib.suppress(ValueError, OSError):
            sizes.append(os.sysconf(name) or 0)
    return max(sizes, default=0) or None


def working_set_copy_bytes(bytes_moved: float, device: str = "cpu") -> int:
    """The size of the copy whose working set (source and destination) matches a case's
    `bytes_moved` (each of its bytes read or written once): half of it, rounded down to a
    power of two (so the copy's arrays fit wherever the case's do: the ceiling errs high),
    between SMALLEST_COPY and the large copy of COPY_BYTES."""
    largest = COPY_BYTES[Device(device).type]
    half = max(SMALLEST_COPY, min(largest, int(bytes_moved) // 2))
    return 1 << (half.bit_length() - 1)


def case_ceilings(device: str, bytes_moved: float = 0) -> dict:
    """The ceilings of one case: ceilings(device), with copy_GBps measured at the case's
    working set (working_set_copy_bytes, cached per size) when it counts bytes, and
    ``working_set_bytes``, ``copy_bytes`` and ``cache_resident`` (on the CPU: whether the
    working set fits in the last-level cache; False on a GPU and when the size is unknown)."""
    key = str(Device(device))
    run = ceilings(key)
    if not bytes_moved:
        return {**run, "working_set_bytes": 0, "copy_bytes": 0, "cache_resident": False}
    size = working_set_copy_bytes(bytes_moved, key)
    llc = last_level_cache_bytes() if Device(key).type == "cpu" else None
    copy = copy_bandwidth(key) if size >= COPY_BYTES[Device(key).type] else None
    return {
        **run,
        "copy_GBps": (copy or _copy_rate_cached(size, key)) / 1e9,
        "working_set_bytes": int(bytes_moved),
        "copy_bytes": size,
        "cache_resident": llc is not None and bytes_moved <= llc,
    }


def fraction_of_ceiling(
    seconds: float, ceiling: dict, bytes_moved: float = 0, flops: float = 0
) -> float | None:
    """FLOP/s over the GEMM rate when FLOPs are counted, else GB/s over the copy bandwidth;
    None when neither is counted. `ceiling` is what ceilings() returns."""
    if flops:
        return flops / seconds / 1e12 / ceiling["gemm_TFLOPs"]
    if bytes_moved:
        return bytes_moved / seconds / 1e9 / ceiling["copy_GBps"]
    return None


def _on(dev: Device):
    """A context placing CuPy allocations on `dev`'s GPU (nothing on the CPU)."""
    from contextlib import nullcontext

    return get_array_module(dev).cuda.Device(dev.index) if dev.type == "cuda" else nullcontext()
