// block_reduce.cuh: the sum (or max) of one value per thread over a thread block, for the
// kernels that give each row one block (fused.cu's softmax_xent, attention.cu's row kernels).
//
// block_reduce(v, buf, take_max): every thread passes its v and the same shared buffer of at
// least blockDim.x elements; blockDim.x must be a power of two. The result is returned to
// every thread. The tree order is fixed (halves folded in turn), so the bits do not depend on
// the grid or on scheduling.
#pragma once

__device__ __forceinline__ scalar_t block_reduce(scalar_t v, scalar_t* buf, bool take_max) {
  const unsigned t = threadIdx.x;
  buf[t] = v;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half >>= 1) {
    if (t < half) buf[t] = take_max ? (buf[t + half] > buf[t] ? buf[t + half] : buf[t])
                                    : buf[t] + buf[t + half];
    __syncthreads();
  }
  const scalar_t total = buf[0];
  __syncthreads();  // everyone has read buf[0] before buf is reused
  return total;
}
