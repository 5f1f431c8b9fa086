"""3x3 stride-1 convolutions on the CPU by Winograd's F(2x2, 3x3): 16 GEMMs per four outputs
where a direct conv does 36 multiply-adds, so 2.25x fewer flops.

conv2d's forward and both gradients are GEMM-bound on the CPU (benchmarks/conv_profile_cpu.py):
OpenBLAS runs their shapes at 74-88 GFLOP/s on one core, torch's oneDNN convolutions at
65-100, so no arrangement of the direct conv's GEMMs closes the gap. Winograd's algorithm
does less arithmetic instead. Each 2x2 output tile is A^T [(G g G^T) * (B^T d B)] A of its
4x4 input tile d (gradflow/backend/winograd_loops.py has the transforms); summed over input
channels, the 16 elementwise products become 16 GEMMs, one per tile element e, on
Winograd-domain blocks [16, tiles, channels] of channels-last images:

- forward: ``M[e] = U[e] @ Ĝ[e]^T`` ([tiles, C] @ [C, K]), U the transformed input tiles of
  a frame (the input channels last, its rows padded), Ĝ = G g G^T per (k, c), then the output
  transform into a channels-last output, copied back to NCHW by omatcopy;
- input gradient: the same conv of dY with the flipped kernel (conv.py's _flipped_conv_window,
  stride 1, padding 2 - p), which lands here again; conv2d's backward builds dY's frame once
  for it and the weight gradient (shared_frames);
- weight gradient: ``dĜ[e] += dM[e]^T @ U[e]`` over the blocks, dM = A dY A^T per tile (the
  transpose of the output transform), then ``dg = G^T dĜ G``;
- groups: one GEMM per group on views of the blocks (OpenBLAS runs the 16-wide ones at 100
  GFLOP/s); dilation: one such conv per phase of the input (_phases).

Tiles go through in blocks of about BLOCK_BYTES of Winograd-domain values, so U, M and dM stay
in cache; the larger arrays are the frame (about the input's size) and the channels-last output.
float32 only, and only with numba's loops (gradflow.backend.compiled); the results differ from
a direct conv's in the last bits (the transforms add and subtract before the products: within
4e-7 of float64, relative to the largest value, at 64 channels).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import numpy

from gradflow.backend import blas, compiled
from gradflow.ops.window import Window, channels_first, channels_last, copy_channels_last

BLOCK_BYTES = 1 << 21  # Winograd-domain values per block of tiles (U's 16 x channels x tiles)
# The fewest input and output channels: below them the 16 GEMMs are too thin to win over the
# direct routes (their inner size is the input channels, their height the output channels).
MIN_CHANNELS = 16  # (16 -> 16 over (16, 16, 32, 32): 2.3 against 2.4 ms forward, 2.7 against
# 2.9 weight gradient by conv_offsets.py, which needs as many; 32 -> 32 over (32, 32, 8, 8):
# 0.5 against 1.0 and 0.6 against 1.1)

G = numpy.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=numpy.float64)


def applies(x: Any, w_shape: tuple, window: Window, groups: int) -> bool:
    """Whether this conv of x [N, C, H, W] with a weight of w_shape runs here: float32 NumPy
    arrays with numba's loops, a 3x3 kernel, stride 1 (any dilation: _phases), at least
    MIN_CHANNELS input and output channels per group, an output of at least 2x2."""
    return (
        type(x) is numpy.ndarray
        and x.dtype == numpy.float32
        and tuple(w_shape[2:]) == (3, 3)
        and window.stride == (1, 1)
        and min(w_shape[0] // groups, w_shape[1]) >= MIN_CHANNELS
        and min(window.out) >= 2
        and compiled.loops(x, float32_only=True) is not None
    )


def _loops() -> Any:
    from gradflow.backend import winograd_loops

    return winograd_loops


def kernel_transform(weight: Any) -> Any:
    """Ĝ [16, K, C]: G g G^T of every 3x3 kernel g of weight [K, C, 3, 3] (float64 sums, one
    rounding to float32)."""
    k, c = weight.shape[:2]
    ghat = numpy.einsum("iu,kcuv,jv->ijkc", G, weight.astype(numpy.float64), G, optimize=True)
    return numpy.ascontiguousarray(ghat.reshape(16, k, c), dtype=weight.dtype)


def _axis_phases(out: int, padding: int, dilation: int) -> list[tuple[slice, slice, int]]:
    """A dilated conv along one axis as stride-1 convs of its phases: output rows
    y = d*i + r read input rows d*(i + u + q) + s (r - padding = d*q + s), so output phase r
    is the undilated conv of input phase s with padding -q. (output rows, input rows,
    padding) per phase."""
    phases = []
    for r in range(min(dilation, out)):
        q, s = divmod(r - padding, dilation)
        phases.append((slice(r, None, dilation), slice(s, None, dilation), -q))
    return phases


def _phases(window: Window) -> list[tuple[tuple, tuple, tuple]]:
    """(output slices, input slices, padding) of the stride-1, dilation-1 convs that make up
    this conv: itself, or one per phase of a dilated conv."""
    rows = _axis_phases(window.out[0], window.padding[0], window.dilation[0])
    cols = _axis_phases(window.out[1], window.padding[1], window.dilation[1])
    return [((ro, co), (ri, ci), (ph, pw)) for ro, ri, ph in rows for co, ci, pw in cols]


def _blocks(rows: int, tw: int, channels: int) -> list[tuple[int, int]]:
    """Tile rows [r0, r1) per block: about BLOCK_BYTES of U [16, channels, tiles]."""
    per_block = max(1, BLOCK_BYTES // (16 * channels * tw * 4))
    return [(r0, min(r0 + per_block, rows)) for r0 in range(0, rows, per_block)]


def frame_rows(h: int, ph: int, th: int) -> tuple[int, int, int]:
    """(top, first, rows) of a frame of 2 * th + 2 rows whose row i holds row i - ph of an
    image of h rows: the frame's first row from the image, the image's row there, and how
    many image rows the frame holds (negative ph crops)."""
    top, first = max(ph, 0), max(-ph, 0)
    return top, first, max(min(h - first, 2 * th + 2 - top), 0)


def empty_frame(shape: tuple, axis: int, top: int, rows: int, dtype: Any) -> Any:
    """An array of shape with zeros in the rows (along axis) outside [top, top + rows), the
    rows the image is copied into left unset."""
    frame = numpy.empty(shape, dtype=dtype)
    lead = (slice(None),) * axis
    frame[(*lead, slice(0, top))] = 0
    frame[(*lead, slice(top + rows, None))] = 0
    return frame


def _frame(x: Any, ph: int, th: int) -> Any:
    """x [N, C, H, W] channels last in a frame [N, 2 * th + 2, W, C] whose row i holds x's row
    i - ph (zeros outside x; negative ph crops). The columns are x's own: the input transform
    reads its column padding as zeros, so each sample's rows are one block that OpenBLAS's
    omatcopy writes directly."""
    n, c, h, w = x.shape
    top, first, rows = frame_rows(h, ph, th)
    frame = empty_frame((n, 2 * th + 2, w, c), 1, top, rows, x.dtype)
    if rows > 0:
        copy_channels_last(frame[:, top : top + rows], x[:, :, first : first + rows])
    return frame


class _Workspace:
    """The per-block buffers of one stride-1 conv: Winograd-domain values [16, tiles,
    channels] for the input and the output side, and the transforms' scratch."""

    def __init__(self, out_shape: tuple, in_c: int, out_c: int, dtype: Any) -> None:
        self.th, self.tw = (out_shape[2] + 1) // 2, (out_shape[3] + 1) // 2
        self.blocks = _blocks(out_shape[0] * self.th, self.tw, max(in_c, out_c))
        most = (self.blocks[0][1] - self.blocks[0][0]) * self.tw
        self.u = numpy.empty((16, most, in_c), dtype=dtype)
        self.m = numpy.empty((16, most, out_c), dtype=dtype)
        self.s = numpy.empty((4, 2 * self.tw + 2, in_c), dtype=dtype)
        self.q = numpy.empty((8, out_c), dtype=dtype)

    def block(self, r0: int, r1: int) -> tuple[Any, Any]:
        tiles = (r1 - r0) * self.tw
        return _block(self.u, tiles), _block(self.m, tiles)


