"""conv3d's CPU route as a conv2d over depth slices (gradflow/ops/conv3d_depth.py) against
conv3d.py's im2col: the same values and gradients over depth strides, dilations and paddings
(taps that read only padding, output depths no tap reaches), float32 with enough channels for
the Winograd route, conv_transpose3d, and the convs left to im2col."""

import numpy
import pytest
from conv_routes import route_and_others

import gradflow as gf
from gradflow.ops import conv3d_depth

F = gf.nn.functional


def _routes(monkeypatch, fn, arrays, expect=True):
    names = ("forward", "weight_grad", "input_grad")
    return route_and_others(monkeypatch, fn, arrays, conv3d_depth, names, expect)


def _agree(ours, reference, tol):
    for a, b in zip(ours, reference, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert numpy.abs(a - b).max() <= tol * max(numpy.abs(b).max(), 1e-30)


@pytest.mark.parametrize(
    "kw",
    [
        {"padding": 1},
        {"padding": (2, 1, 0), "stride": (2, 1, 1)},
        {"padding": (3, 1, 1), "dilation": (2, 1, 1)},  # taps reading only padding
        {"stride": (3, 2, 1), "padding": (0, 1, 2)},
        {"padding": "same", "dilation": (1, 2, 1)},
    ],
)
def test_float64_matches_im2col(monkeypatch, kw):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 6, 7))
    w = rng.standard_normal((4, 3, 3, 3, 2))
    b = rng.standard_normal(4)
    ours, im2col, calls = _routes(monkeypatch, lambda x, w, b: F.conv3d(x, w, b, **kw), [x, w, b])
    assert set(calls) == {"forward", "weight_grad", "input_grad"}
    _agree(ours, im2col, 1e-12)


@pytest.mark.parametrize(
    "kw",
    [
        {"padding": 1},
        {"padding": (0, 2, 0)},
        {"padding": (2, 0, 1), "stride": (2, 1, 1), "dilation": (2, 1, 1)},
        {"padding": (1, 3, 1)},  # height padding past the kernel: whole tile rows of zeros
    ],
)
def test_float32_through_winograd(monkeypatch, kw):
    from gradflow.ops import conv_winograd

    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((2, 8, 6, 10, 9)).astype(numpy.float32)
    w = (rng.standard_normal((16, 8, 3, 3, 3)) * 0.1).astype(numpy.float32)
    calls = []
    real = conv_winograd.forward_frame
    monkeypatch.setattr(conv_winograd, "forward_frame", lambda *a: calls.append(1) or real(*a))
    ours, im2col, _ = _routes(monkeypatch, lambda x, w: F.conv3d(x, w, **kw), [x, w])
    assert len(calls) == 2  # the forward and the input gradient on channels-last frames
    _agree(ours, im2col, 1e-5)


def test_conv_transpose3d_and_unbatched(monkeypatch):
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((2, 4, 3, 4, 5))
    w = rng.standard_normal((4, 3, 2, 3, 3))
    fn = lambda x, w: F.conv_transpose3d(x, w, stride=(2, 1, 1), padding=(0, 1, 1))  # noqa: E731
    ours, im2col, _ = _routes(monkeypatch, fn, [x, w])
    _agree(ours, im2col, 1e-12)
    x4 = rng.standard_normal((3, 4, 5, 6))
    w4 = rng.standard_normal((2, 3, 2, 2, 2))
    ours, im2col, _ = _routes(monkeypatch, lambda x, w: F.conv3d(x, w, padding=1), [x4, w4])
    _agree(ours, im2col, 1e-12)


def test_grouped_conv3d_keeps_im2col(monkeypatch):
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((1, 4, 4, 4, 4))
    w = rng.standard_normal((4, 2, 3, 3, 3))
    _routes(monkeypatch, lambda x, w: F.conv3d(x, w, groups=2), [x, w], expect=False)


def test_depth_taps_cover_each_output_once():
    from gradflow.ops.conv3d import _Window3

    for depth, kd, sd, dd, before, od in [
        (5, 3, 1, 1, 1, 5),
        (7, 3, 2, 2, 3, 5),
        (2, 3, 1, 3, 4, 3),
    ]:
        window = _Window3((kd, 1, 1), (sd, 1, 1), (before, 0, 0), (0, 0, 0), (dd, 1, 1), (od, 1, 1))
        for i, (outs, ins) in enumerate(conv3d_depth._depth_taps(window, depth)):
            zs = range(od)[outs]
            expected = [z for z in range(od) if 0 <= z * sd + i * dd - before < depth]
            assert list(zs) == expected
            if expected:
                assert list(range(depth)[ins]) == [z * sd + i * dd - before for z in expected]
