"""Activation and binary-op backward: NumPy on the CPU; on a GPU, our kernels vs CuPy vs torch.

CPU: the NumPy formulation the ops use (written with out= to avoid temporaries) against
torch's own backward kernels on the CPU. GPU (when CuPy sees one; marked gpu): gradflow.kernels.
activation_bwd against the same math as unfused CuPy array expressions and against torch's
backward kernels, with the device copy bandwidth at the same size as the ceiling. Two sizes
each. extra_info: bytes_moved (reads + writes), <side>_us and <side>_GBps, ratio_to_torch, and
_util.record_figures' run ceilings, fraction_of_ceiling and peak_memory_bytes.

    pytest benchmarks/bench_elementwise_backward.py                      # measure
    pytest benchmarks/bench_elementwise_backward.py --benchmark-disable  # smoke
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _kernel_bench_util import (
    cupy_or_none,
    describe_traffic,
    device_copy_seconds,
    gpu_median,
    record,
    torch_cuda_median,
)
from _util import compare_with_torch, record_figures, torch_or_none

from gradflow.kernels import activation_bwd, binary_bwd

ACTS = ["relu", "gelu_tanh", "sigmoid", "tanh", "silu"]
SAVES_OUTPUT = {"sigmoid", "tanh"}


def numpy_activation_bwd(name: str, s: np.ndarray, g: np.ndarray, xp=np) -> np.ndarray:
    """grad_in from the saved array s (x, or y for sigmoid/tanh), few temporaries."""
    if name == "relu":
        return xp.multiply(g, s > 0)
    if name == "sigmoid":
        out = 1 - s
        out *= s
        out *= g
        return out
    if name == "tanh":
        out = s * s
        xp.subtract(1, out, out=out)
        out *= g
        return out
    if name == "silu":
        sig = xp.exp(-s)
        sig += 1
        xp.reciprocal(sig, out=sig)
        out = 1 - sig
        out *= s
        out += 1
        out *= sig
        out *= g
        return out
    if name == "gelu_tanh":
        k = math.sqrt(2 / math.pi)
        s2 = s * s
        t = s2 * 0.044715
        t += 1
        t *= s
        t *= k
        xp.tanh(t, out=t)
        inner = s2 * (3 * 0.044715)
        inner += 1
        inner *= k
        inner *= s
        inner *= 1 - t * t
        t += 1
        t += inner
        t *= 0.5
        t *= g
        return t
    raise KeyError(name)


def _inputs(xp, n, name, dtype=np.float32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(dtype)
    s = np.tanh(x) if name in SAVES_OUTPUT else x
    return xp.asarray(s), xp.asarray(rng.standard_normal(n).astype(dtype))


def torch_activation_bwd(torch, name, ts, tg):
    """torch's own backward kernel of activation `name` (aten), as a zero-argument function."""
    aten = torch.ops.aten
    return {
        "relu": lambda: aten.threshold_backward(tg, ts, 0),
        "gelu_tanh": lambda: aten.gelu_backward(tg, ts, approximate="tanh"),
        "sigmoid": lambda: aten.sigmoid_backward(tg, ts),
        "tanh": lambda: aten.tanh_backward(tg, ts),
        "silu": lambda: aten.silu_backward(tg, ts),
    }[name]


@pytest.mark.parametrize("size", [1 << 16, 1 << 22])
@pytest.mark.parametrize("name", ACTS)
def test_activation_bwd_numpy_cpu(benchmark, bench, name, size):
    n = bench.size(size, 1 << 10)
    s, g = _inputs(np, n, name)
    ours = lambda: numpy_activation_bwd(name, s, g)  # noqa: E731
    torch = torch_or_none()
    theirs = None
    if torch is not None:
        theirs = torch_activation_bwd(torch, name, torch.from_numpy(s), torch.from_numpy(g))
    compare_with_torch(benchmark, ours, theirs, bench.repeats, side="numpy")
    record_figures(benchmark, ours, "cpu", side="numpy", bytes_moved=3 * n * 4)
    benchmark(ours)


