// optim.cu: multi-tensor optimizer steps (PyTorch's SGD, Adam/AdamW and RMSprop update rules).
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t below): the parameters,
// gradients and state are scalar_t and so is the math (float32 math for float32 tensors).
// One launch updates a whole group of T tensors, in place. The group is described by one table
// of uint64 words in device memory (gradflow/kernels/optim.py packs the tables of all the
// launches of an optimizer step back to back, uploads them in one copy, and reuses them on
// later steps while the arrays stay where they are):
//   table[0 .. T]                  prefix: int64 offsets, prefix[0] = 0,
//                                  prefix[t + 1] = prefix[t] + numel(tensor t)
//   table[T + 1 + s T + t]         the device address of tensor t's array in section s:
//                                  s = 0 params, 1 grads, then each kernel's state lists
//                                  (a section the launch does not read may hold zeros)
// The table depends only on the arrays' addresses and sizes; every hyperparameter, and what
// changes per step (the step count, bias corrections, first_step), is a scalar argument.
// The kernel grid-strides over the flat index i in [0, prefix[T]); element i belongs to the
// tensor t with prefix[t] <= i < prefix[t + 1], found by binary search for a thread's first i
// and by walking forward afterwards (each thread's indices only grow). Empty tensors are fine.
//
// sgd_step(table, T, lr, momentum, dampening, weight_decay, nesterov, first_step)
//   sections: params, grads, bufs (bufs read only when momentum != 0)
//   d = g + weight_decay p; with momentum != 0: buf = first_step ? d : momentum buf +
//   (1 - dampening) d, then d = nesterov ? d + momentum buf : buf; p -= lr d.
// adam_step(table, T, lr, beta1, beta2, eps, weight_decay, decoupled, step_size,
//           bias_correction2_sqrt)
//   sections: params, grads, exp_avgs, exp_avg_sqs
//   decoupled (AdamW): p *= 1 - lr weight_decay; else g += weight_decay p.
//   m = beta1 m + (1 - beta1) g (exact at beta1 = 0 and 1); v = beta2 v + (1 - beta2) g^2;
//   p -= step_size m / (sqrt(v) / bias_correction2_sqrt + eps), where the host passes
//   step_size = lr / (1 - beta1^step) and bias_correction2_sqrt = sqrt(1 - beta2^step).
// rmsprop_step(table, T, lr, alpha, eps, weight_decay, momentum, centered, maximize)
//   sections: params, grads, square_avgs, grad_avgs (read when centered), bufs (read when
//   momentum != 0)
//   g = (maximize ? -g : g) + weight_decay p; sq = alpha sq + (1 - alpha) g^2;
//   centered: ga += (1 - alpha)(g - ga), avg = sqrt(sq - ga^2) + eps, else sqrt(sq) + eps;
//   momentum: buf = momentum buf + g / avg, p -= lr buf; else p -= lr (g / avg).
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

// The prefix offsets at the head of a group table.
__device__ __forceinline__ const long long* table_prefix(const unsigned long long* table) {
  return reinterpret_cast<const long long*>(table);
}

// Tensor t's array in section s of a group table of T tensors.
__device__ __forceinline__ scalar_t* table_array(const unsigned long long* table, int T, int s,
                                                 int t) {
  return reinterpret_cast<scalar_t*>(table[T + 1 + (long long)s * T + t]);
}

// Calls body(t, j) for element j of tensor t, for every element of the group: a grid-stride
// over the flat index, each thread finding its first tensor by binary search and walking
// forward from there.
template <class Body>
__device__ __forceinline__ void for_each_element(const unsigned long long* table, int T,
                                                 Body body) {
  const long long* prefix = table_prefix(table);
  const long long total = prefix[T];
  const long long stride = (long long)blockDim.x * gridDim.x;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  int t = i < total ? find_tensor(prefix, T, i) : 0;
  for (; i < total; i += stride) {
    while (prefix[t + 1] <= i) ++t;
    body(t, i - prefix[t]);
  }
}

extern "C" __global__ void sgd_step(const unsigned long long* __restrict__ table, int T,
                                    scalar_t lr, scalar_t momentum, scalar_t dampening,
                                    scalar_t weight_decay, int nesterov, int first_step) {
  for_each_element(table, T, [&](int t, long long j) {
    scalar_t* p = table_array(table, T, 0, t);
    const scalar_t* g = table_array(table, T, 1, t);
    scalar_t d = g[j];
    if (weight_decay != scalar_t(0)) d += weight_decay * p[j];
    if (momentum != scalar_t(0)) {
      scalar_t* buf = table_array(table, T, 2, t);
      const scalar_t b = first_step ? d : momentum * buf[j] + (scalar_t(1) - dampening) * d;
      buf[j] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[j] -= lr * d;
  });
}

extern "C" __global__ void adam_step(const unsigned long long* __restrict__ table, int T,
                                     scalar_t lr, scalar_t beta1, scalar_t beta2, scalar_t eps,
                                     scalar_t weight_decay, int decoupled, scalar_t step_size,
                                     scalar_t bias_correction2_sqrt) {
  for_each_element(table, T, [&](int t, long long j) {
    scalar_t* p = table_array(table, T, 0, t);
    scalar_t* m = table_array(table, T, 2, t);
    scalar_t* v = table_array(table, T, 3, t);
    scalar_t g = table_array(table, T, 1, t)[j];
    scalar_t pj = p[j];
    if (weight_decay != scalar_t(0)) {
      if (decoupled) pj *= scalar_t(1) - lr * weight_decay;
      else g += weight_decay * pj;
    }
    // beta1 m + (1 - beta1) g, exact at both ends (beta1 = 0 gives g even after a large m;
    // m + (1 - beta1)(g - m) cancelled to 0 there)
    const scalar_t mj = beta1 * m[j] + (scalar_t(1) - beta1) * g;
    const scalar_t vj = beta2 * v[j] + (scalar_t(1) - beta2) * g * g;
    m[j] = mj;
    v[j] = vj;
    p[j] = pj - step_size * mj / (sqrt(vj) / bias_correction2_sqrt + eps);
  });
}

extern "C" __global__ void rmsprop_step(const unsigned long long* __restrict__ table, int T,
                                        scalar_t lr, scalar_t alpha, scalar_t eps,
                                        scalar_t weight_decay, scalar_t momentum, int centered,
                                        int maximize) {
  for_each_element(table, T, [&](int t, long long j) {
    scalar_t* p = table_array(table, T, 0, t);
    scalar_t* sq = table_array(table, T, 2, t);
    const scalar_t pj = p[j];
    scalar_t g = table_array(table, T, 1, t)[j];
    if (maximize) g = -g;
    if (weight_decay != scalar_t(0)) g += weight_decay * pj;
    const scalar_t sqj = alpha * sq[j] + (scalar_t(1) - alpha) * (g * g);
    sq[j] = sqj;
    scalar_t avg;
    if (centered) {
      scalar_t* ga = table_array(table, T, 3, t);
      const scalar_t gaj = ga[j] + (scalar_t(1) - alpha) * (g - ga[j]);
      ga[j] = gaj;
      avg = sqrt(sqj - gaj * gaj) + eps;
    } else {
      avg = sqrt(sqj) + eps;
    }
    if (momentum != scalar_t(0)) {
      scalar_t* buf = table_array(table, T, 4, t);
      const scalar_t b = momentum * buf[j] + g / avg;
      buf[j] = b;
      p[j] = pj - lr * b;
    } else {
      p[j] = pj - lr * (g / avg);
    }
  });
}
