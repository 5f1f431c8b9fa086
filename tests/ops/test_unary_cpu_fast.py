"""The cpu (NumPy) fast paths of the activations (issue 17): erf_float32's accuracy over the
whole range, and each activation's float32 values and gradients against float64 references,
edge values (0, -0, +-inf, NaN, the tails) included."""

import contextlib
import math

import numpy
import pytest

import gradflow as gf
from gradflow.backend import compiled
from gradflow.ops import unary
from gradflow.ops.special import erf_float32

EDGES = [0.0, -0.0, 1e-30, -1e-30, 1e-3, -1e-3, 20.0, -20.0, 88.0, -88.0, 100.0, -100.0]
EDGES += [1e4, -1e4, math.inf, -math.inf, math.nan]


def _grid():
    x = numpy.linspace(-12.0, 12.0, 200_001)
    return numpy.concatenate([x, EDGES]).astype(numpy.float32)


def test_erf_float32_matches_math_erf_over_the_whole_range():
    x = _grid()
    got = erf_float32(x)
    assert got.dtype == numpy.float32 and got.shape == x.shape
    ref = numpy.array([math.erf(v) for v in x.astype(numpy.float64)])
    finite = ~numpy.isnan(ref)
    assert numpy.isnan(got[~finite]).all()
    err = numpy.abs(got[finite].astype(numpy.float64) - ref[finite])
    assert err.max() < 5e-7  # 8 float32 ulp of 1
    small = finite & (numpy.abs(x) < 0.5) & (x != 0)
    rel = numpy.abs(got[small] - ref[small]) / numpy.abs(ref[small])
    assert rel.max() < 4e-7  # full relative accuracy near 0
    assert (got[x == 0] == 0).all()


def test_erf_float32_folded_normal_cdf():
    x = _grid()
    got = erf_float32(x, 1 / math.sqrt(2), 0.5, 0.5)
    ref = numpy.array([0.5 + 0.5 * math.erf(v / math.sqrt(2)) for v in x.astype(numpy.float64)])
    finite = ~numpy.isnan(ref)
    assert numpy.abs(got[finite].astype(numpy.float64) - ref[finite]).max() < 3e-7
    assert numpy.isnan(got[~finite]).all()


@pytest.mark.parametrize("shape", [(), (0,), (3, 5), (70_000,), (2, 40_000)])
def test_erf_float32_shapes_and_blocks(shape):
    x = numpy.random.default_rng(0).standard_normal(shape).astype(numpy.float32)
    got = erf_float32(x)
    assert got.shape == x.shape
    ref = numpy.vectorize(math.erf, otypes=[float])(x.astype(numpy.float64))
    assert numpy.allclose(got, ref, atol=5e-7, rtol=0)
    strided = numpy.random.default_rng(1).standard_normal((50, 8)).astype(numpy.float32)[:, ::2]
    want = numpy.vectorize(math.erf, otypes=[float])(strided)
    assert numpy.allclose(erf_float32(strided), want, atol=5e-7)


def _check(fn, ref_fwd, ref_grad, x, rtol=2e-6, atol=1e-6, grad_tol=None):
    """fn on float32 x against float64 references: values, and the gradient of sum()."""
    xt = gf.tensor(x, requires_grad=True)
    y = fn(xt)
    assert y.dtype == gf.float32
    y.sum().backward()
    x64 = x.astype(numpy.float64)
    with numpy.errstate(all="ignore"):
        want = ref_fwd(x64)
        dwant = ref_grad(x64)
    numpy.testing.assert_allclose(y.detach().numpy(), want, rtol=rtol, atol=atol, equal_nan=True)
    gt = grad_tol or (rtol, atol)
    numpy.testing.assert_allclose(xt.grad.numpy(), dwant, rtol=gt[0], atol=gt[1], equal_nan=True)


def _phi(a):
    return 0.5 * (1 + numpy.vectorize(math.erf, otypes=[float])(a / math.sqrt(2)))


def _pdf(a):
    return numpy.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)


def test_gelu_float32_values_and_gradient():
    x = numpy.concatenate([numpy.linspace(-12, 12, 20_001), [0.0, -0.0, 1e-30, math.nan]])
    x = x.astype(numpy.float32)
    _check(
        unary.gelu,
        lambda a: a * _phi(a),
        lambda a: _phi(a) + a * _pdf(a),
        x,
        atol=2e-6,
    )


def test_gelu_tanh_float32_values_and_gradient():
    x = numpy.concatenate([numpy.linspace(-12, 12, 20_001), [0.0, -0.0, math.nan]])
    x = x.astype(numpy.float32)
    c, k = math.sqrt(2 / math.pi), 0.044715

    def fwd(a):
        return 0.5 * a * (1 + numpy.tanh(c * (a + k * a**3)))

    def grad(a):
        th = numpy.tanh(c * (a + k * a**3))
        return 0.5 * (1 + th) + 0.5 * a * (1 - th * th) * c * (1 + 3 * k * a * a)

    _check(lambda t: unary.gelu(t, approximate="tanh"), fwd, grad, x, atol=2e-6)


