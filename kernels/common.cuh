// common.cuh: what every kernel family starts with: the scalar type, the grid-stride loops and
// 16-byte vector access.
//
// Each .cu file is compiled once per dtype with -DGF_SCALAR_T=float or double (the loader
// passes it); `scalar_t` is that type. GRID_STRIDE_LOOP(i, n) visits i = 0..n-1 with 64-bit
// indices, each thread taking every (blockDim.x * gridDim.x)-th element, so any grid size
// covers any n. GRID_STRIDE_LOOP_FROM(i, start, n) does the same for i = start..n-1.
//
// Vectorized loads (for memory-bound kernels over contiguous arrays):
// - vec_t is the 16-byte CUDA vector type of scalar_t (float4, or double2) and VEC_LANES the
//   number of scalar_t in it (4, or 2). vec_traits<T> converts a vector to and from lanes.
// - lanes_t<L> holds L consecutive elements in registers. load_lanes<L>(p, i) reads p[i..i+L)
//   and store_lanes<L>(p, i, v) writes them: one 16-byte access when L == VEC_LANES (then
//   p + i must be 16-byte aligned), plain scalar accesses otherwise (L == 1 in practice).
// - vec_aligned(p, q, ...) is true when every pointer is 16-byte aligned; a null pointer counts
//   as aligned (an optional output that is not written).
// - VEC_GRID_STRIDE(n, aligned, step, args...) runs a kernel body written once as a template
//   `template <int L> void step(long long i, args...)` that handles elements i..i+L-1:
//   when `aligned` it calls step<VEC_LANES> once per whole vector (i = 0, VEC_LANES, ...;
//   grid-stride, one vector per thread per round), then step<1> for the tail of fewer than
//   VEC_LANES elements; otherwise step<1> for every element. `aligned` must be the same for
//   every thread (a uniform branch): compute it from the kernel's pointer arguments.
// float4 and double2 come from CUDA (cuda_emulation.h defines them for the CPU emulation).
#pragma once

#ifndef GF_SCALAR_T
#error "compile with -DGF_SCALAR_T=float or -DGF_SCALAR_T=double"
#endif
typedef GF_SCALAR_T scalar_t;

#define GRID_STRIDE_LOOP(i, n)                                                    \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (long long)blockDim.x * gridDim.x)

#define GRID_STRIDE_LOOP_FROM(i, start, n)                                                  \
  for (long long i = (start) + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (long long)blockDim.x * gridDim.x)

template <class T>
struct vec_traits;

template <>
struct vec_traits<float> {
  typedef float4 type;
  static __device__ __forceinline__ void unpack(const float4& v, float* s) {
    s[0] = v.x;
    s[1] = v.y;
    s[2] = v.z;
    s[3] = v.w;
  }
  static __device__ __forceinline__ float4 pack(const float* s) {
    float4 v;
    v.x = s[0];
    v.y = s[1];
    v.z = s[2];
    v.w = s[3];
    return v;
  }
};

template <>
struct vec_traits<double> {
  typedef double2 type;
  static __device__ __forceinline__ void unpack(const double2& v, double* s) {
    s[0] = v.x;
    s[1] = v.y;
  }
  static __device__ __forceinline__ double2 pack(const double* s) {
    double2 v;
    v.x = s[0];
    v.y = s[1];
    return v;
  }
};

typedef vec_traits<scalar_t>::type vec_t;
// An enum, not a constexpr variable: nvcc warns about an unused variable in families that do
// not use it.
enum : int { VEC_LANES = int(sizeof(vec_t) / sizeof(scalar_t)) };
static_assert(sizeof(vec_t) == 16 && alignof(vec_t) == 16, "vec_t must be a 16-byte vector");

template <int L>
struct lanes_t {
  scalar_t v[L];
  __device__ __forceinline__ scalar_t& operator[](int k) { return v[k]; }
  __device__ __forceinline__ const scalar_t& operator[](int k) const { return v[k]; }
};

template <int L>
__device__ __forceinline__ lanes_t<L> load_lanes(const scalar_t* p, long long i) {
  lanes_t<L> r;
  if constexpr (L == VEC_LANES) {
    vec_traits<scalar_t>::unpack(*reinterpret_cast<const vec_t*>(p + i), r.v);
  } else {
    for (int k = 0; k < L; ++k) r[k] = p[i + k];
  }
  return r;
}

template <int L>
__device__ __forceinline__ void store_lanes(scalar_t* p, long long i, const lanes_t<L>& r) {
  if constexpr (L == VEC_LANES) {
    *reinterpret_cast<vec_t*>(p + i) = vec_traits<scalar_t>::pack(r.v);
  } else {
    for (int k = 0; k < L; ++k) p[i + k] = r[k];
  }
}

template <class... T>
__device__ __forceinline__ bool vec_aligned(const T*... p) {
  return ((reinterpret_cast<unsigned long long>(p) % sizeof(vec_t) == 0) && ...);
}

#define VEC_GRID_STRIDE(n, aligned, step, ...)                                           \
  do {                                                                                   \
    long long gf_scalar_from = 0;                                                        \
    if (aligned) {                                                                       \
      const long long gf_vectors = (n) / VEC_LANES;                                      \
      GRID_STRIDE_LOOP(gf_v, gf_vectors) step<VEC_LANES>(gf_v * VEC_LANES, __VA_ARGS__); \
      gf_scalar_from = gf_vectors * VEC_LANES;                                           \
    }                                                                                    \
    GRID_STRIDE_LOOP_FROM(gf_i, gf_scalar_from, (n)) step<1>(gf_i, __VA_ARGS__);         \
  } while (0)
