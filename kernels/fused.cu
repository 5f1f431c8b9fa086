// fused.cu: fused bias+activation backward, column sums, softmax cross-entropy.
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t below). All arrays are
// contiguous, row-major; indices are 64-bit. No atomics: every sum has a fixed order, so
// results are bitwise reproducible for a given launch configuration.
//
// bias_act_bwd(dy, z, dz, partial, N, C, act)           block (32, 8), grid (strips, S)
//   dz[n,c] = dy[n,c] * f'(z[n,c]) for the ACT_* code `act` (activation.cuh); z may be null
//   for ACT_IDENTITY and dz may be null (then nothing is written: a plain column sum).
//   Block (x, y) owns a strip of 32 columns (grid-stride over strips) and the y-th of S equal
//   slices of the rows; partial[y, c] = sum of dz[n, c] over that slice (partial is [S, C];
//   with S = 1 it is db itself). Each thread walks the rows of one column with stride 8, so a
//   warp reads 32 consecutive values; the 8 row-lanes are summed in shared memory.
// column_sum(x, out, R, C)                              1-D grid-stride over columns
//   out[c] = sum over r of x[r, c], rows in order (the second pass of bias_act_bwd when S > 1).
// softmax_xent_fwd(logits, target, weight, loss, row_max, log_sum, N, C, ignore_index, eps)
//   One block per row (grid-stride over rows) of blockDim.x threads: a power of two from 32 to
//   ROW_THREADS (the launcher sizes it to C, so small class counts waste no threads).
//   row_max[n] = m = max_c x[n, c] and log_sum[n] = log(sum_c exp(x[n, c] - m)), so that
//   lse = logsumexp(x[n]) = m + log_sum. The two are stored apart, never added: at |x| ~ 1e4
//   in float32 the sum m + log_sum rounds to the ulp of m (~1e-3), and the backward's
//   exp(x - lse) would carry that as a relative error. With t = target[n], w = weight (all ones
//   when null) and W = sum_c w[c]:
//     loss[n] = (1 - eps) w[t] (lse - x[t]) + eps / C * (W lse - sum_c w[c] x[c])
//   which is PyTorch's cross_entropy(reduction='none', weight, label_smoothing=eps) row loss,
//   formed from differences to the row max: lse - x[t] = (m - x[t]) + log_sum.
//   loss[n] = 0 where t == ignore_index; NaN where t is outside [0, C) (PyTorch raises; a
//   kernel cannot). For reduction='mean' divide the sum by sum of w[t] over kept rows.
// softmax_xent_bwd(logits, row_max, log_sum, target, weight, weight_sum, scale, scale_stride,
//                  scale_mul, dlogits, N, C, ignore_index, eps)
//   dlogits[n, c] = s_n * (p_c ((1-eps) w[t] + eps W / C) - (1-eps) w[t] [c == t] - eps w[c] / C)
//   with p = softmax(x[n]) = exp((x - row_max[n]) - log_sum[n]) (the row max subtracted first,
//   as in the forward), W = *weight_sum (C when weight is null) and
//   s_n = scale_mul * scale[n * scale_stride] (scale may be null: s_n = scale_mul). Without
//   weights this is (softmax - smoothed one-hot) * s_n. Rows with t == ignore_index get 0.
#include "common.cuh"

#include "activation.cuh"
#include "block_reduce.cuh"

#define STRIP_COLS 32    // blockDim.x of bias_act_bwd
#define STRIP_LANES 8    // blockDim.y of bias_act_bwd
#define ROW_THREADS 256  // largest blockDim.x of the softmax_xent kernels

extern "C" __global__ void bias_act_bwd(const scalar_t* __restrict__ dy,
                                        const scalar_t* __restrict__ z, scalar_t* __restrict__ dz,
                                        scalar_t* __restrict__ partial, long long N, long long C,
                                        int act) {
  __shared__ scalar_t lane_sums[STRIP_LANES][STRIP_COLS];
  const long long rows_per_slice = (N + gridDim.y - 1) / gridDim.y;
  const long long r0 = blockIdx.y * rows_per_slice;
  const long long r1 = r0 + rows_per_slice < N ? r0 + rows_per_slice : N;
  for (long long c0 = (long long)blockIdx.x * STRIP_COLS; c0 < C;
       c0 += (long long)gridDim.x * STRIP_COLS) {
    const long long c = c0 + threadIdx.x;
    scalar_t acc = scalar_t(0);
    if (c < C) {
      for (long long r = r0 + threadIdx.y; r < r1; r += STRIP_LANES) {
        const long long i = r * C + c;
        const scalar_t g = act == ACT_IDENTITY ? dy[i] : dy[i] * act_grad(act, z[i]);
        if (dz) dz[i] = g;
        acc += g;
      }
    }
    lane_sums[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
      scalar_t s = scalar_t(0);
      for (int lane = 0; lane < STRIP_LANES; ++lane) s += lane_sums[lane][threadIdx.x];
      partial[blockIdx.y * C + c] = s;
    }
    __syncthreads();  // lane_sums is rewritten by the next strip
  }
}

