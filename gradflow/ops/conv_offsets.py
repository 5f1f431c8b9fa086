"""Stride-1 convolutions on the CPU as one GEMM per kernel offset, without im2col columns.

im2col copies kh*kw times the input into columns before its one GEMM, and conv2d's backward
copies them again (for the weight gradient) and builds dY's (for the input gradient, a conv of
dY): at (16, 64, 32, 32) with a 3x3 kernel each copy took a third of its GEMM's time. Here the
zero-padded input is laid out once channels last and flat, a matrix [N*rows*columns, C] (the
frame), and for a stride-1 conv kernel offset (i, j) reads it as the same matrix shifted by
``i*dh*columns + j*dw`` rows: a contiguous slice that BLAS reads directly. So

- forward: ``out = sum over offsets of frame[shifted] @ W[:, :, i, j].T``, kh*kw GEMMs of
  inner size C, computed for every frame position (the columns and rows of the frame past
  the output's are computed and dropped: (rows*columns)/(OH*OW) - 1 more work, 13% at 32x32
  with padding 1, which `applies` bounds);
- weight gradient: ``dW[:, :, i, j] = dY.T @ frame[shifted]`` with dY laid on the frame's
  positions (zeros at the dropped ones), one GEMM per offset;
- input gradient: conv.py runs it as the forward of dY with the flipped kernel (its
  _flipped_conv_window), which lands here again.

Strided convs keep im2col. By phases (the taps ``s*i' + r`` of phase r read the input rows
``x[start::s]`` at offset i', so a strided conv is a sum of stride-1 convs over the input's
phases) both were built and measured: the forward and weight gradient, the phases side by
side in a frame's channels, ran 42 against 33 ms forward + backward for a 3x3 stride-2 conv
64->128 over (16, 64, 32, 32), the accumulation passes over the output and the phases'
strided copies outweighing im2col's columns, which a stride shrinks s*s times; the input
gradient (one frame of dY, an accumulator per phase) tied with col2im, timed alternately
(5.3 against 5.8 ms for conv_transpose2d 64->32 4x4 stride 2 over (16, 64, 16, 16), 10.6
against 10.3 for a 3x3 stride-2 128->64's at (16, 128, 16, 16)).

Samples are taken in blocks of about BLOCK_ROWS frame positions, so the per-offset products
stay in cache and no array is larger than a few blocks. Sums run in the input's dtype offset
by offset: float32 results differ from im2col's route in the last bits. Used by
gradflow/ops/conv.py for NumPy float32/float64 arrays with enough input channels per group
(conv2d, conv1d and the transposed convs' stride-1 pieces; with groups, one GEMM per group
and offset); CuPy arrays keep the im2col kernels.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.backend import blas
from gradflow.ops.im2col import _group_slices
from gradflow.ops.window import Window, copy_channels_last

BLOCK_ROWS = 1 << 13  # frame positions per block of samples
MAX_EXTRA_WORK = 0.2  # the most extra positions (dropped columns and rows) a conv takes on
# (timed alternately against im2col: 13% extra at 32x32 won, 1.59x against 1.89x torch
# forward + backward for 3x3 64->64 over (16, 64, 32, 32); 27% at 16x16 lost, 1.99x against
# 1.84x for 3x3 32->64 over (32, 32, 16, 16))
# With at least WIDE_CHANNELS input channels per group each offset's GEMM runs near BLAS's peak
# and the products add inside BLAS (blas.addmm_), so more extra positions pay: a 3x3 conv of
# dilation 2, 64->64 over (16, 64, 32, 32), 27% extra, took 62 against 69-80 ms by im2col
# (torch 35); with 32 channels 27% extra still lost (3x3 32->64 at 16x16: 17-20 against 16-18).
WIDE_CHANNELS, MAX_EXTRA_WORK_WIDE = 64, 0.3
MIN_CHANNELS = 16  # fewer input channels make each offset's GEMM too thin: im2col wins
# With groups each GEMM is thinner still: at 16 channels per group the route was 10% faster
# at 4 groups of (16, 64, 32, 32) and 12% slower at 8 groups of (16, 128, 32, 32); from 32
# per group it wins (groups=2 of 64: 59 -> 50 ms fwd+bwd).
MIN_GROUP_CHANNELS = 32


def applies(x: Any, w_shape: tuple, window: Window, groups: int) -> bool:
    """Whether a conv of x [N, C, H, W] with a weight of w_shape [O, C, kh, kw] takes this
    route: a NumPy float32/float64 input, stride 1, at least MIN_CHANNELS input channels
    (MIN_GROUP_CHANNELS per group with groups), and at most MAX_EXTRA_WORK extra positions on
    the frame (MAX_EXTRA_WORK_WIDE from WIDE_CHANNELS input channels per group)."""
    if type(x) is not numpy.ndarray or x.dtype not in (numpy.float32, numpy.float64):
        return False
    least = MIN_CHANNELS if groups == 1 else MIN_GROUP_CHANNELS
    if window.stride != (1, 1) or w_shape[1] < least:
        return False
    oh, ow = window.out
    extra = MAX_EXTRA_WORK_WIDE if w_shape[1] >= WIDE_CHANNELS else MAX_EXTRA_WORK
    return window.span(0) * window.span(1) <= (1 + extra) * oh * ow


class _Frame:
    """x [N, C, H, W] zero padded at the window's padding, channels last and flat: a matrix
    [N*rows*columns + slack, C], slack rows of zeros at the end for the last sample's
    shifted reads."""

    def __init__(self, x: Any, window: Window):
        n, c, h, w = x.shape
        (top, left), self.rows, self.columns = window.padding, window.span(0), window.span(1)
        self.per_sample = self.rows * self.columns
        dh, dw = window.dilation
        self.shifts = [i * dh * self.columns + j * dw for i, j in window.offsets()]
        slack = self.shifts[-1]
        self.flat = numpy.zeros((n * self.per_sample + slack, c), dtype=x.dtype)
        grid = self.flat[: n * self.per_sample].reshape(n, self.rows, self.columns, c)
        rows, cols = max(0, min(h, self.rows - top)), max(0, min(w, self.columns - left))
        copy_channels_last(grid[:, top : top + rows, left : left + cols], x[..., :rows, :cols])

    def block(self, first: int, count: int, shift: int, length: int) -> Any:
        """Rows of samples [first, first + count) read at a shift: [length, C]."""
        start = first * self.per_sample + shift
        return self.flat[start : start + length]


def _blocks(n: int, per_sample: int) -> list[tuple[int, int]]:
    step = max(1, BLOCK_ROWS // per_sample)
    return [(first, min(step, n - first)) for first in range(0, n, step)]


def _valid_length(count: int, frame: _Frame, window: Window) -> int:
    """Frame positions a block of `count` samples computes: the last sample's rows past the
    output's are left out."""
    return (count - 1) * frame.per_sample + window.out[0] * frame.columns


