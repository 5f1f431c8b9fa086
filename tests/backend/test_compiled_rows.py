"""The compiled rows and activations of gradflow.backend.compiled_loops: softmax, log_softmax and
cross_entropy along the last dim (float32), leaky_relu (float32, float64), elu and softplus
(float32). Each fused route against the NumPy route it replaces (compiled.disabled()) and against
PyTorch, on random and hostile inputs (+-inf, NaN, +-1e30, equal rows, one column, no rows,
a transposed view, a broadcast gradient, ignored targets); and that the fused route ran."""

from __future__ import annotations

import contextlib

import numpy
import pytest

import gradflow as gf
from gradflow.backend import compiled

pytest.importorskip("numba")
if compiled.loops(numpy.zeros(1, numpy.float32)) is None:
    pytest.skip(f"the compiled loops are {compiled.status()}", allow_module_level=True)
from gradflow.backend import compiled_loops  # (after the skip: it imports numba)

F = gf.nn.functional
f32 = numpy.float32
INF, NAN = numpy.inf, numpy.nan

# Rows of 5 values: finite, -inf inside, all -inf, NaN, huge, all equal; then the rows with
# +inf (NaN throughout in PyTorch and on the fused route; the NumPy route gives the finite
# elements 0, so they are compared with torch only).
ROWS = [
    [1, 2, 3, 4, 5],
    [1, -INF, 3, 4, -2],
    [-INF] * 5,
    [1, NAN, 3, 4, 0],
    [1e30, -1e30, 0, 1, 2],
    [-1e30] * 5,
    [5, 5, 5, 5, 5],
    [0.5, -0.25, 1e-30, -3, 100],
    [-90, -100, -88, -87.5, -87],
]
INF_ROWS = [[1, INF, 3, 4, 0], [INF] * 5, [INF, -INF, 0, 1, 2], [INF, INF, 0, 1, NAN]]
# Elementwise values: signs, zeros, tails of the exp (near -87.3), softplus's threshold (20).
VALUES = [0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 0.5, -0.5, 3.0, -3.0, 19.99, 20.0, 20.01, -20.0,
          -40.0, -86.0, -87.2, -87.4, -88.0, -90.0, -104.0, 88.0, 89.0, 1e30, -1e30, INF, -INF,
          NAN]  # fmt: skip


@pytest.fixture
def calls(monkeypatch):
    """calls(name): a list that grows by one at each call of compiled_loops.<name> from now on."""

    def watch(name):
        seen = []
        real = getattr(compiled_loops, name)

        def counted(*args):
            seen.append(name)
            return real(*args)

        monkeypatch.setattr(compiled_loops, name, counted)
        return seen

    return watch


def _gf(fn, x, grad=None, transpose=False, fused=True, **kw):
    """fn's output and x's gradient (grad None: from out.sum()); transpose: x given as the
    transposed view of its transpose."""
    base = numpy.ascontiguousarray(x.T) if transpose else x
    t = gf.tensor(base, requires_grad=True)
    # (the NumPy route warns of NaN and inf where it meets them; the fused route is quiet)
    with (
        contextlib.nullcontext() if fused else compiled.disabled(),
        numpy.errstate(all="ignore" if not fused else "warn"),
    ):
        xt = t.T if transpose else t
        out = fn(xt, **kw)
        if grad is None:
            out.sum().backward()
        else:
            out.backward(gf.tensor(grad))
    g = t.grad.numpy()
    return out.detach().numpy(), g.T if transpose else g


def _torch(name, x, grad=None, **kw):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    out = getattr(torch.nn.functional, name)(t, **kw)
    if grad is None:
        out.sum().backward()
    else:
        out.backward(torch.tensor(grad))
    return out.detach().numpy(), t.grad.numpy()


def _close(got, want, tol=2e-6):
    """Equal within tol relative to the largest finite value of want (NaN where NaN, inf
    where inf, and of the same dtype and shape)."""
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        finite = numpy.abs(b[numpy.isfinite(b)])
        scale = max(float(finite.max()), 1.0) if finite.size else 1.0
        numpy.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True)


