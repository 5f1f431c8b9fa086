"""The numba-compiled CPU loops (gradflow.backend.compiled): each fused route against the NumPy
route it replaces (compiled.disabled()), against float64 references and PyTorch, on hostile
inputs; that the routes are taken; and that gradflow works the same without numba
(GRADFLOW_NUMBA=0)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy
import pytest

import gradflow as gf
from gradflow.backend import compiled
from gradflow.testing.gradcheck import gradcheck

numba = pytest.importorskip("numba")
loops = compiled.loops(numpy.zeros(1))
if loops is None:  # numba installed but switched off (GRADFLOW_NUMBA=0) or unusable
    pytest.skip(f"the compiled loops are {compiled.status()}", allow_module_level=True)

F = gf.nn.functional


def _run(fn, arrays, grad, fused=True):
    """fn's output and every input's gradient, on the fused route or (fused=False) NumPy's."""
    tensors = [gf.tensor(a, requires_grad=True) for a in arrays]
    if fused:
        out = fn(*tensors)
        out.backward(gf.tensor(grad))
    else:
        with compiled.disabled():
            out = fn(*tensors)
            out.backward(gf.tensor(grad))
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]


def _same(fused, plain, rtol, atol):
    for a, b in zip(fused, plain):
        assert a.dtype == b.dtype and a.shape == b.shape
        numpy.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def _as_accurate(fn, arrays, grad):
    """The fused route is as accurate as NumPy's route or better: each of its results is
    within twice NumPy's route's largest error (plus float32 rounding) of the float64 result,
    and of the same dtype and shape. (Sums in another order make the two routes differ by
    more than rounding where x has a large mean; the float64 result says which is closer.)"""
    if arrays[0].dtype == numpy.float64:
        fused, plain = _run(fn, arrays, grad), _run(fn, arrays, grad, fused=False)
        for a, b in zip(fused, plain):
            scale = numpy.abs(b).max() if b.size else 0
            _same([a], [b], 1e-9, 1e-12 * scale)
        return
    wide = _run(fn, [a.astype(numpy.float64) for a in arrays], grad.astype(numpy.float64))
    fused, plain = _run(fn, arrays, grad), _run(fn, arrays, grad, fused=False)
    for a, b, ref in zip(fused, plain, wide):
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.size:
            scale = numpy.abs(ref).max()
            assert numpy.abs(a - ref).max() <= 2 * numpy.abs(b - ref).max() + 1e-6 * scale


# ---- pointwise: sigmoid, silu, gelu (float32) -------------------------------------------------
HOSTILE = numpy.array(
    [numpy.nan, numpy.inf, -numpy.inf, 0.0, -0.0, 1e30, -1e30, 88.5, -88.5, -87.2, -87.5,
     -103.0, -104.0, 87.0, 20.0, -20.0, 5.7, -5.7, 1e-30, -1e-30],
    numpy.float32,
)  # fmt: skip


def _pointwise_input(size, rng):
    x = (rng.standard_normal(size) * 6).astype(numpy.float32)
    x[: HOSTILE.size] = HOSTILE
    return x


@pytest.mark.parametrize("name", ["sigmoid", "silu", "gelu"])
@pytest.mark.parametrize("size", [1, 7, 2048, 2049, 5000])
def test_pointwise_fused_matches_numpy_route(name, size, rng):
    x = _pointwise_input(size, rng) if size > HOSTILE.size else rng.standard_normal(size)
    x = x.astype(numpy.float32)
    g = rng.standard_normal(size).astype(numpy.float32)
    fn = getattr(F, name)
    _same(_run(fn, [x], g), _run(fn, [x], g, fused=False), 2e-6, 1e-6)


@pytest.mark.parametrize("name", ["sigmoid", "silu", "gelu"])
def test_pointwise_fused_matches_float64(name, rng):
    """Values and gradients within float32 rounding of the float64 NumPy route, every element
    (NaN where float64 gives NaN), tails included."""
    x = _pointwise_input(50000, rng)
    g = rng.standard_normal(x.size).astype(numpy.float32)
    fn = getattr(F, name)
    y32, gx32 = _run(fn, [x], g)
    y64, gx64 = _run(fn, [x.astype(numpy.float64)], g.astype(numpy.float64))
    for a, b in ((y32, y64), (gx32, gx64)):
        numpy.testing.assert_array_equal(numpy.isnan(a), numpy.isnan(b))
        fin = numpy.isfinite(b)
        numpy.testing.assert_array_equal(a[~fin], b[~fin])  # inf stays inf, of the same sign
        err = numpy.abs(a[fin] - b[fin])
        assert numpy.all(err <= 1e-6 * numpy.maximum(numpy.abs(b[fin]), 1) + 1e-30), err.max()


