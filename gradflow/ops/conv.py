"""Convolutions: conv1d, conv2d and conv_transpose2d, one graph node each (bias included).

PyTorch's semantics and argument names (torch.nn.functional). How they are computed:

- im2col: the input windows become the columns of ``cols [C*kh*kw, N*OH*OW]`` (rows (c, i,
  j), columns (n, oh, ow)): a strided view of the zero-padded input copied once on the CPU, the
  ``im2col_fwd`` kernel on the GPU (gradflow/kernels/conv.py).
- forward: ``out = W [O, C*kh*kw] @ cols``, one GEMM (batched over groups), + bias.
- backward: ``dW = dY [O, N*OH*OW] @ cols^T`` (cols rebuilt from the saved input) and
  ``dX = col2im(W^T @ dY)``: on the CPU one GEMM per kernel offset, each added to its strided
  window of a channels-last frame (_col2im_by_offset); on the GPU the ``col2im`` gather
  kernel (no atomics, deterministic). On the CPU a stride-1 conv with no more output than
  input channels takes dX as a conv of dY with the flipped weight instead (cheaper there: see
  _flipped_conv_window).
- conv_transpose2d is the same three pieces in another order: its forward is conv2d's input
  gradient, its input gradient is conv2d's forward, its weight gradient conv2d's with the
  roles of input and output swapped.

The window geometry (output sizes, padding, the padded frames) is gradflow/ops/window.py.

Memory: each op keeps its input (a reference, only when the weight needs a gradient) and its
weight (only when the input needs one); the columns are rebuilt in backward, never kept (they
are kh*kw times the input). Columns larger than the workspace budget (set_workspace_budget,
256 MiB by default) are built and used in tiles, groups of samples or bands of output rows, so
a large conv's peak memory is the budget plus a few copies of its input and output (see "the
workspace" below); a MemoryError inside a conv is re-raised naming the op, its shapes and the
workspace bytes.
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import numpy
from numpy.lib.stride_tricks import as_strided

from gradflow import dtypes
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.backend.routing import uses_kernels
from gradflow.ops._util import float_input
from gradflow.ops.window import (
    Window,
    check_input_rank,
    check_output_size,
    conv_output_size,
    conv_padding,
    gradient_frame,
    int_tuple,
    padded_frame,
    transposed_output_size,
)
from gradflow.tensor import Tensor

# ---- the array pieces: im2col, col2im, and the GEMMs around them ----------------------------


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
        frame[:, top : top + rows, left : left + cols] = x[..., :rows, :cols].transpose(0, 2, 3, 1)
    s_n, s_h, s_w, s_c = frame.strides
    (kh, kw), (sh, sw) = window.kernel, window.stride
    (dh, dw), (oh, ow) = window.dilation, window.out
    view = as_strided(
        frame, (n, oh, ow, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
        writeable=False,
    )  # fmt: skip
    return view.reshape(n * oh * ow, kh * kw * c)  # the copy that counts


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
    overhead no longer dominates the adds.
    Timings: benchmarks/results/2026-12-07-code-figures.md."""
    n, c, h, w = x_shape
    o, c_per_group, kh, kw = weight.shape
    oh, ow = window.out
    w_by_offset = numpy.ascontiguousarray(
        weight.reshape(groups, o // groups, c_per_group, kh * kw).transpose(0, 3, 1, 2)
    )  # [G, kh*kw, O/G, C/G]: a copy, so each GEMM reads a BLAS layout
    dy_t = _by_group(g2, groups).transpose(0, 2, 1)[:, None]  # [G, 1, N*OH*OW, O/G], a view
    per_offset = dy_t @ w_by_offset  # [G, kh*kw, N*OH*OW, C/G]
    rows, cols = gradient_frame((), window, (h, w), g2.dtype, numpy).shape
    frame = numpy.zeros((n, rows, cols, groups, c_per_group), dtype=g2.dtype)
    for k, (i, j) in enumerate(window.offsets()):
        rows_k, cols_k = window.offset_slices(i, j)
        block = per_offset[:, k].reshape(groups, n, oh, ow, c_per_group)
        frame[:, rows_k, cols_k] += block.transpose(1, 2, 3, 0, 4)
    top, left = window.padding
    dx = frame[:, top : top + h, left : left + w].reshape(n, h, w, c)
    return numpy.ascontiguousarray(dx.transpose(0, 3, 1, 2))


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
    columns of the whole of x at once (_conv_forward tiles larger inputs)."""
    n, o = x.shape[0], weight.shape[0]
    if _channels_last(x, window, groups):
        out = _columns_last(x, window) @ weight.transpose(0, 2, 3, 1).reshape(o, -1).T
        if bias is not None:
            out += bias
        return numpy.ascontiguousarray(out.reshape(n, *window.out, o).transpose(0, 3, 1, 2))
    cols = _columns(x, window)
    out = _grouped(_by_group(weight.reshape(o, -1), groups), _by_group(cols, groups))
    out = out.reshape(o, n, *window.out)
    if bias is not None:
        out += bias[:, None, None, None]
    return get_array_module(out).ascontiguousarray(out.transpose(1, 0, 2, 3))


def _weight_grad_gemm(g2: Any, x: Any, window: Window, groups: int, w_shape: tuple) -> Any:
    """dW [O, C/groups, kh, kw] = dY @ cols^T, with g2 = dY as [O, N*OH*OW], the columns of
    the whole of x at once (_conv_weight_grad tiles larger inputs)."""
    if _channels_last(x, window, groups):
        o, c, kh, kw = w_shape
        dw_t = _columns_last(x, window).T @ g2.T  # [kh*kw*C, O]; both operands are views
        return numpy.ascontiguousarray(dw_t.reshape(kh, kw, c, o).transpose(3, 2, 0, 1))
    cols = _columns(x, window)
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


def _flipped_conv_window(window: Window, w_shape: tuple, x_shape: tuple) -> Window | None:
    """For a stride-1 conv, dX is dY convolved with the weight flipped in space and transposed
    in channels, padded by dilation*(k-1) - padding: one im2col of dY and one GEMM (both cores)
    instead of a GEMM writing kh*kw planes per input channel and kh*kw passes adding them
    (single-threaded, memory-bound). It pays when dY has no more channels than dX, and loses
    when O is larger, e.g. a 1-channel input. None when the rewrite does not apply or does not
    pay. Timings: benchmarks/results/2026-12-07-code-figures.md."""
    if window.stride != (1, 1) or w_shape[0] > x_shape[1]:
        return None
    pads = tuple(d * (k - 1) - p for k, d, p in zip(window.kernel, window.dilation, window.padding))
    if min(pads) < 0:
        return None
    return Window(window.kernel, (1, 1), pads, window.dilation, tuple(x_shape[2:]))


# ---- the workspace: the columns of a large conv, tiled to a budget ---------------------------
#
# The columns (or, for the input gradient, W^T @ dY on the GPU and the per-offset products on
# the CPU) hold channels*kh*kw values per output pixel: kh*kw times the input, 1.6 GB for a
# 7x7 conv of (8, 64, 128, 128) float32. A conv whose columns fit the workspace budget is one
# piece, computed as always; a larger one runs in tiles whose columns fit: groups of samples,
# or, when one sample's do not fit, bands of output rows of one sample (each reading the input
# rows under it). Outputs and input gradients are written tile by tile into the result (the
# same products as one piece: bit for bit wherever BLAS sums a row the same way at any size),
# the weight gradient is the sum of the tiles' in tile order, and row bands of the input
# gradient add up where they overlap. Peak memory is then the budget plus a few copies of the
# input and output (the padded input, the output gradient laid out channel-major).

DEFAULT_WORKSPACE_BUDGET = 256 * 2**20  # bytes
_workspace_budget = DEFAULT_WORKSPACE_BUDGET


def set_workspace_budget(nbytes: int | None) -> int:
    """Set the most bytes of im2col workspace (the columns) one conv allocates at a time and
    return the previous budget; ``None`` restores the default, 256 MiB. A conv whose columns
    need more runs in tiles (groups of samples, or bands of output rows) that fit; the
    results are the same up to the order the weight gradient's tiles add up in. Applies to
    conv1d, conv2d and conv_transpose2d, forward and backward, on cpu and cuda.

    >>> previous = set_workspace_budget(64 * 2**20)
    >>> set_workspace_budget(previous) == 64 * 2**20
    True
    """
    global _workspace_budget
    if nbytes is None:
        nbytes = DEFAULT_WORKSPACE_BUDGET
    if not isinstance(nbytes, int | numpy.integer) or isinstance(nbytes, bool) or nbytes < 1:
        raise ValueError(
            f"set_workspace_budget: expected a positive number of bytes (or None for the "
            f"default, {DEFAULT_WORKSPACE_BUDGET}), got {nbytes!r}"
        )
    previous, _workspace_budget = _workspace_budget, int(nbytes)
    return previous


def get_workspace_budget() -> int:
    """The bytes of im2col workspace one conv allocates at most (see set_workspace_budget)."""
    return _workspace_budget


class _Tile(NamedTuple):
    """A part of a conv whose columns fit the budget: the samples `batch` and output rows
    `rows`, which read the input rows `band`; `window` is the part's geometry (its own top
    padding and output rows). `whole_rows`: all output rows (band: all input rows)."""

    batch: slice
    rows: slice
    band: slice
    window: Window
    whole_rows: bool


def _row_bytes(window: Window, channels: int, itemsize: int) -> int:
    """Bytes of the columns of one output row of one sample: channels*kh*kw per pixel."""
    kh, kw = window.kernel
    return channels * kh * kw * window.out[1] * itemsize


def _workspace_bytes(x_shape: tuple, window: Window, itemsize: int) -> int:
    """Bytes of the columns of a conv of an input of x_shape [N, C, H, W], in one piece."""
    return x_shape[0] * window.out[0] * _row_bytes(window, x_shape[1], itemsize)


def _tiles(op: str, x_shape: tuple, window: Window, dtype: Any) -> list[_Tile] | None:
    """The tiles of a conv of an input of x_shape [N, C, H, W]; None when its columns fit the
    budget in one piece. A MemoryError naming the op and the budget when one output row's do
    not."""
    n, c, h, _ = x_shape
    itemsize = numpy.dtype(dtype).itemsize
    budget, per_row, oh = _workspace_budget, _row_bytes(window, c, itemsize), window.out[0]
    if n * oh * per_row <= budget:
        return None
    if oh * per_row <= budget:  # groups of whole samples
        step = budget // (oh * per_row)
        rows, band = slice(0, oh), slice(0, h)
        return [_Tile(slice(i, min(i + step, n)), rows, band, window, True)
                for i in range(0, n, step)]  # fmt: skip
    step = budget // per_row  # bands of output rows, one sample at a time
    if step == 0:
        raise MemoryError(
            f"{op}: its smallest im2col tile, one row of {window.out[1]} window positions over "
            f"{c} channels with a {window.kernel[0]}x{window.kernel[1]} kernel "
            f"({numpy.dtype(dtype)}), needs {per_row} bytes, over the workspace budget of "
            f"{budget} bytes; raise the budget with gradflow.ops.conv.set_workspace_budget(nbytes)"
        )
    return [_row_tile(i, r0, min(r0 + step, oh), window, h)
            for i in range(n) for r0 in range(0, oh, step)]  # fmt: skip


def _row_tile(i: int, r0: int, r1: int, window: Window, h: int) -> _Tile:
    """Output rows [r0, r1) of sample i: the input rows they read and their own window."""
    (kh, _), (sh, _), (top, left) = window.kernel, window.stride, window.padding
    start = r0 * sh - top  # the first input row read (negative: in the top padding)
    end = (r1 - 1) * sh + (kh - 1) * window.dilation[0] - top + 1
    first = min(max(start, 0), h)
    last = min(max(end, first), h)
    local = window._replace(padding=(max(first - start, 0), left), out=(r1 - r0, window.out[1]))
    return _Tile(slice(i, i + 1), slice(r0, r1), slice(first, last), local, False)


def _conv_forward(
    x: Any, weight: Any, bias: Any, window: Window, groups: int, op: str = "conv2d"
) -> Any:
    """conv2d of x [N, C, H, W] with weight [O, C/groups, kh, kw]: [N, O, OH, OW], tiled
    when its columns exceed the workspace budget."""
    tiles = _tiles(op, x.shape, window, x.dtype)
    if tiles is None:
        return _forward_gemm(x, weight, bias, window, groups)
    out = get_array_module(x).empty((x.shape[0], weight.shape[0], *window.out), dtype=x.dtype)
    for t in tiles:
        part = _forward_gemm(x[t.batch, :, t.band], weight, bias, t.window, groups)
        out[t.batch, :, t.rows] = part
    return out


def _conv_weight_grad(
    g: Any, x: Any, window: Window, groups: int, w_shape: tuple, op: str = "conv2d",
    g2: Any = None,
) -> Any:  # fmt: skip
    """dW [O, C/groups, kh, kw] of a conv of x [N, C, H, W] with output gradient g
    [N, O, OH, OW] (g2: g as [O, N*OH*OW] where the caller has it), tiled when the columns
    exceed the workspace budget: the tiles' products summed in tile order."""
    tiles = _tiles(op, x.shape, window, x.dtype)
    if tiles is None:
        g2 = _channel_major(g) if g2 is None else g2
        return _weight_grad_gemm(g2, x, window, groups, w_shape)
    dw = None
    for t in tiles:
        part = _weight_grad_gemm(_channel_major(g[t.batch, :, t.rows]), x[t.batch, :, t.band],
                                 t.window, groups, w_shape)  # fmt: skip
        if dw is None:
            dw = part
        else:
            dw += part
    return dw


