"""Fused bias+activation backward and softmax cross-entropy: NumPy on the CPU; on a GPU, our
fused kernels vs the unfused CuPy sequence vs torch eager. And the layer that uses the first:
nn.Sequential(Linear, ReLU) forward + backward, fused (one LinearActivation node) vs unfused
(gradflow.nn.fusion.disabled()) vs torch eager, on every device.

Two sizes each; the GPU tests are marked gpu. extra_info: bytes_moved (the minimum: each input
read once, each output written once), <side>_us and <side>_GBps, ratio_to_torch (torch eager on
the same device and inputs), and _util.record_figures' run ceilings, fraction_of_ceiling and
peak_memory_bytes.

    pytest benchmarks/bench_fused.py                      # measure
    pytest benchmarks/bench_fused.py --benchmark-disable  # smoke
"""

from __future__ import annotations

import numpy as np
import pytest
from _kernel_bench_util import cupy_or_none, describe_traffic, gpu_median, record, torch_cuda_median
from _util import (
    compare_with_torch,
    paired_medians,
    record_figures,
    synced,
    torch_device_or_none,
    torch_or_none,
)

import gradflow
from gradflow import nn
from gradflow.bench.suites import torch_twin
from gradflow.kernels import bias_act_bwd, softmax_xent_bwd, softmax_xent_fwd
from gradflow.nn import fusion
from gradflow.testing.devices import device_params


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


def torch_bias_relu_bwd(torch, dy, z, device):
    tdy, tz = torch.as_tensor(dy, device=device), torch.as_tensor(z, device=device)

    def fn():
        dz = torch.ops.aten.threshold_backward(tdy, tz, 0)
        return dz, dz.sum(0)

    return fn


def torch_softmax_xent(torch, logits, target, device):
    tl = torch.as_tensor(logits, device=device).requires_grad_()
    tt = torch.as_tensor(target, device=device)

    def fn():
        loss = torch.nn.functional.cross_entropy(tl, tt)
        return torch.autograd.grad(loss, tl)

    return fn


def _ids(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("size", [(512, 256), (4096, 1024)], ids=_ids)
def test_bias_relu_bwd_numpy_cpu(benchmark, bench, size):
    n, c = bench.size(size, (64, 32))
    dy, z = _bias_inputs(np, n, c)
    ours = lambda: numpy_bias_relu_bwd(dy, z)  # noqa: E731
    torch = torch_or_none()
    theirs = None if torch is None else torch_bias_relu_bwd(torch, dy, z, "cpu")
    compare_with_torch(benchmark, ours, theirs, bench.repeats, side="numpy")
    record_figures(benchmark, ours, "cpu", side="numpy", bytes_moved=(3 * n * c + c) * 4)
    benchmark(ours)


@pytest.mark.parametrize("size", [(512, 1000), (4096, 1000)], ids=_ids)
def test_softmax_xent_numpy_cpu(benchmark, bench, size):
    n, c = bench.size(size, (64, 10))
    logits, target = _xent_inputs(np, n, c)
    ours = lambda: numpy_softmax_xent(logits, target)  # noqa: E731
    torch = torch_or_none()
    theirs = None if torch is None else torch_softmax_xent(torch, logits, target, "cpu")
    compare_with_torch(benchmark, ours, theirs, bench.repeats, side="numpy")
    record_figures(benchmark, ours, "cpu", side="numpy", bytes_moved=2 * n * c * 4 + n * 8)
    benchmark(ours)


def _gpu_or_skip():
    cupy = cupy_or_none()
    if cupy is None:
        pytest.skip("needs CuPy and a CUDA GPU")
    return cupy


@pytest.mark.gpu
@pytest.mark.parametrize("size", [(4096, 1024), (16384, 4096)], ids=_ids)
def test_bias_relu_bwd_gpu(benchmark, bench, size):
    cupy = _gpu_or_skip()
    n, c = bench.size(size, (64, 32))
    dy, z = _bias_inputs(cupy, n, c)
    info, reps = benchmark.extra_info, bench.repeats
    nbytes = (3 * n * c + c) * 4
    describe_traffic(info, nbytes)
    record(info, "kernel", gpu_median(lambda: bias_act_bwd(dy, z, "relu"), reps), nbytes)
    record(info, "cupy_unfused", gpu_median(lambda: numpy_bias_relu_bwd(dy, z, cupy), reps), nbytes)
    torch = torch_or_none()
    if torch is not None and torch.cuda.is_available():
        torch_fn = torch_bias_relu_bwd(torch, dy, z, "cuda")
        record(info, "torch", torch_cuda_median(torch, torch_fn, reps), nbytes)
        info["ratio_to_torch"] = round(info["kernel_us"] / info["torch_us"], 3)
    record_figures(benchmark, lambda: bias_act_bwd(dy, z, "relu"), "cuda", side="kernel",
                   bytes_moved=nbytes)  # fmt: skip
    benchmark(lambda: (bias_act_bwd(dy, z, "relu"), cupy.cuda.Device().synchronize()))


@pytest.mark.gpu
@pytest.mark.parametrize("size", [(4096, 1000), (16384, 1000)], ids=_ids)
def test_softmax_xent_gpu(benchmark, bench, size):
    cupy = _gpu_or_skip()
    n, c = bench.size(size, (64, 10))
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
        torch_fn = torch_softmax_xent(torch, logits, target, "cuda")
        record(info, "torch", torch_cuda_median(torch, torch_fn, reps), nbytes)
        info["ratio_to_torch"] = round(info["kernel_us"] / info["torch_us"], 3)
    record_figures(benchmark, ours, "cuda", side="kernel", bytes_moved=nbytes)
    benchmark(lambda: (ours(), cupy.cuda.Device().synchronize()))


def _layer_step(framework, rows, n_in, n_out, device):
    """Forward + backward of Sequential(Linear(n_in, n_out), ReLU) on a fixed batch."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((rows, n_in)).astype(np.float32)
    gradflow.manual_seed(0)
    layer = nn.Sequential(nn.Linear(n_in, n_out), nn.ReLU())
    if framework == "torch":
        torch = torch_or_none()
        layer = torch_twin(layer).to(device)
        x = torch.from_numpy(x_np).to(device).requires_grad_()
    else:
        layer = layer.to(device)
        x = gradflow.tensor(x_np, device=device, requires_grad=True)

    def step():
        layer(x).sum().backward()

    return synced(step, device, framework)


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("size", [(256, 512, 512), (2048, 1024, 1024)], ids=_ids)
def test_linear_relu_layer(benchmark, bench, device, size):
    rows, n_in, n_out = bench.size(size, (16, 32, 24))
    fused = _layer_step("gradflow", rows, n_in, n_out, device)
    step = _layer_step("gradflow", rows, n_in, n_out, device)

    def unfused():
        with fusion.disabled():
            step()

    sides = [fused, unfused]
    torch = torch_device_or_none(device)
    if torch is not None:
        sides.append(_layer_step("torch", rows, n_in, n_out, device))
    times = paired_medians(sides, bench.repeats)
    info = benchmark.extra_info
    info["fused_us"], info["unfused_us"] = (round(t * 1e6, 2) for t in times[:2])
    info["fused_over_unfused"] = round(times[0] / times[1], 3)
    if torch is not None:
        info["torch_us"] = round(times[2] * 1e6, 2)
        info["ratio_to_torch"] = round(times[0] / times[2], 3)
    flops = 6 * rows * n_in * n_out  # forward GEMM and the two backward GEMMs
    record_figures(benchmark, fused, device, side="fused", flops=flops)
    benchmark(fused)
