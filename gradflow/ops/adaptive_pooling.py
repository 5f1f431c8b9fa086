"""Adaptive pooling: adaptive_avg_pool1d/2d/3d and adaptive_max_pool1d/2d/3d, pooling to a
fixed output size whatever the input size (PyTorch's floor/ceil bin bounds).

adaptive_avg_pool2d is one node (a reshaped mean when the bins are of equal size, otherwise
two small averaging matrices; on NumPy with H kept, as adaptive_avg_pool1d, per-bin sums of
whole rows of the transposed input: 26 ms -> 9 ms forward and backward at (64, 64, 1024) to
100, torch 7.6 ms); the 1-D and 3-D averages are built on it. Adaptive max pooling
is one node for 1, 2 or 3 dims: on NumPy it finds each bin's first maximum one axis at a time
(_max_positions: 7.5 ms against 53 ms for 7 x 7 bins of (32, 64, 32, 32) float32, forward and
backward); on CuPy it gathers each bin's whole window (_bins) for one argmax.

Memory: adaptive average pooling keeps nothing but shapes; adaptive max pooling keeps the
int64 flat positions of the maxima, never the input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import linear_backward_graph, pick_backward_graph
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import float_input
from gradflow.ops.indexing import _add_at
from gradflow.ops.pooling import _Shapes, _shapes
from gradflow.ops.window import check_input_rank, int_tuple
from gradflow.tensor import Tensor


def _bin_matrix(size: int, out: int, xp: Any, dtype: Any) -> Any:
    """[out, size]: row o averages input positions floor(o*size/out) .. ceil((o+1)*size/out)."""
    o = xp.arange(out)
    start, end = (o * size) // out, -((-(o + 1) * size) // out)
    pos = xp.arange(size)
    inside = (pos >= start[:, None]) & (pos < end[:, None])
    return inside.astype(dtype) / (end - start)[:, None].astype(dtype)


def _bounds(size: int, out: int) -> tuple:
    """(start, end) int arrays of the adaptive bins: floor(o*size/out), ceil((o+1)*size/out)."""
    o = numpy.arange(out)
    return (o * size) // out, -((-(o + 1) * size) // out)


_BIN_LOOP = 256  # up to this many bins: one reduction per bin; more: one pass per bin offset


def _bin_means_last(x2: numpy.ndarray, out: int) -> numpy.ndarray:
    """[R, out] bin averages along the last axis of the NumPy [R, L] x2 (out <= L).

    Each bin's sum runs over its rows in x2's transpose [L, R] (omatcopy's copy), whole rows
    at a time: a reduction per bin (or, for many bins, an add per bin offset over the bins'
    rows) instead of reduceat's call per row and bin (2-3x slower) or averaging matrices (a
    dense [L, out] GEMM, 4x slower). The sums run in order over each bin, as PyTorch's."""
    from gradflow.backend import blas

    rows, size = x2.shape
    start, end = _bounds(size, out)
    xt = blas.ascontiguous(x2.T)  # [L, R]
    if out <= _BIN_LOOP:
        yt = numpy.empty((out, rows), x2.dtype)
        for o, (a, b) in enumerate(zip(start.tolist(), end.tolist())):
            numpy.add.reduce(xt[a:b], axis=0, out=yt[o])
    else:
        length = end - start
        yt = xt[start]
        for k in range(1, int(length.max())):
            inside = numpy.flatnonzero(length > k)
            if inside.size == out:
                yt += xt[start + k]
            else:
                yt[inside] += xt[start[inside] + k]
    yt /= (end - start)[:, None].astype(x2.dtype)
    return blas.ascontiguous(yt.T)


def _bin_means_last_backward(g2: numpy.ndarray, size: int) -> numpy.ndarray:
    """[R, size] gradient of _bin_means_last from g2 [R, out]: each position gets g / length
    of the (one or two: out <= size) bins holding it. The positions fall in runs held by the
    same bins (a bin's own stretch, then the position it shares with the next bin): each run's
    value is computed once on the small [R, runs] array (two column takes, an add), then one
    repeat writes the [R, size] result (column scatters on the result ran 5x slower)."""
    rows, out = g2.shape
    start, end = _bounds(size, out)
    pos = numpy.arange(size)
    last = numpy.searchsorted(start, pos, side="right") - 1  # the last bin holding pos
    before = numpy.maximum(last - 1, 0)
    shared = (last > 0) & (end[before] > pos)  # bin last - 1 holds pos too
    change = numpy.ones(size, bool)
    change[1:] = (last[1:] != last[:-1]) | (shared[1:] != shared[:-1])
    runs = numpy.flatnonzero(change)
    share = numpy.empty((rows, out + 1), g2.dtype)  # a zero column: no second bin
    numpy.divide(g2, (end - start).astype(g2.dtype), out=share[:, :out])
    share[:, out] = 0
    value = numpy.take(share, last[runs], axis=1)
    if shared.any():
        value += numpy.take(share, numpy.where(shared[runs], before[runs], out), axis=1)
    return numpy.repeat(value, numpy.diff(numpy.append(runs, size)), axis=1)