def _conv_input_grad(
    g: Any, weight: Any, window: Window, groups: int, x_shape: tuple, g2: Any = None,
    op: str = "conv2d",
) -> Any:  # fmt: skip
    """dX [N, C, H, W] of a conv with output gradient g [N, O, OH, OW]: col2im(W^T @ dY), or
    on the CPU, where it is cheaper, a conv of dY (see _flipped_conv_window); tiled when the
    workspace (C*kh*kw values per output pixel) exceeds the budget. g2 is dY as
    [O, N*OH*OW] when the caller already has it."""
    flipped = None if uses_kernels(g) else _flipped_conv_window(window, weight.shape, x_shape)
    if flipped is not None:
        o, c_per_group, kh, kw = weight.shape
        w5 = weight.reshape(groups, o // groups, c_per_group, kh, kw)[..., ::-1, ::-1]
        w_flipped = w5.transpose(0, 2, 1, 3, 4).reshape(groups * c_per_group, o // groups, kh, kw)
        return _conv_forward(g, w_flipped, None, flipped, groups, op)
    tiles = _tiles(op, x_shape, window, g.dtype)
    if tiles is None:
        g2 = _channel_major(g) if g2 is None else g2
        return _input_grad_gemm(g2, weight, window, groups, x_shape)
    c, w = x_shape[1], x_shape[3]
    xp = get_array_module(g)
    dx = (xp.empty if all(t.whole_rows for t in tiles) else xp.zeros)(x_shape, dtype=g.dtype)
    for t in tiles:
        shape = (t.batch.stop - t.batch.start, c, t.band.stop - t.band.start, w)
        part = _input_grad_gemm(_channel_major(g[t.batch, :, t.rows]), weight, t.window, groups,
                                shape)  # fmt: skip
        if t.whole_rows:
            dx[t.batch] = part
        else:  # bands of one sample overlap where their windows do
            dx[t.batch, :, t.band] += part
    return dx


@contextlib.contextmanager
def _memory_errors_named(node: Any, phase: str, x_shape: tuple, window: Window, dtype: Any):
    """A MemoryError inside the block, re-raised naming the op, the phase, the shapes and the
    im2col workspace (x_shape, window: the conv whose columns the phase builds)."""
    try:
        yield
    except MemoryError as error:
        op = node.op_name
        if str(error).startswith(f"{op}:"):  # _tiles' own, already naming all that
            raise
        s, budget = node.shapes, _workspace_budget
        whole = _workspace_bytes(x_shape, window, numpy.dtype(dtype).itemsize)
        how = "at once" if whole <= budget else f"in tiles of at most the budget, {budget} bytes"
        raise MemoryError(
            f"{op} {phase}: out of memory with input of shape {s.x}, weight of shape {s.w} "
            f"and output of shape {s.out} ({numpy.dtype(dtype)}); its im2col workspace is "
            f"{whole} bytes ({whole / 2**30:.2f} GiB) for the whole batch, allocated {how} "
            f"(see gradflow.ops.conv.set_workspace_budget) [{type(error).__name__}: {error}]. "
            "Use a smaller batch or a lower workspace budget"
        ) from error


# ---- the ops -------------------------------------------------------------------------------


class _Shapes(NamedTuple):
    """The caller's shapes and the 4-D ones the arrays are viewed as (unit dims added)."""

    x: tuple
    x4: tuple
    w: tuple
    w4: tuple
    out: tuple
    out4: tuple


class Conv2dFunction(Function):
    """conv2d (and conv1d, which passes op_name="conv1d"; unbatched inputs: viewed with unit
    dims) as one node."""

    op_name = "conv2d"
    groups: int
    shapes: _Shapes
    window: Window

    def forward(self, x, weight, bias=None):
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        s, op = self.shapes, self.op_name
        with _memory_errors_named(self, "forward", s.x4, self.window, x.dtype):
            out = _conv_forward(x.reshape(s.x4), weight.reshape(s.w4), bias, self.window,
                                self.groups, op)  # fmt: skip
        return out.reshape(s.out)

    def backward(self, g):
        x, weight = self.saved_arrays
        s, need, op, window = self.shapes, self.needs_input_grad, self.op_name, self.window
        g4 = g.reshape(s.out4)
        dx = dw = g2 = None
        with _memory_errors_named(self, "backward", s.x4, window, g.dtype):
            if need[1]:
                x4 = x.reshape(s.x4)
                if _tiles(op, s.x4, window, x.dtype) is None:  # dY channel-major, shared
                    g2 = _channel_major(g4)
                dw = _conv_weight_grad(g4, x4, window, self.groups, s.w4, op, g2).reshape(s.w)
            if need[0]:
                dx = _conv_input_grad(g4, weight.reshape(s.w4), window, self.groups, s.x4, g2,
                                      op)  # fmt: skip
                dx = dx.reshape(s.x)
        if len(need) == 2:
            return dx, dw
        return dx, dw, g4.sum(axis=(0, 2, 3)) if need[2] else None


class ConvTranspose2dFunction(Function):
    """conv_transpose2d as one node: conv2d's input gradient, run forward."""

    op_name = "conv_transpose2d"
    groups: int
    shapes: _Shapes
    window: Window

    def forward(self, x, weight, bias=None):
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        s, op = self.shapes, self.op_name
        with _memory_errors_named(self, "forward", s.out4, self.window, x.dtype):
            out = _conv_input_grad(x.reshape(s.x4), weight.reshape(s.w4), self.window,
                                   self.groups, s.out4, op=op)  # fmt: skip
        if bias is not None:
            out += bias[:, None, None]
        return out.reshape(s.out)

    def backward(self, g):
        x, weight = self.saved_arrays
        s, need, op = self.shapes, self.needs_input_grad, self.op_name
        g4 = g.reshape(s.out4)
        dx = dw = None
        with _memory_errors_named(self, "backward", s.out4, self.window, g.dtype):
            if need[0]:
                dx = _conv_forward(g4, weight.reshape(s.w4), None, self.window, self.groups, op)
                dx = dx.reshape(s.x)
            if need[1]:
                # conv2d's weight gradient with the roles swapped: g4 is the conv's input and
                # x its output gradient.
                dw = _conv_weight_grad(x.reshape(s.x4), g4, self.window, self.groups, s.w4, op)
                dw = dw.reshape(s.w)
        if len(need) == 2:
            return dx, dw
        return dx, dw, g4.sum(axis=(0, 2, 3)) if need[2] else None


# ---- arguments -----------------------------------------------------------------------------


def _check_conv_weight(
    op: str, x: Tensor, weight: Any, bias: Any, groups: Any, dims: int, transposed: bool
) -> None:
    weight = float_input(weight, op, "weight")
    if weight.ndim != dims + 2:
        layout = (
            "(in_channels, out_channels/groups"
            if transposed
            else "(out_channels, in_channels/groups"
        )
        raise ValueError(
            f"{op}: weight of shape {tuple(weight.shape)} should be {dims + 2}-D {layout}, "
            f"{', '.join(['kernel_size'] * dims)})"
        )
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: argument 'groups' is {groups!r}; expected a positive int")
    if 0 in weight.shape[2:]:  # PyTorch: RuntimeError, "kernel size should be greater than zero"
        raise RuntimeError(
            f"{op}: weight of shape {tuple(weight.shape)} has an empty kernel (kernel size "
            f"{tuple(weight.shape[2:])}); each kernel dim must be >= 1"
        )
    if weight.shape[1 if transposed else 0] == 0:  # PyTorch: RuntimeError too
        dim = 1 if transposed else 0
        raise RuntimeError(
            f"{op}: weight of shape {tuple(weight.shape)} has no output channels (dim {dim} is "
            "0); it needs at least one"
        )
    channels = x.shape[-dims - 1]
    if transposed:  # weight (C_in, C_out / groups, ...)
        divides, expected, what = channels % groups == 0, weight.shape[0], "weight.shape[0]"
        out_total = weight.shape[1] * groups
    else:  # weight (C_out, C_in / groups, ...)
        divides = channels % groups == 0 and weight.shape[0] % groups == 0
        expected, what = weight.shape[1] * groups, "weight.shape[1] * groups"
        out_total = weight.shape[0]
    if not divides:
        raise ValueError(
            f"{op}: groups={groups} must divide the input channels ({channels}, input of shape "
            f"{tuple(x.shape)}) and the output channels ({out_total}, weight of shape "
            f"{tuple(weight.shape)})"
        )
    if channels != expected:
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} has {channels} channels, but weight of shape "
            f"{tuple(weight.shape)} with groups={groups} expects {expected} ({what})"
        )
    if bias is not None:
        bias = float_input(bias, op, "bias")
        if tuple(bias.shape) != (out_total,):
            raise ValueError(
                f"{op}: bias of shape {tuple(bias.shape)} doesn't fit weight of shape "
                f"{tuple(weight.shape)}: expected ({out_total},), one per output channel"
            )