def _rows(n, k, seed=0, scale=3.0):
    return (numpy.random.default_rng(seed).standard_normal((n, k)) * scale).astype(f32)


# ---- softmax, log_softmax --------------------------------------------------------------------
SOFTMAXES = [("softmax", "softmax_rows"), ("log_softmax", "softmax_rows")]


def _softmax(name):
    return lambda x: getattr(F, name)(x, dim=-1)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(64, 333), (3, 4, 2100), (5, 1), (0, 7), (7,)])
def test_softmax_random_matches_numpy_route_and_torch(name, shape, calls):
    fwd, bwd = calls("softmax_rows"), calls("softmax_rows_backward")
    rng = numpy.random.default_rng(1)
    x = (rng.standard_normal(shape) * 4).astype(f32)
    g = rng.standard_normal(shape).astype(f32)
    fused = _gf(_softmax(name), x, g)
    assert (len(fwd), len(bwd)) == (1, 1)
    _close(fused, _gf(_softmax(name), x, g, fused=False))
    assert len(fwd) == 1  # the NumPy route ran there
    _close(fused, _torch(name, x, g, dim=-1))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_hostile_rows(name, calls):
    fwd, bwd = calls("softmax_rows"), calls("softmax_rows_backward")
    x = numpy.array(ROWS, f32)
    g = numpy.random.default_rng(2).standard_normal(x.shape).astype(f32)
    for grad in (g, None):  # None: out.sum().backward(), a broadcast gradient
        fused = _gf(_softmax(name), x, grad)
        _close(fused, _gf(_softmax(name), x, grad, fused=False))
        _close(fused, _torch(name, x, grad, dim=-1))
    hostile = numpy.array(ROWS + INF_ROWS, f32)
    fused = _gf(_softmax(name), hostile, None)
    _close(fused, _torch(name, hostile, None, dim=-1))
    assert numpy.isnan(fused[0][len(ROWS) :]).all()  # a row with +inf is NaN, as torch
    assert len(fwd) == len(bwd) == 3


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_transposed_view(name, calls):
    fwd = calls("softmax_rows")
    x = _rows(40, 70, seed=3)
    g = _rows(40, 70, seed=4)
    fused = _gf(_softmax(name), x, g, transpose=True)
    assert len(fwd) == 1
    _close(fused, _gf(_softmax(name), x, g))
    _close(fused, _torch(name, x, g, dim=-1))


def test_softmax_other_dim_and_float64_keep_numpy_route(calls):
    fwd = calls("softmax_rows")
    F.softmax(gf.tensor(_rows(4, 5)), dim=0)
    F.log_softmax(gf.tensor(_rows(4, 5).astype(numpy.float64)), dim=1)
    assert fwd == []


def test_softmax_backward_after_loops_switched_off():
    """Forward on the fused route, backward with the loops off: the NumPy backward."""
    x, g = _rows(6, 9, seed=5), _rows(6, 9, seed=6)
    for name in ("softmax", "log_softmax"):
        t = gf.tensor(x, requires_grad=True)
        out = getattr(F, name)(t, dim=1)
        assert out.grad_fn.fused
        with compiled.disabled():
            out.backward(gf.tensor(g))
        _close([t.grad.numpy()], [_gf(_softmax(name), x, g)[1]])


# ---- cross_entropy ----------------------------------------------------------------------------
def _ce(target, **kw):
    return lambda x: F.cross_entropy(x, gf.tensor(target), **kw)


def _torch_ce(x, target, grad=None, **kw):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    out = torch.nn.functional.cross_entropy(t, torch.tensor(target), **kw)
    if grad is None:
        out.sum().backward()
    else:
        out.backward(torch.tensor(grad))
    return out.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 3])