class AdaptiveAvgPool2dFunction(Function):
    """adaptive_avg_pool2d as one node. Bins of equal size (the output divides the input) are
    a reshaped mean; otherwise two small averaging matrices, y = A_h x A_w^T."""

    op_name = "adaptive_avg_pool2d"

    shapes: _Shapes

    def _uniform(self) -> bool:
        (h, w), (oh, ow) = self.shapes.x4[2:], self.shapes.out4[2:]
        return h % oh == 0 and w % ow == 0

    def _rows_of_bins(self, a: Any) -> bool:
        """NumPy, H kept and W pooled to at most its size (adaptive_avg_pool1d): bins along
        the last axis only (_bin_means_last)."""
        (h, w), (oh, ow) = self.shapes.x4[2:], self.shapes.out4[2:]
        return type(a) is numpy.ndarray and h == oh and ow <= w

    def forward(self, x):
        s = self.shapes
        x4 = x.reshape(s.x4)
        n, c, h, w = s.x4
        oh, ow = s.out4[2:]
        if self._uniform():
            y = x4.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5))
        elif self._rows_of_bins(x):
            y = _bin_means_last(x4.reshape(-1, w), ow)
        else:
            xp = get_array_module(x)
            a_h, a_w = _bin_matrix(h, oh, xp, x.dtype), _bin_matrix(w, ow, xp, x.dtype)
            y = xp.einsum("nchw,ph,qw->ncpq", x4, a_h, a_w, optimize=True)
        return y.reshape(s.out)

    def backward(self, g):
        s = self.shapes
        g4 = g.reshape(s.out4)
        n, c, h, w = s.x4
        oh, ow = s.out4[2:]
        xp = get_array_module(g)
        if self._uniform():
            kh, kw = h // oh, w // ow
            share = (g4 / (kh * kw))[:, :, :, None, :, None]
            dx = xp.broadcast_to(share, (n, c, oh, kh, ow, kw)).reshape(s.x4)
        elif self._rows_of_bins(g):
            dx = _bin_means_last_backward(g4.reshape(-1, ow), w)
        else:
            a_h, a_w = _bin_matrix(h, oh, xp, g.dtype), _bin_matrix(w, ow, xp, g.dtype)
            dx = xp.einsum("ncpq,ph,qw->nchw", g4, a_h, a_w, optimize=True)
        return dx.reshape(s.x)

    def backward_graph(self, g):
        return linear_backward_graph(self, g)


def adaptive_avg_pool2d(input: Tensor, output_size: int | tuple[int | None, int | None]) -> Tensor:
    """2-D average pooling to a fixed output size, whatever the input size.

    Output pixel (p, q) averages input rows ``floor(p*H/OH)`` to ``ceil((p+1)*H/OH)`` (exclusive)
    and likewise columns, as PyTorch does. output_size is an int or a pair; None in the pair
    keeps that input dimension.

    >>> import gradflow
    >>> adaptive_avg_pool2d(gradflow.ones(2, 3, 7, 5), 1).shape  # a global average
    gradflow.Size([2, 3, 1, 1])
    """
    op = "adaptive_avg_pool2d"
    x = float_input(input, op)
    batched = check_input_rank(x, 2, op)
    out = _adaptive_sizes(op, x, output_size, 2)
    return AdaptiveAvgPool2dFunction.apply(x, shapes=_shapes(x, batched, 2, out))


def _bins(size: int, out: int) -> numpy.ndarray:
    """[out, kmax] input positions of each adaptive bin (PyTorch's floor/ceil bounds); a bin
    shorter than kmax repeats its last position, which changes no maximum."""
    o = numpy.arange(out)
    start, end = (o * size) // out, -((-(o + 1) * size) // out)
    kmax = int((end - start).max())
    return numpy.minimum(start[:, None] + numpy.arange(kmax), end[:, None] - 1)


