"""More pointwise math (gradflow/ops/arithmetic.py, ops/unary.py): div's rounding modes,
add/sub alpha, aliases, nan_to_num, xlogy, hypot, copysign, logit and angle conversions."""

import math

import numpy
import pytest
from torch_comparison import assert_binary_matches_torch

import gradflow as gf
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")


def test_div_rounding_modes_match_torch(device):
    a = [7, -7, 6, -6, 5]
    b = [2, 2, -4, 4, -3]
    for mode in ("floor", "trunc"):
        ours = gf.div(gf.tensor(a, device=device), gf.tensor(b, device=device), rounding_mode=mode)
        theirs = torch.div(torch.tensor(a), torch.tensor(b), rounding_mode=mode)
        assert ours.dtype == gf.int64 and ours.tolist() == theirs.tolist()
        f = gf.divide(gf.tensor(a, dtype=gf.float64, device=device), 2.5, rounding_mode=mode)
        tf = torch.div(torch.tensor(a, dtype=torch.float64), 2.5, rounding_mode=mode)
        assert f.tolist() == tf.tolist()


def test_div_rounding_gradient_is_zero(device):
    x = gf.tensor([7.0, -7.0], device=device, requires_grad=True)
    (g,) = gf.grad(gf.div(x, 2.0, rounding_mode="floor").sum(), [x])
    assert g.tolist() == [0.0, 0.0]


def test_div_rounding_errors():
    with pytest.raises(RuntimeError, match="div expected rounding_mode to be one of None"):
        gf.div(gf.ones(2), 2, rounding_mode="round")
    with pytest.raises(ZeroDivisionError, match="integer division by zero"):
        gf.div(gf.tensor([1]), 0, rounding_mode="trunc")


def test_alpha_and_aliases():
    one = gf.ones(2)
    assert gf.add(one, one, alpha=2).tolist() == [3.0, 3.0]
    assert gf.sub(one, one, alpha=3).tolist() == [-2.0, -2.0]
    assert gf.subtract(one, one, alpha=0.5).tolist() == [0.5, 0.5]
    assert gf.rsub(one, 3).tolist() == [2.0, 2.0]
    assert gf.multiply(one, 4).tolist() == [4.0, 4.0]
    assert gf.absolute(gf.tensor([-2.0])).tolist() == [2.0]
    assert gf.sgn(gf.tensor([-2.0, 0.0])).tolist() == [-1.0, 0.0]
    assert gf.positive(one) is one
    assert one.negative().tolist() == [-1.0, -1.0]
    assert one.subtract(one, alpha=2).tolist() == [-1.0, -1.0]
    with pytest.raises(RuntimeError, match="positive: a bool tensor has no unary plus"):
        gf.positive(gf.tensor([True]))


def test_alpha_keeps_gradients(rng):
    a = gf.tensor(rng.standard_normal(3), requires_grad=True)
    b = gf.tensor(rng.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda x, y: gf.sub(x, y, alpha=2.5), [a, b])


def test_nan_to_num_values_and_gradient(device):
    a = [math.nan, math.inf, -math.inf, 1.5]
    x = gf.tensor(a, device=device, requires_grad=True)
    y = gf.nan_to_num(x, nan=1.0, posinf=2.0)
    expected = torch.nan_to_num(torch.tensor(a), nan=1.0, posinf=2.0)
    assert y.tolist()[:2] == [1.0, 2.0] and y.tolist() == expected.tolist()
    assert gf.nan_to_num(gf.tensor(a)).tolist()[1] == float(numpy.finfo(numpy.float32).max)
    (g,) = gf.grad(y.sum(), [x])
    assert g.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert gf.nan_to_num(gf.tensor([1, 2])).tolist() == [1, 2]


BINARY = {
    "xlogy": (gf.xlogy, torch.xlogy, (0.2, 3)),
    "hypot": (gf.hypot, torch.hypot, (-3, 3)),
    "copysign": (gf.copysign, torch.copysign, (-3, 3)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_extras_match_torch(name, device, rng):
    ours, theirs, (low, high) = BINARY[name]
    a, b = rng.uniform(low, high, (2, 3)), rng.uniform(low, high, (3,))
    assert_binary_matches_torch(ours, theirs, a, b, device)


def test_xlogy_at_zero_like_torch():
    x = gf.tensor([0.0, 0.0, 1.0])
    y = gf.tensor([math.nan, 0.0, 2.0])
    out = gf.xlogy(x, y).tolist()
    assert math.isnan(out[0]) and out[1] == 0.0 and out[2] == pytest.approx(math.log(2.0))


def test_hypot_rejects_integers():
    with pytest.raises(RuntimeError, match="hypot: expected floating-point tensors"):
        gf.hypot(gf.tensor([1]), gf.tensor([1]))


def test_signbit_logit_angles(device, rng):
    assert gf.signbit(gf.tensor([-0.0, 1.0, -2.0], device=device)).tolist() == [True, False, True]
    a = rng.uniform(0.05, 0.95, 5)
    for eps in (None, 0.1):
        x = gf.tensor(a, device=device, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        y, ty = gf.logit(x, eps), torch.logit(t, eps)
        numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-12)
        y.sum().backward()
        ty.sum().backward()
        numpy.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-12)
    assert gf.logit(gf.tensor([0.0, 1.0])).tolist() == [-math.inf, math.inf]
    assert gf.deg2rad(gf.tensor([180.0])).item() == pytest.approx(math.pi)
    assert gf.rad2deg(gf.tensor([math.pi], dtype=gf.float64)).item() == pytest.approx(180.0)
    assert gf.deg2rad(gf.tensor([90])).dtype == gf.float32


def test_extra_inplace_methods():
    x = gf.tensor([math.nan, 2.0])
    x.nan_to_num_(nan=5.0)
    assert x.tolist() == [5.0, 2.0]
    x.divide_(2, rounding_mode="floor")
    assert x.tolist() == [2.0, 1.0]
    x.copysign_(-1.0)
    assert x.tolist() == [-2.0, -1.0]
    x.hypot_(gf.tensor([0.0, 0.0]))
    assert x.tolist() == [2.0, 1.0]
