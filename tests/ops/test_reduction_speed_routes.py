"""The NumPy fast routes of cummax/cummin (accumulate + runs), topk (argpartition), cumprod's
backward (no zeros) and two-operand einsum (batched matmul): values and gradients against
float64 NumPy references and, when installed, against torch; hostile inputs (NaN, ties,
signed zeros, zeros, empty, 0-d, non-contiguous, broadcast); the same on the CuPy stand-in."""

import numpy
import pytest

import gradflow
from gradflow import cuda

RNG = numpy.random.default_rng(17)
needs_cuda = pytest.mark.skipif(not cuda.is_available(), reason="no CUDA GPU visible to CuPy")


def _t(a, grad=True, device="cpu"):
    return gradflow.tensor(numpy.asarray(a), requires_grad=grad, device=device)


def _host(t):
    return numpy.asarray(t.detach().cpu().numpy())


# ---- cummax / cummin ------------------------------------------------------------------------
def _ref_cum(a, dim, reduce):
    """PyTorch's loop: x replaces the running value when NaN, or when >= (<=) and it is not NaN."""
    a = numpy.moveaxis(numpy.asarray(a, numpy.float64), dim, -1)
    vals = numpy.empty_like(a)
    idx = numpy.zeros(a.shape, numpy.int64)
    for r in numpy.ndindex(a.shape[:-1]):
        out, at = None, 0
        for i, x in enumerate(a[r]):
            if out is None or numpy.isnan(x):
                better = True
            else:
                better = not numpy.isnan(out) and (x >= out if reduce == "max" else x <= out)
            if better:
                out, at = x, i
            vals[r + (i,)], idx[r + (i,)] = out, at
    return numpy.moveaxis(vals, -1, dim), numpy.moveaxis(idx, -1, dim)


def _cum_grad_ref(shape, idx, g, dim):
    out = numpy.zeros(shape)
    idx_m, g_m, out_m = (numpy.moveaxis(a, dim, -1) for a in (idx, g, out))
    for r in numpy.ndindex(idx_m.shape[:-1]):
        numpy.add.at(out_m[r], idx_m[r], g_m[r])
    return out


