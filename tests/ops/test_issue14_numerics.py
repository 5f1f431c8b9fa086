"""Issue 14: gradients that were NaN where PyTorch gives 0 (pow at 0, std of a constant), and
what was accepted silently (integer // 0 and % 0, mean of integers, BCE targets outside [0, 1],
mse_loss/l1_loss broadcasting a target of another shape). Each compares with PyTorch."""

import warnings

import numpy
import pytest

import gradflow as gf
import gradflow.nn as nn
from gradflow import cuda
from gradflow.ops import arithmetic, losses
from gradflow.testing import standin

# NumPy's forward of 0 ** -1 (and of -1 ** 0.5) warns; PyTorch's does not. Not this issue.
FORWARD_WARNS = pytest.mark.filterwarnings(
    "ignore:divide by zero encountered:RuntimeWarning",
    "ignore:invalid value encountered in power:RuntimeWarning",
)
needs_cuda = pytest.mark.skipif(not cuda.is_available(), reason="no CUDA GPU visible to CuPy")


def host(t):
    return numpy.asarray(t.detach().cpu().numpy())


def leaf(values, device, dtype=gf.float32):
    return gf.tensor(numpy.asarray(values), dtype=dtype, device=device, requires_grad=True)


def torch_leaf(torch, values, dtype=None):
    return torch.tensor(numpy.asarray(values), dtype=dtype or torch.float32, requires_grad=True)


# ---- pow: torch's edges -------------------------------------------------------------------------
BASES = [0.0, 0.0, 0.0, 0.0, 2.0, -1.0, 0.0, 3.0]
EXPONENTS = [0.0, 1.0, 2.0, 0.5, 0.0, 0.5, -1.0, -2.0]


@FORWARD_WARNS
def test_pow_of_tensors_at_zero_matches_torch(device):
    torch = pytest.importorskip("torch")
    b, e = leaf(BASES, device), leaf(EXPONENTS, device)
    (b**e).sum().backward()
    tb, te = torch_leaf(torch, BASES), torch_leaf(torch, EXPONENTS)
    (tb**te).sum().backward()
    numpy.testing.assert_allclose(host(b.grad), tb.grad.numpy(), rtol=1e-6)
    numpy.testing.assert_allclose(host(e.grad), te.grad.numpy(), rtol=1e-6)
    # the cases of the issue: 0 ** 0 has zero gradients on both sides, not NaN
    assert host(b.grad)[0] == 0 and host(e.grad)[0] == 0


@FORWARD_WARNS
@pytest.mark.parametrize("exponent", [0, 0.0, 1, 2, 0.5, -1])
def test_pow_by_a_number_at_zero_matches_torch(device, exponent):
    torch = pytest.importorskip("torch")
    values = [0.0, 1.0, 2.0]
    x = leaf(values, device)
    (x**exponent).sum().backward()
    tx = torch_leaf(torch, values)
    (tx**exponent).sum().backward()
    numpy.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-6)


def test_pow_by_zero_gives_zero_even_for_a_nan_gradient(device):
    """PyTorch's where() sits outside the upstream gradient for d/dbase: 0, not 0 * NaN."""
    torch = pytest.importorskip("torch")
    up = [numpy.nan, numpy.inf]
    x, e = leaf([0.0, 0.0], device), leaf([0.0, 0.0], device)
    (x**e).backward(gf.tensor(up, dtype=gf.float32, device=device))
    tx, te = torch_leaf(torch, [0.0, 0.0]), torch_leaf(torch, [0.0, 0.0])
    (tx**te).backward(torch.tensor(up, dtype=torch.float32))
    numpy.testing.assert_array_equal(host(x.grad), tx.grad.numpy())  # [0, 0]
    numpy.testing.assert_array_equal(host(e.grad), te.grad.numpy())  # [nan, nan]


