"""Matmul input gradient through an activation, dX = (dY * f'(Z)) @ W^T: NumPy on the CPU; on
a GPU, our fused tiled kernel vs CuPy (elementwise + cuBLAS) vs torch eager.

extra_info: flops (2 M N K), bytes_moved (dY, Z, W read once, dX written once), <side>_us,
<side>_GFLOPs, ratio_to_torch on a GPU. Shapes: a DeepBench-like training GEMM, scaled down
for the CPU.

    pytest benchmarks/bench_matmul_backward.py                      # measure
    pytest benchmarks/bench_matmul_backward.py --benchmark-disable  # smoke
"""

from __future__ import annotations

import numpy as np
import pytest
from _kernel_bench_util import cupy_or_none, describe_traffic, gpu_median, record, torch_cuda_median
from _util import median_time, torch_or_none

from gradflow.kernels import fused_act_matmul_bwd


def numpy_relu_matmul_bwd(dy, z, w):
    g = dy * (z > 0)
    return g @ w.T


def _inputs(xp, m, n, k):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((m, n), (m, n), (k, n))]
    return tuple(xp.asarray(a) for a in arrays)


def _traffic(info, m, n, k):
    flops, nbytes = 2 * m * n * k, (2 * m * n + k * n + m * k) * 4
    describe_traffic(info, nbytes, flops)
    return nbytes, flops


def test_relu_matmul_bwd_numpy_cpu(benchmark, bench):
    m, n, k = bench.size((512, 1024, 1024), (16, 32, 24))
    dy, z, w = _inputs(np, m, n, k)
    nbytes, flops = _traffic(benchmark.extra_info, m, n, k)
    seconds = median_time(lambda: numpy_relu_matmul_bwd(dy, z, w), bench.repeats)
    record(benchmark.extra_info, "numpy", seconds, nbytes, flops)
    benchmark(numpy_relu_matmul_bwd, dy, z, w)


def test_relu_matmul_bwd_gpu(benchmark, bench):
    cupy = cupy_or_none()
    if cupy is None:
        pytest.skip("needs CuPy and a CUDA GPU")
    m, n, k = bench.size((4096, 4096, 4096), (16, 32, 24))
    dy, z, w = _inputs(cupy, m, n, k)
    info, reps = benchmark.extra_info, bench.repeats
    nbytes, flops = _traffic(info, m, n, k)
    fused = lambda: fused_act_matmul_bwd(dy, z, w, "relu")  # noqa: E731
    record(info, "kernel", gpu_median(fused, reps), nbytes, flops)
    record(
        info,
        "cupy_unfused",
        gpu_median(lambda: numpy_relu_matmul_bwd(dy, z, w), reps),
        nbytes,
        flops,
    )
    record(info, "cublas_only", gpu_median(lambda: dy @ w.T, reps), nbytes, flops)
    torch = torch_or_none()
    if torch is not None and torch.cuda.is_available():
        tdy, tz, tw = (torch.as_tensor(a, device="cuda") for a in (dy, z, w))
        torch_fn = lambda: torch.ops.aten.threshold_backward(tdy, tz, 0) @ tw.T  # noqa: E731
        record(info, "torch", torch_cuda_median(torch, torch_fn, reps), nbytes, flops)
        info["ratio_to_torch"] = round(info["kernel_us"] / info["torch_us"], 3)
    benchmark(lambda: (fused(), cupy.cuda.Device().synchronize()))
