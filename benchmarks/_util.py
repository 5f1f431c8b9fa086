"""Helpers every benchmark suite shares: timing, the PyTorch comparison, the machine description.

The suites (engine, elementwise, matmul, conv, rnn, optim, train) import from here:

    from _util import compare_with_torch, median_time, torch_or_none

pytest puts this directory on ``sys.path`` because benchmarks/ is not a package.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy


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


TORCH_THREADS_VARIABLE = "GRADFLOW_BENCH_TORCH_THREADS"


@cache
def torch_or_none() -> Any:
    """The torch module when it is importable, else None (torch is never a dependency).

    torch runs with one intra-op thread unless GRADFLOW_BENCH_TORCH_THREADS says otherwise:
    in one process beside NumPy's OpenBLAS pool, torch's OpenMP pool oversubscribes a 2-core
    machine (both spin-wait), and a 0.3 ms MLP step took 75 ms, for gradflow and torch alike.
    One torch thread was also torch's faster setting for the engine suite's sizes.
    """
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ.get(TORCH_THREADS_VARIABLE, "1")))
    return torch


def compare_with_torch(
    benchmark: Any,
    ours_fn: Callable[[], Any],
    torch_fn: Callable[[], Any] | None,
    repeats: int,
    per: int = 1,
    unit: str = "us",
) -> None:
    """Time `ours_fn` and `torch_fn` in alternating rounds; record both and the ratio.

    extra_info gets ``gradflow_<unit>``, ``torch_<unit>`` and ``ratio_to_torch`` (gradflow /
    torch: below 1 means gradflow is faster). `per` divides both times (e.g. the number of ops,
    for a per-op figure); `unit` is "us" or "ms". Works under ``--benchmark-disable`` too.
    """
    scale = {"us": 1e6, "ms": 1e3}[unit]
    info = benchmark.extra_info
    if torch_fn is None:
        (ours,) = paired_medians([ours_fn], repeats)
        info[f"gradflow_{unit}"] = round(ours * scale / per, 3)
        info["torch"] = "not installed"
        return
    ours, theirs = paired_medians([ours_fn, torch_fn], repeats)
    info[f"gradflow_{unit}"] = round(ours * scale / per, 3)
    info[f"torch_{unit}"] = round(theirs * scale / per, 3)
    info["ratio_to_torch"] = round(ours / theirs, 3)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() where that is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> str:
    """The BLAS NumPy was built against (name and version), as NumPy reports it."""
    try:
        config = numpy.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def machine_description() -> dict:
    """What a benchmark figure depends on: CPU, cores, Python, NumPy/BLAS, torch, CuPy/GPU."""
    desc = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "blas": blas_info(),
    }
    torch = torch_or_none()
    if torch is not None:
        desc["torch"] = torch.__version__
        desc["torch_threads"] = torch.get_num_threads()
    try:
        import gradflow

        desc["gradflow"] = gradflow.__version__
        desc["gpu"] = gradflow.cuda.is_available()
    except Exception as exc:  # the description must never break a run
        desc["gradflow"] = f"unavailable ({exc})"
    return desc


def describe_machine_line() -> str:
    """The machine description as one line, for result files and the README table."""
    d = machine_description()
    return ", ".join(f"{k}={v}" for k, v in d.items())
