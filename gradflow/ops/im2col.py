"""The array pieces of conv1d/conv2d and their transposes: im2col, col2im, and the GEMMs
around them, on plain NumPy/CuPy arrays (no Tensor, no graph).

im2col turns the input windows into the columns of cols [C*kh*kw, N*OH*OW]: a strided view
of the zero-padded input copied once on the CPU (channels-last where that pays:
_channels_last), the im2col_fwd kernel on the GPU (gradflow/kernels/conv.py). The input
gradient is col2im(W^T @ dY): on the CPU one GEMM per kernel offset added into a
channels-last frame (_col2im_by_offset), on the GPU the col2im gather kernel; or, for a
stride-1 conv on the CPU, a conv of dY with the flipped weight (_flipped_conv_window). The
ops, the workspace tiling and the memory contract are gradflow/ops/conv.py.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import numpy
from numpy.lib.stride_tricks import as_strided

from gradflow.backend import blas, get_array_module
from gradflow.backend.routing import uses_kernels
from gradflow.ops.window import Window, copy_channels_last, gradient_frame, padded_frame


def _columns(x: Any, window: Window) -> Any:
    """cols [C*kh*kw, N*OH*OW] of x [N, C, H, W] (see the module docstring)."""
    if uses_kernels(x):
        from gradflow.kernels.conv import im2col_fwd

        return im2col_fwd(
            x, window.kernel, window.out, stride=window.stride, padding=window.padding,
            dilation=window.dilation,
        )  # fmt: skip
    n, c = x.shape[:2]
    frame = padded_frame(x, window, 0)
    s_n, s_c, s_h, s_w = frame.strides
    (kh, kw), (sh, sw) = window.kernel, window.stride
    (dh, dw), (oh, ow) = window.dilation, window.out
    view = as_strided(
        frame, (c, kh, kw, n, oh, ow), (s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw),
        writeable=False,
    )  # fmt: skip
    return view.reshape(c * kh * kw, n * oh * ow)  # the one copy


def _channels_last(x: Any, window: Window, groups: int) -> bool:
    """Whether the CPU builds cols^T [N*OH*OW, kh*kw*C] from a channels-last copy of x
    (_columns_last) rather than cols: when its contiguous runs, kw*C values per window row,
    are over twice as long as cols' (OW per kernel offset), the copy's cost being per run; the
    factor pays for the extra pass that lays x out channels last (runs of 96 against 4 at the
    cnn's second conv), while inputs with few channels keep cols. Groups keep cols, whose rows
    split by group. Timings: benchmarks/results/2026-12-07-code-figures.md."""
    if groups != 1 or uses_kernels(x):
        return False
    (_, kw), (_, sw), (_, dw), (_, ow) = window.kernel, window.stride, window.dilation, window.out
    return x.shape[1] * (kw if dw == 1 else 1) > 2 * (ow if sw == 1 else 1)


def _columns_last(x: Any, window: Window) -> Any:
    """cols^T [N*OH*OW, kh*kw*C] of x [N, C, H, W], columns ordered (i, j, c): a strided view
    of the zero-padded input laid out channels last [N, rows, columns, C], copied once."""
    n, c, h, w = x.shape
    # The zero-padded frame, written channels last in one strided copy: padding first and
    # transposing after costs a second pass over the frame (timed in the file _channels_last
    # names).
    (top, left), height, width = window.padding, window.span(0), window.span(1)
    rows, cols = min(h, height - top), min(w, width - left)
    covered = top == 0 and left == 0 and rows == height and cols == width
    frame = (numpy.empty if covered else numpy.zeros)((n, height, width, c), dtype=x.dtype)
    if rows > 0 and cols > 0:
        copy_channels_last(frame[:, top : top + rows, left : left + cols], x[..., :rows, :cols])
    s_n, s_h, s_w, s_c = frame.strides
    (kh, kw), (sh, sw) = window.kernel, window.stride
    (dh, dw), (oh, ow) = window.dilation, window.out
    view = as_strided(
        frame, (n, oh, ow, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
        writeable=False,
    )  # fmt: skip
    return view.reshape(n * oh * ow, kh * kw * c)  # the copy that counts


# The columns last built inside shared_columns(): [array, (kind, window), columns], or None
# outside such a block. Per thread and asyncio task.
_shared: contextvars.ContextVar[list | None] = contextvars.ContextVar("columns", default=None)


@contextlib.contextmanager
def shared_columns() -> Iterator[None]:
    """Inside the block, asking again for the columns of the same array and window returns
    the ones last built instead of copying them again: conv_transpose2d's backward builds dY's
    once for its input and weight gradients (kh*kw times dY, 8 MiB at (16, 32, 32, 32) with a
    4x4 kernel). One entry, so a conv holds at most one set; callers use it only for untiled
    convs, whose columns fit the workspace budget."""
    token = _shared.set([])
    try:
        yield
    finally:
        _shared.reset(token)


def _built(kind: str, x: Any, window: Window, build: Callable[[Any, Window], Any]) -> Any:
    """build(x, window), or the columns kept by shared_columns() for this array and window
    (kept with the array, so its id is not reused while they are)."""
    slot = _shared.get()
    if slot is None:
        return build(x, window)
    if slot and slot[0] is x and slot[1] == (kind, window):
        return slot[2]
    cols = build(x, window)
    slot[:] = [x, (kind, window), cols]
    return cols


def _col2im(dcols: Any, window: Window, x_shape: tuple) -> Any:
    """The adjoint of _columns on the GPU: dx [N, C, H, W] from dcols [C*kh*kw, N*OH*OW]."""
    from gradflow.kernels.conv import col2im

    return col2im(
        dcols, x_shape, window.kernel, window.out, stride=window.stride, padding=window.padding,
        dilation=window.dilation,
    )  # fmt: skip


def _col2im_by_offset(g2: Any, weight: Any, window: Window, groups: int, x_shape: tuple) -> Any:
    """col2im(W^T @ dY) on the CPU, with g2 = dY as [O, N*OH*OW]: per group and kernel offset
    one GEMM, dY^T [N*OH*OW, O/G] @ W[:, :, i, j] [O/G, C/G], added to its strided window of a
    channels-last frame [N, rows, columns, C]. Channels last, each add's inner loop runs over
    OW*C values of a contiguous block instead of OW (4 at the cnn's second conv), so per-run
    overhead no longer dominates the adds. One offset's product at a time, in one buffer: all
    kh*kw at once held kh*kw times the input (19 MiB of a 31 MiB peak in a conv+BN+ReLU+pool
    block's backward at (16, 32, 32, 32)).
    Timings: benchmarks/results/2026-12-07-code-figures.md."""
    n, c, h, w = x_shape
    o, c_per_group, kh, kw = weight.shape
    oh, ow = window.out
    w_by_offset = numpy.ascontiguousarray(
        weight.reshape(groups, o // groups, c_per_group, kh * kw).transpose(3, 0, 1, 2)
    )  # [kh*kw, G, O/G, C/G]: a copy, so each GEMM reads a BLAS layout
    dy_t = _by_group(g2, groups).transpose(0, 2, 1)  # [G, N*OH*OW, O/G], a view
    product = numpy.empty((groups, n * oh * ow, c_per_group), dtype=g2.dtype)
    rows, cols = gradient_frame((), window, (h, w), g2.dtype, numpy).shape
    frame = numpy.zeros((n, rows, cols, groups, c_per_group), dtype=g2.dtype)
    for k, (i, j) in enumerate(window.offsets()):
        numpy.matmul(dy_t, w_by_offset[k], out=product)
        rows_k, cols_k = window.offset_slices(i, j)
        block = product.reshape(groups, n, oh, ow, c_per_group)
        frame[:, rows_k, cols_k] += block.transpose(1, 2, 3, 0, 4)
    top, left = window.padding
    dx = frame[:, top : top + h, left : left + w].reshape(n, h, w, c)
    return blas.ascontiguous(dx.transpose(0, 3, 1, 2))


def _group_slices(groups: int, channels: int, outputs: int) -> list[tuple[slice, slice]]:
    """(input channels, output channels) of each group. The CPU runs a grouped conv's forward
    and weight gradient group by group: the columns of all groups at once held kh*kw times the
    input (44 MiB at 4 groups of (16, 64, 32, 32), torch's peak 16), and each group's columns
    may take the channels-last layout."""
    c, o = channels // groups, outputs // groups
    return [(slice(g * c, (g + 1) * c), slice(g * o, (g + 1) * o)) for g in range(groups)]


def _grouped(a: Any, b: Any) -> Any:
    """(G, M, K) @ (G, K, L): one GEMM per group (a plain 2-D GEMM when G is 1)."""
    return (a[0] @ b[0])[None] if a.shape[0] == 1 else a @ b


def _channel_major(y: Any) -> Any:
    """y [N, O, OH, OW] as [O, N*OH*OW] (a copy unless y already has that layout)."""
    n, o, oh, ow = y.shape
    return y.transpose(1, 0, 2, 3).reshape(o, n * oh * ow)


def _by_group(a: Any, groups: int) -> Any:
    """A 2-D [G*M, K] array as [G, M, K] (explicit sizes: K may be 0)."""
    return a.reshape(groups, a.shape[0] // groups, a.shape[1])


def _forward_gemm(x: Any, weight: Any, bias: Any, window: Window, groups: int) -> Any:
    """conv2d of x [N, C, H, W] with weight [O, C/groups, kh, kw]: [N, O, OH, OW], with the
    columns of the whole of x at once (_conv_forward tiles larger inputs); on the CPU, with
    groups, one group's columns at a time (see _group_slices)."""
    n, o = x.shape[0], weight.shape[0]
    if groups > 1 and not uses_kernels(x):
        out = numpy.empty((n, o, *window.out), dtype=x.dtype)
        for cs, os in _group_slices(groups, x.shape[1], o):
            part_bias = None if bias is None else bias[os]
            out[:, os] = _forward_gemm(x[:, cs], weight[os], part_bias, window, 1)
        return out
    if _channels_last(x, window, groups):
        cols_t = _built("last", x, window, _columns_last)
        out = cols_t @ weight.transpose(0, 2, 3, 1).reshape(o, -1).T
        if bias is not None:
            out += bias
        return blas.ascontiguous(out.reshape(n, *window.out, o).transpose(0, 3, 1, 2))
    cols = _built("cols", x, window, _columns)
    out = _grouped(_by_group(weight.reshape(o, -1), groups), _by_group(cols, groups))
    out = out.reshape(o, n, *window.out)
    if bias is not None:
        out += bias[:, None, None, None]
    return get_array_module(out).ascontiguousarray(out.transpose(1, 0, 2, 3))


def _weight_grad_gemm(g2: Any, x: Any, window: Window, groups: int, w_shape: tuple) -> Any:
    """dW [O, C/groups, kh, kw] = dY @ cols^T, with g2 = dY as [O, N*OH*OW], the columns of
    the whole of x at once (_conv_weight_grad tiles larger inputs); on the CPU, with groups,
    one group's columns at a time."""
    if groups > 1 and not uses_kernels(x):
        dw = numpy.empty(w_shape, dtype=x.dtype)
        for cs, os in _group_slices(groups, x.shape[1], w_shape[0]):
            dw[os] = _weight_grad_gemm(g2[os], x[:, cs], window, 1, dw[os].shape)
        return dw
    if _channels_last(x, window, groups):
        o, c, kh, kw = w_shape
        # dY [O, L] @ cols^T [L, kh*kw*C]: both operands as BLAS lays them (NN) ran 8-9%
        # faster than the transposed orientation cols @ dY^T (3.3 against 3.6 ms at
        # (4096, 512, 64), 15.0 against 16.5 at (16384, 576, 64), one thread)
        dw = g2 @ _built("last", x, window, _columns_last)  # [O, kh*kw*C]
        return numpy.ascontiguousarray(dw.reshape(o, kh, kw, c).transpose(0, 3, 1, 2))
    cols = _built("cols", x, window, _columns)
    # cols @ dY^T, transposed after: OpenBLAS ran this orientation faster than dY @ cols^T
    # (see benchmarks/results/2026-12-07-code-figures.md).
    dw_t = _grouped(_by_group(cols, groups), _by_group(g2, groups).transpose(0, 2, 1))
    return dw_t.transpose(0, 2, 1).reshape(w_shape)


def _input_grad_gemm(g2: Any, weight: Any, window: Window, groups: int, x_shape: tuple) -> Any:
    """dX [N, C, H, W] = col2im(W^T @ dY), g2 = dY as [O, N*OH*OW], for the whole of dY at
    once (_conv_input_grad tiles larger ones)."""
    if not uses_kernels(g2):
        return _col2im_by_offset(g2, weight, window, groups, x_shape)
    w3 = _by_group(weight.reshape(weight.shape[0], -1), groups)
    dcols = _grouped(w3.transpose(0, 2, 1), _by_group(g2, groups))
    groups_, rows, length = dcols.shape
    return _col2im(dcols.reshape(groups_ * rows, length), window, x_shape)


def _flipped_conv_window(
    window: Window, w_shape: tuple, x_shape: tuple, more_outputs: bool = False
) -> Window | None:
    """For a stride-1 conv, dX is dY convolved with the weight flipped in space and transposed
    in channels, padded by dilation*(k-1) - padding: one im2col of dY and one GEMM (both cores)
    instead of a GEMM writing kh*kw planes per input channel and kh*kw passes adding them
    (single-threaded, memory-bound). Through im2col it pays when dY has no more channels than
    dX, and loses when O is larger, e.g. a 1-channel input (dY's columns are then the larger);
    more_outputs=True gives the window for any O (conv.py's caller takes it where the conv of
    dY runs without columns, conv_offsets.py). None when the rewrite does not apply or does not
    pay. Timings: benchmarks/results/2026-12-07-code-figures.md."""
    if window.stride != (1, 1) or (w_shape[0] > x_shape[1] and not more_outputs):
        return None
    pads = tuple(d * (k - 1) - p for k, d, p in zip(window.kernel, window.dilation, window.padding))
    if min(pads) < 0:
        return None
    return Window(window.kernel, (1, 1), pads, window.dilation, tuple(x_shape[2:]))
