"""The gamma family and its neighbours (gradflow/ops/gamma.py, special_functions.py): lgamma,
digamma, polygamma, mvlgamma, i0/i0e/i1/i1e, sinc, entr, erfcx, log_ndtr, xlog1py and their
torch.special aliases.

Torch-free: float64 values against math.lgamma, closed forms and identities (recurrence,
reflection, known values), mpmath where it is installed; gradients by finite differences
(gradflow.testing.gradcheck) and double backward. With torch: values on float32 and float64
over wide ranges (1e-30..1e30, negatives, near poles) and gradients against torch autograd.
Hostile inputs: poles, NaN, +-inf, -0.0, empty, 0-d, non-contiguous, integer and bool dtypes,
and the errors torch raises.
"""

import math

import numpy
import pytest

import gradflow as gf
import gradflow.special as S
from gradflow.ops import gamma as G
from gradflow.testing import gradcheck

EULER = 0.5772156649015329
INF, NAN = math.inf, math.nan


def host(t):
    return t.detach().cpu().numpy()


def _wide_inputs(rng):
    """Positive values over 1e-30..1e30, [0, 3] around the roots, negatives near and far."""
    return numpy.concatenate(
        [
            rng.uniform(0.0, 3.0, 400),
            10 ** rng.uniform(-30, 30, 400),
            -(10 ** rng.uniform(-3, 2, 300)),
            rng.uniform(-20, 20, 300),
            [1e-38, 1e38, 0.5, -0.5, 1.5, -1.5, 1e-300, 3e300],
        ]
    )


# ---- lgamma ------------------------------------------------------------------------------
def test_lgamma_matches_math_lgamma_in_float64(rng):
    x = _wide_inputs(rng)
    x = x[(x > 0) | (x != numpy.round(x))]  # math.lgamma raises at the poles
    ref = numpy.array([math.lgamma(v) for v in x])
    ours = host(gf.lgamma(gf.tensor(x)))
    near_root = (numpy.abs(x - 1) < 0.2) | (numpy.abs(x - 2) < 0.2) | (numpy.abs(ref) < 0.1)
    rel = numpy.abs(ours - ref) / numpy.abs(ref)
    assert rel[~near_root].max() < 1e-13
    assert numpy.abs(ours - ref)[near_root].max() < 2e-14
    assert gf.lgamma(gf.tensor([1.0, 2.0])).tolist() == [0.0, 0.0]  # exact, as torch


def test_float32_results_are_the_float64_values_rounded_once(rng):
    x = numpy.concatenate([rng.uniform(0, 12, 3000), 10 ** rng.uniform(-20, 20, 500)])
    x = numpy.concatenate([x, rng.uniform(-20, 0, 500)]).astype(numpy.float32)
    x = x[(x > 0) | (x != numpy.round(x))]
    for fn in (G.lgamma_array, G.digamma_array, lambda t: G.polygamma_array(1, t)):
        wide = fn(x.astype(numpy.float64))
        with numpy.errstate(over="ignore"):
            assert numpy.array_equal(fn(x), wide.astype(numpy.float32))
    far = numpy.array([-1e10 + 0.5, -12345.25, -170.5, 171.3, 1e5 + 0.1])
    ref = numpy.array([math.lgamma(v) for v in far])
    numpy.testing.assert_allclose(host(gf.lgamma(gf.tensor(far))), ref, rtol=1e-13)


def test_lgamma_poles_and_specials():
    x = gf.tensor([0.0, -0.0, -1.0, -2.0, -1e30, INF, -INF, NAN, 1e308], dtype=gf.float64)
    out = host(gf.lgamma(x))
    assert numpy.all(out[:7] == INF) and numpy.isnan(out[7]) and out[8] == INF
    for dtype in (gf.float32, gf.float16):
        poles = gf.tensor([0.0, -0.0, -1.0, -2.0, -60000.0, INF, -INF], dtype=dtype)
        assert host(gf.lgamma(poles)).tolist() == [INF] * 7
    assert gf.lgamma(gf.tensor(-2.5, dtype=gf.float64)).item() == pytest.approx(
        math.lgamma(-2.5), rel=1e-14
    )
    assert gf.lgamma(gf.tensor(1e-300, dtype=gf.float64)).item() == pytest.approx(
        -math.log(1e-300), rel=1e-15
    )


