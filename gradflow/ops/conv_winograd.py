"""3x3 stride-1 convolutions on the CPU by Winograd's F(2x2, 3x3): 16 GEMMs per four outputs
where a direct conv does 36 multiply-adds, so 2.25x fewer flops.

conv2d's forward and both gradients are GEMM-bound on the CPU (benchmarks/conv_profile_cpu.py):
OpenBLAS runs their shapes at 74-88 GFLOP/s on one core, torch's oneDNN convolutions at
65-100, so no arrangement of the direct conv's GEMMs closes the gap. Winograd's algorithm
does less arithmetic instead. Each 2x2 output tile is A^T [(G g G^T) * (B^T d B)] A of its
4x4 input tile d (gradflow/backend/winograd_loops.py has the transforms); summed over input
channels, the 16 elementwise products become 16 GEMMs, one per tile element e:

- forward: ``M[e] = Ĝ[e] @ U[e]`` ([K, C] @ [C, tiles]), Ĝ = G g G^T per (k, c), U the
  transformed input tiles, then the output transform;
- input gradient: the same conv of dY with the flipped kernel (conv.py's _flipped_conv_window,
  stride 1, padding 2 - p), which lands here again;
- weight gradient: ``dĜ[e] += dM[e] @ U[e].T`` over the blocks, dM = A dY A^T per tile (the
  transpose of the output transform), then ``dg = G^T dĜ G``.

Tiles go through in blocks of about BLOCK_BYTES of Winograd-domain values, so U, M and dM stay
in cache and no array is larger than a block (the peak is the input, the output and two
blocks). float32 only, and only with numba's loops (gradflow.backend.compiled); the results
differ from a direct conv's in the last bits (the transforms add and subtract before the
products: within 2e-6 of float64 relative to the sums' magnitudes at 64 channels).
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.backend import blas, compiled
from gradflow.ops.window import Window

BLOCK_BYTES = 1 << 21  # Winograd-domain values per block of tiles (U's 16 x channels x tiles)
# The fewest input and output channels: below them the 16 GEMMs are too thin to win over the
# direct routes (their inner size is the input channels, their height the output channels).
MIN_CHANNELS = 32  # (at 16 they tied with conv_offsets.py, 16 -> 16 channels over 32x32)
# A dilated conv runs as one stride-1 conv per phase (_phases), each a dilation-th of the
# output's width; with fewer tiles per row than this the transforms' rows are too short (a
# 3x3 dilation-2 conv 64->64 over (16, 64, 32, 32), 8 tiles per row: the weight gradient
# took 32 against 22-25 ms by conv_offsets.py).
MIN_DILATED_ROW_TILES = 16

G = numpy.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=numpy.float64)


def applies(x: Any, w_shape: tuple, window: Window, groups: int) -> bool:
    """Whether this conv of x [N, C, H, W] with a weight of w_shape runs here: float32 NumPy
    arrays with numba's loops, a 3x3 kernel, stride 1 (any dilation: _phases), no groups, at
    least MIN_CHANNELS input and output channels, an output of at least 2x2."""
    return (
        type(x) is numpy.ndarray
        and x.dtype == numpy.float32
        and groups == 1
        and tuple(w_shape[2:]) == (3, 3)
        and window.stride == (1, 1)
        and (
            window.dilation == (1, 1)
            or window.out[1] >= 2 * MIN_DILATED_ROW_TILES * window.dilation[1]
        )
        and min(w_shape[0], w_shape[1]) >= MIN_CHANNELS
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


class _Workspace:
    """The per-block buffers of one stride-1 conv: Winograd-domain values [16, channels,
    tiles] for the input and the output side, and the transforms' scratch rows."""

    def __init__(self, x: Any, out_shape: tuple, in_c: int, out_c: int) -> None:
        self.th, self.tw = (out_shape[2] + 1) // 2, (out_shape[3] + 1) // 2
        self.blocks = _blocks(out_shape[0] * self.th, self.tw, max(in_c, out_c))
        most = (self.blocks[0][1] - self.blocks[0][0]) * self.tw
        self.u = numpy.empty((16, in_c, most), dtype=x.dtype)
        self.m = numpy.empty((16, out_c, most), dtype=x.dtype)
        self.s = numpy.empty((4, 2 * self.tw + 2), dtype=x.dtype)
        self.q = numpy.empty((8, self.tw), dtype=x.dtype)
        self.tile = numpy.empty((4, self.tw), dtype=x.dtype)
        self.zeros = numpy.zeros(max(x.shape[3], out_shape[3]), dtype=x.dtype)

    def block(self, r0: int, r1: int) -> tuple[Any, Any]:
        tiles = (r1 - r0) * self.tw
        return _block(self.u, tiles), _block(self.m, tiles)


