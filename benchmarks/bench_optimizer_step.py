"""Optimizer step: SGD with momentum and Adam over the parameters of a small CNN and an MLP.

One step updates every parameter in place from its (fixed) gradient; the time is the step
alone, no forward or backward. The parameter lists are shaped like real models, scaled for a
2-core CPU:
- cnn: five 3x3 convolutions (3-32-64-128-256-256 channels) and a 1024-512-10 head, with
  biases: 1.5M float32 parameters in 14 tensors, from 10 to 590K elements;
- mlp: 784-1024-1024-10 with biases: 1.9M float32 parameters in 6 tensors.

torch runs the same step in the same test on the same tensors' copies, both its default CPU
implementation (one tensor at a time) and ``foreach=True``. extra_info: parameters, tensors,
bytes_moved (the least traffic a step needs, float32: SGD-momentum reads p, g, buf and writes
p, buf; Adam reads p, g, m, v and writes p, m, v), gradflow_ms and gradflow_GBps, torch_ms and
torch_foreach_ms, ratio_to_torch and ratio_to_torch_foreach (gradflow / torch: below 1 means
gradflow is faster), and _util.record_figures' run ceilings, fraction_of_ceiling (of the copy
bandwidth) and peak_memory_bytes. Each runs on every device (cpu; cuda, marked gpu, skipped
without one) and at two sizes (`small`: a quarter of the full width).

    pytest benchmarks/bench_optimizer_step.py                      # measure
    pytest benchmarks/bench_optimizer_step.py --benchmark-disable  # smoke: tiny sizes, one pass
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from _util import paired_medians, record_figures, synced, torch_device_or_none, torch_or_none

import gradflow
from gradflow import optim
from gradflow.testing.devices import device_params


def cnn_shapes(width: int) -> list[tuple[int, ...]]:
    """Conv weights/biases of five 3x3 layers and a two-layer head; `width` scales channels."""
    channels = [3, width, 2 * width, 4 * width, 8 * width, 8 * width]
    shapes: list[tuple[int, ...]] = []
    for c_in, c_out in pairwise(channels):
        shapes += [(c_out, c_in, 3, 3), (c_out,)]
    hidden, flat = 16 * width, 8 * width * 2 * 2
    return [*shapes, (hidden, flat), (hidden,), (10, hidden), (10,)]


def mlp_shapes(width: int) -> list[tuple[int, ...]]:
    """784-width-width-10 linear layers, weights and biases."""
    sizes = [784, width, width, 10]
    shapes: list[tuple[int, ...]] = []
    for n_in, n_out in pairwise(sizes):
        shapes += [(n_out, n_in), (n_out,)]
    return shapes


MODELS = {"cnn": (cnn_shapes, 32, 2), "mlp": (mlp_shapes, 1024, 16)}  # full and smoke widths
OPTIMIZERS = {
    # name: (gradflow class, torch class name, hyperparameters, arrays read + written per element)
    "sgd_momentum": (optim.SGD, "SGD", {"lr": 0.01, "momentum": 0.9}, 5),
    "adam": (optim.Adam, "Adam", {"lr": 1e-3}, 7),
}


def arrays_for(shapes: list[tuple[int, ...]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Seeded float32 parameters and gradients, shared by both frameworks."""
    rng = np.random.default_rng(0)
    params = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in shapes]
    grads = [(rng.standard_normal(s) * 0.01).astype(np.float32) for s in shapes]
    return params, grads


def gradflow_step(kind: str, params: list, grads: list, device: str = "cpu") -> Callable[[], Any]:
    cls, _, hyper, _ = OPTIMIZERS[kind]
    tensors = [gradflow.tensor(p.copy(), device=device, requires_grad=True) for p in params]
    for t, g in zip(tensors, grads):
        t.grad = gradflow.tensor(g.copy(), device=device)
    opt = cls(tensors, **hyper)
    opt.step()  # state allocated outside the timed steps, as after the first iteration
    return synced(opt.step, device)


def torch_step(
    kind: str, params: list, grads: list, foreach: bool, device: str = "cpu"
) -> Callable[[], Any]:
    torch = torch_or_none()
    _, name, hyper, _ = OPTIMIZERS[kind]
    tensors = [torch.tensor(p.copy(), device=device, requires_grad=True) for p in params]
    for t, g in zip(tensors, grads):
        t.grad = torch.tensor(g.copy(), device=device)
    opt = getattr(torch.optim, name)(tensors, foreach=foreach, **hyper)
    opt.step()
    return synced(opt.step, device, "torch")


@pytest.mark.parametrize("size", ["small", "full"])
@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_optimizer_step(
    benchmark: Any, bench: Any, kind: str, model: str, device: str, size: str
) -> None:
    """One optimizer step over a model's parameter list; extra_info has GB/s and torch ratios."""
    make_shapes, full_width, smoke_width = MODELS[model]
    width = full_width if size == "full" else full_width // 4
    shapes = make_shapes(bench.size(width, smoke_width))
    params, grads = arrays_for(shapes)
    n = sum(p.size for p in params)
    bytes_moved = OPTIMIZERS[kind][3] * 4 * n
    ours = gradflow_step(kind, params, grads, device)
    info = benchmark.extra_info
    info.update(parameters=n, tensors=len(shapes), bytes_moved=bytes_moved)
    fns = [ours]
    if torch_device_or_none(device) is not None:
        fns += [torch_step(kind, params, grads, foreach, device) for foreach in (False, True)]
    times = paired_medians(fns, bench.repeats)
    info["gradflow_ms"] = round(times[0] * 1e3, 3)
    info["gradflow_GBps"] = round(bytes_moved / times[0] / 1e9, 2)
    if len(times) == 1:
        info["torch"] = "not installed"
    else:
        info["torch_ms"] = round(times[1] * 1e3, 3)
        info["torch_foreach_ms"] = round(times[2] * 1e3, 3)
        info["ratio_to_torch"] = round(times[0] / times[1], 3)
        info["ratio_to_torch_foreach"] = round(times[0] / times[2], 3)
    record_figures(benchmark, ours, device, bytes_moved=bytes_moved)
    benchmark(ours)
