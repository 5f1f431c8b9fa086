// elementwise.cu: activation forward/backward and binary-op backward kernels.
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t below). Every kernel is a
// 1-D grid-stride loop over n contiguous elements with 64-bit indices, so any grid covers any
// n. Inputs and outputs are contiguous and of length n; outputs may not alias inputs.
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
// Binary backward over same-shape (already broadcast) operands; a null ga or gb is skipped:
//   mul_bwd(a, b, g, ga, gb, n):       ga = g b,  gb = g a
//   div_bwd(a, b, g, ga, gb, n):       ga = g / b,  gb = -(g / b) a / b
//   pow_bwd(a, b, out, g, ga, gb, n):  ga = b == 0 ? 0 : g b a^(b-1)
//                                      gb = (a == 0 && b >= 0) ? 0 : g out log(a)
//                                      (PyTorch's conventions; out = a^b, recomputed if null)
#include "common.cuh"

#include "activation.cuh"

#define ACTIVATION_FWD(name, expr)                                                       \
  extern "C" __global__ void name##_fwd(const scalar_t* __restrict__ xs,               \
                                        scalar_t* __restrict__ ys, long long n,         \
                                        scalar_t p0, scalar_t p1) {                     \
    GRID_STRIDE_LOOP(i, n) {                                                            \
      const scalar_t x = xs[i];                                                         \
      ys[i] = (expr);                                                                   \
    }                                                                                   \
  }

// `s` is the saved value (x, or y for sigmoid/tanh); expr is f' in terms of s.
#define ACTIVATION_BWD(name, expr)                                                       \
  extern "C" __global__ void name##_bwd(const scalar_t* __restrict__ saved,            \
                                        const scalar_t* __restrict__ gy,                \
                                        scalar_t* __restrict__ gx, long long n,         \
                                        scalar_t p0, scalar_t p1) {                     \
    GRID_STRIDE_LOOP(i, n) {                                                            \
      const scalar_t s = saved[i];                                                      \
      gx[i] = gy[i] * (expr);                                                           \
    }                                                                                   \
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

extern "C" __global__ void mul_bwd(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   const scalar_t* __restrict__ g, scalar_t* __restrict__ ga,
                                   scalar_t* __restrict__ gb, long long n) {
  GRID_STRIDE_LOOP(i, n) {
    if (ga) ga[i] = g[i] * b[i];
    if (gb) gb[i] = g[i] * a[i];
  }
}

extern "C" __global__ void div_bwd(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   const scalar_t* __restrict__ g, scalar_t* __restrict__ ga,
                                   scalar_t* __restrict__ gb, long long n) {
  GRID_STRIDE_LOOP(i, n) {
    const scalar_t q = g[i] / b[i];
    if (ga) ga[i] = q;
    if (gb) gb[i] = -q * a[i] / b[i];
  }
}

extern "C" __global__ void pow_bwd(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                   const scalar_t* __restrict__ out,
                                   const scalar_t* __restrict__ g, scalar_t* __restrict__ ga,
                                   scalar_t* __restrict__ gb, long long n) {
  GRID_STRIDE_LOOP(i, n) {
    const scalar_t x = a[i], e = b[i];
    if (ga) ga[i] = e == scalar_t(0) ? scalar_t(0) : g[i] * e * pow(x, e - scalar_t(1));
    if (gb) {
      const scalar_t y = out ? out[i] : pow(x, e);
      gb[i] = (x == scalar_t(0) && e >= scalar_t(0)) ? scalar_t(0) : g[i] * y * log(x);
    }
  }
}
