"""Tests for gradflow/ops/distance.py: normalize, cosine_similarity, pairwise_distance and cdist
against PyTorch (values and gradients), float64 gradcheck, edge cases (zero vectors, ties of the
inf-norm), and the error messages."""

import math

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.testing import gradcheck

P_VALUES = [1.0, 2.0, 3.0, math.inf]


def t(a, device="cpu", requires_grad=False):
    return gf.tensor(numpy.asarray(a), device=device, requires_grad=requires_grad)


def host(x):
    return x.detach().cpu().numpy()


def _compare(gf_fn, torch_fn, arrays, rng, rtol=1e-10):
    torch = pytest.importorskip("torch")
    gx = [t(a, requires_grad=True) for a in arrays]
    tx = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = gf_fn(*gx), torch_fn(*tx)
    numpy.testing.assert_allclose(host(out), expected.detach().numpy(), rtol=rtol, atol=1e-12)
    w = rng.standard_normal(tuple(expected.shape))
    out.backward(gf.tensor(w))
    expected.backward(torch.tensor(w))
    for a, b in zip(gx, tx):
        numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("dim", [1, -1, 0])
def test_normalize_matches_torch(p, dim, rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((3, 4, 2))
    _compare(
        lambda x: F.normalize(x, p, dim),
        lambda x: torch.nn.functional.normalize(x, p, dim),
        [a],
        rng,
    )


def test_normalize_zero_vector_and_out(rng):
    x = t([[0.0, 0.0], [3.0, 4.0]], requires_grad=True)
    y = F.normalize(x, dim=1)
    numpy.testing.assert_allclose(host(y), [[0.0, 0.0], [0.6, 0.8]])
    y.sum().backward()
    assert numpy.isfinite(host(x.grad)).all()
    out = gf.zeros(2, 2, dtype=gf.float64)
    assert F.normalize(t([[0.0, 2.0], [3.0, 4.0]]), out=out) is out
    numpy.testing.assert_allclose(host(out), [[0.0, 1.0], [0.6, 0.8]])


@pytest.mark.parametrize(
    "shapes,dim", [(((4, 5), (4, 5)), 1), (((4, 1, 5), (3, 5)), -1), (((2, 3), (3,)), 0)]
)
def test_cosine_similarity_matches_torch_with_broadcasting(shapes, dim, rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal(s) for s in shapes]
    _compare(
        lambda a, b: F.cosine_similarity(a, b, dim),
        lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim),
        arrays,
        rng,
    )


def test_cosine_similarity_tiny_norms_match_torch(rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal((3, 4)) * 1e-10, rng.standard_normal((3, 4))]
    _compare(F.cosine_similarity, torch.nn.functional.cosine_similarity, arrays, rng)


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("keepdim", [False, True])
def test_pairwise_distance_matches_torch(p, keepdim, rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal((4, 5)), rng.standard_normal((4, 5))]
    _compare(
        lambda a, b: F.pairwise_distance(a, b, p, keepdim=keepdim),
        lambda a, b: torch.nn.functional.pairwise_distance(a, b, p, keepdim=keepdim),
        arrays,
        rng,
    )
    one = [rng.standard_normal(5), rng.standard_normal(5)]  # unbatched
    _compare(F.pairwise_distance, torch.nn.functional.pairwise_distance, one, rng)


@pytest.mark.parametrize("p", [0.0, *P_VALUES])
@pytest.mark.parametrize("mode", ["use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"])
def test_cdist_matches_torch(p, mode, rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal((2, 4, 3)), rng.standard_normal((1, 5, 3))]  # batch broadcast
    _compare(
        lambda a, b: gf.cdist(a, b, p, mode),
        lambda a, b: torch.cdist(a, b, p, mode),
        arrays,
        rng,
        rtol=1e-9,
    )


def test_cdist_large_sets_use_the_matrix_product_like_torch(rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal((30, 4)), rng.standard_normal((7, 4))]
    _compare(gf.cdist, torch.cdist, arrays, rng, rtol=1e-9)


def test_cdist_of_identical_points_has_zero_gradient():
    x = t([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    for mode in ("use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"):
        x.grad = None
        gf.cdist(x, x, compute_mode=mode).sum().backward()
        assert numpy.isfinite(host(x.grad)).all()


def test_inf_norm_ties_share_the_gradient_like_torch(rng):
    torch = pytest.importorskip("torch")
    a = numpy.array([[1.0, -3.0, 3.0], [2.0, 2.0, -2.0]])
    _compare(
        lambda x: F.normalize(x, math.inf, 1),
        lambda x: torch.nn.functional.normalize(x, math.inf, 1),
        [a],
        rng,
    )
    _compare(
        lambda x: F.normalize(x, math.inf, 0),
        lambda x: torch.nn.functional.normalize(x, math.inf, 0),
        [a],
        rng,
    )


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_gradcheck(p, device, rng):
    def away(a):  # |differences| and values clear of 0, where p-norms have kinks
        return a + numpy.sign(a) * 0.1

    x1 = t(away(rng.standard_normal((3, 4))), device, requires_grad=True)
    x2 = t(away(rng.standard_normal((2, 4))), device, requires_grad=True)
    assert gradcheck(lambda a: F.normalize(a, p, 1), [x1])
    assert gradcheck(lambda a, b: F.cosine_similarity(a, b[:1], 1), [x1, x2])
    assert gradcheck(lambda a, b: F.pairwise_distance(a, b[:1] + 5, p), [x1, x2])
    assert gradcheck(lambda a, b: gf.cdist(a, b + 5, p), [x1, x2])
    assert gradcheck(lambda a, b: gf.cdist(a, b + 5, p, "use_mm_for_euclid_dist"), [x1, x2])


def test_errors():
    x = t([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match="cdist: x1 and x2 must have at least 2 dims"):
        gf.cdist(t([1.0]), x)
    with pytest.raises(RuntimeError, match="cdist: x1 and x2 must have the same number of col"):
        gf.cdist(x, t([[1.0, 2.0, 3.0]]))
    with pytest.raises(RuntimeError, match="cdist: x1 and x2 must have the same dtype"):
        gf.cdist(x, x.float())
    with pytest.raises(ValueError, match="cdist: 'fast' is not a valid value for compute_mode"):
        gf.cdist(x, x, compute_mode="fast")
    with pytest.raises(ValueError, match="cdist: p must be a non-negative number, got -1"):
        gf.cdist(x, x, p=-1)
    with pytest.raises(ValueError, match="normalize: p must be a non-negative number"):
        F.normalize(x, p="fro")
    with pytest.raises(IndexError, match="normalize: dim 2 is out of range"):
        F.normalize(x, dim=2)
    with pytest.raises(
        ValueError,
        match="cosine_similarity: x1 of shape \\(1, 2\\) and x2 of shape \\(3,\\) do not broadcast",
    ):
        F.cosine_similarity(x, t([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="pairwise_distance: argument 'x2' has dtype int64"):
        F.pairwise_distance(x, gf.tensor([[1, 2]]))


def test_torch_level_names():
    assert gf.cosine_similarity is F.cosine_similarity
    assert gf.pairwise_distance is F.pairwise_distance
