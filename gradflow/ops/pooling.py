"""Pooling: max_pool1d/2d, avg_pool1d/2d and adaptive_avg_pool2d, one graph node each.

PyTorch's semantics and argument names (torch.nn.functional). Inputs are (N, C, H, W) or
unbatched (C, H, W) (1-D: (N, C, L) or (C, L), run as 2-D with a unit height). The window
geometry (output sizes, padded frames) is gradflow/ops/window.py, shared with conv.

CPU: a loop over the kh*kw kernel offsets, each a strided view of the (padded) input, so the
work is whole-array NumPy operations (no loop over pixels); max pooling's backward is one
scatter-add (bincount) of the gradients to their maxima. Max pooling with windows that tile
the input (stride == kernel, no padding or dilation) copies the input once into
window-offset-major order instead, and its backward writes one masked product per offset.
GPU (and the emulation route): kernels/pooling.cu through gradflow/kernels/pooling.py,
gather backward kernels (no atomics).

Memory: max pooling keeps, per output, the offset ``i*kw + j`` of its maximum within the
window (uint8 for windows of up to 256 pixels on the CPU; int32 from the kernel), never the
input. Average pooling and adaptive average pooling keep nothing but shapes.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.backend.routing import uses_kernels
from gradflow.ops._util import float_input
from gradflow.ops.window import (
    Window,
    check_input_rank,
    check_output_size,
    gradient_frame,
    int_tuple,
    padded_frame,
    pool_output_size,
)
from gradflow.tensor import Tensor


class _Shapes(NamedTuple):
    """The caller's input/output shapes and their 4-D views (unit dims added)."""

    x: tuple
    x4: tuple
    out: tuple
    out4: tuple


# ---- max pooling --------------------------------------------------------------------------


def _tiles(window: Window, hw: tuple) -> bool:
    """Whether the windows tile the input without overlap, gaps or padding (stride == kernel,
    no padding or dilation): then each window offset's pixels are one strided view of x."""
    return (
        window.stride == window.kernel
        and window.padding == (0, 0)
        and window.dilation == (1, 1)
        and all(o * k <= size for o, k, size in zip(window.out, window.kernel, hw))
    )


def _tiled(a: Any, window: Window) -> Any:
    """a [N, C, H, W] as [N, C, OH, kh, OW, kw] (a view; rows/columns past the last window
    are left out), for windows that tile the input (_tiles)."""
    (kh, kw), (oh, ow) = window.kernel, window.out
    return a[..., : oh * kh, : ow * kw].reshape(*a.shape[:2], oh, kh, ow, kw)


def _first_equal(views: list, best: Any) -> Any:
    """Per output, the index of the first view equal to best (len(views) - 1 where none is),
    as the smallest unsigned type that holds it: sum over k of [views 0..k all differ].
    Whole-array arithmetic, since a masked copyto per view costs far more than a compare
    (timings: benchmarks/results/2026-12-07-code-figures.md)."""
    xp = get_array_module(best)
    differ = xp.not_equal(views[0], best)
    offsets = differ.astype(numpy.min_scalar_type(len(views) - 1))
    other = xp.empty(best.shape, dtype=bool)
    for view in views[1:-1]:
        xp.not_equal(view, best, out=other)
        differ &= other
        offsets += differ
    return offsets


def _max_pool(x: Any, window: Window, need_offsets: bool) -> tuple[Any, Any]:
    """(max over each window, offset i*kw + j of the maximum or None), NumPy, with PyTorch's
    rules: NaN wins (the last NaN of a window), and the first of equal maxima."""
    xp = get_array_module(x)
    if _tiles(window, x.shape[2:]):
        # One copy into window-offset-major order: every pass after it reads contiguous
        # memory, where a strided view with 4-8 pixels per row is several times slower
        # (timings: benchmarks/results/2026-12-07-code-figures.md).
        by_offset = xp.ascontiguousarray(_tiled(x, window).transpose(3, 5, 0, 1, 2, 4))
        kh, kw = window.kernel  # not -1: an empty batch leaves nothing to infer it from
        views = list(by_offset.reshape(kh * kw, *by_offset.shape[2:]))
    else:
        frame = padded_frame(x, window, -numpy.inf)
        views = [frame[(..., *window.offset_slices(i, j))] for i, j in window.offsets()]
    best = views[0].copy()
    for view in views[1:]:
        xp.maximum(best, view, out=best)  # propagates NaN
    if not need_offsets:
        return best, None
    offsets = _first_equal(views, best)
    if xp.isnan(best).any():  # NaN equals nothing: point those windows at their last NaN
        for k, view in enumerate(views):
            xp.copyto(offsets, k, where=xp.isnan(view), casting="unsafe")
    return best, offsets


