"""Issue 17's CPU fast paths in arithmetic and reductions: same values as NumPy's/PyTorch's
(to float rounding), same special values, same gradients."""

import math
import warnings

import numpy
import pytest

try:  # the yardstick where installed; the tests without it run anyway
    import torch
except ImportError:
    torch = None

import gradflow as gf
from gradflow.backend import compiled
from gradflow.ops.arithmetic import _scalar_power

EXPONENTS = [2, 3, -1, -2, 1, 0, 4, 5, -3, -4, 7.0, 10, 2.5, -2.5, 0.5, -0.5, 1.5, 0.3, 1e10 + 1]
SPECIAL = [0.0, -0.0, 1, -1, 2, -2, 0.5, -0.5, math.inf, -math.inf, math.nan, 1e-30, -1e-30]
SPECIAL += [1e30, -1e30, 3.4e38, -3.4e38, 1e-45, -1e-45, 1e-20, -7.5]

needs_torch = pytest.mark.skipif(torch is None, reason="torch, the yardstick, is not installed")


def _values(dtype):
    rng = numpy.random.default_rng(0)
    spread = rng.standard_normal(20000) * numpy.exp(rng.uniform(-40, 40, 20000))
    return numpy.concatenate([spread, SPECIAL]).astype(dtype)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("b", EXPONENTS)
def test_scalar_power_matches_numpy(dtype, b):
    a = _values(dtype)
    with numpy.errstate(all="ignore"):
        ref = a**b
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _scalar_power(a, b)
    if out is None:  # left to NumPy (0.5 is its sqrt)
        assert b == 0.5
        return
    assert out.dtype == a.dtype and out is not a
    known = ~numpy.isnan(ref)
    numpy.testing.assert_array_equal(numpy.isnan(out), ~known)
    numpy.testing.assert_array_equal(numpy.signbit(out[known]), numpy.signbit(ref[known]))
    # within 1 ulp of NumPy's pow per multiplication (a*a*a rounds twice)
    finite = known & numpy.isfinite(ref) & (ref != 0)
    numpy.testing.assert_array_equal(out[~finite & known], ref[~finite & known])
    ulp = numpy.abs(out[finite].astype(numpy.float64) - ref[finite]) / numpy.spacing(
        numpy.abs(ref[finite])
    )
    assert ulp.max() <= 2


@needs_torch
@pytest.mark.parametrize("b", [2, 3, -1, -2, 4, 5, -3, 2.5, 1.5, 0, 1, -0.5])
def test_pow_scalar_gradient_matches_torch(b):
    rng = numpy.random.default_rng(1)
    a = rng.standard_normal(4096).astype(numpy.float32) * 3
    a[:4] = [0.0, -0.0, 1.0, -1.0]
    if b == -0.5:  # PyTorch's 1/sqrt(-0.0) is -inf where pow's is inf (as before issue 17)
        a[1] = 2.0
    g = rng.standard_normal(4096).astype(numpy.float32)
    x = gf.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    out = x**b
    ref = t**b
    out.backward(gf.tensor(g))
    ref.backward(torch.tensor(g))
    assert out.dtype == gf.float32
    numpy.testing.assert_allclose(
        out.detach().numpy(), ref.detach().numpy(), rtol=1e-6, equal_nan=True
    )
    numpy.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=2e-6, equal_nan=True)


def test_pow_scalar_forward_leaves_input_alone():
    x = gf.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x**1
    assert y.array is not x.array
    y.backward(gf.ones(3))
    numpy.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 1.0])
    z = x.detach() ** 0
    numpy.testing.assert_array_equal(z.numpy(), [1.0, 1.0, 1.0])


def test_pow_scalar_float64_gradcheck():
    x = gf.tensor(numpy.random.default_rng(2).standard_normal((3, 4)), requires_grad=True)
    for b in (2, 3, -2, 4, 5):
        assert gf.autograd.gradcheck(lambda t, b=b: t**b, (x,))


