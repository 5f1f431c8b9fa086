"""gradflow/backend/lapack.py: float32 QR, symmetric eigendecomposition, SVD, inv, det,
slogdet, solve and Cholesky from NumPy's OpenBLAS against numpy.linalg in float64, over tall,
wide, square, batched, non-contiguous and 1x1 inputs (MIN_SIDE lowered to reach the small
ones); the cases it leaves to numpy.linalg (None); and that linalg's ops take it."""

import numpy
import pytest

import gradflow as gf
from gradflow.backend import blas, lapack

pytestmark = pytest.mark.skipif(lapack._load() is None, reason="no OpenBLAS LAPACK loaded")


@pytest.fixture(autouse=True)
def every_size(monkeypatch):
    monkeypatch.setattr(lapack, "MIN_SIDE", 1)


SHAPES = [(5, 3), (3, 5), (4, 4), (2, 3, 7, 6), (1, 1), (6, 1)]


def _input(shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32)


def _close(a, b, tol=2e-5):
    scale = max(1.0, float(numpy.abs(b).max()))
    assert numpy.abs(a - b).max() <= tol * scale


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("complete", [False, True])
def test_qr_matches_numpy(shape, complete):
    a = _input(shape)
    q, r = lapack.qr(a, complete)
    qn, rn = numpy.linalg.qr(a.astype(numpy.float64), "complete" if complete else "reduced")
    assert q.dtype == r.dtype == numpy.float32
    assert q.shape == qn.shape and r.shape == rn.shape
    _close(q, qn)  # LAPACK's Householder signs, the same in float32 and float64
    _close(r, rn)
    assert numpy.array_equal(r, numpy.triu(r))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("full", [False, True])
def test_svd_matches_numpy(shape, full):
    a = _input(shape, 1)
    u, s, vh = lapack.svd(a, full, True)
    un, sn, vhn = numpy.linalg.svd(a.astype(numpy.float64), full_matrices=full)
    assert u.shape == un.shape and s.shape == sn.shape and vh.shape == vhn.shape
    _close(s, sn)
    k = s.shape[-1]
    _close((u[..., :, :k] * s[..., None, :]) @ vh[..., :k, :], a)  # A = U S Vh
    eye_u = numpy.swapaxes(u, -1, -2) @ u
    _close(eye_u, numpy.broadcast_to(numpy.eye(u.shape[-1]), eye_u.shape))
    _, values, _ = lapack.svd(a, full, False)
    _close(values, sn)


@pytest.mark.parametrize("n", [1, 4, 17])
@pytest.mark.parametrize("lower", [True, False])
def test_eigh_reads_the_asked_triangle(n, lower):
    a = _input((3, n, n), 2)
    a[..., 0, -1] += 7  # not symmetric: only the asked triangle may count
    w, v = lapack.eigh(a, lower, True)
    wn, vn = numpy.linalg.eigh(a.astype(numpy.float64), UPLO="L" if lower else "U")
    _close(w, wn)
    _close(numpy.abs(v), numpy.abs(vn), 1e-4)  # columns up to sign
    half = numpy.tril(a) if lower else numpy.triu(a)
    sym = (
        half + numpy.swapaxes(half, -1, -2) - numpy.eye(n) * numpy.diagonal(a, 0, -2, -1)[..., None]
    )
    _close(sym @ v, v * w[..., None, :], 1e-4)
    assert lapack.eigh(a, lower, False)[1] is None


def test_non_contiguous_input_reads_the_values_not_the_memory():
    a = _input((6, 5), 3)
    view = a.T.copy().T  # Fortran order
    assert not view.flags.c_contiguous
    for got, want in [(lapack.svd(view, False, False)[1], lapack.svd(a, False, False)[1]),
                      (lapack.qr(view, False)[1], lapack.qr(a, False)[1])]:  # fmt: skip
        numpy.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [1, 5, 33])
def test_lu_family_matches_numpy(n):
    a = _input((3, n, n), 4) + 3 * numpy.eye(n, dtype=numpy.float32)
    a64 = a.astype(numpy.float64)
    b = _input((3, n, 2), 5)
    _close(lapack.inv(a), numpy.linalg.inv(a64), 1e-4)
    sign, logabs = lapack.slogdet(a)
    sign_n, logabs_n = numpy.linalg.slogdet(a64)
    numpy.testing.assert_array_equal(sign, sign_n)
    _close(logabs, logabs_n, 1e-5)
    det_n = numpy.linalg.det(a64)
    assert numpy.abs(lapack.det(a) - det_n).max() <= 1e-5 * numpy.abs(det_n).max()
    _close(lapack.solve(a, b), numpy.linalg.solve(a64, b.astype(numpy.float64)), 1e-4)
    spd = a @ numpy.swapaxes(a, -1, -2) + n * numpy.eye(n, dtype=numpy.float32)
    spoiled = spd.copy()
    if n > 1:
        spoiled[..., 0, -1] += 100  # the upper triangle is not read
    _close(lapack.cholesky(spoiled), numpy.linalg.cholesky(spd.astype(numpy.float64)))


