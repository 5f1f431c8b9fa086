"""gradflow.distributions against torch.distributions: log_prob, entropy, their gradients,
sample shapes and frequencies, rsample gradients."""

import numpy
import pytest

import gradflow as gf
from gradflow.distributions import Bernoulli, Categorical, Normal, Uniform


@pytest.fixture
def th():
    return pytest.importorskip("torch")


def _pair(th, a):
    return (
        gf.tensor(a, dtype=gf.float64, requires_grad=True),
        th.tensor(a, dtype=th.float64, requires_grad=True),
    )


def test_categorical_log_prob_entropy_and_grads_match_torch(th, rng):
    logits = rng.standard_normal((4, 5))
    ours, theirs = _pair(th, logits)
    value = numpy.array([0, 4, 2, 1])
    a = Categorical(logits=ours)
    b = th.distributions.Categorical(logits=theirs)
    lp = a.log_prob(gf.tensor(value))
    tl = b.log_prob(th.tensor(value))
    numpy.testing.assert_allclose(lp.detach().numpy(), tl.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(
        a.entropy().detach().numpy(), b.entropy().detach().numpy(), rtol=1e-12
    )
    (lp.sum() + a.entropy().sum()).backward()
    (tl.sum() + b.entropy().sum()).backward()
    numpy.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10)


def test_categorical_from_probs_and_broadcast_values(th):
    probs = numpy.array([0.2, 0.3, 0.5])
    a = Categorical(probs=gf.tensor(probs))
    b = th.distributions.Categorical(probs=th.tensor(probs))
    value = numpy.array([[0, 1], [2, 2]])
    numpy.testing.assert_allclose(
        a.log_prob(gf.tensor(value)).numpy(), b.log_prob(th.tensor(value)).numpy(), rtol=1e-7
    )
    assert a.batch_shape == () and a.sample((7,)).shape == (7,)


def test_categorical_samples_follow_the_probabilities():
    gf.manual_seed(0)
    c = Categorical(probs=gf.tensor([0.1, 0.6, 0.3]))
    draws = c.sample((20000,)).numpy()
    freq = numpy.bincount(draws, minlength=3) / draws.size
    numpy.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=0.015)
    assert draws.dtype == numpy.int64


def test_bernoulli_matches_torch(th, rng):
    logits = rng.standard_normal(6)
    ours, theirs = _pair(th, logits)
    value = numpy.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    a, b = Bernoulli(logits=ours), th.distributions.Bernoulli(logits=theirs)
    lp, tl = a.log_prob(gf.tensor(value)), b.log_prob(th.tensor(value))
    numpy.testing.assert_allclose(lp.detach().numpy(), tl.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(
        a.entropy().detach().numpy(), b.entropy().detach().numpy(), rtol=1e-12
    )
    (lp.sum() + a.entropy().sum()).backward()
    (tl.sum() + b.entropy().sum()).backward()
    numpy.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10)
    assert Bernoulli(probs=gf.tensor([0.5, 0.5])).sample((3,)).shape == (3, 2)


def test_normal_matches_torch_and_rsample_is_differentiable(th, rng):
    loc, tloc = _pair(th, rng.standard_normal(3))
    scale, tscale = _pair(th, numpy.abs(rng.standard_normal(3)) + 0.5)
    value = rng.standard_normal(3)
    a, b = Normal(loc, scale), th.distributions.Normal(tloc, tscale)
    lp, tl = a.log_prob(gf.tensor(value)), b.log_prob(th.tensor(value))
    numpy.testing.assert_allclose(lp.detach().numpy(), tl.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(
        a.entropy().detach().numpy(), b.entropy().detach().numpy(), rtol=1e-12
    )
    (lp.sum() + a.entropy().sum()).backward()
    (tl.sum() + b.entropy().sum()).backward()
    numpy.testing.assert_allclose(loc.grad.numpy(), tloc.grad.numpy(), rtol=1e-10)
    numpy.testing.assert_allclose(scale.grad.numpy(), tscale.grad.numpy(), rtol=1e-10)
    loc.grad = None
    a.rsample((5,)).sum().backward()
    assert loc.grad.tolist() == [5.0, 5.0, 5.0]
    assert not a.sample((2,)).requires_grad and a.sample((2,)).shape == (2, 3)


def test_uniform_matches_torch(th):
    a = Uniform(gf.tensor([0.0, 1.0]), gf.tensor([2.0, 5.0]))
    b = th.distributions.Uniform(th.tensor([0.0, 1.0]), th.tensor([2.0, 5.0]))
    v = [1.0, 2.0]
    numpy.testing.assert_allclose(a.log_prob(gf.tensor(v)).numpy(), b.log_prob(th.tensor(v)))
    numpy.testing.assert_allclose(a.entropy().numpy(), b.entropy().numpy())
    x = a.sample((1000,)).numpy()
    assert (x[:, 0] >= 0).all() and (x[:, 0] < 2).all() and (x[:, 1] >= 1).all()


def test_errors_name_the_mistake():
    with pytest.raises(ValueError, match="either probs or logits"):
        Categorical()
    with pytest.raises(ValueError, match="either probs or logits"):
        Bernoulli(probs=gf.ones(1), logits=gf.ones(1))
    with pytest.raises(NotImplementedError, match="no reparameterized sample"):
        Categorical(probs=gf.ones(2)).rsample()


def test_each_family_runs_on_the_device(device):
    logits = gf.tensor([[0.5, 1.0, -1.0]], device=device, requires_grad=True)
    c = Categorical(logits=logits)
    c.log_prob(c.sample()).sum().backward()
    assert logits.grad.device == logits.device and c.sample((4,)).device == logits.device
    n = Normal(gf.zeros(2, device=device), gf.ones(2, device=device))
    assert n.rsample((3,)).device == n.loc.device and n.log_prob(n.sample()).shape == (2,)
    b = Bernoulli(logits=gf.zeros(2, device=device))
    assert b.log_prob(b.sample()).device == b.logits.device
    u = Uniform(gf.zeros(2, device=device), gf.ones(2, device=device))
    assert u.log_prob(u.sample()).device == u.low.device