@FORWARD_WARNS
@pytest.mark.parametrize("base", [0.0, 0, 2.0, -2.0])
def test_number_to_a_tensor_power_matches_torch(device, base):
    torch = pytest.importorskip("torch")
    exps = [0.0, 1.0, 2.0, -1.0]
    e = leaf(exps, device)
    (base**e).sum().backward()
    te = torch_leaf(torch, exps)
    (base**te).sum().backward()
    numpy.testing.assert_allclose(host(e.grad), te.grad.numpy(), rtol=1e-6)


def test_pow_backward_at_the_edges_warns_nothing(device):
    b, e = leaf(BASES, device), leaf(EXPONENTS, device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy's forward warns about 0 ** -1
        out, by_zero = (b**e).sum(), (b**0).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out.backward()
        by_zero.backward()


# ---- std of a constant --------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [None, 1])
@pytest.mark.parametrize("correction", [0, 1])
def test_std_of_a_constant_has_zero_gradient_like_torch(device, dim, correction):
    torch = pytest.importorskip("torch")
    values = [[3.0, 3.0, 3.0], [1.0, 2.0, 4.0]]
    x = leaf(values, device)
    x.std(dim=dim, correction=correction).sum().backward()
    tx = torch_leaf(torch, values)
    tx.std(dim=dim, correction=correction).sum().backward()
    numpy.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-6, atol=1e-7)
    assert numpy.isfinite(host(x.grad)).all()


