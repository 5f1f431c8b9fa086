"""Matmul input gradient through an activation, dX = (dY * f'(Z)) @ W^T, on raw arrays: NumPy
on the CPU; on a GPU, our fused tiled kernel vs CuPy (elementwise + cuBLAS) vs cuBLAS alone
vs torch eager (relu_matmul_backward of gradflow.bench.array_workloads).

extra_info (gradflow.bench.figures.compare): flops (2 M N K), bytes_moved (dY, Z, W read
once, dX written once), <side>_us, <side>_GBps, <side>_GFLOPs, ratio_to_torch (torch eager,
same device and inputs) and, on a GPU, ratio_to_cublas_only; the run's ceilings,
fraction_of_ceiling (of the GEMM rate) and peak_memory_bytes. Shapes (M, N, K): two
DeepBench-like training GEMMs, scaled down for the CPU; the GPU test is marked gpu.

    pytest benchmarks/bench_matmul_backward.py                      # measure
    pytest benchmarks/bench_matmul_backward.py --benchmark-disable  # smoke
"""

from __future__ import annotations

import pytest
from _util import measure_arrays, needs_gpu

from gradflow.bench import array_workloads as arrays


def _ids(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("size", [(128, 256, 256), (512, 1024, 1024)], ids=_ids)
def test_relu_matmul_bwd_numpy_cpu(benchmark, bench, size):
    m, n, k = bench.size(size, (16, 32, 24))
    measure_arrays(benchmark, bench, arrays.relu_matmul_backward(m, n, k))


@pytest.mark.gpu
@pytest.mark.parametrize("size", [(1024, 1024, 1024), (4096, 4096, 4096)], ids=_ids)
def test_relu_matmul_bwd_gpu(benchmark, bench, size):
    needs_gpu()
    m, n, k = bench.size(size, (16, 32, 24))
    measure_arrays(benchmark, bench, arrays.relu_matmul_backward(m, n, k, "cuda"))
