"""Conv2d forward + backward (dX, dW, db): gradflow against torch in the same run.

CPU: NumPy im2col + OpenBLAS GEMMs (gradflow/ops/conv.py) against torch CPU (oneDNN), torch
on GRADFLOW_BENCH_TORCH_THREADS intra-op threads (1 unless set; see _util.torch_or_none).
GPU: our im2col/col2im kernels + cuBLAS against torch (cuDNN).

Shapes (N, C, H=W, O, k, stride, padding): the digits CNN's first layer (64 images of 1x8x8,
32 filters 3x3, padding 1), and ResNet-style 3x3 layers scaled down for a 2-core CPU.

extra_info: flops (forward, dX and dW GEMMs: 3 * 2 * N*O*OH*OW * C*k*k), gradflow_us /
torch_us, gradflow_GFLOPs / torch_GFLOPs, ratio_to_torch (gradflow / torch: below 1 is
faster), gemm_GFLOPs (one GEMM of the forward's shape: the BLAS ceiling on this machine) and
fraction_of_gemm (gradflow_GFLOPs / gemm_GFLOPs); and _util.record_figures' run ceilings
(ceiling_gemm_GFLOPs: one square GEMM, measured once per run), fraction_of_ceiling and
peak_memory_bytes. The GPU test is marked gpu. gradflow, torch and the GEMM are timed in
alternating blocks (_util.paired_medians), so a loaded machine slows all three alike. NumPy's
BLAS uses its default threads (OPENBLAS_NUM_THREADS); on a busy 2-core machine a 2-thread
BLAS waits for its descheduled partner thread, so compare like with like
(OPENBLAS_NUM_THREADS=1 against torch's one thread, or GRADFLOW_BENCH_TORCH_THREADS=2).

    pytest benchmarks/bench_conv_backward.py                      # measure
    pytest benchmarks/bench_conv_backward.py --benchmark-disable  # smoke: tiny sizes, once
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _kernel_bench_util import cupy_or_none, gpu_median, torch_cuda_median
from _util import paired_medians, record_figures, torch_or_none

import gradflow
from gradflow.ops.conv import conv2d

# name: (N, C, H, O, k, stride, padding)
SHAPES = {
    "digits_cnn": (64, 1, 8, 32, 3, 1, 1),
    "resnet_3x3_c64": (8, 64, 32, 64, 3, 1, 1),
    "resnet_3x3_c128": (16, 128, 16, 128, 3, 1, 1),
    "resnet_3x3_s2": (16, 64, 32, 128, 3, 2, 1),
}
TINY = (2, 3, 6, 4, 3, 1, 1)


def _output_size(h: int, k: int, s: int, p: int) -> int:
    return (h + 2 * p - k) // s + 1


def _flops(n: int, c: int, h: int, o: int, k: int, s: int, p: int) -> int:
    out = _output_size(h, k, s, p)
    return 3 * 2 * n * o * out * out * c * k * k


def _arrays(n: int, c: int, h: int, o: int, k: int) -> tuple:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    w = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    return x, w, b


def make_step(framework: str, shape: tuple, device: str = "cpu") -> Any:
    """A function running conv2d forward and backward to x, weight and bias (grads cleared)."""
    n, c, h, o, k, s, p = shape
    arrays = _arrays(n, c, h, o, k)
    if framework == "torch":
        torch = torch_or_none()
        x, w, b = (torch.tensor(a, device=device, requires_grad=True) for a in arrays)
        conv = torch.nn.functional.conv2d
    else:
        x, w, b = (gradflow.tensor(a, device=device, requires_grad=True) for a in arrays)
        conv = conv2d
    out_hw = _output_size(h, k, s, p)
    lib = torch_or_none() if framework == "torch" else gradflow
    grad = lib.ones(n, o, out_hw, out_hw, device=device)

    def step() -> Any:
        x.grad = w.grad = b.grad = None
        y = conv(x, w, b, stride=s, padding=p)
        y.backward(grad)
        return y

    return step


def _gemm(shape: tuple) -> Any:
    """One float32 GEMM of the forward's shape, [O, C*k*k] @ [C*k*k, N*OH*OW] (NumPy's BLAS)."""
    n, c, h, o, k, s, p = shape
    rng = np.random.default_rng(1)
    a = rng.standard_normal((o, c * k * k)).astype(np.float32)
    b = rng.standard_normal((c * k * k, n * _output_size(h, k, s, p) ** 2)).astype(np.float32)
    return lambda: a @ b


@pytest.mark.parametrize("name", list(SHAPES))
def test_conv2d_forward_backward_cpu(benchmark: Any, bench: Any, name: str) -> None:
    shape = bench.size(SHAPES[name], TINY)
    info = benchmark.extra_info
    flops = _flops(*shape)
    info["shape"] = "N={} C={} H=W={} O={} k={} stride={} padding={}".format(*shape)
    info["flops"] = flops
    step = make_step("gradflow", shape)
    sides = {"gradflow": step, "gemm": _gemm(shape)}
    torch = torch_or_none()
    if torch is not None:
        sides["torch"] = make_step("torch", shape)
        info["torch_threads"] = torch.get_num_threads()
    # Timed in alternating blocks, so all three see the same machine load.
    seconds = dict(zip(sides, paired_medians(list(sides.values()), bench.repeats)))
    for side in ("gradflow", "torch"):
        if side in seconds:
            info[f"{side}_us"] = round(seconds[side] * 1e6, 2)
            info[f"{side}_GFLOPs"] = round(flops / seconds[side] / 1e9, 2)
    if "torch" in seconds:
        info["ratio_to_torch"] = round(seconds["gradflow"] / seconds["torch"], 3)
    info["gemm_GFLOPs"] = round(flops / 3 / seconds["gemm"] / 1e9, 2)
    info["fraction_of_gemm"] = round(info["gradflow_GFLOPs"] / info["gemm_GFLOPs"], 3)
    record_figures(benchmark, step, "cpu", flops=flops)
    y = benchmark(step)
    assert tuple(y.shape)[:2] == (shape[0], shape[3])


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(SHAPES))
def test_conv2d_forward_backward_gpu(benchmark: Any, bench: Any, name: str) -> None:
    cupy = cupy_or_none()
    if cupy is None:
        pytest.skip("needs CuPy and a CUDA GPU")
    n, c, h, o, k, s, p = bench.size(SHAPES[name], TINY)
    shape = (n * 8, c, h, o, k, s, p) if not bench.smoke else (n, c, h, o, k, s, p)  # fill it
    info = benchmark.extra_info
    flops = _flops(*shape)
    info["flops"] = flops
    step = make_step("gradflow", shape, "cuda")
    info["gradflow_us"] = round(gpu_median(step, bench.repeats) * 1e6, 2)
    info["gradflow_GFLOPs"] = round(flops / info["gradflow_us"] / 1e3, 2)
    torch = torch_or_none()
    if torch is not None and torch.cuda.is_available():
        torch_step = make_step("torch", shape, "cuda")
        info["torch_us"] = round(torch_cuda_median(torch, torch_step, bench.repeats) * 1e6, 2)
        info["ratio_to_torch"] = round(info["gradflow_us"] / info["torch_us"], 3)
    record_figures(benchmark, step, "cuda", flops=flops)
    benchmark(lambda: (step(), cupy.cuda.Device().synchronize()))