def forward(x: Any, weight: Any, bias: Any, window: Window, groups: int = 1) -> Any:
    """The conv [N, K, OH, OW] of x [N, C, H, W] with weight [K, C/groups, 3, 3] (and bias
    [K])."""
    n, k = x.shape[0], weight.shape[0]
    out = numpy.empty((n, *window.out, k), dtype=x.dtype)  # channels last
    ghat_t = transposed_kernels(weight, groups)
    phases = _phases(window)
    for out_slices, in_slices, (ph, pw) in phases:
        view = out[:, out_slices[0], out_slices[1]]
        part = view if len(phases) == 1 else numpy.empty(view.shape, dtype=x.dtype)
        th = (part.shape[1] + 1) // 2
        if len(phases) == 1:
            frame = _shared_frame(x, ph, th)
        else:
            frame = _frame(x[:, :, in_slices[0], in_slices[1]], ph, th)
        forward_frame(frame, pw, ghat_t, bias, part, groups)
        if part is not view:
            view[...] = part
    return channels_first(out)


def weight_grad(g: Any, x: Any, window: Window, w_shape: tuple, groups: int = 1) -> Any:
    """dW [K, C/groups, 3, 3] of the conv of x [N, C, H, W] with output gradient g
    [N, K, OH, OW]."""
    k, c = w_shape[:2]
    dghat = numpy.zeros((16, k, c), dtype=x.dtype)
    phases = _phases(window)
    for out_slices, in_slices, (ph, pw) in phases:
        gs = None
        if len(phases) == 1 and _shared.get() is not None and ph <= 2:
            # dY's rows inside the frame the input gradient (a conv of dY, padding 2 - p)
            # builds next: built once, here, for both
            top = 2 - ph
            gs = _shared_frame(g, top, (x.shape[2] + 1) // 2)[:, top : top + g.shape[2]]
        if gs is None or gs.shape[1] != g.shape[2]:
            gs = channels_last(g[:, :, out_slices[0], out_slices[1]])
        frame = _frame(x[:, :, in_slices[0], in_slices[1]], ph, (gs.shape[1] + 1) // 2)
        weight_grad_frame(frame, pw, gs, dghat, groups)
    return weight_from_transformed(dghat)


# One frame per array and geometry inside shared_frames(): conv2d's backward builds dY's frame
# once for its weight gradient (dY's rows) and its input gradient (the conv of dY).
_shared: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "winograd_frames", default=None
)


@contextlib.contextmanager
def shared_frames() -> Iterator[None]:
    """Inside the block a frame asked for again (the same array, padding and tile rows) is the
    one built before, not a new copy."""
    token = _shared.set([])
    try:
        yield
    finally:
        _shared.reset(token)


def _shared_frame(x: Any, ph: int, th: int) -> Any:
    slot = _shared.get()
    if slot is None:
        return _frame(x, ph, th)
    for array, key, frame in slot:
        if array is x and key == (ph, th):
            return frame
    frame = _frame(x, ph, th)
    slot.append((x, (ph, th), frame))
    return frame


# ---- on channels-last frames (also conv3d_depth.py's) -----------------------------------------


def transposed_kernels(weight: Any, groups: int = 1) -> Any:
    """Ĝ^T of weight [K, C/groups, 3, 3], the right operand of the forward's GEMMs: [16, C, K],
    or per group [16, groups, C/groups, K/groups]."""
    ghat = kernel_transform(weight)  # [16, K, C/groups]
    if groups > 1:
        k, c = ghat.shape[1:]
        ghat = ghat.reshape(16, groups, k // groups, c)
    return numpy.ascontiguousarray(numpy.swapaxes(ghat, -1, -2))


def _by_group(a: Any, groups: int) -> Any:
    """A block's Winograd-domain values [16, tiles, channels] as [16, groups, tiles,
    channels/groups] (a view: each group's matrix has the whole row's stride, which BLAS
    reads in place; OpenBLAS ran these 16-wide GEMMs at 100 GFLOP/s, one thread)."""
    e, t, c = a.shape
    return a.reshape(e, t, groups, c // groups).transpose(0, 2, 1, 3)


def forward_frame(frame: Any, pw: int, ghat_t: Any, bias: Any, out: Any, groups: int = 1) -> None:
    """out [N, OH, OW, K] (channels last) = the stride-1 conv of a _frame [N, 2*th + 2, W, C]
    whose column j - pw is the conv's column j, with kernels ghat_t (transposed_kernels) and
    bias [K] or None."""
    loops = _loops()
    n, oh, ow, k = out.shape
    ws = _Workspace((n, k, oh, ow), frame.shape[3], k, frame.dtype)
    b = numpy.zeros(k, frame.dtype) if bias is None else numpy.ascontiguousarray(bias, frame.dtype)
    for r0, r1 in ws.blocks:
        u, m = ws.block(r0, r1)
        loops.input_transform(frame, u, r0, r1, ws.th, ws.tw, pw, ws.s)
        if groups == 1:
            numpy.matmul(u, ghat_t, out=m)
        else:
            numpy.matmul(_by_group(u, groups), ghat_t, out=_by_group(m, groups))
        loops.output_transform(m, out, r0, r1, ws.th, ws.tw, b, ws.q)


def weight_grad_frame(frame: Any, pw: int, gs: Any, dghat: Any, groups: int = 1) -> None:
    """dghat [16, K, C/groups] += the transformed weight gradient of the conv forward_frame
    computes, from its output gradient gs [N, OH, OW, K] (channels last, C-contiguous)."""
    loops = _loops()
    n, oh, ow, k = gs.shape
    ws = _Workspace((n, k, oh, ow), frame.shape[3], k, frame.dtype)
    for r0, r1 in ws.blocks:
        u, dm = ws.block(r0, r1)
        loops.input_transform(frame, u, r0, r1, ws.th, ws.tw, pw, ws.s)
        loops.grad_output_transform(gs, dm, r0, r1, ws.th, ws.tw, ws.q[:4])
        if groups == 1:
            for e in range(16):
                blas.addmm_(dghat[e], dm[e].T, u[e])
        else:  # [16, G, K/G, C/G] += dM_g^T U_g
            per_group = dghat.reshape(16, groups, -1, dghat.shape[-1])
            per_group += numpy.matmul(numpy.swapaxes(_by_group(dm, groups), -1, -2),
                                      _by_group(u, groups))  # fmt: skip


def weight_from_transformed(dghat: Any) -> Any:
    """dW [K, C, 3, 3] = G^T dĜ G of the accumulated dghat [16, K, C] (float64 sums)."""
    k, c = dghat.shape[1:]
    dg = numpy.einsum("iu,ijkc,jv->kcuv", G, dghat.reshape(4, 4, k, c).astype(numpy.float64), G,
                      optimize=True)  # fmt: skip
    return dg.astype(dghat.dtype)


def _block(buffer: Any, tiles: int) -> Any:
    """The first `tiles` tiles of a [16, most, channels] buffer, as a C-contiguous array (the
    last block may be shorter: its values are packed at the front, not strided)."""
    if tiles == buffer.shape[1]:
        return buffer
    return buffer.reshape(-1)[: 16 * tiles * buffer.shape[2]].reshape(16, tiles, buffer.shape[2])
