"""Helpers every benchmark suite shares: timing, the PyTorch comparison, the machine description.

The suites (engine, elementwise, matmul, conv, rnn, optim, train) import from here:

    from _util import compare_with_torch, median_time, torch_or_none

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
