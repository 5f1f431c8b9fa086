"""Tests for gradflow/ops/activations.py: values and gradients against PyTorch, float64
gradcheck, the inplace=True forms (storage written, version bumped, graph recorded, leaf
refused), float32 kept, and the error messages."""

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.ops import activations as A
from gradflow.testing import gradcheck

# name -> (gradflow function, torch.nn.functional name, kwargs)
OPS = {
    "relu6": (A.relu6, "relu6", {}),
    "hardtanh": (A.hardtanh, "hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    "hardswish": (A.hardswish, "hardswish", {}),
    "hardsigmoid": (A.hardsigmoid, "hardsigmoid", {}),
    "mish": (A.mish, "mish", {}),
    "selu": (A.selu, "selu", {}),
    "celu": (A.celu, "celu", {"alpha": 0.7}),
    "threshold": (A.threshold, "threshold", {"threshold": 0.3, "value": -2.0}),
    "softsign": (A.softsign, "softsign", {}),
    "tanhshrink": (A.tanhshrink, "tanhshrink", {}),
    "softshrink": (A.softshrink, "softshrink", {"lambd": 0.7}),
    "hardshrink": (A.hardshrink, "hardshrink", {"lambd": 0.7}),
    "logsigmoid": (A.logsigmoid, "logsigmoid", {}),
    "glu": (A.glu, "glu", {"dim": 1}),
    "softmin": (A.softmin, "softmin", {"dim": 1}),
    "relu": (A.relu, "relu", {}),
    "leaky_relu": (A.leaky_relu, "leaky_relu", {"negative_slope": 0.2}),
    "elu": (A.elu, "elu", {"alpha": 1.3}),
    "silu": (A.silu, "silu", {}),
}
KINKS = (-6.0, -3.0, -2.0, -0.7, -0.5, 0.0, 0.3, 0.7, 2.0, 3.0, 6.0)


def _away_from_kinks(a):
    """Values at least 0.05 from every kink of the piecewise ops (finite differences)."""
    for k in KINKS:
        a = numpy.where(numpy.abs(a - k) < 0.05, k + 0.1, a)
    return a


def _x(rng, device, shape=(4, 6), scale=3.0, requires_grad=True):
    a = _away_from_kinks(rng.standard_normal(shape) * scale)
    return gf.tensor(a, device=device, requires_grad=requires_grad)


def host(t):
    return t.detach().cpu().numpy()


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck(name, device, rng):
    fn, _, kwargs = OPS[name]
    x = _x(rng, device, shape=(3, 4))
    assert gradcheck(lambda x: fn(x, **kwargs), [x])


@pytest.mark.parametrize("name", sorted(OPS))
def test_values_and_grads_match_torch(name, rng):
    torch = pytest.importorskip("torch")
    fn, torch_name, kwargs = OPS[name]
    x = _x(rng, "cpu")
    tx = torch.tensor(host(x), requires_grad=True)
    y, ty = fn(x, **kwargs), getattr(torch.nn.functional, torch_name)(tx, **kwargs)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(gf.tensor(g))
    ty.backward(torch.tensor(g))
    numpy.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    # rtol 1e-6: torch rounds 1/alpha (celu) and 1/6 (hardsigmoid) to float32 in backward
    numpy.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", sorted(OPS))
def test_float32_keeps_dtype(name, rng):
    fn, _, kwargs = OPS[name]
    x = gf.tensor(rng.standard_normal((2, 4)), dtype=gf.float32, requires_grad=True)
    y = fn(x, **kwargs)
    y.sum().backward()
    assert y.dtype == gf.float32 and x.grad.dtype == gf.float32


def test_prelu_matches_torch_per_channel_and_shared(rng, device):
    torch = pytest.importorskip("torch")
    for shape, n_weights in (((2, 3, 4), 3), ((2, 3, 4), 1), ((5,), 1), ((4, 2), 2)):
        a = _away_from_kinks(rng.standard_normal(shape))
        w = rng.standard_normal(n_weights)
        x = gf.tensor(a, device=device, requires_grad=True)
        wt = gf.tensor(w, device=device, requires_grad=True)
        assert gradcheck(A.prelu, [x, wt])
        tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(w, requires_grad=True)
        A.prelu(x, wt).sum().backward()
        torch.nn.functional.prelu(tx, tw).sum().backward()
        numpy.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-12)
        numpy.testing.assert_allclose(host(wt.grad), tw.grad.numpy(), rtol=1e-12)


