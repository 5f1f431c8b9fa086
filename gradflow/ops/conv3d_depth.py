"""conv3d on the CPU as a conv2d over depth slices, the depth taps folded into the channels.

Output slice z of a 3-D conv reads input depths ``z*sd + i*dd - pad`` (i < kd), so it is a
2-D conv of those kd slices stacked as kd*C channels, with the weight [K, kd*C, kh, kw]. Over
the batch and the output depths that is one conv2d of N*OD images, which takes conv.py's CPU
routes: Winograd's for a 3x3 kernel (conv_winograd.py), a GEMM per kernel offset or im2col
otherwise. Its columns are the depth slices only, kd times the input, where conv3d.py's
im2col copies kd*kh*kw times the input before one batched GEMM: 3x3x3 16->32 over
(8, 16, 16, 16, 16) took 84 ms forward and backward against torch's 26 that way.

The input gradient is conv.py's input gradient of that conv2d, its kd slices added back at
their depths. NumPy arrays without groups; CuPy arrays and grouped convs keep conv3d.py's
im2col.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.ops import conv
from gradflow.ops.window import Window


def applies(x: Any, groups: int) -> bool:
    """Whether the 3-D conv of x runs as a conv2d over depth slices here."""
    return type(x) is numpy.ndarray and groups == 1 and x.dtype.kind == "f"


def _window2(window: Any) -> Window:
    """The 2-D conv every output depth slice is (height and width of the 3-D window)."""
    return Window(window.kernel[1:], window.stride[1:], window.before[1:], window.dilation[1:],
                  window.out[1:])  # fmt: skip


def _depth_taps(window: Any, depth: int) -> list[tuple[slice, slice]]:
    """(output depths, input depths) that depth tap i reads, per tap: output z reads input
    z*sd + i*dd - before, where that is inside the input."""
    kd, sd, dd, before, od = (window.kernel[0], window.stride[0], window.dilation[0],
                              window.before[0], window.out[0])  # fmt: skip
    taps = []
    for i in range(kd):
        shift = i * dd - before
        lo = max(0, -(shift // sd))  # the first z with z*sd + shift >= 0
        hi = max(lo, min(od, (depth - 1 - shift) // sd + 1))  # past the last inside
        taps.append((slice(lo, hi), slice(lo * sd + shift, (hi - 1) * sd + shift + 1, sd)))
    return taps


def _columns(x: Any, window: Any) -> Any:
    """x [N, C, D, H, W] -> [N*OD, kd*C, H, W]: output depth z's kd input slices (zeros where
    the padding is), as the channels of one image."""
    n, c, d, h, w = x.shape
    kd, od = window.kernel[0], window.out[0]
    cols = numpy.empty((n, od, kd, c, h, w), dtype=x.dtype)
    depth_major = x.transpose(0, 2, 1, 3, 4)
    for i, (outs, ins) in enumerate(_depth_taps(window, d)):
        cols[:, : outs.start, i] = 0
        cols[:, outs.stop :, i] = 0
        if outs.stop > outs.start:
            cols[:, outs, i] = depth_major[:, ins]
    return cols.reshape(n * od, kd * c, h, w)


def _weight2(weight: Any) -> Any:
    """[K, C, kd, kh, kw] -> [K, kd*C, kh, kw], the channels in _columns' order."""
    k, c, kd, kh, kw = weight.shape
    return numpy.ascontiguousarray(weight.transpose(0, 2, 1, 3, 4)).reshape(k, kd * c, kh, kw)


def _slices_major(gy: Any) -> Any:
    """gy [N, K, OD, OH, OW] -> [N*OD, K, OH, OW]."""
    n, k, od, oh, ow = gy.shape
    return numpy.ascontiguousarray(gy.transpose(0, 2, 1, 3, 4)).reshape(n * od, k, oh, ow)


def forward(x: Any, weight: Any, window: Any) -> Any:
    """conv3d of x [N, C, D, H, W] with weight [K, C, kd, kh, kw], no bias: [N, K, OD, OH, OW]."""
    n, k = x.shape[0], weight.shape[0]
    out = conv._conv_forward(_columns(x, window), _weight2(weight), None, _window2(window), 1,
                             "conv3d")  # fmt: skip
    out = out.reshape(n, window.out[0], k, *window.out[1:])
    return numpy.ascontiguousarray(out.transpose(0, 2, 1, 3, 4))


def weight_grad(gy: Any, x: Any, window: Any, w_shape: tuple) -> Any:
    """dW [K, C, kd, kh, kw] of the conv3d of x with output gradient gy."""
    k, c, kd, kh, kw = w_shape
    dw = conv._conv_weight_grad(_slices_major(gy), _columns(x, window), _window2(window), 1,
                                (k, kd * c, kh, kw), "conv3d")  # fmt: skip
    return numpy.ascontiguousarray(dw.reshape(k, kd, c, kh, kw).transpose(0, 2, 1, 3, 4))


def input_grad(gy: Any, weight: Any, window: Any, x_shape: tuple) -> Any:
    """dX [N, C, D, H, W] of the conv3d with weight [K, C, kd, kh, kw] and output gradient gy:
    the conv2d's input gradient, each depth tap's slices added back at their depths."""
    n, c, d, h, w = x_shape
    kd, od = window.kernel[0], window.out[0]
    shape = (n * od, kd * c, h, w)
    dcols = conv._conv_input_grad(_slices_major(gy), _weight2(weight), _window2(window), 1,
                                  shape, op="conv3d")  # fmt: skip
    dcols = dcols.reshape(n, od, kd, c, h, w)
    dx = numpy.zeros((n, d, c, h, w), dtype=dcols.dtype)
    for i, (outs, ins) in enumerate(_depth_taps(window, d)):
        if outs.stop > outs.start:
            dx[:, ins] += dcols[:, outs, i]
    return numpy.ascontiguousarray(dx.transpose(0, 2, 1, 3, 4))
