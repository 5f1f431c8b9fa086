"""Sliding-window geometry shared by conv (ops/conv.py) and pooling (ops/pooling.py).

Where each window of a 2-D conv or pool sits (``Window``), the output sizes, the padding
("same", "valid", ints or pairs), the zero/-inf padded frames the CPU route reads windows
from, and the argument checks both families make (ints or tuples, the input's rank, an output
that is not empty). 1-D ops run as 2-D with a unit height (``Window.lifted``). The CUDA side
of the same index arithmetic is kernels/window.cuh (conv.cu's col2im, pooling.cu).

>>> w = Window.lifted((3,), (2,), (1,), (1,), (conv_output_size(8, 1, 1, 3, 2, 1),))
>>> w.kernel, w.stride, w.padding, w.out
((1, 3), (1, 2), (0, 1), (1, 4))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy

from gradflow.backend import blas, get_array_module
from gradflow.tensor import Tensor


class Window(NamedTuple):
    """Where the sliding windows of a 2-D conv or pool sit: output pixel (oh, ow) covers the
    input rows ``oh*stride[0] - padding[0] + i*dilation[0]`` (i < kernel[0]), likewise columns.
    ``padding`` is the top/left padding; ``out`` (OH, OW) implies the bottom/right one."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out: tuple[int, int]

    @classmethod
    def lifted(
        cls, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple, out: tuple
    ) -> Window:
        """The Window of per-dim tuples of one or two dims; a 1-D op's gets a unit height
        (kernel, stride, dilation and output 1, no padding), the view its arrays run as."""
        if len(kernel) == 1:
            return cls((1, *kernel), (1, *stride), (0, *padding), (1, *dilation), (1, *out))
        return cls(tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), tuple(out))

    def span(self, axis: int) -> int:
        """Rows (axis 0) or columns (axis 1) of the padded frame that the windows touch.

        >>> Window((3, 3), (2, 2), (1, 1), (1, 1), (3, 3)).span(0)
        7
        """
        k, s, d = self.kernel[axis], self.stride[axis], self.dilation[axis]
        return (self.out[axis] - 1) * s + (k - 1) * d + 1

    def offset_slices(self, i: int, j: int) -> tuple[slice, slice]:
        """The (rows, columns) of the padded frame that kernel offset (i, j) reads, strided."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        rows = slice(i * dh, i * dh + (self.out[0] - 1) * sh + 1, sh)
        cols = slice(j * dw, j * dw + (self.out[1] - 1) * sw + 1, sw)
        return rows, cols

    def offsets(self):
        """The kernel offsets (i, j) in row-major order."""
        return ((i, j) for i in range(self.kernel[0]) for j in range(self.kernel[1]))


# The 3-D windows (conv3d's and pooling3d's) take these as their methods offsets and
# offset_slices; each has kernel, stride, dilation and out per dim (depth, rows, columns).


def offsets_3d(window: Any) -> list:
    """The kernel offsets (a, b, c) of a 3-D window in row-major order."""
    kd, kh, kw = window.kernel
    return [(a, b, c) for a in range(kd) for b in range(kh) for c in range(kw)]


def offset_slices_3d(window: Any, offset: tuple) -> tuple:
    """The (depth, rows, columns) slices of the padded frame that kernel offset reads, strided."""
    return tuple(
        slice(i * d, i * d + (o - 1) * s + 1, s)
        for i, d, s, o in zip(offset, window.dilation, window.stride, window.out)
    )


# ---- padded frames (the CPU route reads every window offset as a strided view of one) -------


def padded_frame(x: Any, window: Window, fill: float) -> Any:
    """x [..., H, W] placed at (top, left) padding in a frame filled with `fill` that is just
    large enough for the windows (x itself, no copy, when no padding is needed)."""
    h, w = x.shape[-2:]
    (top, left), height, width = window.padding, window.span(0), window.span(1)
    if top == 0 and left == 0 and height <= h and width <= w:
        return x
    xp = get_array_module(x)
    frame = xp.full((*x.shape[:-2], height, width), fill, dtype=x.dtype)
    rows, cols = min(h, height - top), min(w, width - left)
    if rows > 0 and cols > 0:
        frame[..., top : top + rows, left : left + cols] = x[..., :rows, :cols]
    return frame


def copy_channels_last(dst: Any, x: Any) -> None:
    """dst[..., c] = x[:, c] for each channel c: x [N, C, ...] written into the channels-last
    dst [N, ..., C]. float32 samples go through OpenBLAS's omatcopy (backend/blas.py): each
    sample [C, pixels] transposed into one buffer, then copied into dst in runs of a row's
    pixels times C (a padded frame's rows are not one matrix). Otherwise one copy per channel
    reads x's planes contiguously; NumPy's own copy of ``x.transpose(0, 2, 3, 1)`` reads across
    the planes for every output value and took 2.5x as long at (16, 64, 32, 32) float32 (3.0
    against 1.2 ms, one thread), and 12 ms at (32, 32, 64, 64), whose 32-value pixel rows make
    each channel's writes 128 bytes apart. Small planes (under 4096 values over the batch)
    take NumPy's one copy, where a copy per channel is mostly call overhead."""
    if x[:, 0].size < 4096:
        dst[...] = numpy.moveaxis(x, 1, -1)
        return
    if x.dtype == numpy.float32 and type(x) is numpy.ndarray and x[0].size >= blas.MIN_VALUES:
        whole = dst[0].flags.c_contiguous  # no padding: straight into dst
        buffer = dst[0] if whole else numpy.empty(dst.shape[1:], dtype=x.dtype)
        if blas.copy_into(buffer, numpy.moveaxis(x[0], 0, -1)):
            if not whole:
                dst[0] = buffer
            for i in range(1, x.shape[0]):
                into = dst[i] if whole else buffer
                blas.copy_into(into, numpy.moveaxis(x[i], 0, -1))
                if not whole:
                    dst[i] = buffer
            return
    for c in range(x.shape[1]):
        dst[..., c] = x[:, c]


def channels_last(x: Any) -> Any:
    """x [N, C, *sizes] as a C-contiguous [N, *sizes, C] (NumPy; copy_channels_last's copy)."""
    out = numpy.empty((x.shape[0], *x.shape[2:], x.shape[1]), dtype=x.dtype)
    copy_channels_last(out, x)
    return out


def channels_first(x: Any) -> Any:
    """The inverse of channels_last: x [N, *sizes, C] as a C-contiguous [N, C, *sizes]
    (OpenBLAS's omatcopy per sample where it takes the layout, backend/blas.py)."""
    n, c = x.shape[0], x.shape[-1]
    flat = blas.ascontiguous(x.reshape(n, -1, c).transpose(0, 2, 1))
    return flat.reshape(n, c, *x.shape[1:-1])


def gradient_frame(shape: tuple, window: Window, input_hw: tuple, dtype: Any, xp: Any) -> Any:
    """Zeros of shape (*shape, rows, columns) that hold every window and the padded input."""
    (top, left), (h, w) = window.padding, input_hw
    height, width = max(window.span(0), top + h), max(window.span(1), left + w)
    return xp.zeros((*shape, height, width), dtype=dtype)


# ---- output sizes ----------------------------------------------------------------------------


def conv_output_size(size: int, before: int, after: int, k: int, s: int, d: int) -> int:
    """A conv's output size along one dim, padded by `before` and `after`.

    >>> conv_output_size(5, 1, 1, 3, 2, 1)
    3
    """
    return (size + before + after - d * (k - 1) - 1) // s + 1


def transposed_output_size(size: int, k: int, s: int, p: int, d: int, extra: int) -> int:
    """conv_transpose2d's output size along one dim (`extra`: its output_padding): the input
    size of the conv whose input gradient it is.

    >>> transposed_output_size(3, 2, 2, 0, 1, 0)
    6
    """
    return (size - 1) * s - 2 * p + d * (k - 1) + extra + 1


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size; in ceil mode the last window must start inside the input
    or its left padding.

    >>> pool_output_size(7, 2, 2, 0, 1, False), pool_output_size(7, 2, 2, 0, 1, True)
    (3, 4)
    """
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


# ---- padding ---------------------------------------------------------------------------------


def _same_padding(kernel: tuple, dilation: tuple, stride: tuple, op: str) -> tuple:
    if any(s != 1 for s in stride):
        raise ValueError(
            f"{op}: padding='same' needs stride 1 (as in PyTorch), got stride {stride}; pass an "
            "explicit padding for a strided convolution"
        )
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)  # extra on the right


def conv_padding(padding: Any, kernel: tuple, dilation: tuple, stride: tuple, op: str) -> tuple:
    """(before, after) padding tuples per spatial dim, from an int, a tuple or 'same'/'valid'.

    >>> conv_padding("same", (4,), (1,), (1,), "conv1d")
    ((1,), (2,))
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * len(kernel), (0,) * len(kernel)
        if padding == "same":
            return _same_padding(kernel, dilation, stride, op)
        raise ValueError(f"{op}: padding {padding!r} is not 'same', 'valid', an int or a tuple")
    pad = int_tuple(padding, len(kernel), "padding", op, 0)
    return pad, pad


# ---- argument checks -------------------------------------------------------------------------


def int_tuple(value: Any, n: int, name: str, op: str, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of n ints, each >= minimum, as an n-tuple; a clear error otherwise.

    >>> int_tuple(2, 2, "stride", "conv2d", 1)
    (2, 2)
    """
    values = (value,) * n if isinstance(value, int | numpy.integer) else value
    ok = isinstance(values, tuple | list) and len(values) == n
    ok = ok and all(isinstance(v, int | numpy.integer) and not isinstance(v, bool) for v in values)
    if not ok or any(v < minimum for v in values):
        raise ValueError(
            f"{op}: argument '{name}' is {value!r}; expected an int >= {minimum} or a tuple of "
            f"{n} such ints"
        )
    return tuple(int(v) for v in values)


def check_input_rank(x: Tensor, dims: int, op: str) -> bool:
    """True when x is batched ((N, C, *spatial)); False for unbatched ((C, *spatial))."""
    if x.ndim not in (dims + 1, dims + 2):
        spatial = ("L",) if dims == 1 else ("H", "W")
        raise ValueError(
            f"{op}: expected a {dims + 2}-D input (N, C, {', '.join(spatial)}) or a {dims + 1}-D "
            f"unbatched input (C, {', '.join(spatial)}), got input of shape {tuple(x.shape)}"
        )
    return x.ndim == dims + 2


def check_output_size(op: str, x: Tensor, out: tuple, detail: str) -> None:
    """A ValueError naming the op when an output spatial size would be <= 0; `detail` says
    what the input is too small for (the kernel, its dilation and padding)."""
    if min(out) <= 0:
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} is too small for {detail}: the output "
            f"would have spatial size {tuple(out)}; use a larger input or more padding"
        )
