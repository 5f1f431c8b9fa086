// optim.cu: multi-tensor optimizer steps (PyTorch's SGD and Adam/AdamW update rules).
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t below): the parameters,
// gradients and state are scalar_t and so is the math (float32 math for float32 tensors).
// One launch updates a whole group of T tensors, in place. The group is described by tables:
//   params, grads, ...: T device addresses (uint64) of contiguous scalar_t arrays
//   prefix: T + 1 int64 offsets, prefix[0] = 0, prefix[t + 1] = prefix[t] + numel(tensor t)
// The kernel grid-strides over the flat index i in [0, prefix[T]); element i belongs to the
// tensor t with prefix[t] <= i < prefix[t + 1], found by binary search for a thread's first i
// and by walking forward afterwards (each thread's indices only grow). Empty tensors are fine.
//
// sgd_step(params, grads, bufs, prefix, T, lr, momentum, dampening, weight_decay, nesterov,
//          first_step)
//   d = g + weight_decay p; with momentum != 0: buf = first_step ? d : momentum buf +
//   (1 - dampening) d, then d = nesterov ? d + momentum buf : buf (bufs may be null when
//   momentum == 0); p -= lr d.
// adam_step(params, grads, exp_avgs, exp_avg_sqs, prefix, T, lr, beta1, beta2, eps,
//           weight_decay, decoupled, step_size, bias_correction2_sqrt)
//   decoupled (AdamW): p *= 1 - lr weight_decay; else g += weight_decay p.
//   m += (1 - beta1)(g - m); v = beta2 v + (1 - beta2) g^2;
//   p -= step_size m / (sqrt(v) / bias_correction2_sqrt + eps), where the host passes
//   step_size = lr / (1 - beta1^step) and bias_correction2_sqrt = sqrt(1 - beta2^step).
#include "common.cuh"

// The tensor holding flat index i: the last t with prefix[t] <= i (prefix[T] > i).
__device__ __forceinline__ int find_tensor(const long long* prefix, int T, long long i) {
  int lo = 0, hi = T - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (prefix[mid] <= i) lo = mid; else hi = mid - 1;
  }
  return lo;
}

extern "C" __global__ void sgd_step(const unsigned long long* __restrict__ params,
                                    const unsigned long long* __restrict__ grads,
                                    const unsigned long long* __restrict__ bufs,
                                    const long long* __restrict__ prefix, int T, scalar_t lr,
                                    scalar_t momentum, scalar_t dampening,
                                    scalar_t weight_decay, int nesterov, int first_step) {
  const long long total = prefix[T];
  const long long stride = (long long)blockDim.x * gridDim.x;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  int t = i < total ? find_tensor(prefix, T, i) : 0;
  for (; i < total; i += stride) {
    while (prefix[t + 1] <= i) ++t;
    const long long j = i - prefix[t];
    scalar_t* p = reinterpret_cast<scalar_t*>(params[t]);
    const scalar_t* g = reinterpret_cast<const scalar_t*>(grads[t]);
    scalar_t d = g[j];
    if (weight_decay != scalar_t(0)) d += weight_decay * p[j];
    if (momentum != scalar_t(0)) {
      scalar_t* buf = reinterpret_cast<scalar_t*>(bufs[t]);
      const scalar_t b = first_step ? d : momentum * buf[j] + (scalar_t(1) - dampening) * d;
      buf[j] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[j] -= lr * d;
  }
}

extern "C" __global__ void adam_step(const unsigned long long* __restrict__ params,
                                     const unsigned long long* __restrict__ grads,
                                     const unsigned long long* __restrict__ exp_avgs,
                                     const unsigned long long* __restrict__ exp_avg_sqs,
                                     const long long* __restrict__ prefix, int T, scalar_t lr,
                                     scalar_t beta1, scalar_t beta2, scalar_t eps,
                                     scalar_t weight_decay, int decoupled, scalar_t step_size,
                                     scalar_t bias_correction2_sqrt) {
  const long long total = prefix[T];
  const long long stride = (long long)blockDim.x * gridDim.x;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  int t = i < total ? find_tensor(prefix, T, i) : 0;
  for (; i < total; i += stride) {
    while (prefix[t + 1] <= i) ++t;
    const long long j = i - prefix[t];
    scalar_t* p = reinterpret_cast<scalar_t*>(params[t]);
    scalar_t* m = reinterpret_cast<scalar_t*>(exp_avgs[t]);
    scalar_t* v = reinterpret_cast<scalar_t*>(exp_avg_sqs[t]);
    scalar_t g = reinterpret_cast<const scalar_t*>(grads[t])[j];
    scalar_t pj = p[j];
    if (weight_decay != scalar_t(0)) {
      if (decoupled) pj *= scalar_t(1) - lr * weight_decay;
      else g += weight_decay * pj;
    }
    const scalar_t mj = m[j] + (scalar_t(1) - beta1) * (g - m[j]);
    const scalar_t vj = beta2 * v[j] + (scalar_t(1) - beta2) * g * g;
    m[j] = mj;
    v[j] = vj;
    p[j] = pj - step_size * mj / (sqrt(vj) / bias_correction2_sqrt + eps);
  }
}
