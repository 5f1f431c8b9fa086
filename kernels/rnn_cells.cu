// rnn_cells.cu: the fused pointwise step of LSTM, GRU and Elman RNN cells, forward and backward.
//
// Compiled once per dtype with -DGF_SCALAR_T=float|double (scalar_t below). One launch per
// timestep; the GEMMs around it (the input projection of all steps, the recurrent product of
// each step) are cuBLAS calls made by gradflow/ops/rnn.py. Every kernel is a 1-D grid-stride
// loop over the B*H elements (b, j) of the hidden state, 64-bit indices. Arrays are
// contiguous, row-major; a "(B, G*H)" gate row of batch element b starts at b*G*H, gate k's
// unit j sits at k*H + j. Pointers named "may be null" are optional.
//
// Variable lengths: `lengths` (int64 [B], may be null = every step active) and the time index
// t. Step t is active for b when t < lengths[b]. An inactive step keeps the state
// (h_next = h_prev, c_next = c_prev), writes out = 0 and, backward, passes the state's
// gradient through unchanged and writes zero gate gradients.
//
// Forward inputs: xw = x_t W_ih^T + biases (the projection of this step), hw = h_prev W_hh^T.
// lstm_cell_fwd(xw, hw, h_prev, c_prev, gates, h_next, c_next, out, lengths, t, B, H)
//   gate order i, f, g, o (PyTorch); xw holds b_ih + b_hh.
//   i, f, o = sigmoid(.), g = tanh(.);  c_next = f c_prev + i g;  h_next = o tanh(c_next)
//   gates (B, 4H, may be null): the activations i, f, g, o, saved for backward.
// gru_cell_fwd(xw, hw, b_hn, h_prev, gates, h_next, out, lengths, t, B, H)
//   gate order r, z, n (PyTorch); xw holds b_ih and the r, z parts of b_hh; b_hn (H, may be
//   null) is the n part of b_hh, which sits inside r * (.):
//   r, z = sigmoid(.);  hn = hw_n + b_hn;  n = tanh(xw_n + r hn);  h_next = (1 - z) n + z h_prev
//   gates (B, 4H, may be null): r, z, n, hn.
// rnn_tanh_cell_fwd / rnn_relu_cell_fwd(xw, hw, h_prev, h_next, out, lengths, t, B, H)
//   h_next = act(xw + hw).  Backward reads h_next itself (tanh' = 1 - h^2, relu' = [h > 0]).
// out (B, H, may be null): the layer's output at t, h_next where active and 0 where not.
//
// Backward of one step, run from the last step to the first. The gradient reaching h_next is
//   dh = dh_carry + dh_rec + dout   (dh_rec = dgates_hidden(next step) @ W_hh, may be null;
//                                    dout = the output's gradient at t, may be null)
// dh_carry (B, H, in/out) holds the part of dh_prev that bypasses the recurrent GEMM: the
// initial value is the gradient of h_n; on exit it is 0 (LSTM, RNN) or dh z (GRU) where
// active, and dh where not. The caller adds dh_carry to the next dh_rec.
// lstm_cell_bwd(gates, c_prev, c_next, dout, dh_rec, dh_carry, dc, dgates, lengths, t, B, H)
//   dc (B, H, in/out): the gradient of c_next on entry (starting from that of c_n), of c_prev
//   on exit. dgates (B, 4H): gradients of the pre-activations, for the GEMMs of both weights.
// gru_cell_bwd(gates, h_prev, dout, dh_rec, dh_carry, dgates_x, dgates_h, lengths, t, B, H)
//   dgates_x (B, 3H): gradients of xw (r, z, n parts); dgates_h (B, 3H): of hw + (0, 0, b_hn):
//   equal to dgates_x in r and z, dn_pre * r in n.
// rnn_tanh_cell_bwd / rnn_relu_cell_bwd(h_next, dout, dh_rec, dh_carry, dpre, lengths, t, B, H)
//   dpre (B, H): the gradient of the pre-activation xw + hw.
#include "common.cuh"

#include "activation.cuh"

__device__ __forceinline__ bool step_active(const long long* lengths, long long t, long long b) {
  return lengths == nullptr || t < lengths[b];
}

// The gradient reaching h_next: carried part + recurrent GEMM part (+ output part if active).
__device__ __forceinline__ scalar_t incoming_dh(const scalar_t* dh_carry, const scalar_t* dh_rec,
                                                const scalar_t* dout, bool active, long long k) {
  scalar_t dh = dh_carry[k];
  if (dh_rec) dh += dh_rec[k];
  if (active && dout) dh += dout[k];
  return dh;
}

// An inactive forward step: the state carries over and the output is 0.
__device__ __forceinline__ void keep_state(const scalar_t* h_prev, scalar_t* h_next,
                                           scalar_t* out, long long k) {
  h_next[k] = h_prev[k];
  if (out) out[k] = scalar_t(0);
}

// An active forward step's new state h, which is also its output.
__device__ __forceinline__ void set_state(scalar_t* h_next, scalar_t* out, long long k,
                                          scalar_t h) {
  h_next[k] = h;
  if (out) out[k] = h;
}

