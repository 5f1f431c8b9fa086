// attention.cu: scaled dot-product attention (gradflow/ops/attention.py), two routes.
//
// - The row kernels, attn_softmax_fwd/bwd: the masked, scaled softmax and its backward, in
//   place over score matrices; the GEMMs around them (S = Q K^T, O = P V, dP = dO V^T, dV, dQ,
//   dK) are cuBLAS's. The default route.
// - The tiled kernels, attn_flash_fwd and attn_flash_bwd_dq/dkv (second half of the file):
//   FlashAttention-style, no L x S array at all; run where gradflow/kernels/dispatch.py picks
//   "flash" (no GPU has measured them yet, so nowhere by default).
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t). Indices are 64-bit. No
// atomics: every sum has a fixed order (a tree over a block, or a loop over tiles in order),
// so results are bitwise reproducible, and the launch configuration depends on the shapes
// only (the grid, which depends on the GPU, only spreads rows or tiles over blocks).
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

#include "block_reduce.cuh"

#define ATTN_ROW_THREADS 256  // largest blockDim.x of the row kernels

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
    const scalar_t total = block_reduce(acc, buf, false);
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

// ---- the tiled route (FlashAttention-style): never writes an L x S array -------------------
//
// q [BH, L, E], k [BH, S, E], v [BH, S, Ev], o and do [BH, L, Ev], all C-contiguous, one
// batch shape (BH = the batch dims flattened; the caller expands broadcast batch dims);
// E, Ev <= FLASH_MAX_DIM. Masks as for attn_softmax_fwd (add, keep, layout, causal); no
// dropout (its mask would be an L x S array) and no gradient for an additive mask (dS is one).
// Blocks of (FLASH_LANES, FLASH_TILE) threads: threadIdx.y picks a row of the block's tile (a
// query row; a key row in attn_flash_bwd_dkv), the FLASH_LANES lanes of a row split its
// columns and head dims (lane + k * FLASH_LANES). Tiles are walked grid-stride over
// BH * ceil(rows / FLASH_TILE). Each row's online-softmax state is computed redundantly by its
// lanes, identically, so no lane waits for another's. Shared memory is fixed: four
// FLASH_TILE x (FLASH_MAX_DIM + 1) tiles at most (the +1 keeps the lanes' rows in distinct
// banks), under the 48 KiB of static shared memory in both dtypes.
//
// attn_flash_fwd(q, k, v, add, keep, n1..mc, causal, scale, o, stats, BH, L, S, E, Ev)
//   One block per query tile walks the key tiles (with causal, only those at or left of the
//   diagonal): scores x = scale * q.k + add, then the online softmax: with the row's running
//   max m and sum d of exp(x - m), a tile moving the max to m' rescales d and the output
//   accumulator by exp(m - m'). o = acc / d (0 for a row with nothing kept). stats [2, R]:
//   stats[0] = m, stats[1] = d per row (R = BH * L), all the backward needs besides q, k, v.
// attn_flash_bwd_dq(q, k, v, o, do, add, keep, n1..mc, causal, scale, stats, dq, delta,
//                   BH, L, S, E, Ev)
//   delta[r] = sum over Ev of do * o (= rowsum(dP * P)), written for attn_flash_bwd_dkv;
//   per key tile P = exp(x - m) / d is recomputed (the forward's P, bit for bit),
//   dS = P * (do.v - delta), and dq = scale * sum_c dS k_c is accumulated in registers.
// attn_flash_bwd_dkv(q, k, v, do, add, keep, n1..mc, causal, scale, stats, delta, dk, dv,
//                    BH, L, S, E, Ev)
//   One block per key tile walks the query tiles (with causal, from the diagonal on),
//   recomputes P and dS likewise and accumulates dv = sum_l P do_l and dk = scale * sum_l dS q_l.
//   dQ and dK/dV come from two kernels rather than atomics into dq (FlashAttention-2's way),
//   so the sums keep a fixed order: P is recomputed twice, and the results are deterministic.
#define FLASH_LANES 8
#define FLASH_MAX_DIM 128
enum : int {
  FLASH_TILE = sizeof(scalar_t) == 4 ? 16 : 8,  // rows per tile (float: 16, double: 8)
  FLASH_ACC = FLASH_MAX_DIM / FLASH_LANES,      // head dims each lane accumulates
  FLASH_PITCH = FLASH_MAX_DIM + 1,
};

