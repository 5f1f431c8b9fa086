"""Scaled dot-product attention forward + backward (dQ, dK, dV): gradflow's
F.scaled_dot_product_attention against torch's in the same run, float32 q, k, v of shape
(B, H, T, D), without and with is_causal (the attention workload of gradflow.bench.workloads;
`gradflow bench --suite attention` runs the same cases).

CPU: issue 16's shape, B=8, H=8, D=64, at T=128 (the target: within 1.3x of torch) and
T=512; gradflow's NumPy route (batched GEMMs through OpenBLAS, the whole (T, T) score matrix
P kept for the backward) against torch's CPU kernel (a flash-attention kernel that never
builds P), torch on GRADFLOW_BENCH_TORCH_THREADS intra-op threads (1 unless set). GPU (marked
gpu): T=512 and 1024, the route gradflow's dispatch table picks (the row softmax kernels +
cuBLAS, or the tiled kernels) against torch's fused kernels.

One process runs both sides, and on the CPU that changes gradflow's figure: torch's
allocations raise glibc's dynamic mmap threshold, after which gradflow's multi-MiB arrays are
reused from the heap instead of being faulted in afresh on every call. Alone in a process,
gradflow took 22 ms at T=128, against 15 ms here
(benchmarks/results/2026-12-07-cpu-attention.md, §3).

extra_info (gradflow.bench.figures.compare): shape, causal; flops (the six GEMMs,
12*B*H*T*T*D, the causal mask counted in full: workloads.attention_flops); gradflow_ms /
torch_ms, gradflow_GFLOPs / torch_GFLOPs, ratio_to_torch (gradflow / torch: below 1 is
faster), gradflow and torch timed in alternating blocks; gemm_GFLOPs (one (T, D) @ (D, T)
GEMM, what a loop of the per-head GEMMs could reach) and fraction_of_gemm; the run's ceilings,
fraction_of_ceiling; peak_memory_bytes (gradflow: one untimed call under tracemalloc) and
torch_peak_memory_bytes (torch's profiler, frameworks.torch_peak_memory) measured from the
same point (the step leaves no grad alive between calls), and peak_memory_ratio;
blas_threads (OPENBLAS_NUM_THREADS) and torch_threads. Give NumPy one BLAS thread to
compare like with like against torch's one:

    OPENBLAS_NUM_THREADS=1 pytest benchmarks/bench_attention.py   # measure
    pytest benchmarks/bench_attention.py --benchmark-disable      # smoke: tiny sizes, once
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from _util import measure, needs_gpu

from gradflow.bench import workloads
from gradflow.bench.frameworks import torch_peak_memory
from gradflow.bench.machine import torch_or_none

TINY = (2, 2, 16, 8)  # B, H, T, D of the smoke run
CAUSAL = pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])


def _measure(benchmark: Any, bench: Any, seq: int, causal: bool, device: str) -> None:
    batch, heads, dim = workloads.ATTENTION_SHAPE
    batch, heads, seq, dim = bench.size((batch, heads, seq, dim), TINY)
    work = workloads.attention(batch, heads, seq, dim, causal)
    info = benchmark.extra_info
    info.update(shape=work.shape, causal=causal)
    info["blas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    torch = torch_or_none()
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    sides = work.sides(device)
    repeats = bench.repeats if seq <= 128 else max(1, bench.repeats // 5)
    out, *grads = measure(benchmark, sides, repeats, unit="ms", flops=work.flops, gemm=work.gemm)
    if sides["torch"] is not None:
        info["torch_peak_memory_bytes"] = torch_peak_memory(sides["torch"].fn, device)
        theirs = max(1, info["torch_peak_memory_bytes"])
        info["peak_memory_ratio"] = round(info["peak_memory_bytes"] / theirs, 2)
    assert tuple(out.shape) == (batch, heads, seq, dim)
    assert all(tuple(g.shape) == (batch, heads, seq, dim) for g in grads)
    assert np.isfinite(float(grads[0].sum().item()))


@CAUSAL
@pytest.mark.parametrize("seq", [128, 512])
def test_sdpa_forward_backward_cpu(benchmark: Any, bench: Any, seq: int, causal: bool) -> None:
    """Issue 16's shape (B=8, H=8, D=64) on the CPU, T=128 and 512."""
    _measure(benchmark, bench, seq, causal, "cpu")


@pytest.mark.gpu
@CAUSAL
@pytest.mark.parametrize("seq", [512, 1024])
def test_sdpa_forward_backward_gpu(benchmark: Any, bench: Any, seq: int, causal: bool) -> None:
    """The same on a GPU, at T=512 and 1024."""
    needs_gpu()
    _measure(benchmark, bench, seq, causal, "cuda")