def test_dtype_rules_follow_torch():
    for fn in (gf.lgamma, gf.digamma, gf.i0, gf.sinc, S.i1e, S.entr, S.erfcx, S.log_ndtr):
        assert fn(gf.tensor([1, 2])).dtype == gf.float32  # integers: the default float dtype
        assert fn(gf.tensor([True, False])).dtype == gf.float32
        assert fn(gf.tensor([1.5], dtype=gf.float64)).dtype == gf.float64
        assert fn(gf.tensor([1.5], dtype=gf.float16)).dtype == gf.float16
        assert fn(gf.tensor([1.5])).dtype == gf.float32
    assert gf.polygamma(1, gf.tensor([1, 2])).dtype == gf.float32
    assert gf.mvlgamma(gf.tensor([2, 3]), 1).dtype == gf.float32
    with pytest.raises(TypeError, match="must be Tensor"):
        gf.lgamma([1.0, 2.0])


# ---- digamma and polygamma ----------------------------------------------------------------
def test_digamma_known_values_and_identities(rng):
    x = gf.tensor([1.0, 0.5, 2.0, 0.25], dtype=gf.float64)
    expected = [-EULER, -EULER - 2 * math.log(2), 1 - EULER, -EULER - math.pi / 2 - 3 * math.log(2)]
    numpy.testing.assert_allclose(host(gf.digamma(x)), expected, rtol=1e-15, atol=1e-16)
    a = numpy.concatenate([rng.uniform(0.01, 30, 200), rng.uniform(-30, 30, 200)])
    a = a[numpy.abs(a - numpy.round(a)) > 1e-3]
    psi = host(gf.digamma(gf.tensor(a)))
    numpy.testing.assert_allclose(host(gf.digamma(gf.tensor(a + 1))) - psi, 1 / a, rtol=1e-11)
    reflected = host(gf.digamma(gf.tensor(1 - a))) - psi  # pi cot(pi x)
    numpy.testing.assert_allclose(
        reflected, math.pi / numpy.tan(math.pi * a), rtol=1e-9, atol=1e-11
    )


def test_digamma_specials_are_torchs():
    x = gf.tensor([0.0, -0.0, -1.0, -3.0, INF, -INF, NAN, 1e308, 1e-30], dtype=gf.float64)
    out = host(gf.digamma(x))
    assert out[0] == -INF and out[1] == INF
    assert numpy.isnan(out[2:4]).all() and out[4] == INF and numpy.isnan(out[5:7]).all()
    assert out[7] == pytest.approx(709.1962086421661, rel=1e-15)
    assert out[8] == pytest.approx(-1e30, rel=1e-15)
    assert S.psi is gf.digamma and S.digamma is gf.digamma


def test_polygamma_known_values_and_identities(rng):
    x = gf.tensor([1.0, 0.5], dtype=gf.float64)
    numpy.testing.assert_allclose(host(gf.polygamma(1, x)), [math.pi**2 / 6, math.pi**2 / 2])
    zeta3 = 1.2020569031595942
    assert gf.polygamma(2, x[:1]).item() == pytest.approx(-2 * zeta3, rel=1e-14)
    assert gf.polygamma(3, x[:1]).item() == pytest.approx(math.pi**4 / 15, rel=1e-14)
    a = rng.uniform(-10, 10, 300)
    a = a[numpy.abs(a - numpy.round(a)) > 1e-2]
    assert numpy.array_equal(host(gf.polygamma(0, gf.tensor(a))), host(gf.digamma(gf.tensor(a))))
    for n in (1, 2, 3, 6):
        up, here = host(gf.polygamma(n, gf.tensor(a + 1))), host(gf.polygamma(n, gf.tensor(a)))
        expected = (-1) ** n * math.factorial(n) / a ** (n + 1)  # the recurrence
        scale = numpy.abs(up) + numpy.abs(here)  # the difference cancels: relative to these
        assert numpy.all(numpy.abs(up - here - expected) <= 1e-13 * scale)
    # trigamma's reflection: psi1(1 - x) + psi1(x) = pi^2 / sin^2(pi x)
    both = host(gf.polygamma(1, gf.tensor(1 - a))) + host(gf.polygamma(1, gf.tensor(a)))
    numpy.testing.assert_allclose(both, (math.pi / numpy.sin(math.pi * a)) ** 2, rtol=1e-12)


