"""The CPU's direct depthwise route (gradflow/ops/depthwise.py) against the im2col route it
replaces: the same values and gradients for conv2d, conv1d and conv_transpose2d over
strides, dilations, paddings, both of the forward's layouts and both dtypes."""

import itertools

import numpy
import pytest
from conv_routes import assert_routes_agree, forward_backward

import gradflow as gf
from gradflow.backend import compiled
from gradflow.ops import conv as conv_module
from gradflow.ops import depthwise
from gradflow.ops.window import Window


def _both_routes(monkeypatch, fn, arrays):
    direct = forward_backward(fn, arrays)
    with monkeypatch.context() as m:
        m.setattr(depthwise, "applies", lambda *args: False)
        im2col = forward_backward(fn, arrays)
    return direct, im2col


GEOMETRIES = [
    dict(padding=1),
    dict(padding=0),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(2, 0), dilation=(1, 2)),
    dict(dilation=2, padding=2),
]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize(
    "channels,size,channel_run",
    [(3, (9, 7), 1 << 30), (3, (9, 7), 1), (40, (3, 4), 1 << 30)],  # planes, by channel, last
)
def test_conv2d_depthwise_matches_im2col(monkeypatch, dtype, geometry, channels, size,
                                         channel_run):  # fmt: skip
    monkeypatch.setattr(depthwise, "CHANNEL_RUN", channel_run)
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((2, channels, *size)).astype(dtype)
    w = rng.standard_normal((channels, 1, 3, 2)).astype(dtype)
    b = rng.standard_normal(channels).astype(dtype)

    def fn(x, w, b):
        return gf.nn.functional.conv2d(x, w, b, groups=channels, **geometry)

    assert_routes_agree(*_both_routes(monkeypatch, fn, [x, w, b]), dtype)


@compiled.disabled()
def test_the_forward_takes_each_route(monkeypatch):
    """The cases above reach the three NumPy forward routes: planes, by channel, channels last
    (numba's compiled loop, when installed, takes stride-1 convs before them)."""
    calls = []
    for name in ("_forward_by_channel", "_forward_last"):
        original = getattr(depthwise, name)
        monkeypatch.setattr(depthwise, name,
                            lambda *a, f=original, n=name: calls.append(n) or f(*a))  # fmt: skip
    x = numpy.ones((2, 3, 9, 7))
    w = numpy.ones((3, 1, 3, 2))
    window = Window((3, 2), (1, 1), (1, 1), (1, 1), (9, 8))
    depthwise.forward(x, w, None, window)
    assert calls == []  # 2 * 11 * 9 frame values per channel: the planes' route
    monkeypatch.setattr(depthwise, "CHANNEL_RUN", 1)
    depthwise.forward(x, w, None, window)
    assert calls == ["_forward_by_channel"]
    depthwise.forward(numpy.ones((2, 40, 3, 4)), numpy.ones((40, 1, 3, 2)), None,
                      window._replace(out=(3, 5)))  # fmt: skip
    assert calls == ["_forward_by_channel", "_forward_last"]
    planes = Window((3, 2), (1, 1), (1, 1), (1, 1), (9, 8))
    small = Window((3, 2), (1, 1), (1, 1), (1, 1), (3, 5))
    assert not depthwise._channels_last(3, planes)
    assert depthwise._channels_last(40, small)
    assert not depthwise._channels_last(40, small._replace(stride=(2, 2)))


@pytest.mark.parametrize("stride,padding,output_padding", [(1, 0, 0), (2, 1, 1), (3, 1, 2)])
def test_conv_transpose2d_depthwise_matches_im2col(monkeypatch, stride, padding, output_padding):
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 1, 3, 3))

    def fn(x, w):
        return gf.nn.functional.conv_transpose2d(
            x, w, stride=stride, padding=padding, output_padding=output_padding, groups=4
        )

    assert_routes_agree(*_both_routes(monkeypatch, fn, [x, w]), numpy.float64)


def test_conv1d_and_unbatched_depthwise_match_im2col(monkeypatch):
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((2, 6, 11)).astype(numpy.float32)
    w = rng.standard_normal((6, 1, 5)).astype(numpy.float32)
    fn = lambda x, w: gf.nn.functional.conv1d(x, w, padding=2, groups=6)  # noqa: E731
    assert_routes_agree(*_both_routes(monkeypatch, fn, [x, w]), numpy.float32)
    fn2 = lambda x, w: gf.nn.functional.conv2d(x, w, padding=1, groups=6)  # noqa: E731
    x3 = rng.standard_normal((6, 5, 5)).astype(numpy.float32)
    w3 = rng.standard_normal((6, 1, 3, 3)).astype(numpy.float32)
    assert_routes_agree(*_both_routes(monkeypatch, fn2, [x3, w3]), numpy.float32)


def test_only_one_channel_in_and_out_per_group_on_numpy_floats_takes_the_route():
    x = numpy.zeros((1, 4, 5, 5), numpy.float32)
    assert depthwise.applies(x, (4, 1, 3, 3), 4)
    assert depthwise.applies(x.astype(numpy.float64), (4, 1, 3, 3), 4)
    assert not depthwise.applies(x, (8, 1, 3, 3), 4)  # a channel multiplier: im2col
    assert not depthwise.applies(x, (4, 2, 3, 3), 2)  # two channels per group
    assert not depthwise.applies(x, (4, 4, 3, 3), 1)  # an ordinary conv
    assert not depthwise.applies(x.astype(numpy.float16), (4, 1, 3, 3), 4)


def test_blocks_of_planes_give_the_same_result(monkeypatch):
    """A block size of a few planes (many blocks, partial last block) changes nothing."""
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((3, 5, 6, 7))
    w = rng.standard_normal((5, 1, 3, 3))
    fn = lambda x, w: gf.nn.functional.conv2d(x, w, stride=(1, 2), padding=1, groups=5)  # noqa: E731
    whole = forward_backward(fn, [x, w])
    monkeypatch.setattr(depthwise, "BLOCK_ELEMENTS", 50)
    for a, b in zip(whole, forward_backward(fn, [x, w]), strict=True):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kernel,stride,padding", list(itertools.product([(1, 1), (3, 3)], [1, 2], [0, 1]))
)
def test_the_route_writes_no_columns(monkeypatch, kernel, stride, padding):
    """The direct route never builds im2col columns (the workspace the budget bounds)."""
    called = []
    monkeypatch.setattr(conv_module, "_forward_gemm", lambda *a: called.append(a))
    x = gf.randn(2, 3, 6, 6, requires_grad=True)
    w = gf.randn(3, 1, *kernel, requires_grad=True)
    gf.nn.functional.conv2d(x, w, stride=stride, padding=padding, groups=3).sum().backward()
    assert not called and x.grad is not None and w.grad is not None
