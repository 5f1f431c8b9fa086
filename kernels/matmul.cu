// matmul.cu: tiled matmul with an activation derivative fused into its operand load.
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t below).
//
// act_matmul_bwd(dy, z, w, dx, M, N, K, w_stride_k, w_stride_n, act)   block (16, 16)
//   dx[m, k] = sum_n dy[m, n] f'(z[m, n]) w[k, n]      i.e. dX = (dY * f'(Z)) @ W^T
//   dy, z: contiguous [M, N]; dx: contiguous [M, K]; w: [K, N] at w[k * w_stride_k +
//   n * w_stride_n] (element strides, so a transposed view needs no copy). f is an ACT_* code
//   (activation.cuh); z may be null for ACT_IDENTITY. The product dY * f'(Z) is formed while
//   the tile is loaded into shared memory and never written to global memory. Tiles are
//   16 x 16; the grid strides over output tiles (x over K, y over M), so any grid works;
//   partial tiles at the edges are zero-padded.
#include "common.cuh"

#include "activation.cuh"

#define TILE 16

extern "C" __global__ void act_matmul_bwd(const scalar_t* __restrict__ dy,
                                          const scalar_t* __restrict__ z,
                                          const scalar_t* __restrict__ w, scalar_t* __restrict__ dx,
                                          long long M, long long N, long long K,
                                          long long w_stride_k, long long w_stride_n, int act) {
  __shared__ scalar_t g_tile[TILE][TILE];      // g_tile[i][j] = (dY * f'(Z))[m0 + i, n0 + j]
  __shared__ scalar_t w_tile[TILE][TILE + 1];  // w_tile[i][j] = W[k0 + i, n0 + j]; +1 column
                                               // keeps the transposed reads conflict-free
  const int tx = threadIdx.x, ty = threadIdx.y;
  const long long tiles_m = (M + TILE - 1) / TILE, tiles_k = (K + TILE - 1) / TILE;
  for (long long tm = blockIdx.y; tm < tiles_m; tm += gridDim.y) {
    for (long long tk = blockIdx.x; tk < tiles_k; tk += gridDim.x) {
      const long long m = tm * TILE + ty;     // output row of this thread
      const long long k = tk * TILE + tx;     // output column of this thread
      const long long w_row = tk * TILE + ty; // row of W this thread loads
      scalar_t acc = scalar_t(0);
      for (long long n0 = 0; n0 < N; n0 += TILE) {
        const long long n = n0 + tx;
        scalar_t g = scalar_t(0);
        if (m < M && n < N) {
          const long long i = m * N + n;
          g = act == ACT_IDENTITY ? dy[i] : dy[i] * act_grad(act, z[i]);
        }
        g_tile[ty][tx] = g;
        w_tile[ty][tx] = (w_row < K && n < N) ? w[w_row * w_stride_k + n * w_stride_n]
                                              : scalar_t(0);
        __syncthreads();
        for (int j = 0; j < TILE; ++j) acc += g_tile[ty][j] * w_tile[tx][j];
        __syncthreads();  // the tiles are overwritten by the next step
      }
      if (m < M && k < K) dx[m * K + k] = acc;
    }
  }
}
