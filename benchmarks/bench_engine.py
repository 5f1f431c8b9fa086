"""Engine overhead: what gradflow's Python costs per op, against PyTorch eager in the same run.

Two workloads, each for gradflow and (when importable) torch:
- a chain of tiny ops, forward + backward on a 4-element float32 tensor (x * 1.0001 + 0.0001,
  repeated, then a sum): the time is almost all per-op bookkeeping, so median / ops is the
  per-op overhead in microseconds;
- one step of a 784-128-10 MLP at batch 32 (linear, relu, linear, cross-entropy, backward).

Each runs on every device (cpu; cuda, marked gpu, skipped without one) and at two sizes (ops
in the chain, MLP batch). extra_info holds gradflow_us / gradflow_ms, torch_us / torch_ms
(torch timed in the same test, same device) and ratio_to_torch (gradflow / torch; below 1
means gradflow is faster), and the shared figures of _util.record_figures (the MLP step's
FLOPs and GFLOP/s, the fraction of the GEMM ceiling, peak memory).

    pytest benchmarks/bench_engine.py                      # measure
    pytest benchmarks/bench_engine.py --benchmark-disable  # smoke: each body once, tiny sizes
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy
import pytest
from _util import (
    compare_with_torch,
    paired_medians,
    record_figures,
    synced,
    torch_device_or_none,
    torch_or_none,
)

import gradflow
import gradflow.nn.functional as F
from gradflow.bench.suites import chain_step
from gradflow.testing.devices import device_params

FRAMEWORKS = ["gradflow", pytest.param("torch", marks=pytest.mark.torch)]
MLP_SIZES = (784, 128, 10)


def _require(framework: str, device: str) -> Any:
    """The torch module for the torch variant (skipped when torch can't run on `device`)."""
    if framework == "torch" and torch_device_or_none(device) is None:
        pytest.skip(f"torch is not installed or has no {device}")
    return torch_or_none() if framework == "torch" else None


# ---- chain of tiny ops -----------------------------------------------------------------------
def make_chain(framework: str, pairs: int, device: str = "cpu") -> Callable[[], Any]:
    """A function running `pairs` (mul, add) pairs and a sum forward, then backward."""
    start = numpy.ones(4, dtype=numpy.float32)
    lib = torch_or_none() if framework == "torch" else gradflow
    x = lib.tensor(start, device=device, requires_grad=True)
    return synced(chain_step(x, pairs), device, framework)


@pytest.mark.parametrize("size", [100, 500])  # (mul, add) pairs; 500: the DESIGN's ~1,000 ops
@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_chain_of_tiny_ops(
    benchmark: Any, bench: Any, framework: str, device: str, size: int
) -> None:
    """Forward + backward over a chain of tiny ops on 4 floats; extra_info has the per-op µs."""
    _require(framework, device)
    pairs = bench.size(size, size // 10)
    ops = 2 * pairs + 1  # the mul/add pairs and the final sum
    run = make_chain(framework, pairs, device)
    y = benchmark(run)
    assert tuple(y.shape) == (4,)
    benchmark.extra_info["ops"] = ops
    if framework == "torch":
        (seconds,) = paired_medians([run], bench.repeats)
        benchmark.extra_info["torch_us"] = round(seconds * 1e6 / ops, 3)
        return
    torch_run = make_chain("torch", pairs, device) if torch_device_or_none(device) else None
    compare_with_torch(benchmark, run, torch_run, bench.repeats, per=ops, unit="us")
    record_figures(benchmark, run, device)


# ---- MLP step --------------------------------------------------------------------------------
def _mlp_arrays(batch: int, sizes: tuple) -> dict:
    """Seeded float32 weights, inputs and integer labels shared by both frameworks."""
    rng = numpy.random.default_rng(0)
    n_in, n_hidden, n_out = sizes
    return {
        "w1": (rng.standard_normal((n_hidden, n_in)) / numpy.sqrt(n_in)).astype(numpy.float32),
        "b1": numpy.zeros(n_hidden, numpy.float32),
        "w2": (rng.standard_normal((n_out, n_hidden)) / numpy.sqrt(n_hidden)).astype(numpy.float32),
        "b2": numpy.zeros(n_out, numpy.float32),
        "x": rng.standard_normal((batch, n_in)).astype(numpy.float32),
        "y": rng.integers(0, n_out, batch),
    }


def make_mlp_step(
    framework: str, batch: int, sizes: tuple = MLP_SIZES, device: str = "cpu"
) -> Callable[[], Any]:
    """A function running one forward + cross-entropy + backward step of a 2-layer MLP."""
    arrays = _mlp_arrays(batch, sizes)
    names = ("w1", "b1", "w2", "b2")
    if framework == "torch":
        torch = torch_or_none()
        params = [torch.tensor(arrays[k], device=device, requires_grad=True) for k in names]
        x, y = torch.tensor(arrays["x"], device=device), torch.tensor(arrays["y"], device=device)
        linear, relu = torch.nn.functional.linear, torch.relu
        loss_fn = torch.nn.functional.cross_entropy
    else:
        params = [gradflow.tensor(arrays[k], device=device, requires_grad=True) for k in names]
        x, y = (
            gradflow.tensor(arrays["x"], device=device),
            gradflow.tensor(arrays["y"], device=device),
        )
        linear, relu = F.linear, F.relu
        loss_fn = F.cross_entropy
    w1, b1, w2, b2 = params

    def step() -> Any:
        loss = loss_fn(linear(relu(linear(x, w1, b1)), w2, b2), y)
        loss.backward()
        for p in params:
            p.grad = None
        return loss

    return synced(step, device, framework)


@pytest.mark.parametrize("size", [32, 256])  # batch
@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_mlp_step(benchmark: Any, bench: Any, framework: str, device: str, size: int) -> None:
    """One 784-128-10 MLP training step (forward, loss, backward) at batch `size`."""
    _require(framework, device)
    batch = bench.size(size, 8)
    step = make_mlp_step(framework, batch, device=device)
    loss = benchmark(step)
    assert numpy.isfinite(float(loss.item()))
    benchmark.extra_info["batch"] = batch
    if framework == "torch":
        (seconds,) = paired_medians([step], bench.repeats)
        benchmark.extra_info["torch_ms"] = round(seconds * 1e3, 4)
        return
    torch_step = (
        make_mlp_step("torch", batch, device=device) if torch_device_or_none(device) else None
    )
    compare_with_torch(benchmark, step, torch_step, bench.repeats, unit="ms")
    n_in, n_hidden, n_out = MLP_SIZES
    flops = 3 * 2 * batch * (n_in * n_hidden + n_hidden * n_out)  # forward GEMMs, dX and dW
    record_figures(benchmark, step, device, flops=flops)
