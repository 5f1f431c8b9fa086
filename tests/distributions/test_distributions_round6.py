"""The families of gradflow/distributions/scalar_families.py and vector_families.py
(Exponential, Laplace, Cauchy, HalfNormal, HalfCauchy, LogNormal, Gumbel, Geometric,
OneHotCategorical, Independent, MultivariateNormal) against torch.distributions and against
float64 NumPy references: moments, log_prob, entropy, cdf/icdf, their gradients, sample shapes
and moments, expand, kl_divergence, argument checks."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow import distributions as D
from gradflow.autograd.gradcheck import gradcheck

LOC = numpy.array([0.3, -1.2, 2.0, 0.0])
SCALE = numpy.array([0.7, 1.5, 0.4, 2.0])
POS = numpy.array([0.2, 1.0, 2.5, 0.05])
UNIT = numpy.array([0.05, 0.3, 0.5, 0.95])

# name -> (factory over (loc, scale), values for log_prob/cdf)
SCALAR = {
    "Exponential": (lambda m, loc, scale: m.Exponential(scale), POS),
    "Laplace": (lambda m, loc, scale: m.Laplace(loc, scale), LOC + 0.4),
    "Cauchy": (lambda m, loc, scale: m.Cauchy(loc, scale), LOC - 0.7),
    "HalfNormal": (lambda m, loc, scale: m.HalfNormal(scale), POS),
    "HalfCauchy": (lambda m, loc, scale: m.HalfCauchy(scale), POS),
    "LogNormal": (lambda m, loc, scale: m.LogNormal(loc, scale), POS),
    "Gumbel": (lambda m, loc, scale: m.Gumbel(loc, scale), LOC + 0.4),
}


def _np(t):
    return t.detach().cpu().numpy()


def _close(a, b, rtol=1e-10):
    numpy.testing.assert_allclose(_np(a), b.detach().numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_scalar_family_matches_torch(name):
    torch = pytest.importorskip("torch")
    make, value = SCALAR[name]
    gl, gs = (gf.tensor(a, dtype=gf.float64, requires_grad=True) for a in (LOC, SCALE))
    tl, ts = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (LOC, SCALE))
    a, b = make(D, gl, gs), make(torch.distributions, tl, ts)
    for attr in ("mean", "mode", "variance", "stddev"):
        _close(getattr(a, attr), getattr(b, attr))
    _close(a.log_prob(gf.tensor(value)), b.log_prob(torch.tensor(value)))
    _close(a.entropy(), b.entropy())
    _close(a.cdf(gf.tensor(value)), b.cdf(torch.tensor(value)), 1e-9)
    _close(a.icdf(gf.tensor(UNIT)), b.icdf(torch.tensor(UNIT)), 1e-9)
    (
        a.log_prob(gf.tensor(value)).sum() + a.entropy().sum() + a.cdf(gf.tensor(value)).sum()
    ).backward()
    (
        b.log_prob(torch.tensor(value)).sum() + b.entropy().sum() + b.cdf(torch.tensor(value)).sum()
    ).backward()
    _close(gs.grad, ts.grad, 1e-9)
    if tl.grad is not None:
        _close(gl.grad, tl.grad, 1e-9)
    # KL against a second member of the family, differentiable in both
    q = make(D, gf.tensor(LOC[::-1].copy()), gf.tensor(SCALE[::-1].copy()))
    tq = make(torch.distributions, torch.tensor(LOC[::-1].copy()), torch.tensor(SCALE[::-1].copy()))
    _close(D.kl_divergence(a, q), torch.distributions.kl_divergence(b, tq), 1e-9)
    assert a.batch_shape == b.batch_shape and a.event_shape == b.event_shape


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_rsample_gradients_match_the_reparameterization(name):
    """rsample's gradient in the parameters is that of the transform of the base draw: the
    sample divided by the scale (a pure location-scale family) or its own closed form."""
    make, _ = SCALAR[name]
    loc = gf.tensor(LOC, dtype=gf.float64, requires_grad=True)
    scale = gf.tensor(SCALE, dtype=gf.float64, requires_grad=True)
    d = make(D, loc, scale)
    assert d.has_rsample
    gf.manual_seed(3)
    x = d.rsample((5,))
    assert x.shape == (5, 4) and x.requires_grad and x.dtype == gf.float64
    x.sum().backward()
    xs = _np(x)
    if name == "Exponential":  # x = e / rate
        numpy.testing.assert_allclose(_np(scale.grad), -(xs / SCALE).sum(0), rtol=1e-10)
    elif name in ("HalfNormal", "HalfCauchy"):  # x = |scale * e|
        numpy.testing.assert_allclose(_np(scale.grad), (xs / SCALE).sum(0), rtol=1e-10)
    elif name == "LogNormal":  # x = exp(loc + scale eps)
        numpy.testing.assert_allclose(_np(loc.grad), xs.sum(0), rtol=1e-10)
    else:  # x = loc + scale * eps
        numpy.testing.assert_allclose(_np(loc.grad), numpy.full(4, 5.0), rtol=1e-12)
        numpy.testing.assert_allclose(_np(scale.grad), ((xs - LOC) / SCALE).sum(0), rtol=1e-9)


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_samples_follow_the_cdf_and_the_pdf_integrates_to_one(name):
    """Torch-free: the empirical cdf of 20000 seeded draws is the family's cdf; icdf inverts
    cdf; exp(log_prob) integrates to 1 (trapezoid on a wide grid, float64)."""
    make, _ = SCALAR[name]
    d = make(D, gf.tensor(0.5, dtype=gf.float64), gf.tensor(1.3, dtype=gf.float64))
    gf.manual_seed(0)
    draws = numpy.sort(_np(d.sample((20000,))))
    quantiles = numpy.array([0.1, 0.25, 0.5, 0.75, 0.9])
    at = _np(d.icdf(gf.tensor(quantiles, dtype=gf.float64)))
    numpy.testing.assert_allclose(_np(d.cdf(gf.tensor(at))), quantiles, rtol=1e-9)
    empirical = numpy.searchsorted(draws, at) / draws.size
    numpy.testing.assert_allclose(empirical, quantiles, atol=0.015)
    lo, hi = (1e-9, 60.0) if name in ("Exponential", "HalfNormal", "LogNormal") else (-60.0, 60.0)
    if name == "HalfCauchy":
        lo, hi = 0.0, 5000.0
    grid = numpy.linspace(lo, hi, 400001)
    pdf = numpy.exp(_np(d.log_prob(gf.tensor(grid))))
    mass = numpy.trapezoid(pdf, grid)
    # the mass outside the grid (heavy tails) from the cdf
    cdf = _np(d.cdf(gf.tensor([lo, hi], dtype=gf.float64)))
    tail = 1 - cdf[1] + cdf[0]
    assert abs(mass + tail - 1) < 2e-3


def test_sample_moments_against_closed_forms():
    gf.manual_seed(1)
    for d in (
        D.Exponential(gf.tensor([0.5, 2.0], dtype=gf.float64)),
        D.Laplace(
            gf.tensor([1.0, -2.0], dtype=gf.float64), gf.tensor([0.5, 2.0], dtype=gf.float64)
        ),
        D.HalfNormal(gf.tensor([0.5, 2.0], dtype=gf.float64)),
        D.Gumbel(gf.tensor([1.0, -2.0], dtype=gf.float64), gf.tensor([0.5, 2.0], dtype=gf.float64)),
        D.LogNormal(
            gf.tensor([0.0, 0.3], dtype=gf.float64), gf.tensor([0.25, 0.5], dtype=gf.float64)
        ),
        D.Geometric(gf.tensor([0.3, 0.8], dtype=gf.float64)),
    ):
        x = _np(d.sample((40000,)))
        numpy.testing.assert_allclose(x.mean(0), _np(d.mean), rtol=0.05, atol=0.02)
        numpy.testing.assert_allclose(x.var(0), _np(d.variance), rtol=0.1, atol=0.02)


def test_cauchy_and_halfcauchy_moments_are_nan_and_inf():
    c = D.Cauchy(gf.zeros(3), gf.ones(3))
    assert numpy.isnan(_np(c.mean)).all() and numpy.isinf(_np(c.variance)).all()
    h = D.HalfCauchy(gf.ones(2))
    assert numpy.isinf(_np(h.mean)).all() and _np(h.mode).tolist() == [0.0, 0.0]


def test_log_prob_gradients_by_finite_differences():
    v = gf.tensor(POS, dtype=gf.float64)
    for make, _ in SCALAR.values():

        def f(loc, scale, make=make):
            d = make(D, loc, scale)
            return d.log_prob(v) + d.entropy() + d.cdf(v)

        args = [gf.tensor(a, dtype=gf.float64, requires_grad=True) for a in (LOC, SCALE)]
        assert gradcheck(f, args)


def test_geometric_matches_torch():
    torch = pytest.importorskip("torch")
    p = numpy.array([0.2, 0.5, 0.9, 1.0])
    v = numpy.array([0.0, 3.0, 1.0, 0.0])
    gp = gf.tensor(p[:3], dtype=gf.float64, requires_grad=True)
    tp = torch.tensor(p[:3], dtype=torch.float64, requires_grad=True)
    a, b = D.Geometric(gp), torch.distributions.Geometric(tp)
    for attr in ("mean", "mode", "variance", "stddev"):
        _close(getattr(a, attr), getattr(b, attr))
    _close(a.log_prob(gf.tensor(v[:3])), b.log_prob(torch.tensor(v[:3])))
    _close(a.entropy(), b.entropy(), 1e-9)
    (a.log_prob(gf.tensor(v[:3])).sum() + a.entropy().sum()).backward()
    (b.log_prob(torch.tensor(v[:3])).sum() + b.entropy().sum()).backward()
    _close(gp.grad, tp.grad, 1e-8)
    # probs == 1 puts all mass on 0
    one = D.Geometric(gf.tensor(p, dtype=gf.float64))
    _close(
        one.log_prob(gf.tensor(v)),
        torch.distributions.Geometric(torch.tensor(p)).log_prob(torch.tensor(v)),
    )
    lg = numpy.array([-1.0, 0.0, 2.0])
    a, b = D.Geometric(logits=gf.tensor(lg)), torch.distributions.Geometric(logits=torch.tensor(lg))
    _close(a.log_prob(gf.tensor(v[:3])), b.log_prob(torch.tensor(v[:3])), 1e-9)
    _close(a.probs, b.probs)
    q = D.Geometric(gf.tensor([0.6, 0.1, 0.3], dtype=gf.float64))
    tq = torch.distributions.Geometric(torch.tensor([0.6, 0.1, 0.3], dtype=torch.float64))
    theirs = torch.distributions.kl_divergence(torch.distributions.Geometric(tp.detach()), tq)
    _close(D.kl_divergence(D.Geometric(gp.detach()), q), theirs, 1e-9)
    s = D.Geometric(gf.tensor([0.3, 0.7])).sample((6,))
    assert s.shape == (6, 2) and (_np(s) >= 0).all() and (_np(s) == numpy.floor(_np(s))).all()


def test_one_hot_categorical_matches_torch():
    torch = pytest.importorskip("torch")
    lg = numpy.random.default_rng(0).standard_normal((3, 4))
    gl = gf.tensor(lg, requires_grad=True)
    tl = torch.tensor(lg, requires_grad=True)
    a, b = D.OneHotCategorical(logits=gl), torch.distributions.OneHotCategorical(logits=tl)
    v = numpy.eye(4)[[0, 3, 2]]
    _close(a.log_prob(gf.tensor(v)), b.log_prob(torch.tensor(v)))
    _close(a.entropy(), b.entropy())
    for attr in ("mean", "mode", "variance", "probs", "logits"):
        _close(getattr(a, attr), getattr(b, attr))
    (a.log_prob(gf.tensor(v)).sum() + a.entropy().sum()).backward()
    (b.log_prob(torch.tensor(v)).sum() + b.entropy().sum()).backward()
    _close(gl.grad, tl.grad)
    assert a.batch_shape == (3,) and a.event_shape == (4,)
    s = a.sample((5,))
    assert s.shape == (5, 3, 4) and (_np(s).sum(-1) == 1).all()
    assert a.enumerate_support().shape == tuple(b.enumerate_support().shape)
    assert a.enumerate_support(False).shape == tuple(b.enumerate_support(False).shape)
    assert a.expand((2, 3)).batch_shape == (2, 3)
    q = D.OneHotCategorical(probs=gf.tensor([0.1, 0.2, 0.3, 0.4], dtype=gf.float64))
    tq = torch.distributions.OneHotCategorical(
        probs=torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    )
    _close(D.kl_divergence(a, q), torch.distributions.kl_divergence(b, tq))
    with pytest.raises(ValueError, match="support"):
        a.log_prob(gf.tensor([[1.0, 1.0, 0.0, 0.0]] * 3))


def test_one_hot_categorical_sample_frequencies():
    gf.manual_seed(0)
    d = D.OneHotCategorical(probs=gf.tensor([0.1, 0.6, 0.3]))
    freq = _np(d.sample((20000,))).mean(0)
    numpy.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=0.015)


def test_independent_matches_torch_and_sums_the_reinterpreted_dims():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(1)
    loc, scale = rng.standard_normal((2, 3)), rng.uniform(0.5, 2, (2, 3))
    gl, tl = gf.tensor(loc, requires_grad=True), torch.tensor(loc, requires_grad=True)
    a = D.Independent(D.Normal(gl, gf.tensor(scale)), 1)
    b = torch.distributions.Independent(torch.distributions.Normal(tl, torch.tensor(scale)), 1)
    v = rng.standard_normal((4, 2, 3))
    _close(a.log_prob(gf.tensor(v)), b.log_prob(torch.tensor(v)))
    _close(a.entropy(), b.entropy())
    a.log_prob(gf.tensor(v)).sum().backward()
    b.log_prob(torch.tensor(v)).sum().backward()
    _close(gl.grad, tl.grad)
    assert (a.batch_shape, a.event_shape) == ((2,), (3,)) and a.has_rsample
    assert a.rsample((5,)).shape == (5, 2, 3) and a.mean.shape == (2, 3)
    e = a.expand((4, 2))
    assert (e.batch_shape, e.event_shape) == ((4, 2), (3,))
    all_event = D.Independent(D.Normal(gl, gf.tensor(scale)), 2)
    assert all_event.log_prob(gf.tensor(v)).shape == (4,)
    q = D.Independent(D.Normal(gf.tensor(loc * 2), gf.tensor(scale)), 1)
    tq = torch.distributions.Independent(
        torch.distributions.Normal(torch.tensor(loc * 2), torch.tensor(scale)), 1
    )
    _close(D.kl_divergence(a, q), torch.distributions.kl_divergence(b, tq))
    with pytest.raises(NotImplementedError, match="different numbers"):
        D.kl_divergence(a, all_event)
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims"):
        D.Independent(D.Normal(gl, gf.tensor(scale)), 3)


def _spd(rng, batch, n):
    a = rng.standard_normal((*batch, n, n))
    return a @ numpy.swapaxes(a, -1, -2) + n * numpy.eye(n)


@pytest.mark.parametrize("kind", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_multivariate_normal_matches_torch(kind):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(2)
    cov, mu = _spd(rng, (2,), 3), rng.standard_normal((2, 3))
    m = numpy.linalg.cholesky(cov) if kind == "scale_tril" else cov
    gm, tm = gf.tensor(m, requires_grad=True), torch.tensor(m, requires_grad=True)
    gmu, tmu = gf.tensor(mu, requires_grad=True), torch.tensor(mu, requires_grad=True)
    a = D.MultivariateNormal(gmu, **{kind: gm})
    b = torch.distributions.MultivariateNormal(tmu, **{kind: tm})
    v = rng.standard_normal((5, 2, 3))
    _close(a.log_prob(gf.tensor(v)), b.log_prob(torch.tensor(v)), 1e-9)
    _close(a.entropy(), b.entropy(), 1e-9)
    for attr in ("mean", "mode", "variance", "stddev", "scale_tril", "covariance_matrix",
                 "precision_matrix"):  # fmt: skip
        _close(getattr(a, attr), getattr(b, attr), 1e-9)
    (a.log_prob(gf.tensor(v)).sum() + a.entropy().sum()).backward()
    (b.log_prob(torch.tensor(v)).sum() + b.entropy().sum()).backward()
    _close(gm.grad, tm.grad, 1e-8)
    _close(gmu.grad, tmu.grad, 1e-9)
    q = D.MultivariateNormal(gf.tensor(mu[0]), covariance_matrix=gf.tensor(cov[1]))
    tq = torch.distributions.MultivariateNormal(torch.tensor(mu[0]), torch.tensor(cov[1]))
    _close(D.kl_divergence(a, q), torch.distributions.kl_divergence(b, tq), 1e-9)
    assert (a.batch_shape, a.event_shape) == ((2,), (3,))
    assert a.expand((4, 2)).batch_shape == (4, 2)


def test_multivariate_normal_broadcasts_loc_against_the_matrix_batch():
    rng = numpy.random.default_rng(3)
    cov = _spd(rng, (4,), 2)
    d = D.MultivariateNormal(gf.tensor([1.0, -1.0], dtype=gf.float64), gf.tensor(cov))
    assert d.batch_shape == (4,) and d.loc.shape == (4, 2)
    # torch-free reference: the density of N(mu, cov) in float64 NumPy
    x = rng.standard_normal((4, 2))
    diff = x - numpy.array([1.0, -1.0])
    maha = numpy.einsum("bi,bij,bj->b", diff, numpy.linalg.inv(cov), diff)
    ref = -0.5 * (2 * math.log(2 * math.pi) + maha + numpy.linalg.slogdet(cov)[1])
    numpy.testing.assert_allclose(_np(d.log_prob(gf.tensor(x))), ref, rtol=1e-10)


def test_multivariate_normal_rsample_moments_and_gradient():
    rng = numpy.random.default_rng(4)
    cov = _spd(rng, (), 3)
    loc = gf.tensor([1.0, 2.0, -1.0], dtype=gf.float64, requires_grad=True)
    d = D.MultivariateNormal(loc, covariance_matrix=gf.tensor(cov))
    gf.manual_seed(0)
    x = d.rsample((40000,))
    numpy.testing.assert_allclose(_np(x).mean(0), [1.0, 2.0, -1.0], atol=0.05)
    numpy.testing.assert_allclose(numpy.cov(_np(x).T), cov, rtol=0.05, atol=0.1)
    x.sum().backward()
    numpy.testing.assert_allclose(_np(loc.grad), [40000.0] * 3)


def test_multivariate_normal_gradients_by_finite_differences():
    rng = numpy.random.default_rng(5)
    tril = numpy.linalg.cholesky(_spd(rng, (), 3))
    v = gf.tensor(rng.standard_normal((2, 3)))

    def f(loc, scale_tril):
        return D.MultivariateNormal(loc, scale_tril=scale_tril.tril()).log_prob(v)

    args = [
        gf.tensor(rng.standard_normal(3), requires_grad=True),
        gf.tensor(tril, requires_grad=True),
    ]
    assert gradcheck(f, args)


def test_multivariate_normal_errors():
    with pytest.raises(ValueError, match="Exactly one of"):
        D.MultivariateNormal(gf.zeros(2))
    with pytest.raises(ValueError, match="Exactly one of"):
        D.MultivariateNormal(gf.zeros(2), gf.eye(2), scale_tril=gf.eye(2))
    with pytest.raises(ValueError, match="at least one-dimensional"):
        D.MultivariateNormal(gf.tensor(0.0), gf.eye(2))
    with pytest.raises(ValueError, match="at least two-dimensional"):
        D.MultivariateNormal(gf.zeros(2), scale_tril=gf.ones(2))
    with pytest.raises(ValueError, match="PositiveDefinite"):
        D.MultivariateNormal(gf.zeros(2), gf.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="LowerCholesky"):
        D.MultivariateNormal(gf.zeros(2), scale_tril=gf.tensor([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        D.MultivariateNormal(gf.zeros(3), gf.eye(2))


def test_argument_and_support_validation_as_torch():
    with pytest.raises(ValueError, match="parameter rate"):
        D.Exponential(gf.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="parameter scale"):
        D.Laplace(gf.zeros(2), gf.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="parameter loc"):
        D.Gumbel(gf.tensor([math.nan]), gf.ones(1))
    with pytest.raises(ValueError, match="parameter probs"):
        D.Geometric(gf.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="either probs or logits"):
        D.Geometric()
    with pytest.raises(ValueError, match="support"):
        D.Exponential(gf.ones(2)).log_prob(gf.tensor([-1.0, 1.0]))
    with pytest.raises(ValueError, match="support"):
        D.LogNormal(0.0, 1.0).log_prob(gf.tensor([0.0]))
    with pytest.raises(ValueError, match="support"):
        D.Geometric(gf.tensor(0.5)).log_prob(gf.tensor([1.5]))
    # validate_args=False: PyTorch's formulas on anything
    assert D.Exponential(gf.tensor([-1.0]), validate_args=False).mean.item() == -1.0
    hn = D.HalfNormal(gf.ones(1), validate_args=False)
    assert _np(hn.log_prob(gf.tensor([-1.0]))).tolist() == [-math.inf]
    with pytest.raises(RuntimeError, match="can't be expanded"):
        D.Laplace(gf.zeros(3), gf.ones(3)).expand((2,))


def test_empty_and_zero_dim_parameters():
    d = D.Laplace(gf.zeros(0), gf.ones(0))
    assert d.sample((2,)).shape == (2, 0) and d.log_prob(gf.zeros(0)).shape == (0,)
    e = D.Exponential(2.0)
    assert e.batch_shape == () and e.sample().shape == () and e.rsample((3,)).shape == (3,)
    assert e.rate.dtype == gf.float32 and e.sample().dtype == gf.float32
    assert D.Gumbel(0.0, 1.0).log_prob(gf.tensor(0.5)).shape == ()


def test_float32_parameters_keep_float32():
    d = D.Cauchy(gf.zeros(2), gf.ones(2))
    assert d.rsample((3,)).dtype == gf.float32 and d.log_prob(gf.zeros(2)).dtype == gf.float32
    m = D.MultivariateNormal(gf.zeros(2), gf.eye(2))
    assert m.rsample().dtype == gf.float32 and m.log_prob(gf.zeros(2)).dtype == gf.float32


def test_families_run_on_the_device(device):
    loc = gf.tensor([0.0, 1.0], device=device, requires_grad=True)
    scale = gf.tensor([1.0, 2.0], device=device)
    for d in (D.Laplace(loc, scale), D.Gumbel(loc, scale), D.Cauchy(loc, scale),
              D.LogNormal(loc, scale), D.HalfNormal(scale), D.Exponential(scale)):  # fmt: skip
        x = d.rsample((3,))
        assert x.device == loc.device and d.log_prob(d.sample()).device == loc.device
        if x.requires_grad and d.log_prob(x.detach()).requires_grad:
            (x.sum() + d.log_prob(x.detach()).sum()).backward()
    assert loc.grad.device == loc.device
    m = D.MultivariateNormal(loc, gf.eye(2, device=device) * 2)
    assert m.log_prob(m.sample((4,))).shape == (4,) and m.rsample().device == loc.device
    oh = D.OneHotCategorical(logits=gf.zeros(3, device=device))
    assert oh.log_prob(oh.sample()).device == loc.device
    g = D.Geometric(gf.tensor([0.5], device=device))
    assert g.log_prob(g.sample()).device == loc.device


# ---- the gamma family (gradflow/distributions/gamma_family.py) -----------------------------------
CONC = numpy.array([0.5, 1.3, 2.5, 7.0])
RATE = numpy.array([1.5, 0.5, 2.0, 3.0])  # no parameter at 1: torch's xlogy(0, y) gradient is 0
GAMMA_FAMILY = {
    "Gamma": (lambda m, x, y: m.Gamma(x, y), numpy.array([0.3, 1.2, 2.0, 0.7])),
    "Chi2": (lambda m, x, y: m.Chi2(x), numpy.array([0.3, 1.2, 2.0, 0.7])),
    "Beta": (lambda m, x, y: m.Beta(x, y), numpy.array([0.1, 0.5, 0.7, 0.99])),
    "StudentT": (lambda m, x, y: m.StudentT(x, y - 1, y), numpy.array([-0.7, 0.2, 1.0, -0.3])),
    "Poisson": (lambda m, x, y: m.Poisson(x), numpy.array([0.0, 1.0, 3.0, 5.0])),
    "Binomial": (
        lambda m, x, y: m.Binomial(total_count=5, probs=y / 4),
        numpy.array([0.0, 1.0, 3.0, 5.0]),
    ),
    "BinomialLogits": (
        lambda m, x, y: m.Binomial(5, logits=y - 1),
        numpy.array([0.0, 1.0, 3.0, 5.0]),
    ),
}


@pytest.mark.parametrize("name", sorted(GAMMA_FAMILY))
def test_gamma_family_matches_torch(name):
    torch = pytest.importorskip("torch")
    make, value = GAMMA_FAMILY[name]
    results = {}
    for lib in (D, torch.distributions):
        ours = lib is D
        T = gf.tensor if ours else torch.tensor
        x = T(CONC, dtype=gf.float64 if ours else torch.float64, requires_grad=True)
        y = T(RATE, dtype=gf.float64 if ours else torch.float64, requires_grad=True)
        d = make(lib, x, y)
        out = {a: getattr(d, a) for a in ("mean", "mode", "variance", "stddev")}
        out["log_prob"] = d.log_prob(T(value))
        loss = out["log_prob"].sum()
        if name != "Poisson":  # torch's Poisson has no entropy
            out["entropy"] = d.entropy()
            loss = loss + out["entropy"].sum()
        loss.backward()
        for label, t in (("grad_x", x), ("grad_y", y)):
            if t.grad is not None:
                out[label] = t.grad
        q = make(lib, T(CONC[::-1].copy()), T(RATE[::-1].copy()))
        if name != "StudentT":  # torch has no StudentT pair
            out["kl"] = lib.kl_divergence(d, q)
        out["shapes"] = (tuple(d.sample((3,)).shape), tuple(d.expand((2, 4)).batch_shape))
        results[ours] = out
    assert results[True].keys() == results[False].keys()
    for key, theirs in results[False].items():
        if key == "shapes":
            assert results[True][key] == theirs
        else:
            _close(results[True][key], theirs, 1e-9)


def test_dirichlet_matches_torch():
    torch = pytest.importorskip("torch")
    c = numpy.array([[0.5, 1.5, 2.0], [3.0, 0.7, 0.9]])
    v = numpy.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    g, t = gf.tensor(c, requires_grad=True), torch.tensor(c, requires_grad=True)
    a, b = D.Dirichlet(g), torch.distributions.Dirichlet(t)
    for attr in ("mean", "mode", "variance"):
        _close(getattr(a, attr), getattr(b, attr))
    _close(a.log_prob(gf.tensor(v)), b.log_prob(torch.tensor(v)))
    _close(a.entropy(), b.entropy())
    (a.log_prob(gf.tensor(v)).sum() + a.entropy().sum()).backward()
    (b.log_prob(torch.tensor(v)).sum() + b.entropy().sum()).backward()
    _close(g.grad, t.grad, 1e-9)
    q, tq = (
        D.Dirichlet(gf.tensor(c[::-1].copy())),
        torch.distributions.Dirichlet(torch.tensor(c[::-1].copy())),
    )
    _close(D.kl_divergence(a, q), torch.distributions.kl_divergence(b, tq))
    assert (a.batch_shape, a.event_shape) == ((2,), (3,))
    s = a.rsample((4,))
    assert s.shape == (4, 2, 3) and numpy.allclose(_np(s).sum(-1), 1)
    with pytest.raises(ValueError, match="at least one-dimensional"):
        D.Dirichlet(gf.tensor(1.0))
    with pytest.raises(ValueError, match="support"):
        a.log_prob(gf.tensor([[0.5, 0.6, 0.1], [0.2, 0.2, 0.6]]))


def test_standard_gamma_gradient_is_torchs_implicit_derivative():
    torch = pytest.importorskip("torch")
    from gradflow.distributions.gamma_family import _standard_gamma_grad

    # every branch: x < 0.8 (series), alpha > 8 near and far from x (saddle point), between
    alpha = numpy.array([0.3, 1.0, 2.5, 10.0, 0.05, 50.0, 20.0, 3.0])
    x = numpy.array([0.2, 1.5, 2.0, 9.0, 1e-6, 45.0, 5.0, 0.9])
    theirs = torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(x)).numpy()
    numpy.testing.assert_allclose(_standard_gamma_grad(alpha, x), theirs, rtol=1e-10)
    # and by finite differences of the quantile: x(alpha) with P(alpha, x) fixed
    from gradflow.ops.gamma import igamma

    a, xv = gf.tensor([2.5], dtype=gf.float64), gf.tensor([2.0], dtype=gf.float64)
    h = 1e-6
    dp = (igamma(a + h, xv) - igamma(a - h, xv)).item() / (2 * h)
    pdf = math.exp(1.5 * math.log(2.0) - 2.0 - math.lgamma(2.5))
    assert _standard_gamma_grad(numpy.array([2.5]), numpy.array([2.0]))[0] == pytest.approx(
        -dp / pdf, rel=1e-4
    )


def test_gamma_rsample_gradient_is_unbiased():
    """Torch-free: d/dalpha E[x] = d/dalpha alpha / rate = 1 / rate; and for the Beta mean."""
    gf.manual_seed(0)
    a = gf.tensor([0.4, 2.0, 6.0], dtype=gf.float64, requires_grad=True)
    rate = gf.tensor([1.0, 2.0, 0.5], dtype=gf.float64)
    x = D.Gamma(a, rate).rsample((20000,))
    assert x.shape == (20000, 3) and (_np(x) > 0).all()
    x.mean(0).sum().backward()
    numpy.testing.assert_allclose(_np(a.grad), 1 / _np(rate), rtol=0.05)
    numpy.testing.assert_allclose(_np(x).mean(0), _np(a) / _np(rate), rtol=0.05)
    c1 = gf.tensor([2.0], dtype=gf.float64, requires_grad=True)
    c0 = gf.tensor([3.0], dtype=gf.float64, requires_grad=True)
    D.Beta(c1, c0).rsample((20000,)).mean().backward()
    # mean c1 / (c1 + c0): d/dc1 = c0 / 25, d/dc0 = -c1 / 25
    numpy.testing.assert_allclose([c1.grad.item(), c0.grad.item()], [0.12, -0.08], atol=0.01)
    t = D.StudentT(gf.tensor(5.0), gf.tensor(1.0), gf.tensor(2.0)).rsample((20000,))
    numpy.testing.assert_allclose(_np(t).mean(), 1.0, atol=0.06)
    numpy.testing.assert_allclose(_np(t).var(), 4 * 5 / 3, rtol=0.1)


def test_discrete_gamma_family_samples():
    gf.manual_seed(0)
    p = D.Poisson(gf.tensor([0.5, 4.0]))
    s = _np(p.sample((20000,)))
    assert s.dtype == numpy.float32 and (s == numpy.floor(s)).all()
    numpy.testing.assert_allclose(s.mean(0), [0.5, 4.0], rtol=0.05)
    b = D.Binomial(gf.tensor([3.0, 10.0]), probs=gf.tensor([0.2, 0.7]))
    s = _np(b.sample((20000,)))
    numpy.testing.assert_allclose(s.mean(0), [0.6, 7.0], rtol=0.05)
    assert (s <= [3, 10]).all()
    # entropy enumerates the support: the sum over it of -p log p (NumPy reference)
    h = D.Binomial(4, probs=gf.tensor(0.3, dtype=gf.float64)).entropy().item()
    k = numpy.arange(5)
    pk = numpy.array([math.comb(4, i) for i in k]) * 0.3**k * 0.7 ** (4 - k)
    assert h == pytest.approx(-(pk * numpy.log(pk)).sum(), rel=1e-12)
    with pytest.raises(NotImplementedError, match="Inhomogeneous"):
        b.entropy()
    with pytest.raises(ValueError, match="support"):
        D.Binomial(3, probs=gf.tensor(0.5)).log_prob(gf.tensor(4.0))
    with pytest.raises(ValueError, match="parameter total_count"):
        D.Binomial(gf.tensor(2.5), probs=gf.tensor(0.5))
    with pytest.raises(NotImplementedError, match="total_count"):
        D.kl_divergence(D.Binomial(2, probs=gf.tensor(0.5)), D.Binomial(3, probs=gf.tensor(0.5)))


def test_gamma_family_validation_and_cdf():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="parameter concentration"):
        D.Gamma(gf.tensor([0.0]), gf.tensor([1.0]))
    with pytest.raises(ValueError, match="parameter df"):
        D.StudentT(gf.tensor([-1.0]))
    with pytest.raises(ValueError, match="parameter rate"):
        D.Poisson(gf.tensor([-1.0]))
    with pytest.raises(ValueError, match="support"):
        D.Beta(gf.tensor(1.0), gf.tensor(1.0)).log_prob(gf.tensor(1.5))
    a, r, v = numpy.array([0.5, 2.0]), numpy.array([1.0, 3.0]), numpy.array([0.4, 0.9])
    theirs = torch.distributions.Gamma(torch.tensor(a), torch.tensor(r)).cdf(torch.tensor(v))
    _close(D.Gamma(gf.tensor(a), gf.tensor(r)).cdf(gf.tensor(v)), theirs)
    df = D.StudentT(gf.tensor([0.5, 1.5, 3.0]))
    m, var = _np(df.mean), _np(df.variance)
    assert numpy.isnan(m[0]) and m[1] == 0 and numpy.isnan(var[0]) and numpy.isinf(var[1])
    assert D.Chi2(gf.tensor([4.0])).df.tolist() == [4.0]


def test_gamma_family_runs_on_the_device(device):
    a = gf.tensor([0.5, 2.0], device=device, requires_grad=True)
    d = D.Gamma(a, gf.ones(2, device=device))
    x = d.rsample((3,))
    assert x.device == a.device
    x.sum().backward()
    assert a.grad.device == a.device
    assert D.Beta(a, a).rsample().device == a.device
    assert D.Dirichlet(a).log_prob(D.Dirichlet(a).sample()).device == a.device
    assert D.StudentT(a).rsample().device == a.device
    assert D.Poisson(a).sample((2,)).device == a.device
    assert D.Binomial(3, probs=gf.tensor([0.5], device=device)).sample().device == a.device
