"""Conv2d forward + backward (dX, dW, db): gradflow against torch in the same run, the conv
workload of gradflow.bench.workloads at its CONV_SHAPES.

CPU: NumPy im2col + OpenBLAS GEMMs (gradflow/ops/conv.py) against torch CPU (oneDNN), torch
on GRADFLOW_BENCH_TORCH_THREADS intra-op threads (1 unless set; see
gradflow.bench.machine.torch_or_none). GPU (marked gpu; a batch 8x larger to fill it): our
im2col/col2im kernels + cuBLAS against torch (cuDNN).

Shapes (N, C, H=W, O, k, stride, padding): the digits CNN's first layer (64 images of 1x8x8,
32 filters 3x3, padding 1), and ResNet-style 3x3 layers scaled down for a 2-core CPU.

extra_info (gradflow.bench.figures.compare): shape, flops (forward, dX and dW GEMMs:
3 * 2 * N*O*OH*OW * C*k*k), gradflow_us / torch_us, gradflow_GFLOPs / torch_GFLOPs,
ratio_to_torch (gradflow / torch: below 1 is faster), gemm_GFLOPs (one GEMM of the forward's
shape: the BLAS ceiling of this workload) and fraction_of_gemm, the run's ceilings
(ceiling_gemm_GFLOPs: one square GEMM, measured once per run), fraction_of_ceiling and
peak_memory_bytes; torch_threads. gradflow and torch are timed in alternating blocks, so a
loaded machine slows both alike. NumPy's BLAS uses its default threads
(OPENBLAS_NUM_THREADS); on a busy 2-core machine a 2-thread BLAS waits for its descheduled
partner thread, so compare like with like (OPENBLAS_NUM_THREADS=1 against torch's one
thread, or GRADFLOW_BENCH_TORCH_THREADS=2).

    pytest benchmarks/bench_conv_backward.py                      # measure
    pytest benchmarks/bench_conv_backward.py --benchmark-disable  # smoke: tiny sizes, once
"""

from __future__ import annotations

from typing import Any

import pytest
from _util import measure, needs_gpu

from gradflow.bench import workloads
from gradflow.bench.machine import torch_or_none

SHAPES = workloads.CONV_SHAPES
TINY = (2, 3, 6, 4, 3, 1, 1)


def _measure(benchmark: Any, bench: Any, shape: tuple, device: str) -> None:
    conv = workloads.conv(shape)
    info = benchmark.extra_info
    info["shape"] = conv.shape
    torch = torch_or_none()
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    y = measure(benchmark, conv.sides(device), bench.repeats, flops=conv.flops, gemm=conv.gemm)
    assert tuple(y.shape)[:2] == (shape[0], shape[3])


@pytest.mark.parametrize("name", list(SHAPES))
def test_conv2d_forward_backward_cpu(benchmark: Any, bench: Any, name: str) -> None:
    _measure(benchmark, bench, bench.size(SHAPES[name], TINY), "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(SHAPES))
def test_conv2d_forward_backward_gpu(benchmark: Any, bench: Any, name: str) -> None:
    needs_gpu()
    n, *rest = bench.size(SHAPES[name], TINY)
    _measure(benchmark, bench, (bench.size(n * 8, n), *rest), "cuda")
