"""Pooling: max_pool1d/2d and avg_pool1d/2d, one graph node each (3-D pooling is
ops/pooling3d.py; adaptive pooling ops/adaptive_pooling.py; unpooling ops/unpooling.py; power-
average pooling ops/lp_pooling.py).

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
input. Average pooling keeps nothing but shapes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy

from gradflow.autograd.differentiable import linear_backward_graph
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

    def backward_graph(self, g, g_indices=None):
        return MaxPoolBackward.apply(g, item=self)


class MaxPoolBackward(Function):
    """max_pool2d's backward (g added at each window's maximum) as an op, for double backward:
    its own gradient picks the gradient at those maxima again (an indexing op)."""

    op_name = "max_pool2d_backward"
    item: Any  # the MaxPool2dFunction node

    def forward(self, g):
        return self.item.backward(g)

    def _where(self) -> tuple:
        """(rows, flat positions): each output's maximum in the (N * C, H * W) input."""
        item = self.item
        (offsets,) = item.saved_arrays
        s = item.shapes
        flat = _flat_indices(offsets, item.window, s.x4[3]).reshape(s.x4[0] * s.x4[1], -1)
        rows = get_array_module(flat).arange(flat.shape[0])[:, None]
        return rows, flat

    def _out_shape(self, gg) -> tuple:
        s = self.item.shapes
        return (s.x4[0] * s.x4[1], s.x4[2] * s.x4[3]), s.out

    def backward(self, gg):
        rows, flat = self._where()
        planes, out = self._out_shape(gg)
        return gg.reshape(planes)[rows, flat].reshape(out)

    def backward_graph(self, gg):
        rows, flat = self._where()
        planes, out = self._out_shape(gg)
        return gg.reshape(planes)[rows, flat].reshape(out)


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

    def backward_graph(self, g):
        return linear_backward_graph(self, g)


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
