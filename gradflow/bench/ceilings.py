"""The ceilings a figure is compared with, measured once per process and device: the device
copy bandwidth (a large array copy) and the BLAS/cuBLAS float32 GEMM rate (a square matmul)."""

from __future__ import annotations

from functools import cache

import numpy

from gradflow.backend import Device, get_array_module
from gradflow.bench.timing import time_calls

# CPU sizes are kept small enough for a 2-core machine to measure both in well under a second,
# yet past the last-level cache (copy) and large enough for BLAS to reach its rate (GEMM).
COPY_BYTES = {"cpu": 64 * 2**20, "cuda": 1 * 2**30}
GEMM_SIDE = {"cpu": 1024, "cuda": 8192}


@cache
def copy_bandwidth(device: str = "cpu") -> float:
    """Bytes per second of a device-to-device copy, counting the read and the write."""
    dev = Device(device)
    xp = get_array_module(dev)
    n = COPY_BYTES[dev.type] // 4
    with _on(dev):
        src = xp.ones(n, dtype=numpy.float32)
        dst = xp.empty_like(src)
        times = time_calls(lambda: xp.copyto(dst, src), dev, warmup=2, repeat=7)
    return 2 * n * 4 / min(times)


@cache
def gemm_rate(device: str = "cpu") -> float:
    """FLOPs per second of one square float32 matmul (NumPy's BLAS or cuBLAS)."""
    dev = Device(device)
    xp = get_array_module(dev)
    side = GEMM_SIDE[dev.type]
    with _on(dev):
        a = xp.ones((side, side), dtype=numpy.float32)
        b = xp.ones((side, side), dtype=numpy.float32)
        times = time_calls(lambda: a @ b, dev, warmup=1, repeat=5)
    return 2 * side**3 / min(times)


def ceilings(device: str = "cpu") -> dict:
    """Both ceilings of `device` as a dict (GB/s and TFLOP/s), measured once and cached."""
    key = str(Device(device))
    return {"copy_GBps": copy_bandwidth(key) / 1e9, "gemm_TFLOPs": gemm_rate(key) / 1e12}


def _on(dev: Device):
    """A context placing CuPy allocations on `dev`'s GPU (nothing on the CPU)."""
    from contextlib import nullcontext

    return get_array_module(dev).cuda.Device(dev.index) if dev.type == "cuda" else nullcontext()
