"""The fast float32 routes of fmod, remainder (a float64 quotient, in cache-sized blocks),
logaddexp (torch's max + log1p(exp(-|a - b|)) in place) and hypot (float64 squares):
values, signs of zero and gradients against torch and against NumPy references, with the
hostile values that leave the fast routes (NaN, inf, zero divisors, huge quotients)."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow.ops import arithmetic, pointwise_math

F32 = numpy.float32


def _hostile_pairs(rng, n=4000):
    """float32 (a, b) spanning magnitudes, signs, zeros, ties and tiny/huge ratios."""
    mag_a = 10.0 ** rng.uniform(-38, 38, n)
    mag_b = 10.0 ** rng.uniform(-38, 38, n)
    a = (mag_a * rng.choice([-1, 1], n)).astype(F32)
    b = (mag_b * rng.choice([-1, 1], n)).astype(F32)
    small_a = (rng.uniform(-50, 50, n)).astype(F32)
    small_b = (rng.uniform(-3, 3, n)).astype(F32)
    exact_b = rng.choice([-2.0, -0.5, 0.25, 1.0, 3.0], n).astype(F32)
    exact_a = (rng.integers(-40, 40, n) * exact_b).astype(F32)  # zero results, +-0
    return numpy.concatenate([a, small_a, exact_a]), numpy.concatenate([b, small_b, exact_b])


def _specials():
    vals = [0.0, -0.0, 1.0, -1.0, 2.5, -7.0, 1e-30, -1e-30, 3e38, math.inf, -math.inf, math.nan]
    a, b = numpy.meshgrid(numpy.array(vals, F32), numpy.array(vals, F32))
    return a.ravel(), b.ravel()


def _same_bits(x, y):
    x, y = numpy.asarray(x), numpy.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    both_nan = numpy.isnan(x) & numpy.isnan(y)
    bad = ~both_nan & ((x != y) | (numpy.signbit(x) != numpy.signbit(y)))
    assert not bad.any(), (numpy.flatnonzero(bad)[:5], x[bad][:5], y[bad][:5])


def _remainder_reference(a, b):
    """torch's float remainder on float32: fmod(a, b) (exact, NumPy's libm) + b where the two
    differ in sign."""
    with numpy.errstate(all="ignore"):
        m = numpy.fmod(a, b)
        fix = (m != 0) & ((m < 0) != (b < 0))
        return numpy.where(fix, m + b, m).astype(a.dtype)


@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_division_remainders_match_numpy_references_bitwise(name, rng):
    a, b = _hostile_pairs(rng)
    ours = getattr(gf, name)(gf.tensor(a), gf.tensor(b)).numpy()
    with numpy.errstate(all="ignore"):
        expected = numpy.fmod(a, b) if name == "fmod" else _remainder_reference(a, b)
    _same_bits(ours, expected)
    # the fast route itself (no element leaves it: moderate quotients)
    keep = numpy.abs(a.astype(numpy.float64) / b) < 2.0**28
    fast = arithmetic._float32_division_remainder(
        a[keep], b[keep], "trunc" if name == "fmod" else "floor"
    )
    assert fast is not None
    _same_bits(fast, expected[keep])


@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_division_remainders_specials_and_fallbacks(name):
    a, b = _specials()
    with numpy.errstate(all="ignore"):
        expected = numpy.fmod(a, b) if name == "fmod" else _remainder_reference(a, b)
    _same_bits(getattr(gf, name)(gf.tensor(a), gf.tensor(b)).numpy(), expected)
    rounding = "trunc" if name == "fmod" else "floor"
    # the fast route declines what it can't do exactly
    one = numpy.ones(3, F32)
    with numpy.errstate(all="ignore"):
        _declines(rounding, one)
    assert arithmetic._float32_division_remainder(one.astype(numpy.float64), 1.0, "trunc") is None


def _declines(rounding, one):
    for bad_a, bad_b in [(one, one * 0), (one * math.inf, one), (one, one * math.inf),
                         (one * math.nan, one), (one * 1e30, one * 1e-3)]:  # fmt: skip
        assert arithmetic._float32_division_remainder(bad_a, bad_b, rounding) is None


@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_division_remainders_broadcast_scalars_and_float64(name, rng):
    op = getattr(gf, name)
    a = rng.uniform(-9, 9, (5, 1, 4)).astype(F32)
    b = rng.uniform(0.3, 2, (3, 1)).astype(F32) * rng.choice([-1, 1], (3, 1)).astype(F32)
    with numpy.errstate(all="ignore"):
        ref = numpy.fmod if name == "fmod" else _remainder_reference
        _same_bits(op(gf.tensor(a), gf.tensor(b)).numpy(), ref(a, b))
        _same_bits(op(gf.tensor(a), 0.3).numpy(), ref(a, numpy.full_like(a, 0.3)))
        _same_bits(op(2.75, gf.tensor(b)).numpy(), ref(numpy.full_like(b, 2.75), b))
        _same_bits(
            op(gf.tensor(a[0, 0, 0]), gf.tensor(b[0, 0])).numpy(),
            ref(a[0, 0, :1], b[0]).reshape(()),
        )
        _same_bits(op(gf.tensor(a[:0]), gf.tensor(b)).numpy(), ref(a[:0], b))
        a64, b64 = a.astype(numpy.float64), b.astype(numpy.float64)
        _same_bits(op(gf.tensor(a64), gf.tensor(b64)).numpy(), ref(a64, b64))
    # non-contiguous input
    at = numpy.ascontiguousarray(a[:, 0, :].T)[:, ::2]
    _same_bits(op(gf.tensor(at), 1.5).numpy(), ref(at, numpy.full_like(at, 1.5)))


def test_division_remainder_gradients_and_double_backward(device, rng):
    for name, rounding in (("fmod", numpy.trunc), ("remainder", numpy.floor)):
        a = rng.uniform(-9, 9, (4, 6)).astype(F32)
        b = rng.uniform(0.3, 2, (1, 6)).astype(F32)
        x = gf.tensor(a, device=device, requires_grad=True)
        y = gf.tensor(b, device=device, requires_grad=True)
        g = rng.standard_normal((4, 6)).astype(F32)
        getattr(gf, name)(x, y).backward(gf.tensor(g, device=device))
        numpy.testing.assert_array_equal(x.grad.cpu().numpy(), g)
        expected = (-g * rounding(a / b)).sum(0, keepdims=True)
        numpy.testing.assert_allclose(y.grad.cpu().numpy(), expected, rtol=1e-6, atol=1e-6)
        x64 = gf.tensor(a.astype(numpy.float64), device=device, requires_grad=True)
        y64 = gf.tensor(b.astype(numpy.float64), device=device, requires_grad=True)
        (gx, gy) = gf.autograd.grad(
            (getattr(gf, name)(x64, y64) ** 2).sum(), [x64, y64], create_graph=True
        )
        (gx.sum() + gy.sum()).backward()
        assert x64.grad is not None and y64.grad is not None


def test_remainder_gradient_is_the_true_floor_quotient():
    # floor(-1e-38 / 1e21) is -1 (torch's and Python's floor division); the float32 quotient
    # rounds to -0.0
    for a_val in ([-1e-38, 5.0, -5.0], [-1e-38, 5.0, math.inf]):  # fast route, fallback
        a = numpy.array(a_val, F32)
        b = numpy.array([1e21, 2.0, 2.0], F32)
        y = gf.tensor(b, requires_grad=True)
        gf.remainder(gf.tensor(a), y).sum().backward()
        numpy.testing.assert_array_equal(y.grad.numpy()[:2], [1.0, -2.0])


@pytest.mark.parametrize("fast", [True, False])
def test_division_remainders_match_torch(rng, fast):
    torch = pytest.importorskip("torch")
    a, b = _hostile_pairs(rng)
    if fast:  # all elements on the float64-quotient route
        keep = numpy.abs(a.astype(numpy.float64) / b) < 2.0**28
        a, b = a[keep], b[keep]
        assert arithmetic._float32_division_remainder(a, b, "floor") is not None
    else:  # NaN, inf and zero divisors send the whole array to the fallback
        sa, sb = _specials()
        a, b = numpy.concatenate([a, sa]), numpy.concatenate([b, sb])
    for name in ("fmod", "remainder"):
        x = gf.tensor(a, requires_grad=True)
        y = gf.tensor(b, requires_grad=True)
        tx = torch.tensor(a, requires_grad=True)
        ty = torch.tensor(b, requires_grad=True)
        out, tout = getattr(gf, name)(x, y), getattr(torch, name)(tx, ty)
        # torch's vectorized CPU loop gives NaN where a / b overflows float32 (its scalar
        # tail, std::fmod and NumPy give the exact remainder, as gradflow does): compared
        # against the NumPy reference above, left out here
        with numpy.errstate(all="ignore"):
            keep = ~(numpy.isinf(a / b) & numpy.isfinite(a) & (b != 0))
        _same_bits(out.detach().numpy()[keep], tout.detach().numpy()[keep])
        g = rng.standard_normal(a.shape).astype(F32)
        out.backward(gf.tensor(g))
        tout.backward(torch.tensor(g))
        _same_bits(x.grad.numpy(), tx.grad.numpy())
        _same_bits(y.grad.numpy(), ty.grad.numpy())


def _logaddexp_pairs(rng):
    x = rng.standard_normal(3000).astype(F32) * 30
    y = (x + rng.standard_normal(3000).astype(F32) * rng.choice([0.0, 1e-3, 1, 100], 3000)).astype(
        F32
    )
    sa, sb = _specials()
    extra_a = numpy.array([0, 0, -40, 1e-30, 88, -88, 1e30], F32)
    extra_b = numpy.array([-40, -100, 0, -1e-30, 88, 90, -1e30], F32)
    return numpy.concatenate([x, sa, extra_a]), numpy.concatenate([y, sb, extra_b])


def _close_to_logaddexp(out, ref, a, b):
    """Within an ulp or two of the larger input (max + log1p(...) rounds in float32 and
    cancels where the max is near -log1p(...)), the same infinities and NaNs."""
    ref = numpy.asarray(ref, numpy.float64)
    finite = numpy.isfinite(ref)
    numpy.testing.assert_array_equal(out[~finite], ref[~finite].astype(F32))
    scale = numpy.maximum(numpy.abs(a), numpy.abs(b)).astype(numpy.float64)[finite]
    err = numpy.abs(out[finite] - ref[finite])
    bound = 3e-7 * numpy.abs(ref[finite]) + 1.2e-7 * scale + 1e-44
    assert (err <= bound).all(), numpy.flatnonzero(err > bound)[:5]


def test_logaddexp_against_float64_reference(rng):
    a, b = _logaddexp_pairs(rng)
    x, y = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    out = gf.logaddexp(x, y)
    a64, b64 = a.astype(numpy.float64), b.astype(numpy.float64)
    with numpy.errstate(all="ignore"):
        ref = numpy.logaddexp(a64, b64)
    assert out.dtype == gf.float32
    _close_to_logaddexp(out.detach().numpy(), ref, a, b)
    g = rng.standard_normal(a.shape).astype(F32)
    out.backward(gf.tensor(g))
    with numpy.errstate(all="ignore"):
        ga = g / (1 + numpy.exp(b64 - a64))  # float32 b - a rounds: |b - a| 2^-24
        gb = g / (1 + numpy.exp(a64 - b64))
    numpy.testing.assert_allclose(x.grad.numpy(), ga, rtol=2e-5, atol=1e-37)
    numpy.testing.assert_allclose(y.grad.numpy(), gb, rtol=2e-5, atol=1e-37)
    # both infinite and equal: the value is that infinity, the gradients NaN (as torch)
    both = numpy.array([math.inf, -math.inf], F32)
    xi = gf.tensor(both, requires_grad=True)
    yi = gf.tensor(both, requires_grad=True)
    oi = gf.logaddexp(xi, yi)
    numpy.testing.assert_array_equal(oi.detach().numpy(), both)
    oi.sum().backward()
    assert numpy.isnan(xi.grad.numpy()).all() and numpy.isnan(yi.grad.numpy()).all()


def test_logaddexp_broadcast_scalars_double_backward(device, rng):
    a = rng.standard_normal((3, 1, 4))
    b = rng.standard_normal((5, 1))
    x = gf.tensor(a, device=device, requires_grad=True)
    y = gf.tensor(b, device=device, requires_grad=True)
    out = gf.logaddexp(x, y)
    numpy.testing.assert_allclose(out.detach().cpu().numpy(), numpy.logaddexp(a, b), rtol=1e-14)
    numpy.testing.assert_allclose(
        gf.logaddexp(x, 0.5).detach().cpu().numpy(), numpy.logaddexp(a, 0.5), rtol=1e-14
    )
    numpy.testing.assert_allclose(
        gf.logaddexp(-1.0, y).detach().cpu().numpy(), numpy.logaddexp(-1.0, b), rtol=1e-14
    )
    (gx, gy) = gf.autograd.grad((out**2).sum(), [x, y], create_graph=True)
    numpy.testing.assert_allclose(
        gx.detach().cpu().numpy(),
        (2 * numpy.logaddexp(a, b) / (1 + numpy.exp(b - a))).sum(1, keepdims=True),
        rtol=1e-12,
    )
    (gx.sum() + gy.sum()).backward()
    from gradflow.testing import gradcheck

    assert gradcheck(gf.logaddexp, [x, y])


def test_logaddexp_matches_torch(rng):
    torch = pytest.importorskip("torch")
    a, b = _logaddexp_pairs(rng)
    x, y = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, tout = gf.logaddexp(x, y), torch.logaddexp(tx, ty)
    _close_to_logaddexp(out.detach().numpy(), tout.detach().numpy(), a, b)
    g = rng.standard_normal(a.shape).astype(F32)
    out.backward(gf.tensor(g))
    tout.backward(torch.tensor(g))
    numpy.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=2e-6, atol=1e-37)
    numpy.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=2e-6, atol=1e-37)
    # double backward
    x64 = torch.tensor(a[:50].astype(numpy.float64), requires_grad=True)
    y64 = torch.tensor(b[:50].astype(numpy.float64), requires_grad=True)
    (tgx,) = torch.autograd.grad((torch.logaddexp(x64, y64) ** 2).sum(), [x64], create_graph=True)
    tgx.sum().backward()
    gx64 = gf.tensor(a[:50].astype(numpy.float64), requires_grad=True)
    gy64 = gf.tensor(b[:50].astype(numpy.float64), requires_grad=True)
    (ggx,) = gf.autograd.grad((gf.logaddexp(gx64, gy64) ** 2).sum(), [gx64], create_graph=True)
    ggx.sum().backward()
    numpy.testing.assert_allclose(ggx.detach().numpy(), tgx.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(gx64.grad.numpy(), x64.grad.numpy(), rtol=1e-10, atol=1e-300)
    numpy.testing.assert_allclose(gy64.grad.numpy(), y64.grad.numpy(), rtol=1e-10, atol=1e-300)


def _hypot_pairs(rng):
    a = (10.0 ** rng.uniform(-45, 38.5, 4000) * rng.choice([-1, 1], 4000)).astype(F32)
    b = (10.0 ** rng.uniform(-45, 38.5, 4000) * rng.choice([-1, 1], 4000)).astype(F32)
    c = rng.standard_normal(4000).astype(F32)
    d = rng.standard_normal(4000).astype(F32)
    return numpy.concatenate([a, c]), numpy.concatenate([b, d])


def test_hypot_against_float64_reference_and_specials(rng):
    a, b = _hypot_pairs(rng)
    out = gf.hypot(gf.tensor(a), gf.tensor(b)).numpy()
    ref = numpy.hypot(a.astype(numpy.float64), b.astype(numpy.float64))
    assert out.dtype == F32
    numpy.testing.assert_array_equal(out, ref.astype(F32))  # correctly rounded here
    fast = pointwise_math._hypot_float32(a, b)
    numpy.testing.assert_array_equal(fast, out)
    sa, sb = _specials()
    _same_bits(gf.hypot(gf.tensor(sa), gf.tensor(sb)).numpy(), numpy.hypot(sa, sb))
    assert pointwise_math._hypot_float32(numpy.array([math.inf], F32), F32(math.nan)) is None
    # broadcast, Python scalar, 0-d, empty, float64
    m = rng.standard_normal((3, 1)).astype(F32)
    n = rng.standard_normal((1, 4)).astype(F32)
    _same_bits(gf.hypot(gf.tensor(m), gf.tensor(n)).numpy(), numpy.hypot(m, n))
    _same_bits(gf.hypot(gf.tensor(m), 2.0).numpy(), numpy.hypot(m, F32(2)))
    _same_bits(
        gf.hypot(gf.tensor(m[0, 0]), gf.tensor(n[0, 0])).numpy(), numpy.hypot(m[0, 0], n[0, 0])
    )
    assert gf.hypot(gf.tensor(m[:0]), gf.tensor(n)).shape == (0, 4)
    m64 = m.astype(numpy.float64)
    _same_bits(gf.hypot(gf.tensor(m64), gf.tensor(m64)).numpy(), numpy.hypot(m64, m64))


def test_hypot_gradients_and_double_backward(device, rng):
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((1, 4))
    x = gf.tensor(a, device=device, requires_grad=True)
    y = gf.tensor(b, device=device, requires_grad=True)
    out = gf.hypot(x, y)
    out.sum().backward()
    h = numpy.hypot(a, b)
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), a / h, rtol=1e-12)
    numpy.testing.assert_allclose(y.grad.cpu().numpy(), (b / h).sum(0, keepdims=True), rtol=1e-12)
    from gradflow.testing import gradcheck

    assert gradcheck(gf.hypot, [x, y])
    x.grad = y.grad = None
    (gx,) = gf.autograd.grad((gf.hypot(x, y) ** 2).sum(), [x], create_graph=True)
    gx.sum().backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), numpy.full((3, 4), 2.0), rtol=1e-12)


def test_hypot_matches_torch(rng):
    torch = pytest.importorskip("torch")
    a, b = _hypot_pairs(rng)
    sa, sb = _specials()
    a, b = numpy.concatenate([a, sa]), numpy.concatenate([b, sb])
    x, y = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, tout = gf.hypot(x, y), torch.hypot(tx, ty)
    _same_bits(out.detach().numpy(), tout.detach().numpy())
    keep = numpy.isfinite(a) & numpy.isfinite(b) & (numpy.abs(a) > 1e-18) & (numpy.abs(b) > 1e-18)
    g = rng.standard_normal(a.shape).astype(F32)
    out.backward(gf.tensor(g))
    tout.backward(torch.tensor(g))
    numpy.testing.assert_allclose(x.grad.numpy()[keep], tx.grad.numpy()[keep], rtol=3e-7)
    numpy.testing.assert_allclose(y.grad.numpy()[keep], ty.grad.numpy()[keep], rtol=3e-7)
    # zeros: 0 / 0 is NaN in both
    assert numpy.array_equal(numpy.isnan(x.grad.numpy()), numpy.isnan(tx.grad.numpy()))
