"""The torch.* functions of gradflow/ops/pointwise_extras.py, differences.py, statistics.py and
construction.py: values, dtypes and gradients against torch, torch-free checks (float64 NumPy
references, gradcheck), edge cases (empty, 0-d, NaN, non-contiguous) and PyTorch's error types."""

import math
import warnings

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.testing import gradcheck


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _np(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else numpy.asarray(x)


def _same(ours, theirs, rtol=1e-6, atol=1e-6, dtype=True):
    a, b = _np(ours), theirs.detach().numpy()
    assert a.shape == b.shape, (a.shape, b.shape)
    if dtype:
        assert str(a.dtype) == str(theirs.dtype).replace("torch.", ""), (a.dtype, theirs.dtype)
    numpy.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def _pair(torch, a, device="cpu", grad=True):
    a = numpy.asarray(a)
    floating = a.dtype.kind == "f"
    x = gf.tensor(a, device=device, requires_grad=grad and floating)
    return x, torch.tensor(a, requires_grad=grad and floating)


def _grads(torch, fn_gf, fn_torch, arrays, device="cpu", rtol=1e-6, atol=1e-7):
    """Values and gradients (of a random weighting of the output) of fn_gf and fn_torch."""
    xs = [gf.tensor(a, device=device, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = fn_gf(*xs), fn_torch(*ts)
    _same(y, ty, rtol, atol)
    w = numpy.random.default_rng(1).standard_normal(ty.shape)
    gs = gf.grad((y * gf.tensor(w, dtype=y.dtype, device=device)).sum(), xs)
    tgs = torch.autograd.grad((ty * torch.tensor(w, dtype=ty.dtype)).sum(), ts)
    for g, tg in zip(gs, tgs, strict=True):
        _same(g, tg, rtol, atol)


# ---- diff ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs", [{}, {"dim": 0}, {"n": 2, "dim": 1}, {"n": 5}, {"n": 0}, {"dim": -2, "n": 3}]
)
def test_diff_values_and_gradients(torch, device, rng, kwargs):
    a = rng.standard_normal((4, 6))
    _grads(torch, lambda x: gf.diff(x, **kwargs), lambda x: torch.diff(x, **kwargs), [a], device)


def test_diff_prepend_append_dtypes_and_non_contiguous(torch, rng):
    a = rng.standard_normal((3, 5))
    pre, app = rng.standard_normal((3, 2)), rng.standard_normal((3, 1))
    _grads(
        torch,
        lambda x, p, q: gf.diff(x, 2, 1, p, q),
        lambda x, p, q: torch.diff(x, 2, 1, p, q),
        [a, pre, app],
    )
    x = gf.tensor(a).t()  # non-contiguous
    _same(gf.diff(x, dim=0), torch.diff(torch.tensor(a).t(), dim=0))
    ints = numpy.array([1, 4, 9, 16])
    _same(gf.diff(gf.tensor(ints)), torch.diff(torch.tensor(ints)))  # int64 stays int64
    _same(
        gf.diff(gf.tensor([1, 2]), append=gf.tensor([1.5])),
        torch.diff(torch.tensor([1, 2]), append=torch.tensor([1.5])),
    )  # int and float32 meet at float32, as torch.cat
    b = numpy.array([True, False, False, True])
    _same(gf.diff(gf.tensor(b)), torch.diff(torch.tensor(b)))
    with pytest.raises(RuntimeError, match="same dimension as input"):
        gf.diff(gf.tensor(a), prepend=gf.tensor(0.0, dtype=gf.float64))
    with pytest.raises(RuntimeError, match="must match"):
        gf.diff(gf.tensor(a), prepend=gf.ones(2, 1, dtype=gf.float64))


def test_diff_edges_and_errors():
    assert gf.diff(gf.ones(2, 0)).shape == (2, 0)
    assert gf.diff(gf.ones(1)).shape == (0,)
    assert gf.diff(gf.tensor([1.0, 2.0]), n=3).shape == (0,)
    x = gf.ones(1, requires_grad=True)
    (g,) = gf.grad(gf.diff(x).sum(), [x])
    assert g.tolist() == [0.0]
    with pytest.raises(RuntimeError, match="at least one-dimensional"):
        gf.diff(gf.tensor(1.0))
    with pytest.raises(RuntimeError, match="order must be non-negative"):
        gf.diff(gf.ones(3), n=-1)
    with pytest.raises(TypeError, match="'prepend' must be Tensor"):
        gf.diff(gf.ones(3), prepend=0)
    with pytest.raises(IndexError):
        gf.diff(gf.ones(3), dim=2)


def test_diff_gradcheck_and_double_backward(rng):
    x = gf.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    assert gradcheck(lambda v: gf.diff(v, 2, 1), [x])
    (g,) = gf.grad((gf.diff(x, dim=1) ** 2).sum(), [x], create_graph=True)
    (gg,) = gf.grad(g.sum(), [x])
    # sum_i d/dx of 2 * (D^T D x)_i: 2 * D^T D 1 = 0 for the interior, the rows' own sums
    expected = numpy.zeros((3, 5))
    numpy.testing.assert_allclose(gg.numpy(), expected, atol=1e-12)


# ---- simple names ------------------------------------------------------------------------------
def test_ravel_t_negative_logical_xor(torch, rng):
    a = rng.standard_normal((2, 3))
    x, tx = _pair(torch, a)
    _same(gf.ravel(x.t()), torch.ravel(tx.t()))
    _same(x.ravel(), tx.ravel())
    _same(gf.t(x), torch.t(tx))
    _same(gf.t(gf.tensor([1.0, 2.0])), torch.t(torch.tensor([1.0, 2.0])))
    _same(gf.negative(x), torch.negative(tx))
    _same(gf.logical_xor(x > 0, x < 1), torch.logical_xor(tx > 0, tx < 1))
    with pytest.raises(RuntimeError, match="<= 2 dimensions"):
        gf.t(gf.ones(2, 2, 2))


# ---- pointwise -----------------------------------------------------------------------------------
NAN = math.nan


def test_fmax_fmin_nan_and_gradients(torch, device):
    a = numpy.array([1.0, NAN, 3.0, NAN, 2.0, -1.0])
    b = numpy.array([2.0, 0.5, NAN, NAN, 2.0, -4.0])
    for name in ("fmax", "fmin"):
        _grads(
            torch,
            lambda x, y, n=name: getattr(gf, n)(x, y),
            lambda x, y, n=name: getattr(torch, n)(x, y),
            [a, b],
            device,
        )
        ours = getattr(gf.tensor(a), name)(gf.tensor(b))
        assert ours.tolist()[:3] == getattr(numpy, name)(a, b).tolist()[:3]
    _same(
        gf.fmax(gf.tensor([1, 5]), gf.tensor([2.0, 3.0])),
        torch.fmax(*map(torch.tensor, ([1, 5], [2.0, 3.0]))),
    )
    _same(
        gf.fmin(gf.tensor([1, 5]), gf.tensor([2, 3])),
        torch.fmin(torch.tensor([1, 5]), torch.tensor([2, 3])),
    )
    with pytest.raises(TypeError, match="'other' must be Tensor"):
        gf.fmax(gf.ones(2), 0.5)


def test_heaviside(torch):
    a = [-1.0, 0.0, 2.0, NAN, -0.0]
    _same(
        gf.heaviside(gf.tensor(a), gf.tensor(0.5)),
        torch.heaviside(torch.tensor(a), torch.tensor(0.5)),
    )
    _same(
        gf.tensor([-1, 0, 2]).heaviside(gf.tensor([5])),
        torch.tensor([-1, 0, 2]).heaviside(torch.tensor([5])),
    )
    with pytest.raises(RuntimeError, match="different dtypes"):
        gf.heaviside(gf.tensor([1.0]), gf.tensor([1]))
    x = gf.tensor([-1.0, 0.0, 3.0])
    x.heaviside_(gf.tensor([7.0]))
    assert x.tolist() == [0.0, 7.0, 1.0]


def test_ldexp_logaddexp2(torch, device, rng):
    a, b = rng.standard_normal(6) * 3, rng.standard_normal(6) * 3
    _grads(torch, gf.ldexp, torch.ldexp, [a, b], device)
    _grads(torch, gf.logaddexp2, torch.logaddexp2, [a, b], device)
    _same(
        gf.ldexp(gf.tensor([1, 2]), gf.tensor([3, 4])),
        torch.ldexp(torch.tensor([1, 2]), torch.tensor([3, 4])),
    )
    big = [1000.0, -numpy.inf, numpy.inf]
    _same(
        gf.logaddexp2(gf.tensor(big), gf.tensor([1000.0, -numpy.inf, 1.0])),
        torch.logaddexp2(torch.tensor(big), torch.tensor([1000.0, -numpy.inf, 1.0])),
    )
    numpy.testing.assert_allclose(
        gf.logaddexp2(gf.tensor(a), gf.tensor(b)).numpy(), numpy.logaddexp2(a, b), rtol=1e-13
    )
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        gf.logaddexp2(gf.tensor([1]), gf.tensor([2]))
    x = gf.tensor([1.0, 3.0])
    x.ldexp_(gf.tensor([2.0, -1.0]))
    assert x.tolist() == [4.0, 1.5]


def test_frexp_and_nextafter(torch, device):
    a = numpy.array([8.0, 0.0, -3.0, numpy.inf, NAN, 1e-310, 0.3])
    x = gf.tensor(a, device=device, requires_grad=True)
    out, tout = gf.frexp(x), torch.frexp(torch.tensor(a))
    assert type(out).__name__ == "frexp" and out.exponent.dtype == gf.int32
    _same(out.mantissa, tout.mantissa)
    _same(out.exponent, tout.exponent)
    (g,) = gf.grad(out.mantissa.sum(), [x])
    t = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.frexp(t).mantissa.sum(), [t])
    _same(g, tg)
    x32 = gf.tensor(a.astype(numpy.float32))
    assert gf.frexp(x32).mantissa.dtype == gf.float32
    with pytest.raises(RuntimeError, match="floating-point"):
        gf.frexp(gf.tensor([8]))
    b = numpy.array([2.0, -1.0, 0.0, 0.0])
    _same(
        gf.nextafter(gf.tensor(a[:4]), gf.tensor(b)),
        torch.nextafter(torch.tensor(a[:4]), torch.tensor(b)),
    )
    f32 = gf.nextafter(gf.tensor([1.0]), gf.tensor([2.0]))
    assert f32.dtype == gf.float32 and f32.item() == numpy.nextafter(numpy.float32(1), 2)
    with pytest.raises(NotImplementedError, match="'Long'"):
        gf.nextafter(gf.tensor([1]), gf.tensor([2]))


INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8"]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_bitwise_ops_match_torch(torch, rng, dtype):
    a = rng.integers(0, 100, 12).astype(dtype)
    b = rng.integers(0, 7, 12).astype(dtype)
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
                 "bitwise_right_shift", "gcd", "lcm"):  # fmt: skip
        ours = getattr(gf, name)(gf.tensor(a), gf.tensor(b))
        _same(ours, getattr(torch, name)(torch.tensor(a), torch.tensor(b)))
        _same(
            getattr(gf.tensor(a), name)(gf.tensor(b)),
            getattr(torch.tensor(a), name)(torch.tensor(b)),
        )
    _same(gf.bitwise_not(gf.tensor(a)), torch.bitwise_not(torch.tensor(a)))
    _same(gf.tensor(a) & 6, torch.tensor(a) & 6)
    _same(5 | gf.tensor(a), 5 | torch.tensor(a))
    _same(gf.tensor(a) ^ gf.tensor(b), torch.tensor(a) ^ torch.tensor(b))
    _same(gf.tensor(a) << 2, torch.tensor(a) << 2)
    _same(gf.tensor(a) >> gf.tensor(b), torch.tensor(a) >> torch.tensor(b))
    _same(~gf.tensor(a), ~torch.tensor(a))


