"""Helpers shared by the layer tests: copying a layer's state into its torch twin, comparing
outputs and gradients with torch, gradchecking a layer w.r.t. its input and parameters, and
checking an error's whole message."""

import numpy
import pytest

import gradflow as gf
from gradflow.testing import gradcheck


def as_numpy(t):
    return t.detach().cpu().numpy()


def load_into_torch(ours, theirs):
    """Copy `ours`' state_dict into the torch module `theirs`; the keys must be torch's exactly."""
    import torch

    state = {k: torch.from_numpy(numpy.array(as_numpy(v))) for k, v in ours.state_dict().items()}
    assert list(state) == list(theirs.state_dict())
    theirs.load_state_dict(state)


def assert_matches_torch(ours, theirs, x, rng, rtol=1e-5, atol=1e-5, view=None):
    """One forward and backward of both layers on `x` (a NumPy array): equal outputs, input
    gradients (for floating-point x) and parameter gradients (accumulated, by name). `view`
    (such as ``lambda t: t.transpose(2, 3)``) is applied to both inputs before the layer."""
    import torch

    differentiable = x.dtype.kind == "f"
    x_ours = gf.tensor(x, requires_grad=differentiable)
    x_theirs = torch.tensor(x, requires_grad=differentiable)
    view = view or (lambda t: t)
    out_ours, out_theirs = ours(view(x_ours)), theirs(view(x_theirs))
    assert out_ours.shape == tuple(out_theirs.shape)
    numpy.testing.assert_allclose(as_numpy(out_ours), as_numpy(out_theirs), rtol=rtol, atol=atol)
    g = rng.standard_normal(out_ours.shape).astype(numpy.float32)
    out_ours.backward(gf.tensor(g))
    out_theirs.backward(torch.from_numpy(g))
    pairs = [("input", x_ours.grad, x_theirs.grad)] if differentiable else []
    theirs_params = dict(theirs.named_parameters())
    assert [name for name, _ in ours.named_parameters()] == list(theirs_params)
    pairs += [(name, p.grad, theirs_params[name].grad) for name, p in ours.named_parameters()]
    for name, a, b in pairs:
        numpy.testing.assert_allclose(as_numpy(a), as_numpy(b), rtol=rtol, atol=atol, err_msg=name)
    return out_ours


def assert_gradcheck(layer, x):
    """gradcheck of layer(x) w.r.t. x (when it requires grad) and every parameter (float64)."""
    params = list(layer.parameters())
    assert gradcheck(lambda x, *params: layer(x), [x, *params])


def assert_raises_exactly(error, message, fn, *args, **kwargs):
    """fn(*args, **kwargs) raises `error` with exactly `message`."""
    with pytest.raises(error) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message
