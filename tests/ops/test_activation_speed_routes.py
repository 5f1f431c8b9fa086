"""The fast routes of gradflow/ops/activations.py (issue 17): the compiled loops
(compiled_loops.py's activations section) and the NumPy routes (compiled.disabled()), each
against float64 NumPy references and against PyTorch, on hostile inputs (NaN, +-inf, +-1e30,
the kinks at -3, 0 and 3, exp's cutoffs), empty and 0-d inputs, non-contiguous inputs and
broadcast gradients; that the loops are taken where they apply; double backward."""

import contextlib
import math

import numpy
import pytest

import gradflow as gf
from gradflow.backend import compiled
from gradflow.ops import activations as A

ROUTES = ("compiled", "numpy")
HOSTILE = [math.nan, math.inf, -math.inf, 1e30, -1e30, -100.0, -90.0, -88.0, -87.5, -20.0,
           -3.0, -2.9999998, -1.5, -1e-30, -0.0, 0.0, 1e-30, 0.5, 2.9999998, 3.0, 3.0000002,
           6.0, 8.0, 19.9, 20.0, 20.5, 87.9, 88.5, 100.0]  # fmt: skip


def _route(route):
    if route == "numpy":
        return compiled.disabled()
    if compiled.loops(numpy.zeros(1, numpy.float32)) is None:
        pytest.skip("numba is not installed (or GRADFLOW_NUMBA=0)")
    return contextlib.nullcontext()


def _sig(x):
    return numpy.where(x >= 0, 1 / (1 + numpy.exp(-numpy.abs(x))),
                       numpy.exp(-numpy.abs(x)) / (1 + numpy.exp(-numpy.abs(x))))  # fmt: skip


def _softplus(x):
    return numpy.maximum(x, 0) + numpy.log1p(numpy.exp(-numpy.abs(x)))


# float64 references, PyTorch's definitions; at NaN, what its vectorized loops give (the bulk
# of a tensor: its scalar tail loop differs at NaN for hardtanh, hardswish, selu and celu)
def _ref_logsigmoid(x, g):
    return -_softplus(-x), g * _sig(-x)


def _ref_mish(x, g):
    th = numpy.tanh(_softplus(x))
    return x * th, g * (th + x * _sig(x) * (1 - th * th))


def _ref_hardswish(x, g):
    y = x * numpy.clip(x + 3, 0, 6) / 6
    d = numpy.where(x >= 3, g, numpy.where(x <= -3, 0.0, g * (x / 3 + 0.5)))
    return y, d


def _ref_hardsigmoid(x, g):
    return numpy.clip(x + 3, 0, 6) / 6, numpy.where((x > -3) & (x < 3), g / 6, 0.0)


def _ref_hardtanh(lo, hi):
    def ref(x, g):
        return numpy.clip(x, lo, hi), numpy.where((x > lo) & (x < hi), g, 0.0)

    return ref


def _ref_selu(scale, alpha, in_scale):
    def ref(x, g):
        with numpy.errstate(over="ignore", invalid="ignore"):
            y = numpy.where(x > 0, scale * x, scale * alpha * numpy.expm1(x * in_scale))
            d = numpy.where(
                x > 0, g * scale, g * scale * alpha * in_scale * numpy.exp(x * in_scale)
            )
        return y, d

    return ref


UNARY = {
    "logsigmoid": (A.logsigmoid, _ref_logsigmoid, "logsigmoid", {}),
    "mish": (A.mish, _ref_mish, "mish", {}),
    "hardswish": (A.hardswish, _ref_hardswish, "hardswish", {}),
    "hardsigmoid": (A.hardsigmoid, _ref_hardsigmoid, "hardsigmoid", {}),
    "hardtanh": (lambda x: A.hardtanh(x, -0.5, 2.0), _ref_hardtanh(-0.5, 2.0), "hardtanh",
                 {"min_val": -0.5, "max_val": 2.0}),
    "relu6": (A.relu6, _ref_hardtanh(0.0, 6.0), "relu6", {}),
    "selu": (A.selu, _ref_selu(A._SELU_SCALE, A._SELU_ALPHA, 1.0), "selu", {}),
    "celu": (lambda x: A.celu(x, 0.5), _ref_selu(1.0, 0.5, 2.0), "celu", {"alpha": 0.5}),
}  # fmt: skip