def _hostile(n=40):
    a = RNG.integers(-3, 4, size=(5, n)).astype(numpy.float32)  # many ties
    a[1, 7] = numpy.nan
    a[1, 20] = numpy.nan  # a later NaN takes the index on
    a[2, 0] = numpy.nan  # NaN first
    a[3] = numpy.where(RNG.random(n) < 0.5, -0.0, 0.0)  # signed zeros only
    a[4, -1] = numpy.nan  # NaN last
    return a


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumulative_extreme_matches_the_reference(reduce, dim):
    a = _hostile()
    x = _t(a)
    values, index = getattr(gradflow, "cum" + reduce)(x, dim)
    ref_v, ref_i = _ref_cum(a, dim, reduce)
    numpy.testing.assert_array_equal(_host(values), ref_v.astype(numpy.float32))
    numpy.testing.assert_array_equal(_host(index), ref_i)
    assert numpy.array_equal(numpy.signbit(_host(values)), numpy.signbit(ref_v))
    g = RNG.standard_normal(a.shape).astype(numpy.float32)
    values.backward(_t(g, grad=False))
    ref_g = _cum_grad_ref(a.shape, ref_i, g.astype(numpy.float64), dim % 2)
    numpy.testing.assert_allclose(_host(x.grad), ref_g, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_cumulative_extreme_3d_noncontiguous_int_and_empty(reduce):
    op = getattr(gradflow, "cum" + reduce)
    a = RNG.standard_normal((4, 6, 5)).astype(numpy.float32)
    x = _t(a).transpose(0, 2)  # non-contiguous
    values, index = op(x, 1)
    ref_v, ref_i = _ref_cum(a.transpose(2, 1, 0), 1, reduce)
    numpy.testing.assert_array_equal(_host(index), ref_i)
    numpy.testing.assert_allclose(_host(values), ref_v, rtol=0)
    ints = RNG.integers(0, 3, (3, 9))
    v, i = op(gradflow.tensor(ints), 1)
    r_v, r_i = _ref_cum(ints, 1, reduce)
    numpy.testing.assert_array_equal(_host(v), r_v.astype(numpy.int64))
    numpy.testing.assert_array_equal(_host(i), r_i)
    for shape, dim in (((0, 3), 1), ((3, 0), 1), ((3, 0), 0)):
        v, i = op(_t(numpy.zeros(shape, numpy.float32)), dim)
        assert tuple(v.shape) == shape and tuple(i.shape) == shape and i.dtype == gradflow.int64
    v, i = op(_t(numpy.float32(2.5)), 0)
    assert float(v.item()) == 2.5 and int(i.item()) == 0


def test_cumulative_extreme_monotone_rows_and_double_backward():
    a = numpy.stack([numpy.arange(50.0), 5 - numpy.arange(50.0)]).astype(numpy.float32)
    x = _t(a)
    values, index = gradflow.cummax(x, 1)
    numpy.testing.assert_array_equal(_host(index)[0], numpy.arange(50))
    numpy.testing.assert_array_equal(_host(index)[1], numpy.zeros(50))
    (g,) = gradflow.autograd.grad((values * values).sum(), x, create_graph=True)
    numpy.testing.assert_array_equal(_host(g)[0], 2 * a[0])
    numpy.testing.assert_array_equal(_host(g)[1], numpy.r_[500.0, numpy.zeros(49)])
    (gg,) = gradflow.autograd.grad(g.sum(), x)
    numpy.testing.assert_array_equal(_host(gg)[0], numpy.full(50, 2.0))
    numpy.testing.assert_array_equal(_host(gg)[1], numpy.r_[100.0, numpy.zeros(49)])


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_cumulative_extreme_vs_torch(reduce):
    torch = pytest.importorskip("torch")
    a = _hostile(300)
    for dim in (0, 1):
        x = _t(a)
        tx = torch.tensor(a, requires_grad=True)
        v, i = getattr(gradflow, "cum" + reduce)(x, dim)
        tv, ti = getattr(torch, "cum" + reduce)(tx, dim)
        numpy.testing.assert_array_equal(_host(v), tv.detach().numpy())
        numpy.testing.assert_array_equal(_host(i), ti.numpy())
        g = RNG.standard_normal(a.shape).astype(numpy.float32)
        v.backward(_t(g, grad=False))
        tv.backward(torch.tensor(g))
        numpy.testing.assert_allclose(_host(x.grad), tx.grad.numpy(), rtol=1e-5, atol=1e-5)


# ---- topk -----------------------------------------------------------------------------------
def _ref_topk(a, k, dim, largest):
    """The first k of the stable sort (NaN largest; equal values in index order)."""
    a = numpy.moveaxis(numpy.asarray(a, numpy.float64), dim, -1)
    key = numpy.where(numpy.isnan(a), numpy.inf, a)
    nan = numpy.isnan(a)
    idx = numpy.zeros(a.shape[:-1] + (k,), numpy.int64)
    for r in numpy.ndindex(a.shape[:-1]):
        n = a.shape[-1]
        if largest:  # NaN first, then descending; equal values in index order
            order = sorted(range(n), key=lambda j: (not nan[r][j], -key[r][j], j))
        else:  # ascending, NaN last
            order = sorted(range(n), key=lambda j: (nan[r][j], key[r][j], j))
        idx[r] = order[:k]
    return numpy.moveaxis(idx, -1, dim)


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("kind", ["distinct", "ties", "nan", "int"])
def test_topk_matches_the_stable_reference(largest, kind):
    n = 64
    if kind == "distinct":
        a = numpy.stack([RNG.permutation(n) for _ in range(6)]).astype(numpy.float32)
    elif kind == "ties":
        a = RNG.integers(0, 5, (6, n)).astype(numpy.float32)
        a[0] = numpy.where(RNG.random(n) < 0.5, -0.0, 0.0)
    elif kind == "nan":
        a = RNG.standard_normal((6, n)).astype(numpy.float32)
        a[RNG.random(a.shape) < 0.05] = numpy.nan
        a[1, :3] = numpy.nan
    else:
        a = RNG.integers(-4, 4, (6, n))
    for dim in (0, 1):
        for k in sorted({0, 1, 3, min(10, a.shape[dim]), a.shape[dim]}):
            t = _t(a, grad=a.dtype.kind == "f")
            values, index = gradflow.topk(t, k, dim, largest=largest)
            ref = _ref_topk(a, k, dim, largest)
            numpy.testing.assert_array_equal(_host(index), ref)
            numpy.testing.assert_array_equal(_host(values), numpy.take_along_axis(a, ref, dim))
            if a.dtype.kind == "f" and k:
                g = RNG.standard_normal(values.shape).astype(numpy.float32)
                values.backward(_t(g, grad=False))
                expect = numpy.zeros(a.shape, numpy.float32)
                numpy.put_along_axis(expect, ref, g, dim)
                numpy.testing.assert_array_equal(_host(t.grad), expect)


def test_topk_noncontiguous_3d_and_vs_torch():
    a = RNG.standard_normal((5, 200, 3)).astype(numpy.float32)
    x = _t(a).transpose(1, 2)
    values, index = gradflow.topk(x, 7, 2)
    ref = _ref_topk(a.transpose(0, 2, 1), 7, 2, True)
    numpy.testing.assert_array_equal(_host(index), ref)
    torch = pytest.importorskip("torch")
    b = numpy.stack([RNG.permutation(500) for _ in range(8)]).astype(numpy.float32) / 7
    b[2, 5] = numpy.nan
    for largest in (True, False):
        x = _t(b)
        tx = torch.tensor(b, requires_grad=True)
        v, i = gradflow.topk(x, 20, 1, largest=largest)
        tv, ti = torch.topk(tx, 20, 1, largest=largest)
        numpy.testing.assert_array_equal(_host(v), tv.detach().numpy())
        numpy.testing.assert_array_equal(_host(i), ti.numpy())
        g = RNG.standard_normal(tuple(tv.shape)).astype(numpy.float32)
        v.backward(_t(g, grad=False))
        tv.backward(torch.tensor(g))
        numpy.testing.assert_array_equal(_host(x.grad), tx.grad.numpy())


# ---- cumprod --------------------------------------------------------------------------------
def _cumprod_grad_ref(a, g, dim):
    """d/dx_i of sum_j g_j prod_{m<=j} x_m, by products that skip x_i (exact with zeros)."""
    a = numpy.moveaxis(numpy.asarray(a, numpy.float64), dim, -1)
    g = numpy.moveaxis(numpy.asarray(g, numpy.float64), dim, -1)
    out = numpy.zeros(a.shape)
    n = a.shape[-1]
    for r in numpy.ndindex(a.shape[:-1]):
        for i in range(n):
            out[r + (i,)] = sum(
                g[r + (j,)] * numpy.prod(numpy.delete(a[r][: j + 1], i)) for j in range(i, n)
            )
    return numpy.moveaxis(out, -1, dim)


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("zeros", [False, True])
def test_cumprod_gradient(dim, zeros):
    a = (1 + 0.3 * RNG.standard_normal((4, 9))).astype(numpy.float32)
    if zeros:
        a[1, 3] = 0
        a[2, 2] = a[2, 6] = 0
        a[3, 0] = 0
    x = _t(a)
    g = RNG.standard_normal(a.shape).astype(numpy.float32)
    gradflow.cumprod(x, dim).backward(_t(g, grad=False))
    numpy.testing.assert_allclose(_host(x.grad), _cumprod_grad_ref(a, g, dim), rtol=2e-5, atol=2e-5)


def test_cumprod_gradient_noncontiguous_underflow_and_double_backward():
    a = (1 + 0.3 * RNG.standard_normal((6, 5))).astype(numpy.float32)
    x = _t(a)
    g = RNG.standard_normal((5, 6)).astype(numpy.float32)
    gradflow.cumprod(x.t(), 1).backward(_t(g, grad=False))
    ref = _cumprod_grad_ref(a.T, g, 1).T
    numpy.testing.assert_allclose(_host(x.grad), ref, rtol=2e-5, atol=2e-5)
    tiny = numpy.full((2, 40), 1e-3, numpy.float32)  # the product underflows to 0: no zero
    y = _t(tiny)
    gradflow.cumprod(y, 1).sum().backward()
    assert numpy.all(numpy.isfinite(_host(y.grad)))
    z = _t(a[:2, :4])
    (gz,) = gradflow.autograd.grad(gradflow.cumprod(z, 1).sum(), z, create_graph=True)
    (gg,) = gradflow.autograd.grad(gz.sum(), z)
    assert numpy.all(numpy.isfinite(_host(gg)))


@pytest.mark.parametrize("dim", [0, 1])
def test_cumprod_gradient_large_no_zeros(dim):
    """Big enough for the blocked (or compiled) reversed cumsum."""
    a = (1 + 0.01 * RNG.standard_normal((160, 300))).astype(numpy.float32)
    g = RNG.standard_normal(a.shape).astype(numpy.float32)
    x = _t(a)
    gradflow.cumprod(x, dim).backward(_t(g, grad=False))
    a64, g64 = a.astype(numpy.float64), g.astype(numpy.float64)
    out = numpy.cumprod(a64, axis=dim)
    ref = numpy.flip(numpy.cumsum(numpy.flip(g64 * out, dim), axis=dim), dim) / a64
    numpy.testing.assert_allclose(_host(x.grad), ref, rtol=1e-4, atol=1e-4)


def test_cumprod_vs_torch():
    torch = pytest.importorskip("torch")
    a = (1 + 0.01 * RNG.standard_normal((128, 300))).astype(numpy.float32)
    b = a.copy()
    b[3, 10] = 0
    b[5, 0] = numpy.nan
    for arr in (a, b):
        for dim in (0, 1):
            x, tx = _t(arr), torch.tensor(arr, requires_grad=True)
            g = RNG.standard_normal(arr.shape).astype(numpy.float32)
            gradflow.cumprod(x, dim).backward(_t(g, grad=False))
            torch.cumprod(tx, dim).backward(torch.tensor(g))
            numpy.testing.assert_allclose(
                _host(x.grad), tx.grad.numpy(), rtol=1e-4, atol=1e-4, equal_nan=True
            )


# ---- einsum ---------------------------------------------------------------------------------
EQUATIONS = [
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,jk->ik", [(4, 5), (5, 3)]),
    ("ij,jk->ki", [(4, 5), (5, 3)]),
    ("i,i->", [(7,), (7,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,kl->", [(2, 3), (4, 5)]),  # summed inside each operand
    ("bij,bj->bi", [(3, 4, 5), (1, 5)]),  # broadcast
    ("ii,ij->j", [(4, 4), (4, 3)]),  # a diagonal: numpy.einsum
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    (",ij->ij", [(), (2, 3)]),
    ("ij,jk->ik", [(0, 5), (5, 3)]),
    ("ij,jk->ik", [(2, 0), (0, 3)]),
]


@pytest.mark.parametrize("equation,shapes", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_values_and_gradients(equation, shapes):
    arrays = [RNG.standard_normal(s).astype(numpy.float32) for s in shapes]
    ts = [_t(a) for a in arrays]
    out = gradflow.einsum(equation, *ts)
    ref = numpy.einsum(equation, *[a.astype(numpy.float64) for a in arrays])
    numpy.testing.assert_allclose(_host(out), ref, rtol=1e-5, atol=1e-5)
    g = RNG.standard_normal(out.shape).astype(numpy.float64)
    out.backward(_t(g.astype(numpy.float32), grad=False))
    eps = 1e-6
    for t, a in zip(ts, arrays):  # central differences of the linear map, in float64
        a64 = a.astype(numpy.float64)
        num = numpy.zeros(a.shape)
        for pos in numpy.ndindex(a.shape):
            d = numpy.zeros(a.shape)
            d[pos] = eps
            ops = [b.astype(numpy.float64) if b is not a else a64 for b in arrays]
            plus = [o + d if b is a else o for o, b in zip(ops, arrays)]
            minus = [o - d if b is a else o for o, b in zip(ops, arrays)]
            num[pos] = (
                numpy.sum(g * numpy.einsum(equation, *plus))
                - numpy.sum(g * numpy.einsum(equation, *minus))
            ) / (2 * eps)
        numpy.testing.assert_allclose(_host(t.grad), num, rtol=1e-4, atol=1e-4)


def test_einsum_nonfloat_noncontiguous_and_double_backward():
    a = RNG.integers(0, 5, (3, 4))
    b = RNG.integers(0, 5, (4, 2))
    out = gradflow.einsum("ij,jk->ik", gradflow.tensor(a), gradflow.tensor(b))
    numpy.testing.assert_array_equal(_host(out), a @ b)
    x = _t(RNG.standard_normal((5, 3)).astype(numpy.float32))
    y = _t(RNG.standard_normal((5, 4)).astype(numpy.float32))
    out = gradflow.einsum("ji,jk->ik", x, y)  # x.t() @ y
    numpy.testing.assert_allclose(_host(out), _host(x).T @ _host(y), rtol=1e-5, atol=1e-5)
    (gx,) = gradflow.autograd.grad(out.sum(), x, create_graph=True)
    (gy,) = gradflow.autograd.grad(gx.pow(2).sum(), y)
    # gx[j, i] = sum_k y[j, k]: d(sum gx^2)/dy[j, k] = 2 * 3 * sum_k y[j, k]
    expect = 6 * _host(y).sum(axis=1, keepdims=True) * numpy.ones((1, 4))
    numpy.testing.assert_allclose(_host(gy), expect, rtol=1e-5, atol=1e-5)


def test_einsum_vs_torch():
    torch = pytest.importorskip("torch")
    for equation, shapes in EQUATIONS:
        arrays = [RNG.standard_normal(s).astype(numpy.float32) for s in shapes]
        ts = [_t(a) for a in arrays]
        tts = [torch.tensor(a, requires_grad=True) for a in arrays]
        out, tout = gradflow.einsum(equation, *ts), torch.einsum(equation, *tts)
        numpy.testing.assert_allclose(_host(out), tout.detach().numpy(), rtol=1e-5, atol=1e-5)
        g = RNG.standard_normal(tuple(tout.shape)).astype(numpy.float32)
        out.backward(_t(g, grad=False))
        tout.backward(torch.tensor(g))
        for t, tt in zip(ts, tts):
            numpy.testing.assert_allclose(_host(t.grad), tt.grad.numpy(), rtol=1e-4, atol=1e-4)


# ---- the CuPy paths -------------------------------------------------------------------------
@pytest.mark.gpu
@needs_cuda
def test_the_routes_on_cuda_match_cpu():
    a = _hostile()
    for reduce in ("max", "min"):
        cv, ci = getattr(gradflow, "cum" + reduce)(_t(a), 1)
        gv, gi = getattr(gradflow, "cum" + reduce)(_t(a, device="cuda"), 1)
        numpy.testing.assert_array_equal(_host(gv), _host(cv))
        numpy.testing.assert_array_equal(_host(gi), _host(ci))
    b = numpy.stack([RNG.permutation(64) for _ in range(4)]).astype(numpy.float32)
    cv, ci = gradflow.topk(_t(b), 5, 1)
    gv, gi = gradflow.topk(_t(b, device="cuda"), 5, 1)
    numpy.testing.assert_array_equal(_host(gi), _host(ci))
    c = (1 + 0.3 * RNG.standard_normal((4, 9))).astype(numpy.float32)
    c[1, 3] = 0
    xc, xg = _t(c), _t(c, device="cuda")
    gradflow.cumprod(xc, 1).sum().backward()
    gradflow.cumprod(xg, 1).sum().backward()
    numpy.testing.assert_allclose(_host(xg.grad), _host(xc.grad), rtol=1e-5, atol=1e-5)
    p, q = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 4, 5))
    pc, qc = _t(p.astype(numpy.float32)), _t(q.astype(numpy.float32))
    pg, qg = _t(p.astype(numpy.float32), device="cuda"), _t(q.astype(numpy.float32), device="cuda")
    gradflow.einsum("bij,bjk->bik", pc, qc).sum().backward()
    gradflow.einsum("bij,bjk->bik", pg, qg).sum().backward()
    numpy.testing.assert_allclose(_host(pg.grad), _host(pc.grad), rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(_host(qg.grad), _host(qc.grad), rtol=1e-5, atol=1e-5)
