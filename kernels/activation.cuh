// activation.cuh: activation functions and their derivatives, shared by elementwise.cu,
// fused.cu and matmul.cu (the loader inlines this file, so each module compiles standalone).
//
// Needs `scalar_t` (float or double) defined before inclusion. Derivatives take the
// pre-activation input z, except sigmoid/tanh_grad_from_output, which take the output y.
// Formulas follow PyTorch's autograd: relu'(0) = 0; gelu_tanh uses
// sqrt(2/pi) * (z + 0.044715 z^3); silu' = s (1 + z (1 - s)) with s = sigmoid(z).
#pragma once

// Codes of the activations a fused kernel can differentiate (the `act` kernel argument);
// gradflow/kernels/_common.py holds the same table.
#define ACT_IDENTITY 0
#define ACT_RELU 1
#define ACT_SIGMOID 2
#define ACT_TANH 3
#define ACT_GELU_ERF 4
#define ACT_GELU_TANH 5
#define ACT_SILU 6

#define GF_SQRT_HALF scalar_t(0.70710678118654752440)      // 1/sqrt(2)
#define GF_INV_SQRT_2PI scalar_t(0.39894228040143267794)   // 1/sqrt(2*pi)
#define GF_SQRT_2_OVER_PI scalar_t(0.79788456080286535588) // sqrt(2/pi)
#define GF_GELU_KAPPA scalar_t(0.044715)

__device__ __forceinline__ scalar_t sigmoid_of(scalar_t z) {
  return scalar_t(1) / (scalar_t(1) + exp(-z));
}

__device__ __forceinline__ scalar_t gelu_erf_of(scalar_t z) {
  return scalar_t(0.5) * z * (scalar_t(1) + erf(z * GF_SQRT_HALF));
}

__device__ __forceinline__ scalar_t gelu_tanh_of(scalar_t z) {
  const scalar_t inner = GF_SQRT_2_OVER_PI * (z + GF_GELU_KAPPA * z * z * z);
  return scalar_t(0.5) * z * (scalar_t(1) + tanh(inner));
}

__device__ __forceinline__ scalar_t sigmoid_grad_from_output(scalar_t y) {
  return y * (scalar_t(1) - y);
}

__device__ __forceinline__ scalar_t tanh_grad_from_output(scalar_t y) {
  return scalar_t(1) - y * y;
}

__device__ __forceinline__ scalar_t gelu_erf_grad(scalar_t z) {
  const scalar_t cdf = scalar_t(0.5) * (scalar_t(1) + erf(z * GF_SQRT_HALF));
  const scalar_t pdf = GF_INV_SQRT_2PI * exp(scalar_t(-0.5) * z * z);
  return cdf + z * pdf;
}

__device__ __forceinline__ scalar_t gelu_tanh_grad(scalar_t z) {
  const scalar_t z2 = z * z;
  const scalar_t t = tanh(GF_SQRT_2_OVER_PI * (z + GF_GELU_KAPPA * z2 * z));
  const scalar_t dinner = GF_SQRT_2_OVER_PI * (scalar_t(1) + scalar_t(3) * GF_GELU_KAPPA * z2);
  return scalar_t(0.5) * (scalar_t(1) + t) + scalar_t(0.5) * z * (scalar_t(1) - t * t) * dinner;
}

__device__ __forceinline__ scalar_t silu_grad(scalar_t z) {
  const scalar_t s = sigmoid_of(z);
  return s * (scalar_t(1) + z * (scalar_t(1) - s));
}

// f'(z) for one of the ACT_* codes (an unknown code acts as identity).
__device__ __forceinline__ scalar_t act_grad(int act, scalar_t z) {
  switch (act) {
    case ACT_RELU: return z > scalar_t(0) ? scalar_t(1) : scalar_t(0);
    case ACT_SIGMOID: return sigmoid_grad_from_output(sigmoid_of(z));
    case ACT_TANH: return tanh_grad_from_output(tanh(z));
    case ACT_GELU_ERF: return gelu_erf_grad(z);
    case ACT_GELU_TANH: return gelu_tanh_grad(z);
    case ACT_SILU: return silu_grad(z);
    default: return scalar_t(1);
  }
}