def test_polygamma_poles_and_errors():
    x = gf.tensor([0.0, -1.0, -2.0, INF, NAN], dtype=gf.float64)
    assert host(gf.polygamma(1, x))[:4].tolist() == [INF, INF, INF, 0.0]
    assert host(gf.polygamma(2, x))[:3].tolist() == [-INF] * 3
    assert host(gf.polygamma(3, x))[:3].tolist() == [INF] * 3
    assert numpy.isnan(host(gf.polygamma(2, x))[4])
    with pytest.raises(RuntimeError, match="does not support negative n"):
        gf.polygamma(-1, x)
    with pytest.raises(TypeError, match="'n' must be int"):
        gf.polygamma(1.5, x)
    with pytest.raises(TypeError, match="'n' must be int"):
        gf.polygamma(True, x)
    assert S.polygamma is gf.polygamma


def test_mpmath_reference_over_wide_ranges(rng):
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    x = _wide_inputs(rng)[::6]
    x = x[(numpy.abs(x - numpy.round(x)) > 1e-6) & (numpy.abs(x) < 1e15)]
    cases = [
        (gf.digamma, mp.digamma, 3e-13),
        (lambda t: gf.polygamma(1, t), lambda v: mp.polygamma(1, v), 3e-13),
        (lambda t: gf.polygamma(2, t), lambda v: mp.polygamma(2, v), 1e-12),
        (lambda t: gf.polygamma(5, t), lambda v: mp.polygamma(5, v), 1e-12),
    ]
    for ours, theirs, rtol in cases:
        ref = numpy.array([float(theirs(mp.mpf(v))) for v in x])
        got = host(ours(gf.tensor(x)))
        err = numpy.abs(got - ref) / numpy.maximum(numpy.abs(ref), 1e-300)
        err = err[numpy.abs(ref) > 1e-3]  # digamma's roots: absolute below
        assert err.max() < rtol
    besides = numpy.concatenate([x[numpy.abs(x) < 700], [0.0, 8.0, -8.0, 1e-20]])
    for ours, theirs in [
        (gf.i0, lambda v: mp.besseli(0, v)),
        (S.i1, lambda v: mp.besseli(1, v)),
        (S.i0e, lambda v: mp.besseli(0, v) * mp.exp(-abs(v))),
        (S.i1e, lambda v: mp.besseli(1, v) * mp.exp(-abs(v))),
    ]:
        ref = numpy.array([float(theirs(mp.mpf(v))) for v in besides])
        numpy.testing.assert_allclose(host(ours(gf.tensor(besides))), ref, rtol=3e-15, atol=1e-300)
    tail = numpy.concatenate([besides[numpy.abs(besides) < 1e5], -(10 ** rng.uniform(0, 5, 50))])
    ref = numpy.array(
        [float(mp.log(mp.ncdf(v)) if v < 0 else mp.log1p(-mp.ncdf(-v))) for v in tail]
    )
    # rtol: exp(-x^2 / 2) amplifies x's rounding by x^2 in the far right tail (x = 37: 1e-13)
    numpy.testing.assert_allclose(host(S.log_ndtr(gf.tensor(tail))), ref, rtol=1e-12)
    e = besides[besides > -26]
    ref = numpy.array([float(mp.exp(mp.mpf(v) ** 2) * mp.erfc(v)) for v in e])
    numpy.testing.assert_allclose(host(S.erfcx(gf.tensor(e))), ref, rtol=1e-13)