def test_logsigmoid_and_mish_are_finite_for_large_inputs():
    x = gf.tensor([-1e4, -50.0, 50.0, 1e4], dtype=gf.float32, requires_grad=True)
    for fn in (A.logsigmoid, A.mish, A.softsign, A.selu):
        x.grad = None
        y = fn(x)
        y.sum().backward()
        assert numpy.isfinite(host(y)).all() and numpy.isfinite(host(x.grad)).all()
    numpy.testing.assert_allclose(host(A.logsigmoid(x)), [-1e4, -50.0, 0.0, 0.0], atol=1e-6)


def test_op_names_print_like_torch():
    x = gf.tensor([1.0, -2.0], requires_grad=True)
    assert repr(A.relu6(x).grad_fn) == "<HardtanhBackward>"
    assert repr(A.celu(x).grad_fn) == "<CeluBackward>"
    assert repr(A.hardshrink(x).grad_fn) == "<HardshrinkBackward>"
    assert repr(A.glu(x).grad_fn) == "<GluBackward>"


# ---- inplace=True -----------------------------------------------------------------------------

INPLACE = {
    "relu": lambda x, inplace: F.relu(x, inplace=inplace),
    "leaky_relu": lambda x, inplace: F.leaky_relu(x, 0.2, inplace=inplace),
    "elu": lambda x, inplace: F.elu(x, 1.0, inplace=inplace),
    "silu": lambda x, inplace: F.silu(x, inplace=inplace),
    "hardtanh": lambda x, inplace: F.hardtanh(x, inplace=inplace),
    "relu6": lambda x, inplace: F.relu6(x, inplace=inplace),
    "hardswish": lambda x, inplace: F.hardswish(x, inplace=inplace),
    "hardsigmoid": lambda x, inplace: F.hardsigmoid(x, inplace=inplace),
    "mish": lambda x, inplace: F.mish(x, inplace=inplace),
    "selu": lambda x, inplace: F.selu(x, inplace=inplace),
    "celu": lambda x, inplace: F.celu(x, inplace=inplace),
    "threshold": lambda x, inplace: F.threshold(x, 0.1, 5.0, inplace=inplace),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_writes_into_the_input(name, device, rng):
    fn = INPLACE[name]
    a = rng.standard_normal((3, 4)) * 3
    x = gf.tensor(a, device=device)
    version = x._version
    out = fn(x, True)
    assert out is x
    assert x._version > version
    numpy.testing.assert_array_equal(host(x), host(fn(gf.tensor(a, device=device), False)))


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_on_a_non_leaf_records_the_op(name, device, rng):
    fn = INPLACE[name]
    a = _away_from_kinks(rng.standard_normal((3, 4)) * 3)
    leaf = gf.tensor(a, device=device, requires_grad=True)
    h = leaf * 1.0
    out = fn(h, True)
    assert out is h and out.grad_fn is not None
    (out * out).sum().backward()
    expected_leaf = gf.tensor(a, device=device, requires_grad=True)
    (fn(expected_leaf, False) ** 2).sum().backward()
    numpy.testing.assert_allclose(host(leaf.grad), host(expected_leaf.grad), rtol=1e-12)


def test_inplace_matches_torch_grad_fn_and_gradient(rng):
    torch = pytest.importorskip("torch")
    a = _away_from_kinks(rng.standard_normal(5))
    leaf, tleaf = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    h, th = leaf * 2, tleaf * 2
    F.relu(h, inplace=True).sum().backward()
    torch.nn.functional.relu(th, inplace=True).sum().backward()
    assert repr(h.grad_fn) == "<ReluBackward>"
    numpy.testing.assert_array_equal(host(leaf.grad), tleaf.grad.numpy())


def test_inplace_on_a_leaf_that_requires_grad_is_refused():
    x = gf.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="relu_: a leaf tensor that requires grad"):
        F.relu(x, inplace=True)
    with pytest.raises(RuntimeError, match="hardtanh_: a leaf tensor that requires grad"):
        F.relu6(x, inplace=True)
    with gf.no_grad():
        F.relu(x, inplace=True)
    numpy.testing.assert_array_equal(host(x), [1.0, 0.0])


def test_inplace_after_the_input_was_saved_fails_in_backward():
    leaf = gf.tensor([1.0, -1.0], requires_grad=True)
    h = leaf * 1.0
    y = h.exp()  # saves its output, not h
    z = h * h  # saves h
    F.relu(h, inplace=True)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_inplace_needs_a_tensor():
    with pytest.raises(TypeError, match="relu_: expected a Tensor, got list"):
        F.relu([1.0], inplace=True)