def forward(x: Any, weight: Any, bias: Any, window: Window) -> Any:
    """The conv [N, K, OH, OW] of x [N, C, H, W] with weight [K, C, 3, 3] (and bias [K])."""
    loops = _loops()
    x = numpy.ascontiguousarray(x)
    out = numpy.empty((x.shape[0], weight.shape[0], *window.out), dtype=x.dtype)
    ghat = kernel_transform(weight)
    has_bias = bias is not None
    b = numpy.ascontiguousarray(bias, dtype=x.dtype) if has_bias else numpy.zeros(1, x.dtype)
    phases = _phases(window)
    for out_slices, in_slices, (ph, pw) in phases:
        # a dilated conv's phases are copied: the loops run twice as fast on contiguous rows
        view = out[(..., *out_slices)]
        part = view if len(phases) == 1 else numpy.empty(view.shape, dtype=x.dtype)
        xs = numpy.ascontiguousarray(x[(..., *in_slices)])
        ws = _Workspace(x, part.shape, x.shape[1], out.shape[1])
        zx = ws.zeros[: xs.shape[3]]
        for r0, r1 in ws.blocks:
            u, m = ws.block(r0, r1)
            loops.input_transform(xs, u, r0, r1, ws.th, ws.tw, ph, pw, ws.s, zx)
            numpy.matmul(ghat, u, out=m)
            loops.output_transform(m, part, r0, r1, ws.th, ws.tw, b, has_bias, ws.q, ws.tile)
        if part is not view:
            view[...] = part
    return out


def weight_grad(g: Any, x: Any, window: Window, w_shape: tuple) -> Any:
    """dW [K, C, 3, 3] of the conv of x [N, C, H, W] with output gradient g [N, K, OH, OW]."""
    loops = _loops()
    x, g = numpy.ascontiguousarray(x), numpy.ascontiguousarray(g)
    k, c = w_shape[:2]
    dghat = numpy.zeros((16, k, c), dtype=x.dtype)
    for out_slices, in_slices, (ph, pw) in _phases(window):
        gs = numpy.ascontiguousarray(g[(..., *out_slices)])
        xs = numpy.ascontiguousarray(x[(..., *in_slices)])
        ws = _Workspace(x, gs.shape, c, k)
        zx, zg = ws.zeros[: xs.shape[3]], ws.zeros[: gs.shape[3]]
        for r0, r1 in ws.blocks:
            u, dm = ws.block(r0, r1)
            loops.input_transform(xs, u, r0, r1, ws.th, ws.tw, ph, pw, ws.s, zx)
            loops.grad_output_transform(gs, dm, r0, r1, ws.th, ws.tw, ws.s, zg)
            for e in range(16):
                blas.addmm_(dghat[e], dm[e], u[e].T)
    dg = numpy.einsum("iu,ijkc,jv->kcuv", G, dghat.reshape(4, 4, k, c).astype(numpy.float64), G,
                      optimize=True)  # fmt: skip
    return dg.astype(x.dtype)


def _block(buffer: Any, tiles: int) -> Any:
    """The first `tiles` tiles of a [16, channels, most] buffer, as a C-contiguous array (the
    last block may be shorter: its values are packed at the front, not strided)."""
    if tiles == buffer.shape[2]:
        return buffer
    size = 16 * buffer.shape[1] * tiles
    return buffer.reshape(-1)[:size].reshape(16, buffer.shape[1], tiles)
