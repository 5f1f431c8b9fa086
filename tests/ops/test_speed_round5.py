"""The fifth round of CPU speed routes (ops that were above 1.5x torch's time): erfinv in float32
(two float64 polynomials, a compiled loop or NumPy passes), Tensor.unfold (a strided view, an
add per window offset back), interpolate's 3-D nearest (takes forward, sums back), kron (one
broadcast product, one transposed copy back), rot90 (its gradient made contiguous cheaply),
lerp with a number weight (torch's formula and bits), tril/triu (a row loop) and embedding's
weight gradient (a row loop). Each against torch and float64 references, on hostile inputs,
with the compiled loops and without (compiled.disabled()), and on the cuda stand-in."""

from __future__ import annotations

import contextlib

import numpy
import pytest
from compiled_routes import F32, ROUTE_CONTEXTS, ROUTE_IDS, TINY

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.ops.special import erfinv_array


def _host(t):
    return t.detach().cpu().numpy() if hasattr(t, "cpu") else numpy.asarray(t)


# ---- erfinv -----------------------------------------------------------------------------------
def _erfinv_sweep() -> numpy.ndarray:
    rng = numpy.random.default_rng(5)
    near_one = numpy.arange(
        F32(0.999).view(numpy.int32), F32(1.0).view(numpy.int32), dtype=numpy.int32
    ).view(F32)  # every float32 in [0.999, 1): the tail polynomial's whole range
    parts = [
        numpy.linspace(-1, 1, 200_001, dtype=F32),
        near_one,
        -near_one[::7],
        numpy.geomspace(TINY, 0.999, 30_000).astype(F32),
        -numpy.geomspace(TINY, 0.999, 3_000).astype(F32),
        (rng.random(50_000) * 2 - 1).astype(F32),
        numpy.nextafter(F32(0.999), F32([0, 1])),
        numpy.array([0.0, -0.0, TINY, -TINY, 1e-40, 1e-30, 0.5, 0.9990000128746033], F32),
    ]
    sweep = numpy.concatenate(parts)
    return sweep[numpy.abs(sweep) < 1]  # +-1 and beyond: test_erfinv_edges_as_torch


SWEEP = _erfinv_sweep()
EXPECTED = erfinv_array(SWEEP.astype(numpy.float64))  # float64: Halley-refined, ~1e-16


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
def test_erfinv_float32_is_correctly_rounded(route):
    with route():
        got = gf.erfinv(gf.tensor(SWEEP)).numpy()
    assert got.dtype == F32
    spacing = numpy.spacing(numpy.abs(got)).astype(numpy.float64)
    ulps = numpy.abs(got.astype(numpy.float64) - EXPECTED) / spacing
    assert ulps.max() <= 0.5001  # every float32 in (-1, 1) measured: 0.50000005
    assert numpy.signbit(got[SWEEP == 0]).tolist() == numpy.signbit(SWEEP[SWEEP == 0]).tolist()


