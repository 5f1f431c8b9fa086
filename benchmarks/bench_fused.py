"""Fused bias+activation backward and softmax cross-entropy: NumPy on the CPU; on a GPU, our
fused kernels vs the unfused CuPy sequence vs torch eager.

extra_info: bytes_moved (the minimum: each input read once, each output written once),
<side>_us and <side>_GBps, ratio_to_torch on a GPU.

    pytest benchmarks/bench_fused.py                      # measure
    pytest benchmarks/bench_fused.py --benchmark-disable  # smoke
"""

from __future__ import annotations

import numpy as np
import pytest
from _kernel_bench_util import cupy_or_none, describe_traffic, gpu_median, record, torch_cuda_median
from _util import median_time, torch_or_none

from gradflow.kernels import bias_act_bwd, softmax_xent_bwd, softmax_xent_fwd


def numpy_bias_relu_bwd(dy, z, xp=np):
    dz = dy * (z > 0)
    return dz, dz.sum(axis=0)


def numpy_softmax_xent(logits, target, xp=np):
    """Mean cross-entropy and its logits gradient, as the NumPy op computes them."""
    m = logits.max(axis=1, keepdims=True)
    shifted = logits - m
    lse = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    rows = xp.arange(logits.shape[0])
    loss = (lse[:, 0] - shifted[rows, target]).mean()
    grad = xp.exp(shifted - lse)
    grad[rows, target] -= 1
    grad /= logits.shape[0]
    return loss, grad


def _bias_inputs(xp, n, c):
    rng = np.random.default_rng(0)
    return tuple(xp.asarray(rng.standard_normal((n, c)).astype(np.float32)) for _ in range(2))


def _xent_inputs(xp, n, c):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n, c)).astype(np.float32)
    return xp.asarray(logits), xp.asarray(rng.integers(0, c, n).astype(np.int64))


def test_bias_relu_bwd_numpy_cpu(benchmark, bench):
    n, c = bench.size((4096, 1024), (64, 32))
    dy, z = _bias_inputs(np, n, c)
    nbytes = (3 * n * c + c) * 4
    describe_traffic(benchmark.extra_info, nbytes)
    record(
        benchmark.extra_info,
        "numpy",
        median_time(lambda: numpy_bias_relu_bwd(dy, z), bench.repeats),
        nbytes,
    )
    benchmark(numpy_bias_relu_bwd, dy, z)


def test_softmax_xent_numpy_cpu(benchmark, bench):
    n, c = bench.size((4096, 1000), (64, 10))
    logits, target = _xent_inputs(np, n, c)
    nbytes = 2 * n * c * 4 + n * 8
    describe_traffic(benchmark.extra_info, nbytes)
    seconds = median_time(lambda: numpy_softmax_xent(logits, target), bench.repeats)
    record(benchmark.extra_info, "numpy", seconds, nbytes)
    benchmark(numpy_softmax_xent, logits, target)


def _gpu_or_skip():
    cupy = cupy_or_none()
    if cupy is None:
        pytest.skip("needs CuPy and a CUDA GPU")
    return cupy


def test_bias_relu_bwd_gpu(benchmark, bench):
    cupy = _gpu_or_skip()
    n, c = bench.size((16384, 4096), (64, 32))
    dy, z = _bias_inputs(cupy, n, c)
    info, reps = benchmark.extra_info, bench.repeats
    nbytes = (3 * n * c + c) * 4
    describe_traffic(info, nbytes)
    record(info, "kernel", gpu_median(lambda: bias_act_bwd(dy, z, "relu"), reps), nbytes)
    record(info, "cupy_unfused", gpu_median(lambda: numpy_bias_relu_bwd(dy, z, cupy), reps), nbytes)
    torch = torch_or_none()
    if torch is not None and torch.cuda.is_available():
        tdy, tz = torch.as_tensor(dy, device="cuda"), torch.as_tensor(z, device="cuda")

        def torch_fn():
            dz = torch.ops.aten.threshold_backward(tdy, tz, 0)
            return dz, dz.sum(0)

        record(info, "torch", torch_cuda_median(torch, torch_fn, reps), nbytes)
        info["ratio_to_torch"] = round(info["kernel_us"] / info["torch_us"], 3)
    benchmark(lambda: (bias_act_bwd(dy, z, "relu"), cupy.cuda.Device().synchronize()))


def test_softmax_xent_gpu(benchmark, bench):
    cupy = _gpu_or_skip()
    n, c = bench.size((16384, 1000), (64, 10))
    logits, target = _xent_inputs(cupy, n, c)
    info, reps = benchmark.extra_info, bench.repeats
    nbytes = 2 * n * c * 4 + n * 8
    describe_traffic(info, nbytes)

    def ours():
        loss, lse = softmax_xent_fwd(logits, target)
        return loss.mean(), softmax_xent_bwd(logits, lse, target, 1.0 / n)

    record(info, "kernel", gpu_median(ours, reps), nbytes)
    record(
        info,
        "cupy_unfused",
        gpu_median(lambda: numpy_softmax_xent(logits, target, cupy), reps),
        nbytes,
    )
    torch = torch_or_none()
    if torch is not None and torch.cuda.is_available():
        tl = torch.as_tensor(logits, device="cuda").requires_grad_()
        tt = torch.as_tensor(target, device="cuda")

        def torch_fn():
            loss = torch.nn.functional.cross_entropy(tl, tt)
            return torch.autograd.grad(loss, tl)

        record(info, "torch", torch_cuda_median(torch, torch_fn, reps), nbytes)
        info["ratio_to_torch"] = round(info["kernel_us"] / info["torch_us"], 3)
    benchmark(lambda: (ours(), cupy.cuda.Device().synchronize()))
