"""Matmul input gradient through an activation, dX = (dY * f'(Z)) @ W^T: NumPy on the CPU; on
a GPU, our fused tiled kernel vs CuPy (elementwise + cuBLAS) vs torch eager.

extra_info: flops (2 M N K), bytes_moved (dY, Z, W read once, dX written once), <side>_us,
<side>_GFLOPs, ratio_to_torch (torch eager, same device and inputs), and _util.record_figures'
run ceilings, fraction_of_ceiling (of the GEMM rate) and peak_memory_bytes. Shapes: two
DeepBench-like training GEMMs, scaled down for the CPU; the GPU test is marked gpu.

    pytest benchmarks/bench_matmul_backward.py                      # measure
    pytest benchmarks/bench_matmul_backward.py --benchmark-disable  # smoke
"""

from __future__ import annotations

import numpy as np
import pytest
from _kernel_bench_util import cupy_or_none, describe_traffic, gpu_median, record, torch_cuda_median
from _util import compare_with_torch, record_figures, torch_or_none

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


def torch_relu_matmul_bwd(torch, dy, z, w, device):
    tdy, tz, tw = (torch.as_tensor(a, device=device) for a in (dy, z, w))
    return lambda: torch.ops.aten.threshold_backward(tdy, tz, 0) @ tw.T


def _ids(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("size", [(128, 256, 256), (512, 1024, 1024)], ids=_ids)
def test_relu_matmul_bwd_numpy_cpu(benchmark, bench, size):
    m, n, k = bench.size(size, (16, 32, 24))
    dy, z, w = _inputs(np, m, n, k)
    nbytes, flops = _traffic(benchmark.extra_info, m, n, k)
    ours = lambda: numpy_relu_matmul_bwd(dy, z, w)  # noqa: E731
    torch = torch_or_none()
    theirs = None if torch is None else torch_relu_matmul_bwd(torch, dy, z, w, "cpu")
    compare_with_torch(benchmark, ours, theirs, bench.repeats, side="numpy")
    record_figures(benchmark, ours, "cpu", side="numpy", bytes_moved=nbytes, flops=flops)
    benchmark(ours)


@pytest.mark.gpu
@pytest.mark.parametrize("size", [(1024, 1024, 1024), (4096, 4096, 4096)], ids=_ids)
def test_relu_matmul_bwd_gpu(benchmark, bench, size):
    cupy = cupy_or_none()
    if cupy is None:
        pytest.skip("needs CuPy and a CUDA GPU")
    m, n, k = bench.size(size, (16, 32, 24))
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
        torch_fn = torch_relu_matmul_bwd(torch, dy, z, w, "cuda")
        record(info, "torch", torch_cuda_median(torch, torch_fn, reps), nbytes, flops)
        info["ratio_to_torch"] = round(info["kernel_us"] / info["torch_us"], 3)
    info["ratio_to_cublas_only"] = round(info["kernel_us"] / info["cublas_only_us"], 3)
    record_figures(benchmark, fused, "cuda", side="kernel", bytes_moved=nbytes, flops=flops)
    benchmark(lambda: (fused(), cupy.cuda.Device().synchronize()))
