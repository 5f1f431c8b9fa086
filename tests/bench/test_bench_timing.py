"""gradflow.bench.backward / backward_module on the CPU: sane statistics, grads computed,
peak memory seen, clear errors. No timing assertions (timings are never tested)."""

import numpy
import pytest

import gradflow
from gradflow import bench, nn


def _leaves():
    x = gradflow.tensor(numpy.ones((64, 32), numpy.float32), requires_grad=True)
    w = gradflow.tensor(numpy.ones((32, 16), numpy.float32), requires_grad=True)
    return x, w


def test_backward_of_a_function_returns_stats_and_computes_grads():
    x, w = _leaves()
    result = bench.backward(lambda a, b: (a @ b).relu().sum(), x, w, warmup=1, repeat=4,
                            flops=4 * 64 * 32 * 16, bytes_moved=1000)  # fmt: skip
    assert result.repeat == 4 and len(result.times) == 4
    assert result.median > 0 and result.min <= result.median <= result.max
    assert result.iqr >= 0
    assert result.tflops > 0 and result.gbps > 0
    assert result.peak_memory_bytes > 0  # backward allocates dX and dW
    assert x.grad is not None and w.grad is not None
    numpy.testing.assert_allclose(x.grad.numpy(), numpy.full((64, 32), 16.0))  # not accumulated
    assert "median" in str(result)
    assert result.to_dict()["repeat"] == 4


def test_backward_module_clears_and_sets_parameter_grads():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    x = gradflow.tensor(numpy.ones((4, 8), numpy.float32))
    result = bench.backward_module(model, x, warmup=0, repeat=3)
    assert result.repeat == 3 and result.median > 0
    assert result.name == "Sequential"
    assert all(p.grad is not None for p in model.parameters())


def test_non_scalar_output_needs_grad_output():
    x, w = _leaves()
    with pytest.raises(ValueError, match=r"shape \(64, 16\).*grad_output"):
        bench.backward(lambda a, b: a @ b, x, w)
    g = gradflow.tensor(numpy.ones((64, 16), numpy.float32))
    assert bench.backward(lambda a, b: a @ b, x, w, grad_output=g, repeat=2).repeat == 2


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda x: bench.backward(42, x), TypeError, "callable"),
        (lambda x: bench.backward(lambda a: a.sum(), x, repeat=0), ValueError, "repeat"),
        (lambda x: bench.backward(lambda a: a.sum(), x, warmup=-1), ValueError, "warmup"),
        (lambda x: bench.backward(lambda a: 3.0, x), TypeError, "Tensor"),
        (lambda x: bench.backward(lambda a: a.detach().sum(), x), ValueError, "requires_grad"),
        (lambda x: bench.backward_module(lambda a: a, x), TypeError, "Module"),
    ],
)
def test_bad_input_is_refused_clearly(call, error, message):
    x, _ = _leaves()
    with pytest.raises(error, match=message):
        call(x)
