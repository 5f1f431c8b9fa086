"""The float32 erf and erfc on cpu (gradflow.ops.special: ERF32_RATIONAL, ERFC32_TAIL; loops
erf, erfc and gauss_grad of gradflow.backend.compiled_loops): within 1 ulp of math.erf and
math.erfc over the whole float32 range (measured: 0.5004), with the compiled loops and without
(compiled.disabled()), on hostile values (tiny, subnormal, -0.0, the tails, +-inf, NaN,
float32's largest), their gradients against a float64 reference and torch, and the shapes
(0-d, empty, strided views, broadcast gradients). float64 keeps its series."""

from __future__ import annotations

import math

import numpy
import pytest
from compiled_routes import F32, ROUTE_CONTEXTS, ROUTE_IDS, ROUTES, TINY

import gradflow as gf
from gradflow.backend import compiled


def _sweep() -> numpy.ndarray:
    rng = numpy.random.default_rng(17)
    parts = [
        numpy.linspace(-11, 11, 120_001, dtype=F32),
        numpy.linspace(-1e-3, 1e-3, 10_001, dtype=F32),
        numpy.geomspace(TINY, 1.0, 20_000).astype(F32),
        -numpy.geomspace(TINY, 1.0, 20_000).astype(F32),
        numpy.geomspace(0.4, 10.2, 20_000).astype(F32),
        (rng.standard_normal(40_000) * 3).astype(F32),
        # the cutoffs: erf rounds to 1 from 3.9192 on, the clamp at 4, erfc's switch at 0.5 and
        # its clamp at 10.1 (erfc rounds to 0 from 10.054 on), float32's largest
        numpy.array([3.919, 3.9192, 3.9193, 4.0, 10.05, 10.054, 10.06, 10.1, 3.4e38], F32),
        numpy.nextafter(F32(0.5), F32([0, 1])),
        numpy.nextafter(F32(4.0), F32([0, 8])),
        numpy.array([TINY, 2 * TINY, 1e-40, 1.1754944e-38, 1e-30], F32),
    ]
    return numpy.concatenate(parts)


def _ulps(got: numpy.ndarray, expected: numpy.ndarray) -> numpy.ndarray:
    """|got - expected| in units of the float32 spacing at the (rounded) expected value."""
    spacing = numpy.spacing(numpy.abs(expected.astype(F32))).astype(numpy.float64)
    return numpy.abs(got.astype(numpy.float64) - expected) / spacing


SWEEP = _sweep()
ERF_64 = numpy.array([math.erf(float(v)) for v in SWEEP])
ERFC_64 = numpy.array([math.erfc(float(v)) for v in SWEEP])


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
def test_erf_float32_within_an_ulp_of_math_erf(route):
    with route():
        got = gf.erf(gf.tensor(SWEEP)).numpy()
    assert got.dtype == F32
    assert _ulps(got, ERF_64).max() <= 0.52  # torch's float32 erf: 0.72


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
def test_erfc_float32_within_an_ulp_of_math_erfc_to_the_tail(route):
    with route():
        got = gf.erfc(gf.tensor(SWEEP)).numpy()
    assert got.dtype == F32
    # relative accuracy in the right tail: the spacing there is the subnormals' at the end
    assert _ulps(got, ERFC_64).max() <= 0.52
    assert got[SWEEP >= 10.06].max() == 0 and (got[(SWEEP > 9) & (SWEEP < 10.05)] > 0).all()


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
def test_erf_and_erfc_hostile_values(route):
    x = numpy.array(
        [0.0, -0.0, math.inf, -math.inf, math.nan, TINY, -TINY, 1e-30, -3.4e38, 3.4e38], F32
    )
    with route():
        e = gf.erf(gf.tensor(x)).numpy()
        c = gf.erfc(gf.tensor(x)).numpy()
    assert e[0] == 0 and not numpy.signbit(e[0])
    assert e[1] == 0 and numpy.signbit(e[1])  # -0.0 keeps its sign, as torch
    assert e[2] == 1 and e[3] == -1 and math.isnan(e[4])
    assert e[5] == TINY and e[6] == -TINY  # 2/sqrt(pi) * 1.4e-45 rounds back to it
    assert e[7] == F32(2 / math.sqrt(math.pi) * 1e-30)
    assert e[8] == -1 and e[9] == 1
    assert c.tolist()[:4] == [1.0, 1.0, 0.0, 2.0] and math.isnan(c[4])
    assert c[5] == 1 and c[8] == 2 and c[9] == 0


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
def test_erf_shapes_views_and_empty(route):
    base = numpy.linspace(-5, 5, 60, dtype=F32).reshape(6, 10)
    view = base[::2, ::3]  # not contiguous
    with route():
        for fn, ref in ((gf.erf, math.erf), (gf.erfc, math.erfc)):
            got = fn(gf.tensor(view)).numpy()
            assert got.shape == view.shape
            expected = numpy.vectorize(ref)(view.astype(numpy.float64))
            assert _ulps(got, expected).max() <= 0.52
            scalar = fn(gf.tensor(F32(0.75)))
            assert scalar.shape == () and scalar.item() == F32(ref(0.75))
            empty = fn(gf.tensor(numpy.zeros((0, 3), F32)))
            assert empty.shape == (0, 3) and empty.dtype == gf.float32