# ---- mvlgamma ----------------------------------------------------------------------------
def test_mvlgamma_values_and_errors():
    x = numpy.array([2.5, 3.0, 10.0])
    for p in (1, 2, 3, 5):
        expected = [
            p * (p - 1) / 4 * math.log(math.pi) + sum(math.lgamma(v - i / 2) for i in range(p))
            for v in x
        ]
        numpy.testing.assert_allclose(host(gf.mvlgamma(gf.tensor(x), p)), expected, rtol=1e-14)
    assert S.multigammaln is gf.mvlgamma
    # outside x > (p - 1) / 2: the lgamma terms' values, as torch 2.x (which no longer raises)
    out = host(gf.mvlgamma(gf.tensor([0.5, 0.0, -1.5, NAN]), 2))
    assert out[:3].tolist() == [INF] * 3 and numpy.isnan(out[3])
    with pytest.raises(RuntimeError, match="p has to be greater than or equal to 1"):
        gf.mvlgamma(gf.tensor([3.0]), 0)
    with pytest.raises(TypeError, match="'p' must be int"):
        gf.mvlgamma(gf.tensor([3.0]), 2.0)
    assert gf.mvlgamma(gf.zeros(0), 4).shape == (0,)
    x = gf.tensor([[3.0, 4.0], [5.0, 6.0]], dtype=gf.float64, requires_grad=True)
    assert gradcheck(lambda t: gf.mvlgamma(t, 3), [x])


# ---- the others --------------------------------------------------------------------------
def test_sinc_entr_erfcx_log_ndtr_xlog1py_values():
    x = gf.tensor([0.0, 0.5, -1.5, 1e-30, 2.0, NAN], dtype=gf.float64)
    want = [1.0, 2 / math.pi, -2 / (3 * math.pi), 1.0, 0.0]
    numpy.testing.assert_allclose(host(gf.sinc(x))[:5], want, atol=1e-16)
    assert numpy.isnan(host(gf.sinc(x))[5]) and S.sinc is gf.sinc
    e = host(S.entr(gf.tensor([0.0, 0.5, -1.0, INF, NAN], dtype=gf.float64)))
    assert e[0] == 0 and e[1] == pytest.approx(0.5 * math.log(2)) and e[2] == -INF
    assert e[3] == -INF and numpy.isnan(e[4])
    big = host(S.erfcx(gf.tensor([1e10, 1e300, INF, -INF, -30.0], dtype=gf.float64)))
    assert big[0] == pytest.approx(1 / (1e10 * math.sqrt(math.pi)), rel=1e-15)
    assert big[1] == pytest.approx(1 / (1e300 * math.sqrt(math.pi)), rel=1e-15)
    assert big[2] == 0.0 and big[3] == INF and big[4] == INF
    # far left tail: log Phi(x) = -x^2/2 - log(-x) - log(2 pi)/2 - 1/x^2 + ...
    tail = host(S.log_ndtr(gf.tensor([-40.0, -1e5, -1e30], dtype=gf.float64)))
    for v, got in zip([-40.0, -1e5, -1e30], tail, strict=True):
        approx = -v * v / 2 - math.log(-v) - 0.5 * math.log(2 * math.pi) - 1 / v**2 + 2.5 / v**4
        assert got == pytest.approx(approx, rel=1e-11)
    edges = host(S.log_ndtr(gf.tensor([INF, -INF, 0.0], dtype=gf.float64)))
    assert edges.tolist() == [0.0, -INF, -math.log(2)]
    y = host(S.xlog1py(gf.tensor([0.0, 0.0, 2.0, NAN]), gf.tensor([NAN, -2.0, 1e-10, 1.0])))
    assert numpy.isnan(y[0]) and y[1] == 0.0 and y[2] == pytest.approx(2e-10) and numpy.isnan(y[3])
    assert S.xlog1py(2.0, gf.tensor([1.0])).item() == pytest.approx(2 * math.log(2))
    assert S.xlog1py(gf.tensor([1, 2]), 1).dtype == gf.float32
    with pytest.raises(TypeError, match="at least one"):
        S.xlog1py(1.0, 2.0)
    assert S.gammaln is gf.lgamma


@pytest.mark.parametrize(
    "name",
    [
        "lgamma",
        "digamma",
        "poly1",
        "poly3",
        "i0",
        "i0e",
        "i1",
        "i1e",
        "sinc",
        "entr",
        "erfcx",
        "log_ndtr",
    ],
)
def test_gradcheck(name, device, rng):
    fns = {
        "lgamma": gf.lgamma,
        "digamma": gf.digamma,
        "poly1": lambda t: gf.polygamma(1, t),
        "poly3": lambda t: gf.polygamma(3, t),
        "i0": gf.i0,
        "i0e": S.i0e,
        "i1": S.i1,
        "i1e": S.i1e,
        "sinc": gf.sinc,
        "entr": S.entr,
        "erfcx": S.erfcx,
        "log_ndtr": S.log_ndtr,
    }
    a = rng.uniform(-9.5, 9.5, (3, 4))
    a = numpy.where(numpy.abs(a - numpy.round(a)) < 0.1, a + 0.3, a)  # off the poles
    if name == "entr":
        a = numpy.abs(a) + 0.1
    x = gf.tensor(a, device=device, requires_grad=True)
    assert gradcheck(fns[name], [x])


