"""The ceilings a figure is compared with: the device copy bandwidth (a large array copy) and
the BLAS/cuBLAS float32 GEMM rate (a square matmul), measured once per process and device,
and the same two at a workload's own size; the fraction of a ceiling a figure reaches."""

from __future__ import annotations

from functools import cache

import numpy

from gradflow.backend import Device, get_array_module
from gradflow.bench.timing import time_calls

# CPU sizes are kept small enough for a 2-core machine to measure both in well under a second,
# yet past the last-level cache (copy) and large enough for BLAS to reach its rate (GEMM).
COPY_BYTES = {"cpu": 64 * 2**20, "cuda": 1 * 2**30}
GEMM_SIDE = {"cpu": 1024, "cuda": 8192}


def copy_rate(nbytes: int, device: str = "cpu", repeat: int = 7) -> float:
    """Bytes per second of the best of `repeat` device-to-device copies of `nbytes`, counting
    the read and the write."""
    dev = Device(device)
    xp = get_array_module(dev)
    n = max(1, nbytes // 4)
    with _on(dev):
        src = xp.ones(n, dtype=numpy.float32)
        dst = xp.empty_like(src)
        times = time_calls(lambda: xp.copyto(dst, src), dev, warmup=2, repeat=repeat)
    return 2 * n * 4 / min(times)


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