@pytest.mark.parametrize("name", ["sigmoid", "silu", "gelu"])
def test_pointwise_fused_on_views_broadcasts_and_0d(name, rng):
    fn = getattr(F, name)
    a = rng.standard_normal((40, 30)).astype(numpy.float32)
    for x in (a.T, a[::2, 1::3], numpy.float32(0.7) * numpy.ones(())):
        fused, plain = [], []
        for store, ctx in ((fused, None), (plain, compiled.disabled())):
            t = gf.tensor(x, requires_grad=True)
            if ctx is None:
                fn(t).sum().backward()  # a broadcast gradient
            else:
                with ctx:
                    fn(t).sum().backward()
            store.append(t.grad.numpy())
        numpy.testing.assert_allclose(fused[0], plain[0], rtol=2e-6, atol=1e-7)


def test_pointwise_routes_are_taken(monkeypatch, rng):
    calls = []
    for name in ("sigmoid", "sigmoid_backward", "silu_backward", "gelu", "gelu_backward"):
        real = getattr(loops, name)
        monkeypatch.setattr(loops, name, lambda *a, f=real, n=name: calls.append(n) or f(*a))
    x = gf.tensor(rng.standard_normal(100).astype(numpy.float32), requires_grad=True)
    for fn in (F.sigmoid, F.silu, F.gelu):
        fn(x).backward(gf.ones(100))
    assert calls == ["sigmoid", "sigmoid_backward", "sigmoid", "silu_backward", "gelu",
                     "gelu_backward"]  # fmt: skip
    calls.clear()
    F.gelu(x, approximate="tanh").backward(gf.ones(100))  # NumPy's route
    F.sigmoid(x.double()).sum().backward()  # float64: NumPy's forward, the loop's backward
    assert calls == ["sigmoid_backward"]


def test_gelu_backward_after_the_loops_are_switched_off(rng):
    """Forward on the loop keeps only x; a backward the loop can't run recomputes in NumPy."""
    x = rng.standard_normal(300).astype(numpy.float32)
    g = rng.standard_normal(300).astype(numpy.float32)
    expected = _run(F.gelu, [x], g, fused=False)
    for fn in (F.gelu, F.silu):
        t = gf.tensor(x, requires_grad=True)
        y = fn(t)
        assert y.grad_fn.fused and len(y.grad_fn.saved_arrays) == 1
        with compiled.disabled():
            y.backward(gf.tensor(g))
        plain = _run(fn, [x], g, fused=False)
        numpy.testing.assert_allclose(t.grad.numpy(), plain[1], rtol=2e-6, atol=1e-7)
    assert expected[0].dtype == numpy.float32


@pytest.mark.parametrize("name", ["sigmoid", "silu", "gelu"])
def test_pointwise_double_backward_through_fused_forward(name):
    """create_graph through a float32 forward that took the loop: the second derivative
    agrees with float64's (NumPy's route, checked by gradgradcheck)."""
    fn = getattr(F, name)
    x64 = gf.tensor(numpy.linspace(-3, 3, 12), requires_grad=True)
    assert gf.autograd.gradgradcheck(fn, (x64,))
    x32 = gf.tensor(numpy.linspace(-3, 3, 12, dtype=numpy.float32), requires_grad=True)
    y32 = fn(x32)
    assert getattr(y32.grad_fn, "fused", True)  # sigmoid's fused forward keeps its output
    (g1,) = gf.autograd.grad(y32.sum(), x32, create_graph=True)
    (g2,) = gf.autograd.grad(g1.sum(), x32)
    (f1,) = gf.autograd.grad(fn(x64).sum(), x64, create_graph=True)
    (f2,) = gf.autograd.grad(f1.sum(), x64)
    numpy.testing.assert_allclose(g2.numpy(), f2.numpy(), rtol=1e-4, atol=1e-5)


