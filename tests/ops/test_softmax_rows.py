"""softmax and log_softmax along the last dim on NumPy (the row-sum route of ops/_rows.py):
float64 references, a broadcast upstream gradient, rows of -inf, and non-last dims."""

import numpy
import pytest

import gradflow as gf
from gradflow.backend import compiled

rng = numpy.random.default_rng(1)


def _reference(x, g, log):
    x, g = x.astype(numpy.float64), g.astype(numpy.float64)
    z = x - x.max(-1, keepdims=True)
    y = numpy.exp(z) / numpy.exp(z).sum(-1, keepdims=True)
    if log:
        return numpy.log(y), g - y * g.sum(-1, keepdims=True)
    return y, y * (g - (g * y).sum(-1, keepdims=True))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape", [(5, 33), (2, 3, 17), (1, 1)])
@pytest.mark.parametrize("upstream", ["dense", "broadcast"])
def test_last_dim_matches_float64(log, shape, upstream):
    x = (rng.standard_normal(shape) * 4).astype(numpy.float32)
    op = gf.log_softmax if log else gf.softmax
    t = gf.tensor(x, requires_grad=True)
    if upstream == "dense":
        g = rng.standard_normal(shape).astype(numpy.float32)
        y = op(t, -1)
        y.backward(gf.tensor(g))
    else:  # sum().backward(): the op sees a stride-0 gradient of 0.5s
        g = numpy.full(shape, 0.5, numpy.float32)
        y = op(t, -1)
        (y.sum() * 0.5).backward()
    want_y, want_dx = _reference(x, g, log)
    assert y.dtype == gf.float32 and t.grad.dtype == gf.float32
    numpy.testing.assert_allclose(y.detach().numpy(), want_y, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(t.grad.numpy(), want_dx, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("log", [False, True])
def test_float64_last_dim_is_accurate(log):
    x = rng.standard_normal((4, 50)) * 10
    g = rng.standard_normal((4, 50))
    t = gf.tensor(x, requires_grad=True)
    y = (gf.log_softmax if log else gf.softmax)(t, 1)
    y.backward(gf.tensor(g))
    want_y, want_dx = _reference(x, g, log)
    numpy.testing.assert_allclose(y.detach().numpy(), want_y, rtol=1e-12, atol=1e-14)
    numpy.testing.assert_allclose(t.grad.numpy(), want_dx, rtol=1e-10, atol=1e-14)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@compiled.disabled()  # the NumPy route's +inf rows: NaN throughout, as compiled rows and PyTorch
def test_rows_of_minus_inf_and_plus_inf():
    x = numpy.array([[-numpy.inf, -numpy.inf], [0.0, numpy.inf], [1.0, 2.0]], numpy.float32)
    y = gf.softmax(gf.tensor(x), 1).numpy()
    assert numpy.isnan(y[0]).all()  # 0 / 0, as PyTorch
    assert numpy.isnan(y[1]).all()  # inf - inf, as PyTorch
    numpy.testing.assert_allclose(y[2], [0.26894142, 0.73105858], rtol=1e-6)
    logp = gf.log_softmax(gf.tensor(x), 1).numpy()
    assert numpy.isnan(logp[0]).all()
    assert numpy.isnan(logp[1]).all()
    numpy.testing.assert_allclose(logp[2], numpy.log([0.26894142, 0.73105858]), rtol=1e-6)


def test_empty_last_dim_and_empty_batch():
    for shape in [(3, 0), (0, 4)]:
        t = gf.tensor(numpy.zeros(shape, numpy.float32), requires_grad=True)
        gf.softmax(t, -1).sum().backward()
        assert t.grad.shape == shape
        gf.log_softmax(t, -1).sum().backward()
        assert t.grad.shape == shape
