"""Tests for gradflow.nn.functional: PyTorch's names, bound to our ops, usable end to end."""

import numpy
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.ops import (
    conv,
    dropout,
    embedding,
    indexing,
    linalg,
    losses,
    normalization,
    padding,
    pooling,
    softmax,
    unary,
)
from gradflow.testing.gradcheck import gradcheck

# A sample of names and the op each must be: F re-exports the ops, it never wraps them.
EXPECTED = {
    "pad": padding.pad,
    "gelu": unary.gelu,
    "linear": linalg.linear,
    "softmax": softmax.softmax,
    "cross_entropy": losses.cross_entropy,
    "dropout": dropout.dropout,
    "one_hot": indexing.one_hot,
    "conv2d": conv.conv2d,
    "max_pool2d": pooling.max_pool2d,
    "batch_norm": normalization.batch_norm,
    "embedding": embedding.embedding,
}


def t(array, device, requires_grad=False):
    return gradflow.tensor(numpy.asarray(array), device=device, requires_grad=requires_grad)


def test_functional_gathers_the_ops_under_their_torch_names():
    assert nn.functional is F and "functional" in nn.__all__
    for name, op in EXPECTED.items():
        assert getattr(F, name) is op, name
    assert len(set(F.__all__)) == len(F.__all__), "a name listed twice"
    for name in F.__all__:
        fn = getattr(F, name)
        assert callable(fn), name
        assert fn.__module__.startswith("gradflow.ops."), f"{name} is not an op's function"
        assert fn.__doc__, f"{name} has no docstring"


def test_functional_names_exist_in_torch():
    torch = pytest.importorskip("torch")
    for name in F.__all__:
        assert hasattr(torch.nn.functional, name), name


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("relu", {}),
        ("leaky_relu", {"negative_slope": 0.2}),
        ("elu", {"alpha": 0.7}),
        ("gelu", {}),
        ("gelu", {"approximate": "tanh"}),
        ("silu", {}),
        ("softplus", {"beta": 2.0, "threshold": 5.0}),
        ("sigmoid", {}),
        ("tanh", {}),
    ],
)
def test_activations_match_torch(device, rng, name, kwargs):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 5)) * 3
    ours = t(x, device, True)
    theirs = torch.tensor(x, requires_grad=True)
    out = getattr(F, name)(ours, **kwargs)
    ref = getattr(torch.nn.functional, name)(theirs, **kwargs)
    numpy.testing.assert_allclose(out.detach().cpu().numpy(), ref.detach().numpy(), rtol=1e-10)
    w = rng.standard_normal(x.shape)
    (out * t(w, device)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    numpy.testing.assert_allclose(ours.grad.cpu().numpy(), theirs.grad.numpy(), rtol=1e-9)


def test_a_classifier_step_through_functional_gradchecks(device, rng):
    """linear -> gelu -> linear -> cross_entropy, all via F: gradients for every parameter."""
    x = t(rng.standard_normal((6, 4)), device)
    target = t(numpy.array([0, 2, 1, -100, 2, 0]), device)
    w1 = t(rng.standard_normal((5, 4)) * 0.5, device, True)
    b1 = t(rng.standard_normal(5) * 0.1, device, True)
    w2 = t(rng.standard_normal((3, 5)) * 0.5, device, True)

    def loss(w1, b1, w2):
        hidden = F.gelu(F.linear(x, w1, b1))
        return F.cross_entropy(F.linear(hidden, w2), target, label_smoothing=0.1)

    assert gradcheck(loss, [w1, b1, w2])


def test_log_softmax_then_nll_equals_cross_entropy(device, rng):
    x = t(rng.standard_normal((5, 4, 3)), device)
    target = t(rng.integers(0, 4, (5, 3)), device)
    weight = t(rng.random(4) + 0.5, device)
    a = F.nll_loss(F.log_softmax(x, 1), target, weight)
    b = F.cross_entropy(x, target, weight)
    assert float(a) == pytest.approx(float(b), rel=1e-12)


def test_cross_entropy_against_one_hot_probabilities(device, rng):
    x = t(rng.standard_normal((5, 4)), device)
    target = t(rng.integers(0, 4, 5), device)
    probs = F.one_hot(target, 4).double()
    assert float(F.cross_entropy(x, probs)) == pytest.approx(float(F.cross_entropy(x, target)))


def test_dropout_through_functional_follows_the_seed(device):
    x = gradflow.ones(64, device=device)
    gradflow.manual_seed(11)
    a = F.dropout(x, 0.5).cpu().numpy()
    gradflow.manual_seed(11)
    numpy.testing.assert_array_equal(a, F.dropout(x, 0.5).cpu().numpy())
    assert F.dropout(x, 0.5, training=False) is x