def test_cross_entropy_random(reduction, ignore_index, calls):
    fwd, bwd = calls("cross_entropy_rows"), calls("cross_entropy_rows_backward")
    rng = numpy.random.default_rng(7)
    x = (rng.standard_normal((257, 1000)) * 5).astype(f32)
    target = rng.integers(0, 1000, 257)
    target[::5] = ignore_index
    grad = rng.standard_normal(257).astype(f32) if reduction == "none" else None
    kw = {"reduction": reduction, "ignore_index": ignore_index}
    fused = _gf(_ce(target, **kw), x, grad)
    assert (len(fwd), len(bwd)) == (1, 1)
    _close(fused, _gf(_ce(target, **kw), x, grad, fused=False))
    _close(fused, _torch_ce(x, target, grad, **kw))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_hostile_rows(reduction, calls):
    fwd, bwd = calls("cross_entropy_rows"), calls("cross_entropy_rows_backward")
    x = numpy.array(ROWS + INF_ROWS, f32)
    target = numpy.array([4, 1, 0, 2, 1, 3, 2, 4, 0, 0, 1, 2, 3])
    ignored = target.copy()
    ignored[[1, 3, 9]] = -100  # ignored rows: -inf at the target, NaN, +inf
    for t in (target, ignored):
        fused = _gf(_ce(t, reduction=reduction), x)
        _close(fused, _torch_ce(x, t, reduction=reduction))
    finite = numpy.array(ROWS, f32)[[0, 1, 4, 5, 6, 7, 8]]
    t = numpy.array([4, 0, 1, -100, 2, 4, 0])
    grad = numpy.ones(7, f32) if reduction == "none" else None
    fused = _gf(_ce(t, reduction=reduction), finite, grad)
    _close(fused, _gf(_ce(t, reduction=reduction), finite, grad, fused=False))
    _close(fused, _torch_ce(finite, t, grad, reduction=reduction))
    assert len(fwd) == len(bwd) == 3


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_every_target_ignored(reduction, calls):
    fwd = calls("cross_entropy_rows")
    x, target = _rows(6, 4, seed=8), numpy.full(6, -100)
    fused = _gf(_ce(target, reduction=reduction), x)
    assert len(fwd) == 1
    _close(fused, _torch_ce(x, target, reduction=reduction))
    plain = _gf(_ce(target, reduction=reduction), x, fused=False)
    if reduction == "mean":  # 0 / 0 = NaN, as torch; the gradient 0, as torch (the NumPy
        assert numpy.isnan(fused[0])  # route's is NaN: g / 0 times 0)
        assert not fused[1].any()
        plain[1][...] = 0
    _close(fused, plain)


def test_cross_entropy_shapes_and_views(calls):
    fwd = calls("cross_entropy_rows")
    x = _rows(30, 12, seed=9)
    target = numpy.random.default_rng(10).integers(0, 12, 30)
    fused = _gf(_ce(target), x, transpose=True)  # a non-contiguous (transposed) view
    _close(fused, _torch_ce(x, target))
    one = _gf(_ce(numpy.zeros(5, numpy.int64)), _rows(5, 1))  # one class: loss 0, grad 0
    _close(one, _torch_ce(_rows(5, 1), numpy.zeros(5, numpy.int64)))
    empty = _gf(_ce(numpy.zeros(0, numpy.int64), reduction="sum"), _rows(0, 4))
    _close(empty, _torch_ce(_rows(0, 4), numpy.zeros(0, numpy.int64), reduction="sum"))
    small = _gf(_ce(numpy.array([1, 0, 2], numpy.int32)), _rows(3, 3))  # int32 targets
    _close(small, _torch_ce(_rows(3, 3), numpy.array([1, 0, 2])))
    assert len(fwd) == 4


