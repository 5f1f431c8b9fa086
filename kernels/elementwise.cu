// elementwise.cu: activation forward/backward and binary-op backward kernels.
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t below). Every kernel is a
// 1-D grid-stride loop over n contiguous elements with 64-bit indices, so any grid covers any
// n. Inputs and outputs are contiguous and of length n; outputs may not alias inputs.
//
// Vectorized (common.cuh, VEC_GRID_STRIDE): when every pointer argument is 16-byte aligned (a
// null optional output counts as aligned), each thread loads and stores one 16-byte vector per
// grid-stride step (float4: 4 floats, double2: 2 doubles), and the last n % VEC_LANES elements
// are done one by one. Otherwise (a view starting mid-vector) the whole loop is element by
// element. Both paths apply the same per-element code (written once per op below). The launcher
// sizes the grid for one thread per vector when the arrays are aligned.
//
// Activations share one signature so the launcher is table-driven; p0/p1 are the activation's
// scalar parameters (unused ones are ignored):
//   <act>_fwd(x, y, n, p0, p1):        y = f(x)
//   <act>_bwd(saved, gy, gx, n, p0, p1): gx = gy * f'(x); `saved` is the input x, except for
//                                       sigmoid and tanh, where it is the output y.
//   relu          f = max(x, 0)                       f' = [x > 0]   (relu'(0) = 0)
//   leaky_relu    p0 = negative_slope                 f' = x > 0 ? 1 : p0
//   elu           p0 = alpha: x > 0 ? x : p0 (e^x-1)  f' = x > 0 ? 1 : p0 e^x
//   gelu_erf      x Phi(x)                            f' = Phi(x) + x phi(x)
//   gelu_tanh     0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))   (PyTorch approximate='tanh')
//   sigmoid       f' = y (1 - y)                      tanh  f' = 1 - y^2
//   silu          x s(x)                              f' = s (1 + x (1 - s))
//   softplus      p0 = beta, p1 = threshold: log1p(e^(beta x)) / beta, or x when
//                 beta x > threshold;                 f' = beta x > threshold ? 1 : s(beta x)
// Binary backward over same-shape (already broadcast) operands; a null ga or gb is skipped
// (and an input only it needs is not read):
//   mul_bwd(a, b, g, ga, gb, n):       ga = g b,  gb = g a
//   div_bwd(a, b, g, ga, gb, n):       ga = g / b,  gb = -(g / b) a / b
//   pow_bwd(a, b, out, g, ga, gb, n):  ga = b == 0 ? 0 : g b a^(b-1)
//                                      gb = (a == 0 && b >= 0) ? 0 : g out log(a)
//                                      (PyTorch's conventions; out = a^b, recomputed if null)
#include "common.cuh"

#include "activation.cuh"

// y[i] = f(x[i]) for i in [i0, i0 + L): one 16-byte vector (L == VEC_LANES) or one element.
template <int L, class F>
__device__ __forceinline__ void map1_step(long long i0, const F& f, const scalar_t* __restrict__ x,
                                          scalar_t* __restrict__ y) {
  const lanes_t<L> xv = load_lanes<L>(x, i0);
  lanes_t<L> yv;
  for (int k = 0; k < L; ++k) yv[k] = f(xv[k]);
  store_lanes<L>(y, i0, yv);
}

// y[i] = f(a[i], b[i]) for i in [i0, i0 + L).
template <int L, class F>
__device__ __forceinline__ void map2_step(long long i0, const F& f, const scalar_t* __restrict__ a,
                                          const scalar_t* __restrict__ b,
                                          scalar_t* __restrict__ y) {
  const lanes_t<L> av = load_lanes<L>(a, i0), bv = load_lanes<L>(b, i0);
  lanes_t<L> yv;
  for (int k = 0; k < L; ++k) yv[k] = f(av[k], bv[k]);
  store_lanes<L>(y, i0, yv);
}