// rows [r0, r0 + FLASH_TILE) of a [n, dim] matrix into a shared tile (zeros past row n).
__device__ __forceinline__ void flash_load(scalar_t (*tile)[FLASH_PITCH], const scalar_t* x,
                                           long long r0, long long n, long long dim) {
  const int tid = threadIdx.y * FLASH_LANES + threadIdx.x;
  for (long long i = tid; i < (long long)FLASH_TILE * dim; i += FLASH_LANES * FLASH_TILE) {
    const long long r = i / dim, e = i - r * dim;
    tile[r][e] = r0 + r < n ? x[(r0 + r) * dim + e] : scalar_t(0);
  }
}

__device__ __forceinline__ scalar_t flash_dot(const scalar_t* a, const scalar_t* b, long long n) {
  scalar_t s = scalar_t(0);
  for (long long e = 0; e < n; ++e) s += a[e] * b[e];
  return s;
}

// The score of (query row l with mask offset moff, key c) from the dot product: false when
// the place is masked out (keep, causal, or -inf after the additive mask).
__device__ __forceinline__ bool flash_score(scalar_t dot, const scalar_t* add, const bool* keep,
                                            long long moff, long long mc, long long l,
                                            long long c, int causal, scalar_t scale,
                                            scalar_t& x) {
  if (causal && c > l) return false;
  if (keep && !keep[moff + c * mc]) return false;
  x = dot * scale;
  if (add) x += add[moff + c * mc];
  return !(isinf(x) && x < scalar_t(0));
}

