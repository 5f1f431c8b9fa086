"""The numba loops of the Winograd F(2x2, 3x3) convolution (gradflow/ops/conv_winograd.py): the
tile transforms into and out of the Winograd domain, between which the conv is 16 GEMMs.

Imported by conv_winograd.py only after gradflow.backend.compiled has loaded numba. Every loop
takes C-contiguous float32 arrays, writes into the output it is given, and works on one block
of tile rows: tile row r (r0 <= r < r1) is sample r // th, tiles' top row 2 * (r % th); a row
holds tw tiles, and the block's tiles are numbered (r - r0) * tw + b in the Winograd-domain
arrays [16, channels, tiles].

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
def _row(x, n, c, row, zeros):
    """x[n, c, row] as a view, or a row of zeros for a row outside x."""
    if 0 <= row < x.shape[2]:
        return x[n, c, row]
    return zeros


@elementwise
def input_transform(x, u, r0, r1, th, tw, ph, pw, s, zeros):
    """u[e, c, t] = (B^T d B)[e] for the 4x4 input tile d of every tile t of rows r0..r1 of
    x [N, C, H, W], read from top-left (2a - ph, 2b - pw), zeros outside x. s is a
    [4, 2 * tw + 2] scratch (a tile row's B^T d, padded), zeros a row of W zeros. Each inner
    loop writes at most four streams: LLVM vectorizes those, not sixteen."""
    channels, width, span = x.shape[1], x.shape[3], 2 * tw + 2
    lo, hi = min(max(pw, 0), span), min(max(pw + width, 0), span)  # s's columns inside x
    for c in range(channels):
        for r in range(r0, r1):
            n, a = r // th, r % th
            top = 2 * a - ph
            d0 = _row(x, n, c, top, zeros)
            d1 = _row(x, n, c, top + 1, zeros)
            d2 = _row(x, n, c, top + 2, zeros)
            d3 = _row(x, n, c, top + 3, zeros)
            for col in range(lo, hi):  # B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3
                src = col - pw
                v0, v1, v2, v3 = d0[src], d1[src], d2[src], d3[src]
                s[0, col] = v0 - v2
                s[1, col] = v1 + v2
                s[2, col] = v2 - v1
                s[3, col] = v1 - v3
            for i in range(4):
                for col in range(lo):
                    s[i, col] = 0
                for col in range(hi, span):
                    s[i, col] = 0
            t0 = (r - r0) * tw
            for i in range(4):  # (B^T d) B, row by row
                for b in range(tw):
                    s0, s1, s2, s3 = s[i, 2 * b], s[i, 2 * b + 1], s[i, 2 * b + 2], s[i, 2 * b + 3]
                    t = t0 + b
                    u[4 * i, c, t] = s0 - s2
                    u[4 * i + 1, c, t] = s1 + s2
                    u[4 * i + 2, c, t] = s2 - s1
                    u[4 * i + 3, c, t] = s1 - s3


@elementwise
def output_transform(m, out, r0, r1, th, tw, bias, has_bias, q, tile):
    """out[n, k, 2a + i, 2b + j] = (A^T m_t A)[i, j] (+ bias[k]) for the tiles t of rows
    r0..r1; m [16, K, tiles]; the parts of the last row and column of tiles past out's
    [OH, OW] are dropped. q [8, tw] and tile [4, tw] are scratch."""
    kernels, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    for k in range(kernels):
        add = bias[k] if has_bias else f32(0)
        for r in range(r0, r1):
            n, a = r // th, r % th
            t0 = (r - r0) * tw
            for j in range(4):  # A^T m, column by column: rows 0+1+2 and 1-2-3
                for b in range(tw):
                    t = t0 + b
                    m1, m2 = m[4 + j, k, t], m[8 + j, k, t]
                    q[j, b] = m[j, k, t] + m1 + m2
                    q[4 + j, b] = m1 - m2 - m[12 + j, k, t]
            for i in range(2):  # (A^T m) A: columns 0+1+2 and 1-2-3
                for b in range(tw):
                    q0, q1, q2, q3 = q[4 * i, b], q[4 * i + 1, b], q[4 * i + 2, b], q[4 * i + 3, b]
                    tile[2 * i, b] = q0 + q1 + q2 + add
                    tile[2 * i + 1, b] = q1 - q2 - q3 + add
            for i in range(2):
                y = 2 * a + i
                if y < oh:
                    for b in range(ow // 2):
                        out[n, k, y, 2 * b] = tile[2 * i, b]
                        out[n, k, y, 2 * b + 1] = tile[2 * i + 1, b]
                    if ow & 1:
                        out[n, k, y, ow - 1] = tile[2 * i, tw - 1]


@elementwise
def grad_output_transform(g, dm, r0, r1, th, tw, p, zeros):
    """dm[e, k, t] = (A dy A^T)[e] for the 2x2 tile dy of g [N, K, OH, OW] at (2a, 2b) of every
    tile t of rows r0..r1, zeros past OH and OW: the gradient of the Winograd-domain product
    that output_transform turned into that tile. p is a [4, 2 * tw + 2] scratch (a tile row's
    A dy), zeros a row of OW zeros."""
    kernels, ow = g.shape[1], g.shape[3]
    for k in range(kernels):
        for r in range(r0, r1):
            n, a = r // th, r % th
            g0 = g[n, k, 2 * a]
            g1 = _row(g, n, k, 2 * a + 1, zeros)
            for col in range(ow):  # A dy: rows y0, y0 + y1, y0 - y1, -y1
                y0, y1 = g0[col], g1[col]
                p[0, col] = y0
                p[1, col] = y0 + y1
                p[2, col] = y0 - y1
                p[3, col] = -y1
            if ow & 1:
                for i in range(4):
                    p[i, ow] = 0
            t0 = (r - r0) * tw
            for i in range(4):  # (A dy) A^T, row by row
                for b in range(tw):
                    p0, p1 = p[i, 2 * b], p[i, 2 * b + 1]
                    t = t0 + b
                    dm[4 * i, k, t] = p0
                    dm[4 * i + 1, k, t] = p0 + p1
                    dm[4 * i + 2, k, t] = p0 - p1
                    dm[4 * i + 3, k, t] = -p1
