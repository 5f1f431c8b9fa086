"""gradflow/backend/lapack.py: float32 QR, symmetric eigendecomposition and SVD from NumPy's
OpenBLAS against numpy.linalg in float64, over tall, wide, square, batched, non-contiguous and
1x1 inputs; the cases it leaves to numpy.linalg (None); and that linalg's ops take it."""

import numpy
import pytest

import gradflow as gf
from gradflow.backend import blas, lapack

pytestmark = pytest.mark.skipif(lapack._load() is None, reason="no OpenBLAS LAPACK loaded")

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
    for name in ("qr", "eigh", "svd"):
        real = getattr(lapack, name)
        monkeypatch.setattr(lapack, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    x = gf.tensor(_input((3, 5, 5)), requires_grad=True)
    sym = (x + x.mT) * 0.5
    loss = gf.linalg.qr(x)[1].abs().sum() + gf.linalg.eigvalsh(sym).sum()
    loss = loss + gf.linalg.svdvals(x).sum() + gf.linalg.pinv(x).sum()
    loss.backward()
    assert {"qr", "eigh", "svd"} <= set(calls)
    x64 = gf.tensor(_input((2, 3, 3)).astype(numpy.float64))
    before = len(calls)
    gf.linalg.qr(x64)
    assert len(calls) == before + 1  # asked, and it answered None for float64