// Each activation is a per-element function object (written once, applied to every lane and to
// the scalar tail) and a kernel that maps it over n elements.
#define ACTIVATION_FWD(name, expr)                                                      \
  struct name##_fwd_fn {                                                                \
    scalar_t p0, p1;                                                                    \
    __device__ __forceinline__ scalar_t operator()(scalar_t x) const { return (expr); } \
  };                                                                                    \
  extern "C" __global__ void name##_fwd(const scalar_t* __restrict__ xs,                \
                                        scalar_t* __restrict__ ys, long long n,         \
                                        scalar_t p0, scalar_t p1) {                     \
    VEC_GRID_STRIDE(n, vec_aligned(xs, ys), map1_step, name##_fwd_fn{p0, p1}, xs, ys);  \
  }

// `s` is the saved value (x, or y for sigmoid/tanh); expr is f' in terms of s.
#define ACTIVATION_BWD(name, expr)                                                          \
  struct name##_bwd_fn {                                                                    \
    scalar_t p0, p1;                                                                        \
    __device__ __forceinline__ scalar_t operator()(scalar_t s, scalar_t g) const {          \
      return g * (expr);                                                                    \
    }                                                                                       \
  };                                                                                        \
  extern "C" __global__ void name##_bwd(const scalar_t* __restrict__ saved,                 \
                                        const scalar_t* __restrict__ gy,                    \
                                        scalar_t* __restrict__ gx, long long n,             \
                                        scalar_t p0, scalar_t p1) {                         \
    VEC_GRID_STRIDE(n, vec_aligned(saved, gy, gx), map2_step, name##_bwd_fn{p0, p1}, saved, \
                    gy, gx);                                                                \
  }

__device__ __forceinline__ scalar_t softplus_of(scalar_t x, scalar_t beta, scalar_t threshold) {
  return x * beta > threshold ? x : log1p(exp(x * beta)) / beta;
}

ACTIVATION_FWD(relu, x > scalar_t(0) ? x : scalar_t(0))
ACTIVATION_FWD(leaky_relu, x > scalar_t(0) ? x : x * p0)
ACTIVATION_FWD(elu, x > scalar_t(0) ? x : p0 * expm1(x))
ACTIVATION_FWD(gelu_erf, gelu_erf_of(x))
ACTIVATION_FWD(gelu_tanh, gelu_tanh_of(x))
ACTIVATION_FWD(sigmoid, sigmoid_of(x))
ACTIVATION_FWD(tanh, tanh(x))
ACTIVATION_FWD(silu, x * sigmoid_of(x))
ACTIVATION_FWD(softplus, softplus_of(x, p0, p1))

ACTIVATION_BWD(relu, s > scalar_t(0) ? scalar_t(1) : scalar_t(0))
ACTIVATION_BWD(leaky_relu, s > scalar_t(0) ? scalar_t(1) : p0)
ACTIVATION_BWD(elu, s > scalar_t(0) ? scalar_t(1) : p0 * exp(s))
ACTIVATION_BWD(gelu_erf, gelu_erf_grad(s))
ACTIVATION_BWD(gelu_tanh, gelu_tanh_grad(s))
ACTIVATION_BWD(sigmoid, sigmoid_grad_from_output(s))
ACTIVATION_BWD(tanh, tanh_grad_from_output(s))
ACTIVATION_BWD(silu, silu_grad(s))
ACTIVATION_BWD(softplus, s * p0 > p1 ? scalar_t(1) : sigmoid_of(s * p0))

// Binary backward steps over elements [i0, i0 + L). An input is loaded only when a requested
// gradient needs it, as a scalar loop would.
template <int L>
__device__ __forceinline__ void mul_bwd_step(long long i0, const scalar_t* __restrict__ a,
                                             const scalar_t* __restrict__ b,
                                             const scalar_t* __restrict__ g,
                                             scalar_t* __restrict__ ga,
                                             scalar_t* __restrict__ gb) {
  const lanes_t<L> gv = load_lanes<L>(g, i0);
  if (ga) {
    const lanes_t<L> bv = load_lanes<L>(b, i0);
    lanes_t<L> r;
    for (int k = 0; k < L; ++k) r[k] = gv[k] * bv[k];
    store_lanes<L>(ga, i0, r);
  }
  if (gb) {
    const lanes_t<L> av = load_lanes<L>(a, i0);
    lanes_t<L> r;
    for (int k = 0; k < L; ++k) r[k] = gv[k] * av[k];
    store_lanes<L>(gb, i0, r);
  }
}