def _scatter_flat(g: Any, flat: Any, plane: int) -> Any:
    """[rows, plane] zeros with each g[r, i] added at column flat[r, i] (g, flat: [rows, M]).
    The scatter-add is indexing's _add_at: float32 sums in index order (numpy.add.at), 2-4x
    faster than numpy.bincount, whose float64 sums rounded once differ in the last bit where
    positions repeat (overlapping adaptive bins, grid_sample's corners)."""
    xp = get_array_module(g)
    rows = g.shape[0]
    positions = (flat + xp.arange(rows, dtype=flat.dtype)[:, None] * plane).reshape(-1)
    out = xp.zeros(rows * plane, dtype=g.dtype)
    _add_at(out, positions, g.reshape(-1))
    return out.reshape(rows, plane)


_LOOP_BINS = 16  # bins up to this long: a running maximum; longer: argmax over gathered windows


def _max_along(cur: numpy.ndarray, bins: numpy.ndarray, axis: int) -> tuple:
    """(maxima, picks): for each bin (row of bins) the maximum of cur along axis and the bin
    position of its first occurrence, as argmax picks it (NaN counts as the maximum); shapes
    cur's with axis's size bins.shape[0].

    Short bins run a running maximum, a few passes per position over the output (argmax over
    a short axis costs NumPy a call per row: 4-6x slower at 2-6 positions); a NaN there sends
    the axis through argmax, whose NaN rule the comparisons don't follow."""
    kmax = bins.shape[1]
    if kmax <= _LOOP_BINS:
        best = numpy.take(cur, bins[:, 0], axis=axis)
        pick = numpy.zeros(best.shape, numpy.uint8)
        for k in range(1, kmax):
            value = numpy.take(cur, bins[:, k], axis=axis)
            better = value > best  # strictly: the first maximum stays
            numpy.maximum(best, value, out=best)
            numpy.maximum(pick, better.view(numpy.uint8) * numpy.uint8(k), out=pick)
        if not numpy.isnan(best).any():  # a reduction, no mask pass
            return best, pick
    windows = numpy.take(cur, bins, axis=axis)  # [..., out, kmax, ...]
    pick = numpy.argmax(windows, axis=axis + 1)
    return _take_on_axis(windows, pick, axis + 1, squeeze=True), pick


def _take_on_axis(a: numpy.ndarray, index: numpy.ndarray, axis: int, squeeze=False) -> Any:
    """take_along_axis(a, index, axis) for an index of a's shape but along axis (or without
    axis, squeeze=True: one element per position); by flat positions and one 1-D take, 3-5x
    faster than take_along_axis, which builds an index grid over every dim."""
    outer, size = math.prod(a.shape[:axis]), a.shape[axis]
    inner = math.prod(a.shape[axis + 1 :])
    picks = index.reshape(outer, -1, inner)
    flat = numpy.arange(outer, dtype=numpy.intp)[:, None, None] * size + picks
    flat *= inner
    flat += numpy.arange(inner, dtype=numpy.intp)
    return a.reshape(-1).take(flat).reshape(index.shape)


def _max_positions(x: numpy.ndarray, all_bins: tuple) -> numpy.ndarray:
    """The flat position (in the spatial plane, h * W + w in 2-D) of each adaptive bin's first
    maximum in row-major order, argmax's choice over the whole window, found one axis at a
    time from the last: the first row holding the bin's maximum, then its first column there.
    Each axis reduces the values (its bins' maxima) before the next axis reads them."""
    dims = len(all_bins)
    lead = x.ndim - dims
    cur, flat, inner = x, None, 1
    for a in reversed(range(dims)):
        axis, bins = lead + a, all_bins[a]
        cur, pick = _max_along(cur, bins, axis)
        shape = [1] * x.ndim
        shape[axis] = bins.shape[0]
        # the input position: the bin's start plus the pick (a first maximum is never one of
        # the repeats that pad a short bin)
        pos = bins[:, 0].reshape(shape) + pick
        if flat is None:
            flat = pos
        else:
            flat = _take_on_axis(flat, pos, axis)
            flat += pos * inner
        inner *= x.shape[axis]
    return flat