def _max_pool_grad(g: Any, offsets: Any, window: Window, x_shape: tuple) -> Any:
    """dx: each window's gradient added at its maximum. Tiling windows: one masked product per
    window offset, written into its strided view of dx; otherwise one scatter-add (bincount)
    into the padded frame for all windows (overlapping ones sum)."""
    xp = get_array_module(g)
    if _tiles(window, x_shape[2:]):
        covered = tuple(o * k for o, k in zip(window.out, window.kernel)) == tuple(x_shape[2:])
        dx = (xp.empty if covered else xp.zeros)(x_shape, dtype=g.dtype)
        tiles = _tiled(dx, window)
        for k, (i, j) in enumerate(window.offsets()):
            xp.multiply(g, offsets == k, out=tiles[:, :, :, i, :, j])
        return dx
    n, c = x_shape[:2]
    frame = gradient_frame((), window, x_shape[2:], g.dtype, xp)  # just its (rows, columns)
    rows, cols = frame.shape
    (sh, sw), (dh, dw), (oh, ow) = window.stride, window.dilation, window.out
    starts = (xp.arange(oh) * (sh * cols))[:, None] + xp.arange(ow) * sw  # window corners
    by_offset = xp.array([i * dh * cols + j * dw for i, j in window.offsets()])
    position = by_offset[offsets]
    position += starts
    position += (xp.arange(n * c) * (rows * cols)).reshape(n, c, 1, 1)
    # bincount sums in float64 (exact enough, then rounded once to g's dtype).
    flat = xp.bincount(position.reshape(-1), weights=g.reshape(-1), minlength=n * c * rows * cols)
    top, left = window.padding
    dx = flat.reshape(n, c, rows, cols)[..., top : top + x_shape[2], left : left + x_shape[3]]
    return dx.astype(g.dtype)


def _flat_indices(offsets: Any, window: Window, width: int) -> Any:
    """PyTorch's return_indices: the flat position h * W + w of each maximum in its plane."""
    xp = get_array_module(offsets)
    kw = window.kernel[1]
    (sh, sw), (ph, pw), (dh, dw) = window.stride, window.padding, window.dilation
    k = offsets.astype(numpy.int64)
    rows = xp.arange(window.out[0], dtype=numpy.int64)[:, None] * sh - ph + (k // kw) * dh
    cols = xp.arange(window.out[1], dtype=numpy.int64) * sw - pw + (k % kw) * dw
    return rows * width + cols


class MaxPool2dFunction(Function):
    """max_pool2d (and max_pool1d, which passes op_name="max_pool1d"; unbatched inputs) as one
    node; keeps the argmax offsets."""

    op_name = "max_pool2d"

    return_indices: bool
    shapes: _Shapes
    window: Window

    def forward(self, x):
        s, window = self.shapes, self.window
        x4 = x.reshape(s.x4)
        self.kernel = uses_kernels(x)
        if self.kernel:
            from gradflow.kernels.pooling import max_pool2d_fwd

            y, offsets = max_pool2d_fwd(
                x4, window.kernel, window.out, stride=window.stride, padding=window.padding,
                dilation=window.dilation,
            )  # fmt: skip
        else:
            need = self.return_indices or self.needs_input_grad[0]
            y, offsets = _max_pool(x4, window, need)
        self.save_for_backward(offsets)  # the window offset of each maximum, not the input
        if self.return_indices:
            return y.reshape(s.out), _flat_indices(offsets, window, s.x4[3]).reshape(s.out)
        return y.reshape(s.out)

    def backward(self, g, g_indices=None):
        (offsets,) = self.saved_arrays
        s, window = self.shapes, self.window
        g4 = g.reshape(s.out4)
        if self.kernel:
            from gradflow.kernels.pooling import max_pool2d_bwd

            dx = max_pool2d_bwd(
                g4, offsets, s.x4, window.kernel, stride=window.stride, padding=window.padding,
                dilation=window.dilation,
            )  # fmt: skip
        else:
            dx = _max_pool_grad(g4, offsets, window, s.x4)
        return dx.reshape(s.x)


# ---- average pooling ----------------------------------------------------------------------


def _avg_divisor(window: Window, hw: tuple, count_include_pad: bool, xp: Any, dtype: Any) -> Any:
    """Each output pixel's divisor, [OH, OW]: the window clipped to the padded input
    (count_include_pad) or to the input (PyTorch's rule); separable, so an outer product."""
    sizes = []
    for axis in (0, 1):
        k, s, p, size = window.kernel[axis], window.stride[axis], window.padding[axis], hw[axis]
        start = xp.arange(window.out[axis]) * s - p
        end = xp.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, size)
        sizes.append((end - start).astype(dtype))
    return sizes[0][:, None] * sizes[1][None, :]