# ---- layer_norm, group_norm ---------------------------------------------------------------
LAYER_CASES = [((6, 7, 33), (7, 33)), ((64, 1024), (1024,)), ((5, 1), (1,)), ((0, 8), (8,)),
               ((3, 4, 5), (5,))]  # fmt: skip


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape,normalized", LAYER_CASES)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_fused_matches_numpy_route(dtype, shape, normalized, affine, rng):
    x = (rng.standard_normal(shape) * 3 + 100).astype(dtype)  # a large mean: two-pass variance
    w = rng.standard_normal(normalized).astype(dtype)
    b = rng.standard_normal(normalized).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    params = {"both": [w, b], "weight": [w], "none": []}[affine]

    def fn(x, *p):
        return F.layer_norm(x, normalized, *p, eps=1e-5)

    _as_accurate(fn, [x, *params], g)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape,groups", [((8, 12, 5, 7), 3), ((4, 6), 2), ((3, 8, 10), 8),
                                          ((2, 4, 3), 1), ((1, 3, 1, 1), 3)])  # fmt: skip
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_fused_matches_numpy_route(dtype, shape, groups, affine, rng):
    x = (rng.standard_normal(shape) * 2 - 50).astype(dtype)
    params = [rng.standard_normal(shape[1]).astype(dtype) for _ in range(2)] if affine else []
    g = rng.standard_normal(shape).astype(dtype)

    def fn(x, *p):
        return F.group_norm(x, groups, *p, eps=1e-5)

    _as_accurate(fn, [x, *params], g)


def test_normalizations_fused_on_views_and_broadcast_gradients(rng):
    a = rng.standard_normal((16, 12)).astype(numpy.float32)
    for fn in (lambda t: F.layer_norm(t, (16,)), lambda t: F.group_norm(t.reshape(3, 4, 16), 2)):
        fused, plain = [], []
        for store in (fused, plain):
            t = gf.tensor(a.T, requires_grad=True)  # a transposed view
            if store is fused:
                (fn(t) * fn(t)).sum().backward()
            else:
                with compiled.disabled():
                    (fn(t) * fn(t)).sum().backward()
            store.append(t.grad.numpy())
        numpy.testing.assert_allclose(fused[0], plain[0], rtol=1e-4, atol=1e-5)


def test_normalizations_gradcheck_on_the_fused_route(rng):
    x = gf.tensor(rng.standard_normal((3, 2, 5)), requires_grad=True)
    w = gf.tensor(rng.standard_normal(5), requires_grad=True)
    b = gf.tensor(rng.standard_normal(5), requires_grad=True)
    assert F.layer_norm(x, (5,), w, b).grad_fn.fused
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (5,), w, b), (x, w, b))
    wg = gf.tensor(rng.standard_normal(2), requires_grad=True)
    bg = gf.tensor(rng.standard_normal(2), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), (x, wg, bg))
    assert gf.autograd.gradgradcheck(lambda x, w, b: F.layer_norm(x, (5,), w, b), (x, w, b))