def test_gradients_at_zero_and_xlog1py_gradcheck():
    x = gf.tensor([0.0, 0.0, 0.0], dtype=gf.float64, requires_grad=True)
    (gf.sinc(x) + S.i1(x) * 2 + S.i1e(x) * 4).sum().backward()
    assert x.grad.tolist() == [0.0 + 1.0 + 2.0] * 3  # sinc' = 0, i1' = i1e' = 1/2
    zero = gf.tensor(0.0, requires_grad=True)  # 0-d
    y = gf.sinc(zero)
    y.backward()
    assert y.item() == 1.0 and zero.grad.item() == 0.0
    small = numpy.array([1e-4, -3e-3, 0.05, 0.0999, 0.1001], dtype=numpy.float32)
    t = gf.tensor(small, requires_grad=True)
    gf.sinc(t).sum().backward()  # float32: the series below 0.1, no cancellation
    s64 = small.astype(numpy.float64) * math.pi
    exact = (s64 * numpy.cos(s64) - numpy.sin(s64)) / (s64 * small)
    numpy.testing.assert_allclose(host(t.grad), exact, rtol=2e-6)
    a = gf.tensor([[0.5, 2.0], [3.0, 0.1]], dtype=gf.float64, requires_grad=True)
    b = gf.tensor([[0.3, -0.5], [2.0, 5.0]], dtype=gf.float64, requires_grad=True)
    assert gradcheck(S.xlog1py, [a, b])
    assert gradcheck(lambda t: S.xlog1py(t, 0.5), [a])
    assert gradcheck(lambda t: S.xlog1py(2.0, t), [b])


def test_double_backward():
    x = gf.tensor([0.3, 1.7, -2.5, 6.0], dtype=gf.float64, requires_grad=True)
    for fn, second in [
        (gf.lgamma, lambda t: gf.polygamma(1, t)),
        (gf.digamma, lambda t: gf.polygamma(2, t)),
        (lambda t: gf.polygamma(2, t), lambda t: gf.polygamma(4, t)),
        (gf.i0, lambda t: gf.i0(t) - S.i1(t) / t),
    ]:
        (g,) = gf.autograd.grad(fn(x).sum(), [x], create_graph=True)
        (gg,) = gf.autograd.grad(g.sum(), [x])
        numpy.testing.assert_allclose(host(gg), host(second(x)), rtol=1e-12)
    for fn in (S.i0e, S.i1, S.i1e, gf.sinc, S.erfcx, S.log_ndtr):
        (g,) = gf.autograd.grad(fn(x).sum(), [x], create_graph=True)
        (gg,) = gf.autograd.grad(g.sum(), [x])
        h = 1e-6
        fd = (host(gf.autograd.grad(fn(x + h).sum(), [x])[0])
              - host(gf.autograd.grad(fn(x - h).sum(), [x])[0])) / (2 * h)  # fmt: skip
        numpy.testing.assert_allclose(host(gg), fd, rtol=1e-5, atol=1e-7)