def _shapes(x: Tensor, weight: Tensor, batched: bool, dims: int, out_c: int, out_hw: tuple):
    """_Shapes for an op whose 4-D view adds a batch dim (unbatched) and a height (1-D)."""
    x4 = tuple(x.shape) if batched else (1, *x.shape)
    w4 = tuple(weight.shape)
    if dims == 1:
        x4, w4 = (*x4[:2], 1, x4[2]), (*w4[:2], 1, w4[2])
    out4 = (x4[0], out_c, *out_hw)
    out = out4 if batched else out4[1:]
    if dims == 1:
        out = (*out[:-2], out4[3])
    return _Shapes(tuple(x.shape), x4, tuple(weight.shape), w4, out, out4)


def _apply(function: type, inputs: tuple[Tensor, ...], **params: Any) -> Tensor:
    """``function.apply``; for float16 on cuda, computed in float32 and cast back (the casts
    are differentiable): the conv kernels have no half versions yet, and the CPU route's
    strided views are NumPy's."""
    if inputs[0].dtype == dtypes.float16 and inputs[0].device.type == "cuda":
        out = function.apply(*(t.to(dtypes.float32) for t in inputs), **params)
        return out.to(dtypes.float16)
    return function.apply(*inputs, **params)


def _conv(op, x, weight, bias, stride, padding, dilation, groups, dims) -> Tensor:
    x = float_input(x, op)
    batched = check_input_rank(x, dims, op)
    _check_conv_weight(op, x, weight, bias, groups, dims, transposed=False)
    kernel = tuple(weight.shape[2:])
    stride = int_tuple(stride, dims, "stride", op, 1)
    dilation = int_tuple(dilation, dims, "dilation", op, 1)
    before, after = conv_padding(padding, kernel, dilation, stride, op)
    spatial = x.shape[-dims:]
    out_hw = tuple(map(conv_output_size, spatial, before, after, kernel, stride, dilation))
    check_output_size(
        op, x, out_hw,
        f"weight of shape {tuple(weight.shape)} (dilation {dilation}, padding {before}+{after})",
    )  # fmt: skip
    window = Window.lifted(kernel, stride, before, dilation, out_hw)
    shapes = _shapes(x, weight, batched, dims, weight.shape[0], window.out)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return _apply(Conv2dFunction, inputs, window=window, groups=groups, shapes=shapes, op_name=op)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation) over (N, C, H, W) or unbatched (C, H, W) inputs.

    ``out[n, o, y, x] = bias[o] + sum_{c, i, j} weight[o, c, i, j] *
    input_padded[n, g*C/groups + c, y*sh + i*dh, x*sw + j*dw]`` where g is the group of o.

    Args:
        input: (N, C_in, H, W) or (C_in, H, W).
        weight: (C_out, C_in / groups, kH, kW).
        bias: (C_out,) or None.
        stride, dilation: an int or a pair (rows, columns), each >= 1.
        padding: an int or a pair of zero padding on both sides, or "valid" (none) or "same"
            (output size = input size; stride must be 1; an odd total pads one more at the
            bottom/right, as PyTorch does).
        groups: input and output channels split into this many independent groups.

    Returns:
        (N, C_out, H_out, W_out) (no N for an unbatched input), with
        ``H_out = (H + 2*padding - dilation*(kH - 1) - 1) // stride + 1``.

    >>> import gradflow
    >>> y = conv2d(gradflow.ones(1, 1, 4, 4), gradflow.ones(2, 1, 3, 3))
    >>> y.shape
    gradflow.Size([1, 2, 2, 2])
    >>> y[0, 0].tolist()
    [[9.0, 9.0], [9.0, 9.0]]
    """
    return _conv("conv2d", input, weight, bias, stride, padding, dilation, groups, dims=2)


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] | str = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-D convolution over (N, C_in, L) or unbatched (C_in, L) inputs; weight
    (C_out, C_in / groups, k). Arguments as :func:`conv2d` (ints or 1-tuples); computed by the
    2-D code on a unit-height view, still one graph node.

    >>> import gradflow
    >>> y = conv1d(gradflow.ones(1, 2, 5), gradflow.ones(3, 2, 3), padding="same")
    >>> y.shape
    gradflow.Size([1, 3, 5])
    >>> y[0, 0].tolist()
    [4.0, 6.0, 6.0, 6.0, 4.0]
    """
    return _conv("conv1d", input, weight, bias, stride, padding, dilation, groups, dims=1)


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> Tensor:
    """Transposed 2-D convolution (the gradient of conv2d with respect to its input), used to
    upsample: each input pixel scatters ``weight``-weighted copies into the output.

    Args:
        input: (N, C_in, H, W) or unbatched (C_in, H, W).
        weight: (C_in, C_out / groups, kH, kW) (note: in_channels first, as in PyTorch).
        bias: (C_out,) or None.
        stride, padding, dilation: those of the conv2d whose input gradient this is (ints or
            pairs); padding crops that many rows/columns from each side of the full output.
        output_padding: extra rows/columns added at the bottom/right (to pick one of the sizes
            a strided conv2d maps to the same output size); must be smaller than stride or
            dilation.
        groups: independent channel groups.

    Returns:
        (N, C_out, H_out, W_out), ``H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) +
        output_padding + 1``.

    >>> import gradflow
    >>> conv_transpose2d(gradflow.ones(1, 2, 3, 3), gradflow.ones(2, 4, 2, 2), stride=2).shape
    gradflow.Size([1, 4, 6, 6])
    """
    return _conv_transpose("conv_transpose2d", input, weight, bias, stride, padding,
                           output_padding, groups, dilation, dims=2)  # fmt: skip


