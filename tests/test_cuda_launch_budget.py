"""Launch, sync and copy budgets of the cuda path, counted by the CuPy stand-in.

Run with ``GRADFLOW_CUDA_STANDIN=1 pytest -m gpu`` (CI does); skipped elsewhere, a real GPU
included: the counts come from the stand-in's counters. The budgets are docs/DESIGN.md §7's:
a training step never waits for the device, and an LSTM timestep costs one GEMM and one cell
kernel each way (the per-step cost is measured as the difference between T=16 and T=8, so
the fixed costs around the loop cancel).
"""

import numpy
import pytest

import gradflow as gf
from gradflow import nn, training
from gradflow.backend import cupy_module
from gradflow.nn.functional import cross_entropy
from gradflow.testing.standin import counting, is_standin


def _standin_active() -> bool:
    return cuda_available() and is_standin(cupy_module())


def cuda_available() -> bool:
    return gf.cuda.is_available()


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not _standin_active(), reason="counts need the CuPy stand-in (GRADFLOW_CUDA_STANDIN=1)"
    ),
]


def _step_counts(model_name: str, optimizer: str):
    config = training.TrainConfig(model=model_name, device="cuda", optimizer=optimizer)
    model, opt = training.build(config, 8)
    model.to("cuda")
    rng = numpy.random.default_rng(0)
    images = gf.tensor(rng.standard_normal((8, 1, 8, 8)).astype(numpy.float32), device="cuda")
    labels = gf.tensor(rng.integers(0, 10, 8), device="cuda")

    def step():
        loss = cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    step()
    step()  # steady state: kernels fetched, optimizer state allocated
    with counting() as block:
        loss = step()
    return block.counts, loss


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("model_name", ["mlp", "cnn", "lstm", "gru", "transformer"])
def test_a_training_step_never_waits_for_the_device(model_name, optimizer):
    counts, loss = _step_counts(model_name, optimizer)
    assert counts.syncs == 0, f"{model_name}: {counts}"
    assert counts.d2h == 0, f"{model_name}: {counts}"
    assert counts.h2d <= 1, f"{model_name}: {counts}"  # at most the optimizer's one table
    assert counts.get_function == 0, f"{model_name}: kernels fetched again: {counts}"
    assert numpy.isfinite(loss.item())


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_a_recurrent_timestep_costs_one_gemm_and_one_cell_kernel_each_way(mode):
    layer = getattr(nn, mode)(16, 32).to("cuda")
    per_length = {}
    for steps in (8, 16):
        x = gf.tensor(
            numpy.random.default_rng(0).standard_normal((steps, 4, 16)).astype(numpy.float32),
            device="cuda", requires_grad=True,
        )  # fmt: skip
        out, _ = layer(x)
        out.sum().backward()  # warm: kernels fetched
        with counting() as forward:
            out, _ = layer(x)
        grad = gf.ones(out.shape, device="cuda")
        with counting() as backward:
            out.backward(grad)
        per_length[steps] = forward.counts, backward.counts
    forward_8, backward_8 = per_length[8]
    forward_16, backward_16 = per_length[16]
    per_step_forward, per_step_backward = forward_16 - forward_8, backward_16 - backward_8
    for counts in (per_step_forward, per_step_backward):
        assert counts.cublas == 8, counts  # one GEMM per step, 8 more steps
        assert counts.raw_launches == 8, counts  # one fused cell kernel per step
        assert counts.kernels == 0, counts  # nothing else inside the loop
        assert counts.syncs == 0, counts