def _hostile(dtype=numpy.float32, seed=0):
    rng = numpy.random.default_rng(seed)
    body = rng.standard_normal(300) * 4
    return numpy.concatenate([numpy.array(HOSTILE), body]).astype(dtype)


def _run(fn, x_np, g_np):
    x = gf.tensor(x_np, requires_grad=True)
    y = fn(x)
    (dx,) = gf.autograd.grad(y, [x], gf.tensor(g_np))
    return y.detach().numpy(), dx.numpy()


def _close(got, want, dtype, what):
    """Equal NaN positions; elsewhere within a few float32 ulps of the reference (relative),
    or 1e-30 absolute (exp's far tails give 0 where float64 keeps denormal values); a
    gradient also within a few ulps of its largest value (a product of rounded factors; selu's
    and celu's, as PyTorch's, come from the output: y + alpha cancels near -alpha)."""
    want = want.astype(numpy.float64)
    got = got.astype(numpy.float64)
    assert (numpy.isnan(got) == numpy.isnan(want)).all(), what
    ok = ~numpy.isnan(want)
    inf = numpy.isinf(want) & ok
    assert (got[inf] == want[inf]).all(), what
    fin = ok & ~inf
    tol = 4e-6 if dtype == numpy.float32 else 1e-12
    err = numpy.abs(got[fin] - want[fin])
    floor = 1e-30
    if "grad" in what and fin.any():
        floor = tol * numpy.abs(want[fin]).max()
    assert (err <= tol * numpy.abs(want[fin]) + floor).all(), (what, err.max())


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_hostile_against_float64(name, dtype, route):
    fn, ref, _, _ = UNARY[name]
    x = _hostile(dtype)
    g = numpy.random.default_rng(1).standard_normal(x.size).astype(dtype)
    with _route(route):
        y, dx = _run(fn, x, g)
    assert y.dtype == dtype and dx.dtype == dtype
    with numpy.errstate(all="ignore"):
        want_y, want_dx = ref(x.astype(numpy.float64), g.astype(numpy.float64))
    _close(y, want_y, dtype, f"{name} value")
    _close(dx, want_dx, dtype, f"{name} gradient")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_against_torch(name, route):
    torch = pytest.importorskip("torch")
    fn, _, tname, kwargs = UNARY[name]
    x = _hostile(numpy.float32, seed=2)
    g = numpy.random.default_rng(3).standard_normal(x.size).astype(numpy.float32)
    with _route(route):
        y, dx = _run(fn, x, g)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn.functional, tname)(xt, **kwargs)
    (dxt,) = torch.autograd.grad(yt, xt, torch.tensor(g))
    _close(y, yt.detach().numpy(), numpy.float32, f"{name} value")
    _close(dx, dxt.numpy(), numpy.float32, f"{name} gradient")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_routes_agree_on_views_empty_and_0d(name, route):
    fn, ref, _, _ = UNARY[name]
    base = _hostile(numpy.float32).reshape(-1)[:320].reshape(16, 20)
    cases = [
        (base[:, ::2], numpy.ones((16, 10), numpy.float32)),  # a strided view
        (base.T, numpy.broadcast_to(numpy.float32(0.5), (20, 16))),  # a broadcast gradient
        (numpy.zeros((0, 3), numpy.float32), numpy.zeros((0, 3), numpy.float32)),
        (numpy.array(-1.25, numpy.float32), numpy.array(2.0, numpy.float32)),
    ]
    for x, g in cases:
        with _route(route):
            y, dx = _run(fn, x, g)
        assert y.shape == x.shape and dx.shape == x.shape
        with numpy.errstate(all="ignore"):
            want_y, want_dx = ref(x.astype(numpy.float64), numpy.asarray(g, numpy.float64))
        _close(y, want_y, numpy.float32, f"{name} value {x.shape}")
        _close(dx, want_dx, numpy.float32, f"{name} gradient {x.shape}")