def _conv_transpose(op, input, weight, bias, stride, padding, output_padding, groups, dilation,
                    dims) -> Tensor:  # fmt: skip
    """conv_transpose1d/2d: checks, geometry, and one ConvTranspose2dFunction node (1-D runs
    on a unit-height view)."""
    x = float_input(input, op)
    batched = check_input_rank(x, dims, op)
    _check_conv_weight(op, x, weight, bias, groups, dims, transposed=True)
    kernel = tuple(weight.shape[2:])
    stride = int_tuple(stride, dims, "stride", op, 1)
    dilation = int_tuple(dilation, dims, "dilation", op, 1)
    if isinstance(padding, str):
        raise ValueError(
            f"{op}: padding {padding!r} is not supported; pass an int or a tuple of {dims}"
        )
    padding = int_tuple(padding, dims, "padding", op, 0)
    output_padding = int_tuple(output_padding, dims, "output_padding", op, 0)
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= s and op_ >= d:
            raise ValueError(
                f"{op}: output_padding {output_padding} must be smaller than either stride "
                f"{stride} or dilation {dilation}"
            )
    in_hw = tuple(x.shape[-dims:])
    if 0 in in_hw:  # the window geometry (one window per input pixel) has no empty case
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} has an empty spatial dim, which {op} "
            "doesn't support (PyTorch only with an empty batch); give each sample at least one "
            "pixel per spatial dim"
        )
    out_hw = tuple(
        map(transposed_output_size, in_hw, kernel, stride, padding, dilation, output_padding)
    )
    check_output_size(
        op, x, out_hw,
        f"weight of shape {tuple(weight.shape)} with stride {stride}, padding {padding}, "
        f"dilation {dilation} and output_padding {output_padding}",
    )  # fmt: skip
    # The conv2d whose input gradient this is maps the output back onto the input's pixels.
    window = Window.lifted(kernel, stride, padding, dilation, in_hw)
    out_c = weight.shape[1] * groups
    shapes = _shapes(x, weight, batched, dims, out_c, (1, *out_hw) if dims == 1 else out_hw)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return _apply(ConvTranspose2dFunction, inputs, window=window, groups=groups, shapes=shapes,
                  op_name=op)  # fmt: skip