class AvgPool2dFunction(Function):
    """avg_pool2d (and avg_pool1d, which passes op_name="avg_pool1d"; unbatched inputs) as one
    node; keeps nothing."""

    op_name = "avg_pool2d"

    count_include_pad: bool
    divisor_override: int | None
    shapes: _Shapes
    window: Window

    def _kernel_options(self) -> dict:
        w = self.window
        return dict(
            stride=w.stride, padding=w.padding, count_include_pad=self.count_include_pad,
            divisor_override=self.divisor_override,
        )  # fmt: skip

    def _divisor(self, xp: Any, dtype: Any) -> Any:
        if self.divisor_override:
            return dtype.type(self.divisor_override)
        return _avg_divisor(self.window, self.shapes.x4[2:], self.count_include_pad, xp, dtype)

    def forward(self, x):
        s, window = self.shapes, self.window
        x4 = x.reshape(s.x4)
        self.kernel = uses_kernels(x)
        if self.kernel:
            from gradflow.kernels.pooling import avg_pool2d_fwd

            y = avg_pool2d_fwd(x4, window.kernel, window.out, **self._kernel_options())
            return y.reshape(s.out)
        frame = padded_frame(x4, window, 0)
        views = [frame[(..., *window.offset_slices(i, j))] for i, j in window.offsets()]
        y = views[0].copy()
        for view in views[1:]:
            y += view
        y /= self._divisor(get_array_module(x), x.dtype)
        return y.reshape(s.out)

    def backward(self, g):
        s, window = self.shapes, self.window
        g4 = g.reshape(s.out4)
        if self.kernel:
            from gradflow.kernels.pooling import avg_pool2d_bwd

            return avg_pool2d_bwd(g4, s.x4, window.kernel, **self._kernel_options()).reshape(s.x)
        xp = get_array_module(g)
        share = g4 / self._divisor(xp, g.dtype)
        frame = gradient_frame(s.x4[:2], window, s.x4[2:], g.dtype, xp)
        for i, j in window.offsets():
            frame[(..., *window.offset_slices(i, j))] += share
        top, left = window.padding
        return frame[..., top : top + s.x4[2], left : left + s.x4[3]].reshape(s.x)


# ---- adaptive average pooling ---------------------------------------------------------------


def _bin_matrix(size: int, out: int, xp: Any, dtype: Any) -> Any:
    """[out, size]: row o averages input positions floor(o*size/out) .. ceil((o+1)*size/out)."""
    o = xp.arange(out)
    start, end = (o * size) // out, -((-(o + 1) * size) // out)
    pos = xp.arange(size)
    inside = (pos >= start[:, None]) & (pos < end[:, None])
    return inside.astype(dtype) / (end - start)[:, None].astype(dtype)


class AdaptiveAvgPool2dFunction(Function):
    """adaptive_avg_pool2d as one node. Bins of equal size (the output divides the input) are
    a reshaped mean; otherwise two small averaging matrices, y = A_h x A_w^T."""

    op_name = "adaptive_avg_pool2d"

    shapes: _Shapes

    def _uniform(self) -> bool:
        (h, w), (oh, ow) = self.shapes.x4[2:], self.shapes.out4[2:]
        return h % oh == 0 and w % ow == 0

    def forward(self, x):
        s = self.shapes
        x4 = x.reshape(s.x4)
        n, c, h, w = s.x4
        oh, ow = s.out4[2:]
        if self._uniform():
            y = x4.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5))
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
        else:
            a_h, a_w = _bin_matrix(h, oh, xp, g.dtype), _bin_matrix(w, ow, xp, g.dtype)
            dx = xp.einsum("ncpq,ph,qw->nchw", g4, a_h, a_w, optimize=True)
        return dx.reshape(s.x)


# ---- arguments and the public functions -----------------------------------------------------


def _pool_args(
    op: str, x: Any, dims: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
    ceil_mode: bool,
) -> tuple[Tensor, Window, _Shapes]:  # fmt: skip
    """Validated input, window and shapes (2-D views) of a pooling op."""
    x = float_input(x, op)
    batched = check_input_rank(x, dims, op)
    kernel = int_tuple(kernel_size, dims, "kernel_size", op, 1)
    stride = kernel if stride is None else int_tuple(stride, dims, "stride", op, 1)
    padding = int_tuple(padding, dims, "padding", op, 0)
    dilation = int_tuple(dilation, dims, "dilation", op, 1)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(
            f"{op}: padding {padding} must be at most half of kernel_size {kernel} (as in "
            "PyTorch); use a larger kernel or less padding"
        )
    if 0 in x.shape[-dims - 1 :]:  # as PyTorch: windows of padding alone have no max (-inf)
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} has an empty channel or spatial dim; only "
            "the batch dim may be empty (as in PyTorch): give each sample at least one channel "
            "and one pixel per spatial dim"
        )
    spatial = tuple(x.shape[-dims:])
    out = tuple(map(pool_output_size, spatial, kernel, stride, padding, dilation,
                    (ceil_mode,) * dims))  # fmt: skip
    check_output_size(op, x, out, f"kernel_size {kernel} (dilation {dilation}, padding {padding})")
    window = Window.lifted(kernel, stride, padding, dilation, out)
    return x, window, _shapes(x, batched, dims, window.out)


