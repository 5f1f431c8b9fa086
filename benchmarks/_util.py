"""Helpers every benchmark suite shares: timing, the PyTorch comparison, the machine description.

The suites (engine, elementwise, fused, matmul, conv, rnn, optim, train) import from here:

    from _util import compare_with_torch, record_figures, torch_or_none

Every benchmark ends with ``record_figures(benchmark, step, device, bytes_moved=, flops=)``:
bytes and FLOPs, GB/s and GFLOP/s, the fraction of the run's cached ceiling and the peak
memory of one untimed call, under the same keys in every suite.

pytest puts this directory on ``sys.path`` because benchmarks/ is not a package.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

# The machine description and the torch import live in the package (gradflow bench uses them);
# re-exported here so the suites keep importing them from _util.
from gradflow.bench.machine import (  # noqa: F401
    TORCH_THREADS_VARIABLE,
    blas_info,
    cpu_model,
    describe_machine_line,
    machine_description,
    torch_or_none,
)


def median_time(fn: Callable[[], Any], repeats: int = 20, warmup: int = 2) -> float:
    """The median wall-clock time of ``fn()`` in seconds, over `repeats` calls after `warmup`."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_medians(
    fns: list[Callable[[], Any]], repeats: int = 20, warmup: int = 2, block: int = 5
) -> list[float]:
    """The median seconds of one call of each function, timed in alternating blocks of `block`
    calls, so every function sees the same machine load (a shared box drifts) while its caches
    stay warm within a block (call-by-call alternation made a 0.3 ms MLP step 40% slower)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    done = 0
    while done < max(1, repeats):
        n = min(block, max(1, repeats) - done)
        for fn, record in zip(fns, times):
            for _ in range(n):
                start = time.perf_counter()
                fn()
                record.append(time.perf_counter() - start)
        done += n
    return [statistics.median(t) for t in times]


def compare_with_torch(
    benchmark: Any,
    ours_fn: Callable[[], Any],
    torch_fn: Callable[[], Any] | None,
    repeats: int,
    per: int = 1,
    unit: str = "us",
    side: str = "gradflow",
) -> None:
    """Time `ours_fn` and `torch_fn` in alternating rounds; record both and the ratio.

    extra_info gets ``<side>_<unit>`` (side: "gradflow", or "numpy" where the suite times the
    NumPy formulation the ops use), ``torch_<unit>`` and ``ratio_to_torch`` (ours / torch:
    below 1 means gradflow is faster). `per` divides both times (e.g. the number of ops,
    for a per-op figure); `unit` is "us" or "ms". Works under ``--benchmark-disable`` too.
    """
    scale = {"us": 1e6, "ms": 1e3}[unit]
    info = benchmark.extra_info
    if torch_fn is None:
        (ours,) = paired_medians([ours_fn], repeats)
        info[f"{side}_{unit}"] = round(ours * scale / per, 3)
        info["torch"] = "not installed"
        return
    ours, theirs = paired_medians([ours_fn, torch_fn], repeats)
    info[f"{side}_{unit}"] = round(ours * scale / per, 3)
    info[f"torch_{unit}"] = round(theirs * scale / per, 3)
    info["ratio_to_torch"] = round(ours / theirs, 3)


def synced(fn: Callable[[], Any], device: str, framework: str = "gradflow") -> Callable[[], Any]:
    """`fn` on the CPU; on a GPU, `fn` followed by a synchronize of its framework's device, so
    a wall-clock timer (paired_medians) measures the work and not only its launch."""
    if not device.startswith("cuda"):
        return fn
    if framework == "torch":
        sync = torch_or_none().cuda.synchronize
    else:
        import cupy

        sync = cupy.cuda.Device().synchronize

    def call() -> Any:
        out = fn()
        sync()
        return out

    return call


def torch_device_or_none(device: str) -> Any:
    """torch when it is importable and can run on `device` ("cpu" or "cuda"), else None."""
    torch = torch_or_none()
    if torch is None or (device.startswith("cuda") and not torch.cuda.is_available()):
        return None
    return torch


def record_figures(
    benchmark: Any,
    step: Callable[[], Any],
    device: str = "cpu",
    *,
    side: str = "gradflow",
    bytes_moved: float = 0,
    flops: float = 0,
    seconds: float | None = None,
) -> None:
    """The figures every suite records in extra_info, besides its own times and torch ratios.

    - ``device``, and ``bytes_moved`` / ``flops`` when the family has a natural count;
    - ``<side>_GBps`` / ``<side>_GFLOPs`` from `seconds` (by default the ``<side>_us`` or
      ``<side>_ms`` already in extra_info), unless the suite recorded them itself;
    - the run's ceilings, measured once per run and device (gradflow.bench.ceilings caches
      them): ``ceiling_copy_GBps`` (device copy bandwidth) and ``ceiling_gemm_GFLOPs`` (the
      float32 BLAS/cuBLAS GEMM rate), and ``fraction_of_ceiling``: FLOP/s over the GEMM rate
      when FLOPs are counted, else GB/s over the copy bandwidth (as `gradflow bench` does);
    - ``peak_memory_bytes``: one extra, untimed ``step()`` under gradflow.bench.timing's
      peak_memory (tracemalloc on the CPU, CuPy's pool on a GPU).
    """
    from gradflow.bench.ceilings import ceilings
    from gradflow.bench.timing import peak_memory

    info = benchmark.extra_info
    info["device"] = device
    if seconds is None:
        for unit, scale in (("us", 1e-6), ("ms", 1e-3)):
            if f"{side}_{unit}" in info:
                seconds = info[f"{side}_{unit}"] * scale
    ceiling = ceilings(device)
    info["ceiling_copy_GBps"] = round(ceiling["copy_GBps"], 2)
    info["ceiling_gemm_GFLOPs"] = round(ceiling["gemm_TFLOPs"] * 1e3, 2)
    fraction = None
    if bytes_moved:
        info["bytes_moved"] = int(bytes_moved)
        if seconds:
            gbps = bytes_moved / seconds / 1e9
            info.setdefault(f"{side}_GBps", round(gbps, 2))
            fraction = gbps / ceiling["copy_GBps"]
    if flops:
        info["flops"] = int(flops)
        if seconds:
            gflops = flops / seconds / 1e9
            info.setdefault(f"{side}_GFLOPs", round(gflops, 2))
            fraction = gflops / (ceiling["gemm_TFLOPs"] * 1e3)
    if fraction is not None:
        info["fraction_of_ceiling"] = round(fraction, 4)
    info["peak_memory_bytes"] = peak_memory(step, device)
