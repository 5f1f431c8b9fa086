"""Cumulative reductions (gradflow/ops/reduction.py): cumprod with zeros, cummax and cummin
with ties and NaN, against torch and float64 gradcheck."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow import return_types
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")


def _with_zeros(rng, shape):
    a = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    flat = a.reshape(-1)
    flat[[1, 5, 6, 9, 14]] = 0.0  # one zero in some rows, two in another, none in the last
    return a


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumprod_matches_torch_with_zeros(dim, device, rng):
    a = _with_zeros(rng, (4, 5))
    x = gf.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y, ty = gf.cumprod(x, dim), torch.cumprod(t, dim)
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-14)
    w = rng.standard_normal(a.shape)
    (y * gf.tensor(w, device=device)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda v: gf.cumprod(v, dim), [x.detach().requires_grad_()])


def test_cumprod_without_zeros_and_dtypes(rng):
    a = rng.uniform(0.5, 1.5, (3, 4))
    x = gf.tensor(a, requires_grad=True)
    assert gradcheck(lambda v: v.cumprod(1), [x])
    assert gf.cumprod(gf.tensor([1, 2, 3]), 0).tolist() == [1, 2, 6]
    assert gf.cumprod(gf.tensor([1, 2, 3]), 0).dtype == gf.int64
    assert gf.cumprod(gf.tensor([1, 2]), 0, dtype=gf.float64).dtype == gf.float64
    assert gf.cumprod(gf.tensor(3.0), 0).item() == 3.0


def test_cumprod_rejects_a_bad_dim():
    with pytest.raises(IndexError, match="cumprod: dim 2 is out of range"):
        gf.cumprod(gf.ones(2, 2), 2)


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_match_torch(name, device, rng):
    a = numpy.round(rng.standard_normal((3, 7)), 0)  # many ties
    x = gf.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    for dim in (0, 1):
        out, tout = getattr(gf, name)(x, dim), getattr(torch, name)(t, dim)
        assert isinstance(out, getattr(return_types, name))
        numpy.testing.assert_array_equal(out.values.detach().cpu().numpy(), tout.values.detach())
        numpy.testing.assert_array_equal(out.indices.cpu().numpy(), tout.indices.numpy())
        assert out.indices.dtype == gf.int64
        w = rng.standard_normal(a.shape)
        (g,) = gf.grad((out.values * gf.tensor(w, device=device)).sum(), [x])
        (tg,) = torch.autograd.grad((tout.values * torch.tensor(w)).sum(), [t])
        numpy.testing.assert_allclose(g.cpu().numpy(), tg.numpy(), rtol=1e-14)
    y = gf.tensor(rng.standard_normal((3, 6)), device=device, requires_grad=True)
    assert gradcheck(lambda v: getattr(gf, name)(v, 1).values, [y])


def test_cummax_propagates_nan_like_torch():
    a = [1.0, 3.0, 3.0, 2.0, math.nan, 5.0, math.nan, 1.0]
    values, indices = gf.tensor(a).cummax(0)
    expected = torch.cummax(torch.tensor(a), 0)
    numpy.testing.assert_array_equal(values.numpy(), expected.values.numpy())
    assert indices.tolist() == expected.indices.tolist()
    _, indices = gf.tensor(a).cummin(0)
    assert indices.tolist() == torch.cummin(torch.tensor(a), 0).indices.tolist()


def test_cummax_integer_and_zero_dim():
    values, indices = gf.cummax(gf.tensor([2, 1, 5, 5]), 0)
    assert values.tolist() == [2, 2, 5, 5] and indices.tolist() == [0, 0, 2, 3]
    values, indices = gf.cummin(gf.tensor(4.0), 0)
    assert values.item() == 4.0 and indices.item() == 0


def test_cummax_errors_and_bool():
    values, indices = gf.cummax(gf.tensor([False, True, False]), 0)
    assert values.tolist() == [False, True, True] and indices.tolist() == [0, 1, 1]
    with pytest.raises(IndexError, match="cummin: dim 1 is out of range"):
        gf.cummin(gf.ones(3), 1)


def test_logcumsumexp_matches_torch(device, rng):
    a = rng.standard_normal((3, 5)) * 20
    x = gf.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y, ty = x.logcumsumexp(1), torch.logcumsumexp(t, 1)
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-10)
    assert gradcheck(lambda v: gf.logcumsumexp(v, 0), [x.detach().requires_grad_()])
    assert gf.logcumsumexp(gf.tensor([-math.inf, 1.0]), 0).tolist() == [-math.inf, 1.0]
    with pytest.raises(TypeError, match="logcumsumexp: expected a floating-point tensor"):
        gf.logcumsumexp(gf.tensor([1, 2]), 0)