@needs_torch
@pytest.mark.parametrize("dim", [None, 0, 1, (0, 2)])
@pytest.mark.parametrize("zeros", [0, 1, 2])
def test_prod_gradient_matches_torch(dim, zeros):
    rng = numpy.random.default_rng(3)
    a = (rng.random((4, 5, 6)) + 0.5).astype(numpy.float32)
    a.flat[7 : 7 + zeros] = 0.0  # zeros in one slice (none, one, two)
    x = gf.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    out = x.prod() if dim is None else x.prod(dim)
    if dim is None:
        ref = t.prod()
    elif isinstance(dim, int):
        ref = t.prod(dim)
    else:  # torch's prod takes one dim: reduce one after the other
        ref = t.prod(dim[1]).prod(dim[0])
    g = rng.standard_normal(tuple(ref.shape)).astype(numpy.float32)
    out.backward(gf.tensor(g))
    ref.backward(torch.tensor(g))
    numpy.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5)
    numpy.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_prod_gradient_after_in_place_write_to_output():
    # the output is modified in place after prod: no error (as before), and the gradient still
    # uses the product that prod computed
    a = numpy.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], numpy.float32)
    x = gf.tensor(a, requires_grad=True)
    y = x.prod(1)
    y.mul_(2)
    y.sum().backward()
    expected = 2 * numpy.array([[6.0, 3.0, 2.0], [30.0, 24.0, 20.0]], numpy.float32)
    numpy.testing.assert_allclose(x.grad.numpy(), expected)
    x.grad = None
    y = x.prod(1)
    with gf.no_grad():
        y.add_(100)
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), expected / 2)


def test_prod_float64_gradcheck():
    a = numpy.random.default_rng(4).standard_normal((3, 4))
    a[1, 2] = 0.0
    x = gf.tensor(a, requires_grad=True)
    for dim in (0, 1):
        assert gf.autograd.gradcheck(lambda t, d=dim: t.prod(d), (x,))
    assert gf.autograd.gradcheck(lambda t: t.prod(), (x,))


@pytest.mark.parametrize(
    "shape, dim",
    [((1024, 1024), 1), ((1024, 1024), 0), ((3, 200, 50, 7), 1), ((5, 70, 300), 2)]
    + [((70000,), 0), ((1000, 130), 1), ((33, 128, 40), 1), ((12, 3000), -1)],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_blocked_cumsum_accuracy(shape, dim, reverse):
    from gradflow.ops.reduction import _blocked_cumsum

    rng = numpy.random.default_rng(5)
    a = (rng.standard_normal(shape) * numpy.exp(rng.uniform(-3, 3, shape))).astype(numpy.float32)
    dim = dim % len(shape)
    out = _blocked_cumsum(a, dim, reverse)
    assert out is not None and out.dtype == numpy.float32 and out.shape == shape
    assert out.flags.c_contiguous and not numpy.shares_memory(out, a)
    src = numpy.flip(a, dim) if reverse else a
    exact = numpy.cumsum(src.astype(numpy.float64), axis=dim)  # PyTorch's float64 sums
    seq = numpy.cumsum(src, axis=dim)  # NumPy's float32 sequential sums
    if reverse:
        exact, seq = numpy.flip(exact, dim), numpy.flip(seq, dim)
    scale = numpy.cumsum(numpy.abs(src).astype(numpy.float64), axis=dim)
    if reverse:
        scale = numpy.flip(scale, dim)
    err = numpy.abs(out - exact) / scale
    assert err.max() <= max(2 * (numpy.abs(seq - exact) / scale).max(), 1e-6)
    # a slice long enough for the fast path keeps NaN and inf where NumPy's scan has them
    b = a.copy()
    index = [0] * len(shape)
    index[dim] = shape[dim] // 2
    b[tuple(index)] = numpy.inf
    index[dim] = shape[dim] // 3
    b[tuple(index)] = numpy.nan
    src = numpy.flip(b, dim) if reverse else b
    ref = numpy.cumsum(src, axis=dim)
    if reverse:
        ref = numpy.flip(ref, dim)
    got = _blocked_cumsum(b, dim, reverse)
    numpy.testing.assert_array_equal(numpy.isnan(got), numpy.isnan(ref))
    numpy.testing.assert_array_equal(numpy.isinf(got), numpy.isinf(ref))


@compiled.disabled()
def test_blocked_cumsum_leaves_small_and_float64_to_numpy():
    from gradflow.ops.reduction import _blocked_cumsum

    assert _blocked_cumsum(numpy.ones((4, 100), numpy.float32), 1) is None
    assert _blocked_cumsum(numpy.ones((1000, 1000), numpy.float64), 1) is None
    assert _blocked_cumsum(numpy.ones((1000, 1000), numpy.int64), 1) is None


@needs_torch
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_float32_matches_torch(dim):
    rng = numpy.random.default_rng(6)
    a = rng.standard_normal((300, 400)).astype(numpy.float32)
    g = rng.standard_normal((300, 400)).astype(numpy.float32)
    x = gf.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    out = x.cumsum(dim)
    ref = t.cumsum(dim)
    out.backward(gf.tensor(g))
    ref.backward(torch.tensor(g))
    assert out.dtype == gf.float32 and x.grad.dtype == gf.float32
    numpy.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=2e-5)
    numpy.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=2e-5)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_bitwise_select_is_numpy_where_bit_for_bit(dtype):
    from gradflow.ops.arithmetic import _bitwise_select

    rng = numpy.random.default_rng(7)
    n = 10000
    special = numpy.array([0.0, -0.0, math.inf, -math.inf, math.nan, 1e-45, -3.0], dtype)
    a = numpy.concatenate([rng.standard_normal(n), special]).astype(dtype)
    b = numpy.concatenate([rng.standard_normal(n), special[::-1]]).astype(dtype)
    c = rng.random(a.shape) > 0.5
    bits = {numpy.float32: numpy.int32, numpy.float64: numpy.int64}[dtype]
    for cond in (c, ~c, numpy.zeros_like(c), numpy.ones_like(c)):
        out = _bitwise_select(cond, a, b)
        assert out.dtype == a.dtype and out.shape == a.shape
        numpy.testing.assert_array_equal(out.view(bits), numpy.where(cond, a, b).view(bits))
        zero = _bitwise_select(cond, dtype(0), b)
        numpy.testing.assert_array_equal(zero.view(bits), numpy.where(cond, dtype(0), b).view(bits))
    # a strided condition and operands
    out = _bitwise_select(c[::2], a[::2], b[::2])
    numpy.testing.assert_array_equal(out.view(bits), numpy.where(c[::2], a[::2], b[::2]).view(bits))
    # operands it leaves to numpy.where
    assert _bitwise_select(c, a, b[:1]) is None
    assert _bitwise_select(c, dtype(1), b) is None
    assert _bitwise_select(c, a.astype(numpy.float16), b) is None
    assert _bitwise_select(c[:10], a[:10], b[:10]) is None