def _ref_glu(x, g, dim):
    a, b = numpy.split(x, 2, axis=dim)
    s = _sig(b)
    da = g * s
    return a * s, numpy.concatenate([da, da * a * (1 - s)], axis=dim)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize(("shape", "dim"), [((6, 8), 1), ((6, 8), 0), ((3, 4, 5), 1),
                                            ((2, 3, 4), -1), ((0, 4), 1), ((4,), 0)])  # fmt: skip
def test_glu(shape, dim, dtype, route):
    rng = numpy.random.default_rng(4)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    # (-50, not -100: sigmoid(-100) is a float32 denormal, which the compiled exp gives as 0)
    hostile = numpy.array([math.nan, math.inf, -math.inf, -50.0, 100.0, 0.0], dtype)
    x.reshape(-1)[: min(6, x.size)] = hostile[: min(6, x.size)]
    d = dim % len(shape)
    out_shape = tuple(n // 2 if i == d else n for i, n in enumerate(shape))
    g = rng.standard_normal(out_shape).astype(dtype)
    with _route(route):
        y, dx = _run(lambda t: A.glu(t, dim), x, g)
    with numpy.errstate(all="ignore"):
        want_y, want_dx = _ref_glu(x.astype(numpy.float64), g.astype(numpy.float64), d)
    _close(y, want_y, dtype, "glu value")
    _close(dx, want_dx, dtype, "glu gradient")


@pytest.mark.parametrize("route", ROUTES)
def test_glu_against_torch_on_a_view(route):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(5)
    x = (rng.standard_normal((8, 12, 6)) * 3).astype(numpy.float32).transpose(0, 2, 1)
    g = rng.standard_normal((8, 6, 6)).astype(numpy.float32)
    with _route(route):
        y, dx = _run(lambda t: A.glu(t, 2), x, g)
    xt = torch.tensor(numpy.ascontiguousarray(x), requires_grad=True)
    yt = torch.nn.functional.glu(xt, 2)
    (dxt,) = torch.autograd.grad(yt, xt, torch.tensor(g))
    numpy.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-7)
    numpy.testing.assert_allclose(dx, dxt.numpy(), rtol=1e-6, atol=1e-7)


def _ref_prelu(x, w, g):
    wb = w.reshape(()) if w.size == 1 else w.reshape((1, -1) + (1,) * (x.ndim - 2))
    pos = x > 0
    y = numpy.where(pos, x, wb * x)
    dx = numpy.where(pos, g, g * wb)
    gx = numpy.where(pos, 0.0, g * x)
    if w.size == 1:
        dw = gx.sum().reshape(w.shape)
    else:
        dw = gx.sum(axis=tuple(i for i in range(x.ndim) if i != 1)).reshape(w.shape)
    return y, dx, dw


PRELU_CASES = [((4, 3, 5, 2), 3), ((4, 3, 5, 2), 1), ((6, 5), 5), ((7,), 1), ((2, 3), 1),
               ((0, 3, 2), 3)]  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize(("shape", "nw"), PRELU_CASES)