class AdaptiveMaxPoolFunction(Function):
    """adaptive_max_pool1d/2d/3d as one node: the bins of the last len(bins) dims gathered as
    [*, O1, O2, ..., k1*k2*...], the maximum and its flat index in the input's spatial plane
    (h * W + w in 2-D) kept, not the input."""

    op_name = "adaptive_max_pool2d"
    bins: tuple  # per spatial axis, [out, k] input positions (_bins)
    return_indices: bool

    def forward(self, x):
        self.shape = x.shape
        if get_array_module(x) is numpy:  # one axis at a time (_max_positions): 3-6x faster
            dims = len(self.bins)
            indices = _max_positions(x, self.bins)
            flat = indices.reshape(*indices.shape[:-dims], -1)
            planes = x.reshape(*flat.shape[:-1], -1)
            y = _take_on_axis(planes, flat, flat.ndim - 1).reshape(indices.shape)
            self.save_for_backward(indices)  # int64 flat positions of the maxima
            return (y, indices) if self.return_indices else y
        return self._forward_windows(x)

    def _forward_windows(self, x):
        """The CuPy route: every window gathered whole, then one argmax."""
        xp = get_array_module(x)
        dims = len(self.bins)
        sizes = x.shape[-dims:]
        lead = x.ndim - dims
        index, flat = [], 0
        for axis, bins in enumerate(self.bins):
            shape = [1] * (2 * dims)
            shape[2 * axis : 2 * axis + 2] = bins.shape
            positions = xp.asarray(bins).reshape(shape)
            index.append(positions)
            flat = flat * sizes[axis] + positions  # [o1, k1, o2, k2, ...] broadcast
        windows = x[(..., *index)]  # [*, o1, k1, o2, k2, ...]
        # outputs first, then the window positions: [*, o1, o2, ..., k1 * k2 * ...]
        order = [2 * a for a in range(dims)] + [2 * a + 1 for a in range(dims)]
        outs = tuple(b.shape[0] for b in self.bins)
        windows = windows.transpose(*range(lead), *(lead + a for a in order))
        windows = windows.reshape(*x.shape[:lead], *outs, -1)
        pick = xp.argmax(windows, axis=-1)[..., None]  # NaN counts as the maximum
        y = xp.take_along_axis(windows, pick, axis=-1)[..., 0]
        flat = xp.broadcast_to(flat, [n for b in self.bins for n in b.shape])
        flat = flat.transpose(*order).reshape(*outs, -1)
        indices = xp.take_along_axis(xp.broadcast_to(flat, windows.shape), pick, axis=-1)[..., 0]
        self.save_for_backward(indices)  # int64 flat positions of the maxima
        return (y, indices) if self.return_indices else y

    def backward(self, g, g_indices=None):
        (indices,) = self.saved_arrays
        dims = len(self.bins)
        plane = math.prod(self.shape[-dims:])
        rows = math.prod(self.shape[:-dims])
        dx = _scatter_flat(g.reshape(rows, -1), indices.reshape(rows, -1), plane)
        return dx.reshape(self.shape)

    def backward_graph(self, g, g_indices=None):
        (indices,) = self.saved_arrays  # flat positions of the maxima in each plane
        return pick_backward_graph(self, g, indices, len(self.bins))


def _adaptive_sizes(op: str, x: Tensor, output_size: Any, dims: int) -> tuple:
    if isinstance(output_size, tuple | list) and len(output_size) == dims:
        output_size = tuple(n if o is None else o for o, n in zip(output_size, x.shape[-dims:]))
    out = int_tuple(output_size, dims, "output_size", op, 1)
    if min(x.shape[-dims:]) <= 0:
        raise ValueError(f"{op}: input of shape {tuple(x.shape)} has an empty spatial dim")
    return out


def _sized_input(op: str, input: Any, output_size: Any, dims: int) -> tuple[Tensor, tuple]:
    """The input, checked to have dims + 1 or dims + 2 dims (PyTorch's error for each), and
    the output sizes."""
    x = float_input(input, op)
    if x.ndim not in (dims + 1, dims + 2):
        if dims == 1:
            raise RuntimeError(
                f"{op}: Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for "
                "argument #1 'self'"
            )
        spatial = "H, W" if dims == 2 else "D, H, W"
        raise ValueError(
            f"{op}: expected a {dims + 1}-D (C, {spatial}) or {dims + 2}-D (N, C, {spatial}) "
            f"input, got shape {tuple(x.shape)}"
        )
    return x, _adaptive_sizes(op, x, output_size, dims)