def test_erfinv_routes_agree_and_match_torch():
    torch = pytest.importorskip("torch")
    outs = []
    for route in ROUTE_CONTEXTS:
        with route():
            outs.append(gf.erfinv(gf.tensor(SWEEP)).numpy())
    for other in outs[1:]:  # the same formula: a log's last bit apart at most
        assert (outs[0].view(numpy.int32) != other.view(numpy.int32)).sum() <= 2
    theirs = torch.erfinv(torch.from_numpy(SWEEP)).numpy()  # torch's float32 Newton steps
    numpy.testing.assert_allclose(outs[-1], theirs, rtol=2e-6, atol=1e-30)


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
def test_erfinv_edges_as_torch(route):
    torch = pytest.importorskip("torch")
    x = numpy.array(
        [1, -1, 1.5, -2, numpy.nan, numpy.inf, -numpy.inf, 0.0, -0.0, TINY, -TINY, 0.99999994],
        F32,
    )
    with route():
        got = gf.erfinv(gf.tensor(x)).numpy()
    expected = torch.erfinv(torch.from_numpy(x)).numpy()
    numpy.testing.assert_array_equal(got, expected)
    number = ~numpy.isnan(expected)  # (torch's NaN has its sign bit set; NaN's sign means nothing)
    assert numpy.signbit(got[number]).tolist() == numpy.signbit(expected[number]).tolist()


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
def test_erfinv_gradient_shapes_and_views(route):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(0)
    base = (rng.random((6, 9)) * 1.98 - 0.99).astype(F32)
    base[0, :3] = [1.0, -1.0, numpy.nan]
    g = rng.standard_normal((9, 3)).astype(F32)
    with route():
        t = gf.tensor(base, requires_grad=True)
        y = gf.erfinv(t.t()[:, ::2])  # a strided, transposed view
        y.backward(gf.tensor(g))
        assert gf.erfinv(gf.tensor(numpy.zeros((0, 4), F32))).shape == (0, 4)
        zero_d = gf.erfinv(gf.tensor(F32(0.5)))
        assert zero_d.shape == () and abs(zero_d.item() - 0.4769362762044699) < 1e-7
    tt = torch.tensor(base, requires_grad=True)
    ty = torch.erfinv(tt.t()[:, ::2])
    ty.backward(torch.tensor(g))
    numpy.testing.assert_allclose(_host(y), ty.detach().numpy(), rtol=2e-6, equal_nan=True)
    numpy.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-5, equal_nan=True)
    # the gradient sqrt(pi)/2 exp(y^2) g against float64, the infinities kept
    y64 = erfinv_array(base.astype(numpy.float64).T[:, ::2])
    ref = numpy.sqrt(numpy.pi) / 2 * numpy.exp(y64 * y64) * g
    numpy.testing.assert_allclose(t.grad.numpy().T[:, ::2], ref, rtol=2e-6, equal_nan=True)


def test_erfinv_float64_gradcheck_and_integer_input():
    x = gf.tensor(numpy.array([-0.9, -0.3, 0.0, 0.4, 0.95]), requires_grad=True)
    assert gradcheck(gf.erfinv, (x,)) and gradgradcheck(gf.erfinv, (x,))
    assert gf.erfinv(gf.tensor([0, 1])).dtype == gf.float32  # integers: the default float


# ---- Tensor.unfold ----------------------------------------------------------------------------
UNFOLDS = [
    ((7, 10), 1, 4, 2),  # overlapping windows
    ((7, 10), -1, 3, 3),  # adjacent
    ((7, 10), 1, 2, 4),  # gaps between windows
    ((7, 10), 0, 7, 1),  # one window, the whole dim
    ((7, 10), 0, 1, 1),
    ((3, 8, 5), 1, 3, 2),  # a middle dim: the windows' elements come last
    ((3, 8, 5), -3, 2, 1),
    ((4, 6), 1, 0, 2),  # empty windows
]


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
@pytest.mark.parametrize("shape, dim, size, step", UNFOLDS)
def test_unfold_values_and_gradients_match_torch(route, shape, dim, size, step):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal(shape)
    with route():
        t = gf.tensor(x, requires_grad=True)
        y = t.unfold(dim, size, step)
        w = numpy.cos(numpy.arange(y.numel())).reshape(tuple(y.shape))
        (y * gf.tensor(w)).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    ty = tt.unfold(dim, size, step)
    (ty * torch.tensor(w)).sum().backward()
    numpy.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    numpy.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
def test_unfold_float32_strided_input_broadcast_gradient(route):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(2).standard_normal((12, 40)).astype(F32)
    x[3, 5] = numpy.nan
    with route():
        t = gf.tensor(x, requires_grad=True)
        y = t.t()[::-1, 1:].unfold(0, 8, 4)  # reversed, transposed and cropped
        y.sum().backward()  # sum's gradient: a broadcast view
    tt = torch.tensor(x, requires_grad=True)
    ty = tt.t().flip(0)[:, 1:].unfold(0, 8, 4)
    ty.sum().backward()
    numpy.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    numpy.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())


def test_unfold_is_a_view_as_in_torch():
    x = gf.arange(8.0)
    u = x.unfold(0, 2, 2)  # adjacent windows: a write reaches x, as in PyTorch
    u.add_(1)
    assert x.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    # the version counter is shared: a saved input written through the view is caught
    a = gf.tensor(numpy.arange(6.0), requires_grad=True)
    b = a * 1
    c = b * b
    with gf.no_grad():
        b.unfold(0, 3, 3).mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


