"""qr, eigh/eigvalsh, svd/svdvals, pinv/pinverse, matrix_rank, cond, lstsq, matrix_power,
matrix_exp, solve_triangular/triangular_solve, lu (gradflow/ops/spectral.py, matrix_functions.py,
triangular.py): values and gradients against torch autograd (float64, batched, losses touching
every output through quantities that do not depend on the sign of eigen/singular vectors),
double backward, finite differences, torch-free identities (reconstruction, orthogonality,
Penrose conditions), errors and edges."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow.testing import gradcheck


def _weights(shape, seed):
    return numpy.random.default_rng(seed).standard_normal(shape)


def _loss(outs, lib, like):
    """sum_i <W_i, out_i> with fixed random weights: touches every output."""
    total = 0
    for i, o in enumerate(outs):
        w = _weights(tuple(o.shape), 100 + i)
        w = lib.tensor(w, dtype=o.dtype, device=like.device)
        total = total + (o * w).sum()
    return total


def _as_tuple(r):
    return tuple(r) if isinstance(r, tuple) else (r,)


def _input(shape, seed, sym=False, well=False):
    a = numpy.random.default_rng(seed).standard_normal(shape)
    if sym:
        a = a + a.swapaxes(-1, -2)
    if well:
        a = a + 3 * numpy.eye(shape[-1])
    return a


def _against_torch(ours, theirs, a, device, *, check_fd=True, rtol=1e-9):
    torch = pytest.importorskip("torch")
    x = gf.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    yo, yt = _as_tuple(ours(x, gf)), _as_tuple(theirs(t, torch))
    assert len(yo) == len(yt)
    for o, r in zip(yo, yt):
        assert tuple(o.shape) == tuple(r.shape)
        numpy.testing.assert_allclose(o.detach().cpu().numpy(), r.detach().numpy(), 1e-8, 1e-10)
    _loss(yo, gf, x).backward()
    _loss(yt, torch, t).backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=rtol, atol=1e-10)
    if check_fd:
        assert gradcheck(
            lambda z: _loss(_as_tuple(ours(z, gf)), gf, z),
            [gf.tensor(a, device=device, requires_grad=True)],
        )


def _linalg(lib):
    return lib.linalg


# gauge-invariant views of the decompositions (the sign of each vector drops out)
def _svd_view(r):
    u, s, vh = r
    k = s.shape[-1]
    u, vh = u[..., :k], vh[..., :k, :]
    c = u.new_tensor(numpy.arange(1.0, k + 1))
    return (u * c) @ u.mT, s, (vh.mT * c) @ vh, (u * s.unsqueeze(-2)) @ vh


def _eigh_view(r):
    w, v = r
    c = v.new_tensor(numpy.arange(1.0, w.shape[-1] + 1))
    return w, (v * c) @ v.mT


def _sym(x):
    return x + x.mT


CASES = {
    "qr_square": ((4, 4), lambda x, L: tuple(L.linalg.qr(x))),
    "qr_tall_batch": ((2, 5, 3), lambda x, L: tuple(L.linalg.qr(x))),
    "qr_wide_batch": ((2, 3, 5), lambda x, L: tuple(L.linalg.qr(x))),
    "qr_complete_wide": ((3, 5), lambda x, L: tuple(L.linalg.qr(x, mode="complete"))),
    "qr_complete_square": ((3, 3), lambda x, L: tuple(L.linalg.qr(x, "complete"))),
    "torch_qr": ((4, 3), lambda x, L: tuple(L.qr(x))),
    "tensor_qr_some_false": ((3, 4), lambda x, L: tuple(x.qr(some=False))),
    "eigh": ((2, 4, 4), lambda x, L: _eigh_view(L.linalg.eigh(_sym(x)))),
    "eigh_upper": ((3, 3), lambda x, L: _eigh_view(L.linalg.eigh(_sym(x), UPLO="U"))),
    "eigh_reads_one_triangle": ((3, 3), lambda x, L: L.linalg.eigh(x, "U")[0]),
    "eigvalsh": ((2, 3, 3), lambda x, L: L.linalg.eigvalsh(_sym(x))),
    "eigvalsh_lower": ((4, 4), lambda x, L: L.linalg.eigvalsh(x)),
    "svd_reduced_tall": ((2, 5, 3), lambda x, L: _svd_view(L.linalg.svd(x, False))),
    "svd_reduced_wide": ((2, 3, 5), lambda x, L: _svd_view(L.linalg.svd(x, False))),
    "svd_full_tall": ((5, 3), lambda x, L: _svd_view(L.linalg.svd(x))),
    "svd_full_wide": ((3, 5), lambda x, L: _svd_view(L.linalg.svd(x, full_matrices=True))),
    "svd_square": ((4, 4), lambda x, L: _svd_view(L.linalg.svd(x))),
    "svdvals": ((2, 4, 3), lambda x, L: L.linalg.svdvals(x)),
    "torch_svd": ((4, 3), lambda x, L: _svd_view(_uv(L.svd(x)))),
    "torch_svd_full": ((3, 4), lambda x, L: _svd_view(_uv(L.svd(x, some=False)))),
    "tensor_svd_no_uv": ((3, 4), lambda x, L: x.svd(compute_uv=False)[1]),
    "pinv_tall": ((2, 5, 3), lambda x, L: L.linalg.pinv(x)),
    "pinv_wide": ((3, 5), lambda x, L: L.linalg.pinv(x)),
    "pinv_hermitian": ((2, 3, 3), lambda x, L: L.linalg.pinv(_sym(x), hermitian=True)),
    "pinverse": ((4, 3), lambda x, L: L.pinverse(x)),
    "tensor_pinverse": ((3, 4), lambda x, L: x.pinverse(rcond=1e-10)),
    "matrix_power_3": ((2, 3, 3), lambda x, L: L.linalg.matrix_power(x, 3)),
    "matrix_power_neg": ((3, 3), lambda x, L: L.linalg.matrix_power(_well(L, x), -2)),
    "matrix_power_1": ((3, 3), lambda x, L: L.matrix_power(x, 1)),
    "tensor_matrix_power_5": ((3, 3), lambda x, L: x.matrix_power(5)),
    "matrix_exp_small": ((3, 3), lambda x, L: L.linalg.matrix_exp(x * 0.01)),
    "matrix_exp": ((2, 4, 4), lambda x, L: L.linalg.matrix_exp(x)),
    "matrix_exp_scaled": ((2, 3, 3), lambda x, L: L.matrix_exp(x * 4)),
    "tensor_matrix_exp": ((3, 3), lambda x, L: x.matrix_exp()),
    "lstsq_tall": ((2, 5, 3), lambda x, L: L.linalg.lstsq(x, _rhs(L, x, 2)).solution),
    "lstsq_wide": ((3, 5), lambda x, L: L.linalg.lstsq(x, _rhs(L, x, 2)).solution),
    "lstsq_vector": ((4, 2), lambda x, L: L.linalg.lstsq(x, _rhs(L, x, None))[0]),
    "cond": ((2, 3, 3), lambda x, L: L.linalg.cond(x)),
    "cond_neg2": ((3, 4), lambda x, L: L.linalg.cond(x, -2)),
    # torch's own backward of cond(p != 2) fails (it writes into a saved inverse): its formula
    "cond_fro": (
        (3, 3),
        lambda x, L: L.linalg.cond(x, "fro"),
        lambda x, L: L.linalg.matrix_norm(x, "fro") * L.linalg.matrix_norm(L.linalg.inv(x), "fro"),
    ),
    "cond_1": (
        (2, 3, 3),
        lambda x, L: L.linalg.cond(x, 1),
        lambda x, L: L.linalg.matrix_norm(x, 1) * L.linalg.matrix_norm(L.linalg.inv(x), 1),
    ),
    "solve_tri_upper": ((2, 3, 3), lambda x, L: _tri(L, x, upper=True)),
    "solve_tri_lower_right": ((3, 3), lambda x, L: _tri(L, x, upper=False, left=False)),
    "solve_tri_unit": ((3, 3), lambda x, L: _tri(L, x, upper=True, unitriangular=True)),
    "triangular_solve": ((3, 3), lambda x, L: L.triangular_solve(_rhs(L, x, 2), _well(L, x))),
    "triangular_solve_t": (
        (2, 3, 3),
        lambda x, L: _rhs(L, x, 2).triangular_solve(_well(L, x), upper=False, transpose=True)[0],
    ),
}


def _uv(r):
    u, s, v = r
    return u, s, v.mT


def _rhs(L, x, k):
    shape = tuple(x.shape[:-1]) + ((k,) if k else ())
    b = _weights(shape, 7)
    return L.tensor(b, dtype=x.dtype, device=x.device)


def _well(L, x):
    return x + 3 * L.eye(x.shape[-1], dtype=x.dtype, device=x.device)


def _tri(L, x, **kw):
    b = _rhs(L, x, 2)
    if not kw.get("left", True):
        b = b.mT
    return L.linalg.solve_triangular(_well(L, x), b, **kw)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name, device):
    shape, fn, *theirs = CASES[name]
    # eigh reads one triangle, but its gradient is PyTorch's symmetric one, not the derivative
    # in the unread triangle's entries: finite differences apply to a symmetrized input only
    check_fd = name not in ("eigh_reads_one_triangle", "eigvalsh_lower")
    _against_torch(fn, theirs[0] if theirs else fn, _input(shape, 1), device, check_fd=check_fd)


def test_double_backward_matches_torch(device):
    torch = pytest.importorskip("torch")
    fns = [
        lambda x, L: L.linalg.qr(x)[1],
        lambda x, L: L.linalg.qr(x)[0] @ L.linalg.qr(x)[0].mT,
        lambda x, L: _eigh_view(L.linalg.eigh(_sym(x)))[1],
        lambda x, L: L.linalg.eigvalsh(_sym(x)),
        lambda x, L: _svd_view(L.linalg.svd(x, False))[3] + _svd_view(L.linalg.svd(x, False))[0],
        lambda x, L: L.linalg.svdvals(x),
        lambda x, L: L.linalg.pinv(x),
        lambda x, L: L.linalg.matrix_exp(x),
        lambda x, L: L.linalg.matrix_power(x, -2),
    ]
    a = _input((2, 3, 3), 5, well=True)
    for fn in fns:
        x = gf.tensor(a, device=device, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        w = _weights((2, 3, 3) if fn is not fns[3] and fn is not fns[5] else (2, 3), 9)
        (gx,) = gf.autograd.grad(
            (fn(x, gf) * gf.tensor(w, device=device)).sum(), [x], create_graph=True
        )
        (gt,) = torch.autograd.grad((fn(t, torch) * torch.tensor(w)).sum(), [t], create_graph=True)
        v = _weights((2, 3, 3), 11)
        (hx,) = gf.autograd.grad((gx * gf.tensor(v, device=device)).sum(), [x])
        (ht,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), [t])
        numpy.testing.assert_allclose(gx.detach().cpu().numpy(), gt.detach().numpy(), 1e-8, 1e-10)
        numpy.testing.assert_allclose(hx.cpu().numpy(), ht.numpy(), 1e-7, 1e-9)


def test_svd_full_matrices_extra_columns_get_no_gradient():
    """PyTorch narrows U/Vh to their first min(m, n) columns/rows in backward."""
    torch = pytest.importorskip("torch")
    for shape in [(5, 3), (3, 5)]:
        a = _input(shape, 2)
        x, t = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        u, s, vh = gf.linalg.svd(x)
        tu, ts, tvh = torch.linalg.svd(t)
        # gradients reaching only the extra columns/rows are dropped
        (u[..., 3:].sum() + vh[..., 3:, :].sum() + s.sum()).backward()
        (tu[..., 3:].sum() + tvh[..., 3:, :].sum() + ts.sum()).backward()
        numpy.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), 1e-10, 1e-12)


# ---- torch-free identities --------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 4), (2, 6, 3), (3, 2, 5)])
def test_qr_identities(shape, device):
    a = _input(shape, 3)
    x = gf.tensor(a, device=device)
    q, r = gf.linalg.qr(x)
    k = min(shape[-2:])
    assert tuple(q.shape) == shape[:-1] + (k,) and tuple(r.shape) == shape[:-2] + (k, shape[-1])
    numpy.testing.assert_allclose((q @ r).cpu().numpy(), a, atol=1e-12)
    eye = numpy.broadcast_to(numpy.eye(k), q.shape[:-2] + (k, k))
    numpy.testing.assert_allclose((q.mT @ q).cpu().numpy(), eye, atol=1e-12)
    assert numpy.all(numpy.tril(r.cpu().numpy(), -1) == 0)
    qc, rc = gf.linalg.qr(x, mode="complete")
    assert qc.shape[-1] == qc.shape[-2] == shape[-2]
    numpy.testing.assert_allclose((qc @ rc).cpu().numpy(), a, atol=1e-12)
    empty_q, r_only = gf.linalg.qr(x, "r")
    assert empty_q.shape == (0,)
    numpy.testing.assert_allclose(numpy.abs(r_only.cpu().numpy()), numpy.abs(r.cpu().numpy()))


def test_eigh_svd_pinv_identities(device):
    a = _input((2, 4, 4), 4, sym=True)
    w, v = gf.linalg.eigh(gf.tensor(a, device=device))
    assert numpy.all(numpy.diff(w.cpu().numpy(), axis=-1) > 0)  # ascending
    numpy.testing.assert_allclose(((v * w.unsqueeze(-2)) @ v.mT).cpu().numpy(), a, atol=1e-12)
    numpy.testing.assert_allclose(gf.linalg.eigvalsh(gf.tensor(a)).numpy(), w.cpu().numpy())
    b = _input((2, 5, 3), 4)
    u, s, vh = gf.linalg.svd(gf.tensor(b, device=device), full_matrices=False)
    assert numpy.all(numpy.diff(s.cpu().numpy(), axis=-1) < 0)  # descending
    numpy.testing.assert_allclose(((u * s.unsqueeze(-2)) @ vh).cpu().numpy(), b, atol=1e-12)
    numpy.testing.assert_allclose(gf.linalg.svdvals(gf.tensor(b)).numpy(), s.cpu().numpy())
    p = gf.linalg.pinv(gf.tensor(b, device=device)).cpu().numpy()
    numpy.testing.assert_allclose(b @ p @ b, b, atol=1e-12)  # Penrose conditions
    numpy.testing.assert_allclose(p @ b @ p, p, atol=1e-12)
    numpy.testing.assert_allclose(b @ p, (b @ p).swapaxes(-1, -2), atol=1e-12)
    numpy.testing.assert_allclose(p, numpy.linalg.pinv(b), atol=1e-12)


def test_matrix_exp_identities(device):
    a = _input((3, 4, 4), 6, sym=True) * numpy.array([0.001, 1.0, 30.0])[:, None, None]
    e = gf.linalg.matrix_exp(gf.tensor(a, device=device)).cpu().numpy()
    w, v = numpy.linalg.eigh(a)
    expected = (v * numpy.exp(w)[..., None, :]) @ v.swapaxes(-1, -2)
    numpy.testing.assert_allclose(e, expected, rtol=1e-11, atol=1e-13)
    b = _input((4, 4), 6) * 3
    eb = gf.matrix_exp(gf.tensor(b)).numpy() @ gf.matrix_exp(gf.tensor(-b)).numpy()
    numpy.testing.assert_allclose(eb, numpy.eye(4), atol=1e-10)
    nil = numpy.triu(numpy.ones((3, 3)), 1)  # nilpotent: exp = I + N + N^2/2
    expected = numpy.eye(3) + nil + nil @ nil / 2
    numpy.testing.assert_allclose(gf.matrix_exp(gf.tensor(nil)).numpy(), expected)
    f32 = gf.linalg.matrix_exp(gf.tensor(b.astype(numpy.float32)))
    assert f32.dtype == gf.float32
    numpy.testing.assert_allclose(f32.numpy(), gf.matrix_exp(gf.tensor(b)).numpy(), rtol=1e-4)


def test_matrix_power_rank_lstsq_solve_triangular_identities():
    a = _input((3, 3), 8, well=True)
    m = gf.tensor(a)
    for n in [4, -3]:
        expected = numpy.linalg.matrix_power(a, n)
        numpy.testing.assert_allclose(gf.linalg.matrix_power(m, n).numpy(), expected)
    zero = gf.linalg.matrix_power(gf.ones(2, 3, 3, dtype=gf.int64), 0)
    assert zero.dtype == gf.int64 and zero.tolist() == [numpy.eye(3).tolist()] * 2
    assert gf.linalg.matrix_power(gf.ones(3, 3, dtype=gf.int64), 2).tolist() == [[3] * 3] * 3
    low_rank = numpy.outer([1.0, 2, 3], [1.0, 0, 1]) + numpy.outer([0.0, 1, 0], [2.0, 1, 0])
    rank = gf.linalg.matrix_rank(gf.tensor(numpy.stack([low_rank, a])))
    assert rank.dtype == gf.int64 and rank.tolist() == [2, 3]
    diag = gf.tensor(numpy.diag([3.0, 1e-3, -2.0]))
    assert gf.linalg.matrix_rank(diag, atol=0.01).item() == 2
    assert gf.linalg.matrix_rank(diag, 0.01).item() == 2  # tol, PyTorch's older name
    assert gf.linalg.matrix_rank(diag, hermitian=True, rtol=1e-3).item() == 2
    assert gf.linalg.matrix_rank(gf.zeros(3, 0, dtype=gf.float64)).item() == 0
    pinv_cut = gf.linalg.pinv(diag, atol=0.01).numpy()
    numpy.testing.assert_allclose(pinv_cut, numpy.diag([1 / 3, 0, -0.5]))
    batch_atol = gf.linalg.pinv(gf.stack([diag, diag]), atol=gf.tensor([0.01, 0.0])).numpy()
    numpy.testing.assert_allclose(batch_atol[1], numpy.diag([1 / 3, 1000, -0.5]))
    tall, rhs = _input((6, 3), 9), _input((6, 2), 10)
    sol = gf.linalg.lstsq(gf.tensor(tall), gf.tensor(rhs)).solution.numpy()
    numpy.testing.assert_allclose(tall.T @ tall @ sol, tall.T @ rhs, atol=1e-12)  # normal eqs
    upper = numpy.triu(a)
    x = gf.linalg.solve_triangular(gf.tensor(a), gf.tensor(rhs[:3]), upper=True).numpy()
    numpy.testing.assert_allclose(upper @ x, rhs[:3], atol=1e-12)  # reads only the triangle
    unit = numpy.tril(a, -1) + numpy.eye(3)
    b = gf.tensor(rhs[:3].T.copy()).mT.contiguous().mT  # (2, 3), non-contiguous
    y = gf.linalg.solve_triangular(gf.tensor(a), b, upper=False, left=False, unitriangular=True)
    numpy.testing.assert_allclose(y.numpy() @ unit, rhs[:3].T, atol=1e-12)


def test_lstsq_fields_follow_torchs_drivers():
    tall, rhs = gf.tensor(_input((5, 3), 1)), gf.tensor(_input((5, 2), 2))
    r = gf.linalg.lstsq(tall, rhs)
    assert r.residuals.shape == (0,) and r.rank.item() == 3 and r.singular_values.shape == (0,)
    r = gf.linalg.lstsq(tall, rhs, driver="gelsd")
    resid = ((tall @ r.solution - rhs) ** 2).sum(-2)
    numpy.testing.assert_allclose(r.residuals.numpy(), resid.numpy())
    numpy.testing.assert_allclose(r.singular_values.numpy(), gf.linalg.svdvals(tall).numpy())
    r = gf.linalg.lstsq(tall, rhs, driver="gels")
    assert r.rank.shape == (0,) and r.residuals.shape == (2,)
    r = gf.linalg.lstsq(tall.mT, rhs[:3], driver="gelss")
    assert r.residuals.shape == (0,) and r.singular_values.shape == (3,)
    assert r.rank.dtype == gf.int64


def test_matches_torch_on_edges():
    torch = pytest.importorskip("torch")
    # float32 in, float32 out and gradient; non-contiguous input
    a = _input((4, 3), 3).astype(numpy.float32)
    x = gf.tensor(a.T.copy().T, requires_grad=True)
    xt = x.mT.contiguous().mT
    for out in [gf.linalg.qr(xt)[1], gf.linalg.svdvals(xt), gf.linalg.pinv(xt)]:
        assert out.dtype == gf.float32
    (gf.linalg.qr(xt)[1].sum() + gf.linalg.svd(xt, False)[1].sum()).backward()
    assert x.grad.dtype == gf.float32
    t = torch.tensor(a, requires_grad=True)
    (torch.linalg.qr(t)[1].sum() + torch.linalg.svd(t, False)[1].sum()).backward()
    numpy.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)
    # empty shapes as torch gives them
    shapes = {
        "qr": lambda L, e: L.linalg.qr(e(3, 0), "complete"),
        "svd": lambda L, e: L.linalg.svd(e(0, 3)),
        "svd_reduced": lambda L, e: L.linalg.svd(e(2, 0, 3), full_matrices=False),
        "eigh": lambda L, e: L.linalg.eigh(e(2, 0, 0)),
        "pinv": lambda L, e: (L.linalg.pinv(e(3, 0)),),
        "matrix_exp": lambda L, e: (L.linalg.matrix_exp(e(0, 2, 2)),),
        "svdvals": lambda L, e: (L.linalg.svdvals(e(0, 4)),),
    }
    for name, f in shapes.items():
        ours = f(gf, lambda *s: gf.zeros(*s, dtype=gf.float64))
        theirs = f(torch, lambda *s: torch.zeros(*s, dtype=torch.float64))
        assert [tuple(o.shape) for o in ours] == [tuple(o.shape) for o in theirs], name
    # repeated eigen/singular values: the values-only gradients stay finite
    eye = gf.eye(3, dtype=gf.float64, requires_grad=True)
    (gf.linalg.eigvalsh(eye).sum() + gf.linalg.svdvals(eye).sum()).backward()
    assert eye.grad.tolist() == (2 * torch.eye(3, dtype=torch.float64)).tolist()
    # ... and through eigh/svd when only the values are used (PyTorch: undefined vector grads)
    eye = gf.eye(3, dtype=gf.float64, requires_grad=True)
    (gf.linalg.eigh(eye).eigenvalues.sum() + gf.linalg.svd(eye).S.sum()).backward()
    assert eye.grad.tolist() == (2 * torch.eye(3, dtype=torch.float64)).tolist()
    # singular matrices: cond is inf in every norm, as torch gives it
    sing = numpy.stack([numpy.zeros((3, 3)), 2 * numpy.eye(3)])
    for p in [None, 1, "fro", math.inf]:
        ours = gf.linalg.cond(gf.tensor(sing), p).numpy()
        theirs = torch.linalg.cond(torch.tensor(sing), p).numpy()
        numpy.testing.assert_allclose(ours, theirs)
    # NaN: matrix_exp and qr give NaN; the others raise (torch's LinAlgError is a RuntimeError)
    nan = gf.full((3, 3), math.nan, dtype=gf.float64)
    assert numpy.isnan(gf.linalg.matrix_exp(nan).numpy()).all()
    assert numpy.isnan(gf.linalg.qr(nan)[0].numpy()).all()
    for f in [gf.linalg.eigh, gf.linalg.eigvalsh, gf.linalg.svd, gf.linalg.svdvals, gf.linalg.pinv]:
        with pytest.raises(RuntimeError, match="did not converge"):
            f(nan)
    inf = gf.tensor([[math.inf, 0.0], [0.0, 1.0]])
    assert numpy.isnan(gf.linalg.matrix_exp(inf).numpy()).all()


# ---- errors -----------------------------------------------------------------------------------

ERRORS = [
    (
        lambda: gf.linalg.qr(gf.ones(3, 3, dtype=gf.int64)),
        RuntimeError,
        "linalg.qr: Expected a floating point.*int64",
    ),
    (lambda: gf.linalg.qr(gf.ones(3)), RuntimeError, "at least 2 dimensions"),
    (lambda: gf.linalg.qr(gf.ones(3, 3), mode="x"), RuntimeError, "unrecognized mode 'x'"),
    (lambda: gf.linalg.qr([[1.0]]), TypeError, "expected a Tensor"),
    (lambda: gf.linalg.eigh(gf.ones(2, 3)), RuntimeError, "square matrices, but they are 2 by 3"),
    (lambda: gf.linalg.eigh(gf.eye(2), UPLO="X"), RuntimeError, "UPLO argument to be 'L' or 'U'"),
    (lambda: gf.linalg.eigvalsh(gf.ones(2, 2, dtype=gf.int32)), RuntimeError, "int32"),
    (lambda: gf.linalg.svd(gf.ones(2, 2, dtype=gf.int64)), RuntimeError, "linalg.svd.*int64"),
    (lambda: gf.linalg.svd(gf.ones(2, 2), driver="gesvd"), RuntimeError, "only supported on CUDA"),
    (lambda: gf.linalg.svdvals(gf.ones(2, 2), driver="x"), RuntimeError, "only supported on CUDA"),
    (lambda: gf.linalg.svdvals(gf.ones(4)), RuntimeError, "at least 2 dimensions"),
    (lambda: gf.linalg.pinv(gf.ones(3, dtype=gf.float64)), RuntimeError, "2 or more dimensions"),
    (lambda: gf.linalg.pinv(gf.ones(2, 3), hermitian=True), RuntimeError, "square"),
    (lambda: gf.linalg.matrix_rank(gf.ones(3)), RuntimeError, "at least 2 dimensions"),
    (lambda: gf.linalg.matrix_exp(gf.ones(2, 3)), RuntimeError, "square matrices"),
    (lambda: gf.linalg.matrix_exp(gf.ones(2, 2, dtype=gf.int64)), RuntimeError, "int64"),
    (lambda: gf.linalg.matrix_power(gf.ones(2, 3), 2), RuntimeError, "square matrices"),
    (lambda: gf.linalg.matrix_power(gf.ones(2, 2), 2.0), TypeError, "n must be an int"),
    (
        lambda: gf.linalg.matrix_power(gf.ones(2, 2, dtype=gf.int64), -1),
        RuntimeError,
        "linalg.inv.*int64",
    ),
    (lambda: gf.linalg.matrix_power(gf.zeros(2, 2), -1), RuntimeError, "singular"),
    (lambda: gf.linalg.cond(gf.eye(3), 3), RuntimeError, "invalid norm type"),
    (lambda: gf.linalg.cond(gf.ones(2, 3), 1), RuntimeError, "square matrices"),
    (lambda: gf.linalg.cond(gf.ones(3)), RuntimeError, "at least 2 dimensions"),
    (lambda: gf.linalg.lstsq(gf.ones(5, 3), gf.ones(4, 2)), RuntimeError, "should match"),
    (
        lambda: gf.linalg.lstsq(gf.ones(5, 3), gf.ones(5, 2, dtype=gf.float64)),
        RuntimeError,
        "same dtype",
    ),
    (lambda: gf.linalg.lstsq(gf.ones(5, 3), gf.ones(5, 2), driver="x"), RuntimeError, "driver"),
    (
        lambda: gf.linalg.solve_triangular(gf.eye(3), gf.ones(3), upper=True),
        RuntimeError,
        "B must have at least 2",
    ),
    (
        lambda: gf.linalg.solve_triangular(gf.eye(3), gf.ones(2, 2), upper=True),
        RuntimeError,
        "Incompatible shapes",
    ),
    (
        lambda: gf.linalg.solve_triangular(gf.eye(3), gf.ones(3, 2, dtype=gf.float64), upper=True),
        RuntimeError,
        "same dtype",
    ),
]


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_errors(index):
    call, error, message = ERRORS[index]
    with pytest.raises(error, match=message):
        call()


def test_backward_errors_follow_torch():
    torch = pytest.importorskip("torch")
    for mode, shape, message in [
        ("complete", (5, 3), "not differentiable when mode='complete' and nrows > ncols"),
        ("r", (3, 3), "depends on Q, which is not computed when mode='r'"),
    ]:
        x = gf.ones(*shape, dtype=gf.float64).requires_grad_()
        r = gf.linalg.qr(x * gf.tensor(_weights(shape, 0)), mode=mode)[1]
        with pytest.raises(RuntimeError, match=re_escape(message)):
            r.sum().backward()
        t = torch.ones(*shape, dtype=torch.float64, requires_grad=True)
        rt = torch.linalg.qr(t * torch.tensor(_weights(shape, 0)), mode=mode)[1]
        with pytest.raises(RuntimeError, match=re_escape(message)):
            rt.sum().backward()


def re_escape(text):
    import re

    return re.escape(text)


def test_linalg_namespace_lists_the_new_names():
    for name in ["qr", "eigh", "eigvalsh", "svd", "svdvals", "pinv", "matrix_rank", "cond",
                 "lstsq", "matrix_power", "matrix_exp", "solve_triangular"]:  # fmt: skip
        assert name in gf.linalg.__all__ and callable(getattr(gf.linalg, name))
    with pytest.raises(AttributeError, match="gradflow.linalg.eig is not implemented"):
        gf.linalg.eig  # noqa: B018
    q = gf.linalg.qr(gf.eye(2))
    assert type(q).__name__ == "linalg_qr" and q.Q is q[0] and q.R is q[1]
    assert type(gf.linalg.svd(gf.eye(2))).__name__ == "linalg_svd"
    assert gf.svd(gf.eye(2)).V.shape == (2, 2)
    assert gf.linalg.eigh(gf.eye(2)).eigenvalues.tolist() == [1.0, 1.0]
    solved = gf.triangular_solve(gf.ones(2, 1), gf.eye(2))
    assert solved.cloned_coefficient.tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize(
    "kw",
    [
        {"upper": True},
        {"upper": False, "left": False},
        {"upper": True, "unitriangular": True},
        {"upper": False, "left": False, "unitriangular": True},
    ],
)
def test_solve_triangular_double_backward_and_singular_match_torch(kw, device):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(3)
    a = rng.standard_normal((2, 3, 3)) + 3 * numpy.eye(3)
    b = rng.standard_normal((3, 2) if kw.get("left", True) else (2, 3))  # batch broadcast
    xa, xb = (gf.tensor(v, device=device, requires_grad=True) for v in (a, b))
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a, b))
    yo = gf.linalg.solve_triangular(xa, xb, **kw)
    yt = torch.linalg.solve_triangular(ta, tb, **kw)
    numpy.testing.assert_allclose(yo.detach().cpu().numpy(), yt.detach().numpy(), 1e-12)
    w = gf.tensor(rng.standard_normal(tuple(yt.shape)), device=device)
    go = gf.autograd.grad((yo * w).sum(), [xa, xb], create_graph=True)
    gt = torch.autograd.grad(
        (yt * torch.tensor(w.cpu().numpy())).sum(), [ta, tb], create_graph=True
    )
    v1, v2 = rng.standard_normal(a.shape), rng.standard_normal(b.shape)
    lo = (go[0] * gf.tensor(v1, device=device)).sum() + (go[1] * gf.tensor(v2, device=device)).sum()
    ho = gf.autograd.grad(lo, [xa, xb])
    ht = torch.autograd.grad(
        (gt[0] * torch.tensor(v1)).sum() + (gt[1] * torch.tensor(v2)).sum(), [ta, tb]
    )
    for o, t in [*zip(go, gt), *zip(ho, ht)]:
        numpy.testing.assert_allclose(o.detach().cpu().numpy(), t.detach().numpy(), 1e-10, 1e-12)
    # a zero on the diagonal: inf/NaN as LAPACK's triangular solve gives them, no error
    z = numpy.triu(numpy.ones((3, 3)))
    z[1, 1] = 0
    zs = z if kw["upper"] else z.T
    rhs = numpy.ones((3, 2)) if kw.get("left", True) else numpy.ones((2, 3))
    ours = gf.linalg.solve_triangular(
        gf.tensor(zs, device=device), gf.tensor(rhs, device=device), **kw
    )
    theirs = torch.linalg.solve_triangular(torch.tensor(zs), torch.tensor(rhs), **kw)
    numpy.testing.assert_array_equal(ours.cpu().numpy(), theirs.numpy())


# ---- LU ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 4), (2, 5, 3), (2, 3, 5), (12, 12)])
def test_lu_and_lu_factor_match_torch(shape, device):
    torch = pytest.importorskip("torch")
    a = _input(shape, 21)

    def ours(x, L):
        p, low, up = L.linalg.lu(x)
        lu, piv = L.linalg.lu_factor(x)
        assert piv.dtype == L.int32 and tuple(piv.shape) == shape[:-1][:-1] + (min(shape[-2:]),)
        return p, low, up, lu

    _against_torch(ours, ours, a, device)
    x, t = gf.tensor(a, device=device), torch.tensor(a)
    assert gf.linalg.lu_factor(x).pivots.tolist() == torch.linalg.lu_factor(t).pivots.tolist()
    p, low, up = gf.lu_unpack(*gf.linalg.lu_factor(x))
    numpy.testing.assert_allclose((p @ low @ up).cpu().numpy(), a, atol=1e-12)


@pytest.mark.parametrize(
    "kw", [{}, {"adjoint": True}, {"left": False}, {"left": False, "adjoint": True}]
)
def test_lu_solve_matches_torch(kw, device):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(4)
    a = rng.standard_normal((2, 4, 4))
    b = rng.standard_normal((4, 3) if kw.get("left", True) else (3, 4))
    xa, xb = (gf.tensor(v, device=device, requires_grad=True) for v in (a, b))
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a, b))
    y = gf.linalg.lu_solve(*gf.linalg.lu_factor(xa), xb, **kw)
    ty = torch.linalg.lu_solve(*torch.linalg.lu_factor(ta), tb, **kw)
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), 1e-10, 1e-12)
    w = rng.standard_normal(tuple(ty.shape))
    (y * gf.tensor(w, device=device)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    numpy.testing.assert_allclose(xa.grad.cpu().numpy(), ta.grad.numpy(), 1e-8, 1e-10)
    numpy.testing.assert_allclose(xb.grad.cpu().numpy(), tb.grad.numpy(), 1e-8, 1e-10)
    if not kw:
        lu, piv = torch.linalg.lu_factor(torch.tensor(a))
        ours = [gf.tensor(v, device=device) for v in (b, lu.numpy(), piv.numpy())]
        expected = torch.lu_solve(torch.tensor(b), lu, piv).numpy()
        numpy.testing.assert_allclose(gf.lu_solve(*ours).cpu().numpy(), expected)


def test_lu_double_backward_and_routes():
    torch = pytest.importorskip("torch")
    from gradflow.backend import blas

    a = _input((2, 5, 5), 22)
    x, t = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    w = _weights((2, 5, 5), 1)
    loss = (gf.linalg.lu_factor(x)[0] * gf.tensor(w)).sum()
    (gx,) = gf.autograd.grad(loss, [x], create_graph=True)
    tloss = (torch.linalg.lu_factor(t)[0] * torch.tensor(w)).sum()
    (gt,) = torch.autograd.grad(tloss, [t], create_graph=True)
    v = _weights((2, 5, 5), 2)
    (hx,) = gf.autograd.grad((gx * gf.tensor(v)).sum(), [x])
    (ht,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), [t])
    numpy.testing.assert_allclose(hx.numpy(), ht.numpy(), 1e-8, 1e-10)
    # LAPACK's getrf/trtri (NumPy's OpenBLAS) and the NumPy block route give the same factors
    big = _input((3, 40, 40), 23)
    lapack = gf.linalg.lu_factor(gf.tensor(big))
    eye = gf.eye(40, dtype=gf.float64)
    inv = gf.linalg.solve_triangular(gf.tensor(big) + 40 * eye, eye, upper=True)
    with blas.disabled():
        blocks = gf.linalg.lu_factor(gf.tensor(big))
        inv_blocks = gf.linalg.solve_triangular(gf.tensor(big) + 40 * eye, eye, upper=True)
    assert lapack.pivots.tolist() == blocks.pivots.tolist()
    numpy.testing.assert_allclose(lapack.LU.numpy(), blocks.LU.numpy(), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(inv.numpy(), inv_blocks.numpy(), rtol=1e-10, atol=1e-14)


def test_lu_errors_and_edges():
    torch = pytest.importorskip("torch")
    z = numpy.zeros((3, 3))
    z[0, 1] = 1
    with pytest.raises(RuntimeError, match=re_escape("lu_factor: U[1,1] is zero")):
        gf.linalg.lu_factor(gf.tensor(z))
    p, low, up = gf.linalg.lu(gf.tensor(z))  # linalg.lu factors a singular matrix
    tp, tl, tu = torch.linalg.lu(torch.tensor(z))
    for o, r in [(p, tp), (low, tl), (up, tu)]:
        numpy.testing.assert_array_equal(o.numpy(), r.numpy())
    with pytest.raises(RuntimeError, match="without pivoting is not implemented"):
        gf.linalg.lu(gf.eye(2), pivot=False)
    with pytest.raises(RuntimeError, match="Expected a floating point"):
        gf.linalg.lu_factor(gf.ones(2, 2, dtype=gf.int64))
    lu, piv = gf.linalg.lu_factor(gf.eye(3, dtype=gf.float64))
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        gf.linalg.lu_solve(lu, piv, gf.ones(2, 2, dtype=gf.float64))
    with pytest.raises(RuntimeError, match="pivots of shape"):
        gf.linalg.lu_solve(lu, piv[:2], gf.ones(3, 2, dtype=gf.float64))
    with pytest.raises(TypeError, match="integer Tensor"):
        gf.linalg.lu_solve(lu, piv.double(), gf.ones(3, 2, dtype=gf.float64))
    for shape in [(0, 3, 3), (3, 0), (0, 4)]:
        ours = gf.linalg.lu(gf.zeros(*shape, dtype=gf.float64))
        theirs = torch.linalg.lu(torch.zeros(*shape, dtype=torch.float64))
        assert [tuple(o.shape) for o in ours] == [tuple(r.shape) for r in theirs]
    # torch.lu / Tensor.lu: lu_factor's pair, or with get_infos the zero pivots, no error
    batch = numpy.stack([numpy.eye(3), z])
    lu, piv, info = gf.lu(gf.tensor(batch), get_infos=True)
    tlu, tpiv, tinfo = torch.lu(torch.tensor(batch), get_infos=True)
    numpy.testing.assert_array_equal(lu.numpy(), tlu.numpy())
    assert piv.tolist() == tpiv.tolist() and info.tolist() == tinfo.tolist() == [0, 1]
    assert info.dtype == gf.int32
    with pytest.raises(RuntimeError, match="is zero"):
        gf.tensor(batch).lu()
    assert gf.tensor(numpy.eye(2)).lu()[1].tolist() == [1, 2]
    f32 = gf.linalg.lu_factor(gf.tensor(_input((4, 4), 3).astype(numpy.float32)))
    assert f32.LU.dtype == gf.float32 and f32.pivots.dtype == gf.int32


def test_svd_driver_is_for_cuda_only(device):
    x = gf.eye(2, device=device)
    if device == "cpu":
        with pytest.raises(RuntimeError, match="only supported on CUDA"):
            gf.linalg.svd(x, driver="gesvdj")
    else:
        assert gf.linalg.svd(x, driver="gesvdj").S.tolist() == [1.0, 1.0]
        with pytest.raises(RuntimeError, match="driver must be"):
            gf.linalg.svdvals(x, driver="x")
