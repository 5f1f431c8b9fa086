"""The CPU's stride-1 conv route without columns (gradflow/ops/conv_offsets.py) against the
im2col route: the same values and gradients for conv2d, conv1d and conv_transpose2d, over
paddings, dilations, kernels and dtypes; and the channels-last copy both routes share."""

import numpy
import pytest
from conv_routes import assert_routes_agree, forward_backward

import gradflow as gf
from gradflow.ops import conv_offsets, conv_pointwise
from gradflow.ops.window import Window, copy_channels_last


def _both_routes(monkeypatch, fn, arrays):
    """(offsets route, im2col route); fails unless the offsets route really ran."""
    calls = []
    forward = conv_offsets.forward
    with monkeypatch.context() as m:
        m.setattr(conv_offsets, "MAX_EXTRA_WORK", 100.0)  # small test images pad a lot
        m.setattr(conv_pointwise, "applies", lambda *args: False)  # 1x1 convs come here too
        m.setattr(conv_offsets, "forward", lambda *a: calls.append(1) or forward(*a))
        direct = forward_backward(fn, arrays)
    assert calls, "the conv did not take the offsets route"
    with monkeypatch.context() as m:
        m.setattr(conv_offsets, "applies", lambda *args: False)
        im2col = forward_backward(fn, arrays)
    return direct, im2col


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize(
    "kernel,geometry",
    [
        ((3, 3), dict(padding=1)),
        ((3, 3), dict(padding=0)),
        ((2, 3), dict(padding=(2, 0), dilation=(1, 2))),
        ((3, 2), dict(padding="same", dilation=2)),
        ((1, 1), dict()),
    ],
)
def test_conv2d_matches_im2col(monkeypatch, dtype, kernel, geometry):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((3, 16, 7, 9)).astype(dtype)
    w = rng.standard_normal((5, 16, *kernel)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    fn = lambda x, w, b: gf.nn.functional.conv2d(x, w, b, **geometry)  # noqa: E731
    assert_routes_agree(*_both_routes(monkeypatch, fn, [x, w, b]), dtype)


@pytest.mark.parametrize("groups", [2, 3])
def test_grouped_conv2d_matches_im2col(monkeypatch, groups):
    rng = numpy.random.default_rng(4)
    x = rng.standard_normal((2, 32 * groups, 6, 7)).astype(numpy.float32)
    w = rng.standard_normal((6 * groups, 32, 3, 3)).astype(numpy.float32)
    b = rng.standard_normal(6 * groups).astype(numpy.float32)
    fn = lambda x, w, b: gf.nn.functional.conv2d(x, w, b, padding=1, groups=groups)  # noqa: E731
    assert_routes_agree(*_both_routes(monkeypatch, fn, [x, w, b]), numpy.float32)


def test_conv1d_unbatched_and_transposed_match_im2col(monkeypatch):
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((2, 16, 20)).astype(numpy.float32)
    w = rng.standard_normal((24, 16, 5)).astype(numpy.float32)
    conv1d = lambda x, w: gf.nn.functional.conv1d(x, w, padding=2)  # noqa: E731
    assert_routes_agree(*_both_routes(monkeypatch, conv1d, [x, w]), numpy.float32)
    x3 = rng.standard_normal((16, 6, 6))
    w3 = rng.standard_normal((20, 16, 3, 3))
    conv2d = lambda x, w: gf.nn.functional.conv2d(x, w, padding=1)  # noqa: E731
    assert_routes_agree(*_both_routes(monkeypatch, conv2d, [x3, w3]), numpy.float64)
    # a stride-1 conv_transpose2d: its forward and input gradient are stride-1 convs
    xt = rng.standard_normal((2, 16, 5, 5))
    wt = rng.standard_normal((16, 18, 3, 3))
    transposed = lambda x, w: gf.nn.functional.conv_transpose2d(x, w, padding=1)  # noqa: E731
    assert_routes_agree(*_both_routes(monkeypatch, transposed, [xt, wt]), numpy.float64)


def test_more_outputs_than_inputs_take_the_flipped_conv_without_columns(monkeypatch):
    """With O > C a stride-1 conv's dX is still the conv of dY with the flipped kernel when
    that conv takes this route (no dY columns): two calls of forward, the same gradients."""
    rng = numpy.random.default_rng(7)
    x, w = rng.standard_normal((2, 16, 6, 7)), rng.standard_normal((40, 16, 3, 3))
    calls = []
    forward = conv_offsets.forward
    monkeypatch.setattr(conv_offsets, "MAX_EXTRA_WORK", 100.0)
    monkeypatch.setattr(conv_offsets, "forward", lambda *a: calls.append(a[0].shape) or forward(*a))
    fn = lambda x, w: gf.nn.functional.conv2d(x, w, padding=1)  # noqa: E731
    direct = forward_backward(fn, [x, w])
    assert calls == [(2, 16, 6, 7), (2, 40, 6, 7)]  # the forward, then dY's conv
    monkeypatch.setattr(conv_offsets, "applies", lambda *args: False)
    assert_routes_agree(direct, forward_backward(fn, [x, w]), numpy.float64)


def test_blocks_of_samples_give_the_same_result(monkeypatch):
    rng = numpy.random.default_rng(2)
    x, w = rng.standard_normal((5, 16, 6, 5)), rng.standard_normal((4, 16, 3, 3))
    monkeypatch.setattr(conv_offsets, "MAX_EXTRA_WORK", 100.0)
    fn = lambda x, w: gf.nn.functional.conv2d(x, w, padding=1)  # noqa: E731
    whole = forward_backward(fn, [x, w])
    monkeypatch.setattr(conv_offsets, "BLOCK_ROWS", 1)  # one sample per block
    for a, b in zip(whole, forward_backward(fn, [x, w]), strict=True):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_which_convs_take_the_route():
    x = numpy.zeros((2, 32, 32, 32), numpy.float32)
    window = Window((3, 3), (1, 1), (1, 1), (1, 1), (32, 32))
    assert conv_offsets.applies(x, (64, 32, 3, 3), window, 1)
    assert conv_offsets.applies(x.astype(numpy.float64), (64, 32, 3, 3), window, 1)
    assert conv_offsets.applies(x, (64, 16, 3, 3), window, 1)
    assert conv_offsets.applies(x, (64, 32, 3, 3), window, 2)  # 32 channels per group
    assert not conv_offsets.applies(x, (64, 16, 3, 3), window, 4)  # 16 per group: im2col
    assert not conv_offsets.applies(x, (64, 32, 3, 3), window._replace(stride=(2, 2)), 1)
    assert not conv_offsets.applies(x[:, :8], (64, 8, 3, 3), window, 1)  # too few channels
    assert not conv_offsets.applies(x.astype(numpy.float16), (64, 32, 3, 3), window, 1)
    tiny = Window((3, 3), (1, 1), (1, 1), (1, 1), (4, 4))  # 6x6 frame for 4x4 outputs: 2.25x
    assert not conv_offsets.applies(x[..., :4, :4], (64, 32, 3, 3), tiny, 1)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 8, 32, 40)])  # one copy; a copy per channel
def test_copy_channels_last(shape):
    x = numpy.random.default_rng(3).standard_normal(shape)
    dst = numpy.zeros((shape[0], *shape[2:], shape[1]))
    copy_channels_last(dst, x)
    numpy.testing.assert_array_equal(dst, x.transpose(0, 2, 3, 1))
