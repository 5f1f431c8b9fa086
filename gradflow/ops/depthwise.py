"""Depthwise convolutions on the CPU (groups = in_channels = out_channels, one input and one
output channel per group): a direct multiply-add per kernel offset instead of im2col.

Through im2col a depthwise conv copies kh*kw times its input into columns and then runs one
GEMM per channel of a single row ([1, kh*kw] @ [kh*kw, N*OH*OW]), which BLAS cannot make fast:
7x torch's time for a 3x3 conv over (16, 64, 32, 32). Here each plane (one sample's channel)
is zero padded once into a frame laid out flat, and each kernel offset (i, j) reads the frame
as a strided view shifted by ``i*dh*width + j*dw`` elements:

- forward: ``out += w[c, i, j] * frame[shifted]``, kh*kw multiply-adds. With stride 1 the
  view is one contiguous run of OH*width values per plane (the output is computed on the
  frame's width and its last ``width - OW`` columns dropped), so NumPy's loops run long;
  with a stride, a [planes, OH, OW] view.
- input gradient: with stride 1 it is the forward of dY with the flipped kernel (conv.py's
  rewrite, _flipped_conv_window, which lands here again); with a stride, dY times each
  weight added into its strided window of a zero frame (input_grad).
- weight gradient: ``dW[c, i, j] = sum(dY * frame[shifted])`` over samples and pixels: per
  offset one dot product per plane (a stacked matmul that BLAS runs), then a sum over the
  samples.

The planes are taken in blocks of about BLOCK_ELEMENTS values, so each block's kh*kw passes
run in the core's cache. Sums run in the input's dtype, offset by offset: float32 results
differ from im2col's GEMM route in the last bits. Used by gradflow/ops/conv.py for NumPy
arrays of float32/float64 (conv2d, conv1d and their transposes); CuPy arrays keep the
im2col kernels.

With numba installed (gradflow.backend.compiled), a stride-1 forward and weight gradient run as
compiled loops instead, the same offsets over a frame per plane held in cache (2.1x -> 1.1x
torch's time on the case above); the input gradient of a stride-1 conv is a forward, so it
takes them too. Strided convs keep the NumPy passes.
"""

from __future__ import annotations

from typing import Any

import numpy
from numpy.lib.stride_tricks import as_strided

from gradflow.backend import compiled
from gradflow.ops.window import Window, copy_channels_last

BLOCK_ELEMENTS = 1 << 16  # values of the output (or dY) per block of planes: 256 KiB float32
CHANNEL_RUN = 1 << 12  # the fewest frame values per channel for the by-channel forward


def applies(x: Any, w_shape: tuple, groups: int) -> bool:
    """Whether a conv of x with a weight of w_shape [O, C/groups, kh, kw] takes this route: a
    NumPy float32/float64 input and one input and one output channel per group."""
    return (
        type(x) is numpy.ndarray
        and x.dtype in (numpy.float32, numpy.float64)
        and groups > 1
        and w_shape[0] == groups
        and w_shape[1] == 1
    )


class _Frame:
    """The zero-padded planes of a [N, C, H, W] array, flat: plane q starts at q*plane, row r
    of the frame at r*width, with `width` elements of slack after the last plane (a shifted
    view of the whole last row reads past it)."""

    def __init__(self, planes: int, height: int, width: int, dtype: Any, zero: bool):
        self.planes, self.height, self.width = planes, height, width
        self.plane = height * width
        size = planes * self.plane + width
        self.flat = (numpy.zeros if zero else numpy.empty)(size, dtype=dtype)
        self.grid = self.flat[: planes * self.plane].reshape(planes, height, width)

    @classmethod
    def padded(cls, x: Any, window: Window) -> _Frame:
        """x [N, C, H, W] placed at the window's (top, left) padding, zeros around it (the
        rows and columns the windows never read are left out, as padded_frame does)."""
        n, c, h, w = x.shape
        (top, left), height, width = window.padding, window.span(0), window.span(1)
        frame = cls(n * c, height, width, x.dtype, zero=False)
        rows, cols = max(0, min(h, height - top)), max(0, min(w, width - left))
        grid = frame.grid
        grid[:, :top] = 0  # only the border is zeroed: the rest is written just below
        grid[:, top + rows :] = 0
        grid[:, top : top + rows, :left] = 0
        grid[:, top : top + rows, left + cols :] = 0
        frame.flat[frame.planes * frame.plane :] = 0
        grid[:, top : top + rows, left : left + cols] = x.reshape(n * c, h, w)[:, :rows, :cols]
        return frame

    def view(self, first: int, count: int, window: Window, i: int, j: int) -> Any:
        """Planes [first, first + count) read at kernel offset (i, j): [count, OH*width] (the
        frame's width, stride 1) or [count, OH, OW] (strided)."""
        (dh, dw), (sh, sw), (oh, ow) = window.dilation, window.stride, window.out
        start = first * self.plane + i * dh * self.width + j * dw
        s = self.flat.itemsize
        if window.stride == (1, 1):
            return as_strided(self.flat[start:], (count, oh * self.width), (self.plane * s, s))
        return as_strided(self.flat[start:], (count, oh, ow),
                          (self.plane * s, sh * self.width * s, sw * s))  # fmt: skip


