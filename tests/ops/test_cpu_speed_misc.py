"""The CPU routes of issue 17's misc cases: median / kthvalue by a partition (no full sort),
adaptive_avg_pool1d by per-bin row sums, replicate padding by column copies and edge-slice
sums, grid_sample's per-sample bilinear backward. Values, indices and gradients against
float64 NumPy references (torch-free) and against torch where installed, hostile inputs
included (ties, NaN, signed zeros, integers, empty dims, non-contiguous inputs)."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow.ops.sorting import kth_smallest_index
from gradflow.testing import gradcheck

F = gf.nn.functional


def host(t):
    return numpy.asarray(t.detach().cpu().tolist())


def _stable_kth(a, k, dim):
    """Reference: the index at position k (from 0) of the stable ascending sort, NaN last."""
    order = numpy.argsort(a, axis=dim, kind="stable")
    return numpy.take(order, [k], axis=dim)


def _median_ref(a, dim):
    """Reference median index: the stable sort's (n - 1) // 2, or the first NaN of a slice."""
    n = a.shape[dim]
    index = _stable_kth(a, (n - 1) // 2, dim)
    if a.dtype.kind == "f":
        nan = numpy.isnan(a)
        index = numpy.where(
            nan.any(axis=dim, keepdims=True), nan.argmax(axis=dim, keepdims=True), index
        )
    return index


def _hostile_rows(rng, dtype):
    """Rows with ties, NaN, signed zeros and all-equal values (floats) or small ranges (ints)."""
    if numpy.dtype(dtype).kind in "iu":
        return rng.integers(0, 4, (7, 9)).astype(dtype)
    a = rng.integers(-2, 3, (7, 9)).astype(dtype)  # many ties
    a[1] = rng.standard_normal(9)  # distinct
    a[2, [1, 4]] = numpy.nan
    a[3] = numpy.nan
    a[4] = [0.0, -0.0, 0.0, -0.0, 1.0, -1.0, -0.0, 2.0, 0.0]
    a[5] = 1.5
    a[6, 0] = numpy.inf
    a[6, 3] = -numpy.inf
    return a


# ---- kthvalue / median: the partition route against the stable-sort reference ---------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "uint8"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_kth_smallest_index_is_the_stable_sorts_element(dtype, dim):
    rng = numpy.random.default_rng(3)
    a = _hostile_rows(rng, dtype)
    for k in range(a.shape[dim]):
        numpy.testing.assert_array_equal(kth_smallest_index(a, k, dim % 2), _stable_kth(a, k, dim))


def test_kth_smallest_index_on_3d_views_with_ties():
    rng = numpy.random.default_rng(2)
    a = rng.integers(0, 3, (4, 6, 5)).astype(numpy.float32)
    a[1, :, 2] = numpy.nan
    for view in (a, a.transpose(2, 0, 1), a[:, ::2]):
        for dim in range(3):
            for k in (0, view.shape[dim] // 2, view.shape[dim] - 1):
                numpy.testing.assert_array_equal(
                    kth_smallest_index(view, k, dim), _stable_kth(view, k, dim)
                )


def test_kth_smallest_index_declines_what_it_does_not_handle():
    assert kth_smallest_index(numpy.zeros((2, 3), bool), 0, 1) is None
    assert kth_smallest_index(numpy.zeros((2, 0)), 0, 0) is None
    assert kth_smallest_index(numpy.zeros((2, 3), numpy.complex64), 0, 1) is None


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("hostile", [True, False])
def test_kthvalue_values_indices_and_gradient(device, keepdim, hostile):
    # (ties only on the cpu: the CuPy stand-in's argsort, unlike CuPy's, is not stable)
    if hostile and device != "cpu":
        pytest.skip("ties need a stable sort")
    rng = numpy.random.default_rng(4)
    a = _hostile_rows(rng, numpy.float64) if hostile else rng.standard_normal((6, 9))
    for dim in (0, 1):
        for k in (1, 3, a.shape[dim]):
            x = gf.tensor(a, device=device, requires_grad=True)
            values, indices = gf.kthvalue(x, k, dim, keepdim)
            expected = _stable_kth(a, k - 1, dim)
            got = host(indices) if keepdim else numpy.expand_dims(host(indices), dim)
            numpy.testing.assert_array_equal(got, expected)
            numpy.testing.assert_array_equal(
                host(values), numpy.take_along_axis(a, expected, dim).squeeze(None if keepdim
                                                                               else dim)
                if not keepdim else numpy.take_along_axis(a, expected, dim)
            )  # fmt: skip
            weights = rng.standard_normal(values.shape)
            (values * gf.tensor(weights, device=device)).sum().backward()
            want = numpy.zeros_like(a)
            numpy.put_along_axis(want, expected, weights.reshape(expected.shape), dim)
            numpy.testing.assert_array_equal(host(x.grad), want)


@pytest.mark.parametrize("keepdim", [False, True])
def test_median_values_indices_and_gradient_on_hostile_rows(device, keepdim):
    rng = numpy.random.default_rng(5)
    for dtype in (numpy.float64, numpy.float32):
        a = _hostile_rows(rng, dtype)
        for dim in (0, 1, -1):
            x = gf.tensor(a, device=device, requires_grad=True)
            values, indices = gf.median(x, dim, keepdim)
            expected = _median_ref(a, dim)
            got = host(indices) if keepdim else numpy.expand_dims(host(indices), dim)
            numpy.testing.assert_array_equal(got, expected)
            want_values = numpy.take_along_axis(a, expected, dim)
            numpy.testing.assert_array_equal(
                host(values), want_values if keepdim else want_values.squeeze(dim)
            )
            assert values.dtype == x.dtype and indices.dtype == gf.int64
            values.sum().backward()
            want = numpy.zeros_like(a)
            numpy.put_along_axis(want, expected, 1, dim)
            numpy.testing.assert_array_equal(host(x.grad), want)


def test_median_and_kthvalue_edges():
    assert gf.median(gf.tensor([[7]]), 1).indices.tolist() == [0]
    assert gf.median(gf.tensor(3.0), 0).values.item() == 3.0
    assert gf.median(gf.tensor([2, 9, 4, 4])).item() == 4
    assert math.isnan(gf.median(gf.tensor([1.0, math.nan])).item())
    out = gf.median(gf.tensor([[math.nan, 1.0, math.nan]]), 1)
    assert out.indices.tolist() == [0] and math.isnan(out.values.item())
    assert gf.kthvalue(gf.tensor([3.0, math.nan, 1.0]), 3).indices.item() == 1
    assert gf.kthvalue(gf.tensor([True, False, True]).to(gf.int64), 2).values.item() == 1
    with pytest.raises(ValueError, match="median"):
        gf.median(gf.ones(3, 0), 1)
    with pytest.raises(IndexError, match="kthvalue"):
        gf.kthvalue(gf.ones(3, 0), 1, 1)
    # a 1-D input, and a non-contiguous (transposed) one
    a = numpy.random.default_rng(6).standard_normal((5, 8))
    assert gf.kthvalue(gf.tensor(a[0]), 4).indices.item() == int(numpy.argsort(a[0])[3])
    t = gf.tensor(a).t()
    numpy.testing.assert_array_equal(
        host(gf.median(t, 0).indices), numpy.argsort(a.T, axis=0, kind="stable")[3]
    )
    # 3-D along the middle dim, large enough to have no tie
    b = numpy.random.default_rng(7).standard_normal((3, 50, 4))
    numpy.testing.assert_array_equal(
        host(gf.kthvalue(gf.tensor(b), 17, 1).indices), numpy.argsort(b, axis=1)[:, 16]
    )


def test_median_and_kthvalue_double_backward():
    x = gf.tensor(numpy.random.default_rng(8).standard_normal((4, 5)), requires_grad=True)
    assert gradcheck(lambda v: gf.median(v, 1).values ** 2, [x])
    assert gradcheck(lambda v: gf.kthvalue(v, 2, 0).values ** 2, [x])
    (g,) = gf.grad((gf.median(x, 1).values ** 2).sum(), [x], create_graph=True)
    (gg,) = gf.grad(g.sum(), [x])
    want = numpy.zeros((4, 5))
    numpy.put_along_axis(want, _median_ref(host(x), 1), 2.0, 1)
    numpy.testing.assert_array_equal(host(gg), want)


def test_median_and_kthvalue_match_torch_on_a_large_float32_matrix():
    torch = pytest.importorskip("torch")
    a = numpy.random.default_rng(9).standard_normal((64, 257)).astype(numpy.float32)
    for dim in (0, 1):
        for fn in (
            lambda x, lib, d=dim: x.median(d),
            lambda x, lib, d=dim: x.kthvalue(10, d, True),
        ):
            x, t = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
            ours, theirs = fn(x, gf), fn(t, torch)
            numpy.testing.assert_array_equal(host(ours.values), theirs.values.detach().numpy())
            numpy.testing.assert_array_equal(host(ours.indices), theirs.indices.numpy())
            w = numpy.random.default_rng(1).standard_normal(tuple(theirs.values.shape))
            (ours.values * gf.tensor(w.astype(numpy.float32))).sum().backward()
            (theirs.values * torch.tensor(w.astype(numpy.float32))).sum().backward()
            numpy.testing.assert_array_equal(host(x.grad), t.grad.numpy())


# ---- adaptive_avg_pool1d ---------------------------------------------------------------------


def _adaptive_matrix(size, out):
    o = numpy.arange(out)
    start, end = (o * size) // out, -((-(o + 1) * size) // out)
    m = numpy.zeros((out, size))
    for i, (a, b) in enumerate(zip(start, end)):
        m[i, a:b] = 1.0 / (b - a)
    return m


SIZES = [(1024, 100), (10, 3), (7, 7), (13, 1), (5, 4), (17, 16), (300, 299), (9, 300), (4, 6)]


@pytest.mark.parametrize(("size", "out"), SIZES)
def test_adaptive_avg_pool1d_against_the_bin_matrix(device, size, out):
    rng = numpy.random.default_rng(size * 31 + out)
    a = rng.standard_normal((2, 3, size))
    m = _adaptive_matrix(size, out)
    x = gf.tensor(a, device=device, requires_grad=True)
    y = F.adaptive_avg_pool1d(x, out)
    numpy.testing.assert_allclose(host(y), a @ m.T, rtol=1e-12, atol=1e-13)
    g = rng.standard_normal((2, 3, out))
    y.backward(gf.tensor(g, device=device))
    numpy.testing.assert_allclose(host(x.grad), g @ m, rtol=1e-12, atol=1e-13)


def test_adaptive_avg_pool1d_float32_noncontiguous_unbatched_and_hostile():
    rng = numpy.random.default_rng(11)
    a = rng.standard_normal((40, 6, 5)).astype(numpy.float32)
    view = gf.tensor(a, requires_grad=True)
    x = view.permute(1, 2, 0)  # (6, 5, 40), not contiguous
    y = F.adaptive_avg_pool1d(x, 7)
    m = _adaptive_matrix(40, 7)
    ref = a.transpose(1, 2, 0).astype(numpy.float64) @ m.T
    numpy.testing.assert_allclose(host(y), ref, rtol=2e-6, atol=2e-6)
    assert y.dtype == gf.float32 and tuple(y.shape) == (6, 5, 7)
    y.sum().backward()
    numpy.testing.assert_allclose(host(view.grad), numpy.broadcast_to(
        m.sum(0), (6, 5, 40)).transpose(2, 0, 1), rtol=1e-6)  # fmt: skip
    # NaN and inf stay in their own bins, forward and backward
    b = numpy.zeros((1, 12))
    b[0, 5], b[0, 11] = numpy.nan, numpy.inf
    t = gf.tensor(b, requires_grad=True)
    out = F.adaptive_avg_pool1d(t, 5)
    o = numpy.arange(5)
    bounds = zip((o * 12) // 5, -((-(o + 1) * 12) // 5))
    want = numpy.array([[b[0, lo:hi].mean() for lo, hi in bounds]])
    numpy.testing.assert_array_equal(numpy.isnan(host(out)), numpy.isnan(want))
    numpy.testing.assert_array_equal(numpy.isinf(host(out)), numpy.isinf(want))
    out.sum().backward()
    assert numpy.isfinite(host(t.grad)).all()


def test_adaptive_avg_pool_keeping_height_and_double_backward():
    rng = numpy.random.default_rng(12)
    a = rng.standard_normal((2, 3, 4, 11))
    x = gf.tensor(a, requires_grad=True)
    y = F.adaptive_avg_pool2d(x, (None, 4))  # H kept: the per-bin row route
    numpy.testing.assert_allclose(host(y), a @ _adaptive_matrix(11, 4).T, rtol=1e-12)
    assert gradcheck(lambda v: F.adaptive_avg_pool1d(v, 4) ** 2, [gf.tensor(
        rng.standard_normal((2, 9)), requires_grad=True)])  # fmt: skip
    v = gf.tensor(rng.standard_normal((1, 2, 9)), requires_grad=True)
    (g,) = gf.grad((F.adaptive_avg_pool1d(v, 4) ** 2).sum(), [v], create_graph=True)
    (gg,) = gf.grad(g.sum(), [v])
    m = _adaptive_matrix(9, 4)
    numpy.testing.assert_allclose(host(gg), (2 * m.sum(1) @ m) * numpy.ones((1, 2, 1)),
                                  rtol=1e-12)  # fmt: skip


@pytest.mark.parametrize(("size", "out"), [(1024, 100), (37, 5), (64, 64), (8, 20)])
def test_adaptive_avg_pool1d_matches_torch(size, out):
    torch = pytest.importorskip("torch")
    a = numpy.random.default_rng(size).standard_normal((4, 8, size)).astype(numpy.float32)
    g = numpy.random.default_rng(1).standard_normal((4, 8, out)).astype(numpy.float32)
    x, t = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = F.adaptive_avg_pool1d(x, out), torch.nn.functional.adaptive_avg_pool1d(t, out)
    numpy.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    y.backward(gf.tensor(g))
    ty.backward(torch.tensor(g))
    numpy.testing.assert_allclose(host(x.grad), t.grad.numpy(), rtol=1e-6, atol=1e-7)


# ---- replicate padding ----------------------------------------------------------------------


def _edge_index(n, a, b):
    return numpy.clip(numpy.arange(-a, n + b), 0, n - 1)


def _replicate_ref(a, widths):
    """np.pad(mode="edge") and its adjoint (each output's gradient added at its source)."""
    out = numpy.pad(a, widths, mode="edge")
    index = numpy.ix_(*[_edge_index(n, lo, hi) for n, (lo, hi) in zip(a.shape, widths)])
    return out, index


PADS = [
    ((2, 3, 6, 5), (2, 2, 2, 2)),
    ((2, 3, 6, 5), (0, 3, 1, 0)),
    ((1, 2, 4, 3), (20, 17, 0, 0)),  # wider than the column-copy limit
    ((3, 7), (16, 16)),  # exactly at the limit
    ((2, 2, 3, 4, 5), (1, 2, 0, 1, 2, 1)),
    ((9,), (4, 1)),
    ((2, 1, 1), (3, 3, 2, 2)),  # single-element dims
]


@pytest.mark.parametrize(("shape", "pad"), PADS)
def test_replicate_pad_against_edge_padding(device, shape, pad):
    rng = numpy.random.default_rng(len(shape) * 7 + sum(pad))
    a = rng.standard_normal(shape)
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    widths = [(0, 0)] * (len(shape) - len(pairs)) + pairs
    want, index = _replicate_ref(a, widths)
    x = gf.tensor(a, device=device, requires_grad=True)
    y = F.pad(x, pad, mode="replicate")
    numpy.testing.assert_array_equal(host(y), want)
    g = rng.standard_normal(want.shape)
    y.backward(gf.tensor(g, device=device))
    grad = numpy.zeros(a.shape)
    numpy.add.at(grad, index, g)
    numpy.testing.assert_allclose(host(x.grad), grad, rtol=1e-12, atol=1e-12)


def test_replicate_pad_float32_noncontiguous_nan_and_double_backward():
    rng = numpy.random.default_rng(13)
    a = rng.standard_normal((5, 4, 6, 3)).astype(numpy.float32)
    a[0, 0, 0, 0] = numpy.nan
    a[1, 2, 5, 2] = numpy.inf
    base = gf.tensor(a, requires_grad=True)
    x = base.transpose(2, 3)  # (5, 4, 3, 6), not contiguous
    y = F.pad(x, (2, 2, 2, 2), mode="replicate")
    want, index = _replicate_ref(a.transpose(0, 1, 3, 2), [(0, 0), (0, 0), (2, 2), (2, 2)])
    numpy.testing.assert_array_equal(host(y), want)
    y.sum().backward()
    count = numpy.zeros((5, 4, 3, 6))
    numpy.add.at(count, index, 1.0)
    numpy.testing.assert_array_equal(host(base.grad), count.transpose(0, 1, 3, 2))
    v = gf.tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda t: F.pad(t, (2, 1, 1, 2), mode="replicate") ** 2, [v])
    (g,) = gf.grad((F.pad(v, (2, 1, 1, 2), mode="replicate") ** 2).sum(), [v], create_graph=True)
    (gg,) = gf.grad(g.sum(), [v])  # g = fold(2 pad(v)) = 2 count v
    _, index = _replicate_ref(numpy.zeros((1, 2, 3, 4)), [(0, 0), (0, 0), (1, 2), (2, 1)])
    count = numpy.zeros((1, 2, 3, 4))
    numpy.add.at(count, index, 1.0)
    numpy.testing.assert_allclose(host(gg), 2 * count, rtol=1e-12)


def test_replicate_pad_matches_torch():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(14)
    for shape, pad in (((4, 8, 9, 7), (2, 2, 2, 2)), ((2, 3, 10), (3, 1)),
                       ((2, 2, 3, 4, 5), (1, 2, 2, 0, 1, 1))):  # fmt: skip
        a = rng.standard_normal(shape).astype(numpy.float32)
        x, t = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        y = F.pad(x, pad, mode="replicate")
        ty = torch.nn.functional.pad(t, pad, mode="replicate")
        numpy.testing.assert_array_equal(host(y), ty.detach().numpy())
        g = rng.standard_normal(tuple(ty.shape)).astype(numpy.float32)
        y.backward(gf.tensor(g))
        ty.backward(torch.tensor(g))
        numpy.testing.assert_allclose(host(x.grad), t.grad.numpy(), rtol=1e-6, atol=1e-6)


# ---- grid_sample's bilinear backward ----------------------------------------------------------


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_input_gradient_is_the_adjoint(device, padding_mode, align_corners):
    """grid_sample is linear in the input: <g, f(x)> = <f^T g, x> for any x, g (float64)."""
    rng = numpy.random.default_rng(15)
    a = rng.standard_normal((3, 4, 5, 6))
    grid = rng.uniform(-1.6, 1.6, (3, 7, 2, 2))
    grid[0, 0, 0] = [1.0, -1.0]  # on the edges
    g = rng.standard_normal((3, 4, 7, 2))
    x = gf.tensor(a, device=device, requires_grad=True)
    y = grid_sample_fn(x, gf.tensor(grid, device=device), padding_mode, align_corners)
    y.backward(gf.tensor(g, device=device))
    numpy.testing.assert_allclose((host(y) * g).sum(), (host(x.grad) * a).sum(), rtol=1e-12)


def grid_sample_fn(x, grid, padding_mode="zeros", align_corners=False):
    return F.grid_sample(x, grid, padding_mode=padding_mode, align_corners=align_corners)


def test_grid_sample_gradients_without_the_input_or_grid_gradient(device):
    rng = numpy.random.default_rng(16)
    a, grid = rng.standard_normal((2, 3, 4, 4)), rng.uniform(-1.2, 1.2, (2, 5, 3, 2))
    both = [gf.tensor(v, device=device, requires_grad=True) for v in (a, grid)]
    grid_sample_fn(*both).sum().backward()
    only_x = gf.tensor(a, device=device, requires_grad=True)
    grid_sample_fn(only_x, gf.tensor(grid, device=device)).sum().backward()
    only_grid = gf.tensor(grid, device=device, requires_grad=True)
    grid_sample_fn(gf.tensor(a, device=device), only_grid).sum().backward()
    numpy.testing.assert_array_equal(host(only_x.grad), host(both[0].grad))
    numpy.testing.assert_array_equal(host(only_grid.grad), host(both[1].grad))


def test_grid_sample_matches_torch_float32():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(17)
    a = rng.standard_normal((4, 6, 9, 8)).astype(numpy.float32)
    grid = rng.uniform(-1.3, 1.3, (4, 5, 7, 2)).astype(numpy.float32)
    g = rng.standard_normal((4, 6, 5, 7)).astype(numpy.float32)
    for padding_mode in ("zeros", "border", "reflection"):
        ours = [gf.tensor(v, requires_grad=True) for v in (a, grid)]
        theirs = [torch.tensor(v, requires_grad=True) for v in (a, grid)]
        y = grid_sample_fn(*ours, padding_mode)
        ty = torch.nn.functional.grid_sample(*theirs, padding_mode=padding_mode,
                                             align_corners=False)  # fmt: skip
        numpy.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
        y.backward(gf.tensor(g))
        ty.backward(torch.tensor(g))
        for ours_t, theirs_t in zip(ours, theirs):
            numpy.testing.assert_allclose(host(ours_t.grad), theirs_t.grad.numpy(), rtol=1e-4,
                                          atol=1e-5)  # fmt: skip
