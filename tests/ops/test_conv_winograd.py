"""The CPU's Winograd F(2x2, 3x3) route for 3x3 stride-1 convs (gradflow/ops/conv_winograd.py)
against float64 references and against the other routes: forward, input and weight gradients
over paddings, odd sizes (partial tiles), bias, dilation by phases, non-contiguous inputs,
blocks of tiles; and the convs the route must leave to the others."""

import numpy
import pytest
from conv_routes import forward_backward, route_and_others

import gradflow as gf
from gradflow.backend import compiled
from gradflow.ops import conv_offsets, conv_pointwise, conv_winograd
from gradflow.ops.window import Window

F = gf.nn.functional

pytestmark = pytest.mark.skipif(
    compiled.loops(numpy.zeros(1, numpy.float32)) is None, reason="needs numba's loops"
)


def _reference_conv(x, w, padding, dilation=(1, 1)):
    """float64 cross-correlation [N, K, OH, OW] by one einsum per kernel offset."""
    x = numpy.pad(x.astype(numpy.float64), ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    (dh, dw), (kh, kw) = dilation, w.shape[2:]
    oh, ow = x.shape[2] - dh * (kh - 1), x.shape[3] - dw * (kw - 1)
    out = numpy.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dh : i * dh + oh, j * dw : j * dw + ow]
            out += numpy.einsum("nchw,kc->nkhw", patch, w[:, :, i, j].astype(numpy.float64))
    return out


def _relative_error(a, b):
    return numpy.abs(a - b).max() / max(numpy.abs(b).max(), 1e-30)