def test_singular_and_indefinite_answers():
    sing = numpy.zeros((2, 3, 3), numpy.float32)
    sing[1] = numpy.eye(3)
    sign, logabs = lapack.slogdet(sing)
    assert sign.tolist() == [0.0, 1.0] and logabs.tolist() == [-numpy.inf, 0.0]
    assert lapack.det(sing).tolist() == [0.0, 1.0]
    assert lapack.inv(sing) is None and lapack.solve(sing, sing) is None  # numpy.linalg raises
    assert lapack.cholesky(-numpy.eye(3, dtype=numpy.float32)) is None
    big = numpy.eye(40, dtype=numpy.float32) * 1e3  # det 1e120: inf in float32, as torch
    assert numpy.isinf(lapack.det(big)) and lapack.slogdet(big)[1] > 270


def test_small_matrices_stay_with_numpy(monkeypatch):
    monkeypatch.setattr(lapack, "MIN_SIDE", 64)
    assert lapack.inv(_input((4, 32, 32))) is None  # per-matrix calls cost more than they save
    assert lapack.qr(_input((2, 64, 80)), False) is not None


def test_left_to_numpy():
    a = _input((4, 4))
    assert lapack.qr(a.astype(numpy.float64), False) is None  # float64: NumPy is native
    bad = a.copy()
    bad[1, 2] = numpy.nan  # numpy.linalg's own rules for non-finite input
    assert lapack.svd(bad, False, True) is None and lapack.eigh(bad, True, True) is None
    assert lapack.qr(numpy.zeros((0, 3), numpy.float32), False) is None
    with blas.disabled():
        assert lapack.qr(a, False) is None


def test_linalg_ops_take_the_route(monkeypatch):
    calls = []
    for name in ("qr", "eigh", "svd", "inv", "slogdet", "lu_factor", "lu_solve", "cholesky"):
        real = getattr(lapack, name)
        monkeypatch.setattr(
            lapack, name, lambda *a, _r=real, _n=name, **k: calls.append(_n) or _r(*a, **k)
        )
    x = gf.tensor(_input((3, 5, 5)), requires_grad=True)
    sym = (x + x.mT) * 0.5
    loss = gf.linalg.qr(x)[1].abs().sum() + gf.linalg.eigvalsh(sym).sum()
    loss = loss + gf.linalg.svdvals(x).sum() + gf.linalg.pinv(x).sum()
    spd = x @ x.mT + 5 * gf.eye(5)
    loss = loss + gf.linalg.inv(spd).sum() + gf.linalg.det(spd).sum()
    loss = loss + gf.linalg.solve(spd, x).sum() + gf.linalg.cholesky(spd).sum()
    loss.backward()
    assert {"qr", "eigh", "svd", "inv", "slogdet", "lu_factor", "lu_solve", "cholesky"} <= set(
        calls
    )
    x64 = gf.tensor(_input((2, 3, 3)).astype(numpy.float64))
    before = len(calls)
    gf.linalg.qr(x64)
    assert len(calls) == before + 1  # asked, and it answered None for float64


def test_solve_backward_reuses_the_factors(monkeypatch):
    """linalg.solve factors A once: the backward's A^T solve uses forward's factors, and
    gives numpy.linalg's gradients."""
    a = _input((2, 6, 6), 6) + 4 * numpy.eye(6, dtype=numpy.float32)
    b = _input((2, 6, 3), 7)
    g = _input((2, 6, 3), 8)
    factored = []
    real = lapack.lu_factor
    monkeypatch.setattr(lapack, "lu_factor", lambda *x: factored.append(1) or real(*x))
    ta, tb = gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)
    gf.linalg.solve(ta, tb).backward(gf.tensor(g))
    assert len(factored) == 1
    a64 = a.astype(numpy.float64)
    gb = numpy.linalg.solve(numpy.swapaxes(a64, -1, -2), g.astype(numpy.float64))
    x = numpy.linalg.solve(a64, b.astype(numpy.float64))
    _close(tb.grad.numpy(), gb, 1e-4)
    _close(ta.grad.numpy(), -gb @ numpy.swapaxes(x, -1, -2), 1e-4)