def test_hostile_shapes_and_inplace(device):
    for fn in (gf.lgamma, gf.digamma, gf.i0, gf.sinc, S.i1, S.log_ndtr):
        empty = fn(gf.zeros(0, 3, device=device))
        assert empty.shape == (0, 3)
        scalar = fn(gf.tensor(2.5, device=device))
        assert scalar.shape == ()
        base = gf.tensor(numpy.arange(1.0, 25.0).reshape(4, 6) / 3, device=device)
        view = base.t()[::2]  # non-contiguous
        assert numpy.array_equal(host(fn(view)), host(fn(view.contiguous())))
    x = gf.tensor([0.5, 2.5], dtype=gf.float64, device=device)
    for method, fn in [
        ("lgamma_", gf.lgamma),
        ("digamma_", gf.digamma),
        ("i0_", gf.i0),
        ("sinc_", gf.sinc),
    ]:
        y = x.clone()
        assert getattr(y, method)() is y and numpy.array_equal(host(y), host(fn(x)))
    y = x.clone()
    y.polygamma_(2)
    assert numpy.array_equal(host(y), host(x.polygamma(2)))
    y = x.clone() + 2
    y.mvlgamma_(2)
    assert numpy.array_equal(host(y), host((x + 2).mvlgamma(2)))
    with pytest.raises(RuntimeError, match="can't be cast"):
        gf.tensor([1, 2], device=device).lgamma_()


def test_large_input_blocks_match_small(rng):
    """The cpu route runs block by block: a large array gives each element's bits."""
    a = numpy.concatenate([rng.uniform(-5, 30, 40000), [0.0, -1.0, NAN, INF]]).astype(numpy.float32)
    for fn in (G.lgamma_array, G.digamma_array, lambda t: G.polygamma_array(1, t)):
        whole = fn(a)
        parts = numpy.concatenate([fn(a[i : i + 1000]) for i in range(0, a.size, 1000)])
        numpy.testing.assert_array_equal(whole, parts)


# ---- against torch -------------------------------------------------------------------------
TORCH_CASES = {
    "lgamma": (gf.lgamma, "lgamma"),
    "digamma": (gf.digamma, "digamma"),
    "polygamma1": (lambda t: gf.polygamma(1, t), "polygamma1"),
    "polygamma2": (lambda t: gf.polygamma(2, t), "polygamma2"),
    "polygamma4": (lambda t: gf.polygamma(4, t), "polygamma4"),
    "i0": (gf.i0, "i0"),
    "i0e": (S.i0e, "special.i0e"),
    "i1": (S.i1, "special.i1"),
    "i1e": (S.i1e, "special.i1e"),
    "sinc": (gf.sinc, "sinc"),
    "entr": (S.entr, "special.entr"),
    "erfcx": (S.erfcx, "special.erfcx"),
    "log_ndtr": (S.log_ndtr, "special.log_ndtr"),
}


def _torch_fn(torch, spec):
    if spec.startswith("polygamma"):
        n = int(spec[-1])
        return lambda t: torch.polygamma(n, t)
    obj = torch
    for part in spec.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_values_and_gradients_match_torch(name, rng):
    torch = pytest.importorskip("torch")
    ours, spec = TORCH_CASES[name]
    theirs = _torch_fn(torch, spec)
    x = _wide_inputs(rng)
    x = numpy.concatenate([x, [0.0, -0.0, -1.0, -2.0, NAN, -INF, INF]])
    if name.startswith("polygamma"):
        x = x[numpy.isfinite(x) & ((x > 0) | (x != numpy.round(x)))]  # torch's artefacts
    if name in ("sinc", "i0", "i1", "erfcx", "log_ndtr"):
        x = x[numpy.abs(x) < 1e15]  # torch's pi * x and exp overflow differently
    with numpy.errstate(all="ignore"):
        # float64 against torch's float64; float32 against torch's float64 rounded (torch's
        # float32 kernels lose digits: sin(pi x) of large x, exp(x^2) in float32)
        ref = theirs(torch.from_numpy(x)).numpy()
        got = host(ours(gf.tensor(x)))
        rtol = {"polygamma1": 1e-7, "polygamma2": 5e-12, "polygamma4": 5e-12}.get(name, 1e-12)
        # (torch's trigamma keeps 4 series terms at x >= 6: 2e-8)
        near_root = (numpy.abs(ref) < 0.1) & (name in ("lgamma", "digamma"))
        numpy.testing.assert_allclose(got[~near_root], ref[~near_root], rtol=rtol, atol=1e-300)
        numpy.testing.assert_allclose(got[near_root], ref[near_root], atol=3e-14)
        x32 = x.astype(numpy.float32)
        if name.startswith("polygamma"):
            x32 = x32[numpy.isfinite(x32) & (x32 != 0)]
        ref32 = theirs(torch.from_numpy(x32.astype(numpy.float64))).numpy()
        if name == "sinc":  # both compute in float32: sin(pi x) near integers is torch's
            ref32 = theirs(torch.from_numpy(x32)).numpy()
        got32 = host(ours(gf.tensor(x32)))
        assert got32.dtype == numpy.float32
        finite = numpy.abs(ref32) < 3e38
        numpy.testing.assert_allclose(got32[finite], ref32[finite], rtol=3e-7, atol=1e-37)
        assert numpy.array_equal(numpy.isnan(got32), numpy.isnan(ref32))
    # gradients (float64, off the poles)
    a = rng.uniform(-6, 12, 64)
    a = a[numpy.abs(a - numpy.round(a)) > 0.05]
    if name == "entr":
        a = numpy.abs(a)
    t = torch.from_numpy(a).requires_grad_()
    theirs(t).sum().backward()
    g = gf.tensor(a, requires_grad=True)
    ours(g).sum().backward()
    rtol = 1e-7 if name in ("digamma", "polygamma1") else 1e-11
    numpy.testing.assert_allclose(host(g.grad), t.grad.numpy(), rtol=rtol, atol=1e-300)


