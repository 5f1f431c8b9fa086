"""float16 through every op family that has a kernel route: the kernels take float32/float64
only, so float16 takes the array module's own functions (or, for conv, float32 and a cast
back). Each case runs forward and backward in float16 on each device and is compared with the
same computation in float64 on the CPU, at float16's precision."""

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn

CASES = {
    "conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6)),
    "conv1d": (lambda: nn.Conv1d(3, 4, 3), (2, 3, 7)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2), (1, 3, 4, 4)),
    "max_pool2d": (lambda: nn.MaxPool2d(2), (2, 3, 6, 6)),
    "avg_pool2d": (lambda: nn.AvgPool2d(2), (2, 3, 6, 6)),
    "relu": (lambda: nn.ReLU(), (4, 5)),
    "gelu": (lambda: nn.GELU(), (4, 5)),
    "gelu_tanh": (lambda: nn.GELU(approximate="tanh"), (4, 5)),
    "sigmoid": (lambda: nn.Sigmoid(), (4, 5)),
    "tanh": (lambda: nn.Tanh(), (4, 5)),
    "silu": (lambda: nn.SiLU(), (4, 5)),
    "linear_relu": (lambda: nn.Sequential(nn.Linear(5, 3), nn.ReLU()), (4, 5)),
    "layer_norm": (lambda: nn.LayerNorm(5), (4, 5)),
    "batch_norm": (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4)),
    "lstm": (lambda: nn.LSTM(5, 6), (3, 2, 5)),
    "gru": (lambda: nn.GRU(5, 6), (3, 2, 5)),
}


def _run(name, device, dtype):
    make, shape = CASES[name]
    gf.manual_seed(0)
    module = make().to(device).to(dtype)
    x_host = numpy.random.default_rng(1).standard_normal(shape)
    x = gf.tensor(x_host.astype(dtype), device=device, requires_grad=True)
    y = module(x)
    y = y[0] if isinstance(y, tuple) else y
    weights = gf.tensor(numpy.linspace(-1, 1, y.numel()).reshape(y.shape).astype(dtype),
                        device=device)  # fmt: skip
    (y * weights).sum().backward()
    return y, x.grad


@pytest.mark.parametrize("name", sorted(CASES))
def test_float16_forward_and_backward_match_float64(name, device):
    y, grad = _run(name, device, numpy.float16)
    assert y.dtype == numpy.float16 and grad.dtype == numpy.float16
    assert y.device == gf.device(device) and grad.device == gf.device(device)
    y64, grad64 = _run(name, "cpu", numpy.float64)
    numpy.testing.assert_allclose(
        y.detach().cpu().numpy(), y64.detach().numpy(), rtol=2e-2, atol=2e-2
    )
    numpy.testing.assert_allclose(grad.cpu().numpy(), grad64.numpy(), rtol=3e-2, atol=3e-2)


def test_float16_cross_entropy_and_mse(device):
    rng = numpy.random.default_rng(0)
    logits = rng.standard_normal((4, 5))
    for loss, target in ((F.cross_entropy, numpy.array([0, 1, 4, 2])),
                         (F.mse_loss, rng.standard_normal((4, 5)))):  # fmt: skip
        results = []
        for dev, dtype in ((device, numpy.float16), ("cpu", numpy.float64)):
            x = gf.tensor(logits.astype(dtype), device=dev, requires_grad=True)
            t = gf.tensor(target if target.dtype.kind == "i" else target.astype(dtype), device=dev)
            value = loss(x, t)
            value.backward()
            assert value.dtype == dtype and x.grad.dtype == dtype
            results.append((value.item(), x.grad.cpu().numpy()))
        (v16, g16), (v64, g64) = results
        assert v16 == pytest.approx(v64, rel=1e-2, abs=1e-2)
        numpy.testing.assert_allclose(g16, g64, rtol=2e-2, atol=2e-3)
