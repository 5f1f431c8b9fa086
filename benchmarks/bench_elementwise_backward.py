"""Activation and binary-op backward on raw arrays: NumPy on the CPU; on a GPU, our kernels vs
CuPy vs torch (the workloads of gradflow.bench.array_workloads).

CPU: the NumPy formulation the ops use (written with out= to avoid temporaries) against
torch's own backward kernels on the CPU. GPU (when CuPy sees one; marked gpu):
gradflow.kernels.activation_bwd / binary_bwd against the same math as unfused CuPy array
expressions and against torch's backward kernels, with a device copy of the same size as the
ceiling (copy_GBps, fraction_of_copy_bw). Two sizes each. extra_info
(gradflow.bench.figures.compare): bytes_moved (reads + writes), <side>_us and <side>_GBps,
ratio_to_torch, the run's ceilings, fraction_of_ceiling and peak_memory_bytes.

    pytest benchmarks/bench_elementwise_backward.py                      # measure
    pytest benchmarks/bench_elementwise_backward.py --benchmark-disable  # smoke
"""

from __future__ import annotations

import pytest
from _util import measure_arrays, needs_gpu

from gradflow.bench import array_workloads as arrays


@pytest.mark.parametrize("size", [1 << 16, 1 << 22])
@pytest.mark.parametrize("name", arrays.ACTIVATIONS)
def test_activation_bwd_numpy_cpu(benchmark, bench, name, size):
    measure_arrays(benchmark, bench, arrays.activation_backward(name, bench.size(size, 1 << 10)))


@pytest.mark.parametrize("size", [1 << 16, 1 << 22])
def test_mul_bwd_numpy_cpu(benchmark, bench, size):
    measure_arrays(benchmark, bench, arrays.mul_backward(bench.size(size, 1 << 10)))


@pytest.mark.gpu
@pytest.mark.parametrize("size", [1 << 20, 1 << 24])
@pytest.mark.parametrize("name", arrays.ACTIVATIONS)
def test_activation_bwd_gpu(benchmark, bench, name, size):
    needs_gpu()
    n = bench.size(size, 1 << 12)
    work = arrays.activation_backward(name, n, "cuda")
    measure_arrays(benchmark, bench, work, copy_bytes=n * 4)


@pytest.mark.gpu
@pytest.mark.parametrize("size", [1 << 20, 1 << 24])
def test_mul_bwd_gpu(benchmark, bench, size):
    needs_gpu()
    measure_arrays(benchmark, bench, arrays.mul_backward(bench.size(size, 1 << 12), "cuda"))
