"""Engine overhead: what gradflow's Python costs per op, against PyTorch eager in the same run.

Two workloads of gradflow.bench.workloads, each for gradflow and (when importable) torch:
- chain: a chain of tiny ops, forward + backward on a 4-element float32 tensor
  (x * 1.0001 + 0.0001, repeated, then a sum): the time is almost all per-op bookkeeping, so
  median / ops is the per-op overhead in microseconds;
- mlp: one step of a 784-128-10 MLP (linear, relu, linear, cross-entropy, backward).

Each runs on every device (cpu; cuda, marked gpu, skipped without one) and at two sizes (ops
in the chain, MLP batch). extra_info holds gradflow.bench.figures.compare's figures:
gradflow_us per op / gradflow_ms, torch_us / torch_ms (torch timed in the same test, same
device), ratio_to_torch (gradflow / torch; below 1 means gradflow is faster), the MLP step's
FLOPs and GFLOP/s, the run's ceilings, the fraction of the GEMM ceiling and peak memory. The
torch variant (marked torch) records torch's time alone.

    pytest benchmarks/bench_engine.py                      # measure
    pytest benchmarks/bench_engine.py --benchmark-disable  # smoke: each body once, tiny sizes
"""

from __future__ import annotations

from typing import Any

import numpy
import pytest
from _util import measure

from gradflow.bench import workloads
from gradflow.testing.devices import device_params

FRAMEWORKS = ["gradflow", pytest.param("torch", marks=pytest.mark.torch)]


def _measure(benchmark: Any, bench: Any, work: Any, framework: str, device: str, **opts) -> Any:
    """gradflow against torch for the gradflow variant; torch alone (skipped where it can't
    run on `device`) for the torch variant."""
    sides = work.sides(device, ("torch",) if framework == "torch" else ("gradflow", "torch"))
    if sides[framework] is None:
        pytest.skip(f"torch is not installed or has no {device}")
    return measure(benchmark, sides, bench.repeats, ceiling=framework == "gradflow", **opts)


# size: (mul, add) pairs; 500 gives the ~1,000 ops of docs/DESIGN.md §7
@pytest.mark.parametrize("size", [100, 500])
@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_chain_of_tiny_ops(
    benchmark: Any, bench: Any, framework: str, device: str, size: int
) -> None:
    """Forward + backward over a chain of tiny ops on 4 floats; extra_info has the per-op µs."""
    chain = workloads.chain(bench.size(size, size // 10))
    benchmark.extra_info["ops"] = chain.size
    y = _measure(benchmark, bench, chain, framework, device, per=chain.size)
    assert tuple(y.shape) == (4,)


@pytest.mark.parametrize("size", [32, 256])  # batch
@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_mlp_step(benchmark: Any, bench: Any, framework: str, device: str, size: int) -> None:
    """One 784-128-10 MLP training step (forward, loss, backward) at batch `size`."""
    batch = bench.size(size, 8)
    benchmark.extra_info["batch"] = batch
    mlp = workloads.mlp(batch)
    loss = _measure(benchmark, bench, mlp, framework, device, unit="ms", flops=mlp.flops)
    assert numpy.isfinite(float(loss.item()))