def _grid_shape(window: Window, frame: _Frame) -> tuple:
    """The shape of one plane's output on the route's grid: OH*width values with stride 1 (the
    columns past OW are computed and dropped), else (OH, OW)."""
    oh, ow = window.out
    return (oh * frame.width,) if window.stride == (1, 1) else (oh, ow)


def _on_grid(grid: Any, window: Window, frame: _Frame) -> Any:
    """A block of planes on the grid as [count, OH, OW] (a view)."""
    oh, ow = window.out
    if window.stride == (1, 1):
        return grid.reshape(len(grid), oh, frame.width)[:, :, :ow]
    return grid


def _per_plane(weight: Any, samples: int) -> Any:
    """weight [C, 1, kh, kw] as [N*C, kh*kw]: the weights of each plane, sample by sample."""
    c = weight.shape[0]
    return numpy.tile(weight.reshape(c, -1), (samples, 1))


def _fused(window: Window, *arrays: Any) -> Any:
    """The compiled loops (gradflow.backend.compiled) for a stride-1 window over these arrays, else
    None; with (ph, pw, dh, dw), the window as they take it."""
    if window.stride != (1, 1) or not arrays[0].size:
        return None, ()
    return compiled.loops(*arrays), (*window.padding, *window.dilation)


def _plane_weights(weight: Any, dtype: Any) -> Any:
    """weight [C, 1, kh, kw] as a contiguous [C, kh, kw] of dtype."""
    c, _, kh, kw = weight.shape
    return numpy.ascontiguousarray(weight, dtype=dtype).reshape(c, kh, kw)