def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] = 0,
    output_padding: int | tuple[int] = 0,
    groups: int = 1,
    dilation: int | tuple[int] = 1,
) -> Tensor:
    """Transposed 1-D convolution over (N, C_in, L) or (C_in, L) inputs; weight
    (C_in, C_out / groups, k). Arguments as :func:`conv_transpose2d` (ints or 1-tuples); run
    by the 2-D code on a unit-height view, one graph node.

    >>> import gradflow
    >>> conv_transpose1d(gradflow.ones(1, 2, 3), gradflow.ones(2, 4, 2), stride=2).shape
    gradflow.Size([1, 4, 6])
    """
    return _conv_transpose("conv_transpose1d", input, weight, bias, stride, padding,
                           output_padding, groups, dilation, dims=1)  # fmt: skip


# ---- conv3d: im2col by kernel offset in the array module's own operations --------------------
# No kernels of ours: the columns [N, C*kd*kh*kw, OD*OH*OW] are built by one strided-slice
# copy per kernel offset (the same code on CuPy), one batched GEMM per group does the rest.
# The columns are kd*kh*kw times the input and are rebuilt in backward, never kept.


class _Window3(NamedTuple):
    """A 3-D conv's geometry: per dim kernel, stride, padding before and after, dilation,
    output size."""

    kernel: tuple
    stride: tuple
    before: tuple
    after: tuple
    dilation: tuple
    out: tuple

    def offsets(self) -> list:
        kd, kh, kw = self.kernel
        return [(a, b, c) for a in range(kd) for b in range(kh) for c in range(kw)]

    def offset_slices(self, offset: tuple) -> tuple:
        return tuple(
            slice(i * d, i * d + (o - 1) * s + 1, s)
            for i, d, s, o in zip(offset, self.dilation, self.stride, self.out)
        )

    def frame_shape(self, sizes: tuple) -> tuple:
        return tuple(b + n + a for b, n, a in zip(self.before, sizes, self.after))

    def inside(self, sizes: tuple) -> tuple:
        return (..., *(slice(b, b + n) for b, n in zip(self.before, sizes)))