def test_bitwise_mixed_dtypes_bool_and_edges(torch):
    pairs = [
        (numpy.array([True, False]), numpy.array([3, 1], numpy.int8)),
        (numpy.array([3, 12], numpy.uint8), numpy.array([5, -1], numpy.int8)),
        (numpy.array([1, 2], numpy.int32), numpy.array([64, 3])),
        (numpy.array([True, False, True]), numpy.array([True, True, False])),
    ]
    for a, b in pairs:
        for name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
            _same(
                getattr(gf, name)(gf.tensor(a), gf.tensor(b)),
                getattr(torch, name)(torch.tensor(a), torch.tensor(b)),
            )
    _same(gf.bitwise_not(gf.tensor([True, False])), torch.bitwise_not(torch.tensor([True, False])))
    big = numpy.array([1, -8, 5])
    for s in (64, 70, -1, 0):
        for name in ("bitwise_left_shift", "bitwise_right_shift"):
            _same(getattr(gf, name)(gf.tensor(big), s), getattr(torch, name)(torch.tensor(big), s))
    _same(
        gf.bitwise_left_shift(3, gf.tensor([1, 2])),
        torch.bitwise_left_shift(3, torch.tensor([1, 2])),
    )
    _same(
        gf.gcd(gf.tensor([4, 6, 0]), gf.tensor([6, -9, 0])),
        torch.gcd(torch.tensor([4, 6, 0]), torch.tensor([6, -9, 0])),
    )
    _same(
        gf.lcm(gf.tensor([4, -6], dtype=gf.int32), gf.tensor([6, 9])),
        torch.lcm(torch.tensor([4, -6], dtype=torch.int32), torch.tensor([6, 9])),
    )
    assert (gf.tensor([[1, 2]]) & gf.tensor([[3, 3]]).t()).shape == (2, 2)  # broadcast