extern "C" __global__ void column_sum(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                                      long long R, long long C) {
  for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < C;
       c += (long long)blockDim.x * gridDim.x) {
    scalar_t s = scalar_t(0);
    for (long long r = 0; r < R; ++r) s += x[r * C + c];
    out[c] = s;
  }
}

extern "C" __global__ void softmax_xent_fwd(const scalar_t* __restrict__ logits,
                                            const long long* __restrict__ target,
                                            const scalar_t* __restrict__ weight,
                                            scalar_t* __restrict__ loss,
                                            scalar_t* __restrict__ row_max,
                                            scalar_t* __restrict__ log_sum, long long N,
                                            long long C, long long ignore_index, scalar_t eps) {
  __shared__ scalar_t buf[ROW_THREADS];
  for (long long row = blockIdx.x; row < N; row += gridDim.x) {
    const scalar_t* x = logits + row * C;
    scalar_t m = x[0];  // a real logit, so no infinity literal is needed
    for (long long c = threadIdx.x; c < C; c += blockDim.x) m = x[c] > m ? x[c] : m;
    m = block_reduce(m, buf, true);
    // Sums of differences from the row max, not of raw logits: at |x| ~ 1e4 in float32,
    // lse - x[t] taken as (m - x[t]) + log(sum_exp) keeps the digits a plain difference loses.
    scalar_t sum_exp = scalar_t(0), sum_wd = scalar_t(0), sum_w = scalar_t(0);
    for (long long c = threadIdx.x; c < C; c += blockDim.x) {
      sum_exp += exp(x[c] - m);
      const scalar_t w = weight ? weight[c] : scalar_t(1);
      sum_wd += w * (m - x[c]);
      sum_w += w;
    }
    sum_exp = block_reduce(sum_exp, buf, false);
    if (eps != scalar_t(0)) {  // the same branch for the whole block, so barriers match
      sum_wd = block_reduce(sum_wd, buf, false);
      sum_w = block_reduce(sum_w, buf, false);
    }
    if (threadIdx.x == 0) {
      const scalar_t ls = log(sum_exp);
      const long long t = target[row];
      row_max[row] = m;  // not m + ls: that sum would round away the digits of ls
      log_sum[row] = ls;
      if (t == ignore_index) {
        loss[row] = scalar_t(0);
      } else if (t < 0 || t >= C) {
        loss[row] = scalar_t(nan(""));
      } else {
        const scalar_t wt = weight ? weight[t] : scalar_t(1);
        scalar_t l = (scalar_t(1) - eps) * wt * ((m - x[t]) + ls);
        if (eps != scalar_t(0)) l += eps / scalar_t(C) * (sum_w * ls + sum_wd);
        loss[row] = l;
      }
    }
  }
}

extern "C" __global__ void softmax_xent_bwd(
    const scalar_t* __restrict__ logits, const scalar_t* __restrict__ row_max,
    const scalar_t* __restrict__ log_sum, const long long* __restrict__ target,
    const scalar_t* __restrict__ weight, const scalar_t* __restrict__ weight_sum,
    const scalar_t* __restrict__ scale, long long scale_stride, scalar_t scale_mul,
    scalar_t* __restrict__ dlogits, long long N, long long C, long long ignore_index,
    scalar_t eps) {
  for (long long row = blockIdx.x; row < N; row += gridDim.x) {
    const scalar_t* x = logits + row * C;
    scalar_t* d = dlogits + row * C;
    const long long t = target[row];
    if (t == ignore_index || t < 0 || t >= C) {
      const scalar_t fill = t == ignore_index ? scalar_t(0) : scalar_t(nan(""));
      for (long long c = threadIdx.x; c < C; c += blockDim.x) d[c] = fill;
      continue;
    }
    const scalar_t s = scale ? scale_mul * scale[row * scale_stride] : scale_mul;
    const scalar_t wt = weight ? weight[t] : scalar_t(1);
    const scalar_t total_w = weight ? *weight_sum : scalar_t(C);
    const scalar_t p_coef = (scalar_t(1) - eps) * wt + eps * total_w / scalar_t(C);
    const scalar_t m = row_max[row], ls = log_sum[row];
    for (long long c = threadIdx.x; c < C; c += blockDim.x) {
      const scalar_t w = weight ? weight[c] : scalar_t(1);
      scalar_t g = exp((x[c] - m) - ls) * p_coef - eps * w / scalar_t(C);
      if (c == t) g -= (scalar_t(1) - eps) * wt;
      d[c] = s * g;
    }
  }
}
