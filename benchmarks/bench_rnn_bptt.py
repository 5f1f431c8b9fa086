"""RNN backpropagation through time: one LSTM or GRU layer, forward over T steps + backward,
for T in 25, 100, 400, against torch.nn.LSTM / GRU in the same run.

CPU shapes are DeepBench's RNN training shapes scaled for a 2-core CPU (B=16, H=128, I=64);
on a GPU the DESIGN target shape (B=64, H=512, I=512; T=100 the target) against cuDNN.

extra_info: steps, batch, hidden, input; flops (the GEMMs of forward and backward:
3 * 2 * T * B * G*H * (I + H), G = 4 for LSTM and 3 for GRU); gradflow_ms / torch_ms and
ratio_to_torch (below 1: gradflow is faster); gradflow_GFLOPs and gemm_ceiling_GFLOPs (the
BLAS rate of one GEMM as large as the input projection, the same run), fraction_of_gemm; and
_util.record_figures' run ceilings (ceiling_gemm_GFLOPs: one square GEMM, measured once per
run), fraction_of_ceiling and peak_memory_bytes. The GPU test (marked gpu) varies T too.

blas_threads records OPENBLAS_NUM_THREADS. torch runs on one thread (_util.torch_or_none);
OPENBLAS_NUM_THREADS=1 gives NumPy the same. The per-step GEMMs are small (16 x 128 x 512):
a second OpenBLAS thread does not pay for them, and on a loaded 2-core machine the two threads
wait on each other (LSTM T=400 measured 16x slower than with one thread, 2026-11-21).

    OPENBLAS_NUM_THREADS=1 pytest benchmarks/bench_rnn_bptt.py  # measure, one thread each
    pytest benchmarks/bench_rnn_bptt.py --benchmark-disable       # smoke: tiny sizes, one pass
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from _kernel_bench_util import cupy_or_none, gpu_median, torch_cuda_median
from _util import compare_with_torch, median_time, record_figures, torch_or_none

import gradflow
from gradflow.nn.rnn import GRU, LSTM

GATES = {"lstm": 4, "gru": 3}
CPU_SHAPE = (16, 128, 64)  # batch, hidden, input
GPU_SHAPE = (64, 512, 512)


def _models(mode: str, n_in: int, hidden: int, device: str) -> tuple:
    """Our layer and, when torch is importable (with CUDA for device "cuda"), torch's with the
    same float32 weights, else None."""
    ours = (LSTM if mode == "lstm" else GRU)(n_in, hidden)
    torch = torch_or_none()
    theirs = None
    if torch is not None and (device == "cpu" or torch.cuda.is_available()):
        theirs = getattr(torch.nn, mode.upper())(n_in, hidden)
        with torch.no_grad():
            for name, p in theirs.named_parameters():
                p.copy_(torch.as_tensor(getattr(ours, name).detach().numpy()))
        theirs = theirs.to(device)
    return ours.to(device=device), theirs


def make_step(model: Any, x: Any) -> Callable[[], Any]:
    """One forward over the whole sequence plus backward (loss = sum of the outputs)."""

    def step() -> Any:
        out, _ = model(x)
        loss = out.sum()
        loss.backward()
        for p in model.parameters():
            p.grad = None
        return loss

    return step


def _inputs(steps: int, batch: int, n_in: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((steps, batch, n_in)).astype(np.float32)


def _describe(info: dict, mode: str, steps: int, batch: int, hidden: int, n_in: int) -> int:
    flops = 3 * 2 * steps * batch * GATES[mode] * hidden * (n_in + hidden)
    info.update(steps=steps, batch=batch, hidden=hidden, input=n_in, flops=flops)
    return flops


def _gemm_ceiling(xp: Any, rows: int, inner: int, cols: int, timer: Callable) -> float:
    """FLOP/s of one (rows, inner) @ (inner, cols) float32 GEMM on this device."""
    a = xp.ones((rows, inner), dtype=np.float32)
    b = xp.ones((inner, cols), dtype=np.float32)
    return 2 * rows * inner * cols / timer(lambda: a @ b)


@pytest.mark.parametrize("steps", [25, 100, 400])
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_bptt_cpu(benchmark: Any, bench: Any, mode: str, steps: int) -> None:
    """Forward + backward of one layer over T steps on the CPU (NumPy route)."""
    batch, hidden, n_in = bench.size(CPU_SHAPE, (2, 8, 4))
    steps = bench.size(steps, max(2, steps // 25))
    ours, theirs = _models(mode, n_in, hidden, "cpu")
    x_np = _inputs(steps, batch, n_in)
    step = make_step(ours, gradflow.tensor(x_np))
    loss = benchmark(step)
    assert np.isfinite(float(loss.item()))
    info = benchmark.extra_info
    flops = _describe(info, mode, steps, batch, hidden, n_in)
    info["blas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    torch_step = None
    if theirs is not None:
        torch_step = make_step(theirs, torch_or_none().as_tensor(x_np))
    repeats = bench.repeats if steps <= 100 else max(1, bench.repeats // 5)
    compare_with_torch(benchmark, step, torch_step, repeats, unit="ms")
    seconds = info["gradflow_ms"] / 1e3
    ceiling = _gemm_ceiling(np, steps * batch, n_in, GATES[mode] * hidden,
                            lambda fn: median_time(fn, max(3, repeats)))  # fmt: skip
    info["gradflow_GFLOPs"] = round(flops / seconds / 1e9, 2)
    info["gemm_ceiling_GFLOPs"] = round(ceiling / 1e9, 2)
    info["fraction_of_gemm"] = round(flops / seconds / ceiling, 3)
    record_figures(benchmark, step, "cpu", flops=flops)


@pytest.mark.gpu
@pytest.mark.parametrize("steps", [25, 100, 400])
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_bptt_gpu(benchmark: Any, bench: Any, mode: str, steps: int) -> None:
    """The DESIGN's GPU shape: our kernels + cuBLAS against torch's cuDNN LSTM/GRU."""
    cupy = cupy_or_none()
    if cupy is None:
        pytest.skip("needs CuPy and a CUDA GPU")
    batch, hidden, n_in = bench.size(GPU_SHAPE, (2, 8, 4))
    steps = bench.size(steps, max(2, steps // 25))
    ours, theirs = _models(mode, n_in, hidden, "cuda")
    x_np = _inputs(steps, batch, n_in)
    step = make_step(ours, gradflow.tensor(x_np, device="cuda"))
    info = benchmark.extra_info
    flops = _describe(info, mode, steps, batch, hidden, n_in)
    seconds = gpu_median(step, bench.repeats)
    info["gradflow_ms"] = round(seconds * 1e3, 3)
    info["gradflow_GFLOPs"] = round(flops / seconds / 1e9, 2)
    if theirs is not None:
        torch = torch_or_none()
        torch_step = make_step(theirs, torch.as_tensor(x_np, device="cuda"))
        torch_seconds = torch_cuda_median(torch, torch_step, bench.repeats)
        info["torch_ms"] = round(torch_seconds * 1e3, 3)
        info["ratio_to_torch"] = round(seconds / torch_seconds, 3)
    record_figures(benchmark, step, "cuda", flops=flops)
    benchmark(lambda: (step(), cupy.cuda.Device().synchronize()))