def test_bitwise_errors_and_inplace():
    f = gf.tensor([1.0])
    for fn in (
        gf.bitwise_and,
        gf.bitwise_or,
        gf.bitwise_xor,
        gf.bitwise_left_shift,
        gf.gcd,
        gf.lcm,
    ):
        with pytest.raises(RuntimeError, match="not implemented for 'Float'"):
            fn(f, f)  # NotImplementedError, a RuntimeError, as in torch
    with pytest.raises(NotImplementedError, match="'Float'"):
        gf.bitwise_and(gf.tensor([3]), 1.5)
    with pytest.raises(NotImplementedError, match="'Float'"):
        gf.bitwise_not(f)
    with pytest.raises(NotImplementedError, match="'Float'"):
        _ = f & f
    with pytest.raises(NotImplementedError, match="'Bool'"):
        gf.bitwise_left_shift(gf.tensor([True]), gf.tensor([True]))
    with pytest.raises(NotImplementedError, match="'Bool'"):
        gf.gcd(gf.tensor([True]), gf.tensor([True]))
    with pytest.raises(TypeError, match="at least one Tensor"):
        gf.bitwise_and(1, 2)
    x = gf.tensor([12, 10])
    x.bitwise_and_(gf.tensor([4, 2])).bitwise_or_(1).bitwise_left_shift_(1)
    assert x.tolist() == [10, 6]
    x.gcd_(gf.tensor([4, 4]))
    assert x.tolist() == [2, 2]
    x.bitwise_not_()
    assert x.tolist() == [-3, -3]


def test_isin_and_isreal(torch, device):
    a = numpy.array([[1, 2, 3], [4, 5, 2]])
    for kw in ({}, {"invert": True}, {"assume_unique": False}):
        _same(
            gf.isin(gf.tensor(a, device=device), gf.tensor([2, 5], device=device), **kw),
            torch.isin(torch.tensor(a), torch.tensor([2, 5]), **kw),
        )
    _same(gf.isin(gf.tensor(a), 2), torch.isin(torch.tensor(a), 2))
    _same(gf.isin(2, gf.tensor([1, 2])), torch.isin(2, torch.tensor([1, 2])))
    _same(
        gf.isin(gf.tensor([1.0, NAN, 3.0]), gf.tensor([NAN, 3])),
        torch.isin(torch.tensor([1.0, NAN, 3.0]), torch.tensor([NAN, 3])),
    )
    assert gf.isin(element=3, test_elements=gf.tensor([3])).item() is True
    assert gf.isin(gf.ones(0), gf.ones(2)).shape == (0,)
    _same(gf.isreal(gf.tensor(a)), torch.isreal(torch.tensor(a)))
    assert gf.tensor(1.5).isreal().item() is True


# ---- statistics ---------------------------------------------------------------------------------
def test_nanmedian_matches_torch(torch, device, rng):
    a = rng.standard_normal((5, 7))
    a[rng.random(a.shape) < 0.3] = NAN
    a[2] = NAN  # an all-NaN row
    a[3, :4] = [1.0, 1.0, 1.0, NAN]  # ties
    x = gf.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    for dim, keepdim in ((1, False), (0, True), (-1, True)):
        out, tout = gf.nanmedian(x, dim, keepdim), torch.nanmedian(t, dim, keepdim)
        assert type(out).__name__ == "nanmedian"
        _same(out.values, tout.values)
        # an all-NaN slice's index is whichever NaN torch's partition leaves first: unspecified
        some = ~numpy.isnan(_np(out.values))
        _same(out.indices[gf.tensor(some)], tout.indices[torch.tensor(some)])
    _same(gf.nanmedian(x), torch.nanmedian(t))
    (g,) = gf.grad(x.nanmedian(1).values.nansum(), [x])
    (tg,) = torch.autograd.grad(t.nanmedian(1).values.nansum(), [t])
    _same(g, tg)
    finite = gf.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda v: gf.nanmedian(v, 1).values, [finite])


