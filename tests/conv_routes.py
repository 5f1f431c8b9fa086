"""Shared by the tests of the CPU's conv routes (tests/ops/test_depthwise.py,
test_conv_offsets.py, test_conv_pointwise.py, test_conv_winograd.py, test_conv3d_depth.py): one
forward and backward under a fixed random output gradient, a route's results beside the other
routes' (counting the route's calls), and the comparison of two routes' results."""

import numpy

import gradflow as gf


def forward_backward(fn, arrays, grad_seed=1):
    """Output and the gradient of every input of fn under a fixed random output gradient."""
    tensors = [gf.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    g = numpy.random.default_rng(grad_seed).standard_normal(tuple(out.shape))
    out.backward(gf.tensor(g.astype(arrays[0].dtype)))
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]


def assert_routes_agree(ours, reference, dtype, float32_tolerance=3e-5):
    """Same dtypes and shapes, values within the tolerance (1e-12 in float64)."""
    tol = float32_tolerance if dtype == numpy.float32 else 1e-12
    for a, b in zip(ours, reference, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        numpy.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def route_and_others(monkeypatch, fn, arrays, module, names, expect=True, also_off=()):
    """(results with the route of `module`, results with it off, the names of its functions
    that ran): `names` are the module's functions counted; fails unless the route ran as
    `expect` says. The second run turns off `module.applies` and that of each `also_off`."""
    calls = []
    for name in names:
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    ours = forward_backward(fn, arrays)
    assert bool(calls) == expect, f"{module.__name__} calls: {calls}"
    with monkeypatch.context() as m:
        for off in (module, *also_off):
            m.setattr(off, "applies", lambda *args: False)
        others = forward_backward(fn, arrays)
    return ours, others, calls