def _columns3(x: Any, window: _Window3) -> Any:
    """x [N, C, D, H, W] -> cols [N, C*K, L] (rows (c, kernel offset), columns the outputs)."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    if any(window.before) or any(window.after):
        frame = xp.zeros((n, c, *window.frame_shape(x.shape[2:])), dtype=x.dtype)
        frame[window.inside(x.shape[2:])] = x
    else:
        frame = x
    offsets = window.offsets()
    cols = xp.empty((n, c, len(offsets), *window.out), dtype=x.dtype)
    for k, offset in enumerate(offsets):
        cols[:, :, k] = frame[(..., *window.offset_slices(offset))]
    return cols.reshape(n, c * len(offsets), -1)


def _col2im3(dcols: Any, window: _Window3, x_shape: tuple) -> Any:
    """The adjoint of _columns3: dx [N, C, D, H, W] from dcols [N, C*K, L]."""
    xp = get_array_module(dcols)
    n, c = x_shape[:2]
    offsets = window.offsets()
    blocks = dcols.reshape(n, c, len(offsets), *window.out)
    frame = xp.zeros((n, c, *window.frame_shape(x_shape[2:])), dtype=dcols.dtype)
    for k, offset in enumerate(offsets):
        frame[(..., *window.offset_slices(offset))] += blocks[:, :, k]
    return xp.ascontiguousarray(frame[window.inside(x_shape[2:])])


def _conv3d_forward(x: Any, weight: Any, window: _Window3, groups: int) -> Any:
    """conv3d of x [N, C, D, H, W] with weight [O, C/G, kd, kh, kw], no bias."""
    n, o = x.shape[0], weight.shape[0]
    cols = _columns3(x, window)  # [N, C*K, L]
    out = weight.reshape(groups, o // groups, -1) @ cols.reshape(n, groups, -1, cols.shape[-1])
    return out.reshape(n, o, *window.out)


def _conv3d_input_grad(gy: Any, weight: Any, window: _Window3, groups: int, x_shape) -> Any:
    """The input gradient of a conv3d: col2im(W^T @ dY), gy [N, O, *out]."""
    n, o = gy.shape[:2]
    g3 = gy.reshape(n, groups, o // groups, -1)  # [N, G, O/G, L]
    dcols = weight.reshape(groups, o // groups, -1).transpose(0, 2, 1) @ g3  # [N, G, C/G*K, L]
    return _col2im3(dcols.reshape(n, -1, g3.shape[-1]), window, x_shape)


def _conv3d_weight_grad(gy: Any, x: Any, window: _Window3, groups: int, w_shape) -> Any:
    """The weight gradient of a conv3d: dY @ cols^T summed over the batch."""
    n, o = gy.shape[:2]
    g3 = gy.reshape(n, groups, o // groups, -1)
    cols = _columns3(x, window)
    cols = cols.reshape(n, groups, -1, cols.shape[-1])  # [N, G, C/G*K, L]
    return (g3 @ cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w_shape)


class Conv3dFunction(Function):
    """conv3d as one node (bias included); unbatched inputs arrive with a unit batch dim."""

    op_name = "conv3d"
    groups: int
    w_shape: tuple
    window: _Window3

    def forward(self, x, weight, bias=None):
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        self.x_shape = x.shape
        out = _conv3d_forward(x, weight, self.window, self.groups)
        if bias is not None:
            out += bias.reshape(-1, 1, 1, 1)
        return out

    def backward(self, grad):
        x, weight = self.saved_arrays
        need, g, window = self.needs_input_grad, self.groups, self.window
        dx = dw = db = None
        if need[1]:
            dw = _conv3d_weight_grad(grad, x, window, g, self.w_shape)
        if need[0]:
            dx = _conv3d_input_grad(grad, weight, window, g, self.x_shape)
        if len(need) == 3 and need[2]:
            db = grad.sum(axis=(0, 2, 3, 4))
        return (dx, dw) if len(need) == 2 else (dx, dw, db)


class ConvTranspose3dFunction(Function):
    """conv_transpose3d as one node: conv3d's input gradient run forward (the window is that
    of the conv3d from the output back to the input)."""

    op_name = "conv_transpose3d"
    groups: int
    out_shape: tuple
    w_shape: tuple
    window: _Window3

    def forward(self, x, weight, bias=None):
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        out = _conv3d_input_grad(x, weight, self.window, self.groups, self.out_shape)
        if bias is not None:
            out += bias.reshape(-1, 1, 1, 1)
        return out

    def backward(self, grad):
        x, weight = self.saved_arrays
        need, g, window = self.needs_input_grad, self.groups, self.window
        dx = dw = db = None
        if need[0]:
            dx = _conv3d_forward(grad, weight, window, g)
        if need[1]:  # conv3d's weight gradient with the roles of input and output swapped
            dw = _conv3d_weight_grad(x, grad, window, g, self.w_shape)
        if len(need) == 3 and need[2]:
            db = grad.sum(axis=(0, 2, 3, 4))
        return (dx, dw) if len(need) == 2 else (dx, dw, db)


def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] | str = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """3-D convolution (cross-correlation) over (N, C_in, D, H, W) or unbatched
    (C_in, D, H, W) inputs; weight (C_out, C_in / groups, kD, kH, kW). Arguments as
    :func:`conv2d` (ints or triples; padding also "same" or "valid").

    >>> import gradflow
    >>> conv3d(gradflow.ones(1, 1, 3, 3, 3), gradflow.ones(2, 1, 2, 2, 2)).shape
    gradflow.Size([1, 2, 2, 2, 2])
    """
    op = "conv3d"
    x = float_input(input, op)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{op}: expected a 5-D input (N, C, D, H, W) or a 4-D unbatched input (C, D, H, W), "
            f"got input of shape {tuple(x.shape)}"
        )
    _check_conv_weight(op, x, weight, bias, groups, 3, transposed=False)
    kernel = tuple(weight.shape[2:])
    stride = int_tuple(stride, 3, "stride", op, 1)
    dilation = int_tuple(dilation, 3, "dilation", op, 1)
    before, after = conv_padding(padding, kernel, dilation, stride, op)
    out = tuple(map(conv_output_size, x.shape[-3:], before, after, kernel, stride, dilation))
    check_output_size(
        op, x, out,
        f"weight of shape {tuple(weight.shape)} (dilation {dilation}, padding {before}+{after})",
    )  # fmt: skip
    window = _Window3(kernel, stride, before, after, dilation, out)
    batched = x.ndim == 5
    x5 = x if batched else x.unsqueeze(0)
    inputs = (x5, weight) if bias is None else (x5, weight, bias)
    y = _apply(Conv3dFunction, inputs, window=window, groups=groups,
               w_shape=tuple(weight.shape))  # fmt: skip
    return y if batched else y.squeeze(0)


def conv_transpose3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] = 0,
    output_padding: int | tuple[int, int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int, int] = 1,
) -> Tensor:
    """Transposed 3-D convolution over (N, C_in, D, H, W) or (C_in, D, H, W) inputs; weight
    (C_in, C_out / groups, kD, kH, kW). Arguments as :func:`conv_transpose2d` (ints or
    triples).

    >>> import gradflow
    >>> conv_transpose3d(gradflow.ones(1, 2, 2, 2, 2), gradflow.ones(2, 3, 2, 2, 2), stride=2).shape
    gradflow.Size([1, 3, 4, 4, 4])
    """
    op = "conv_transpose3d"
    x = float_input(input, op)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{op}: expected a 5-D input (N, C, D, H, W) or a 4-D unbatched input (C, D, H, W), "
            f"got input of shape {tuple(x.shape)}"
        )
    _check_conv_weight(op, x, weight, bias, groups, 3, transposed=True)
    kernel = tuple(weight.shape[2:])
    stride = int_tuple(stride, 3, "stride", op, 1)
    dilation = int_tuple(dilation, 3, "dilation", op, 1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding {padding!r} is not supported; pass an int or a triple")
    padding = int_tuple(padding, 3, "padding", op, 0)
    output_padding = int_tuple(output_padding, 3, "output_padding", op, 0)
    for extra, s, d in zip(output_padding, stride, dilation):
        if extra >= s and extra >= d:
            raise ValueError(
                f"{op}: output_padding {output_padding} must be smaller than either stride "
                f"{stride} or dilation {dilation}"
            )
    in_sizes = tuple(x.shape[-3:])
    if 0 in in_sizes:
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} has an empty spatial dim; give each sample "
            "at least one pixel per spatial dim"
        )
    out = tuple(
        map(transposed_output_size, in_sizes, kernel, stride, padding, dilation, output_padding)
    )
    check_output_size(
        op, x, out,
        f"weight of shape {tuple(weight.shape)} with stride {stride}, padding {padding}, "
        f"dilation {dilation} and output_padding {output_padding}",
    )  # fmt: skip
    # The conv3d from the output back to the input (output_padding's extra rows lie past its
    # last window: they get no value and no gradient, as in PyTorch).
    window = _Window3(kernel, stride, padding, padding, dilation, in_sizes)
    batched = x.ndim == 5
    x5 = x if batched else x.unsqueeze(0)
    out_shape = (x5.shape[0], weight.shape[1] * groups, *out)
    inputs = (x5, weight) if bias is None else (x5, weight, bias)
    y = _apply(ConvTranspose3dFunction, inputs, window=window, groups=groups,
               out_shape=out_shape, w_shape=tuple(weight.shape))  # fmt: skip
    return y if batched else y.squeeze(0)
