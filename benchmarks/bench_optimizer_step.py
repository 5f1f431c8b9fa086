"""Optimizer step: SGD with momentum and Adam over the parameters of a small CNN and an MLP
(the optimizer workload of gradflow.bench.workloads).

One step updates every parameter in place from its (fixed) gradient; the time is the step
alone, no forward or backward. The parameter lists (workloads.PARAMETER_LISTS) are shaped
like real models, scaled for a 2-core CPU:
- cnn: five 3x3 convolutions (3-32-64-128-256-256 channels) and a 1024-512-10 head, with
  biases: 1.5M float32 parameters in 14 tensors, from 10 to 590K elements;
- mlp: 784-1024-1024-10 with biases: 1.9M float32 parameters in 6 tensors.

torch runs the same step in the same test on copies of the same arrays, both its default CPU
implementation (one tensor at a time, foreach=False) and ``foreach=True``. extra_info:
parameters, tensors, and gradflow.bench.figures.compare's bytes_moved (the least traffic a
step needs, float32: SGD-momentum reads p, g, buf and writes p, buf; Adam reads p, g, m, v
and writes p, m, v), gradflow_ms and gradflow_GBps, torch_ms and torch_foreach_ms,
ratio_to_torch and ratio_to_torch_foreach (gradflow / torch: below 1 means gradflow is
faster), the run's ceilings, fraction_of_ceiling (of the copy bandwidth) and
peak_memory_bytes. Each runs on every device (cpu; cuda, marked gpu, skipped without one) and
at two sizes (`small`: a quarter of the full width).

    pytest benchmarks/bench_optimizer_step.py                      # measure
    pytest benchmarks/bench_optimizer_step.py --benchmark-disable  # smoke: tiny sizes, one pass
"""

from __future__ import annotations

from typing import Any

import pytest
from _util import measure

from gradflow.bench import workloads
from gradflow.testing.devices import device_params

WIDTHS = {"cnn": (32, 2), "mlp": (1024, 16)}  # full and smoke widths


@pytest.mark.parametrize("size", ["small", "full"])
@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("model", list(WIDTHS))
@pytest.mark.parametrize("kind", list(workloads.OPTIMIZERS))
def test_optimizer_step(
    benchmark: Any, bench: Any, kind: str, model: str, device: str, size: str
) -> None:
    """One optimizer step over a model's parameter list; extra_info has GB/s and torch ratios."""
    full, smoke = WIDTHS[model]
    width = bench.size(full if size == "full" else full // 4, smoke)
    step = workloads.optimizer(kind, model, width, foreach=False)
    foreach = workloads.optimizer(kind, model, width, foreach=True)
    sides = {**step.sides(device), "torch_foreach": foreach.sides(device, ("torch",))["torch"]}
    make_shapes, _ = workloads.PARAMETER_LISTS[model]
    benchmark.extra_info.update(parameters=step.size, tensors=len(make_shapes(width)))
    measure(benchmark, sides, bench.repeats, unit="ms", bytes_moved=step.bytes_moved)