template <int L>
__device__ __forceinline__ void div_bwd_step(long long i0, const scalar_t* __restrict__ a,
                                             const scalar_t* __restrict__ b,
                                             const scalar_t* __restrict__ g,
                                             scalar_t* __restrict__ ga,
                                             scalar_t* __restrict__ gb) {
  const lanes_t<L> bv = load_lanes<L>(b, i0), gv = load_lanes<L>(g, i0);
  lanes_t<L> q;
  for (int k = 0; k < L; ++k) q[k] = gv[k] / bv[k];
  if (ga) store_lanes<L>(ga, i0, q);
  if (gb) {
    const lanes_t<L> av = load_lanes<L>(a, i0);
    lanes_t<L> r;
    for (int k = 0; k < L; ++k) r[k] = -q[k] * av[k] / bv[k];
    store_lanes<L>(gb, i0, r);
  }
}

// pow's per-element gradients (PyTorch's conventions at a zero base or exponent).
__device__ __forceinline__ scalar_t pow_grad_base(scalar_t x, scalar_t e, scalar_t g) {
  return e == scalar_t(0) ? scalar_t(0) : g * e * pow(x, e - scalar_t(1));
}
__device__ __forceinline__ scalar_t pow_grad_exponent(scalar_t x, scalar_t e, scalar_t y,
                                                      scalar_t g) {
  return (x == scalar_t(0) && e >= scalar_t(0)) ? scalar_t(0) : g * y * log(x);
}

template <int L>
__device__ __forceinline__ void pow_bwd_step(long long i0, const scalar_t* __restrict__ a,
                                             const scalar_t* __restrict__ b,
                                             const scalar_t* __restrict__ out,
                                             const scalar_t* __restrict__ g,
                                             scalar_t* __restrict__ ga,
                                             scalar_t* __restrict__ gb) {
  const lanes_t<L> x = load_lanes<L>(a, i0), e = load_lanes<L>(b, i0), gv = load_lanes<L>(g, i0);
  if (ga) {
    lanes_t<L> r;
    for (int k = 0; k < L; ++k) r[k] = pow_grad_base(x[k], e[k], gv[k]);
    store_lanes<L>(ga, i0, r);
  }
  if (gb) {
    lanes_t<L> y;
    if (out) {
      y = load_lanes<L>(out, i0);
    } else {
      for (int k = 0; k < L; ++k) y[k] = pow(x[k], e[k]);
    }
    lanes_t<L> r;
    for (int k = 0; k < L; ++k) r[k] = pow_grad_exponent(x[k], e[k], y[k], gv[k]);
    store_lanes<L>(gb, i0, r);
  }
}

extern "C" __global__ void mul_bwd(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   const scalar_t* __restrict__ g, scalar_t* __restrict__ ga,
                                   scalar_t* __restrict__ gb, long long n) {
  VEC_GRID_STRIDE(n, vec_aligned(a, b, g, ga, gb), mul_bwd_step, a, b, g, ga, gb);
}

extern "C" __global__ void div_bwd(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   const scalar_t* __restrict__ g, scalar_t* __restrict__ ga,
                                   scalar_t* __restrict__ gb, long long n) {
  VEC_GRID_STRIDE(n, vec_aligned(a, b, g, ga, gb), div_bwd_step, a, b, g, ga, gb);
}

extern "C" __global__ void pow_bwd(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   const scalar_t* __restrict__ out,
                                   const scalar_t* __restrict__ g, scalar_t* __restrict__ ga,
                                   scalar_t* __restrict__ gb, long long n) {
  VEC_GRID_STRIDE(n, vec_aligned(a, b, out, g, ga, gb), pow_bwd_step, a, b, out, g, ga, gb);
}