def test_unfold_double_backward_zero_d_and_errors():
    x = gf.tensor(numpy.linspace(-1, 1, 9), requires_grad=True)
    assert gradgradcheck(lambda t: t.unfold(0, 3, 2) ** 2, (x,))
    assert gf.tensor(2.5).unfold(0, 1, 1).tolist() == [2.5]
    with pytest.raises(RuntimeError, match="step is 0"):
        x.unfold(0, 2, 0)
    with pytest.raises(RuntimeError, match="maximum size for tensor at dimension 0 is 9"):
        x.unfold(0, 10, 1)
    with pytest.raises(IndexError):
        x.unfold(2, 1, 1)


def test_unfold_on_each_device(device):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(3).standard_normal((5, 11)).astype(F32)
    t = gf.tensor(x, device=device, requires_grad=True)
    y = t.unfold(1, 4, 3)
    (y * y).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    ty = tt.unfold(1, 4, 3)
    (ty * ty).sum().backward()
    numpy.testing.assert_array_equal(_host(y), ty.detach().numpy())
    numpy.testing.assert_allclose(_host(t.grad), tt.grad.numpy(), rtol=1e-6)


# ---- interpolate, 3-D nearest -----------------------------------------------------------------
NEAREST3D = [
    dict(scale_factor=2),
    dict(scale_factor=3),
    dict(size=(5, 7, 3)),  # up on two axes, down on one: a non-integer map
    dict(size=(2, 3, 2)),  # down: some input voxels get no gradient
    dict(scale_factor=(1.5, 1.0, 2.5)),
]


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("kwargs", NEAREST3D)
def test_interpolate_nearest_3d_matches_torch(kwargs, mode, device):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(4).standard_normal((2, 3, 4, 5, 3)).astype(F32)
    t = gf.tensor(x, device=device, requires_grad=True)
    y = gf.nn.functional.interpolate(t, mode=mode, **kwargs)
    w = numpy.cos(numpy.arange(y.numel())).reshape(tuple(y.shape)).astype(F32)
    (y * gf.tensor(w, device=device)).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tt, mode=mode, **kwargs)
    (ty * torch.tensor(w)).sum().backward()
    numpy.testing.assert_array_equal(_host(y), ty.detach().numpy())
    numpy.testing.assert_allclose(_host(t.grad), tt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_interpolate_nearest_3d_keeps_nan_and_inf_in_place():
    x = numpy.arange(16, dtype=F32).reshape(1, 1, 2, 2, 4)
    x[0, 0, 0, 1, 2] = numpy.nan
    x[0, 0, 1, 0, 0] = numpy.inf
    t = gf.tensor(x, requires_grad=True)
    y = gf.nn.functional.interpolate(t, scale_factor=2)
    expected = x.repeat(2, 2).repeat(2, 3).repeat(2, 4)
    numpy.testing.assert_array_equal(y.detach().numpy(), expected)
    y.backward(gf.ones_like(y))
    assert (t.grad.numpy() == 8).all()  # each voxel copied 8 times; no NaN spread
    g = numpy.ones((1, 1, 4, 4, 8), F32)
    g[0, 0, 0, 0, 0] = numpy.nan
    t.grad = None
    gf.nn.functional.interpolate(t, scale_factor=2).backward(gf.tensor(g))
    assert numpy.isnan(t.grad.numpy()).sum() == 1


def test_interpolate_nearest_3d_gradgradcheck_and_integers():
    x = gf.tensor(numpy.random.default_rng(5).standard_normal((1, 2, 2, 3, 2)), requires_grad=True)
    assert gradgradcheck(lambda t: gf.nn.functional.interpolate(t, size=(3, 4, 5)) ** 2, (x,))
    images = gf.tensor(numpy.arange(8, dtype=numpy.uint8).reshape(1, 1, 2, 2, 2))
    out = gf.nn.functional.interpolate(images, scale_factor=2)
    assert out.dtype == gf.uint8 and out.shape == (1, 1, 4, 4, 4)


# ---- kron -------------------------------------------------------------------------------------
KRONS = [((3, 4), (2, 5)), ((4,), (2, 3)), ((2, 3, 2), (3, 1)), ((0, 3), (2, 2)), ((5,), (3,))]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shapes", KRONS)
def test_kron_matches_torch(shapes, dtype, device):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(6)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    ta, tb = gf.tensor(a, device=device, requires_grad=True), gf.tensor(b, device=device)
    tb.requires_grad_()
    y = gf.kron(ta, tb)
    w = numpy.sin(numpy.arange(y.numel())).reshape(tuple(y.shape)).astype(dtype)
    (y * gf.tensor(w, device=device)).sum().backward()
    xa, xb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ty = torch.kron(xa, xb)
    (ty * torch.tensor(w)).sum().backward()
    numpy.testing.assert_array_equal(_host(y), ty.detach().numpy())
    tol = 1e-5 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_allclose(_host(ta.grad), xa.grad.numpy(), rtol=tol, atol=tol)
    numpy.testing.assert_allclose(_host(tb.grad), xb.grad.numpy(), rtol=tol, atol=tol)


def test_kron_double_backward_one_side_and_integers():
    rng = numpy.random.default_rng(7)
    a = gf.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = gf.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    assert gradcheck(gf.kron, (a, b)) and gradgradcheck(gf.kron, (a, b))
    c = gf.tensor(rng.standard_normal((2, 2)))  # no gradient asked for
    gf.kron(a, c).sum().backward()
    assert a.grad.shape == (2, 3) and c.grad is None
    ints = gf.kron(gf.tensor([[1, 2]]), gf.tensor([[3], [4]]))
    assert ints.tolist() == [[3, 6], [4, 8]] and ints.dtype == gf.int64


# ---- rot90 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [-3, -1, 1, 2, 3, 5])
@pytest.mark.parametrize(
    "shape, dims", [((3, 4), (0, 1)), ((2, 3, 4), (2, 0)), ((2, 3, 5), (-1, -2))]
)
def test_rot90_values_and_gradients_exact(k, shape, dims, device):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(8).standard_normal(shape).astype(F32)
    t = gf.tensor(x, device=device, requires_grad=True)
    y = gf.rot90(t, k, dims)
    w = numpy.cos(numpy.arange(y.numel())).reshape(tuple(y.shape)).astype(F32)
    (y * gf.tensor(w, device=device)).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    ty = torch.rot90(tt, k, dims)
    (ty * torch.tensor(w)).sum().backward()
    numpy.testing.assert_array_equal(_host(y), ty.detach().numpy())
    numpy.testing.assert_array_equal(_host(t.grad), tt.grad.numpy())


def test_rot90_large_float32_gradient_contiguous_and_double_backward():
    x = numpy.random.default_rng(9).standard_normal((300, 200)).astype(F32)
    t = gf.tensor(x, requires_grad=True)
    g = numpy.random.default_rng(10).standard_normal((200, 300)).astype(F32)
    gf.rot90(t).backward(gf.tensor(g))  # omatcopy's size: the blas route where it loads
    assert t.grad.array.flags.c_contiguous
    numpy.testing.assert_array_equal(t.grad.numpy(), numpy.rot90(g, -1))
    s = gf.tensor(numpy.random.default_rng(11).standard_normal((3, 2)), requires_grad=True)
    for k in (1, 2, 3):
        assert gradgradcheck(lambda a, k=k: gf.rot90(a, k) ** 2, (s,))
    assert gf.rot90(s, 4) is s


# ---- lerp -------------------------------------------------------------------------------------
WEIGHTS = [0.3, 0.7, -0.2, 0.5, -0.5, 1, 0, 2.5]


@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
@pytest.mark.parametrize("weight", WEIGHTS)
def test_lerp_number_weight_matches_torch(route, weight):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(12)
    a, b = (rng.standard_normal(4096).astype(F32) for _ in range(2))
    a[:4] = [numpy.nan, numpy.inf, -numpy.inf, 1e38]
    b[:4] = [1.0, 1.0, numpy.inf, -1e38]
    g = rng.standard_normal(4096).astype(F32)
    with route():
        ta, tb = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
        y = gf.lerp(ta, tb, weight)
        y.backward(gf.tensor(g))
    xa, xb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ty = torch.lerp(xa, xb, weight)
    ty.backward(torch.tensor(g))
    ours, theirs = y.detach().numpy(), ty.detach().numpy()
    if route is contextlib.nullcontext:  # the compiled loop fuses as torch's kernel: its bits
        numpy.testing.assert_array_equal(ours, theirs)
    else:
        numpy.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-6)
    numpy.testing.assert_array_equal(ta.grad.numpy(), xa.grad.numpy())
    numpy.testing.assert_array_equal(tb.grad.numpy(), xb.grad.numpy())
    if weight == 1:  # torch's formula for |w| >= 0.5 gives end exactly at w = 1
        finite = numpy.isfinite(a) & numpy.isfinite(b)
        numpy.testing.assert_array_equal(ours[finite], b[finite])