def forward(x: Any, weight: Any, bias: Any, window: Window, groups: int = 1) -> Any:
    """conv2d of x [N, C, H, W] with weight [O, C/groups, kh, kw] (+ bias [O]), stride 1:
    [N, O, OH, OW]; with groups, one GEMM per group and offset."""
    n, o = x.shape[0], weight.shape[0]
    oh, ow = window.out
    frame = _Frame(x, window)
    kernel = len(frame.shifts)
    w_offsets = numpy.ascontiguousarray(  # [G, kh*kw, C/G, O/G]
        weight.reshape(groups, o // groups, -1, kernel).transpose(0, 3, 2, 1)
    )
    slices = _group_slices(groups, x.shape[1], o)
    out = numpy.empty((n, o, oh, ow), dtype=x.dtype)
    blocks = _blocks(n, frame.per_sample)
    rows = blocks[0][1] * frame.per_sample
    acc = numpy.empty((rows, o), dtype=x.dtype)
    for first, count in blocks:
        length = _valid_length(count, frame, window)
        for gi, (cs, os) in enumerate(slices):
            a = acc[:length, os]
            for k, shift in enumerate(frame.shifts):
                block = frame.block(first, count, shift, length)[:, cs]
                if k:
                    blas.addmm_(a, block, w_offsets[gi, k])
                else:
                    numpy.matmul(block, w_offsets[gi, k], out=a)
        grid = acc[: count * frame.per_sample].reshape(count, frame.rows, frame.columns, o)
        out[first : first + count] = grid[:, :oh, :ow].transpose(0, 3, 1, 2)
    if bias is not None:
        out += bias[:, None, None]
    return out


def weight_grad(g: Any, x: Any, window: Window, w_shape: tuple, groups: int = 1) -> Any:
    """dW [O, C/groups, kh, kw] of a stride-1 conv of x [N, C, H, W] with output gradient g
    [N, O, OH, OW]."""
    n, o = g.shape[:2]
    oh, ow = window.out
    frame = _Frame(x, window)
    slices = _group_slices(groups, x.shape[1], o)
    dw = numpy.zeros((len(frame.shifts), groups, o // groups, w_shape[1]), dtype=x.dtype)
    for first, count in _blocks(n, frame.per_sample):
        g_grid = numpy.zeros((count, frame.rows, frame.columns, o), dtype=g.dtype)
        copy_channels_last(g_grid[:, :oh, :ow], g[first : first + count])
        length = _valid_length(count, frame, window)
        g_rows = g_grid.reshape(-1, o)[:length]
        for k, shift in enumerate(frame.shifts):
            block = frame.block(first, count, shift, length)
            for gi, (cs, os) in enumerate(slices):
                # dY^T @ frame: BLAS ran this orientation ~15% faster than frame^T @ dY here
                blas.addmm_(dw[k, gi], g_rows[:, os].T, block[:, cs])
    return numpy.ascontiguousarray(dw.transpose(1, 2, 3, 0)).reshape(w_shape)
