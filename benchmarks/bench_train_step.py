"""One training step of each `gradflow train` model (forward, cross-entropy, backward, Adam
step) against the same model in PyTorch eager, same weights and batch, same run.

extra_info: gradflow_ms, torch_ms, ratio_to_torch (gradflow / torch; below 1 is faster),
samples_per_s for gradflow, and _util.record_figures' run ceilings and peak_memory_bytes (a
training step has no single natural byte or FLOP count, so no fraction of a ceiling). The
models are gradflow.models' at the digits' shape (1x8x8, 10 classes; lstm and gru read the 8
rows as 8 timesteps), at batch 64 as `gradflow train` uses and at 256; on every device (cpu;
cuda, marked gpu, skipped without one).

    pytest benchmarks/bench_train_step.py                      # measure
    pytest benchmarks/bench_train_step.py --benchmark-disable  # smoke
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy
import pytest
from _util import compare_with_torch, record_figures, synced, torch_device_or_none, torch_or_none

import gradflow
from gradflow import models, optim
from gradflow.bench.suites import torch_twin
from gradflow.nn import functional as F
from gradflow.testing.devices import device_params


def make_step(framework: str, name: str, batch: int, device: str = "cpu") -> Callable[[], Any]:
    """A function running one training step of model `name` on a fixed random batch."""
    rng = numpy.random.default_rng(0)
    images = rng.random((batch, 1, 8, 8), dtype=numpy.float32)
    labels = rng.integers(0, 10, batch)
    gradflow.manual_seed(0)
    model = models.MODELS[name]()
    if framework == "torch":
        torch = torch_or_none()
        model = torch_twin(model).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)
        loss_fn = torch.nn.functional.cross_entropy
    else:
        model = model.to(device)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        x, y = gradflow.tensor(images, device=device), gradflow.tensor(labels, device=device)
        loss_fn = F.cross_entropy

    def step() -> Any:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return synced(step, device, framework)


@pytest.mark.parametrize("size", [64, 256])  # batch
@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_train_step(benchmark: Any, bench: Any, name: str, device: str, size: int) -> None:
    """One step of `gradflow train <name>` at batch `size`, and torch's on the same model."""
    batch = bench.size(size, 8)
    step = make_step("gradflow", name, batch, device)
    loss = benchmark(step)
    assert numpy.isfinite(float(loss.item()))
    torch_step = make_step("torch", name, batch, device) if torch_device_or_none(device) else None
    compare_with_torch(benchmark, step, torch_step, bench.repeats, unit="ms")
    record_figures(benchmark, step, device)
    benchmark.extra_info["batch"] = batch
    info = benchmark.extra_info
    info["samples_per_s"] = round(batch / (info["gradflow_ms"] / 1e3))