def test_cross_entropy_other_arguments_keep_numpy_route(calls):
    fwd = calls("cross_entropy_rows")
    x = gf.tensor(_rows(4, 5))
    t = gf.tensor(numpy.array([0, 1, 2, 3]))
    F.cross_entropy(x, t, weight=gf.tensor(numpy.ones(5, f32)))
    F.cross_entropy(x, gf.tensor(_rows(4, 5)).softmax(1))  # probabilities
    F.cross_entropy(gf.tensor(_rows(4, 5).reshape(4, 5, 1)), t.reshape(4, 1))  # spatial
    F.cross_entropy(gf.tensor(_rows(4, 5).astype(numpy.float64)), t)
    assert fwd == []


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.1, 1.0])
def test_cross_entropy_label_smoothing_takes_the_loops_and_agrees(calls, reduction, eps):
    # (1 - eps) times the picked loss plus eps / C times the row's sum over the classes, and
    # the gradient softmax - (1 - eps) onehot - eps / C: against the NumPy route, ignored rows
    # and an all-equal row included, and the backward after the loops are switched off
    fwd = calls("cross_entropy_rows")
    x = _rows(9, 7, seed=5)
    x[4] = 3.0  # an all-equal row
    x[5, 2] = 1e30  # a dominant logit
    target = numpy.array([0, 1, 2, -100, 4, 2, 6, 0, 1])
    results = []
    for off in (False, True):
        t = gf.tensor(x, requires_grad=True)
        with compiled.disabled() if off else contextlib.nullcontext():
            out = F.cross_entropy(t, gf.tensor(target), label_smoothing=eps, reduction=reduction)
        out.backward(gf.ones_like(out))
        results.append((out.detach().numpy(), t.grad.numpy()))
    assert len(fwd) == 1
    _close(list(results[0]), list(results[1]))
    t = gf.tensor(x, requires_grad=True)
    out = F.cross_entropy(t, gf.tensor(target), label_smoothing=eps, reduction=reduction)
    assert out.grad_fn.fused
    with compiled.disabled():
        out.backward(gf.ones_like(out))
    _close([t.grad.numpy()], [results[1][1]])


def test_cross_entropy_backward_after_loops_switched_off():
    x = _rows(8, 6, seed=11)
    target = numpy.array([0, 1, 2, 3, 4, 5, -100, 0])
    t = gf.tensor(x, requires_grad=True)
    out = F.cross_entropy(t, gf.tensor(target))
    assert out.grad_fn.fused
    with compiled.disabled():
        out.backward()
    _close([t.grad.numpy()], [_gf(_ce(target), x)[1]])


# ---- leaky_relu, elu, softplus ---------------------------------------------------------------
ACTIVATIONS = [
    ("leaky_relu", {"negative_slope": 0.1}, "leaky_relu"),
    ("leaky_relu", {"negative_slope": 1.5}, "leaky_relu"),
    ("elu", {}, "elu"),
    ("elu", {"alpha": 0.3}, "elu"),
    ("softplus", {}, "softplus"),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, "softplus"),
]


def _act(name, kw):
    return lambda x: getattr(F, name)(x, **kw)


@pytest.mark.parametrize(("name", "kw", "kernel"), ACTIVATIONS)
def test_activation_random(name, kw, kernel, calls):
    fwd, bwd = calls(kernel), calls(kernel + "_backward")
    rng = numpy.random.default_rng(12)
    x = (rng.standard_normal((300, 70)) * 8).astype(f32)
    g = rng.standard_normal(x.shape).astype(f32)
    fused = _gf(_act(name, kw), x, g)
    assert (len(fwd), len(bwd)) == (1, 1)
    _close(fused, _gf(_act(name, kw), x, g, fused=False))
    _close(fused, _torch(name, x, g, **kw))
    _close(_gf(_act(name, kw), x, g, transpose=True), fused)
    _close(_gf(_act(name, kw), x, None), _torch(name, x, None, **kw))
    empty = numpy.zeros((0, 3), f32)
    _close(_gf(_act(name, kw), empty), _torch(name, empty, **kw))
    assert (len(fwd), len(bwd)) == (4, 4)