def test_nanmedian_edges(torch):
    for a in ([NAN, NAN], [], [3, 1, 2, 4], [[3, 1, 2, 4]], 2.5):
        tt = torch.tensor(a)
        _same(gf.nanmedian(gf.tensor(a)), torch.nanmedian(tt))
    out = gf.nanmedian(gf.tensor([[3, 1, 2, 4]]), 1)
    tout = torch.nanmedian(torch.tensor([[3, 1, 2, 4]]), 1)
    _same(out.values, tout.values)
    _same(out.indices, tout.indices)
    out = gf.nanmedian(gf.tensor(2.0), 0)
    assert out.values.item() == 2.0 and out.indices.item() == 0
    with pytest.raises(ValueError, match="nanmedian"):
        gf.nanmedian(gf.ones(2, 0), 1)


QUANTILE_CASES = [
    {"q": 0.3, "dim": 1},
    {"q": [0.25, 0.9], "dim": 1, "keepdim": True},
    {"q": [0.1, 0.5]},
    {"q": 0.7, "keepdim": True},
    {"q": 0.3, "dim": 0, "interpolation": "lower"},
    {"q": 0.3, "dim": 0, "interpolation": "higher"},
    {"q": [0.3, 0.5], "dim": 0, "interpolation": "nearest"},
    {"q": 0.3, "dim": 0, "interpolation": "midpoint"},
]


@pytest.mark.parametrize("kwargs", QUANTILE_CASES)
def test_nanquantile_matches_torch(torch, device, rng, kwargs):
    a = rng.standard_normal((4, 6))
    a[rng.random(a.shape) < 0.3] = NAN
    a[1] = NAN
    x = gf.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    q = kwargs["q"]
    rest = {k: v for k, v in kwargs.items() if k != "q"}
    out, tout = (
        gf.nanquantile(x, q, **rest),
        torch.nanquantile(t, torch.tensor(q, dtype=t.dtype), **rest),
    )
    _same(out, tout, rtol=1e-12)
    (g,) = gf.grad(gf.nansum(out), [x])
    (tg,) = torch.autograd.grad(torch.nansum(tout), [t])
    _same(g, tg, rtol=1e-12)
    _same(x.nanquantile(q, **rest), tout)


def test_nanquantile_without_nan_is_quantile_and_errors(rng):
    x = gf.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    numpy.testing.assert_allclose(
        gf.nanquantile(x, [0.2, 0.8], 1).detach().numpy(),
        numpy.quantile(x.detach().numpy(), [0.2, 0.8], axis=1),
        rtol=1e-12,
    )
    assert gradcheck(lambda v: gf.nanquantile(v, 0.4, 1), [x])
    with pytest.raises(RuntimeError, match="float or double"):
        gf.nanquantile(gf.tensor([1, 2]), 0.5)
    with pytest.raises(RuntimeError, match="range \\[0, 1\\]"):
        gf.nanquantile(gf.ones(3), 1.5)
    with pytest.raises(ValueError, match="interpolation"):
        gf.nanquantile(gf.ones(3), 0.5, interpolation="cubic")
    assert gf.nanquantile(gf.tensor(2.0), 0.5).item() == 2.0


def test_cov_and_corrcoef_match_torch(torch, device, rng):
    a = rng.standard_normal((3, 8))
    fw = rng.integers(0, 4, 8)
    aw = rng.random(8)
    cases = [
        ({}, {}),
        ({"correction": 0}, {"correction": 0}),
        ({"fweights": gf.tensor(fw, device=device)}, {"fweights": torch.tensor(fw)}),
        ({"aweights": gf.tensor(aw, device=device)}, {"aweights": torch.tensor(aw)}),
        (
            {
                "fweights": gf.tensor(fw, device=device),
                "aweights": gf.tensor(aw, device=device),
                "correction": 2,
            },
            {"fweights": torch.tensor(fw), "aweights": torch.tensor(aw), "correction": 2},
        ),
    ]
    for kw, tkw in cases:
        _grads(
            torch,
            lambda x, k=kw: gf.cov(x, **k),
            lambda x, k=tkw: torch.cov(x, **k),
            [a],
            device,
            rtol=1e-10,
        )
    _grads(torch, gf.corrcoef, torch.corrcoef, [a], device, rtol=1e-10)
    numpy.testing.assert_allclose(
        gf.cov(gf.tensor(a), aweights=gf.tensor(aw)).numpy(), numpy.cov(a, aweights=aw), rtol=1e-12
    )
    numpy.testing.assert_allclose(gf.corrcoef(gf.tensor(a)).numpy(), numpy.corrcoef(a), rtol=1e-12)
    ints = numpy.array([[1, 2, 4], [3, 1, 0]])
    _same(gf.cov(gf.tensor(ints)), torch.cov(torch.tensor(ints)))
    _same(gf.corrcoef(gf.tensor(ints)), torch.corrcoef(torch.tensor(ints)))
    _same(gf.tensor([1.0, 2.0, 4.0]).cov(), torch.tensor([1.0, 2.0, 4.0]).cov())
    _same(gf.tensor([1.0, 2.0, 4.0]).corrcoef(), torch.tensor([1.0, 2.0, 4.0]).corrcoef())


def test_cov_errors_and_degenerate():
    with pytest.warns(UserWarning, match="degrees of freedom"):
        assert gf.cov(gf.tensor([1.0, 2.0]), correction=2).item() == math.inf
    with pytest.raises(RuntimeError, match="integral dtype"):
        gf.cov(gf.ones(1, 3), fweights=gf.ones(3))
    with pytest.raises(RuntimeError, match="cannot be negative"):
        gf.cov(gf.ones(1, 3), fweights=gf.tensor([1, -2, 1]))
    with pytest.raises(RuntimeError, match="floating point dtype"):
        gf.cov(gf.ones(1, 3), aweights=gf.tensor([1, 2, 1]))
    with pytest.raises(RuntimeError, match="same numel"):
        gf.cov(gf.ones(1, 3), fweights=gf.tensor([1, 1]))
    with pytest.raises(RuntimeError, match="two or fewer dimensions"):
        gf.cov(gf.ones(2, 2, 2))