def _wide_grid():
    x = numpy.concatenate([numpy.linspace(-120, 120, 40_001), numpy.linspace(-3, 3, 6001), EDGES])
    return x.astype(numpy.float32)


def _sig64(a):
    return numpy.where(
        a >= 0, 1 / (1 + numpy.exp(-numpy.abs(a))), numpy.exp(a) / (1 + numpy.exp(a))
    )


def test_sigmoid_float32_values_and_gradient():
    x = _wide_grid()
    _check(
        unary.sigmoid,
        _sig64,
        lambda a: _sig64(a) * (1 - _sig64(a)),
        x,
        rtol=1e-6,
        atol=3e-45,
        grad_tol=(2e-6, 1e-7),
    )


@pytest.mark.parametrize("dtype", [numpy.float16, numpy.float32, numpy.float64])
def test_sigmoid_keeps_the_far_left_tail(dtype):
    x = numpy.array([-11.0, -12.0, -17.0, -80.0, -88.0, -90.0, -100.0, -700.0, -745.0, -math.inf])
    x = x.astype(dtype)
    got = unary._sigmoid_cpu(x)
    assert got.dtype == dtype
    want = unary.stable_sigmoid(x)
    numpy.testing.assert_allclose(got, want, rtol=2 * numpy.finfo(dtype).eps, atol=0)
    assert unary._sigmoid_cpu(numpy.array(-100.0, dtype)).shape == ()


def test_silu_float32_values_and_gradient():
    x = _wide_grid()
    _check(
        unary.silu,
        lambda a: a * _sig64(a),
        lambda a: _sig64(a) * (1 + a * (1 - _sig64(a))),
        x,
        rtol=2e-6,
        atol=1e-43,
        grad_tol=(2e-6, 1e-7),  # 1 + x (1 - s) cancels near x = -1.28
    )


def test_relu_float32_keeps_negative_zero_as_torch():
    y = unary.relu(gf.tensor(numpy.array([-0.0, 0.0, -1.0, 2.0, math.nan], numpy.float32)))
    a = y.numpy()
    assert numpy.signbit(a[0]) and not numpy.signbit(a[1]) and a[2] == 0 and a[3] == 2
    assert numpy.isnan(a[4])


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.1, 0.5, 1.0, -0.2, 1.5])
def test_leaky_relu_float32_same_bits_as_the_select(slope):
    x = _wide_grid()
    s32 = numpy.float32(slope)
    xt = gf.tensor(x, requires_grad=True)
    y = unary.leaky_relu(xt, slope)
    g = numpy.linspace(-2, 2, x.size).astype(numpy.float32)
    y.backward(gf.tensor(g))
    with numpy.errstate(all="ignore"):
        want = numpy.where(x > 0, x, x * s32)
        dwant = numpy.where(x > 0, g, g * s32)
    assert numpy.array_equal(y.detach().numpy(), want, equal_nan=True)
    assert numpy.array_equal(xt.grad.numpy(), dwant, equal_nan=True)


@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5, 0.0])
@compiled.disabled()  # the NumPy route: its gradient at NaN is g, as the compiled elu's and
def test_elu_float32_values_and_gradient(alpha):  # PyTorch's (x <= 0 ? ... : g)
    x = _wide_grid()
    a32 = float(numpy.float32(alpha))
    _check(
        lambda t: unary.elu(t, alpha),
        lambda a: numpy.where(a > 0, a, a32 * numpy.expm1(a)),
        lambda a: numpy.where(a <= 0, a32 * numpy.exp(a), 1.0),
        x,
        rtol=2e-6,
        atol=1e-7,
        grad_tol=(2e-6, 3e-7 * max(1.0, abs(alpha))),  # y + alpha, from the saved y, cancels
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("alpha", [-0.5, -2.0])
def test_elu_with_a_negative_alpha_takes_its_gradient_from_the_input(alpha, dtype):
    """alpha < 0: y = alpha expm1(x) > 0 for x < 0, so y > 0 no longer says x > 0; backward
    reads x (the gradient there is alpha e^x, as PyTorch's), on both routes."""
    x = numpy.array([-3.0, -2.0, -0.5, -1e-3, 0.5, 2.0], dtype)
    want = numpy.where(x > 0, 1.0, alpha * numpy.exp(x.astype(numpy.float64)))
    for ctx in (compiled.disabled(), contextlib.nullcontext()):
        with ctx:
            t = gf.tensor(x, requires_grad=True)
            unary.elu(t, alpha).sum().backward()
        numpy.testing.assert_allclose(t.grad.numpy(), want, rtol=1e-6)
    wide = gf.tensor(numpy.linspace(-2, 2, 8), requires_grad=True)  # 0 left out: a kink
    assert gf.autograd.gradgradcheck(lambda v: unary.elu(v, alpha), (wide,))


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 3.0), (-1.0, 20.0)])
def test_softplus_float32_values_and_gradient(beta, threshold):
    x = _wide_grid()
    b = float(numpy.float32(beta))

    def fwd(a):
        ba = a * b
        soft = (numpy.maximum(ba, 0) + numpy.log1p(numpy.exp(-numpy.abs(ba)))) / b
        return numpy.where(ba > threshold, a, soft)

    def grad(a):
        ba = a * b
        return numpy.where(ba > threshold, 1.0, _sig64(ba))

    _check(lambda t: unary.softplus(t, beta, threshold), fwd, grad, x, rtol=2e-6, atol=1e-30)