def _grad_ref(x: numpy.ndarray, g: numpy.ndarray, sign: float) -> numpy.ndarray:
    x64 = x.astype(numpy.float64)
    return sign * 2 / math.sqrt(math.pi) * numpy.exp(-x64 * x64) * g


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
@pytest.mark.parametrize("name,sign", [("erf", 1.0), ("erfc", -1.0)])
def test_gradients_against_float64(route, name, sign):
    rng = numpy.random.default_rng(3)
    x = numpy.concatenate(
        [rng.standard_normal(5000) * 3, [0.0, -0.0, 9.3, 9.4, 20.0, -1e30, math.inf, -math.inf]]
    ).astype(F32)
    g = rng.standard_normal(x.size).astype(F32)
    t = gf.tensor(x, requires_grad=True)
    with route():
        getattr(gf, name)(t).backward(gf.tensor(g))
    got = t.grad.numpy()
    assert got.dtype == F32
    with numpy.errstate(all="ignore"):
        expected = _grad_ref(x, g, sign)
        # float32's x^2 carries a relative error up to x^2 2^-24 into exp(-x^2), as in torch
        tol = 4e-7 * (1 + numpy.minimum(x.astype(numpy.float64) ** 2, 1e3))
    expected[~numpy.isfinite(x)] = 0.0
    # the compiled loop's float32 exp is 0 below -87.3 (subnormal results: under 1.2e-38)
    slack = 1.5e-38 * numpy.abs(g)
    assert (numpy.abs(got - expected) <= tol * numpy.abs(expected) + slack).all()
    assert (got[-4:] == 0).all()  # exp(-x^2) underflows: 0 (and 0 at +-inf)
    nan = gf.tensor(numpy.array([math.nan], F32), requires_grad=True)
    with route():
        getattr(gf, name)(nan).sum().backward()
    assert math.isnan(nan.grad.item())


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
def test_gradient_through_broadcast_and_views(route):
    """A gradient that is a broadcast view (an expanded weight), and an input that is a view."""
    x = numpy.linspace(-3, 3, 48, dtype=F32).reshape(4, 12)
    w = numpy.linspace(0.5, 2, 12, dtype=F32)
    t = gf.tensor(x, requires_grad=True)
    with route():
        (gf.erf(t[:, ::2]) * gf.tensor(w[::2])).sum().backward()
    expected = numpy.zeros_like(x, dtype=numpy.float64)
    expected[:, ::2] = _grad_ref(x[:, ::2], numpy.broadcast_to(w[::2], (4, 6)), 1.0)
    numpy.testing.assert_allclose(t.grad.numpy(), expected, rtol=3e-6, atol=1e-30)


def test_compiled_and_numpy_routes_agree():
    if len(ROUTES) < 2:
        pytest.skip("the compiled loops are " + compiled.status())
    x = numpy.random.default_rng(5).standard_normal(100_003).astype(F32) * 4
    outs = {}
    for name, route in ROUTES:
        with route():
            outs[name] = (gf.erf(gf.tensor(x)).numpy(), gf.erfc(gf.tensor(x)).numpy())
    for a, b in zip(outs["numpy"], outs["compiled"], strict=True):
        # both round a float64 value within 5e-10 of the true one: at most 1 ulp apart
        assert (numpy.abs(a.view(numpy.int32) - b.view(numpy.int32)) <= 1).all()