def test_lerp_broadcast_float64_tensor_weight_and_double_backward(device):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(13)
    a, b = rng.standard_normal((3, 1, 4)), rng.standard_normal((5, 1))
    ta = gf.tensor(a, device=device, requires_grad=True)
    tb = gf.tensor(b, device=device, requires_grad=True)
    y = gf.lerp(ta, tb, 0.75)
    y.sum().backward()
    xa, xb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    torch.lerp(xa, xb, 0.75).sum().backward()
    numpy.testing.assert_allclose(_host(y), torch.lerp(xa, xb, 0.75).detach().numpy(), rtol=1e-15)
    numpy.testing.assert_allclose(_host(ta.grad), xa.grad.numpy(), rtol=1e-15)
    numpy.testing.assert_allclose(_host(tb.grad), xb.grad.numpy(), rtol=1e-15)
    w = gf.tensor(numpy.full((5, 4), 0.25), device=device)
    numpy.testing.assert_allclose(
        _host(gf.lerp(ta, tb, w)),
        torch.lerp(xa, xb, torch.full((5, 4), 0.25, dtype=torch.float64)).detach(),
        rtol=1e-15,
    )
    c = gf.tensor(rng.standard_normal(4), requires_grad=True)
    d = gf.tensor(rng.standard_normal(4), requires_grad=True)
    assert gradgradcheck(lambda p, q: gf.lerp(p, q, 0.6) ** 2, (c, d))
    with pytest.raises(RuntimeError, match="floating-point"):
        gf.lerp(gf.tensor([1, 2]), gf.tensor([3, 4]), 0.5)