def test_xlog1py_and_mvlgamma_match_torch(rng):
    torch = pytest.importorskip("torch")
    a = numpy.array([0.0, 0.0, 0.0, 1.5, -2.0, NAN, 3.0])
    b = numpy.array([NAN, -1.0, -3.0, 0.5, 1e-12, 1.0, -1.0])
    ta, tb = torch.from_numpy(a).requires_grad_(), torch.from_numpy(b).requires_grad_()
    ga, gb = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    with numpy.errstate(all="ignore"):
        numpy.testing.assert_array_equal(
            host(S.xlog1py(ga, gb)), torch.special.xlog1py(ta, tb).detach().numpy()
        )
        S.xlog1py(ga, gb).sum().backward()
    torch.special.xlog1py(ta, tb).sum().backward()
    numpy.testing.assert_array_equal(host(ga.grad), ta.grad.numpy())
    numpy.testing.assert_array_equal(host(gb.grad), tb.grad.numpy())
    x = rng.uniform(2.5, 20, (3, 5))
    for p in (1, 2, 4):
        tx = torch.from_numpy(x).requires_grad_()
        gx = gf.tensor(x, requires_grad=True)
        ours, theirs = gf.mvlgamma(gx, p), torch.mvlgamma(tx, p)
        numpy.testing.assert_allclose(host(ours), theirs.detach().numpy(), rtol=1e-13)
        ours.sum().backward()
        theirs.sum().backward()
        numpy.testing.assert_allclose(host(gx.grad), tx.grad.numpy(), rtol=1e-12)
    edge = numpy.array([0.5, 0.75, 0.0, -1.5, NAN])
    numpy.testing.assert_allclose(
        host(gf.mvlgamma(gf.tensor(edge), 2)),
        torch.mvlgamma(torch.from_numpy(edge), 2).numpy(),
        rtol=1e-15,
    )
    with pytest.raises(RuntimeError, match="p has to be greater than or equal to 1"):
        torch.mvlgamma(torch.tensor([3.0]), 0)  # as gradflow, above