@pytest.mark.parametrize(
    "fn",
    [
        unary.sigmoid,
        unary.silu,
        unary.relu,
        lambda t: unary.leaky_relu(t, 0.1),
        unary.elu,
        unary.softplus,
        unary.gelu,
        lambda t: unary.gelu(t, approximate="tanh"),
    ],
)
def test_activations_on_0d_and_strided_float32(fn):
    for a in (numpy.float32(-0.7), numpy.arange(-12, 12, dtype=numpy.float32).reshape(4, 6).T):
        x = gf.tensor(numpy.array(a), requires_grad=True)
        y = fn(x)
        assert y.shape == x.shape and y.dtype == gf.float32
        (y * 1.5).sum().backward()
        assert x.grad.shape == x.shape


def _selu_reference(x, scale, alpha, input_scale, g):
    """The select form (the cuda path's) in x's dtype: forward and the gradient for g."""
    t = x.dtype.type
    with numpy.errstate(all="ignore"):
        neg = t(scale * alpha) * numpy.expm1(numpy.minimum(x, t(0)) * t(input_scale))
        y = numpy.where(x > 0, x * t(scale), neg)
        slope = numpy.where(y > 0, t(scale), (y + t(scale * alpha)) * t(input_scale))
    return y, g * slope


@pytest.mark.parametrize("which", ["selu", "celu1", "celu0.7", "celu3", "celu-0.5"])
def test_selu_celu_float32_same_values_as_the_select(which):
    from gradflow.ops import activations

    x = _wide_grid()
    g = numpy.linspace(-2, 2, x.size).astype(numpy.float32)
    xt = gf.tensor(x, requires_grad=True)
    if which == "selu":
        y = activations.selu(xt)
        consts = (activations._SELU_SCALE, activations._SELU_ALPHA, 1.0)
    else:
        a = float(which[4:])
        y = activations.celu(xt, a)
        consts = (1.0, a, 1.0 / a)
    y.backward(gf.tensor(g))
    want, dwant = _selu_reference(x, *consts, g)
    numpy.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-7, atol=0, equal_nan=True)
    numpy.testing.assert_allclose(xt.grad.numpy(), dwant, rtol=1e-7, atol=0, equal_nan=True)


def test_mask_times_same_bits_as_the_mixed_multiply():
    g = numpy.array([1.5, -2.0, math.inf, -math.inf, math.nan, 0.0, -0.0], numpy.float32)
    for mask in (numpy.ones(7, bool), numpy.zeros(7, bool), numpy.arange(7) % 2 == 0):
        with numpy.errstate(all="ignore"):
            want = g * mask
        got = unary.mask_times(g, mask)
        assert got.dtype == want.dtype
        assert numpy.array_equal(got, want, equal_nan=True)
        assert numpy.array_equal(numpy.signbit(got), numpy.signbit(want))
    g0 = numpy.broadcast_to(numpy.float32(2), (3, 4))
    m0 = numpy.arange(12).reshape(3, 4) > 5
    assert numpy.array_equal(unary.mask_times(g0, m0), g0 * m0)
    assert unary.mask_times(numpy.float64(3.0), numpy.bool_(True)) == 3.0


def test_softplus_threshold_on_0d_and_broadcast_gradient():
    for beta in (1.0, 2.0, -1.0):
        x = gf.tensor(numpy.float32(30.0 if beta > 0 else -30.0), requires_grad=True)
        y = unary.softplus(x, beta, 20.0)
        assert y.item() == x.item()
        y.backward()
        assert x.grad.item() == 1.0
    x = gf.tensor(numpy.array([[1.0, 25.0], [-3.0, 40.0]], numpy.float32), requires_grad=True)
    unary.softplus(x).sum().backward()
    assert x.grad.numpy()[0, 1] == 1.0 and x.grad.numpy()[1, 1] == 1.0
