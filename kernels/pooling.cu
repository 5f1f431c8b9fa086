// pooling.cu: 2-D max and average pooling, forward and backward.
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t below). All arrays are
// contiguous, row-major; indices are 64-bit; every kernel is a 1-D grid-stride loop over its
// outputs, so any grid covers any size. No atomics: the backward kernels gather (each input
// pixel sums the windows that hold it, in a fixed order), so results are deterministic.
//
// x and dx are [P, H, W] (P = N * C planes); y, g and argmax are [P, OH, OW]. Output pixel
// (oh, ow) pools input rows oh * sh - ph + i * dh and columns ow * sw - pw + j * dw, i < kh,
// j < kw; positions outside the input are padding (ignored by max, zeros for the average).
// OH x OW is the output size the caller computed (floor or ceil mode).
//
// max_pool2d_fwd(x, y, argmax, P, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw)
//   y = the window's maximum, argmax = its offset i * kw + j in the window (int32). NaN wins
//   (PyTorch propagates it); ties keep the first offset. A window with no input pixel (the
//   launcher's callers never make one) gives y = 0 and argmax = -1.
// max_pool2d_bwd(g, argmax, dx, P, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw)
//   dx[p, h, w] = sum of g[p, oh, ow] over the windows whose argmax is (h, w).
// avg_pool2d_fwd(x, y, P, H, W, OH, OW, kh, kw, sh, sw, ph, pw, count_include_pad, divisor)
//   y = window sum / d, with d = divisor when divisor != 0, else the window's size clipped to
//   the padded input (count_include_pad != 0) or its number of input pixels (PyTorch's rule).
// avg_pool2d_bwd(g, dx, P, H, W, OH, OW, kh, kw, sh, sw, ph, pw, count_include_pad, divisor)
//   dx[p, h, w] = sum of g[p, oh, ow] / d(oh, ow) over the windows that hold (h, w).
#include "common.cuh"
#include "window.cuh"

extern "C" __global__ void max_pool2d_fwd(const scalar_t* __restrict__ x, scalar_t* __restrict__ y,
                                          int* __restrict__ argmax, long long P, long long H,
                                          long long W, long long OH, long long OW, long long kh,
                                          long long kw, long long sh, long long sw, long long ph,
                                          long long pw, long long dh, long long dw) {
  GRID_STRIDE_LOOP(idx, P * OH * OW) {
    const long long ow = idx % OW;
    const long long oh = idx / OW % OH;
    const scalar_t* plane = x + idx / (OH * OW) * H * W;
    scalar_t best = scalar_t(0);
    int best_offset = -1;
    for (long long i = 0; i < kh; ++i) {
      const long long h = oh * sh - ph + i * dh;
      if (h < 0 || h >= H) continue;
      for (long long j = 0; j < kw; ++j) {
        const long long w = ow * sw - pw + j * dw;
        if (w < 0 || w >= W) continue;
        const scalar_t v = plane[h * W + w];
        if (best_offset < 0 || v > best || isnan(v)) {
          best = v;
          best_offset = (int)(i * kw + j);
        }
      }
    }
    y[idx] = best;
    argmax[idx] = best_offset;
  }
}

extern "C" __global__ void max_pool2d_bwd(const scalar_t* __restrict__ g,
                                          const int* __restrict__ argmax,
                                          scalar_t* __restrict__ dx, long long P, long long H,
                                          long long W, long long OH, long long OW, long long kh,
                                          long long kw, long long sh, long long sw, long long ph,
                                          long long pw, long long dh, long long dw) {
  GRID_STRIDE_LOOP(idx, P * H * W) {
    const long long w = idx % W;
    const long long h = idx / W % H;
    const long long base = idx / (H * W) * OH * OW;
    scalar_t acc = scalar_t(0);
    for (long long i = 0; i < kh; ++i) {
      const long long oh = window_index(h + ph, i * dh, sh, OH);
      if (oh < 0) continue;
      for (long long j = 0; j < kw; ++j) {
        const long long ow = window_index(w + pw, j * dw, sw, OW);
        if (ow < 0) continue;
        const long long o = base + oh * OW + ow;
        if (argmax[o] == i * kw + j) acc += g[o];
      }
    }
    dx[idx] = acc;
  }
}

// The divisor of output pixel (oh, ow) of an average pool (see the header comment).
__device__ __forceinline__ scalar_t avg_divisor(long long oh, long long ow, long long H,
                                                long long W, long long kh, long long kw,
                                                long long sh, long long sw, long long ph,
                                                long long pw, int count_include_pad,
                                                long long divisor) {
  if (divisor != 0) return scalar_t(divisor);
  long long h0 = oh * sh - ph, w0 = ow * sw - pw;
  long long h1 = h0 + kh < H + ph ? h0 + kh : H + ph;
  long long w1 = w0 + kw < W + pw ? w0 + kw : W + pw;
  if (count_include_pad) return scalar_t((h1 - h0) * (w1 - w0));
  h0 = h0 > 0 ? h0 : 0;
  w0 = w0 > 0 ? w0 : 0;
  h1 = h1 < H ? h1 : H;
  w1 = w1 < W ? w1 : W;
  return scalar_t((h1 - h0) * (w1 - w0));
}

extern "C" __global__ void avg_pool2d_fwd(const scalar_t* __restrict__ x, scalar_t* __restrict__ y,
                                          long long P, long long H, long long W, long long OH,
                                          long long OW, long long kh, long long kw, long long sh,
                                          long long sw, long long ph, long long pw,
                                          int count_include_pad, long long divisor) {
  GRID_STRIDE_LOOP(idx, P * OH * OW) {
    const long long ow = idx % OW;
    const long long oh = idx / OW % OH;
    const scalar_t* plane = x + idx / (OH * OW) * H * W;
    scalar_t sum = scalar_t(0);
    for (long long i = 0; i < kh; ++i) {
      const long long h = oh * sh - ph + i;
      if (h < 0 || h >= H) continue;
      for (long long j = 0; j < kw; ++j) {
        const long long w = ow * sw - pw + j;
        if (w >= 0 && w < W) sum += plane[h * W + w];
      }
    }
    y[idx] = sum / avg_divisor(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad, divisor);
  }
}

extern "C" __global__ void avg_pool2d_bwd(const scalar_t* __restrict__ g, scalar_t* __restrict__ dx,
                                          long long P, long long H, long long W, long long OH,
                                          long long OW, long long kh, long long kw, long long sh,
                                          long long sw, long long ph, long long pw,
                                          int count_include_pad, long long divisor) {
  GRID_STRIDE_LOOP(idx, P * H * W) {
    const long long w = idx % W;
    const long long h = idx / W % H;
    const scalar_t* plane = g + idx / (H * W) * OH * OW;
    scalar_t acc = scalar_t(0);
    for (long long i = 0; i < kh; ++i) {
      const long long oh = window_index(h + ph, i, sh, OH);
      if (oh < 0) continue;
      for (long long j = 0; j < kw; ++j) {
        const long long ow = window_index(w + pw, j, sw, OW);
        if (ow < 0) continue;
        acc += plane[oh * OW + ow] /
               avg_divisor(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad, divisor);
      }
    }
    dx[idx] = acc;
  }
}