# ---- igamma, igammac ---------------------------------------------------------------------
def test_igamma_values_edges_and_errors(device, rng):
    a = numpy.array([0.5, 1.0, 2.0, 3.0, 10.0, 100.0])
    x = numpy.array([0.3, 1.0, 2.0, 5.0, 9.0, 110.0])
    p = host(gf.igamma(gf.tensor(a, device=device), gf.tensor(x, device=device)))
    q = host(gf.igammac(gf.tensor(a, device=device), gf.tensor(x, device=device)))
    assert p[1] == pytest.approx(1 - math.exp(-1.0), rel=1e-15)  # P(1, x) = 1 - exp(-x)
    assert p[0] == pytest.approx(math.erf(math.sqrt(0.3)), rel=1e-14)  # P(1/2, x) = erf(sqrt x)
    assert p[3] == pytest.approx(1 - math.exp(-5) * (1 + 5 + 12.5), rel=1e-14)
    numpy.testing.assert_allclose(p + q, 1.0, rtol=1e-15)
    edges_a = [0.0, 0.0, 1.0, -1.0, 1.0, 1.0, INF, INF, NAN, 2.0]
    edges_x = [0.0, 1.0, 0.0, 1.0, -1.0, INF, 1.0, INF, 1.0, NAN]
    ta = gf.tensor(edges_a, dtype=gf.float64, device=device)
    tx = gf.tensor(edges_x, dtype=gf.float64, device=device)
    numpy.testing.assert_array_equal(
        host(gf.igamma(ta, tx)), [NAN, 1.0, 0.0, NAN, NAN, 1.0, 0.0, NAN, NAN, NAN]
    )
    numpy.testing.assert_array_equal(
        host(S.gammaincc(ta, tx)), [NAN, 0.0, 1.0, NAN, NAN, 0.0, 1.0, NAN, NAN, NAN]
    )
    # broadcasting, dtype promotion, the in-place and method forms
    other = gf.tensor([1.0, 2.0, 3.0], device=device).double()
    b = gf.igamma(gf.tensor([[1.0], [2.0]], device=device), other)
    assert b.shape == (2, 3) and b.dtype == gf.float64
    y = gf.tensor([2.0, 3.0], device=device)
    assert numpy.array_equal(host(y.igamma(y)), host(gf.igamma(y, y)))
    y.igammac_(gf.tensor([1.0, 1.0], device=device))
    assert host(y).tolist() == pytest.approx([2 * math.exp(-1), 2.5 * math.exp(-1)], rel=1e-6)
    with pytest.raises(TypeError, match="'other' must be Tensor"):
        gf.igamma(gf.tensor([1.0]), 2.0)
    with pytest.raises(NotImplementedError, match="convert them with .float()"):
        gf.igamma(gf.tensor([1, 2]), gf.tensor([1, 2]))
    assert S.gammainc is gf.igamma and S.gammaincc is gf.igammac


def test_igamma_gradient():
    a = gf.tensor([[0.5, 1.0, 2.5], [4.0, 10.0, 30.0]], dtype=gf.float64)
    x = gf.tensor([[0.2, 1.5, 2.0], [6.0, 9.0, 25.0]], dtype=gf.float64, requires_grad=True)
    assert gradcheck(lambda t: gf.igamma(a, t), [x])
    assert gradcheck(lambda t: gf.igammac(a, t), [x])
    x0 = gf.tensor([0.0, 0.0, 0.0], dtype=gf.float64, requires_grad=True)
    gf.igamma(gf.tensor([0.5, 1.0, 2.0], dtype=gf.float64), x0).sum().backward()
    assert x0.grad.tolist() == [INF, 1.0, 0.0]  # exp(-x) x^(a-1) / Gamma(a) at x = 0
    a.requires_grad_()
    with pytest.raises(NotImplementedError, match="'igamma: input' is not implemented"):
        gf.igamma(a, x).sum().backward()


def test_igamma_accuracy_against_mpmath_and_torch(rng):
    mp = pytest.importorskip("mpmath")
    a = 10 ** rng.uniform(-3, 3, 120)
    x = a * 10 ** rng.uniform(-1.5, 1, 120)
    p = host(gf.igamma(gf.tensor(a), gf.tensor(x)))
    q = host(gf.igammac(gf.tensor(a), gf.tensor(x)))
    ref_p = numpy.array([float(mp.gammainc(u, 0, v, regularized=True)) for u, v in zip(a, x)])
    ref_q = numpy.array([float(mp.gammainc(u, v, mp.inf, regularized=True)) for u, v in zip(a, x)])
    numpy.testing.assert_allclose(p, ref_p, rtol=1e-11, atol=1e-300)  # 1e-16 a log a
    numpy.testing.assert_allclose(q, ref_q, rtol=1e-11, atol=1e-300)
    torch = pytest.importorskip("torch")
    ta, tx = torch.from_numpy(a), torch.from_numpy(x).requires_grad_()
    numpy.testing.assert_allclose(p, torch.igamma(ta, tx).detach().numpy(), rtol=1e-8, atol=1e-300)
    torch.igammac(ta, tx).sum().backward()
    gx = gf.tensor(x, requires_grad=True)
    gf.igammac(gf.tensor(a), gx).sum().backward()
    numpy.testing.assert_allclose(host(gx.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-300)
