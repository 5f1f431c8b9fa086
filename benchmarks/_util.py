"""Glue between the pytest suites and gradflow.bench, which defines the workloads, the timer,
the ceilings and the torch comparison: `measure` records a comparison's figures in a test's
extra_info and hands our step to pytest-benchmark; `needs_gpu` skips without a GPU.

    from _util import measure, measure_arrays, needs_gpu

pytest puts this directory on ``sys.path`` because benchmarks/ is not a package.
"""

from __future__ import annotations

from typing import Any

import pytest

from gradflow import cuda
from gradflow.bench.array_workloads import ArrayWorkload
from gradflow.bench.figures import compare
from gradflow.bench.timing import Side, synced


def needs_gpu() -> None:
    """Skip the calling test unless CuPy sees a CUDA GPU."""
    if not cuda.is_available():
        pytest.skip("needs CuPy and a CUDA GPU")


def measure(benchmark: Any, sides: dict[str, Side | None], repeat: int, **options: Any) -> Any:
    """Put gradflow.bench.figures.compare(sides, repeat, **options) in extra_info, then time the
    first side (ours) with pytest-benchmark, synchronized on a GPU; returns its result."""
    benchmark.extra_info.update(compare(sides, repeat, **options))
    ours = next(iter(sides.values()))
    return benchmark(synced(ours.fn, ours.device, ours.framework))


def measure_arrays(benchmark: Any, bench: Any, work: ArrayWorkload, **options: Any) -> Any:
    """`measure` for an array-level backward (gradflow.bench.array_workloads), with its byte
    and FLOP counts."""
    counts = {"bytes_moved": work.bytes_moved, "flops": work.flops}
    return measure(benchmark, work.sides(), bench.repeats, **counts, **options)
