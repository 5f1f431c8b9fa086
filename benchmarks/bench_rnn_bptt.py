"""RNN backpropagation through time: one LSTM or GRU layer, forward over T steps + backward,
for T in 25, 100, 400, against torch.nn.LSTM / GRU in the same run (the rnn workload of
gradflow.bench.workloads; torch's layer gets the same weights).

CPU shapes are DeepBench's RNN training shapes scaled for a 2-core CPU (RNN_CPU_SHAPE: B=16,
H=128, I=64); on a GPU (marked gpu) the target shape of docs/DESIGN.md §7 (RNN_GPU_SHAPE:
B=64, H=512, I=512; T=100 the target) against cuDNN.

extra_info (gradflow.bench.figures.compare): steps, batch, hidden, input; flops (the GEMMs of
forward and backward: 3 * 2 * T * B * G*H * (I + H), G = 4 for LSTM and 3 for GRU);
gradflow_ms / torch_ms and ratio_to_torch (below 1: gradflow is faster); gradflow_GFLOPs and
gemm_ceiling_GFLOPs (the BLAS rate of one GEMM as large as the input projection, the same
run), fraction_of_gemm; the run's ceilings (ceiling_gemm_GFLOPs: one square GEMM, measured
once per run), fraction_of_ceiling and peak_memory_bytes. T=400 takes a fifth of the repeats.

blas_threads records OPENBLAS_NUM_THREADS. torch runs on one thread
(gradflow.bench.machine.torch_or_none); OPENBLAS_NUM_THREADS=1 gives NumPy the same. The
per-step GEMMs are small (16 x 128 x 512): a second OpenBLAS thread does not pay for them, and
on a loaded 2-core machine the two threads wait on each other (LSTM T=400 measured 16x slower
than with one thread, 2026-11-21).

    OPENBLAS_NUM_THREADS=1 pytest benchmarks/bench_rnn_bptt.py  # measure, one thread each
    pytest benchmarks/bench_rnn_bptt.py --benchmark-disable       # smoke: tiny sizes, one pass
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from _util import measure, needs_gpu

from gradflow.bench import workloads


def _measure(benchmark: Any, bench: Any, mode: str, steps: int, shape: tuple, device: str) -> None:
    batch, hidden, n_in = bench.size(shape, (2, 8, 4))
    steps = bench.size(steps, max(2, steps // 25))
    benchmark.extra_info.update(steps=steps, batch=batch, hidden=hidden, input=n_in)
    rnn = workloads.rnn(mode, steps, batch, hidden, n_in)
    repeats = bench.repeats if steps <= 100 else max(1, bench.repeats // 5)
    loss = measure(benchmark, rnn.sides(device), repeats, unit="ms", flops=rnn.flops,
                   gemm=rnn.gemm, gemm_key="gemm_ceiling_GFLOPs")  # fmt: skip
    assert np.isfinite(float(loss.item()))


@pytest.mark.parametrize("steps", [25, 100, 400])
@pytest.mark.parametrize("mode", list(workloads.RNN_GATES))
def test_bptt_cpu(benchmark: Any, bench: Any, mode: str, steps: int) -> None:
    """Forward + backward of one layer over T steps on the CPU (NumPy route)."""
    benchmark.extra_info["blas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    _measure(benchmark, bench, mode, steps, workloads.RNN_CPU_SHAPE, "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("steps", [25, 100, 400])
@pytest.mark.parametrize("mode", list(workloads.RNN_GATES))
def test_bptt_gpu(benchmark: Any, bench: Any, mode: str, steps: int) -> None:
    """The GPU shape of docs/DESIGN.md §7: our kernels + cuBLAS against torch's cuDNN LSTM/GRU."""
    needs_gpu()
    _measure(benchmark, bench, mode, steps, workloads.RNN_GPU_SHAPE, "cuda")
