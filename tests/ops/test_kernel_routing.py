"""Ops on the kernel route (cuda) compute what their NumPy path computes.

Without a GPU the route runs through the CPU emulation (gradflow.testing.emulation): the op
code, the launcher and the .cu source are the ones a cuda tensor uses.
"""

import numpy
import pytest

import gradflow as gf
from gradflow.ops import unary
from gradflow.testing.emulation import route_kernels, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))

ACTIVATIONS = {
    "relu": gf.relu,
    "leaky_relu": lambda x: unary.leaky_relu(x, 0.2),
    "elu": lambda x: unary.elu(x, 0.7),
    "gelu": unary.gelu,
    "gelu_tanh": lambda x: unary.gelu(x, approximate="tanh"),
    "sigmoid": gf.sigmoid,
    "tanh": gf.tanh,
    "silu": unary.silu,
    "softplus": lambda x: unary.softplus(x, beta=1.5, threshold=4.0),
}


def _forward_backward(op, x_np, g_np, *others):
    x = gf.tensor(x_np, requires_grad=True)
    out = op(x, *[gf.tensor(o, requires_grad=True) for o in others])
    out.backward(gf.tensor(g_np))
    return out.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("size", [1, 7, 300, 2100])
def test_activation_kernel_route_matches_numpy(name, dtype, size):
    rng = numpy.random.default_rng(size)
    x = (rng.standard_normal(size) * 3).astype(dtype)
    g = rng.standard_normal(size).astype(dtype)
    y_ref, gx_ref = _forward_backward(ACTIVATIONS[name], x, g)
    with route_kernels(max_grid_blocks=2):
        y, gx = _forward_backward(ACTIVATIONS[name], x, g)
    tol = 1e-5 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    numpy.testing.assert_allclose(gx, gx_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("op", ["mul", "div"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_binary_kernel_route_matches_numpy(op, dtype):
    rng = numpy.random.default_rng(1)
    a_np = rng.standard_normal((13, 17)).astype(dtype)
    b_np = (numpy.abs(rng.standard_normal((13, 17))) + 0.5).astype(dtype)
    g_np = rng.standard_normal((13, 17)).astype(dtype)
    fn = gf.mul if op == "mul" else gf.div
    results = []
    for routed in (False, True):
        a = gf.tensor(a_np, requires_grad=True)
        b = gf.tensor(b_np, requires_grad=True)
        if routed:
            with route_kernels():
                fn(a, b).backward(gf.tensor(g_np))
        else:
            fn(a, b).backward(gf.tensor(g_np))
        results.append((a.grad.numpy(), b.grad.numpy()))
    tol = 1e-6 if dtype == numpy.float32 else 1e-13
    for ours, ref in zip(results[1], results[0]):
        numpy.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)


def test_kernel_route_only_for_the_gradient_needed():
    rng = numpy.random.default_rng(2)
    a = gf.tensor(rng.standard_normal(50), requires_grad=True)
    b = gf.tensor(rng.standard_normal(50))
    with route_kernels():
        (a * b).backward(gf.ones(50, dtype=gf.float64))
    numpy.testing.assert_allclose(a.grad.numpy(), b.numpy())
