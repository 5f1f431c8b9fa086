// window.cuh: index arithmetic of sliding windows, shared by conv.cu (col2im) and pooling.cu;
// the Python side of the same geometry is gradflow/ops/window.py.
#pragma once

// The output index o with o * stride + offset = p, if there is one in [0, size); else -1.
__device__ __forceinline__ long long window_index(long long p, long long offset, long long stride,
                                                  long long size) {
  const long long q = p - offset;
  if (q < 0 || q % stride != 0) return -1;
  const long long o = q / stride;
  return o < size ? o : -1;
}