def test_prelu(shape, nw, dtype, route):
    rng = numpy.random.default_rng(6)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if x.size > 4:
        x.reshape(-1)[:4] = [math.nan, -math.inf, -0.0, 1e30]
    w = (rng.random(nw) - 0.3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    xt, wt = gf.tensor(x, requires_grad=True), gf.tensor(w, requires_grad=True)
    with _route(route):
        y = A.prelu(xt, wt)
        dx, dw = gf.autograd.grad(y, [xt, wt], gf.tensor(g))
    with numpy.errstate(all="ignore"):
        want = _ref_prelu(x.astype(numpy.float64), w.astype(numpy.float64), g.astype(numpy.float64))
    _close(y.detach().numpy(), want[0], dtype, "prelu value")
    _close(dx.numpy(), want[1], dtype, "prelu dx")
    # dw sums in another order: as close to float64's as float32 sums get
    got, ref = dw.numpy().astype(numpy.float64), want[2]
    assert (numpy.isnan(got) == numpy.isnan(ref)).all()
    inf = numpy.isinf(ref)
    assert (got[inf] == ref[inf]).all()
    ok = ~numpy.isnan(ref) & ~inf
    gx = numpy.abs(g * x)
    scale = gx[numpy.isfinite(gx)].sum() + 1
    assert (numpy.abs(got[ok] - ref[ok]) <= 1e-5 * scale).all()


@pytest.mark.parametrize("route", ROUTES)
def test_prelu_hostile_weights_and_gradients_take_the_select(route):
    """w or g non-finite: where x > 0 the gradient is g and dw gets 0, as PyTorch's select (an
    arithmetic blend would give 0 * inf = NaN there)."""
    x = numpy.array([[1.0, -2.0, 3.0], [-1.0, 2.0, -3.0]], numpy.float32)
    for w, g in [
        (numpy.array([math.inf], numpy.float32), numpy.ones_like(x)),
        (numpy.array([0.25], numpy.float32), numpy.array([[math.inf, 1, math.nan], [1, 1, 1]],
                                                         numpy.float32)),
    ]:  # fmt: skip
        xt, wt = gf.tensor(x, requires_grad=True), gf.tensor(w, requires_grad=True)
        with _route(route):
            y = A.prelu(xt, wt)
            dx, dw = gf.autograd.grad(y, [xt, wt], gf.tensor(g))
        want = _ref_prelu(x.astype(numpy.float64), w.astype(numpy.float64), g.astype(numpy.float64))
        numpy.testing.assert_array_equal(y.detach().numpy(), want[0].astype(numpy.float32))
        numpy.testing.assert_array_equal(dx.numpy(), want[1].astype(numpy.float32))
        numpy.testing.assert_array_equal(dw.numpy(), want[2].astype(numpy.float32))


@pytest.mark.parametrize("route", ROUTES)
def test_prelu_one_gradient_only_and_against_torch(route):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(7)
    x = (rng.standard_normal((3, 4, 6)) * 2).astype(numpy.float32)
    w = (rng.random(4) * 0.5).astype(numpy.float32)
    g = rng.standard_normal(x.shape).astype(numpy.float32)
    xtt = torch.tensor(x, requires_grad=True)
    wtt = torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.prelu(xtt, wtt)
    dxt, dwt = torch.autograd.grad(yt, [xtt, wtt], torch.tensor(g))
    with _route(route):
        for x_grad, w_grad in ((True, False), (False, True), (True, True)):
            xt = gf.tensor(x, requires_grad=x_grad)
            wt = gf.tensor(w, requires_grad=w_grad)
            y = A.prelu(xt, wt)
            numpy.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
            wanted = [t for t, r in ((xt, x_grad), (wt, w_grad)) if r]
            got = gf.autograd.grad(y, wanted, gf.tensor(g))
            refs = [r for r, need in ((dxt, x_grad), (dwt, w_grad)) if need]
            for a, b in zip(got, refs, strict=True):
                numpy.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def _count_calls(monkeypatch, names):
    loops = compiled.loops(numpy.zeros(1, numpy.float32))
    calls = dict.fromkeys(names, 0)
    for name in names:
        real = getattr(loops, name)

        def wrapper(*args, _real=real, _name=name):
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(loops, name, wrapper)
    return calls


@pytest.mark.parametrize(
    ("fn", "loop"),
    [(A.logsigmoid, "logsigmoid"), (A.mish, "mish"), (A.hardswish, "hardswish"),
     (A.hardsigmoid, "hardsigmoid"), (A.hardtanh, "hardtanh"), (lambda t: A.glu(t, 1), "glu"),
     (lambda t: A.prelu(t, gf.tensor(numpy.full(4, 0.25, numpy.float32))), "prelu")],
)  # fmt: skip
def test_compiled_loops_are_taken(monkeypatch, fn, loop):
    _route("compiled")
    calls = _count_calls(monkeypatch, [loop, loop + "_backward"])
    x = gf.tensor(numpy.random.default_rng(8).standard_normal((3, 4, 6)).astype(numpy.float32),
                  requires_grad=True)  # fmt: skip
    fn(x).sum().backward()
    assert calls == {loop: 1, loop + "_backward": 1}
    with compiled.disabled():
        fn(x).sum().backward()
    assert calls == {loop: 1, loop + "_backward": 1}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_switch_off_between_forward_and_backward(name):
    """A forward on the compiled loops, its backward with them off: the NumPy backward from
    what the fused forward kept."""
    _route("compiled")
    fn, ref, _, _ = UNARY[name]
    x_np = _hostile(numpy.float32)
    g_np = numpy.linspace(-2, 2, x_np.size).astype(numpy.float32)
    x = gf.tensor(x_np, requires_grad=True)
    y = fn(x)
    with compiled.disabled():
        (dx,) = gf.autograd.grad(y, [x], gf.tensor(g_np))
    with numpy.errstate(all="ignore"):
        _, want = ref(x_np.astype(numpy.float64), g_np.astype(numpy.float64))
    _close(dx.numpy(), want, numpy.float32, f"{name} gradient")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "fn",
    [A.logsigmoid, A.mish, A.hardswish, A.selu, lambda t: A.celu(t, 0.5),
     lambda t: A.glu(t, 2),
     lambda t: A.prelu(t, gf.tensor(numpy.array([0.2, 0.3, 0.4]), requires_grad=True))],
)  # fmt: skip
def test_double_backward(fn, route):
    """The gradient of sum(w * d), d = the first derivative taken with create_graph, against
    central differences of sum(w * d) (float64)."""
    rng = numpy.random.default_rng(9)
    a = rng.standard_normal((2, 3, 4)) * 2
    for k in (-3.0, -1.0, 0.0, 1.0, 3.0):  # away from the kinks (finite differences)
        a = numpy.where(numpy.abs(a - k) < 0.05, k + 0.1, a)
    out_shape = fn(gf.tensor(a)).shape
    probe = gf.tensor(rng.standard_normal(out_shape))
    w = rng.standard_normal(a.shape)

    def first(values, create_graph):
        x = gf.tensor(values, requires_grad=True)
        (d,) = gf.autograd.grad(fn(x), [x], probe, create_graph=create_graph)
        return x, d

    with _route(route):
        x, d = first(a, True)
        (d * gf.tensor(w)).sum().backward()
        # (None where d does not depend on x: prelu's is piecewise constant in x)
        got = x.grad.numpy() if x.grad is not None else numpy.zeros_like(a)
        want = numpy.empty_like(a)
        eps = 1e-6
        for i in range(a.size):
            step = numpy.zeros(a.size)
            step[i] = eps
            step = step.reshape(a.shape)
            hi = (first(a + step, False)[1].numpy() * w).sum()
            lo = (first(a - step, False)[1].numpy() * w).sum()
            want.reshape(-1)[i] = (hi - lo) / (2 * eps)
    numpy.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_numpy_route_softplus_helper_matches_logaddexp():
    x = _hostile(numpy.float64)
    with numpy.errstate(all="ignore"):
        want = numpy.logaddexp(0.0, x)
    got = A._softplus(x)
    assert (numpy.isnan(got) == numpy.isnan(want)).all()
    ok = ~numpy.isnan(want)
    numpy.testing.assert_allclose(got[ok], want[ok], rtol=1e-15)
    assert A._softplus(numpy.array(-2.0, numpy.float32)).shape == ()


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("fn", [A.hardsigmoid, A.hardtanh, A.relu6])
def test_piecewise_linear_create_graph(fn, route):
    """Their gradient is g times a constant mask: with create_graph it is the same values, a
    function of g only."""
    rng = numpy.random.default_rng(10)
    a = rng.standard_normal((3, 5)) * 4
    probe = gf.tensor(rng.standard_normal(a.shape), requires_grad=True)
    with _route(route):
        x = gf.tensor(a, requires_grad=True)
        (d,) = gf.autograd.grad(fn(x), [x], probe, create_graph=True)
        x2 = gf.tensor(a, requires_grad=True)
        (d2,) = gf.autograd.grad(fn(x2), [x2], probe.detach())
        numpy.testing.assert_array_equal(d.detach().numpy(), d2.numpy())
        (dg,) = gf.autograd.grad(d.sum(), [probe])
    numpy.testing.assert_allclose(dg.numpy(), d2.numpy() / probe.detach().numpy(), rtol=1e-12)
