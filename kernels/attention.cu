// attention.cu: the softmax of scaled dot-product attention and its backward, row by row.
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t). Indices are 64-bit. No
// atomics: every sum is a fixed-order tree over a block, so results are bitwise reproducible
// for a given launch configuration, and the configuration depends on the row length only.
// The GEMMs around these kernels (S = Q K^T, O = P V, dP = dO V^T, dV, dQ, dK) are cuBLAS's.
//
// Scores are the rows of a C-contiguous [R, S] array, R = (batch dims) * L: row r is query
// l = r % L of batch b = r / L. Both kernels run one block per row (grid-stride over rows) of
// blockDim.x threads, a power of two from 32 to ATTN_ROW_THREADS that the launcher sizes to S;
// thread t takes the columns t, t + blockDim.x, ...
//
// attn_softmax_fwd(s, add, keep, n1, n2, n3, m0, m1, m2, m3, ml, mc, causal, scale, drop,
//                  drop_scale, pd, R, L, S)
//   In place over the raw scores s = Q K^T:  s[r, c] <- P[r, c] = softmax_c(scale * s + add)
//   over the places that take part; the others get probability exactly 0. A place (r, c) is
//   masked out when keep[r, c] is false, when causal and c > l (the top-left aligned lower
//   triangle, PyTorch's is_causal: no mask array), or when scale * s + add is -inf (an
//   additive mask's -inf). A row with every place masked out is all 0 (PyTorch's safe
//   softmax), with no NaN. add (scalar_t) and keep (bool) are optional (null) and broadcast:
//   the launcher passes element strides instead of a materialized (..., L, S) mask. The batch
//   index b is split as b = ((i0 * n1 + i1) * n2 + i2) * n3 + i3 and the mask element of
//   (b, l, c) is at  i0*m0 + i1*m1 + i2*m2 + i3*m3 + l*ml + c*mc  (a broadcast dim has stride
//   0); add and keep, when both are given, share that layout.
//   One pass computes each thread's running max and sum of exp (online softmax: the sum is
//   rescaled when the max grows), a tree combines the (max, sum) pairs of the block, and a
//   second pass writes P = exp(x - max) / sum: s is read twice and written once, the mask read
//   twice. x = scale * s + add is formed as the array path forms it (multiply, then add).
//   Dropout (optional): drop is a contiguous [R, S] bool keep-mask drawn by the caller (CuPy's
//   generator: the same masks as the array path); pd[r, c] = drop ? P * drop_scale : 0 is
//   written beside P (drop_scale = 1 / (1 - p), 0 for p = 1). drop and pd are null together.
// attn_softmax_bwd(p, dp, drop, drop_scale, ds_scale, ds_raw, pd, R, S)
//   In place over dp = dO V^T: with g = dp (dropout: g = drop ? dp * drop_scale : 0),
//     dS = P * (g - rowsum(g * P))          (the softmax backward; 0 wherever P is 0)
//     dp <- ds_scale * dS                    (ds_scale = the attention scale: dQ = dp K and
//                                             dK = dp^T Q need no further multiply)
//     ds_raw <- dS  when ds_raw is not null  (the additive mask's gradient, unscaled)
//     pd <- drop ? P * drop_scale : 0  when pd is not null (dropout's P for dV = pd^T dO,
//                                             rebuilt here instead of by two more passes)
//   CuPy's matmul (cuBLAS) has no alpha, so the scale is folded in here rather than in a GEMM;
//   the unscaled copy is written only when the mask needs a gradient and so does Q or K.
#include "common.cuh"

#define ATTN_ROW_THREADS 256  // largest blockDim.x of the row kernels

// Sum of v over the block (blockDim.x a power of two <= ATTN_ROW_THREADS), returned to every
// thread. Fixed tree order.
__device__ __forceinline__ scalar_t attn_block_sum(scalar_t v, scalar_t* buf) {
  const unsigned t = threadIdx.x;
  buf[t] = v;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half >>= 1) {
    if (t < half) buf[t] += buf[t + half];
    __syncthreads();
  }
  const scalar_t total = buf[0];
  __syncthreads();  // everyone has read buf[0] before buf is reused
  return total;
}

// (m, d) <- the pair for the union of the two sets, where d is the sum of exp(x - m) over a
// set of scores and m their max. d == 0 marks an empty set (m is then meaningless), so no
// infinity is needed; exp of a difference <= 0 never overflows.
__device__ __forceinline__ void attn_combine(scalar_t& m, scalar_t& d, scalar_t mo, scalar_t dox) {
  if (dox == scalar_t(0)) return;
  if (d == scalar_t(0)) {
    m = mo;
    d = dox;
  } else if (mo > m) {
    d = d * exp(m - mo) + dox;
    m = mo;
  } else {
    d = d + dox * exp(mo - m);
  }
}