@pytest.mark.parametrize("size", [1 << 16, 1 << 22])
def test_mul_bwd_numpy_cpu(benchmark, bench, size):
    n = bench.size(size, 1 << 10)
    a, b = _inputs(np, n, "relu")
    g = np.ones_like(a)
    ours = lambda: (np.multiply(g, b), np.multiply(g, a))  # noqa: E731
    torch = torch_or_none()
    theirs = None
    if torch is not None:
        ta, tb, tg = (torch.from_numpy(v) for v in (a, b, g))
        theirs = lambda: (torch.mul(tg, tb), torch.mul(tg, ta))  # noqa: E731
    compare_with_torch(benchmark, ours, theirs, bench.repeats, side="numpy")
    record_figures(benchmark, ours, "cpu", side="numpy", bytes_moved=5 * n * 4)
    benchmark(ours)


@pytest.mark.gpu
@pytest.mark.parametrize("size", [1 << 20, 1 << 24])
@pytest.mark.parametrize("name", ACTS)
def test_activation_bwd_gpu(benchmark, bench, name, size):
    cupy = cupy_or_none()
    if cupy is None:
        pytest.skip("needs CuPy and a CUDA GPU")
    n = bench.size(size, 1 << 12)
    s, g = _inputs(cupy, n, name)
    info = benchmark.extra_info
    nbytes = 3 * n * 4
    describe_traffic(info, nbytes)
    activation_bwd(name, s, g)  # compile outside the timed region
    reps = bench.repeats
    record(info, "kernel", gpu_median(lambda: activation_bwd(name, s, g), reps), nbytes)
    record(
        info,
        "cupy_unfused",
        gpu_median(lambda: numpy_activation_bwd(name, s, g, cupy), reps),
        nbytes,
    )
    info["copy_GBps"] = round(2 * n * 4 / device_copy_seconds(n * 4, reps) / 1e9, 2)
    info["fraction_of_copy_bw"] = round(info["kernel_GBps"] / info["copy_GBps"], 3)
    torch = torch_or_none()
    if torch is not None and torch.cuda.is_available():
        ts, tg = torch.as_tensor(s, device="cuda"), torch.as_tensor(g, device="cuda")
        fn = torch_activation_bwd(torch, name, ts, tg)
        record(info, "torch", torch_cuda_median(torch, fn, reps), nbytes)
        info["ratio_to_torch"] = round(info["kernel_us"] / info["torch_us"], 3)
    record_figures(benchmark, lambda: activation_bwd(name, s, g), "cuda", side="kernel",
                   bytes_moved=nbytes)  # fmt: skip
    benchmark(lambda: (activation_bwd(name, s, g), cupy.cuda.Device().synchronize()))


@pytest.mark.gpu
@pytest.mark.parametrize("size", [1 << 20, 1 << 24])
def test_mul_bwd_gpu(benchmark, bench, size):
    cupy = cupy_or_none()
    if cupy is None:
        pytest.skip("needs CuPy and a CUDA GPU")
    n = bench.size(size, 1 << 12)
    a, b = _inputs(cupy, n, "relu")
    g = cupy.ones_like(a)
    info = benchmark.extra_info
    nbytes = 5 * n * 4
    describe_traffic(info, nbytes)
    reps = bench.repeats
    record(info, "kernel", gpu_median(lambda: binary_bwd("mul", a, b, g), reps), nbytes)
    record(info, "cupy_unfused", gpu_median(lambda: (g * b, g * a), reps), nbytes)
    torch = torch_or_none()
    if torch is not None and torch.cuda.is_available():
        ta, tb, tg = (torch.as_tensor(v, device="cuda") for v in (a, b, g))
        fn = lambda: (torch.mul(tg, tb), torch.mul(tg, ta))  # noqa: E731
        record(info, "torch", torch_cuda_median(torch, fn, reps), nbytes)
        info["ratio_to_torch"] = round(info["kernel_us"] / info["torch_us"], 3)
    record_figures(benchmark, lambda: binary_bwd("mul", a, b, g), "cuda", side="kernel",
                   bytes_moved=nbytes)  # fmt: skip
    benchmark(lambda: (binary_bwd("mul", a, b, g), cupy.cuda.Device().synchronize()))
