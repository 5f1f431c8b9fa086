"""Tests for gradflow/ops/dropout.py: seeded reproducibility, the scale that keeps the mean, the
gradient, the identity cases, the bool mask it saves, its name in messages, errors."""

import numpy
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow.ops.dropout import dropout


def host(x):
    return x.detach().cpu().numpy()


def test_dropout_is_reproducible_with_a_seed(device):
    x = gradflow.ones(1000, device=device)
    gradflow.manual_seed(7)
    a = host(dropout(x, 0.4))
    gradflow.manual_seed(7)
    b = host(dropout(x, 0.4))
    numpy.testing.assert_array_equal(a, b)
    gen = gradflow.Generator(device, seed=3)
    c = host(dropout(x, 0.4, generator=gen))
    d = host(dropout(x, 0.4, generator=gradflow.Generator(device, seed=3)))
    numpy.testing.assert_array_equal(c, d)
    assert not numpy.array_equal(a, host(dropout(x, 0.4)))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_scales_kept_elements_and_preserves_the_mean(device, p):
    x = gradflow.ones(200_000, device=device)
    out = host(dropout(x, p))
    kept = out != 0
    numpy.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
    assert kept.mean() == pytest.approx(1 - p, abs=0.01)
    assert out.mean() == pytest.approx(1.0, abs=0.03)


def test_dropout_gradient_is_mask_over_keep_probability(device, rng):
    x = gradflow.tensor(rng.standard_normal((50, 40)), device=device, requires_grad=True)
    out = dropout(x, 0.3)
    upstream = rng.standard_normal((50, 40))
    out.backward(gradflow.tensor(upstream, device=device))
    mask = host(out) != 0
    numpy.testing.assert_allclose(host(x.grad), upstream * mask / 0.7, rtol=1e-12)


def test_dropout_identity_cases_and_p_one(device, rng):
    x = gradflow.tensor(rng.standard_normal((3, 3)), device=device, requires_grad=True)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    out = dropout(x, 1.0)
    numpy.testing.assert_array_equal(host(out), numpy.zeros((3, 3)))
    out.sum().backward()
    numpy.testing.assert_array_equal(host(x.grad), numpy.zeros((3, 3)))


def test_dropout_saves_a_bool_mask(rng):
    x = gradflow.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    (mask,) = dropout(x, 0.3).grad_fn.saved_arrays
    assert mask.dtype == numpy.bool_


def test_grad_fn_is_named_after_the_public_function():
    out = F.dropout(gradflow.ones(8, requires_grad=True), 0.5)
    assert repr(out.grad_fn) == "<DropoutBackward>" and out.grad_fn.name == "dropout"
    out.backward(gradflow.ones(8))
    with pytest.raises(RuntimeError, match=r"^Trying to backward through dropout a second time"):
        out.backward(gradflow.ones(8))


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5"])
def test_dropout_rejects_bad_probabilities(p):
    x = gradflow.tensor(numpy.zeros((4, 3), dtype=numpy.float32))
    with pytest.raises(
        ValueError,
        match=r"dropout: probability p has to be between 0 and 1, "
        rf"but got {p!r}",
    ):
        dropout(x, p)