def test_histogram_matches_torch(torch, rng):
    a = rng.standard_normal(200).astype(numpy.float32)
    w = rng.random(200).astype(numpy.float32)
    cases = [
        ((5,), {}),
        ((4,), {"range": (-1.0, 1.0)}),
        ((7,), {"density": True}),
        ((6,), {"weight": True}),
        (("edges",), {"weight": True, "density": True}),
    ]
    edges = numpy.array([-2.0, -0.5, 0.0, 0.3, 2.0], numpy.float32)
    for (bins,), kw in cases:
        tkw = dict(kw)
        if kw.get("weight"):
            kw = {**kw, "weight": gf.tensor(w)}
            tkw = {**tkw, "weight": torch.tensor(w)}
        ours = gf.histogram(gf.tensor(a), gf.tensor(edges) if bins == "edges" else bins, **kw)
        theirs = torch.histogram(
            torch.tensor(a), torch.tensor(edges) if bins == "edges" else bins, **tkw
        )
        assert type(ours).__name__ == "histogram"
        _same(ours.hist, theirs.hist, rtol=1e-5)
        _same(ours.bin_edges, theirs.bin_edges)
    for data, bins in (([1.0, 1.0], 2), ([], 2), ([[1.0, 2.0]], 2), ([1.0, 2.0, 1.0], 3)):
        ours, theirs = (
            gf.histogram(gf.tensor(data), bins),
            torch.histogram(torch.tensor(data), bins),
        )
        _same(ours.hist, theirs.hist)
        _same(ours.bin_edges, theirs.bin_edges)
    _same(gf.tensor(a).histogram(3).hist, torch.tensor(a).histogram(3).hist)


def test_histogram_errors():
    with pytest.raises(NotImplementedError, match="'Long'"):
        gf.histogram(gf.tensor([1, 2]), 2)
    with pytest.raises(RuntimeError, match="not finite"):
        gf.histogram(gf.tensor([1.0, math.inf]), 2)
    with pytest.raises(RuntimeError, match="min should not exceed max"):
        gf.histogram(gf.tensor([1.0]), 2, range=(3.0, 1.0))
    with pytest.raises(RuntimeError, match="bins must be > 0"):
        gf.histogram(gf.tensor([1.0]), 0)


def test_dist_pdist_renorm(torch, device, rng):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3,))
    _same(gf.dist(gf.tensor(a), gf.tensor(b), 0), torch.dist(torch.tensor(a), torch.tensor(b), 0))
    for p in (2, 1, 3.5, math.inf):
        _grads(
            torch,
            lambda x, y, p=p: gf.dist(x, y, p),
            lambda x, y, p=p: torch.dist(x, y, p),
            [a, b],
            device,
        )
    pts = rng.standard_normal((6, 3))
    pts[4] = pts[1]  # a zero distance: gradient 0 there, as torch
    for p in (2, 1, 3.0, math.inf):
        _grads(
            torch, lambda x, p=p: gf.pdist(x, p), lambda x, p=p: torch.pdist(x, p), [pts], device
        )
    _same(gf.pdist(gf.tensor(pts), 0), torch.pdist(torch.tensor(pts), 0))
    _same(F.pdist(gf.tensor(pts), 1), torch.nn.functional.pdist(torch.tensor(pts), 1))
    assert gf.pdist(gf.ones(1, 3)).shape == (0,)
    for args in ((2, 0, 1.5), (1, 1, 0.5), (3.0, -1, 2.0)):
        _grads(
            torch,
            lambda x, k=args: gf.renorm(x, *k),
            lambda x, k=args: torch.renorm(x, *k),
            [a],
            device,
        )
    _grads(
        torch,
        lambda x: x.renorm(2, 1, 0.7),
        lambda x: x.renorm(2, 1, 0.7),
        [rng.standard_normal((2, 3, 4))],
    )
    x = gf.tensor([[3.0, 4.0], [0.3, 0.4]])
    x.renorm_(2, 0, 1.0)
    numpy.testing.assert_allclose(x.numpy(), [[0.6, 0.8], [0.3, 0.4]], rtol=1e-6)
    with pytest.raises(RuntimeError, match="floating point"):
        gf.dist(gf.tensor([1, 2]), gf.tensor([3, 5]))
    with pytest.raises(RuntimeError, match="2D"):
        gf.pdist(gf.ones(3))
    with pytest.raises(RuntimeError, match="floating-point"):
        gf.pdist(gf.ones(2, 2, dtype=gf.int64))
    with pytest.raises(RuntimeError, match="non-negative p"):
        gf.pdist(gf.ones(2, 2), -1)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        gf.renorm(gf.ones(3), 2, 0, 1)
    with pytest.raises(RuntimeError, match="non-positive-norm"):
        gf.renorm(gf.ones(2, 2), 0, 0, 1)


