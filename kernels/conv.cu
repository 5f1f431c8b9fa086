// conv.cu: im2col and col2im, the data movement around the GEMMs of a 2-D convolution.
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t below). All arrays are
// contiguous, row-major; indices are 64-bit; every kernel is a 1-D grid-stride loop, so any
// grid covers any size. No atomics: col2im gathers, so results are deterministic.
//
// Geometry shared by both kernels (the conv's, not the transposed conv's):
//   x is [N, C, H, W]; the kernel window is kh x kw with dilation (dh, dw); output pixel
//   (oh, ow) reads input rows oh * sh - pt + i * dh and columns ow * sw - pl + j * dw for
//   i < kh, j < kw (rows and columns outside [0, H) x [0, W) are zero padding). OH x OW is the
//   output size the caller chose (bottom/right padding is implied by it).
//   cols is [C * kh * kw, N * OH * OW], row (c, i, j), column (n, oh, ow): the layout whose
//   GEMM with a [O, C * kh * kw] weight gives the output as [O, N * OH * OW].
//
// im2col_fwd(x, cols, N, C, H, W, kh, kw, OH, OW, sh, sw, pt, pl, dh, dw)
//   cols[(c, i, j), (n, oh, ow)] = x[n, c, oh * sh - pt + i * dh, ow * sw - pl + j * dw] or 0.
//   One thread per element of cols: consecutive threads write consecutive columns.
// col2im(cols, dx, N, C, H, W, kh, kw, OH, OW, sh, sw, pt, pl, dh, dw)
//   The adjoint of im2col_fwd: dx[n, c, h, w] = sum of cols[(c, i, j), (n, oh, ow)] over the
//   (i, j, oh, ow) with oh * sh - pt + i * dh = h and ow * sw - pl + j * dw = w. One thread per
//   element of dx gathers its kh * kw candidates in a fixed order (i, then j).
#include "common.cuh"
#include "window.cuh"

extern "C" __global__ void im2col_fwd(const scalar_t* __restrict__ x, scalar_t* __restrict__ cols,
                                      long long N, long long C, long long H, long long W,
                                      long long kh, long long kw, long long OH, long long OW,
                                      long long sh, long long sw, long long pt, long long pl,
                                      long long dh, long long dw) {
  const long long per_row = N * OH * OW;
  const long long total = C * kh * kw * per_row;
  GRID_STRIDE_LOOP(idx, total) {
    const long long ow = idx % OW;
    const long long oh = idx / OW % OH;
    const long long n = idx / (OH * OW) % N;
    const long long row = idx / per_row;  // (c, i, j)
    const long long j = row % kw;
    const long long i = row / kw % kh;
    const long long c = row / (kh * kw);
    const long long h = oh * sh - pt + i * dh;
    const long long w = ow * sw - pl + j * dw;
    const bool inside = h >= 0 && h < H && w >= 0 && w < W;
    cols[idx] = inside ? x[((n * C + c) * H + h) * W + w] : scalar_t(0);
  }
}

extern "C" __global__ void col2im(const scalar_t* __restrict__ cols, scalar_t* __restrict__ dx,
                                  long long N, long long C, long long H, long long W,
                                  long long kh, long long kw, long long OH, long long OW,
                                  long long sh, long long sw, long long pt, long long pl,
                                  long long dh, long long dw) {
  const long long per_row = N * OH * OW;
  const long long total = N * C * H * W;
  GRID_STRIDE_LOOP(idx, total) {
    const long long w = idx % W;
    const long long h = idx / W % H;
    const long long c = idx / (H * W) % C;
    const long long n = idx / (C * H * W);
    scalar_t acc = scalar_t(0);
    for (long long i = 0; i < kh; ++i) {
      const long long oh = window_index(h + pt, i * dh, sh, OH);
      if (oh < 0) continue;
      for (long long j = 0; j < kw; ++j) {
        const long long ow = window_index(w + pl, j * dw, sw, OW);
        if (ow < 0) continue;
        acc += cols[((c * kh + i) * kw + j) * per_row + (n * OH + oh) * OW + ow];
      }
    }
    dx[idx] = acc;
  }
}
