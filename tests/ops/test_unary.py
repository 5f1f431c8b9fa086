"""Unary math and activations: gradcheck, values against references, numerical stability."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow.ops import unary
from gradflow.testing import gradcheck

POSITIVE = {"log", "sqrt", "rsqrt", "log1p"}
OPS = {
    "exp": (gf.exp, numpy.exp),
    "log": (gf.log, numpy.log),
    "log1p": (gf.log1p, numpy.log1p),
    "expm1": (gf.expm1, numpy.expm1),
    "sqrt": (gf.sqrt, numpy.sqrt),
    "rsqrt": (gf.rsqrt, lambda a: 1 / numpy.sqrt(a)),
    "abs": (gf.abs, numpy.abs),
    "sin": (gf.sin, numpy.sin),
    "cos": (gf.cos, numpy.cos),
    "tanh": (gf.tanh, numpy.tanh),
    "sigmoid": (gf.sigmoid, lambda a: 1 / (1 + numpy.exp(-a))),
    "relu": (gf.relu, lambda a: numpy.maximum(a, 0)),
    "leaky_relu": (lambda x: unary.leaky_relu(x, 0.1), lambda a: numpy.where(a > 0, a, 0.1 * a)),
    "elu": (lambda x: unary.elu(x, 1.3), lambda a: numpy.where(a > 0, a, 1.3 * numpy.expm1(a))),
    "gelu": (unary.gelu, lambda a: 0.5 * a * (1 + numpy.vectorize(math.erf)(a / math.sqrt(2)))),
    "gelu_tanh": (
        lambda x: unary.gelu(x, approximate="tanh"),
        lambda a: 0.5 * a * (1 + numpy.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a**3))),
    ),
    "silu": (unary.silu, lambda a: a / (1 + numpy.exp(-a))),
    "softplus": (unary.softplus, lambda a: numpy.log1p(numpy.exp(a))),
}


def _input(name, shape, device, rng):
    a = rng.standard_normal(shape)
    if name in POSITIVE:
        a = numpy.abs(a) + 0.2
    else:
        a = numpy.where(numpy.abs(a) < 1e-3, 0.5, a)  # keep clear of kinks at 0
    return gf.tensor(a, dtype=gf.float64, device=device, requires_grad=True)


@pytest.mark.parametrize("name", sorted(OPS))
def test_unary_values_and_gradcheck(name, device, rng):
    op, ref = OPS[name]
    x = _input(name, (3, 5), device, rng)
    numpy.testing.assert_allclose(
        op(x).cpu().detach().numpy(), ref(x.cpu().detach().numpy()), rtol=1e-7, atol=1e-12
    )
    assert gradcheck(op, [x])


@pytest.mark.parametrize("name", sorted(OPS))
def test_unary_float32_keeps_dtype(name, rng):
    op, _ = OPS[name]
    x = gf.tensor(numpy.abs(rng.standard_normal(4)) + 0.2, dtype=gf.float32, requires_grad=True)
    y = op(x)
    assert y.dtype == gf.float32
    y.sum().backward()
    assert x.grad.dtype == gf.float32


def test_relu_gradient_is_zero_at_zero():
    x = gf.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    gf.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


def test_relu_saves_a_bool_mask_on_cpu():
    x = gf.randn(10, requires_grad=True)
    y = gf.relu(x)
    (mask,) = y.grad_fn.saved_arrays
    assert mask.dtype == numpy.bool_


def test_sign_has_no_gradient():
    x = gf.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    s = gf.sign(x)
    assert s.tolist() == [-1.0, 0.0, 1.0] and not s.requires_grad


@pytest.mark.parametrize("dtype", [gf.float32, gf.float64])
def test_sigmoid_and_softplus_are_stable_at_1e4(dtype):
    x = gf.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype, requires_grad=True)
    s = gf.sigmoid(x)
    assert numpy.isfinite(s.detach().numpy()).all()
    numpy.testing.assert_allclose(
        s.detach().numpy(), [0.0, math.exp(-50), 0.5, 1.0, 1.0], rtol=1e-6
    )
    sp = unary.softplus(x)
    numpy.testing.assert_allclose(
        sp.detach().numpy(), [0.0, math.exp(-50), math.log(2), 50, 1e4], rtol=1e-6
    )
    (s.sum() + sp.sum()).backward()
    assert numpy.isfinite(x.grad.numpy()).all()


def test_softplus_beta_threshold(rng):
    x = gf.tensor(rng.standard_normal(6) * 5, requires_grad=True)
    assert gradcheck(lambda t: unary.softplus(t, beta=2.0, threshold=5.0), [x])


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        unary.gelu(gf.ones(2), approximate="fast")


def test_unary_on_integer_tensor_computes_in_float():
    assert gf.exp(gf.tensor([0, 1])).dtype == gf.float32


def test_torch_parity_activations():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(5)
    a = rng.standard_normal((4, 6)) * 3
    pairs = {
        "sigmoid": (gf.sigmoid, torch.sigmoid),
        "tanh": (gf.tanh, torch.tanh),
        "relu": (gf.relu, torch.relu),
        "gelu": (unary.gelu, torch.nn.functional.gelu),
        "gelu_tanh": (
            lambda x: unary.gelu(x, "tanh"),
            lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
        ),
        "silu": (unary.silu, torch.nn.functional.silu),
        "elu": (unary.elu, torch.nn.functional.elu),
        "leaky_relu": (unary.leaky_relu, torch.nn.functional.leaky_relu),
        "softplus": (unary.softplus, torch.nn.functional.softplus),
    }
    for name, (ours, theirs) in pairs.items():
        x = gf.tensor(a, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        y, ty = ours(x), theirs(t)
        numpy.testing.assert_allclose(
            y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name
        )
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        numpy.testing.assert_allclose(
            x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name
        )
