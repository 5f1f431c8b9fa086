"""The numba loops of the Winograd F(2x2, 3x3) convolution (gradflow/ops/conv_winograd.py): the
tile transforms into and out of the Winograd domain, between which the conv is 16 GEMMs.

Imported by conv_winograd.py only after gradflow.backend.compiled has loaded numba. Every loop
takes float32 arrays (C-contiguous, or dY's rows inside a frame: numba compiles each layout),
writes into the output it is given, and works on one block
of tile rows: tile row r (r0 <= r < r1) is sample r // th, tiles' top row 2 * (r % th); a row
holds tw tiles, and the block's tiles are numbered (r - r0) * tw + b in the Winograd-domain
arrays [16, tiles, channels]. Images are channels last ([N, rows, columns, channels]), so every
inner loop runs over the channels: as long for a 16x16 image as for a 224x224 one (over an
NCHW image's rows, the loops of a 16x16 image ran half as fast as a 32x32 one's), and each
writes at most four streams, which LLVM vectorizes (sixteen it left scalar).

The transforms (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015):
a 4x4 input tile d becomes B^T d B, a 2x2 output tile is A^T m A of its 4x4 product m, and
the weight gradient's 4x4 tile of dY is A dy A^T (its transpose of the output transform):

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

Each is adds and subtracts only, so the loops compile as compiled_loops' elementwise (FMA
contraction and the sign of zero ignored, nothing reassociated).
"""

from __future__ import annotations

import numpy

from gradflow.backend.compiled_loops import elementwise

f32 = numpy.float32


@elementwise
def input_transform(frame, u, r0, r1, th, tw, pw, s):
    """u[e, t] = (B^T d B)[e] (vectors over the channels) for the 4x4 tile d of every tile t of
    rows r0..r1, tile (a, b) at row 2a and column 2b - pw of the channels-last frame
    [N, 2 * th + 2, W, C] (rows already padded with zeros; columns outside 0..W-1 read as
    zeros). s is a [4, 2 * tw + 2, C] scratch: a tile row's B^T d, one long loop per row."""
    width, span, channels = frame.shape[2], 2 * tw + 2, frame.shape[3]
    lo, hi = min(max(pw, 0), span), min(max(pw + width, 0), span)  # s's columns inside x
    for r in range(r0, r1):
        n, a = r // th, r % th
        d0, d1 = frame[n, 2 * a], frame[n, 2 * a + 1]
        d2, d3 = frame[n, 2 * a + 2], frame[n, 2 * a + 3]
        for i in range(4):
            for col in range(lo):
                for c in range(channels):
                    s[i, col, c] = 0
            for col in range(hi, span):
                for c in range(channels):
                    s[i, col, c] = 0
        for col in range(lo, hi):  # B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3
            x = col - pw
            for c in range(channels):
                s[0, col, c] = d0[x, c] - d2[x, c]
        for col in range(lo, hi):
            x = col - pw
            for c in range(channels):
                v1, v2 = d1[x, c], d2[x, c]
                s[1, col, c] = v1 + v2
                s[2, col, c] = v2 - v1
        for col in range(lo, hi):
            x = col - pw
            for c in range(channels):
                s[3, col, c] = d1[x, c] - d3[x, c]
        t0 = (r - r0) * tw
        for b in range(tw):
            t, j = t0 + b, 2 * b
            for i in range(4):  # (B^T d) B, row by row
                for c in range(s.shape[2]):
                    s0, s1, s2, s3 = s[i, j, c], s[i, j + 1, c], s[i, j + 2, c], s[i, j + 3, c]
                    u[4 * i, t, c] = s0 - s2
                    u[4 * i + 1, t, c] = s1 + s2
                    u[4 * i + 2, t, c] = s2 - s1
                    u[4 * i + 3, t, c] = s1 - s3


@elementwise
def output_transform(m, out, r0, r1, th, tw, bias, q):
    """out[n, 2a + i, 2b + j] = (A^T m_t A)[i, j] + bias (vectors over the output channels)
    for the tiles t of rows r0..r1; m [16, tiles, K], out channels last [N, OH, OW, K]; the
    parts of the last row and column of tiles past OH and OW are dropped. q is a [8, K]
    scratch."""
    oh, ow, kernels = out.shape[1], out.shape[2], out.shape[3]
    for r in range(r0, r1):
        n, a = r // th, r % th
        y0 = 2 * a
        t0 = (r - r0) * tw
        for b in range(tw):
            t, x0 = t0 + b, 2 * b
            for j in range(4):  # A^T m, column by column: rows 0+1+2 and 1-2-3
                for k in range(kernels):
                    m1, m2 = m[4 + j, t, k], m[8 + j, t, k]
                    q[j, k] = m[j, t, k] + m1 + m2
                    q[4 + j, k] = m1 - m2 - m[12 + j, t, k]
            for i in range(2):  # (A^T m) A: columns 0+1+2 and 1-2-3
                y = y0 + i
                if y >= oh:
                    break
                for k in range(kernels):
                    out[n, y, x0, k] = q[4 * i, k] + q[4 * i + 1, k] + q[4 * i + 2, k] + bias[k]
                if x0 + 1 < ow:
                    for k in range(kernels):
                        out[n, y, x0 + 1, k] = (
                            q[4 * i + 1, k] - q[4 * i + 2, k] - q[4 * i + 3, k] + bias[k]
                        )


@elementwise
def grad_output_transform(g, dm, r0, r1, th, tw, ys):
    """dm[e, t] = (A dy A^T)[e] (vectors over the output channels) for the 2x2 tile dy of the
    channels-last g [N, OH, OW, K] at (2a, 2b) of every tile t of rows r0..r1, zeros past OH
    and OW: the gradient of the Winograd-domain product output_transform turned into it. ys is
    a [4, K] scratch: the tile's four values, read once."""
    oh, ow, kernels = g.shape[1], g.shape[2], g.shape[3]
    for r in range(r0, r1):
        n, a = r // th, r % th
        y0 = 2 * a
        t0 = (r - r0) * tw
        for b in range(tw):
            t, x0 = t0 + b, 2 * b
            right, below = x0 + 1 < ow, y0 + 1 < oh
            for k in range(kernels):
                ys[0, k] = g[n, y0, x0, k]
                ys[1, k] = g[n, y0, x0 + 1, k] if right else f32(0)
                ys[2, k] = g[n, y0 + 1, x0, k] if below else f32(0)
                ys[3, k] = g[n, y0 + 1, x0 + 1, k] if right and below else f32(0)
            for i in range(4):  # row i of A dy: y0, y0 + y1, y0 - y1, -y1 (no 0 * inf)
                for k in range(kernels):
                    if i == 0:
                        p0, p1 = ys[0, k], ys[1, k]
                    elif i == 1:
                        p0, p1 = ys[0, k] + ys[2, k], ys[1, k] + ys[3, k]
                    elif i == 2:
                        p0, p1 = ys[0, k] - ys[2, k], ys[1, k] - ys[3, k]
                    else:
                        p0, p1 = -ys[2, k], -ys[3, k]
                    dm[4 * i, t, k] = p0  # then A^T on the row
                    dm[4 * i + 1, t, k] = p0 + p1
                    dm[4 * i + 2, t, k] = p0 - p1
                    dm[4 * i + 3, t, k] = -p1