def test_std_of_one_element_keeps_torchs_nan(device):
    torch = pytest.importorskip("torch")
    x = leaf([3.0], device)
    x.std().backward()
    tx = torch_leaf(torch, [3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: degrees of freedom is <= 0
        tx.std().backward()
    assert numpy.isnan(host(x.grad)).all() and torch.isnan(tx.grad).all()


# ---- integer floor_divide / remainder by zero --------------------------------------------------
DIVISIONS = {  # (ours, torch's)
    "floordiv_number": lambda x, z, ns: x // 0,
    "mod_number": lambda x, z, ns: x % 0,
    "floordiv_tensor": lambda x, z, ns: x // z,
    "mod_tensor": lambda x, z, ns: x % z,
    "number_floordiv": lambda x, z, ns: ns.floor_divide(5, z),
    "number_mod": lambda x, z, ns: ns.remainder(5, z),
}


@pytest.mark.parametrize("divide", DIVISIONS.values(), ids=DIVISIONS.keys())
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_integer_division_by_zero_raises_like_torch(device, divide, dtype):
    torch = pytest.importorskip("torch")
    x = gf.tensor(numpy.array([7, 8], dtype=dtype), device=device)
    z = gf.tensor(numpy.array([2, 0], dtype=dtype), device=device)
    with pytest.raises(ZeroDivisionError, match="integer division by zero"):
        divide(x, z, arithmetic)
    tx = torch.tensor(numpy.array([7, 8], dtype=dtype))
    tz = torch.tensor(numpy.array([2, 0], dtype=dtype))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):  # torch's cpu error
        divide(tx, tz, torch)


def test_integer_division_without_zeros_and_float_division_by_zero(device):
    torch = pytest.importorskip("torch")
    x = gf.tensor([7, -8], device=device)
    z = gf.tensor([2, 3], device=device)
    assert (x // z).tolist() == (torch.tensor([7, -8]) // torch.tensor([2, 3])).tolist()
    assert (x % z).tolist() == (torch.tensor([7, -8]) % torch.tensor([2, 3])).tolist()
    assert arithmetic.floor_divide(9, z).tolist() == [4, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy warns about float division by zero
        assert (x.float() // 0).tolist() == [float("inf"), float("-inf")]


def test_empty_integer_divisor_is_fine(device):
    x = gf.tensor(numpy.zeros(0, numpy.int64), device=device)
    assert (x // x).shape == (0,) and (x % x).shape == (0,)


@pytest.mark.gpu
@pytest.mark.skipif(not standin.enabled(), reason="counts need the CuPy stand-in")
def test_integer_division_check_synchronizes_once_on_cuda():
    x = gf.tensor([7, 8], device="cuda")
    z = gf.tensor([2, 3], device="cuda")
    x // z
    with standin.counting() as block:
        x // z
    assert block.counts.syncs == 1
    with standin.counting() as block:
        x // 2  # a Python-int divisor is checked on the host
    assert block.counts.syncs == 0


# ---- mean of integers --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_mean_of_integers_is_refused_like_torch(device, dtype):
    torch = pytest.importorskip("torch")
    x = gf.tensor(numpy.array([1, 0, 1], dtype=dtype), device=device)
    with pytest.raises(TypeError, match=r"mean: could not infer output dtype.*\.float\(\)"):
        x.mean()
    with pytest.raises(TypeError, match="could not infer output dtype"):
        gf.mean(x, dim=0)
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        torch.tensor(numpy.array([1, 0, 1], dtype=dtype)).mean()
    assert x.float().mean().item() == pytest.approx(2 / 3)


# ---- binary_cross_entropy targets --------------------------------------------------------------
@pytest.mark.parametrize("bad", [1.5, -0.5, float("nan")])
def test_bce_refuses_targets_outside_0_1_like_torch(bad):
    torch = pytest.importorskip("torch")
    p, y = [0.5, 0.25], [1.0, bad]
    with pytest.raises(ValueError, match=r"argument 'target' holds .* at position \(1,\), outside"):
        losses.binary_cross_entropy(gf.tensor(p), gf.tensor(y))
    with pytest.raises(ValueError, match="'target' holds"):
        nn.BCELoss()(gf.tensor(p), gf.tensor(y))
    with pytest.raises(RuntimeError, match="target should be between 0 and 1"):
        torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y))


def test_bce_targets_at_0_and_1_are_fine_like_torch(device):
    torch = pytest.importorskip("torch")
    p, y = [0.5, 0.25, 0.9], [1.0, 0.0, 0.3]
    ours = losses.binary_cross_entropy(gf.tensor(p, device=device), gf.tensor(y, device=device))
    theirs = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_bce_targets_outside_0_1_give_nan_on_cuda(reduction):
    """No synchronization for a check on cuda: their losses and gradients are NaN instead."""
    p = gf.tensor([0.5, 0.25], device="cuda", requires_grad=True)
    y = gf.tensor([1.0, 1.5], device="cuda", requires_grad=True)
    loss = losses.binary_cross_entropy(p, y, reduction=reduction)
    loss.sum().backward()
    got = host(loss).reshape(-1)
    assert numpy.isnan(got[-1]) and (reduction == "sum" or numpy.isfinite(got[0]))
    for grad in (host(p.grad), host(y.grad)):
        assert numpy.isfinite(grad[0]) and numpy.isnan(grad[1])


# ---- mse_loss / l1_loss: a target of another shape ---------------------------------------------
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("shapes", [((4, 1), (4,)), ((3,), (1,)), ((3,), (1, 3))])
def test_pair_loss_warns_when_target_shape_differs_like_torch(name, shapes):
    torch = pytest.importorskip("torch")
    x_shape, y_shape = shapes
    message = (
        rf"{name}: using a target size \({y_shape[0]},.*\) that is different to the input "
        r"size .* incorrect results due to broadcasting"
    )
    with pytest.warns(UserWarning, match=message) as record:
        getattr(losses, name)(gf.zeros(x_shape), gf.zeros(y_shape))
    assert record[0].filename == __file__  # points at the caller's line, not gradflow's
    module = nn.MSELoss() if name == "mse_loss" else nn.L1Loss()
    with pytest.warns(UserWarning, match="different to the input size") as record:
        module(gf.zeros(x_shape), gf.zeros(y_shape))
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="different to the input size"):
        getattr(torch.nn.functional, name)(torch.zeros(x_shape), torch.zeros(y_shape))


def test_pair_loss_of_one_shape_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses.mse_loss(gf.zeros(4, 1), gf.zeros(4, 1))
        losses.l1_loss(gf.zeros(3), gf.zeros(3))