def forward(x: Any, weight: Any, bias: Any, window: Window) -> Any:
    """Depthwise conv of x [N, C, H, W] with weight [C, 1, kh, kw] (+ bias [C]):
    [N, C, OH, OW]."""
    loops, args = _fused(window, x, weight)
    if loops is not None:  # one compiled pass, plane by plane
        n, c = x.shape[:2]
        out = numpy.empty((n, c, *window.out), dtype=x.dtype)
        b = numpy.zeros(c, x.dtype) if bias is None else numpy.ascontiguousarray(bias, x.dtype)
        loops.depthwise_forward(numpy.ascontiguousarray(x), _plane_weights(weight, x.dtype), b,
                                out, *args)  # fmt: skip
        return out
    if _channels_last(x.shape[1], window):
        return _forward_last(x, weight, bias, window)
    if window.stride == (1, 1) and x.shape[0] * window.span(0) * window.span(1) >= CHANNEL_RUN:
        return _forward_by_channel(x, weight, bias, window)
    n, c = x.shape[:2]
    oh, ow = window.out
    frame = _Frame.padded(x, window)
    w_planes = _per_plane(weight, n)
    out = numpy.empty((n * c, oh, ow), dtype=x.dtype)
    grid_shape = _grid_shape(window, frame)
    block = max(1, BLOCK_ELEMENTS // max(1, numpy.prod(grid_shape)))
    acc = numpy.empty((min(block, n * c), *grid_shape), dtype=x.dtype)
    tmp = numpy.empty_like(acc)
    lift = (slice(None), None) + (None,) * (len(grid_shape) - 1)  # a column broadcast per plane
    for first in range(0, n * c, block):
        count = min(block, n * c - first)
        a, t = acc[:count], tmp[:count]
        w_block = w_planes[first : first + count]
        for k, (i, j) in enumerate(window.offsets()):
            view = frame.view(first, count, window, i, j)
            if k == 0:
                numpy.multiply(view, w_block[:, k][lift], out=a)
            else:
                numpy.multiply(view, w_block[:, k][lift], out=t)
                a += t
        out[first : first + count] = _on_grid(a, window, frame)
    out = out.reshape(n, c, oh, ow)
    if bias is not None:
        out += bias[:, None, None]
    return out


def weight_grad(g: Any, x: Any, window: Window, w_shape: tuple) -> Any:
    """dW [C, 1, kh, kw] of a depthwise conv of x [N, C, H, W] with output gradient g
    [N, C, OH, OW]: per kernel offset, one dot product per plane of dY with the shifted frame
    (a stacked matmul, [1, L] @ [L, 1] per plane, which NumPy hands to BLAS), summed over the
    samples."""
    loops, args = _fused(window, x, g)
    if loops is not None:  # one compiled pass, plane by plane
        c, _, kh, kw = w_shape
        dw = numpy.zeros((c, kh, kw), numpy.float64)
        loops.depthwise_weight_grad(numpy.ascontiguousarray(g), numpy.ascontiguousarray(x), dw,
                                    *args)  # fmt: skip
        return dw.astype(x.dtype).reshape(w_shape)
    n, c = x.shape[:2]
    oh, ow = window.out
    frame = _Frame.padded(x, window)
    kh, kw = window.kernel
    if window.stride == (1, 1):  # dY laid on the frame's width, zeros in the dropped columns
        g_grid = numpy.zeros((n * c, oh, frame.width), dtype=g.dtype)
        g_grid[..., :ow] = g.reshape(n * c, oh, ow)
        g_rows = g_grid.reshape(n * c, 1, oh * frame.width)
    else:
        g_rows = g.reshape(n * c, 1, oh * ow)
    dots = numpy.empty((kh * kw, n * c), dtype=x.dtype)
    for k, (i, j) in enumerate(window.offsets()):
        view = frame.view(0, n * c, window, i, j)
        if view.ndim == 3:  # strided: the [OH, OW] window copied to a row
            view = view.reshape(n * c, oh * ow)
        numpy.matmul(g_rows, view[:, :, None], out=dots[k].reshape(n * c, 1, 1))
    dw = dots.reshape(kh * kw, n, c).sum(axis=1)
    return numpy.ascontiguousarray(dw.T).reshape(w_shape)


def input_grad(g: Any, weight: Any, window: Window, x_shape: tuple) -> Any:
    """dX [N, C, H, W] of a strided depthwise conv with output gradient g [N, C, OH, OW]: g
    times each weight added into its strided window of a zero frame. (A stride-1 conv's dX
    is the forward of g with the flipped kernel, which conv.py's _conv_input_grad runs.)"""
    n, c, h, w = x_shape
    oh, ow = window.out
    (top, left) = window.padding
    height, width = max(window.span(0), top + h), max(window.span(1), left + w)
    frame = _Frame(n * c, height, width, g.dtype, zero=True)
    g_planes = g.reshape(n * c, oh, ow)
    w_planes = _per_plane(weight, n)
    block = max(1, BLOCK_ELEMENTS // max(1, oh * ow))
    tmp = numpy.empty((min(block, n * c), oh, ow), dtype=g.dtype)
    for first in range(0, n * c, block):
        count = min(block, n * c - first)
        t, g_block = tmp[:count], g_planes[first : first + count]
        for k, (i, j) in enumerate(window.offsets()):
            numpy.multiply(g_block, w_planes[first : first + count, k][:, None, None], out=t)
            view = _writable(frame, first, count, window, i, j)
            view += t
    dx = frame.grid[:, top : top + h, left : left + w]
    return numpy.ascontiguousarray(dx).reshape(x_shape)


def _writable(frame: _Frame, first: int, count: int, window: Window, i: int, j: int) -> Any:
    """The strided [count, OH, OW] window of kernel offset (i, j), writable (the windows of one
    offset never overlap: each output pixel has its own input pixel)."""
    (dh, dw), (sh, sw), (oh, ow) = window.dilation, window.stride, window.out
    start = first * frame.plane + i * dh * frame.width + j * dw
    s = frame.flat.itemsize
    return as_strided(frame.flat[start:], (count, oh, ow),
                      (frame.plane * s, sh * frame.width * s, sw * s))  # fmt: skip


# ---- channels last: many channels over small images ----------------------------------------
#
# The forward's loops above run along one plane, OH*width values: at 7x7 pixels 63 values per
# inner loop, and NumPy's per-loop cost dominates. With many channels a stride-1 forward lays
# the frame out channels last [N, rows, columns, C] instead, and each offset's multiply runs
# along C contiguous values with the kernel's [C] weights. Measured (3x3, one thread): (32, 512,
# 7, 7) 7.2 -> 5.3 ms, (32, 128, 14, 14) 5.4 -> 4.5 ms, while (16, 64, 32, 32) goes 6.0 -> 8.8
# ms; with a stride the planes' route won at every size tried, and the weight gradient's
# stacked dot products too (the channels-last product-and-sum ran 1-3x slower).


def _channels_last(channels: int, window: Window) -> bool:
    """Whether a forward takes the channels-last route: stride 1 and over half as many
    channels as values in one plane's inner loop (OH*width)."""
    return window.stride == (1, 1) and 2 * channels > window.out[0] * window.span(1)


def _frame_last(x: Any, window: Window, height: int, width: int) -> Any:
    """x [N, C, H, W] placed at the window's padding in a zero frame [N, height, width, C]."""
    n, c, h, w = x.shape
    (top, left) = window.padding
    frame = numpy.zeros((n, height, width, c), dtype=x.dtype)
    rows, cols = max(0, min(h, height - top)), max(0, min(w, width - left))
    copy_channels_last(frame[:, top : top + rows, left : left + cols], x[..., :rows, :cols])
    return frame


def _offset_last(frame: Any, window: Window, i: int, j: int) -> Any:
    """The [N, OH, OW, C] view of a channels-last frame that kernel offset (i, j) reads."""
    rows, cols = window.offset_slices(i, j)
    return frame[:, rows, cols]


def _samples_per_block(per_sample: int) -> int:
    return max(1, BLOCK_ELEMENTS // max(1, per_sample))


def _forward_last(x: Any, weight: Any, bias: Any, window: Window) -> Any:
    n, c = x.shape[:2]
    oh, ow = window.out
    frame = _frame_last(x, window, window.span(0), window.span(1))
    w_last = numpy.ascontiguousarray(weight.reshape(c, -1).T)  # [kh*kw, C]
    out = numpy.empty((n, c, oh, ow), dtype=x.dtype)
    step = _samples_per_block(oh * ow * c)
    acc = numpy.empty((min(step, n), oh, ow, c), dtype=x.dtype)
    tmp = numpy.empty_like(acc)
    for first in range(0, n, step):
        block = frame[first : first + step]
        a, t = acc[: len(block)], tmp[: len(block)]
        for k, (i, j) in enumerate(window.offsets()):
            if k == 0:
                numpy.multiply(_offset_last(block, window, i, j), w_last[k], out=a)
            else:
                numpy.multiply(_offset_last(block, window, i, j), w_last[k], out=t)
                a += t
        out[first : first + len(block)] = a.transpose(0, 3, 1, 2)
    if bias is not None:
        out += bias[:, None, None]
    return out


# ---- by channel: a stride-1 forward over large planes ----------------------------------------
#
# The planes' route multiplies each block of planes by a column of per-plane weights, which
# NumPy runs at about half the speed of an array times a scalar. Laid out channel-major, [C,
# N*rows*columns] (one sample's frame after another's), a stride-1 offset of one channel is a
# contiguous slice of its row, and each multiply-add is a slice times a Python float: (16, 64,
# 32, 32) 6.2 -> 3.7 ms, (8, 32, 112, 112) 12.2 -> 9.4 ms; (32, 512, 7, 7) 5.3 -> 10.6 ms (two
# calls per channel and offset), which the channels-last route takes. The weight gradient's
# stacked dot products stayed faster than per-channel dots (1.9 against 2.3 ms at (16, 64, 32,
# 32)).


def _forward_by_channel(x: Any, weight: Any, bias: Any, window: Window) -> Any:
    n, c, h, w = x.shape
    (top, left), rows, columns = window.padding, window.span(0), window.span(1)
    oh, ow = window.out
    (dh, dw) = window.dilation
    shifts = [i * dh * columns + j * dw for i, j in window.offsets()]
    frame = numpy.zeros((c, n * rows * columns + shifts[-1]), dtype=x.dtype)
    grid = frame[:, : n * rows * columns].reshape(c, n, rows, columns)
    kept_rows, kept_cols = max(0, min(h, rows - top)), max(0, min(w, columns - left))
    grid[:, :, top : top + kept_rows, left : left + kept_cols] = x[
        ..., :kept_rows, :kept_cols
    ].transpose(1, 0, 2, 3)
    length = (n - 1) * rows * columns + oh * columns  # the last sample's extra rows left out
    acc = numpy.empty(n * rows * columns, dtype=x.dtype)
    a, tmp = acc[:length], numpy.empty(length, dtype=x.dtype)
    out = numpy.empty((n, c, oh, ow), dtype=x.dtype)
    for channel, taps in enumerate(weight.reshape(c, -1).tolist()):
        row = frame[channel]
        numpy.multiply(row[shifts[0] : shifts[0] + length], taps[0], out=a)
        for shift, tap in zip(shifts[1:], taps[1:]):
            numpy.multiply(row[shift : shift + length], tap, out=tmp)
            a += tmp
        out[:, channel] = acc.reshape(n, rows, columns)[:, :oh, :ow]
    if bias is not None:
        out += bias[:, None, None]
    return out