extern "C" __global__ void attn_flash_fwd(
    const scalar_t* __restrict__ q, const scalar_t* __restrict__ k,
    const scalar_t* __restrict__ v, const scalar_t* __restrict__ add,
    const bool* __restrict__ keep, long long n1, long long n2, long long n3, long long m0,
    long long m1, long long m2, long long m3, long long ml, long long mc, int causal,
    scalar_t scale, scalar_t* __restrict__ o, scalar_t* __restrict__ stats, long long BH,
    long long L, long long S, long long E, long long Ev) {
  __shared__ scalar_t qs[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t ks[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t vs[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t xs[FLASH_TILE][FLASH_TILE];
  __shared__ bool oks[FLASH_TILE][FLASH_TILE];
  const int lane = threadIdx.x, ty = threadIdx.y;
  const long long tiles_per = (L + FLASH_TILE - 1) / FLASH_TILE;
  for (long long tile = blockIdx.x; tile < BH * tiles_per; tile += gridDim.x) {
    const long long bh = tile / tiles_per, q0 = (tile - bh * tiles_per) * FLASH_TILE;
    const long long l = q0 + ty;
    const bool row_ok = l < L;
    const long long moff =
        row_ok ? attn_mask_row(bh, l, n1, n2, n3, m0, m1, m2, m3, ml) : 0;
    __syncthreads();  // the previous tile's readers are done with qs
    flash_load(qs, q + bh * L * E, q0, L, E);
    scalar_t m = scalar_t(0), d = scalar_t(0), acc[FLASH_ACC];
    for (int a = 0; a < FLASH_ACC; ++a) acc[a] = scalar_t(0);
    const long long k_end = causal ? (q0 + FLASH_TILE < S ? q0 + FLASH_TILE : S) : S;
    for (long long k0 = 0; k0 < k_end; k0 += FLASH_TILE) {
      __syncthreads();  // ks, vs, xs free again
      flash_load(ks, k + bh * S * E, k0, S, E);
      flash_load(vs, v + bh * S * Ev, k0, S, Ev);
      __syncthreads();
      for (int j = lane; j < FLASH_TILE; j += FLASH_LANES) {
        const long long c = k0 + j;
        scalar_t x = scalar_t(0);
        const bool ok = row_ok && c < S &&
                        flash_score(flash_dot(qs[ty], ks[j], E), add, keep, moff, mc, l, c,
                                    causal, scale, x);
        xs[ty][j] = x;
        oks[ty][j] = ok;
      }
      __syncthreads();
      bool any = false;
      scalar_t tile_max = scalar_t(0);
      for (int j = 0; j < FLASH_TILE; ++j) {
        if (!oks[ty][j]) continue;
        if (!any || xs[ty][j] > tile_max) tile_max = xs[ty][j];
        any = true;
      }
      if (!any) continue;
      const scalar_t m_new = d == scalar_t(0) || tile_max > m ? tile_max : m;
      const scalar_t alpha = d == scalar_t(0) ? scalar_t(0) : exp(m - m_new);
      d *= alpha;
      for (int a = 0; a < FLASH_ACC; ++a) acc[a] *= alpha;
      for (int j = 0; j < FLASH_TILE; ++j) {
        if (!oks[ty][j]) continue;
        const scalar_t p = exp(xs[ty][j] - m_new);
        d += p;
        for (int a = 0; a < FLASH_ACC; ++a) {
          const long long e = lane + a * FLASH_LANES;
          if (e < Ev) acc[a] += p * vs[j][e];
        }
      }
      m = m_new;
    }
    if (row_ok) {
      const long long r = bh * L + l;
      for (int a = 0; a < FLASH_ACC; ++a) {
        const long long e = lane + a * FLASH_LANES;
        if (e < Ev) o[r * Ev + e] = d == scalar_t(0) ? scalar_t(0) : acc[a] / d;
      }
      if (lane == 0) {
        stats[r] = m;
        stats[BH * L + r] = d;
      }
    }
  }
}

// P of a place from its score and its row's (max, sum); 0 for a row with nothing kept.
__device__ __forceinline__ scalar_t flash_p(bool ok, scalar_t x, scalar_t m, scalar_t d) {
  return ok && d != scalar_t(0) ? exp(x - m) / d : scalar_t(0);
}

extern "C" __global__ void attn_flash_bwd_dq(
    const scalar_t* __restrict__ q, const scalar_t* __restrict__ k,
    const scalar_t* __restrict__ v, const scalar_t* __restrict__ o,
    const scalar_t* __restrict__ dout, const scalar_t* __restrict__ add,
    const bool* __restrict__ keep, long long n1, long long n2, long long n3, long long m0,
    long long m1, long long m2, long long m3, long long ml, long long mc, int causal,
    scalar_t scale, const scalar_t* __restrict__ stats, scalar_t* __restrict__ dq,
    scalar_t* __restrict__ delta, long long BH, long long L, long long S, long long E,
    long long Ev) {
  __shared__ scalar_t qs[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t dos[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t ks[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t vs[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t dss[FLASH_TILE][FLASH_TILE];
  const int lane = threadIdx.x, ty = threadIdx.y;
  const long long tiles_per = (L + FLASH_TILE - 1) / FLASH_TILE;
  for (long long tile = blockIdx.x; tile < BH * tiles_per; tile += gridDim.x) {
    const long long bh = tile / tiles_per, q0 = (tile - bh * tiles_per) * FLASH_TILE;
    const long long l = q0 + ty, r = bh * L + l;
    const bool row_ok = l < L;
    const long long moff =
        row_ok ? attn_mask_row(bh, l, n1, n2, n3, m0, m1, m2, m3, ml) : 0;
    __syncthreads();
    flash_load(qs, q + bh * L * E, q0, L, E);
    flash_load(dos, dout + bh * L * Ev, q0, L, Ev);
    const scalar_t m = row_ok ? stats[r] : scalar_t(0);
    const scalar_t d = row_ok ? stats[BH * L + r] : scalar_t(0);
    const scalar_t dl = row_ok ? flash_dot(dout + r * Ev, o + r * Ev, Ev) : scalar_t(0);
    if (row_ok && lane == 0) delta[r] = dl;
    scalar_t acc[FLASH_ACC];
    for (int a = 0; a < FLASH_ACC; ++a) acc[a] = scalar_t(0);
    const long long k_end = causal ? (q0 + FLASH_TILE < S ? q0 + FLASH_TILE : S) : S;
    for (long long k0 = 0; k0 < k_end; k0 += FLASH_TILE) {
      __syncthreads();
      flash_load(ks, k + bh * S * E, k0, S, E);
      flash_load(vs, v + bh * S * Ev, k0, S, Ev);
      __syncthreads();
      for (int j = lane; j < FLASH_TILE; j += FLASH_LANES) {
        const long long c = k0 + j;
        scalar_t x = scalar_t(0), ds = scalar_t(0);
        const bool ok = row_ok && c < S &&
                        flash_score(flash_dot(qs[ty], ks[j], E), add, keep, moff, mc, l, c,
                                    causal, scale, x);
        const scalar_t p = flash_p(ok, x, m, d);
        if (p != scalar_t(0)) ds = p * (flash_dot(dos[ty], vs[j], Ev) - dl);
        dss[ty][j] = ds;
      }
      __syncthreads();
      for (int j = 0; j < FLASH_TILE; ++j) {
        const scalar_t ds = dss[ty][j];
        for (int a = 0; a < FLASH_ACC; ++a) {
          const long long e = lane + a * FLASH_LANES;
          if (e < E) acc[a] += ds * ks[j][e];
        }
      }
    }
    if (row_ok) {
      for (int a = 0; a < FLASH_ACC; ++a) {
        const long long e = lane + a * FLASH_LANES;
        if (e < E) dq[r * E + e] = acc[a] * scale;
      }
    }
  }
}

extern "C" __global__ void attn_flash_bwd_dkv(
    const scalar_t* __restrict__ q, const scalar_t* __restrict__ k,
    const scalar_t* __restrict__ v, const scalar_t* __restrict__ dout,
    const scalar_t* __restrict__ add, const bool* __restrict__ keep, long long n1, long long n2,
    long long n3, long long m0, long long m1, long long m2, long long m3, long long ml,
    long long mc, int causal, scalar_t scale, const scalar_t* __restrict__ stats,
    const scalar_t* __restrict__ delta, scalar_t* __restrict__ dk, scalar_t* __restrict__ dv,
    long long BH, long long L, long long S, long long E, long long Ev) {
  __shared__ scalar_t ks[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t vs[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t qs[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t dos[FLASH_TILE][FLASH_PITCH];
  __shared__ scalar_t ps[FLASH_TILE][FLASH_TILE];
  __shared__ scalar_t dss[FLASH_TILE][FLASH_TILE];
  __shared__ scalar_t row_m[FLASH_TILE], row_d[FLASH_TILE], row_delta[FLASH_TILE];
  __shared__ long long row_moff[FLASH_TILE];
  const int lane = threadIdx.x, ty = threadIdx.y;
  const long long tiles_per = (S + FLASH_TILE - 1) / FLASH_TILE;
  for (long long tile = blockIdx.x; tile < BH * tiles_per; tile += gridDim.x) {
    const long long bh = tile / tiles_per, k0 = (tile - bh * tiles_per) * FLASH_TILE;
    const long long c = k0 + ty;  // this row's key
    const bool key_ok = c < S;
    __syncthreads();
    flash_load(ks, k + bh * S * E, k0, S, E);
    flash_load(vs, v + bh * S * Ev, k0, S, Ev);
    scalar_t acc_k[FLASH_ACC], acc_v[FLASH_ACC];
    for (int a = 0; a < FLASH_ACC; ++a) acc_k[a] = acc_v[a] = scalar_t(0);
    // with causal, query l sees key c only when l >= c: queries before k0 see none of the tile
    for (long long q0 = causal ? k0 : 0; q0 < L; q0 += FLASH_TILE) {
      __syncthreads();
      flash_load(qs, q + bh * L * E, q0, L, E);
      flash_load(dos, dout + bh * L * Ev, q0, L, Ev);
      if (lane == 0) {
        const long long l = q0 + ty, r = bh * L + l;
        const bool ok = l < L;
        row_m[ty] = ok ? stats[r] : scalar_t(0);
        row_d[ty] = ok ? stats[BH * L + r] : scalar_t(0);
        row_delta[ty] = ok ? delta[r] : scalar_t(0);
        row_moff[ty] = ok ? attn_mask_row(bh, l, n1, n2, n3, m0, m1, m2, m3, ml) : 0;
      }
      __syncthreads();
      for (int i = lane; i < FLASH_TILE; i += FLASH_LANES) {
        const long long l = q0 + i;
        scalar_t x = scalar_t(0), p = scalar_t(0), ds = scalar_t(0);
        const bool ok = key_ok && l < L &&
                        flash_score(flash_dot(qs[i], ks[ty], E), add, keep, row_moff[i], mc, l,
                                    c, causal, scale, x);
        p = flash_p(ok, x, row_m[i], row_d[i]);
        if (p != scalar_t(0)) ds = p * (flash_dot(dos[i], vs[ty], Ev) - row_delta[i]);
        ps[ty][i] = p;
        dss[ty][i] = ds;
      }
      __syncthreads();
      for (int i = 0; i < FLASH_TILE; ++i) {
        const scalar_t p = ps[ty][i], ds = dss[ty][i];
        for (int a = 0; a < FLASH_ACC; ++a) {
          const long long e = lane + a * FLASH_LANES;
          if (e < Ev) acc_v[a] += p * dos[i][e];
          if (e < E) acc_k[a] += ds * qs[i][e];
        }
      }
    }
    if (key_ok) {
      const long long r = bh * S + c;
      for (int a = 0; a < FLASH_ACC; ++a) {
        const long long e = lane + a * FLASH_LANES;
        if (e < Ev) dv[r * Ev + e] = acc_v[a];
        if (e < E) dk[r * E + e] = acc_k[a] * scale;
      }
    }
  }
}
