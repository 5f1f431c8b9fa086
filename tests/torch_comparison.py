"""Shared by the op tests: an op checked against torch's, values and gradients, in float64."""

import numpy

import gradflow as gf
from gradflow.testing import gradcheck


def assert_binary_matches_torch(ours, theirs, a, b, device) -> None:
    """ours(x, z) against theirs on NumPy arrays a and b, values and gradients to 1e-12."""
    import torch

    x = gf.tensor(a, device=device, requires_grad=True)
    z = gf.tensor(b, device=device, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    y, ty = ours(x, z), theirs(ta, tb)
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), ta.grad.numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(z.grad.cpu().numpy(), tb.grad.numpy(), rtol=1e-12)
    assert gradcheck(ours, [x, z])


def assert_functional_matches_torch(ours, name, x, kwargs, device) -> None:
    """ours(input, **kwargs) against torch.nn.functional's `name` on the NumPy array x: shape,
    values and the input gradient for a random output gradient, to 1e-12."""
    import torch

    tensor = gf.tensor(x, device=device, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y = ours(tensor, **kwargs)
    ty = getattr(torch.nn.functional, name)(theirs, **kwargs)
    assert y.shape == tuple(ty.shape)
    numpy.testing.assert_allclose(_host(y), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = numpy.random.default_rng(2).standard_normal(y.shape)
    y.backward(gf.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    numpy.testing.assert_allclose(_host(tensor.grad), theirs.grad.numpy(), rtol=1e-12, atol=1e-14)


def _host(t):
    return t.detach().cpu().numpy()