// Four values of one unit saved for backward at gates[at + g * H], g = 0..3 (gates may be
// null: nothing is saved).
__device__ __forceinline__ void save_gates(scalar_t* gates, long long at, long long H, scalar_t a,
                                           scalar_t b, scalar_t c, scalar_t d) {
  if (!gates) return;
  gates[at] = a;
  gates[at + H] = b;
  gates[at + 2 * H] = c;
  gates[at + 3 * H] = d;
}

// ---- LSTM -------------------------------------------------------------------------------------

extern "C" __global__ void lstm_cell_fwd(
    const scalar_t* __restrict__ xw, const scalar_t* __restrict__ hw,
    const scalar_t* __restrict__ h_prev, const scalar_t* __restrict__ c_prev,
    scalar_t* __restrict__ gates, scalar_t* __restrict__ h_next, scalar_t* __restrict__ c_next,
    scalar_t* __restrict__ out, const long long* __restrict__ lengths, long long t, long long B,
    long long H) {
  GRID_STRIDE_LOOP(k, B * H) {
    const long long b = k / H;
    const long long row = b * 4 * H + (k - b * H);  // unit j of gate 0 in row b
    if (!step_active(lengths, t, b)) {
      keep_state(h_prev, h_next, out, k);
      c_next[k] = c_prev[k];
      continue;
    }
    const scalar_t i = sigmoid_of(xw[row] + hw[row]);
    const scalar_t f = sigmoid_of(xw[row + H] + hw[row + H]);
    const scalar_t g = tanh(xw[row + 2 * H] + hw[row + 2 * H]);
    const scalar_t o = sigmoid_of(xw[row + 3 * H] + hw[row + 3 * H]);
    const scalar_t c = f * c_prev[k] + i * g;
    c_next[k] = c;
    set_state(h_next, out, k, o * tanh(c));
    save_gates(gates, row, H, i, f, g, o);
  }
}

extern "C" __global__ void lstm_cell_bwd(
    const scalar_t* __restrict__ gates, const scalar_t* __restrict__ c_prev,
    const scalar_t* __restrict__ c_next, const scalar_t* __restrict__ dout,
    const scalar_t* __restrict__ dh_rec, scalar_t* __restrict__ dh_carry,
    scalar_t* __restrict__ dc, scalar_t* __restrict__ dgates,
    const long long* __restrict__ lengths, long long t, long long B, long long H) {
  GRID_STRIDE_LOOP(k, B * H) {
    const long long b = k / H;
    const long long row = b * 4 * H + (k - b * H);
    const bool active = step_active(lengths, t, b);
    const scalar_t dh = incoming_dh(dh_carry, dh_rec, dout, active, k);
    if (!active) {
      dh_carry[k] = dh;
      dgates[row] = dgates[row + H] = dgates[row + 2 * H] = dgates[row + 3 * H] = scalar_t(0);
      continue;
    }
    const scalar_t i = gates[row], f = gates[row + H];
    const scalar_t g = gates[row + 2 * H], o = gates[row + 3 * H];
    const scalar_t tc = tanh(c_next[k]);
    const scalar_t dcc = dc[k] + dh * o * tanh_grad_from_output(tc);
    dgates[row] = dcc * g * sigmoid_grad_from_output(i);
    dgates[row + H] = dcc * c_prev[k] * sigmoid_grad_from_output(f);
    dgates[row + 2 * H] = dcc * i * tanh_grad_from_output(g);
    dgates[row + 3 * H] = dh * tc * sigmoid_grad_from_output(o);
    dc[k] = dcc * f;
    dh_carry[k] = scalar_t(0);
  }
}

// ---- GRU --------------------------------------------------------------------------------------

extern "C" __global__ void gru_cell_fwd(
    const scalar_t* __restrict__ xw, const scalar_t* __restrict__ hw,
    const scalar_t* __restrict__ b_hn, const scalar_t* __restrict__ h_prev,
    scalar_t* __restrict__ gates, scalar_t* __restrict__ h_next, scalar_t* __restrict__ out,
    const long long* __restrict__ lengths, long long t, long long B, long long H) {
  GRID_STRIDE_LOOP(k, B * H) {
    const long long b = k / H;
    const long long j = k - b * H;
    const long long row = b * 3 * H + j;
    if (!step_active(lengths, t, b)) {
      keep_state(h_prev, h_next, out, k);
      continue;
    }
    const scalar_t r = sigmoid_of(xw[row] + hw[row]);
    const scalar_t z = sigmoid_of(xw[row + H] + hw[row + H]);
    const scalar_t hn = hw[row + 2 * H] + (b_hn ? b_hn[j] : scalar_t(0));
    const scalar_t n = tanh(xw[row + 2 * H] + r * hn);
    set_state(h_next, out, k, n + z * (h_prev[k] - n));
    save_gates(gates, b * 4 * H + j, H, r, z, n, hn);
  }
}