// The block's (max, sum of exp) from each thread's pair; returned to every thread. Fixed order.
__device__ __forceinline__ void attn_block_max_sum(scalar_t& m, scalar_t& d, scalar_t* bm,
                                                   scalar_t* bd) {
  const unsigned t = threadIdx.x;
  bm[t] = m;
  bd[t] = d;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half >>= 1) {
    if (t < half) {
      scalar_t mm = bm[t], dd = bd[t];
      attn_combine(mm, dd, bm[t + half], bd[t + half]);
      bm[t] = mm;
      bd[t] = dd;
    }
    __syncthreads();
  }
  m = bm[0];
  d = bd[0];
  __syncthreads();
}

// The element offset of (batch b, query l) in a broadcast mask (see the header).
__device__ __forceinline__ long long attn_mask_row(long long b, long long l, long long n1,
                                                   long long n2, long long n3, long long m0,
                                                   long long m1, long long m2, long long m3,
                                                   long long ml) {
  const long long i3 = b % n3;
  b /= n3;
  const long long i2 = b % n2;
  b /= n2;
  const long long i1 = b % n1;
  const long long i0 = b / n1;
  return i0 * m0 + i1 * m1 + i2 * m2 + i3 * m3 + l * ml;
}

// x = scale * s + add for column c of a row; false when the place is masked out.
__device__ __forceinline__ bool attn_score(const scalar_t* s, const scalar_t* add,
                                           const bool* keep, long long moff, long long mc,
                                           long long c, scalar_t scale, scalar_t& x) {
  if (keep && !keep[moff + c * mc]) return false;
  x = s[c] * scale;
  if (add) x += add[moff + c * mc];
  return !(isinf(x) && x < scalar_t(0));
}

extern "C" __global__ void attn_softmax_fwd(
    scalar_t* __restrict__ s, const scalar_t* __restrict__ add, const bool* __restrict__ keep,
    long long n1, long long n2, long long n3, long long m0, long long m1, long long m2,
    long long m3, long long ml, long long mc, int causal, scalar_t scale,
    const bool* __restrict__ drop, scalar_t drop_scale, scalar_t* __restrict__ pd, long long R,
    long long L, long long S) {
  __shared__ scalar_t buf_m[ATTN_ROW_THREADS];
  __shared__ scalar_t buf_d[ATTN_ROW_THREADS];
  for (long long row = blockIdx.x; row < R; row += gridDim.x) {
    scalar_t* srow = s + row * S;
    const long long b = row / L, l = row - b * L;
    const long long moff = attn_mask_row(b, l, n1, n2, n3, m0, m1, m2, m3, ml);
    const long long last = causal ? (l < S - 1 ? l : S - 1) : S - 1;  // columns after: masked
    scalar_t m = scalar_t(0), d = scalar_t(0);
    for (long long c = threadIdx.x; c <= last; c += blockDim.x) {
      scalar_t x;
      if (attn_score(srow, add, keep, moff, mc, c, scale, x)) attn_combine(m, d, x, scalar_t(1));
    }
    attn_block_max_sum(m, d, buf_m, buf_d);
    for (long long c = threadIdx.x; c < S; c += blockDim.x) {
      scalar_t p = scalar_t(0), x;
      if (d != scalar_t(0) && c <= last && attn_score(srow, add, keep, moff, mc, c, scale, x))
        p = exp(x - m) / d;
      srow[c] = p;
      if (pd) {
        const long long i = row * S + c;
        pd[i] = drop[i] ? p * drop_scale : scalar_t(0);
      }
    }
  }
}

extern "C" __global__ void attn_softmax_bwd(const scalar_t* __restrict__ p,
                                            scalar_t* __restrict__ dp,
                                            const bool* __restrict__ drop, scalar_t drop_scale,
                                            scalar_t ds_scale, scalar_t* __restrict__ ds_raw,
                                            scalar_t* __restrict__ pd, long long R, long long S) {
  __shared__ scalar_t buf[ATTN_ROW_THREADS];
  for (long long row = blockIdx.x; row < R; row += gridDim.x) {
    const long long base = row * S;
    scalar_t acc = scalar_t(0);
    for (long long c = threadIdx.x; c < S; c += blockDim.x) {
      const long long i = base + c;
      scalar_t g = dp[i];
      if (drop) g = drop[i] ? g * drop_scale : scalar_t(0);
      acc += g * p[i];
    }
    const scalar_t total = attn_block_sum(acc, buf);
    for (long long c = threadIdx.x; c < S; c += blockDim.x) {
      const long long i = base + c;
      scalar_t g = dp[i];
      if (drop) g = drop[i] ? g * drop_scale : scalar_t(0);
      const scalar_t ds = p[i] * (g - total);
      dp[i] = ds * ds_scale;
      if (ds_raw) ds_raw[i] = ds;
      if (pd) pd[i] = drop[i] ? p[i] * drop_scale : scalar_t(0);
    }
  }
}