def test_the_compiled_loops_are_taken(monkeypatch):
    loops = compiled.loops(numpy.zeros(1, F32), float32_only=True)
    if loops is None:
        pytest.skip("the compiled loops are " + compiled.status())
    calls = []
    for name in ("erf", "erfc", "gauss_grad"):
        loop = getattr(loops, name)
        monkeypatch.setattr(
            loops, name, lambda *a, _loop=loop, _name=name: calls.append(_name) or _loop(*a)
        )
    t = gf.tensor(numpy.linspace(-2, 2, 9, dtype=F32), requires_grad=True)
    gf.erf(t).sum().backward()
    gf.erfc(t).sum().backward()
    assert calls == ["erf", "gauss_grad", "erfc", "gauss_grad"]
    calls.clear()
    with compiled.disabled():
        gf.erf(t).sum().backward()
    assert calls == []


def test_float64_keeps_its_series():
    a = numpy.linspace(-6, 6, 4001)
    expected = numpy.array([math.erf(v) for v in a])
    numpy.testing.assert_allclose(gf.erf(gf.tensor(a)).numpy(), expected, rtol=5e-16, atol=1e-300)
    tail = numpy.linspace(0, 26, 1001)
    expected = numpy.array([math.erfc(v) for v in tail])
    numpy.testing.assert_allclose(gf.erfc(gf.tensor(tail)).numpy(), expected, rtol=2e-13)


def test_float16_rounds_from_float64():
    a = numpy.linspace(-4, 4, 801).astype(numpy.float16)
    got = gf.erf(gf.tensor(a)).numpy()
    assert got.dtype == numpy.float16
    expected = numpy.array([math.erf(float(v)) for v in a]).astype(numpy.float16)
    assert (got == expected).all()


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_double_backward(name):
    x = gf.tensor(numpy.array([-1.5, -0.2, 0.0, 0.7, 2.0], F32), requires_grad=True)
    (g,) = gf.grad(getattr(gf, name)(x).sum(), x, create_graph=True)
    (gg,) = gf.grad(g.sum(), x)
    x64 = x.detach().numpy().astype(numpy.float64)
    sign = 1.0 if name == "erf" else -1.0
    expected = sign * 2 / math.sqrt(math.pi) * numpy.exp(-x64 * x64) * (-2 * x64)
    numpy.testing.assert_allclose(gg.numpy(), expected, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_against_torch(route, name):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(11)
    x = numpy.concatenate(
        [rng.standard_normal(20_000) * 3, [0.0, -0.0, 4.0, 10.0, 12.0, -12.0, math.inf]]
    ).astype(F32)
    g = rng.standard_normal(x.size).astype(F32)
    t = gf.tensor(x, requires_grad=True)
    with route():
        y = getattr(gf, name)(t)
        y.backward(gf.tensor(g))
    tt = torch.tensor(x, requires_grad=True)
    ty = getattr(torch, name)(tt)
    ty.backward(torch.tensor(g))
    # both within an ulp of the true value: at most 2 apart; signs of zero as torch's
    ours, theirs = y.detach().numpy().view(numpy.int32), ty.detach().numpy().view(numpy.int32)
    assert (numpy.abs(ours - theirs) <= 2).all()
    numpy.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=2e-5, atol=1e-37)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_cuda_keeps_cupy_erf(name):
    if not gf.cuda.is_available():
        pytest.skip("no cuda (or CuPy stand-in)")
    x = numpy.array([-2.0, -0.0, 0.3, 1.0, 5.0], F32)
    t = gf.tensor(x, device="cuda", requires_grad=True)
    y = getattr(gf, name)(t)
    y.sum().backward()
    ref = math.erf if name == "erf" else math.erfc
    expected = numpy.array([ref(float(v)) for v in x])
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), expected, rtol=2e-7, atol=1e-7)
    assert y.dtype == gf.float32 and t.grad.device.type == "cuda"