extern "C" __global__ void gru_cell_bwd(
    const scalar_t* __restrict__ gates, const scalar_t* __restrict__ h_prev,
    const scalar_t* __restrict__ dout, const scalar_t* __restrict__ dh_rec,
    scalar_t* __restrict__ dh_carry, scalar_t* __restrict__ dgates_x,
    scalar_t* __restrict__ dgates_h, const long long* __restrict__ lengths, long long t,
    long long B, long long H) {
  GRID_STRIDE_LOOP(k, B * H) {
    const long long b = k / H;
    const long long j = k - b * H;
    const long long row = b * 3 * H + j;
    const bool active = step_active(lengths, t, b);
    const scalar_t dh = incoming_dh(dh_carry, dh_rec, dout, active, k);
    if (!active) {
      dh_carry[k] = dh;
      dgates_x[row] = dgates_x[row + H] = dgates_x[row + 2 * H] = scalar_t(0);
      dgates_h[row] = dgates_h[row + H] = dgates_h[row + 2 * H] = scalar_t(0);
      continue;
    }
    const long long saved = b * 4 * H + j;
    const scalar_t r = gates[saved], z = gates[saved + H];
    const scalar_t n = gates[saved + 2 * H], hn = gates[saved + 3 * H];
    const scalar_t dn_pre = dh * (scalar_t(1) - z) * tanh_grad_from_output(n);
    const scalar_t dr_pre = dn_pre * hn * sigmoid_grad_from_output(r);
    const scalar_t dz_pre = dh * (h_prev[k] - n) * sigmoid_grad_from_output(z);
    dgates_x[row] = dgates_h[row] = dr_pre;
    dgates_x[row + H] = dgates_h[row + H] = dz_pre;
    dgates_x[row + 2 * H] = dn_pre;
    dgates_h[row + 2 * H] = dn_pre * r;
    dh_carry[k] = dh * z;
  }
}

// ---- Elman RNN (tanh or relu) -----------------------------------------------------------------

__device__ __forceinline__ void rnn_cell_fwd(const scalar_t* __restrict__ xw,
                                             const scalar_t* __restrict__ hw,
                                             const scalar_t* __restrict__ h_prev,
                                             scalar_t* __restrict__ h_next,
                                             scalar_t* __restrict__ out,
                                             const long long* __restrict__ lengths, long long t,
                                             long long B, long long H, int act) {
  GRID_STRIDE_LOOP(k, B * H) {
    if (!step_active(lengths, t, k / H)) {
      keep_state(h_prev, h_next, out, k);
      continue;
    }
    const scalar_t a = xw[k] + hw[k];
    set_state(h_next, out, k, act == ACT_RELU ? (a > scalar_t(0) ? a : scalar_t(0)) : tanh(a));
  }
}

__device__ __forceinline__ void rnn_cell_bwd(const scalar_t* __restrict__ h_next,
                                             const scalar_t* __restrict__ dout,
                                             const scalar_t* __restrict__ dh_rec,
                                             scalar_t* __restrict__ dh_carry,
                                             scalar_t* __restrict__ dpre,
                                             const long long* __restrict__ lengths, long long t,
                                             long long B, long long H, int act) {
  GRID_STRIDE_LOOP(k, B * H) {
    const bool active = step_active(lengths, t, k / H);
    const scalar_t dh = incoming_dh(dh_carry, dh_rec, dout, active, k);
    if (!active) {
      dh_carry[k] = dh;
      dpre[k] = scalar_t(0);
      continue;
    }
    const scalar_t h = h_next[k];
    const scalar_t slope = act == ACT_RELU ? (h > scalar_t(0) ? scalar_t(1) : scalar_t(0))
                                           : tanh_grad_from_output(h);
    dpre[k] = dh * slope;
    dh_carry[k] = scalar_t(0);
  }
}

#define RNN_CELL_KERNELS(name, act)                                                             \
  extern "C" __global__ void name##_fwd(                                                        \
      const scalar_t* __restrict__ xw, const scalar_t* __restrict__ hw,                         \
      const scalar_t* __restrict__ h_prev, scalar_t* __restrict__ h_next,                       \
      scalar_t* __restrict__ out, const long long* __restrict__ lengths, long long t,           \
      long long B, long long H) {                                                               \
    rnn_cell_fwd(xw, hw, h_prev, h_next, out, lengths, t, B, H, act);                           \
  }                                                                                             \
  extern "C" __global__ void name##_bwd(                                                        \
      const scalar_t* __restrict__ h_next, const scalar_t* __restrict__ dout,                   \
      const scalar_t* __restrict__ dh_rec, scalar_t* __restrict__ dh_carry,                     \
      scalar_t* __restrict__ dpre, const long long* __restrict__ lengths, long long t,          \
      long long B, long long H) {                                                               \
    rnn_cell_bwd(h_next, dout, dh_rec, dh_carry, dpre, lengths, t, B, H, act);                  \
  }

RNN_CELL_KERNELS(rnn_tanh_cell, ACT_TANH)
RNN_CELL_KERNELS(rnn_relu_cell, ACT_RELU)
