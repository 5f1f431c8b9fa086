"""One training step of each `gradflow train` model (forward, cross-entropy, backward, Adam
step) against the same model in PyTorch eager, same weights and batch, same run: the train
workload of gradflow.bench.workloads.

extra_info (gradflow.bench.figures.compare): gradflow_ms, torch_ms, ratio_to_torch (gradflow
/ torch; below 1 is faster), the run's ceilings and peak_memory_bytes (a training step has no
single natural byte or FLOP count, so no fraction of a ceiling); and batch and samples_per_s
for gradflow. The models are gradflow.models' at the digits' shape (1x8x8, 10 classes; lstm
and gru read the 8 rows as 8 timesteps), at batch 64 as `gradflow train` uses and at 256; on
every device (cpu; cuda, marked gpu, skipped without one).

    pytest benchmarks/bench_train_step.py                      # measure
    pytest benchmarks/bench_train_step.py --benchmark-disable  # smoke
"""

from __future__ import annotations

from typing import Any

import numpy
import pytest
from _util import measure

from gradflow import models
from gradflow.bench import workloads
from gradflow.testing.devices import device_params


@pytest.mark.parametrize("size", [64, 256])  # batch
@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_train_step(benchmark: Any, bench: Any, name: str, device: str, size: int) -> None:
    """One step of `gradflow train <name>` at batch `size`, and torch's on the same model."""
    batch = bench.size(size, 8)
    loss = measure(benchmark, workloads.train(name, batch).sides(device), bench.repeats, unit="ms")
    assert numpy.isfinite(float(loss.item()))
    info = benchmark.extra_info
    info["batch"] = batch
    info["samples_per_s"] = round(batch / (info["gradflow_ms"] / 1e3))