# ---- errors -----------------------------------------------------------------------------------


def test_errors_name_the_op():
    x = gf.tensor([[1.0, 2.0, 3.0]])
    with pytest.raises(RuntimeError, match="glu: halving dimension must be even, but dimension 1"):
        A.glu(x, 1)
    with pytest.raises(RuntimeError, match="glu: does not support scalars"):
        A.glu(gf.tensor(1.0))
    with pytest.raises(ValueError, match="hardtanh: min_val cannot be greater than max_val"):
        A.hardtanh(x, 2.0, 1.0)
    with pytest.raises(RuntimeError, match="softshrink: lambd must be >= 0, but found -1"):
        A.softshrink(x, -1.0)
    with pytest.raises(RuntimeError, match="hardshrink: lambd must be >= 0"):
        A.hardshrink(x, -0.5)
    with pytest.raises(RuntimeError, match="celu: alpha cannot be 0"):
        A.celu(x, 0.0)
    with pytest.raises(
        RuntimeError,
        match="prelu: mismatch of parameter numbers .* found "
        "parameter numbers = 2 and channel size = 3",
    ):
        A.prelu(x, gf.tensor([0.1, 0.2]))
    with pytest.raises(RuntimeError, match="prelu: expected 'weight' to be a scalar or 1-D"):
        A.prelu(x, gf.tensor([[0.1]]))
    with pytest.raises(TypeError, match="mish: argument 'input' has dtype int64"):
        A.mish(gf.tensor([1, 2]))


def test_softmin_without_dim_warns_and_picks_torchs_dim():
    x = gf.tensor([[1.0, 2.0], [3.0, 5.0]])
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        y = A.softmin(x)
    numpy.testing.assert_allclose(host(y), host(A.softmin(x, 1)))
    assert A.softmin(gf.tensor([1, 2]), 0, dtype=gf.float64).dtype == gf.float64


def test_prelu_takes_one_slope_for_a_1d_input():
    with pytest.raises(RuntimeError, match="found parameter numbers = 3 and channel size = 1"):
        A.prelu(gf.tensor([1.0, -1.0, 2.0]), gf.tensor([0.1, 0.2, 0.3]))


# ---- rrelu and the functional in-place spellings -------------------------------------------


def test_rrelu_eval_is_leaky_relu_with_the_mean_slope(rng):
    x = gf.tensor(rng.standard_normal(8))
    numpy.testing.assert_array_equal(
        host(F.rrelu(x, 0.1, 0.3)), host(F.leaky_relu(x, (0.1 + 0.3) / 2))
    )


def test_rrelu_training_draws_slopes_in_range_reproducibly(device, rng):
    a = -numpy.abs(rng.standard_normal(200)) - 0.1
    x = gf.tensor(a, device=device, requires_grad=True)
    gf.manual_seed(3)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    y.sum().backward()
    slopes = host(y) / a
    assert (slopes >= 0.1).all() and (slopes <= 0.3).all() and slopes.std() > 0.01
    numpy.testing.assert_allclose(host(x.grad), slopes, rtol=1e-12)  # the drawn slope
    gf.manual_seed(3)
    numpy.testing.assert_array_equal(host(F.rrelu(x, 0.1, 0.3, training=True)), host(y))
    pos = gf.tensor([1.0, 2.0], device=device)
    numpy.testing.assert_array_equal(host(F.rrelu(pos, training=True)), [1.0, 2.0])


def test_functional_inplace_spellings_match_torch(rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal(6) * 2
    calls = [
        ("relu_", ()),
        ("elu_", (0.5,)),
        ("leaky_relu_", (0.2,)),
        ("hardtanh_", (-0.5, 0.5)),
        ("threshold_", (0.1, 3.0)),
        ("celu_", (0.7,)),
        ("selu_", ()),
        ("rrelu_", (0.1, 0.3)),
    ]
    for name, args in calls:
        x, tx = gf.tensor(a), torch.tensor(a)
        assert getattr(F, name)(x, *args) is x
        getattr(torch.nn.functional, name)(tx, *args)
        numpy.testing.assert_allclose(host(x), tx.numpy(), rtol=1e-12, err_msg=name)


def test_torch_level_names():
    for name in ("celu", "celu_", "hardshrink", "prelu", "relu_", "rrelu", "rrelu_", "selu",
                 "selu_", "threshold", "threshold_"):  # fmt: skip
        assert getattr(gf, name) is getattr(F, name), name
