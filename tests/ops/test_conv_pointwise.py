"""The CPU's 1x1 conv route (gradflow/ops/conv_pointwise.py: GEMMs on the NCHW layout) against
the im2col route: the same values and gradients for conv2d, conv1d and conv_transpose2d over
strides, sizes a stride does not divide, bias, dtypes and non-contiguous inputs; and the
convs the route must leave to the others."""

import numpy
import pytest
from conv_routes import assert_routes_agree, forward_backward, route_and_others

import gradflow as gf
from gradflow.ops import conv_offsets, conv_pointwise

F = gf.nn.functional


def _both_routes(monkeypatch, fn, arrays, expect=True):
    """(pointwise route, im2col route, its calls); fails unless the pointwise route ran as
    expected."""
    names = ("forward", "weight_grad", "input_grad")
    return route_and_others(monkeypatch, fn, arrays, conv_pointwise, names, expect,
                            also_off=(conv_offsets,))  # fmt: skip


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("stride", [1, 2, (1, 2), 3])
def test_conv2d_1x1_matches_im2col(monkeypatch, dtype, stride):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((3, 6, 7, 10)).astype(dtype)  # 7 and 10: strides leave remainders
    w = rng.standard_normal((5, 6, 1, 1)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    fn = lambda x, w, b: F.conv2d(x, w, b, stride=stride)  # noqa: E731
    direct, im2col, calls = _both_routes(monkeypatch, fn, [x, w, b])
    assert {"forward", "weight_grad", "input_grad"} <= set(calls)
    assert_routes_agree(direct, im2col, dtype)


def test_conv1d_kernel_1_and_unbatched_and_non_contiguous(monkeypatch):
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((2, 8, 33)).astype(numpy.float32)
    w = rng.standard_normal((12, 8, 1)).astype(numpy.float32)
    assert_routes_agree(*_both_routes(monkeypatch, F.conv1d, [x, w])[:2], numpy.float32)
    x3 = rng.standard_normal((8, 5, 6))  # unbatched conv2d
    w3 = rng.standard_normal((4, 8, 1, 1))
    assert_routes_agree(*_both_routes(monkeypatch, F.conv2d, [x3, w3])[:2], numpy.float64)

    def transposed_input(x, w):  # a channels-last input viewed as NCHW: not contiguous
        return F.conv2d(x.permute(0, 3, 1, 2), w, stride=2)

    xt = rng.standard_normal((2, 9, 7, 8))
    wt = rng.standard_normal((3, 8, 1, 1))
    assert_routes_agree(*_both_routes(monkeypatch, transposed_input, [xt, wt])[:2], numpy.float64)


def test_conv_transpose2d_1x1_strided(monkeypatch):
    # its backward's input gradient is a strided 1x1 conv of dY; output_padding widens dY
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((2, 6, 4, 5))
    w = rng.standard_normal((6, 3, 1, 1))
    fn = lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1)  # noqa: E731
    direct, im2col, calls = _both_routes(monkeypatch, fn, [x, w])
    assert "forward" in calls
    assert_routes_agree(direct, im2col, numpy.float64)


@pytest.mark.parametrize(
    "kernel,kwargs",
    [((1, 1), dict(padding=1)), ((1, 1), dict(groups=2)), ((3, 3), dict())],
)
def test_padding_groups_and_larger_kernels_keep_the_other_routes(monkeypatch, kernel, kwargs):
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((2, 4, 6, 6))
    w = rng.standard_normal((6, 4 // kwargs.get("groups", 1), *kernel))
    fn = lambda x, w: F.conv2d(x, w, **kwargs)  # noqa: E731
    assert_routes_agree(*_both_routes(monkeypatch, fn, [x, w], expect=False)[:2], numpy.float64)


def test_double_backward_through_a_1x1_conv():
    rng = numpy.random.default_rng(4)
    x = gf.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    w = gf.tensor(rng.standard_normal((5, 3, 1, 1)), requires_grad=True)
    assert gf.autograd.gradgradcheck(lambda x, w: F.conv2d(x, w, stride=2), (x, w))


def test_matches_torch():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((4, 16, 9, 9)).astype(numpy.float32)
    w = rng.standard_normal((24, 16, 1, 1)).astype(numpy.float32)
    b = rng.standard_normal(24).astype(numpy.float32)
    ours = forward_backward(lambda x, w, b: F.conv2d(x, w, b, stride=2), [x, w, b])
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = torch.nn.functional.conv2d(tx, tw, tb, stride=2)
    g = numpy.random.default_rng(1).standard_normal(tuple(y.shape)).astype(numpy.float32)
    y.backward(torch.tensor(g))
    theirs = [y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()]
    for a, t in zip(ours, theirs, strict=True):
        numpy.testing.assert_allclose(a, t, rtol=1e-4, atol=1e-4)