def test_layer_norm_backward_after_the_loops_are_switched_off(rng):
    x = rng.standard_normal((4, 9)).astype(numpy.float32)
    w, b = (
        rng.standard_normal(9).astype(numpy.float32),
        rng.standard_normal(9).astype(numpy.float32),
    )
    g = rng.standard_normal((4, 9)).astype(numpy.float32)
    tensors = [gf.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.layer_norm(tensors[0], (9,), tensors[1], tensors[2])
    with compiled.disabled():
        y.backward(gf.tensor(g))
    plain = _run(lambda *t: F.layer_norm(t[0], (9,), t[1], t[2]), [x, w, b], g, fused=False)
    for t, want in zip(tensors, plain[1:]):
        numpy.testing.assert_allclose(t.grad.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fused_forward", [True, False])
def test_group_norm_with_the_loops_switched_between_forward_and_backward(fused_forward, rng):
    x, g = (rng.standard_normal((3, 4, 5)).astype(numpy.float32) for _ in range(2))
    w, b = (rng.standard_normal(4).astype(numpy.float32) for _ in range(2))
    tensors = [gf.tensor(a, requires_grad=True) for a in (x, w, b)]
    if fused_forward:
        y = F.group_norm(tensors[0], 2, tensors[1], tensors[2])
        with compiled.disabled():
            y.backward(gf.tensor(g))
    else:
        with compiled.disabled():
            y = F.group_norm(tensors[0], 2, tensors[1], tensors[2])
        y.backward(gf.tensor(g))
    plain = _run(lambda *t: F.group_norm(t[0], 2, t[1], t[2]), [x, w, b], g, fused=False)
    for t, want in zip(tensors, plain[1:]):
        assert t.grad.dtype == gf.float32
        numpy.testing.assert_allclose(t.grad.numpy(), want, rtol=1e-5, atol=1e-6)


def test_layer_norm_only_bias_needs_a_gradient(rng):
    x = gf.tensor(rng.standard_normal((3, 5)).astype(numpy.float32))
    b = gf.tensor(numpy.zeros(5, numpy.float32), requires_grad=True)
    y = F.layer_norm(x, (5,), None, b)
    assert y.grad_fn.saved_arrays[0] is None  # x is not kept
    y.backward(gf.ones((3, 5)))
    numpy.testing.assert_array_equal(b.grad.numpy(), numpy.full(5, 3, numpy.float32))


# ---- cumsum --------------------------------------------------------------------------------
CUMSUM = [((300,), 0), ((5, 300, 7), 1), ((4, 5, 6), 0), ((4, 5, 6), 2), ((3, 0, 2), 1),
          ((1024, 130), 1)]  # fmt: skip


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape,dim", CUMSUM)
def test_cumsum_fused_sums_in_order_in_float64(dtype, shape, dim, rng):
    """The loop's result is the float64 running sum in order, rounded once: what PyTorch's
    cpu cumsum gives (bit for bit where torch is installed, in test_cumsum_matches_torch)."""
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    y, gx = _run(lambda t: gf.cumsum(t, dim), [x], g)
    numpy.testing.assert_array_equal(y, numpy.cumsum(x.astype(numpy.float64), dim).astype(dtype))
    reverse = numpy.flip(numpy.cumsum(numpy.flip(g.astype(numpy.float64), dim), dim), dim)
    numpy.testing.assert_array_equal(gx, reverse.astype(dtype))


def test_cumsum_matches_torch_bit_for_bit(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((64, 1000)).astype(numpy.float32) * 1000
    for dim in (0, 1):
        ours = gf.cumsum(gf.tensor(x), dim).numpy()
        numpy.testing.assert_array_equal(ours, torch.cumsum(torch.tensor(x), dim).numpy())


def test_cumsum_keeps_nan_inf_and_views(rng):
    x = numpy.array([[1.0, numpy.inf, -numpy.inf, 2.0], [numpy.nan, 1.0, 2.0, 3.0]], numpy.float32)
    y = gf.cumsum(gf.tensor(x), 1).numpy()
    with compiled.disabled():
        numpy.testing.assert_array_equal(y, gf.cumsum(gf.tensor(x), 1).numpy())
    a = rng.standard_normal((30, 20)).astype(numpy.float32)
    numpy.testing.assert_allclose(gf.cumsum(gf.tensor(a.T), 1).numpy(), numpy.cumsum(a.T, 1),
                                  rtol=1e-5, atol=1e-5)  # fmt: skip


# ---- depthwise convolution ---------------------------------------------------------------
DEPTHWISE = [  # (input shape, kernel, padding, dilation)
    ((2, 3, 9, 7), (3, 2), (1, 1), (1, 1)),
    ((2, 4, 8, 8), (3, 3), (0, 0), (1, 1)),
    ((1, 2, 6, 11), (3, 3), (2, 3), (2, 1)),
    ((3, 5, 1, 1), (1, 1), (0, 0), (1, 1)),
    ((1, 3, 4, 4), (5, 5), (2, 2), (1, 1)),  # the kernel as large as the padded input
    ((2, 2, 3, 3), (3, 3), (4, 0), (1, 1)),  # padding larger than the kernel's reach
]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape,kernel,padding,dilation", DEPTHWISE)
@pytest.mark.parametrize("bias", [True, False])
def test_depthwise_fused_matches_numpy_route(dtype, shape, kernel, padding, dilation, bias, rng):
    c = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c, 1, *kernel)).astype(dtype)
    params = [w, rng.standard_normal(c).astype(dtype)] if bias else [w]

    def fn(x, w, b=None):
        return F.conv2d(x, w, b, padding=padding, dilation=dilation, groups=c)

    with gf.no_grad():
        out_shape = tuple(fn(*[gf.tensor(a) for a in (x, *params)]).shape)
    g = rng.standard_normal(out_shape).astype(dtype)
    _as_accurate(fn, [x, *params], g)


def test_depthwise_conv1d_and_strided_conv(rng):
    """conv1d (lifted to 2-D) takes the loop; a stride keeps NumPy's route (the same values)."""
    x = rng.standard_normal((2, 6, 40)).astype(numpy.float32)
    w = rng.standard_normal((6, 1, 5)).astype(numpy.float32)
    g1 = rng.standard_normal((2, 6, 40)).astype(numpy.float32)
    fn1 = lambda x, w: F.conv1d(x, w, padding=2, groups=6)  # noqa: E731
    _same(_run(fn1, [x, w], g1), _run(fn1, [x, w], g1, fused=False), 2e-5, 2e-6)
    g2 = rng.standard_normal((2, 6, 20)).astype(numpy.float32)
    fn2 = lambda x, w: F.conv1d(x, w, padding=2, stride=2, groups=6)  # noqa: E731
    _same(_run(fn2, [x, w], g2), _run(fn2, [x, w], g2, fused=False), 2e-5, 2e-6)


def test_depthwise_gradcheck_on_the_fused_route(monkeypatch, rng):
    calls = []
    for name in ("depthwise_forward", "depthwise_weight_grad"):
        real = getattr(loops, name)
        monkeypatch.setattr(loops, name, lambda *a, f=real, n=name: calls.append(n) or f(*a))
    x = gf.tensor(rng.standard_normal((2, 3, 5, 4)), requires_grad=True)
    w = gf.tensor(rng.standard_normal((3, 1, 3, 2)), requires_grad=True)
    b = gf.tensor(rng.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=(1, 0), groups=3), (x, w, b))
    assert {"depthwise_forward", "depthwise_weight_grad"} <= set(calls)