@needs_torch
def test_where_matches_torch_values_and_gradients():
    rng = numpy.random.default_rng(8)
    a = rng.standard_normal((64, 128)).astype(numpy.float32)
    b = rng.standard_normal((64, 128)).astype(numpy.float32)
    g = rng.standard_normal((64, 128)).astype(numpy.float32)
    xa, xb = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out = gf.where(xa > xb, xa, xb * 2)
    ref = torch.where(ta > tb, ta, tb * 2)
    out.backward(gf.tensor(g))
    ref.backward(torch.tensor(g))
    numpy.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    numpy.testing.assert_array_equal(xa.grad.numpy(), ta.grad.numpy())
    numpy.testing.assert_array_equal(xb.grad.numpy(), tb.grad.numpy())


@pytest.mark.parametrize(
    "shapes", [((4096,), (4096,)), ((64, 64), (64, 1)), ((64, 1), (1, 64)), ((5,), ())]
)
@needs_torch
def test_div_gradients_match_torch(shapes):
    rng = numpy.random.default_rng(9)
    a = rng.standard_normal(shapes[0]).astype(numpy.float32)
    b = (rng.standard_normal(shapes[1]) + 3).astype(numpy.float32)
    if b.ndim:
        b.flat[0] = 3e19  # b * b overflows float32; (a / b) / b does not
    xa, xb = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out = xa / xb
    ref = ta / tb
    g = rng.standard_normal(tuple(ref.shape)).astype(numpy.float32)
    out.backward(gf.tensor(g))
    ref.backward(torch.tensor(g))
    numpy.testing.assert_allclose(xa.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(xb.grad.numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-6)
    if shapes[0] == shapes[1]:  # no sum: the tiny gradient at b = 3e19 is PyTorch's, not 0
        assert xb.grad.numpy()[0] != 0
        numpy.testing.assert_allclose(xb.grad.numpy()[0], tb.grad.numpy()[0], rtol=1e-6)
    # a Python number over a tensor
    xb.grad = None
    tb.grad = None
    (2.5 / xb).sum().backward()
    (2.5 / tb).sum().backward()
    numpy.testing.assert_allclose(xb.grad.numpy(), tb.grad.numpy(), rtol=1e-6, atol=1e-30)
