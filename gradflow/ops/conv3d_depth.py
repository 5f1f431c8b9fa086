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

from gradflow.ops import conv, conv_winograd
from gradflow.ops.window import Window, channels_first, channels_last


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


# ---- through Winograd's route on channels-last frames ------------------------------------------
# When the 2-D conv takes conv_winograd.py, the depth slices go straight into its channels-last
# frames, and its channels-last results straight back: the NCHW columns and the 5-D transposes
# between them cost a third of the step (3x3x3 16->32 over (8, 16, 16, 16, 16)).


def _winograd(x: Any, w_shape: tuple, window: Any) -> bool:
    """Whether the folded conv2d takes conv_winograd.py (x: either of its array operands)."""
    k, c, kd = w_shape[:3]
    return conv_winograd.applies(x, (k, kd * c, *w_shape[3:]), _window2(window), 1)


def _depth_frame(xl: Any, window: Any, th: int) -> Any:
    """conv_winograd's frame of the folded conv2d from the channels-last xl [N, D, H, W, C]:
    [N*OD, 2*th + 2, W, kd*C], image (n, z) holding at channels (i, c) input depth tap i of
    output depth z (zeros in the padding, rows shifted by the height padding)."""
    n, d, h, w, c = xl.shape
    kd, od = window.kernel[0], window.out[0]
    top, first, rows = conv_winograd.frame_rows(h, window.before[1], th)
    frame = conv_winograd.empty_frame((n, od, 2 * th + 2, w, kd, c), 2, top, rows, xl.dtype)
    for i, (outs, ins) in enumerate(_depth_taps(window, d)):
        frame[:, : outs.start, top : top + rows, :, i] = 0
        frame[:, outs.stop :, top : top + rows, :, i] = 0
        if outs.stop > outs.start:
            frame[:, outs, top : top + rows, :, i] = xl[:, ins, first : first + rows]
    return frame.reshape(n * od, 2 * th + 2, w, kd * c)


def _rows_frame(gl: Any, ph: int, th: int) -> Any:
    """conv_winograd's frame [M, 2*th + 2, W, K] of the channels-last gl [M, H, W, K], row i
    holding gl's row i - ph."""
    m, h, w, k = gl.shape
    top, first, rows = conv_winograd.frame_rows(h, ph, th)
    frame = conv_winograd.empty_frame((m, 2 * th + 2, w, k), 1, top, rows, gl.dtype)
    frame[:, top : top + rows] = gl[:, first : first + rows]
    return frame


def _winograd_forward(x: Any, weight: Any, window: Any) -> Any:
    n, k = x.shape[0], weight.shape[0]
    od, oh, ow = window.out
    frame = _depth_frame(channels_last(x), window, (oh + 1) // 2)
    out = numpy.empty((n * od, oh, ow, k), dtype=x.dtype)
    kernels = conv_winograd.transposed_kernels(_weight2(weight))
    conv_winograd.forward_frame(frame, window.before[2], kernels, None, out)
    return channels_first(out.reshape(n, od, oh, ow, k))


def _winograd_weight_grad(gy: Any, x: Any, window: Any, w_shape: tuple) -> Any:
    k, c, kd = w_shape[:3]
    gl = channels_last(gy)
    gl = gl.reshape(-1, *gl.shape[2:])  # [N*OD, OH, OW, K]
    frame = _depth_frame(channels_last(x), window, (gl.shape[1] + 1) // 2)
    dghat = numpy.zeros((16, k, kd * c), dtype=x.dtype)
    conv_winograd.weight_grad_frame(frame, window.before[2], gl, dghat)
    dw = conv_winograd.weight_from_transformed(dghat).reshape(k, kd, c, 3, 3)
    return numpy.ascontiguousarray(dw.transpose(0, 2, 1, 3, 4))


def _winograd_input_grad(gy: Any, weight: Any, window: Any, x_shape: tuple) -> Any:
    # the folded conv2d's input gradient: its forward of gy with the flipped kernel (padding
    # 2 - p), then each depth tap's channels added back at their depths
    n, c, d, h, w = x_shape
    kd = weight.shape[2]
    gl = channels_last(gy)
    gl = gl.reshape(-1, *gl.shape[2:])  # [N*OD, OH, OW, K]
    frame = _rows_frame(gl, 2 - window.before[1], (h + 1) // 2)
    flipped = _weight2(weight)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # [kd*C, K, 3, 3]
    dcols = numpy.empty((gl.shape[0], h, w, kd * c), dtype=gy.dtype)
    kernels = conv_winograd.transposed_kernels(numpy.ascontiguousarray(flipped))
    conv_winograd.forward_frame(frame, 2 - window.before[2], kernels, None, dcols)
    dcols = dcols.reshape(n, -1, h, w, kd, c)
    dx = numpy.zeros((n, d, h, w, c), dtype=gy.dtype)
    for i, (outs, ins) in enumerate(_depth_taps(window, d)):
        if outs.stop > outs.start:
            dx[:, ins] += dcols[:, outs, :, :, i]
    return channels_first(dx)


# ---- through conv.py's routes on NCHW columns ---------------------------------------------------


def forward(x: Any, weight: Any, window: Any) -> Any:
    """conv3d of x [N, C, D, H, W] with weight [K, C, kd, kh, kw], no bias: [N, K, OD, OH, OW]."""
    if _winograd(x, weight.shape, window):
        return _winograd_forward(x, weight, window)
    n, k = x.shape[0], weight.shape[0]
    out = conv._conv_forward(_columns(x, window), _weight2(weight), None, _window2(window), 1,
                             "conv3d")  # fmt: skip
    out = out.reshape(n, window.out[0], k, *window.out[1:])
    return numpy.ascontiguousarray(out.transpose(0, 2, 1, 3, 4))


def weight_grad(gy: Any, x: Any, window: Any, w_shape: tuple) -> Any:
    """dW [K, C, kd, kh, kw] of the conv3d of x with output gradient gy."""
    if _winograd(x, w_shape, window):
        return _winograd_weight_grad(gy, x, window, w_shape)
    k, c, kd, kh, kw = w_shape
    dw = conv._conv_weight_grad(_slices_major(gy), _columns(x, window), _window2(window), 1,
                                (k, kd * c, kh, kw), "conv3d")  # fmt: skip
    return numpy.ascontiguousarray(dw.reshape(k, kd, c, kh, kw).transpose(0, 2, 1, 3, 4))


def input_grad(gy: Any, weight: Any, window: Any, x_shape: tuple) -> Any:
    """dX [N, C, D, H, W] of the conv3d with weight [K, C, kd, kh, kw] and output gradient gy:
    the conv2d's input gradient, each depth tap's slices added back at their depths."""
    if _winograd(gy, weight.shape, window):
        return _winograd_input_grad(gy, weight, window, x_shape)
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
