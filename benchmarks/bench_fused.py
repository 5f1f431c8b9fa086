"""Fused bias+activation backward and softmax cross-entropy on raw arrays: NumPy on the CPU; on
a GPU, our fused kernels vs the unfused CuPy sequence vs torch eager (the workloads of
gradflow.bench.array_workloads). And the layer that uses the first: nn.Sequential(Linear,
ReLU) forward + backward, fused (one LinearActivation node) vs unfused
(gradflow.nn.fusion.disabled()) vs torch eager, on every device (workloads.linear_relu).

Two sizes each; the GPU tests are marked gpu. extra_info (gradflow.bench.figures.compare):
bytes_moved (the minimum: each input read once, each output written once) or flops,
<side>_us and <side>_GBps / <side>_GFLOPs, ratio_to_torch (torch eager on the same device and
inputs), fused_over_unfused for the layer, the run's ceilings, fraction_of_ceiling and
peak_memory_bytes.

    pytest benchmarks/bench_fused.py                      # measure
    pytest benchmarks/bench_fused.py --benchmark-disable  # smoke
"""

from __future__ import annotations

import pytest
from _util import measure, measure_arrays, needs_gpu

from gradflow.bench import array_workloads as arrays
from gradflow.bench import workloads
from gradflow.testing.devices import device_params


def _ids(shape):
    return "x".join(map(str, shape))


def _measure(benchmark, bench, build, size, tiny, device="cpu"):
    """An array workload of `build` at `size` (`tiny` in a smoke run) on `device`."""
    if device == "cuda":
        needs_gpu()
    measure_arrays(benchmark, bench, build(*bench.size(size, tiny), device))


@pytest.mark.parametrize("size", [(512, 256), (4096, 1024)], ids=_ids)
def test_bias_relu_bwd_numpy_cpu(benchmark, bench, size):
    _measure(benchmark, bench, arrays.bias_relu_backward, size, (64, 32))


@pytest.mark.parametrize("size", [(512, 1000), (4096, 1000)], ids=_ids)
def test_softmax_xent_numpy_cpu(benchmark, bench, size):
    _measure(benchmark, bench, arrays.softmax_xent, size, (64, 10))


@pytest.mark.gpu
@pytest.mark.parametrize("size", [(4096, 1024), (16384, 4096)], ids=_ids)
def test_bias_relu_bwd_gpu(benchmark, bench, size):
    _measure(benchmark, bench, arrays.bias_relu_backward, size, (64, 32), "cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("size", [(4096, 1000), (16384, 1000)], ids=_ids)
def test_softmax_xent_gpu(benchmark, bench, size):
    _measure(benchmark, bench, arrays.softmax_xent, size, (64, 10), "cuda")


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("size", [(256, 512, 512), (2048, 1024, 1024)], ids=_ids)
def test_linear_relu_layer(benchmark, bench, device, size):
    rows, n_in, n_out = bench.size(size, (16, 32, 24))
    layer = workloads.linear_relu(rows, n_in, n_out)
    fused = layer.sides(device)
    unfused = workloads.linear_relu(rows, n_in, n_out, fused=False).sides(device, ("gradflow",))
    sides = {"fused": fused["gradflow"], "unfused": unfused["gradflow"], "torch": fused["torch"]}
    measure(benchmark, sides, bench.repeats, flops=layer.flops)
    benchmark.extra_info["fused_over_unfused"] = benchmark.extra_info["ratio_to_unfused"]
