"""Helpers of the kernel benchmarks: the GPU (when CuPy sees one), CUDA timing, throughput.

The shared timing/torch helpers are in _util.py; this module adds what only the kernel
suites (bench_elementwise_backward, bench_fused, bench_matmul_backward) need.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from gradflow.bench.timing import time_calls


@cache
def cupy_or_none() -> Any:
    """The cupy module when it imports and sees a GPU, else None."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() == 0:
            return None
    except Exception:  # no CuPy, no driver or no device: the GPU side is skipped
        return None
    return cupy


def gpu_median(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median seconds of ``fn()`` on cuda:0's current stream: gradflow.bench's timer (CUDA
    events around each call, after a warm-up, which keeps compilation out, and a synchronize).
    """
    return statistics.median(time_calls(fn, "cuda", warmup, max(1, repeats)))


def torch_cuda_median(torch: Any, fn: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median seconds of a torch CUDA ``fn()``, synchronized around each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    return statistics.median(times)


def record(info: dict, name: str, seconds: float, bytes_moved: float = 0, flops: float = 0) -> None:
    """Put ``<name>_us`` and the derived ``<name>_GBps`` / ``<name>_GFLOPs`` in extra_info."""
    info[f"{name}_us"] = round(seconds * 1e6, 2)
    if bytes_moved:
        info[f"{name}_GBps"] = round(bytes_moved / seconds / 1e9, 2)
    if flops:
        info[f"{name}_GFLOPs"] = round(flops / seconds / 1e9, 2)


def describe_traffic(info: dict, bytes_moved: float, flops: float = 0) -> None:
    info["bytes_moved"] = int(bytes_moved)
    if flops:
        info["flops"] = int(flops)


def device_copy_seconds(nbytes: int, repeats: int) -> float:
    """Median time of a device-to-device copy of ``nbytes`` (the bandwidth ceiling; it moves
    2 * nbytes: a read and a write)."""
    cupy = cupy_or_none()
    src = cupy.empty(nbytes // 4, dtype=np.float32)
    dst = cupy.empty_like(src)
    return gpu_median(lambda: dst.__setitem__(Ellipsis, src), repeats)
