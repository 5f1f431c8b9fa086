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


def _check_log_prob_and_entropy(th, a, b, value):
    """Our distribution a against torch's b: log_prob(value) and entropy, then the gradients
    of their sum are backpropagated into both (the caller compares them)."""
    lp, tl = a.log_prob(gf.tensor(value)), b.log_prob(th.tensor(value))
    numpy.testing.assert_allclose(lp.detach().numpy(), tl.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(
        a.entropy().detach().numpy(), b.entropy().detach().numpy(), rtol=1e-12
    )
    (lp.sum() + a.entropy().sum()).backward()
    (tl.sum() + b.entropy().sum()).backward()


def test_categorical_log_prob_entropy_and_grads_match_torch(th, rng):
    logits = rng.standard_normal((4, 5))
    ours, theirs = _pair(th, logits)
    value = numpy.array([0, 4, 2, 1])
    a = Categorical(logits=ours)
    b = th.distributions.Categorical(logits=theirs)
    _check_log_prob_and_entropy(th, a, b, value)
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
    _check_log_prob_and_entropy(th, a, b, value)
    numpy.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10)
    assert Bernoulli(probs=gf.tensor([0.5, 0.5])).sample((3,)).shape == (3, 2)


def test_normal_matches_torch_and_rsample_is_differentiable(th, rng):
    loc, tloc = _pair(th, rng.standard_normal(3))
    scale, tscale = _pair(th, numpy.abs(rng.standard_normal(3)) + 0.5)
    value = rng.standard_normal(3)
    a, b = Normal(loc, scale), th.distributions.Normal(tloc, tscale)
    _check_log_prob_and_entropy(th, a, b, value)
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


KL_PAIRS = {
    "normal": lambda D, T: (D.Normal(T([0.0, 1.0]), T([1.0, 2.0])), D.Normal(T(0.5), T(1.5))),
    "categorical": lambda D, T: (
        D.Categorical(probs=T([[0.2, 0.8, 0.0], [0.3, 0.3, 0.4]])),
        D.Categorical(logits=T([0.1, 0.2, 0.3])),
    ),
    "bernoulli": lambda D, T: (
        D.Bernoulli(probs=T([0.2, 0.0, 1.0])),
        D.Bernoulli(logits=T([0.3, -1.0, 2.0])),
    ),
    "uniform": lambda D, T: (
        D.Uniform(T([0.0, 0.0]), T([1.0, 2.0])),
        D.Uniform(T([-1.0, 0.5]), T([2.0, 3.0])),
    ),
}


@pytest.mark.parametrize("pair", sorted(KL_PAIRS))
def test_kl_divergence_matches_torch(pair, device):
    torch = pytest.importorskip("torch")
    ours = gf.distributions.kl_divergence(
        *KL_PAIRS[pair](gf.distributions, lambda v: gf.tensor(v, device=device))
    )
    theirs = torch.distributions.kl_divergence(*KL_PAIRS[pair](torch.distributions, torch.tensor))
    numpy.testing.assert_allclose(ours.cpu().numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_kl_divergence_of_normals_is_differentiable_as_in_a_vae():
    torch = pytest.importorskip("torch")
    mu, log_var = [0.3, -1.2], [0.1, 0.5]
    loc, lv = gf.tensor(mu, requires_grad=True), gf.tensor(log_var, requires_grad=True)
    tloc, tlv = torch.tensor(mu, requires_grad=True), torch.tensor(log_var, requires_grad=True)
    D, TD = gf.distributions, torch.distributions
    D.kl_divergence(D.Normal(loc, (0.5 * lv).exp()), D.Normal(0.0, 1.0)).sum().backward()
    TD.kl_divergence(TD.Normal(tloc, (0.5 * tlv).exp()), TD.Normal(0.0, 1.0)).sum().backward()
    numpy.testing.assert_allclose(loc.grad.numpy(), tloc.grad.numpy(), rtol=1e-6)
    numpy.testing.assert_allclose(lv.grad.numpy(), tlv.grad.numpy(), rtol=1e-6)


def test_register_kl_and_the_unregistered_pair():
    D = gf.distributions

    class MyNormal(D.Normal):
        pass

    p = MyNormal(gf.tensor(0.0), gf.tensor(1.0))
    assert D.kl_divergence(p, D.Normal(gf.tensor(0.0), gf.tensor(1.0))).item() == 0.0  # inherited
    with pytest.raises(NotImplementedError, match="no KL\\(p \\|\\| q\\) is registered"):
        D.kl_divergence(p, D.Uniform(gf.tensor(0.0), gf.tensor(1.0)))

    @D.register_kl(MyNormal, D.Uniform)
    def _kl(p, q):
        return gf.tensor(7.0)

    assert D.kl_divergence(p, D.Uniform(gf.tensor(0.0), gf.tensor(1.0))).item() == 7.0
    del D.kl._KL_REGISTRY[MyNormal, D.Uniform]


# ---- argument validation (on by default, as in PyTorch) ------------------------------------
@pytest.mark.parametrize(
    "make, constraint",
    [
        (lambda: Normal(gf.tensor([0.0, 1.0]), gf.tensor([1.0, -1.0])), "GreaterThan"),
        (lambda: Normal(gf.tensor([float("nan")]), gf.tensor([1.0])), "Real"),
        (lambda: Categorical(probs=gf.tensor([0.5, -0.1])), "Simplex"),
        (lambda: Bernoulli(probs=gf.tensor([1.5])), "Interval"),
        (lambda: Uniform(gf.tensor(1.0), gf.tensor(0.0)), "LessThan"),
    ],
)
def test_invalid_parameters_raise_unless_validation_is_off(make, constraint):
    with pytest.raises(ValueError, match=f"to satisfy the constraint {constraint}"):
        make()
    gf.distributions.Distribution.set_default_validate_args(False)
    try:
        make()  # made without a check, as in PyTorch
    finally:
        gf.distributions.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError, match="expects True or False"):
        gf.distributions.Distribution.set_default_validate_args(None)


@pytest.mark.parametrize(
    "dist, value",
    [
        (Categorical(logits=gf.zeros(3)), gf.tensor(3)),
        (Categorical(logits=gf.zeros(3)), gf.tensor(1.5)),
        (Bernoulli(probs=gf.tensor(0.3)), gf.tensor(0.5)),
        (Uniform(gf.tensor(0.0), gf.tensor(1.0)), gf.tensor(2.0)),
        (Normal(gf.tensor(0.0), gf.tensor(1.0)), gf.tensor(float("nan"))),
    ],
)
def test_log_prob_checks_the_support(dist, value):
    with pytest.raises(ValueError, match="to be within the support"):
        dist.log_prob(value)


def test_log_prob_wants_a_tensor_and_validate_args_false_skips_checks():
    with pytest.raises(ValueError, match="must be a Tensor"):
        Normal(0.0, 1.0).log_prob(0.5)
    lenient = Bernoulli(probs=gf.tensor(0.3), validate_args=False)
    assert numpy.isfinite(lenient.log_prob(gf.tensor(0.5)).item())
    assert Normal(gf.tensor([0.0]), gf.tensor([-1.0]), validate_args=False).scale.item() == -1.0
    # values inside the support pass: the ends of Uniform's interval and integer-valued floats
    assert Uniform(gf.tensor(0.0), gf.tensor(1.0)).log_prob(gf.tensor(0.0)).item() == 0.0
    assert Categorical(logits=gf.zeros(3)).log_prob(gf.tensor(2.0)).shape == ()