def test_depthwise_non_finite_values_stay_where_they_reach(rng):
    x = numpy.zeros((1, 2, 5, 5), numpy.float32)
    x[0, 0, 2, 2] = numpy.nan
    x[0, 1, 0, 0] = numpy.inf
    w = numpy.ones((2, 1, 3, 3), numpy.float32)
    y = F.conv2d(gf.tensor(x), gf.tensor(w), padding=1, groups=2).numpy()
    with compiled.disabled():
        expected = F.conv2d(gf.tensor(x), gf.tensor(w), padding=1, groups=2).numpy()
    numpy.testing.assert_array_equal(y, expected)
    assert numpy.isnan(y[0, 0, 1:4, 1:4]).all() and not numpy.isnan(y[0, 0, 0]).any()


# ---- the switch ----------------------------------------------------------------------------
def test_loops_apply_only_to_numpy_float_arrays_of_one_dtype():
    f32, f64 = numpy.zeros(2, numpy.float32), numpy.zeros(2)
    assert compiled.loops(f32) is loops and compiled.loops(f64, f64) is loops
    assert compiled.loops(f32, f64) is None  # mixed dtypes
    assert compiled.loops(f64, float32_only=True) is None
    assert compiled.loops(numpy.zeros(2, numpy.int64)) is None
    assert compiled.loops(numpy.zeros(2, numpy.float16)) is None
    assert compiled.loops(numpy.ma.zeros(2)) is None  # a subclass (the CuPy stand-in's are too)
    with compiled.disabled():
        assert compiled.loops(f32) is None
        with compiled.disabled():
            assert compiled.loops(f32) is None
        assert compiled.loops(f32) is None
    assert compiled.loops(f32) is loops
    assert compiled.status().startswith("numba ")


def test_gradflow_without_the_loops(tmp_path):
    """GRADFLOW_NUMBA=0: every op keeps NumPy's route, gives the same values, and the status
    says why; compiled_loops (and numba) are never imported."""
    script = (
        "import sys, numpy, gradflow as gf\n"
        "from gradflow.backend import compiled\n"
        "x = gf.tensor(numpy.linspace(-3, 3, 64, dtype=numpy.float32).reshape(8, 8),\n"
        "              requires_grad=True)\n"
        "y = gf.nn.functional.layer_norm(gf.nn.functional.gelu(x), (8,)).cumsum(1)\n"
        "y.sum().backward()\n"
        "assert 'numba' not in sys.modules\n"
        "assert 'gradflow.backend.compiled_loops' not in sys.modules\n"
        "print(compiled.status()); print(float(x.grad.abs().sum()))\n"
    )
    env = dict(os.environ, GRADFLOW_NUMBA="0")
    off = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    status, total = off.stdout.splitlines()
    assert status == "off (GRADFLOW_NUMBA=0)"
    x = gf.tensor(numpy.linspace(-3, 3, 64, dtype=numpy.float32).reshape(8, 8), requires_grad=True)
    F.layer_norm(F.gelu(x), (8,)).cumsum(1).sum().backward()
    assert math.isclose(float(total), float(x.grad.abs().sum()), rel_tol=1e-4)