def _agree(ours, others):
    """Same dtypes and shapes, each array within 1e-5 of the other's largest magnitude: the
    routes sum thousands of float32 products in different orders (and Winograd's transforms
    add before multiplying), so elementwise relative bounds fail on the small elements."""
    for a, b in zip(ours, others, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert _relative_error(a, b) < 1e-5


@pytest.mark.parametrize(
    "shape, padding",
    [
        ((2, 3, 7, 9), (1, 1)),  # odd output sizes: partial tiles at the bottom and right
        ((3, 2, 8, 8), (0, 0)),
        ((2, 4, 5, 6), (2, 2)),
        ((1, 2, 6, 11), (0, 2)),
        ((2, 3, 4, 4), (3, 1)),  # padding past the kernel: whole tiles of zeros
    ],
)
def test_forward_and_weight_grad_match_float64(shape, padding):
    rng = numpy.random.default_rng(0)
    n, scale, h, w_ = shape
    c, k = 16 * scale, 8 * scale + 8
    x = rng.standard_normal((n, c, h, w_)).astype(numpy.float32)
    w = rng.standard_normal((k, c, 3, 3)).astype(numpy.float32)
    b = rng.standard_normal(k).astype(numpy.float32)
    out_hw = (h + 2 * padding[0] - 2, w_ + 2 * padding[1] - 2)
    window = Window((3, 3), (1, 1), padding, (1, 1), out_hw)
    expected = _reference_conv(x, w, padding)
    out = conv_winograd.forward(x, w, b, window)
    assert out.dtype == numpy.float32 and out.shape == expected.shape
    assert _relative_error(out, expected + b[:, None, None]) < 2e-6
    assert _relative_error(conv_winograd.forward(x, w, None, window), expected) < 2e-6
    g = rng.standard_normal(expected.shape).astype(numpy.float32)
    # dW[k, c, i, j] = sum g[n, k] * x_padded[n, c] shifted by (i, j): the same correlation
    xp = numpy.pad(x.astype(numpy.float64), ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    dw = numpy.empty(w.shape)
    for i in range(3):
        for j in range(3):
            patch = xp[:, :, i : i + out_hw[0], j : j + out_hw[1]]
            dw[:, :, i, j] = numpy.einsum("nkhw,nchw->kc", g.astype(numpy.float64), patch)
    got = conv_winograd.weight_grad(g, x, window, w.shape)
    assert got.dtype == numpy.float32 and got.shape == w.shape
    assert _relative_error(got, dw) < 2e-6


def test_blocks_of_tiles_give_the_same_result(monkeypatch):
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((3, 32, 10, 13)).astype(numpy.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(numpy.float32)
    g = rng.standard_normal((3, 32, 10, 13)).astype(numpy.float32)
    window = Window((3, 3), (1, 1), (1, 1), (1, 1), (10, 13))
    whole = (
        conv_winograd.forward(x, w, None, window),
        conv_winograd.weight_grad(g, x, window, w.shape),
    )
    monkeypatch.setattr(conv_winograd, "BLOCK_BYTES", 1)  # one tile row per block
    assert len(conv_winograd._blocks(3 * 5, 7, 32)) == 15
    blocked = (
        conv_winograd.forward(x, w, None, window),
        conv_winograd.weight_grad(g, x, window, w.shape),
    )
    _agree(blocked, whole)


def _routes(monkeypatch, fn, arrays, expect=True):
    """(Winograd route, conv_offsets/im2col route, the Winograd functions that ran)."""
    names = ("forward", "weight_grad")
    return route_and_others(monkeypatch, fn, arrays, conv_winograd, names, expect)


@pytest.mark.parametrize(
    "kw",
    [
        {"padding": 1},
        {"padding": 0},
        {"padding": (2, 0)},
        {"padding": "same"},
        {"padding": 1, "bias": False},
    ],
)
def test_conv2d_through_the_route_matches_the_others(monkeypatch, kw):
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((2, 32, 9, 12)).astype(numpy.float32)
    w = (rng.standard_normal((48, 32, 3, 3)) * 0.1).astype(numpy.float32)
    b = rng.standard_normal(48).astype(numpy.float32)
    bias = kw.pop("bias", True)
    arrays = [x, w, b] if bias else [x, w]
    fn = lambda x, w, b=None: F.conv2d(x, w, b, **kw)  # noqa: E731
    ours, others, calls = _routes(monkeypatch, fn, arrays)
    # the forward, the weight gradient, and the input gradient as a flipped-kernel forward
    assert calls.count("forward") == 2 and calls.count("weight_grad") == 1
    _agree(ours, others)


def test_dilated_conv_by_phases(monkeypatch):
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((2, 32, 33, 70)).astype(numpy.float32)  # phases of unequal sizes
    w = (rng.standard_normal((32, 32, 3, 3)) * 0.1).astype(numpy.float32)
    fn = lambda x, w: F.conv2d(x, w, padding=(1, 2), dilation=(1, 2))  # noqa: E731
    ours, others, calls = _routes(monkeypatch, fn, [x, w])
    assert "weight_grad" in calls
    _agree(ours, others)
    window = Window((3, 3), (1, 1), (3, 2), (3, 2), (33 + 6 - 6, 70))
    expected = _reference_conv(x, w, (3, 2), (3, 2))
    assert _relative_error(conv_winograd.forward(x, w, None, window), expected) < 2e-6


@pytest.mark.parametrize("groups, padding", [(2, 1), (4, 0), (3, 2)])
def test_grouped_convs_by_group_gemms(monkeypatch, groups, padding):
    rng = numpy.random.default_rng(8)
    x = rng.standard_normal((2, 16 * groups, 9, 10)).astype(numpy.float32)
    w = (rng.standard_normal((16 * groups, 16, 3, 3)) * 0.1).astype(numpy.float32)
    b = rng.standard_normal(16 * groups).astype(numpy.float32)
    fn = lambda x, w, b: F.conv2d(x, w, b, padding=padding, groups=groups)  # noqa: E731
    ours, others, calls = _routes(monkeypatch, fn, [x, w, b])
    assert calls.count("forward") == 2 and calls.count("weight_grad") == 1
    _agree(ours, others)


def test_backward_builds_dy_frame_once(monkeypatch):
    """conv2d's backward builds dY's channels-last frame once: the weight gradient reads its
    rows, the input gradient (the conv of dY) the whole frame."""
    built = []
    real = conv_winograd._frame
    monkeypatch.setattr(conv_winograd, "_frame", lambda *a: built.append(a[0].shape) or real(*a))
    rng = numpy.random.default_rng(9)
    x = rng.standard_normal((2, 32, 8, 8)).astype(numpy.float32)
    w = rng.standard_normal((48, 32, 3, 3)).astype(numpy.float32)
    forward_backward(lambda x, w: F.conv2d(x, w, padding=1), [x, w])
    # x's frame in forward and in the weight gradient, dY's once
    assert built.count((2, 48, 8, 8)) == 1 and built.count((2, 32, 8, 8)) == 2


def test_non_contiguous_input_and_unbatched(monkeypatch):
    rng = numpy.random.default_rng(4)
    xt = rng.standard_normal((2, 10, 11, 32)).astype(numpy.float32)
    w = (rng.standard_normal((32, 32, 3, 3)) * 0.1).astype(numpy.float32)

    def channels_last(x, w):
        return F.conv2d(x.permute(0, 3, 1, 2), w, padding=1)

    ours, others, _ = _routes(monkeypatch, channels_last, [xt, w])
    _agree(ours, others)
    x3 = rng.standard_normal((32, 6, 7)).astype(numpy.float32)
    ours, others, _ = _routes(monkeypatch, lambda x, w: F.conv2d(x, w, padding=1), [x3, w])
    _agree(ours, others)


@pytest.mark.parametrize(
    "dtype, w_shape, kw",
    [
        (numpy.float64, (32, 32, 3, 3), {"padding": 1}),  # float64 keeps the exact routes
        (numpy.float32, (32, 8, 3, 3), {"padding": 1}),  # too few input channels
        (numpy.float32, (8, 32, 3, 3), {"padding": 1}),  # too few output channels
        (numpy.float32, (32, 32, 3, 3), {"stride": 2}),
        (numpy.float32, (32, 32, 5, 5), {"padding": 2}),
        (numpy.float32, (32, 8, 3, 3), {"groups": 4, "padding": 1}),  # 8 channels per group
    ],
)
def test_convs_left_to_the_other_routes(monkeypatch, dtype, w_shape, kw):
    rng = numpy.random.default_rng(5)
    c = w_shape[1] * kw.get("groups", 1)
    x = rng.standard_normal((2, c, 16, 16)).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    fn = lambda x, w: F.conv2d(x, w, **kw)  # noqa: E731
    _routes(monkeypatch, fn, [x, w], expect=False)


def test_numba_off_leaves_the_route(monkeypatch):
    x = numpy.zeros((1, 32, 8, 8), numpy.float32)
    window = Window((3, 3), (1, 1), (1, 1), (1, 1), (8, 8))
    assert conv_winograd.applies(x, (32, 32, 3, 3), window, 1)
    with compiled.disabled():
        assert not conv_winograd.applies(x, (32, 32, 3, 3), window, 1)


def test_special_values_propagate():
    x = numpy.ones((1, 32, 6, 6), numpy.float32)
    x[0, 3, 2, 2] = numpy.nan
    x[0, 5, 4, 4] = numpy.inf
    w = numpy.full((32, 32, 3, 3), 0.01, numpy.float32)
    window = Window((3, 3), (1, 1), (1, 1), (1, 1), (6, 6))
    out = conv_winograd.forward(x, w, None, window)
    reference = _reference_conv(x, w, (1, 1))
    # every output whose window holds the NaN or the inf is not finite, the others are exact
    assert numpy.array_equal(numpy.isfinite(out), numpy.isfinite(reference))
    finite = numpy.isfinite(reference)
    assert _relative_error(out[finite], reference[finite]) < 2e-6


def test_routes_not_taken_without_the_others(monkeypatch):
    """conv_pointwise and conv_offsets stay out of a 3x3 stride-1 conv the route takes."""
    rng = numpy.random.default_rng(6)
    x = rng.standard_normal((2, 32, 8, 8)).astype(numpy.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(numpy.float32)
    monkeypatch.setattr(conv_offsets, "forward", lambda *a: pytest.fail("conv_offsets ran"))
    monkeypatch.setattr(conv_offsets, "weight_grad", lambda *a: pytest.fail("conv_offsets ran"))
    monkeypatch.setattr(conv_pointwise, "forward", lambda *a: pytest.fail("pointwise ran"))
    forward_backward(lambda x, w: F.conv2d(x, w, padding=1), [x, w])