def adaptive_max_pool2d(
    input: Tensor, output_size: int | tuple[int | None, int | None], return_indices: bool = False
) -> Any:
    """2-D max pooling to a fixed output size over (N, C, H, W) or (C, H, W) inputs: output
    (p, q) is the maximum over input rows ``floor(p*H/OH)`` to ``ceil((p+1)*H/OH)`` and likewise
    columns. return_indices also gives each maximum's flat index ``h * W + w`` (int64).

    >>> import gradflow
    >>> adaptive_max_pool2d(gradflow.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    op = "adaptive_max_pool2d"
    x, (oh, ow) = _sized_input(op, input, output_size, 2)
    return AdaptiveMaxPoolFunction.apply(
        x, bins=(_bins(x.shape[-2], oh), _bins(x.shape[-1], ow)),
        return_indices=bool(return_indices),
    )  # fmt: skip


def adaptive_max_pool1d(
    input: Tensor, output_size: int | tuple[int], return_indices: bool = False
) -> Any:
    """1-D max pooling to a fixed output size over (N, C, L) or (C, L) inputs (see
    :func:`adaptive_max_pool2d`); indices are positions in L.

    >>> import gradflow
    >>> adaptive_max_pool1d(gradflow.tensor([[1.0, 3.0, 2.0, 0.0]]), 2).tolist()
    [[3.0, 2.0]]
    """
    op = "adaptive_max_pool1d"
    x, (out,) = _sized_input(op, input, output_size, 1)
    return AdaptiveMaxPoolFunction.apply(
        x, bins=(_bins(x.shape[-1], out),), return_indices=bool(return_indices), op_name=op
    )


def adaptive_max_pool3d(
    input: Tensor, output_size: int | tuple[int | None, ...], return_indices: bool = False
) -> Any:
    """3-D max pooling to a fixed output size over (N, C, D, H, W) or (C, D, H, W) inputs (see
    :func:`adaptive_max_pool2d`); indices are ``d * H * W + h * W + w``.

    >>> import gradflow
    >>> adaptive_max_pool3d(gradflow.arange(8.0).reshape(1, 1, 2, 2, 2), 1).tolist()
    [[[[[7.0]]]]]
    """
    op = "adaptive_max_pool3d"
    x, outs = _sized_input(op, input, output_size, 3)
    bins = tuple(_bins(n, o) for n, o in zip(x.shape[-3:], outs))
    return AdaptiveMaxPoolFunction.apply(
        x, bins=bins, return_indices=bool(return_indices), op_name=op
    )


def adaptive_avg_pool1d(input: Tensor, output_size: int | tuple[int]) -> Tensor:
    """1-D average pooling to a fixed output size over (N, C, L) or (C, L) inputs (see
    :func:`adaptive_avg_pool2d`).

    >>> import gradflow
    >>> adaptive_avg_pool1d(gradflow.tensor([[1.0, 3.0, 2.0, 0.0]]), 2).tolist()
    [[2.0, 1.0]]
    """
    op = "adaptive_avg_pool1d"
    x, (out,) = _sized_input(op, input, output_size, 1)
    return adaptive_avg_pool2d(x.unsqueeze(-2), (1, out)).squeeze(-2)


def adaptive_avg_pool3d(input: Tensor, output_size: int | tuple[int | None, ...]) -> Tensor:
    """3-D average pooling to a fixed output size over (N, C, D, H, W) or (C, D, H, W) inputs:
    adaptive_avg_pool2d over (H, W), then over D (the bins are separable).

    >>> import gradflow
    >>> adaptive_avg_pool3d(gradflow.ones(1, 2, 3, 4, 5), 1).shape
    gradflow.Size([1, 2, 1, 1, 1])
    """
    op = "adaptive_avg_pool3d"
    x, (od, oh, ow) = _sized_input(op, input, output_size, 3)
    lead, (d, h, w) = tuple(x.shape[:-3]), tuple(x.shape[-3:])
    y = adaptive_avg_pool2d(x.reshape(-1, d, h, w), (oh, ow))  # [lead*, D, OH, OW]
    y = adaptive_avg_pool2d(y.reshape(-1, d, oh * ow).transpose(1, 2), (oh * ow, od))
    return y.transpose(1, 2).reshape(*lead, od, oh, ow)