# ---- integrals and gradient ---------------------------------------------------------------------
def test_trapezoid_family_matches_torch(torch, device, rng):
    y = rng.standard_normal((3, 5))
    xs = numpy.sort(rng.standard_normal(5))
    for name in ("trapezoid", "trapz", "cumulative_trapezoid"):
        g, t = getattr(gf, name), getattr(torch, name)
        _grads(torch, g, t, [y], device)
        _grads(
            torch,
            lambda v, g=g: g(v, dx=0.5, dim=0),
            lambda v, t=t: t(v, dx=0.5, dim=0),
            [y],
            device,
        )
        _grads(torch, lambda v, c, g=g: g(v, c), lambda v, c, t=t: t(v, c), [y, xs], device)
        _grads(
            torch,
            lambda v, c, g=g: g(v, c, dim=0),
            lambda v, c, t=t: t(v, c, dim=0),
            [y, rng.standard_normal((3, 1))],
            device,
        )
        ints = torch.tensor([1, 2, 4])
        _same(g(gf.tensor([1, 2, 4])), t(ints))
        _same(g(gf.tensor([1, 2, 4]), dx=2), t(ints, dx=2))
        _same(g(gf.ones(2, 0)), t(torch.ones(2, 0)))
        with pytest.raises(RuntimeError, match="one `x` value for each sample"):
            g(gf.ones(3), gf.ones(2))
        with pytest.raises(IndexError):
            g(gf.tensor(1.0))
    numpy.testing.assert_allclose(
        gf.trapezoid(gf.tensor(y), gf.tensor(xs)).numpy(), numpy.trapezoid(y, xs), rtol=1e-12
    )


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_matches_torch(torch, device, rng, edge_order):
    a = rng.standard_normal((4, 5))
    coords = numpy.cumsum(rng.random(5) + 0.1)
    cases = [
        ({}, {}),
        ({"dim": 1}, {"dim": 1}),
        ({"spacing": 2.0}, {"spacing": 2.0}),
        ({"spacing": [1.5, 0.5]}, {"spacing": [1.5, 0.5]}),
        (
            {"spacing": [gf.tensor(coords, device=device)], "dim": [1]},
            {"spacing": [torch.tensor(coords)], "dim": [1]},
        ),
    ]
    for kw, tkw in cases:
        x = gf.tensor(a, device=device, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        outs = gf.gradient(x, edge_order=edge_order, **kw)
        touts = torch.gradient(t, edge_order=edge_order, **tkw)
        assert len(outs) == len(touts)
        for o, to in zip(outs, touts, strict=True):
            _same(o, to, rtol=1e-10)
        (g,) = gf.grad(gf.stack(list(outs)).sum() if len(outs) > 1 else outs[0].sum(), [x])
        (tg,) = torch.autograd.grad(torch.stack(list(touts)).sum(), [t])
        _same(g, tg, rtol=1e-10, atol=1e-10)
    # torch-free: NumPy's gradient in float64 (uniform steps and coordinates)
    for spacing, axis in ((1.0, 0), (2.0, 1), (coords, 1)):
        ours = gf.gradient(
            gf.tensor(a),
            spacing=[gf.tensor(spacing) if axis and spacing is coords else spacing],
            dim=[axis],
            edge_order=edge_order,
        )
        reference = numpy.gradient(a, spacing, axis=axis, edge_order=edge_order)
        numpy.testing.assert_allclose(ours[0].numpy(), reference, rtol=1e-10)


def test_gradient_edges_and_errors(torch):
    _same(gf.gradient(gf.tensor([1, 2, 4, 8]))[0], torch.gradient(torch.tensor([1, 2, 4, 8]))[0])
    assert gf.gradient(gf.tensor(1.0)) == ()
    with pytest.raises(RuntimeError, match="at least edge_order\\+1"):
        gf.gradient(gf.tensor([1.0, 2.0]), edge_order=2)
    with pytest.raises(RuntimeError, match="edge_order=1 and edge_order=2"):
        gf.gradient(gf.ones(4), edge_order=3)
    with pytest.raises(RuntimeError, match="same length"):
        gf.gradient(gf.ones(3, 3), spacing=[1.0])


# ---- building tensors ---------------------------------------------------------------------------
def test_block_diag_cartesian_prod_combinations(torch, device, rng):
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal(2), rng.standard_normal(())
    _grads(torch, gf.block_diag, torch.block_diag, [a, b, c], device)
    _same(
        gf.block_diag(gf.tensor(1), gf.tensor([2, 3]), gf.tensor([[4.0, 5.0]])),
        torch.block_diag(torch.tensor(1), torch.tensor([2, 3]), torch.tensor([[4.0, 5.0]])),
    )
    _same(
        gf.block_diag(gf.ones(0, 2), gf.ones(2, 0)),
        torch.block_diag(torch.ones(0, 2), torch.ones(2, 0)),
    )
    _same(gf.block_diag(), torch.block_diag())
    with pytest.raises(RuntimeError, match="2 or fewer dimensions"):
        gf.block_diag(gf.ones(2, 2, 2))
    u, v = rng.standard_normal(3), rng.standard_normal(2)
    _grads(torch, gf.cartesian_prod, torch.cartesian_prod, [u, v, u], device)
    _same(gf.cartesian_prod(gf.tensor([1, 2])), torch.cartesian_prod(torch.tensor([1, 2])))
    with pytest.raises(RuntimeError, match="same dtype"):
        gf.cartesian_prod(gf.tensor([1, 2]), gf.tensor([3.0]))
    with pytest.raises(RuntimeError, match="1D vector"):
        gf.cartesian_prod(gf.ones(1, 2))
    w = rng.standard_normal(5)
    for r in (1, 2, 3, 6):
        for rep in (False, True):
            _grads(
                torch,
                lambda x, r=r, rep=rep: gf.combinations(x, r, rep),
                lambda x, r=r, rep=rep: torch.combinations(x, r, rep),
                [w],
                device,
            )
    ints = torch.tensor([1, 2, 3])
    _same(gf.combinations(gf.tensor([1, 2, 3]), r=0), torch.combinations(ints, r=0))
    _same(gf.combinations(gf.tensor([1, 2, 3]), r=4), torch.combinations(ints, r=4))
    _same(gf.combinations(gf.ones(0)), torch.combinations(torch.ones(0)))
    with pytest.raises(RuntimeError, match="non-negative"):
        gf.combinations(gf.ones(3), -1)


def test_diagflat_vander_narrow_copy(torch, device, rng):
    a = rng.standard_normal((2, 2))
    for offset in (0, 1, -2):
        _grads(
            torch,
            lambda x, k=offset: gf.diagflat(x, k),
            lambda x, k=offset: torch.diagflat(x, k),
            [a],
            device,
        )
    _same(gf.tensor(3.0).diagflat(), torch.tensor(3.0).diagflat())
    v = numpy.array([0.0, 1.5, -2.0, 0.0])
    for kw in ({}, {"N": 6}, {"N": 1}, {"N": 3, "increasing": True}):
        _same(gf.vander(gf.tensor(v, device=device), **kw), torch.vander(torch.tensor(v), **kw))
        if kw.get("N") != 1:  # torch's own vander backward fails (cumprod_ into a slice)
            x = gf.tensor(v, device=device, requires_grad=True)
            assert gradcheck(lambda u, k=kw: gf.vander(u, **k), [x])
    for data in ([1, 2, 3], [True, False]):
        _same(
            gf.vander(gf.tensor(data, dtype=gf.int32 if data[0] is not True else None)),
            torch.vander(torch.tensor(data, dtype=torch.int32 if data[0] is not True else None)),
        )
    _same(gf.vander(gf.ones(3), N=0), torch.vander(torch.ones(3), N=0))
    numpy.testing.assert_allclose(gf.vander(gf.tensor(v), 5).numpy(), numpy.vander(v, 5))
    with pytest.raises(RuntimeError, match="one-dimensional"):
        gf.vander(gf.ones(2, 2))
    b = rng.standard_normal((3, 4))
    _grads(
        torch,
        lambda x: gf.narrow_copy(x, 1, 1, 2),
        lambda x: torch.narrow_copy(x, 1, 1, 2),
        [b],
        device,
    )
    x = gf.tensor(b)
    y = x.narrow_copy(0, 0, 1)
    y.fill_(0.0)
    assert x.tolist()[0][0] == b[0, 0]  # a copy, not a view


def test_index_factories(torch):
    for fn in ("tril_indices", "triu_indices"):
        for args in ((3, 3), (3, 3, -1), (3, 4, 1), (4, 2, 5), (0, 3), (2, 5, -7)):
            _same(getattr(gf, fn)(*args), getattr(torch, fn)(*args))
        _same(getattr(gf, fn)(3, 3, dtype=gf.int32), getattr(torch, fn)(3, 3, dtype=torch.int32))
    # torch.unravel_index's values for these (its first call imports torch.fx: seconds);
    # out-of-range indices wrap, as in torch
    rows, cols = gf.unravel_index(gf.tensor([5, -1, 0, 6, -7]), (2, 3))
    assert rows.tolist() == [1, 1, 0, 0, 1] and cols.tolist() == [2, 2, 0, 0, 2]
    for idx, shape in ((5, (2, 3)), ([1, 5], 6), ([[0, 23], [7, 9]], (2, 3, 4))):
        ours = gf.unravel_index(gf.tensor(idx), shape)
        reference = numpy.unravel_index(numpy.asarray(idx), shape)
        assert len(ours) == len(reference)
        for o, r in zip(ours, reference, strict=True):
            assert o.dtype == gf.int64 and o.shape == r.shape and (o.numpy() == r).all()
    with pytest.raises(TypeError, match="integer dtype"):
        gf.unravel_index(gf.tensor([1.0]), (2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for args, kw in (
            ((1, 4), {}),
            ((1, 4, 0.5), {}),
            ((1, 4), {"dtype": torch.int64}),
            ((4, 1, -1), {}),
            ((0, 1, 0.3), {}),
        ):
            gkw = {"dtype": gf.int64} if kw else {}
            _same(gf.range(*args, **gkw), torch.range(*args, **kw))
        with pytest.raises(RuntimeError, match="inconsistent with step sign"):
            gf.range(1, 4, -1)
    with pytest.warns(UserWarning, match="deprecated"):
        gf.range(0, 2)


# ---- scatters -----------------------------------------------------------------------------------
def test_select_slice_diagonal_scatter(torch, device, rng):
    a = rng.standard_normal((4, 3, 5))
    cases = [
        ("select_scatter", (1, -1), (4, 5)),
        ("slice_scatter", (2, 1, None, 2), (4, 3, 2)),
        ("slice_scatter", (0, -3, 10), (3, 3, 5)),
        ("diagonal_scatter", (0, 0, 2), (3, 4)),
        ("diagonal_scatter", (1, 2, 0), (3, 3)),
        ("diagonal_scatter", (-2, 0, 1), (5, 2)),
    ]
    for name, args, src_shape in cases:
        s = rng.standard_normal(src_shape)
        _grads(
            torch,
            lambda x, y, n=name, k=args: getattr(gf, n)(x, y, *k),
            lambda x, y, n=name, k=args: getattr(torch, n)(x, y, *k),
            [a, s],
            device,
        )
        _same(
            getattr(gf.tensor(a), name)(gf.tensor(s), *args),
            getattr(torch.tensor(a), name)(torch.tensor(s), *args),
        )
    x = gf.tensor(a, requires_grad=True)
    src = gf.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda u, v: gf.diagonal_scatter(u, v, 1, 0, 2), [x, src])
    (g,) = gf.grad(
        (gf.select_scatter(x, gf.ones(4, 5, dtype=gf.float64), 1, 0) ** 2).sum(),
        [x],
        create_graph=True,
    )
    (gg,) = gf.grad(g.sum(), [x])
    expected = numpy.full(a.shape, 2.0)
    expected[:, 0] = 0.0
    numpy.testing.assert_allclose(gg.numpy(), expected)
    _same(
        gf.select_scatter(gf.zeros(2, 2), gf.tensor([1, 2]), 0, 0),
        torch.select_scatter(torch.zeros(2, 2), torch.tensor([1, 2]), 0, 0),
    )
    with pytest.raises(RuntimeError, match="src size = \\[3\\], slice size = \\[2\\]"):
        gf.select_scatter(gf.zeros(2, 2), gf.ones(3), 0, 0)
    with pytest.raises(IndexError, match="out of range"):
        gf.select_scatter(gf.zeros(2, 2), gf.ones(2), 0, 5)
    with pytest.raises(RuntimeError, match="slice size = \\[4, 2\\]"):
        gf.slice_scatter(gf.zeros(4, 2), gf.ones(1, 2))
    with pytest.raises(RuntimeError, match="cannot be identical"):
        gf.diagonal_scatter(gf.zeros(3, 3), gf.ones(3), 0, 1, 1)


@pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta")
@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_matches_torch(torch, device, rng, reduce, include_self):
    a = rng.standard_normal((4, 3))
    src = rng.standard_normal((5, 3))
    index = numpy.array([0, 2, 0, 3, 2])
    _grads(
        torch,
        lambda x, s: gf.index_reduce(
            x, 0, gf.tensor(index, device=device), s, reduce, include_self=include_self
        ),
        lambda x, s: torch.index_reduce(
            x, 0, torch.tensor(index), s, reduce, include_self=include_self
        ),
        [a, src],
        device,
    )
    t = rng.standard_normal((3, 5))
    _same(
        gf.tensor(a.T.copy()).index_reduce(
            1, gf.tensor([1, 1, 0]), gf.tensor(t[:, :3]), reduce, include_self=include_self
        ),
        torch.tensor(a.T.copy()).index_reduce(
            1, torch.tensor([1, 1, 0]), torch.tensor(t[:, :3]), reduce, include_self=include_self
        ),
    )


def test_index_reduce_errors_and_inplace():
    with pytest.raises(RuntimeError, match="one of prod, mean, amax or amin but got sum"):
        gf.index_reduce(gf.ones(3, 2), 0, gf.tensor([0]), gf.ones(1, 2), "sum")
    with pytest.raises(RuntimeError, match="Number of indices"):
        gf.index_reduce(gf.ones(3, 2), 0, gf.tensor([0, 1]), gf.ones(1, 2), "prod")
    with pytest.raises(RuntimeError, match="slice shapes"):
        gf.index_reduce(gf.ones(3, 2), 0, gf.tensor([0]), gf.ones(1, 3), "prod")
    x = gf.ones(3, 2)
    x.index_reduce_(0, gf.tensor([0, 0, 2]), gf.tensor([[1.0, 2], [3, 4], [5, 6]]), "amax")
    assert x.tolist() == [[3.0, 4.0], [1.0, 1.0], [5.0, 6.0]]


# ---- dtypes on hostile inputs -----------------------------------------------------------------
def test_empty_and_zero_d_inputs(torch):
    _same(gf.diff(gf.ones(0)), torch.diff(torch.ones(0)))
    _same(gf.fmax(gf.tensor(1.0), gf.tensor(NAN)), torch.fmax(torch.tensor(1.0), torch.tensor(NAN)))
    _same(gf.ldexp(gf.ones(0), gf.ones(0)), torch.ldexp(torch.ones(0), torch.ones(0)))
    _same(gf.frexp(gf.ones(0)).mantissa, torch.frexp(torch.ones(0)).mantissa)
    _same(
        gf.bitwise_and(gf.tensor(3), gf.tensor(5)),
        torch.bitwise_and(torch.tensor(3), torch.tensor(5)),
    )
    _same(gf.cumulative_trapezoid(gf.ones(1)), torch.cumulative_trapezoid(torch.ones(1)))
    _same(gf.trapezoid(gf.ones(1)), torch.trapezoid(torch.ones(1)))
    _same(gf.histogram(gf.ones(0), 3).hist, torch.histogram(torch.ones(0), 3).hist)


def test_pdist_accuracy_and_double_backward(torch, rng):
    # far from the origin, |a|^2 + |b|^2 - 2 a.b cancels: the direct form's accuracy is kept
    pts = (rng.standard_normal((40, 6)) * 1e-3 + 100.0).astype(numpy.float32)
    pts[7] = pts[3]
    ours = gf.pdist(gf.tensor(pts)).numpy()
    p64 = pts.astype(numpy.float64)
    rows, cols = numpy.triu_indices(40, 1)
    reference = numpy.sqrt(((p64[rows] - p64[cols]) ** 2).sum(1))
    numpy.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-9)
    assert ours[numpy.flatnonzero((rows == 3) & (cols == 7))[0]] == 0.0
    _same(gf.pdist(gf.tensor(pts)), torch.pdist(torch.tensor(pts)), rtol=2e-5, atol=1e-7)
    x = gf.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    assert gradcheck(gf.pdist, [x])
    (g,) = gf.grad((gf.pdist(x) ** 3).sum(), [x], create_graph=True)
    (gg,) = gf.grad(g.pow(2).sum(), [x])
    t = torch.tensor(x.detach().numpy(), requires_grad=True)
    r, c = (torch.tensor(v) for v in numpy.triu_indices(5, 1))  # torch's pdist has no
    direct = (t[r] - t[c]).norm(dim=1)  # double backward: the same distances, composed
    (tg,) = torch.autograd.grad((direct**3).sum(), [t], create_graph=True)
    (tgg,) = torch.autograd.grad(tg.pow(2).sum(), [t])
    _same(gg, tgg, rtol=1e-10)


def test_as_strided_matches_torch(torch):
    # cpu only: the CuPy stand-in has no cupy.lib.stride_tricks (CuPy itself has it)
    device = "cpu"
    a = numpy.arange(12.0).reshape(3, 4)
    cases = [((2, 2), (1, 2), 1), ((3, 3), (4, 1), None), ((4, 3), (2, 1), 0), ((2,), (0,), 5)]
    for size, stride, offset in cases:
        _grads(
            torch,
            lambda x, s=size, st=stride, o=offset: gf.as_strided(x, s, st, o),
            lambda x, s=size, st=stride, o=offset: torch.as_strided(x, s, st, o),
            [a],
            device,
        )
    x = gf.tensor(a)
    view = x.as_strided((3,), (5,))  # a view: the diagonal, sharing x's storage
    assert view.tolist() == [0.0, 5.0, 10.0]
    x.array[0, 0] = 7.0
    assert view.tolist()[0] == 7.0
    leaf = gf.tensor(a, requires_grad=True)
    assert gradcheck(lambda v: gf.as_strided(v, (3, 2), (3, 2), 1) ** 2, [leaf])
    with pytest.raises(RuntimeError, match="out of bounds"):
        gf.as_strided(x, (3, 3), (4, 1), 2)
    with pytest.raises(RuntimeError, match="mismatch in length"):
        gf.as_strided(x, (3, 3), (4,))
    with pytest.raises(NotImplementedError, match="contiguous"):
        gf.as_strided(x.t(), (2,), (1,))
