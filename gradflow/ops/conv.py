"""Convolutions: conv1d, conv2d, conv_transpose1d and conv_transpose2d, one graph node each
(bias included). The array pieces (im2col, col2im, the GEMMs) are gradflow/ops/im2col.py;
the 3-D convolutions gradflow/ops/conv3d.py.

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

On the CPU, before im2col, a conv tries the routes without columns (docs/DESIGN.md §8): 1x1
convs as GEMMs on NCHW (conv_pointwise.py), depthwise convs (depthwise.py), 3x3 stride-1 convs
by Winograd's algorithm (conv_winograd.py), other stride-1 convs as a GEMM per kernel offset
(conv_offsets.py); conv_transpose2d's backward builds dY's columns once per piece of samples
for both gradients.

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

from gradflow import dtypes
from gradflow.autograd.differentiable import graph_input
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.backend.routing import uses_kernels
from gradflow.ops import conv_offsets, conv_pointwise, conv_winograd, depthwise
from gradflow.ops._util import float_input
from gradflow.ops.im2col import (
    _channel_major,
    _flipped_conv_window,
    _forward_gemm,
    _input_grad_gemm,
    _weight_grad_gemm,
    shared_columns,
)
from gradflow.ops.window import (
    Window,
    check_input_rank,
    check_output_size,
    conv_output_size,
    conv_padding,
    int_tuple,
    transposed_output_size,
)
from gradflow.tensor import Tensor

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
    when its columns exceed the workspace budget (a depthwise conv on the CPU has no columns:
    gradflow/ops/depthwise.py)."""
    if conv_pointwise.applies(x, weight.shape, window, groups, x.shape):
        return conv_pointwise.forward(x, weight, bias, window)
    if depthwise.applies(x, weight.shape, groups):
        return depthwise.forward(x, weight, bias, window)
    if conv_winograd.applies(x, weight.shape, window, groups):
        return conv_winograd.forward(x, weight, bias, window, groups)
    if conv_offsets.applies(x, weight.shape, window, groups):
        return conv_offsets.forward(x, weight, bias, window, groups)
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
    if conv_pointwise.applies(x, w_shape, window, groups, x.shape):
        return conv_pointwise.weight_grad(g, x, window, w_shape)
    if depthwise.applies(x, w_shape, groups):
        return depthwise.weight_grad(g, x, window, w_shape)
    if conv_winograd.applies(x, w_shape, window, groups):
        return conv_winograd.weight_grad(g, x, window, w_shape, groups)
    if conv_offsets.applies(x, w_shape, window, groups):
        return conv_offsets.weight_grad(g, x, window, w_shape, groups)
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
    o, c_per_group, kh, kw = weight.shape
    if conv_pointwise.applies(g, weight.shape, window, groups, x_shape):
        return conv_pointwise.input_grad(g, weight, window, x_shape)
    flipped = None
    if not uses_kernels(g):
        flipped = _flipped_conv_window(window, weight.shape, x_shape, True)
        flipped_shape = (groups * c_per_group, o // groups, kh, kw)
        if (
            flipped is not None
            and o > x_shape[1]
            and not conv_offsets.applies(g, flipped_shape, flipped, groups)
            and not conv_winograd.applies(g, flipped_shape, flipped, groups)
        ):  # more output than input channels: the rewrite pays only without dY's columns
            flipped = None
    if flipped is not None:
        w5 = weight.reshape(groups, o // groups, c_per_group, kh, kw)[..., ::-1, ::-1]
        w_flipped = w5.transpose(0, 2, 1, 3, 4).reshape(groups * c_per_group, o // groups, kh, kw)
        return _conv_forward(g, w_flipped, None, flipped, groups, op)
    if depthwise.applies(g, weight.shape, groups):
        return depthwise.input_grad(g, weight, window, x_shape)
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


def _without_columns(x: Any, w_shape: tuple, window: Window, groups: int) -> bool:
    """Whether the CPU computes this conv without im2col columns (conv_pointwise.py,
    depthwise.py, conv_winograd.py, conv_offsets.py), so without dY laid out channel-major
    either."""
    return (
        conv_pointwise.applies(x, w_shape, window, groups, x.shape)
        or depthwise.applies(x, w_shape, groups)
        or conv_winograd.applies(x, w_shape, window, groups)
        or conv_offsets.applies(x, w_shape, window, groups)
    )


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


# The samples per piece of conv_transpose2d's backward on the CPU: dY's columns, kh*kw*C per
# pixel of dY, are at most this many times dY itself, and at least SHARED_TILE_MIN_BYTES. In
# one piece they are the step's largest array: 8 MiB for dY of (16, 32, 32, 32) with a 4x4
# kernel of stride 2, a peak of 12.3 MiB against torch's 6.1; in pieces of dY's size 8.1 MiB,
# each piece's columns still serving both gradients, for 15.1-15.6 ms against torch's 9.3
# (pieces of half dY's size: 5.9 MiB, but 16.0-16.4 ms).
SHARED_TILE_RATIO, SHARED_TILE_MIN_BYTES = 1, 1 << 20


def _shared_tile_samples(g4: Any, w_shape: tuple, window: Window, groups: int) -> int | None:
    """Samples per piece for conv_transpose2d's backward by _transposed_grads_by_samples, or
    None to keep one piece (its columns under the cap, or a route without columns)."""
    if type(g4) is not numpy.ndarray or _without_columns(g4, w_shape, window, groups):
        return None
    n = g4.shape[0]
    per_sample = _workspace_bytes((1, *g4.shape[1:]), window, g4.itemsize)
    cap = max(int(SHARED_TILE_RATIO * g4.nbytes), SHARED_TILE_MIN_BYTES)
    if n * per_sample <= cap or n == 1:
        return None
    return max(1, cap // per_sample)


def _transposed_grads_by_samples(
    g4: Any, x4: Any, w4: Any, window: Window, groups: int, step: int
) -> tuple[Any, Any]:
    """conv_transpose2d's (dx, dW) in pieces of `step` samples, each piece's dY columns built
    once for both: dx is the conv of dY, dW its weight gradient against x."""
    n = g4.shape[0]
    dx = numpy.empty((n, w4.shape[0], *window.out), dtype=g4.dtype)
    dw = None
    for i in range(0, n, step):
        part = slice(i, min(i + step, n))
        with shared_columns():
            dx[part] = _forward_gemm(g4[part], w4, None, window, groups)
            piece = _weight_grad_gemm(_channel_major(x4[part]), g4[part], window, groups,
                                      w4.shape)  # fmt: skip
        dw = piece if dw is None else dw.__iadd__(piece)
    return dx, dw


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
        with (
            _memory_errors_named(self, "backward", s.x4, window, g.dtype),
            conv_winograd.shared_frames(),
        ):
            if need[1]:
                x4 = x.reshape(s.x4)
                if _tiles(op, s.x4, window, x.dtype) is None and not _without_columns(
                    x4, s.w4, window, self.groups
                ):  # dY channel-major, shared with the input gradient's GEMMs
                    g2 = _channel_major(g4)
                dw = _conv_weight_grad(g4, x4, window, self.groups, s.w4, op, g2).reshape(s.w)
            if need[0]:
                dx = _conv_input_grad(g4, weight.reshape(s.w4), window, self.groups, s.x4, g2,
                                      op)  # fmt: skip
                dx = dx.reshape(s.x)
        if len(need) == 2:
            return dx, dw
        return dx, dw, g4.sum(axis=(0, 2, 3)) if need[2] else None

    def backward_graph(self, g):
        # conv2d in its im2col form, as Tensor ops: dx = fold(W^T g), dW = g unfold(x)^T, per
        # group.
        from gradflow.ops.linalg import MatMul
        from gradflow.ops.resample import FoldFunction, UnfoldFunction
        from gradflow.ops.shape import cat

        x, weight = self.saved_arrays
        s, need = self.shapes, self.needs_input_grad
        n, o, oh, ow = s.out4
        c = s.x4[1]
        groups = self.groups
        cg, og = c // groups, o // groups
        g4 = g.reshape(s.out4)
        g3 = g4.reshape(n, o, oh * ow)
        tx = graph_input(self, 0, x).reshape(s.x4) if need[1] else None
        tw = graph_input(self, 1, weight).reshape(s.w4) if need[0] else None
        dxs, dws = [], []
        for k in range(groups):
            gk = g3[:, k * og : (k + 1) * og] if groups > 1 else g3
            if need[0]:
                wk = tw[k * og : (k + 1) * og] if groups > 1 else tw
                cols = MatMul.apply(wk.reshape(og, -1).transpose(0, 1), gk)
                dxs.append(
                    FoldFunction.apply(
                        cols, window=self.window, batched=True, output_size=tuple(s.x4[2:])
                    )
                )
            if need[1]:
                xk = tx[:, k * cg : (k + 1) * cg] if groups > 1 else tx
                cols = UnfoldFunction.apply(xk, window=self.window, batched=True)
                dws.append(MatMul.apply(gk, cols.transpose(1, 2)).sum(dim=0))
        dx = (dxs[0] if groups == 1 else cat(dxs, 1)).reshape(s.x) if need[0] else None
        dw = (dws[0] if groups == 1 else cat(dws, 0)).reshape(s.w) if need[1] else None
        if len(need) == 2:
            return dx, dw
        return dx, dw, g4.sum(dim=(0, 2, 3)) if need[2] else None


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
        # both gradients read dY's columns: built once when they fit the workspace in one piece
        shared = all(need[:2]) and _tiles(op, s.out4, self.window, g.dtype) is None
        step = _shared_tile_samples(g4, s.w4, self.window, self.groups) if shared else None
        if step is not None:
            with _memory_errors_named(self, "backward", s.out4, self.window, g.dtype):
                dx, dw = _transposed_grads_by_samples(
                    g4, x.reshape(s.x4), weight.reshape(s.w4), self.window, self.groups, step
                )
            if len(need) == 2:
                return dx.reshape(s.x), dw.reshape(s.w)
            return dx.reshape(s.x), dw.reshape(s.w), g4.sum(axis=(0, 2, 3)) if need[2] else None
        with (
            _memory_errors_named(self, "backward", s.out4, self.window, g.dtype),
            shared_columns() if shared else contextlib.nullcontext(),
        ):
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

    def backward_graph(self, g):
        # The conv2d whose input gradient this op is, in its im2col form on Tensors: g is that
        # conv's input, x its output: dx = W unfold(g), dW = x unfold(g)^T, per group.
        from gradflow.ops.linalg import MatMul
        from gradflow.ops.resample import UnfoldFunction
        from gradflow.ops.shape import cat

        x, weight = self.saved_arrays
        s, need = self.shapes, self.needs_input_grad
        n, o, h, w = s.x4
        c = s.out4[1]
        groups = self.groups
        cg, og = c // groups, o // groups
        g4 = g.reshape(s.out4)
        tx = graph_input(self, 0, x).reshape(n, o, h * w) if need[1] else None
        tw = graph_input(self, 1, weight).reshape(s.w4) if need[0] else None
        dxs, dws = [], []
        for k in range(groups):
            gk = g4[:, k * cg : (k + 1) * cg] if groups > 1 else g4
            cols = UnfoldFunction.apply(gk, window=self.window, batched=True)  # (n, cg*kh*kw, L)
            if need[0]:
                wk = tw[k * og : (k + 1) * og] if groups > 1 else tw
                dxs.append(MatMul.apply(wk.reshape(og, -1), cols))
            if need[1]:
                xk = tx[:, k * og : (k + 1) * og] if groups > 1 else tx
                dws.append(MatMul.apply(xk, cols.transpose(1, 2)).sum(dim=0))
        dx = (dxs[0] if groups == 1 else cat(dxs, 1)).reshape(s.x) if need[0] else None
        dw = (dws[0] if groups == 1 else cat(dws, 0)).reshape(s.w) if need[1] else None
        if len(need) == 2:
            return dx, dw
        return dx, dw, g4.sum(dim=(0, 2, 3)) if need[2] else None


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


def _check_output_padding(op: str, output_padding: tuple, stride: tuple, dilation: tuple) -> None:
    for extra, s, d in zip(output_padding, stride, dilation):
        if extra >= s and extra >= d:
            raise ValueError(
                f"{op}: output_padding {output_padding} must be smaller than either stride "
                f"{stride} or dilation {dilation}"
            )


def _transposed_sizes(op, x, weight, in_sizes, kernel, stride, padding, dilation,
                      output_padding) -> tuple:  # fmt: skip
    """A transposed conv's output sizes, checked to be positive."""
    out = tuple(
        map(transposed_output_size, in_sizes, kernel, stride, padding, dilation, output_padding)
    )
    check_output_size(
        op, x, out,
        f"weight of shape {tuple(weight.shape)} with stride {stride}, padding {padding}, "
        f"dilation {dilation} and output_padding {output_padding}",
    )  # fmt: skip
    return out


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
    _check_output_padding(op, output_padding, stride, dilation)
    in_hw = tuple(x.shape[-dims:])
    if 0 in in_hw:  # the window geometry (one window per input pixel) has no empty case
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} has an empty spatial dim, which {op} "
            "doesn't support (PyTorch only with an empty batch); give each sample at least one "
            "pixel per spatial dim"
        )
    out_hw = _transposed_sizes(op, x, weight, in_hw, kernel, stride, padding, dilation,
                               output_padding)  # fmt: skip
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