# ---- tril / triu ------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (2, 3, 4, 6), (0, 3), (3, 0), (1, 1)])
def test_triangles_match_torch(route, shape):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(14).standard_normal(shape).astype(F32)
    x.reshape(-1)[::3] = numpy.nan  # a NaN outside the triangle becomes 0
    for diagonal in (-8, -2, -1, 0, 1, 3, 8):
        for name in ("triu", "tril"):
            with route():
                t = gf.tensor(x, requires_grad=True)
                src = t.transpose(-1, -2) if len(shape) > 2 else t
                y = getattr(src, name)(diagonal)
                y.sum().backward()
            tt = torch.tensor(x, requires_grad=True)
            tsrc = tt.transpose(-1, -2) if len(shape) > 2 else tt
            ty = getattr(tsrc, name)(diagonal)
            ty.sum().backward()
            numpy.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
            numpy.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())


# ---- embedding's weight gradient --------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTE_CONTEXTS, ids=ROUTE_IDS)
@pytest.mark.parametrize("padding_idx", [None, 3])
def test_embedding_weight_gradient_bits(route, padding_idx):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(15)
    index = rng.integers(0, 50, (16, 40))  # many repeats
    weight = rng.standard_normal((50, 64)).astype(F32)
    g = rng.standard_normal((16, 40, 64)).astype(F32)
    with route():
        w = gf.tensor(weight, requires_grad=True)
        gf.nn.functional.embedding(gf.tensor(index), w * 1, padding_idx=padding_idx).backward(
            gf.tensor(g)
        )
    expected = numpy.zeros((50, 64), F32)
    numpy.add.at(expected, index.reshape(-1), g.reshape(-1, 64))  # repeats in index order
    if padding_idx is not None:
        expected[padding_idx] = 0
    numpy.testing.assert_array_equal(w.grad.numpy(), expected)
    tw = torch.tensor(weight, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(index), tw, padding_idx=padding_idx).backward(
        torch.tensor(g)
    )
    numpy.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-5)
