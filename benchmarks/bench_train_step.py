"""One training step of each `gradflow train` model (forward, cross-entropy, backward, Adam
step) against the same model in PyTorch eager, same weights and batch, same run.

extra_info: gradflow_ms, torch_ms, ratio_to_torch (gradflow / torch; below 1 is faster),
samples_per_s for gradflow. The models are gradflow.models' at the digits' shape (1x8x8,
10 classes; lstm and gru read the 8 rows as 8 timesteps), batch 64 as `gradflow train` uses.

    pytest benchmarks/bench_train_step.py                      # measure
    pytest benchmarks/bench_train_step.py --benchmark-disable  # smoke
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy
import pytest
from _util import compare_with_torch, torch_or_none

import gradflow
from gradflow import models, optim
from gradflow.nn import functional as F


def torch_twin(name: str, model: gradflow.nn.Module) -> Any:
    """The same architecture in torch, loaded with `model`'s weights (the keys match)."""
    torch = torch_or_none()
    nn = torch.nn
    if name in ("lstm", "gru"):
        twin = torch_row_reader(torch, getattr(nn, name.upper()), model.head.in_features)
    elif name == "mlp":
        twin = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128),
                             nn.ReLU(), nn.Linear(128, 10))  # fmt: skip
    else:
        twin = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10),
        )  # fmt: skip
    state = {k: torch.from_numpy(numpy.array(v.data)) for k, v in model.state_dict().items()}
    twin.load_state_dict(state)
    return twin


def torch_row_reader(torch: Any, recurrent: Any, hidden_size: int) -> Any:
    """gradflow.models.RowReader in torch: a recurrent layer over the rows, a linear head."""

    class RowReader(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = recurrent(8, hidden_size, batch_first=True)
            self.head = torch.nn.Linear(hidden_size, 10)

        def forward(self, images):
            _, state = self.rnn(images.reshape(images.shape[0], 8, 8))
            h_n = state[0] if isinstance(state, tuple) else state
            return self.head(h_n[-1])

    return RowReader()


def make_step(framework: str, name: str, batch: int) -> Callable[[], Any]:
    """A function running one training step of model `name` on a fixed random batch."""
    rng = numpy.random.default_rng(0)
    images = rng.random((batch, 1, 8, 8), dtype=numpy.float32)
    labels = rng.integers(0, 10, batch)
    gradflow.manual_seed(0)
    model = models.MODELS[name]()
    if framework == "torch":
        torch = torch_or_none()
        model = torch_twin(name, model)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = torch.from_numpy(images), torch.from_numpy(labels)
        loss_fn = torch.nn.functional.cross_entropy
    else:
        opt = optim.Adam(model.parameters(), lr=1e-3)
        x, y = gradflow.tensor(images), gradflow.tensor(labels)
        loss_fn = F.cross_entropy

    def step() -> Any:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_train_step(benchmark: Any, bench: Any, name: str) -> None:
    """One step of `gradflow train <name>` at batch 64, and torch's on the same model."""
    batch = bench.size(64, 8)
    step = make_step("gradflow", name, batch)
    loss = benchmark(step)
    assert numpy.isfinite(float(loss.item()))
    torch_step = make_step("torch", name, batch) if torch_or_none() is not None else None
    compare_with_torch(benchmark, step, torch_step, bench.repeats, unit="ms")
    benchmark.extra_info["batch"] = batch
    info = benchmark.extra_info
    info["samples_per_s"] = round(batch / (info["gradflow_ms"] / 1e3))
