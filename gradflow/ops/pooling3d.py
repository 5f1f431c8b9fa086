"""3-D pooling: max_pool3d and avg_pool3d over (N, C, D, H, W) or unbatched (C, D, H, W)
inputs, one graph node each (PyTorch's semantics and argument names).

A loop over the kd*kh*kw kernel offsets, each a strided slice of the padded frame, in the
array module's own operations (the same code on CuPy; no kernels of ours).

Memory: max_pool3d keeps, per output, the offset of its maximum within the window, never the
input; avg_pool3d keeps nothing but shapes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy

from gradflow.autograd.differentiable import linear_backward_graph, pick_backward_graph
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import float_input
from gradflow.ops.pooling import _first_equal
from gradflow.ops.window import (
    check_output_size,
    int_tuple,
    offset_slices_3d,
    offsets_3d,
    pool_output_size,
)
from gradflow.tensor import Tensor


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

    offsets = offsets_3d
    offset_slices = offset_slices_3d

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

    def backward_graph(self, g, g_indices=None):
        (offsets,) = self.saved_arrays
        return pick_backward_graph(self, g, self._flat_indices(offsets), 3)


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

    def backward_graph(self, g):
        return linear_backward_graph(self, g)


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
