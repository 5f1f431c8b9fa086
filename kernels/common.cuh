// common.cuh: what every kernel family starts with: the scalar type and the grid-stride loop.
//
// Each .cu file is compiled once per dtype with -DGF_SCALAR_T=float or double (the loader
// passes it); `scalar_t` is that type. GRID_STRIDE_LOOP(i, n) visits i = 0..n-1 with 64-bit
// indices, each thread taking every (blockDim.x * gridDim.x)-th element, so any grid size
// covers any n.
#pragma once

#ifndef GF_SCALAR_T
#error "compile with -DGF_SCALAR_T=float or -DGF_SCALAR_T=double"
#endif
typedef GF_SCALAR_T scalar_t;

#define GRID_STRIDE_LOOP(i, n)                                                    \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (long long)blockDim.x * gridDim.x)
