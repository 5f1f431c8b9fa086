"""Statistics on the reductions (gradflow/ops/reduction.py): median, quantile, var_mean,
std_mean, aminmax, nansum, nanmean and the dtype= keyword, against torch with gradcheck."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow import return_types
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")


def _pair(rng, shape, device):
    a = rng.standard_normal(shape)
    return gf.tensor(a, device=device, requires_grad=True), torch.tensor(a, requires_grad=True)


def _same(y, ty):
    assert tuple(y.shape) == tuple(ty.shape)
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-12)


def test_median_matches_torch(device, rng):
    x, t = _pair(rng, (3, 5), device)
    _same(gf.median(x), torch.median(t))
    for dim, keepdim in ((0, False), (1, True), (-1, False)):
        out, tout = gf.median(x, dim, keepdim), torch.median(t, dim, keepdim)
        _same(out.values, tout.values)
        assert out.indices.tolist() == tout.indices.tolist()
    (g,) = gf.grad(x.median(1).values.sum(), [x])
    (tg,) = torch.autograd.grad(t.median(1).values.sum(), [t])
    numpy.testing.assert_array_equal(g.cpu().numpy(), tg.numpy())
    assert gradcheck(lambda v: gf.median(v, 0).values, [x])


def test_median_even_count_nan_and_edges():
    assert gf.median(gf.tensor([1.0, 3.0, 2.0, 4.0])).item() == 2.0  # the lower median
    assert math.isnan(gf.median(gf.tensor([1.0, math.nan, 2.0])).item())
    out = gf.median(gf.tensor([[1.0, math.nan, 0.0]]), 1)
    assert math.isnan(out.values.item()) and out.indices.tolist() == [1]
    assert gf.median(gf.tensor([5, 1, 3])).item() == 3
    with pytest.raises(ValueError, match="median: the tensor of shape"):
        gf.median(gf.ones(2, 0), 1)


QUANTILES = [
    {"q": 0.3, "dim": 1},
    {"q": [0.25, 0.9], "dim": 1, "keepdim": True},
    {"q": [0.1, 0.5]},
    {"q": 0.7, "keepdim": True},
    {"q": 0.3, "dim": 0, "interpolation": "lower"},
    {"q": 0.3, "dim": 0, "interpolation": "higher"},
    {"q": 0.3, "dim": 0, "interpolation": "nearest"},
    {"q": 0.3, "dim": 0, "interpolation": "midpoint"},
]


@pytest.mark.parametrize("kwargs", QUANTILES)
def test_quantile_matches_torch(kwargs, device, rng):
    x, t = _pair(rng, (3, 5), device)
    q = kwargs["q"]
    rest = {k: v for k, v in kwargs.items() if k != "q"}
    tq = torch.tensor(q, dtype=torch.float64) if isinstance(q, list) else q
    y, ty = gf.quantile(x, q, **rest), torch.quantile(t, tq, **rest)
    _same(y, ty)
    y.sum().backward()
    ty.sum().backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-12)
    assert gradcheck(lambda v: gf.quantile(v, q, **rest), [x.detach().requires_grad_()])


def test_quantile_nan_tensor_q_and_errors():
    assert math.isnan(gf.quantile(gf.tensor([1.0, math.nan, 2.0]), 0.1).item())
    x = gf.tensor([1.0, 2.0, 3.0, 4.0])
    assert x.quantile(gf.tensor([0.0, 1.0])).tolist() == [1.0, 4.0]
    with pytest.raises(RuntimeError, match=r"q must be in the range \[0, 1\] but got 1.5"):
        gf.quantile(x, 1.5)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        gf.quantile(x, 0.5, interpolation="cubic")
    with pytest.raises(TypeError, match="quantile: expected a floating-point tensor"):
        gf.quantile(gf.tensor([1, 2]), 0.5)


def test_var_mean_std_mean_aminmax(device, rng):
    x, t = _pair(rng, (3, 4), device)
    for ours, theirs in ((gf.var_mean, torch.var_mean), (gf.std_mean, torch.std_mean)):
        for args, kwargs in (((), {}), ((1,), {"keepdim": True}), ((1,), {"correction": 0})):
            a, b = ours(x, *args, **kwargs)
            ta, tb = theirs(t, *args, **kwargs)
            _same(a, ta)
            _same(b, tb)
    out = gf.aminmax(x, dim=1)
    tout = torch.aminmax(t, dim=1)
    _same(out.min, tout.min)
    _same(out.max, tout.max)
    assert x.aminmax().max.item() == t.max().item()


def test_nansum_nanmean(device):
    a = [[1.0, math.nan, 3.0], [math.nan, math.nan, math.nan]]
    x = gf.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    _same(gf.nansum(x, 1), torch.nansum(t, 1))
    y, ty = gf.nanmean(x, 1), torch.nanmean(t, 1)
    assert y.tolist()[0] == 2.0 and math.isnan(y.tolist()[1])
    y[0].backward()
    ty[0].backward()
    assert x.grad.tolist()[0] == t.grad.tolist()[0] == [0.5, 0.0, 0.5]
    assert x.nansum().item() == 4.0
    assert gf.nansum(gf.tensor([1, 2])).item() == 3


def test_dtype_keyword_and_named_results():
    i = gf.tensor([1, 2, 3])
    assert gf.sum(i, dtype=gf.float32).dtype == gf.float32
    assert gf.mean(i, dtype=gf.float64).item() == 2.0
    assert gf.prod(i, dtype=gf.float64).dtype == gf.float64
    assert gf.cumsum(i, 0, dtype=gf.float32).tolist() == [1.0, 3.0, 6.0]
    out = gf.ones(2, 3).max(1)
    assert isinstance(out, return_types.max) and out.values.tolist() == [1.0, 1.0]
    assert isinstance(gf.ones(2, 3).min(0), return_types.min)