@pytest.mark.parametrize(("name", "kw", "kernel"), ACTIVATIONS)
def test_activation_hostile_values(name, kw, kernel, calls):
    fwd, bwd = calls(kernel), calls(kernel + "_backward")
    x = numpy.array(VALUES, f32)
    g = numpy.linspace(-2, 3, x.size).astype(f32)
    fused = _gf(_act(name, kw), x, g)
    assert (len(fwd), len(bwd)) == (1, 1)
    _close(fused, _torch(name, x, g, **kw))
    plain = _gf(_act(name, kw), x, g, fused=False)
    if name == "elu":  # at NaN both routes give g, as torch (x <= 0 ? ... : g)
        assert fused[1][-1] == g[-1] and plain[1][-1] == g[-1]
    _close(fused, plain)


def test_expm1_and_log1p_accuracy():
    """The scalar helpers within a few ulp of float64 over their ranges (elu's expm1 is not
    exp - 1: no cancellation near 0)."""

    @compiled_loops.elementwise
    def apply(v, out, which):
        for i in range(v.size):
            if which == 0:
                out[i] = compiled_loops.expf(v[i])
            elif which == 1:
                out[i] = compiled_loops.expm1f(v[i])
            else:
                out[i] = compiled_loops.log1p_unit(v[i])

    neg = -numpy.concatenate([numpy.geomspace(1e-30, 87, 20000), numpy.linspace(0, 87, 20000)])
    unit = numpy.concatenate([numpy.geomspace(1e-30, 1, 20000), numpy.linspace(1e-3, 1, 20000)])
    for which, v, ref in ((0, neg, numpy.exp), (1, neg, numpy.expm1), (2, unit, numpy.log1p)):
        v = v.astype(f32)
        out = numpy.empty_like(v)
        apply(v, out, which)
        want = ref(v.astype(numpy.float64))
        ok = numpy.abs(want) > 1e-37
        ulps = numpy.abs(out[ok] - want[ok]) / numpy.abs(want[ok]) / 2.0**-24
        assert ulps.max() < 3, which


def test_leaky_relu_float64_and_mask_fallback(calls):
    fwd, bwd = calls("leaky_relu"), calls("leaky_relu_backward")
    x = numpy.array(VALUES, numpy.float64)
    g = numpy.linspace(-2, 3, x.size)
    fused = _gf(_act("leaky_relu", {"negative_slope": 0.2}), x, g)
    assert (len(fwd), len(bwd)) == (1, 1)
    _close(fused, _torch("leaky_relu", x, g, negative_slope=0.2), tol=1e-14)
    t = gf.tensor(x, requires_grad=True)
    out = F.leaky_relu(t, 0.2)
    with compiled.disabled():  # forward saved x: the NumPy backward takes x > 0 as its mask
        out.backward(gf.tensor(g))
    _close([t.grad.numpy()], [fused[1]], tol=1e-14)


def test_elu_float64_backward_fused_and_negative_alpha_not(calls):
    fwd, bwd = calls("elu"), calls("elu_backward")
    x = numpy.linspace(-5, 5, 101)
    g = numpy.cos(x)
    fused = _gf(_act("elu", {"alpha": 0.7}), x, g)
    assert (len(fwd), len(bwd)) == (0, 1)  # float64: NumPy's expm1 forward, compiled backward
    _close(fused, _torch("elu", x, g, alpha=0.7), tol=1e-14)
    _gf(_act("elu", {"alpha": -0.5}), x.astype(f32), g.astype(f32))
    assert (len(fwd), len(bwd)) == (0, 1)


def test_softplus_backward_after_loops_switched_off():
    x, g = _rows(10, 10, seed=13, scale=10), _rows(10, 10, seed=14)
    t = gf.tensor(x, requires_grad=True)
    out = F.softplus(t)
    assert out.grad_fn.fused
    with compiled.disabled():
        out.backward(gf.tensor(g))
    _close([t.grad.numpy()], [_gf(_act("softplus", {}), x, g)[1]])