def _shapes(x: Tensor, batched: bool, dims: int, out_hw: tuple) -> _Shapes:
    x4 = tuple(x.shape) if batched else (1, *x.shape)
    if dims == 1:
        x4 = (*x4[:2], 1, x4[2])
    out4 = (*x4[:2], *out_hw)
    out = out4 if batched else out4[1:]
    if dims == 1:
        out = (*out[:-2], out4[3])
    return _Shapes(tuple(x.shape), x4, out, out4)


def _max_pool_op(op, x, dims, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, window, shapes = _pool_args(op, x, dims, kernel_size, stride, padding, dilation, ceil_mode)
    return MaxPool2dFunction.apply(
        x, window=window, shapes=shapes, return_indices=bool(return_indices), op_name=op
    )


def max_pool2d(
    input: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """2-D max pooling over (N, C, H, W) or (C, H, W) inputs.

    Each output pixel is the maximum over a kernel_size window (rows
    ``oh*stride - padding + i*dilation``); padding counts as -inf. NaN propagates.

    Args:
        kernel_size: an int or a pair (rows, columns).
        stride: defaults to kernel_size.
        padding: implicit -inf padding on both sides, at most kernel_size // 2.
        dilation: spacing between the window's pixels.
        ceil_mode: round the output size up (a last, partial window), as PyTorch does.
        return_indices: also return, per output, the flat index ``h * W + w`` of the maximum in
            its input plane (int64, as PyTorch's, for max_unpool).

    Returns:
        (N, C, H_out, W_out) with ``H_out = (H + 2*padding - dilation*(k - 1) - 1) // stride + 1``
        (ceil in ceil_mode), or (output, indices).

    >>> import gradflow
    >>> max_pool2d(gradflow.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    return _max_pool_op("max_pool2d", input, 2, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)  # fmt: skip


def max_pool1d(
    input: Tensor,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    dilation: int | tuple[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """1-D max pooling over (N, C, L) or (C, L) inputs; arguments as :func:`max_pool2d` (ints
    or 1-tuples); indices are positions in L."""
    return _max_pool_op("max_pool1d", input, 1, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)  # fmt: skip


def _avg_pool_op(op, x, dims, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor):
    if divisor is not None and (not isinstance(divisor, int) or divisor == 0):
        raise ValueError(f"{op}: divisor_override must be a nonzero int or None, got {divisor!r}")
    x, window, shapes = _pool_args(op, x, dims, kernel_size, stride, padding, 1, ceil_mode)
    return AvgPool2dFunction.apply(
        x, window=window, shapes=shapes, count_include_pad=bool(count_include_pad),
        divisor_override=divisor, op_name=op,
    )  # fmt: skip


def avg_pool2d(
    input: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-D average pooling over (N, C, H, W) or (C, H, W) inputs.

    Each output pixel is its window's sum divided by divisor_override when given, else by the
    window's size (count_include_pad=True: zero padding counts; windows that ceil_mode lets run
    past the padded input are clipped to it) or by its number of input pixels.

    Args:
        kernel_size: an int or a pair; stride defaults to kernel_size.
        padding: implicit zero padding on both sides, at most kernel_size // 2.
        ceil_mode: round the output size up, as PyTorch does.

    >>> import gradflow
    >>> avg_pool2d(gradflow.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[2.5, 4.5], [10.5, 12.5]]]]
    """
    return _avg_pool_op("avg_pool2d", input, 2, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)  # fmt: skip


def avg_pool1d(
    input: Tensor,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """1-D average pooling over (N, C, L) or (C, L) inputs; arguments as :func:`avg_pool2d`."""
    return _avg_pool_op("avg_pool1d", input, 1, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)  # fmt: skip


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
    if isinstance(output_size, tuple | list) and len(output_size) == 2:
        output_size = tuple(h if o is None else o for o, h in zip(output_size, x.shape[-2:]))
    out = int_tuple(output_size, 2, "output_size", op, 1)
    if min(x.shape[-2:]) <= 0:
        raise ValueError(f"{op}: input of shape {tuple(x.shape)} has an empty spatial dim")
    return AdaptiveAvgPool2dFunction.apply(x, shapes=_shapes(x, batched, 2, out))


# ---- 3-D pooling: max_pool3d, avg_pool3d ----------------------------------------------------
# A loop over the kd*kh*kw kernel offsets, each a strided slice of the padded frame, in the
# array module's own operations (the same code on CuPy; no kernels of ours).


class _Window3(NamedTuple):
    """The sliding windows of a 3-D pool, per dim (depth, rows, columns)."""

    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out: tuple

    def span(self, axis: int) -> int:
        k, s, d = self.kernel[axis], self.stride[axis], self.dilation[axis]
        return (self.out[axis] - 1) * s + (k - 1) * d + 1

    def offsets(self):
        kd, kh, kw = self.kernel
        return [(a, b, c) for a in range(kd) for b in range(kh) for c in range(kw)]

    def offset_slices(self, offset: tuple) -> tuple:
        return tuple(
            slice(i * d, i * d + (o - 1) * s + 1, s)
            for i, d, s, o in zip(offset, self.dilation, self.stride, self.out)
        )

    def frame(self, x: Any, fill: float) -> Any:
        """x [..., D, H, W] placed at the padding in a frame holding every window."""
        xp = get_array_module(x)
        sizes = x.shape[-3:]
        shape = tuple(max(self.span(a), p + n) for a, (p, n) in enumerate(zip(self.padding, sizes)))
        frame = xp.full((*x.shape[:-3], *shape), fill, dtype=x.dtype)
        frame[(..., *(slice(p, p + n) for p, n in zip(self.padding, sizes)))] = x
        return frame

    def crop(self, frame: Any, sizes: tuple) -> Any:
        return frame[(..., *(slice(p, p + n) for p, n in zip(self.padding, sizes)))]


class MaxPool3dFunction(Function):
    """max_pool3d as one node; keeps the offset of each maximum within its window."""

    op_name = "max_pool3d"
    return_indices: bool
    window: _Window3

    def forward(self, x):
        xp, window = get_array_module(x), self.window
        self.shape = x.shape
        frame = window.frame(x, -numpy.inf)
        views = [frame[(..., *window.offset_slices(k))] for k in window.offsets()]
        best = views[0].copy()
        for view in views[1:]:
            xp.maximum(best, view, out=best)  # propagates NaN
        if not (self.return_indices or self.needs_input_grad[0]):
            return best
        offsets = _first_equal(views, best)
        if xp.isnan(best).any():
            for k, view in enumerate(views):
                xp.copyto(offsets, k, where=xp.isnan(view), casting="unsafe")
        self.save_for_backward(offsets)  # the window offset of each maximum, not the input
        if not self.return_indices:
            return best
        return best, self._flat_indices(offsets)

    def _flat_indices(self, offsets: Any) -> Any:
        """PyTorch's indices: d * H * W + h * W + w of each maximum in its volume."""
        xp, window = get_array_module(offsets), self.window
        k = offsets.astype(numpy.int64)
        _, kh, kw = window.kernel
        by_axis = (k // (kh * kw), (k // kw) % kh, k % kw)
        flat = 0
        for axis, (i, size) in enumerate(zip(by_axis, self.shape[-3:])):
            shape = [1, 1, 1]
            shape[axis] = window.out[axis]
            start = xp.arange(window.out[axis], dtype=numpy.int64).reshape(shape)
            pos = start * window.stride[axis] - window.padding[axis] + i * window.dilation[axis]
            flat = flat * size + pos
        return flat

    def backward(self, g, g_indices=None):
        (offsets,) = self.saved_arrays
        xp, window = get_array_module(g), self.window
        frame = window.frame(xp.zeros(self.shape, dtype=g.dtype), 0)
        for k, offset in enumerate(window.offsets()):
            frame[(..., *window.offset_slices(offset))] += g * (offsets == k)
        return xp.ascontiguousarray(window.crop(frame, self.shape[-3:]))


class AvgPool3dFunction(Function):
    """avg_pool3d as one node; keeps nothing."""

    op_name = "avg_pool3d"
    count_include_pad: bool
    divisor_override: int | None
    window: _Window3

    def _divisor(self, xp: Any, dtype: Any, sizes: tuple) -> Any:
        if self.divisor_override:
            return dtype.type(self.divisor_override)
        w, total = self.window, None
        for axis in range(3):
            k, s, p, size = w.kernel[axis], w.stride[axis], w.padding[axis], sizes[axis]
            start = xp.arange(w.out[axis]) * s - p
            end = xp.minimum(start + k, size + p)
            if not self.count_include_pad:
                start, end = xp.maximum(start, 0), xp.minimum(end, size)
            shape = [1, 1, 1]
            shape[axis] = w.out[axis]
            part = (end - start).astype(dtype).reshape(shape)
            total = part if total is None else total * part
        return total

    def forward(self, x):
        window = self.window
        self.shape = x.shape
        frame = window.frame(x, 0)
        offsets = window.offsets()
        y = frame[(..., *window.offset_slices(offsets[0]))].copy()
        for offset in offsets[1:]:
            y += frame[(..., *window.offset_slices(offset))]
        y /= self._divisor(get_array_module(x), x.dtype, x.shape[-3:])
        return y

    def backward(self, g):
        xp, window = get_array_module(g), self.window
        share = g / self._divisor(xp, g.dtype, self.shape[-3:])
        frame = window.frame(xp.zeros(self.shape, dtype=g.dtype), 0)
        for offset in window.offsets():
            frame[(..., *window.offset_slices(offset))] += share
        return xp.ascontiguousarray(window.crop(frame, self.shape[-3:]))


def _pool3d_args(op, x, kernel_size, stride, padding, dilation, ceil_mode) -> tuple:
    x = float_input(x, op)
    if x.ndim not in (4, 5) or 0 in x.shape[-4:]:
        raise RuntimeError(f"{op}: non-empty 4D or 5D (batch mode) tensor expected for input, "
                           f"got shape {tuple(x.shape)}")  # fmt: skip
    kernel = int_tuple(kernel_size, 3, "kernel_size", op, 1)
    stride = kernel if stride is None or stride == [] else int_tuple(stride, 3, "stride", op, 1)
    padding = int_tuple(padding, 3, "padding", op, 0)
    dilation = int_tuple(dilation, 3, "dilation", op, 1)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(
            f"{op}: padding {padding} must be at most half of kernel_size {kernel} (as in "
            "PyTorch); use a larger kernel or less padding"
        )
    out = tuple(map(pool_output_size, x.shape[-3:], kernel, stride, padding, dilation,
                    (bool(ceil_mode),) * 3))  # fmt: skip
    check_output_size(op, x, out, f"kernel_size {kernel} (dilation {dilation}, padding {padding})")
    return x, _Window3(kernel, stride, padding, dilation, out)


def max_pool3d(
    input: Tensor,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: int | tuple[int, int, int] = 0,
    dilation: int | tuple[int, int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """3-D max pooling over (N, C, D, H, W) or (C, D, H, W) inputs; arguments as
    :func:`max_pool2d` with triples. Indices (return_indices) are ``d * H * W + h * W + w``.

    >>> import gradflow
    >>> max_pool3d(gradflow.arange(8.0).reshape(1, 1, 2, 2, 2), 2).tolist()
    [[[[[7.0]]]]]
    """
    x, window = _pool3d_args("max_pool3d", input, kernel_size, stride, padding, dilation,
                             ceil_mode)  # fmt: skip
    return MaxPool3dFunction.apply(x, window=window, return_indices=bool(return_indices))


def avg_pool3d(
    input: Tensor,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: int | tuple[int, int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """3-D average pooling over (N, C, D, H, W) or (C, D, H, W) inputs; arguments as
    :func:`avg_pool2d` with triples.

    >>> import gradflow
    >>> avg_pool3d(gradflow.arange(8.0).reshape(1, 1, 2, 2, 2), 2).tolist()
    [[[[[3.5]]]]]
    """
    op = "avg_pool3d"
    if divisor_override is not None and (
        not isinstance(divisor_override, int) or divisor_override == 0
    ):
        raise ValueError(
            f"{op}: divisor_override must be a nonzero int or None, got {divisor_override!r}"
        )
    x, window = _pool3d_args(op, input, kernel_size, stride, padding, 1, ceil_mode)
    return AvgPool3dFunction.apply(x, window=window, count_include_pad=bool(count_include_pad),
                                   divisor_override=divisor_override)  # fmt: skip


# ---- adaptive pooling: adaptive_avg_pool1d/3d, adaptive_max_pool1d/2d ------------------------


def _bins(size: int, out: int) -> numpy.ndarray:
    """[out, kmax] input positions of each adaptive bin (PyTorch's floor/ceil bounds); a bin
    shorter than kmax repeats its last position, which changes no maximum."""
    o = numpy.arange(out)
    start, end = (o * size) // out, -((-(o + 1) * size) // out)
    kmax = int((end - start).max())
    return numpy.minimum(start[:, None] + numpy.arange(kmax), end[:, None] - 1)


def _scatter_flat(g: Any, flat: Any, plane: int) -> Any:
    """[rows, plane] zeros with each g[r, i] added at column flat[r, i] (g, flat: [rows, M])."""
    xp = get_array_module(g)
    rows = g.shape[0]
    positions = (flat + xp.arange(rows, dtype=flat.dtype)[:, None] * plane).reshape(-1)
    if xp is numpy:  # bincount sums in float64, rounded once
        out = numpy.bincount(positions, weights=g.reshape(-1), minlength=rows * plane)
        return out.astype(g.dtype).reshape(rows, plane)
    import cupyx

    out = xp.zeros(rows * plane, dtype=g.dtype)
    cupyx.scatter_add(out, positions, g.reshape(-1))
    return out.reshape(rows, plane)


class AdaptiveMaxPoolFunction(Function):
    """adaptive_max_pool1d/2d/3d as one node: the bins of the last len(bins) dims gathered as
    [*, O1, O2, ..., k1*k2*...], the maximum and its flat index in the input's spatial plane
    (h * W + w in 2-D) kept, not the input."""

    op_name = "adaptive_max_pool2d"
    bins: tuple  # per spatial axis, [out, k] input positions (_bins)
    return_indices: bool

    def forward(self, x):
        xp = get_array_module(x)
        self.shape = x.shape
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


def _adaptive_sizes(op: str, x: Tensor, output_size: Any, dims: int) -> tuple:
    if isinstance(output_size, tuple | list) and len(output_size) == dims:
        output_size = tuple(n if o is None else o for o, n in zip(output_size, x.shape[-dims:]))
    out = int_tuple(output_size, dims, "output_size", op, 1)
    if min(x.shape[-dims:]) <= 0:
        raise ValueError(f"{op}: input of shape {tuple(x.shape)} has an empty spatial dim")
    return out


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
    x = float_input(input, op)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {tuple(x.shape)}"
        )
    oh, ow = _adaptive_sizes(op, x, output_size, 2)
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
    x = float_input(input, op)
    if x.ndim not in (2, 3):
        raise RuntimeError(
            f"{op}: Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for "
            "argument #1 'self'"
        )
    (out,) = _adaptive_sizes(op, x, output_size, 1)
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
    x = float_input(input, op)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{op}: expected a 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input, got shape "
            f"{tuple(x.shape)}"
        )
    outs = _adaptive_sizes(op, x, output_size, 3)
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
    x = float_input(input, op)
    if x.ndim not in (2, 3):
        raise RuntimeError(
            f"{op}: Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for "
            "argument #1 'self'"
        )
    (out,) = _adaptive_sizes(op, x, output_size, 1)
    return adaptive_avg_pool2d(x.unsqueeze(-2), (1, out)).squeeze(-2)


def adaptive_avg_pool3d(input: Tensor, output_size: int | tuple[int | None, ...]) -> Tensor:
    """3-D average pooling to a fixed output size over (N, C, D, H, W) or (C, D, H, W) inputs:
    adaptive_avg_pool2d over (H, W), then over D (the bins are separable).

    >>> import gradflow
    >>> adaptive_avg_pool3d(gradflow.ones(1, 2, 3, 4, 5), 1).shape
    gradflow.Size([1, 2, 1, 1, 1])
    """
    op = "adaptive_avg_pool3d"
    x = float_input(input, op)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{op}: expected a 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input, got shape "
            f"{tuple(x.shape)}"
        )
    od, oh, ow = _adaptive_sizes(op, x, output_size, 3)
    lead, (d, h, w) = tuple(x.shape[:-3]), tuple(x.shape[-3:])
    y = adaptive_avg_pool2d(x.reshape(-1, d, h, w), (oh, ow))  # [lead*, D, OH, OW]
    y = adaptive_avg_pool2d(y.reshape(-1, d, oh * ow).transpose(1, 2), (oh * ow, od))
    return y.transpose(1, 2).reshape(*lead, od, oh, ow)


# ---- max_unpool ------------------------------------------------------------------------------


class MaxUnpoolFunction(Function):
    """max_unpool as one node: each value written at its flat index in a zero plane."""

    op_name = "max_unpool2d"
    dims: int
    in_shape: tuple
    out_shape: tuple

    def forward(self, x, index):
        xp = get_array_module(x)
        rows = math.prod(x.shape[: x.ndim - self.dims])
        plane = math.prod(self.out_shape[-self.dims :])
        positions = index.reshape(rows, -1) + xp.arange(rows, dtype=index.dtype)[:, None] * plane
        self.save_for_backward(positions)  # the int64 positions written, not the values
        out = xp.zeros(rows * plane, dtype=x.dtype)
        out[positions.reshape(-1)] = x.reshape(-1)
        return out.reshape(self.out_shape)

    def backward(self, g, *_):
        (positions,) = self.saved_arrays
        return g.reshape(-1)[positions.reshape(-1)].reshape(self.in_shape), None


def _max_unpool(op, x, indices, kernel_size, stride, padding, output_size, dims) -> Tensor:
    x = float_input(x, op)
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer Tensor (max_pool's return_indices)")
    if tuple(indices.shape) != tuple(x.shape):
        raise ValueError(
            f"{op}: Expected shape of indices to be same as that of the input tensor "
            f"({tuple(x.shape)}) but got indices tensor with shape: {tuple(indices.shape)}"
        )
    if x.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"{op}: expected a {dims + 1}-D or {dims + 2}-D input, got shape "
                         f"{tuple(x.shape)}")  # fmt: skip
    kernel = int_tuple(kernel_size, dims, "kernel_size", op, 1)
    stride = kernel if stride is None else int_tuple(stride, dims, "stride", op, 1)
    padding = int_tuple(padding, dims, "padding", op, 0)
    default = tuple((n - 1) * s - 2 * p + k for n, s, p, k in
                    zip(x.shape[-dims:], stride, padding, kernel))  # fmt: skip
    if output_size is None:
        out = default
    else:
        out = tuple(output_size)[-dims:]
        for d, (o, n, s) in enumerate(zip(out, default, stride)):
            if not n - s < o < n + s:
                raise ValueError(
                    f'invalid output_size "{tuple(output_size)}" (dim {d} must be between '
                    f"{n - s} and {n + s})"
                )
    out_shape = (*x.shape[:-dims], *out)
    return MaxUnpoolFunction.apply(x, indices.array, out_shape=out_shape, dims=dims,
                                   in_shape=tuple(x.shape), op_name=op)  # fmt: skip


def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    output_size: tuple[int, ...] | None = None,
) -> Tensor:
    """The partial inverse of max_pool2d: each value placed at its index (from
    ``return_indices=True``) in a zero (N, C, H_out, W_out) output, ``H_out = (H - 1)*stride -
    2*padding + kernel_size`` unless output_size is given.

    >>> import gradflow
    >>> y, i = max_pool2d(gradflow.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
    >>> max_unpool2d(y, i, 2)[0, 0, 1].tolist()
    [0.0, 5.0, 0.0, 7.0]
    """
    return _max_unpool("max_unpool2d", input, indices, kernel_size, stride, padding,
                       output_size, 2)  # fmt: skip


def max_unpool1d(
    input: Tensor,
    indices: Tensor,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    output_size: tuple[int, ...] | None = None,
) -> Tensor:
    """The partial inverse of max_pool1d (see :func:`max_unpool2d`)."""
    return _max_unpool("max_unpool1d", input, indices, kernel_size, stride, padding,
                       output_size, 1)  # fmt: skip


# ---- power-average pooling: lp_pool1d/2d (composites, PyTorch's definition) ----------------


def _lp_pool(op: str, x: Any, norm_type: float, kernel_size: Any, stride: Any, ceil_mode: bool,
             dims: int) -> Tensor:  # fmt: skip
    x = float_input(x, op)
    kernel = int_tuple(kernel_size, dims, "kernel_size", op, 1)
    pool_max = max_pool2d if dims == 2 else max_pool1d
    if norm_type == float("inf"):
        return pool_max(x.abs(), kernel, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -pool_max(-x.abs(), kernel, stride, 0, 1, ceil_mode)
    pool_avg = avg_pool2d if dims == 2 else avg_pool1d
    out = pool_avg(x.pow(norm_type), kernel, stride, 0, ceil_mode)
    # sign * relu(abs): PyTorch's form, whose gradient is 0 where a window's power sum is 0.
    return (out.sign() * out.abs().relu() * math.prod(kernel)).pow(1.0 / norm_type)


def lp_pool2d(
    input: Tensor,
    norm_type: float,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """2-D power-average pooling: ``(sum over the window of x ** p) ** (1 / p)`` with
    p = norm_type (inf: max pooling of |x|). A composite of avg_pool2d and powers.

    >>> import gradflow
    >>> lp_pool2d(gradflow.ones(1, 1, 2, 2) * 3, 2, 2).tolist()
    [[[[6.0]]]]
    """
    return _lp_pool("lp_pool2d", input, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool1d(
    input: Tensor,
    norm_type: float,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """1-D power-average pooling over (N, C, L) or (C, L) inputs (see :func:`lp_pool2d`)."""
    return _lp_pool("lp_pool1d", input, norm_type, kernel_size, stride, ceil_mode, 1)


def max_unpool3d(
    input: Tensor,
    indices: Tensor,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: int | tuple[int, int, int] = 0,
    output_size: tuple[int, ...] | None = None,
) -> Tensor:
    """The partial inverse of max_pool3d (see :func:`max_unpool2d`)."""
    return _max_unpool("max_unpool3d", input, indices, kernel_size, stride, padding,
                       output_size, 3)  # fmt: skip
