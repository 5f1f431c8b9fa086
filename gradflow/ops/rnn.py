"""Recurrent layers: one layer and one direction of an LSTM, GRU or Elman RNN over a whole
sequence as ONE graph node, trained by backpropagation through time; and the single-step cells.

Forward: the input projection of all T steps is one GEMM, ``X (T*B, I) @ W_ih^T``; then each
step makes one recurrent GEMM, ``h_{t-1} @ W_hh^T``, and one fused pointwise step (gates, cell
and hidden update). Backward sweeps time in reverse with one fused pointwise step and one
recurrent GEMM (``dgates_t @ W_hh``) per step; after the sweep, dW_hh is one GEMM over all
steps, dW_ih and dX one GEMM each, bias gradients are sums.

The pointwise steps run our kernels (kernels/rnn_cells.cu, one launch per step each way) on
cuda, or under ``gradflow.testing.emulation.route_kernels()`` on cpu. Otherwise NumPy computes
the same functions arranged for few calls per step (see "NumPy route" below).

Memory (saved for backward, all linear in T): the states h_0..h_T in one (T+1, B, H) buffer
whose slices are also the outputs (no copy; with lengths the output is a masked copy), the
cells c_0..c_T for LSTM, the gate activations (LSTM i, f, g, o; GRU r, z, n and W_hn h + b_hn:
4H per step; none for the Elman RNN, whose backward needs only h), the input (for dW_ih) and
the weights and biases (references; W_ih for dX, and all of them for the double backward,
which recomputes the layer with differentiable ops: autograd/composite.py).

Variable lengths: ``lengths[b]`` is sequence b's length. Step t is active for b when
t < lengths[b]: past its end a sequence keeps its state and outputs 0, so h_n is its state at
its own last step; the reverse direction starts at each sequence's own end.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module, is_cuda_array
from gradflow.backend.routing import uses_kernels
from gradflow.kernels import rnn_cells
from gradflow.tensor import Tensor

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
MODES = tuple(GATES)
NONLINEARITY = {"rnn_tanh": "tanh", "rnn_relu": "relu"}  # an Elman mode's activation
_SAVED_GATES = {"lstm": 4, "gru": 4}  # activations saved per hidden unit and step


# ---- NumPy route -----------------------------------------------------------------------------
# The same functions as the kernels (kernels/rnn_cells.cu), shaped for NumPy: few calls per
# step on whole (B, G*H) rows. Forward computes every gate with one tanh (sigmoid(x) =
# 0.5 tanh(x / 2) + 0.5, the 1/2 folded into the sigmoid gates' columns of X W_ih^T + b and
# W_hh^T beforehand). Backward first turns the saved activations into each step's local
# derivatives for all T at once (a few large array operations), so that the sweep through
# time multiplies by the incoming gradient: about six calls per step.


def _sigmoid_columns(xp: Any, mode: str, hidden: int, dtype: Any) -> Any:
    """(G*H,) scale with 1/2 on the sigmoid gates (LSTM i, f, o; GRU r, z), else 1."""
    scale = xp.ones(GATES[mode] * hidden, dtype)
    if mode == "lstm":
        scale[: 2 * hidden] = scale[3 * hidden :] = 0.5
    elif mode == "gru":
        scale[: 2 * hidden] = 0.5
    return scale


def _lstm_step_numpy(xw_t, w_hh_t, scale, shift, h_prev, c_prev, h_next, c_next, acts, tmp,
                     folded=True):  # fmt: skip
    xp, hidden = get_array_module(acts), h_next.shape[1]
    xp.matmul(h_prev, w_hh_t, out=acts)
    acts += xw_t
    if not folded:  # the 1/2 of the sigmoid gates, not in the weights (exact either way)
        acts *= scale
    xp.tanh(acts, out=acts)
    acts *= scale  # sigmoid gates: 0.5 tanh(x / 2) + 0.5; g stays tanh(x)
    acts += shift
    i, f, g, o = (acts[:, k * hidden : (k + 1) * hidden] for k in range(4))
    xp.multiply(f, c_prev, out=c_next)
    xp.multiply(i, g, out=tmp)
    c_next += tmp
    xp.tanh(c_next, out=h_next)
    h_next *= o


def _gru_step_numpy(xw_t, w_hh_t, b_hn, h_prev, h_next, acts, hw, folded=True) -> None:
    xp, hidden = get_array_module(acts), h_next.shape[1]
    xp.matmul(h_prev, w_hh_t, out=hw)
    rz = acts[:, : 2 * hidden]
    xp.add(xw_t[:, : 2 * hidden], hw[:, : 2 * hidden], out=rz)
    if not folded:  # the 1/2 of the sigmoid gates, not in the weights (exact either way)
        rz *= 0.5
    xp.tanh(rz, out=rz)
    rz *= 0.5
    rz += 0.5
    r, z = acts[:, :hidden], acts[:, hidden : 2 * hidden]
    n, hn = acts[:, 2 * hidden : 3 * hidden], acts[:, 3 * hidden :]
    if b_hn is None:
        hn[...] = hw[:, 2 * hidden :]
    else:
        xp.add(hw[:, 2 * hidden :], b_hn, out=hn)
    xp.multiply(r, hn, out=n)
    n += xw_t[:, 2 * hidden :]
    xp.tanh(n, out=n)
    xp.subtract(h_prev, n, out=h_next)
    h_next *= z
    h_next += n


def _rnn_step_numpy(xw_t, w_hh_t, relu, h_prev, h_next) -> None:
    xp = get_array_module(h_next)
    xp.matmul(h_prev, w_hh_t, out=h_next)
    h_next += xw_t
    if relu:
        xp.maximum(h_next, 0, out=h_next)
    else:
        xp.tanh(h_next, out=h_next)


def _lstm_factors(acts, c_prev, c_next, dgates, mask):
    """Per step: dgates[t] = local derivatives (i, f, g: times dc; o: times dh), and
    (A, F) with dc_t = dc + dh * A_t, dc_{t-1} = dc_t * F_t. All (T, B, ...) arrays."""
    xp, hidden = get_array_module(acts), c_next.shape[2]
    i, f, g, o = (acts[..., k * hidden : (k + 1) * hidden] for k in range(4))
    di, df, dg, do = (dgates[..., k * hidden : (k + 1) * hidden] for k in range(4))
    tc = xp.tanh(c_next)
    xp.subtract(1, i, out=di)
    di *= i
    di *= g
    xp.subtract(1, f, out=df)
    df *= f
    df *= c_prev
    xp.multiply(g, g, out=dg)
    xp.subtract(1, dg, out=dg)
    dg *= i
    xp.subtract(1, o, out=do)
    do *= o
    do *= tc
    tc *= tc
    xp.subtract(1, tc, out=tc)
    tc *= o  # A = o (1 - tanh(c)^2)
    forget = f
    if mask is not None:
        dgates *= mask
        tc *= mask
        forget = xp.where(mask, f, f.dtype.type(1))  # finished rows keep dc
    return tc, forget


def _gru_factors(acts, h_prev, dgates_x, dgates_h, mask):
    """dgates_x[t], dgates_h[t] = local derivatives (times dh); returns Z, dh_{t-1} gets dh Z_t
    besides the W_hh path."""
    xp, hidden = get_array_module(acts), h_prev.shape[2]
    r, z, n, hn = (acts[..., k * hidden : (k + 1) * hidden] for k in range(4))
    dr, dz, dn = (dgates_x[..., k * hidden : (k + 1) * hidden] for k in range(3))
    xp.multiply(n, n, out=dn)
    xp.subtract(1, dn, out=dn)
    dn *= 1 - z
    xp.subtract(1, r, out=dr)
    dr *= r
    dr *= hn
    dr *= dn
    xp.subtract(h_prev, n, out=dz)
    dz *= z
    dz *= 1 - z
    if mask is not None:
        dgates_x *= mask
    dgates_h[..., : 2 * hidden] = dgates_x[..., : 2 * hidden]
    xp.multiply(dn, r, out=dgates_h[..., 2 * hidden :])
    return z if mask is None else xp.where(mask, z, z.dtype.type(1))


def _rnn_factors(h_next, dgates, relu, mask):
    """dgates[t] = act'(pre-activation), from the outputs h_t."""
    xp = get_array_module(h_next)
    if relu:
        xp.greater(h_next, 0, out=dgates)
    else:
        xp.multiply(h_next, h_next, out=dgates)
        xp.subtract(1, dgates, out=dgates)
    if mask is not None:
        dgates *= mask


# ---- the op ----------------------------------------------------------------------------------


class RecurrentLayer(Function):
    """One layer, one direction, all T steps: inputs (x, h0, c0, W_ih, W_hh, b_ih, b_hh),
    outputs (output, h_n) or, for LSTM, (output, h_n, c_n). Parameters: mode, reverse,
    lengths (host int64 [B] or None), lengths_device (the same on x's device), min_length;
    op_name "rnn_layer", or the cell function's ("lstm_cell", ...)."""

    op_name = "rnn_layer"

    lengths: Any
    lengths_device: Any
    min_length: int
    mode: str
    reverse: bool

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        xp = get_array_module(x)
        steps, batch, _ = x.shape
        hidden = w_hh.shape[1]
        lstm = self.mode == "lstm"
        self.kernel = uses_kernels(x)
        # NumPy route: 1/2 folded into the sigmoid gates' columns (see "NumPy route" above);
        # a single step (a cell) scales its gates instead: folding copies both weights, more
        # than one step's gates (W_hh^T alone is 2x the gates of LSTMCell(128, 256) at B=32).
        scale = None
        if not self.kernel and self.mode in ("lstm", "gru"):
            scale = _sigmoid_columns(xp, self.mode, hidden, x.dtype)
        folded = steps > 1
        xw = _input_projection(x, w_ih, b_ih, b_hh, self.mode, scale if folded else None)
        states = _state_buffer(xp, x, steps, batch, hidden, h0, self.reverse)
        cells = _state_buffer(xp, x, steps, batch, hidden, c0, self.reverse) if lstm else None
        saved_width = _SAVED_GATES.get(self.mode, 0) * hidden
        acts = None
        if saved_width and self._recording:
            acts = xp.empty((steps, batch, saved_width), x.dtype)
        if self.kernel:
            out = self._forward_kernels(xw, states, cells, acts, w_hh, b_hh)
        else:
            out = self._forward_numpy(xw, states, cells, acts, w_hh, b_hh, saved_width, scale,
                                      folded)  # fmt: skip
        # Memory: the input only for dW_ih (a reference); the weights (references: W_ih for
        # dX, and for the double backward's recomputation, with the biases); the states
        # (their slices are the outputs), the cells (LSTM) and the gate activations.
        self.save_for_backward(
            x if self.needs_input_grad[3] else None, w_ih, w_hh, states, cells, acts
        )
        if self._recording:
            self.biases = (b_ih, b_hh)
        h_n = states[0] if self.reverse else states[steps]
        if lstm:
            return out, h_n, cells[0] if self.reverse else cells[steps]
        return out, h_n

    def _order(self, steps: int, backward: bool) -> range:
        """Time indices in processing order (forward pass), or its reverse (backward)."""
        if self.reverse != backward:
            return range(steps - 1, -1, -1)
        return range(steps)

    def _links(self, t: int) -> tuple[int, int]:
        """(slot of the state before step t, slot of the state after it) in the buffers."""
        return (t + 1, t) if self.reverse else (t, t + 1)

    def _time_views(self, buffer: Any) -> tuple[Any, Any]:
        """(states before each step, states after it), (T, B, H) views in time order."""
        if self.reverse:
            return buffer[1:], buffer[:-1]
        return buffer[:-1], buffer[1:]

    def _mask(self, steps: int) -> Any:
        """(T, B, 1) bool: step t still runs for sequence b; None without lengths."""
        if self.lengths is None:
            return None
        xp = get_array_module(self.lengths_device)
        return (xp.arange(steps)[:, None] < self.lengths_device)[:, :, None]

    # ---- forward ----

    def _forward_numpy(self, xw, states, cells, acts, w_hh, b_hh, saved_width, scale, folded):
        xp = get_array_module(xw)
        steps, batch, width = xw.shape
        hidden, mode = w_hh.shape[1], self.mode
        if not folded:  # one step: the transposed view, no copy
            w_hh_t = w_hh.T
        else:
            w_hh_t = xp.empty((hidden, width), xw.dtype)  # contiguous: the fastest GEMM operand
            if scale is not None:  # xw has it already
                xp.multiply(w_hh.T, scale, out=w_hh_t)
            else:
                w_hh_t[...] = w_hh.T
        scratch = xp.empty((batch, max(saved_width, width)), xw.dtype)
        if mode == "lstm":
            shift = (1 - scale) * (scale != 1)  # 0.5 on the sigmoid gates, 0 on g
            tmp = xp.empty((batch, hidden), xw.dtype)
        b_hn = None if mode != "gru" or b_hh is None else b_hh[2 * hidden :]
        hw = xp.empty((batch, width), xw.dtype) if mode == "gru" else None
        for t in self._order(steps, backward=False):
            prev, nxt = self._links(t)
            a = scratch if acts is None else acts[t]
            if mode == "lstm":
                _lstm_step_numpy(xw[t], w_hh_t, scale, shift, states[prev], cells[prev],
                                 states[nxt], cells[nxt], a, tmp, folded)  # fmt: skip
            elif mode == "gru":
                _gru_step_numpy(xw[t], w_hh_t, b_hn, states[prev], states[nxt], a, hw, folded)
            else:
                _rnn_step_numpy(xw[t], w_hh_t, mode == "rnn_relu", states[prev], states[nxt])
            if self.lengths is not None and t >= self.min_length:
                keep = (self.lengths_device <= t)[:, None]  # finished: keep the state
                xp.copyto(states[nxt], states[prev], where=keep)
                if cells is not None:
                    xp.copyto(cells[nxt], cells[prev], where=keep)
        outputs = self._time_views(states)[1]
        mask = self._mask(steps)
        return outputs if mask is None else outputs * mask

    def _forward_kernels(self, xw, states, cells, acts, w_hh, b_hh):
        xp = get_array_module(xw)
        steps, batch, width = xw.shape
        hidden, mode = w_hh.shape[1], self.mode
        lengths = self.lengths_device
        out = None if lengths is None else xp.empty((steps, batch, hidden), xw.dtype)
        b_hn = None if mode != "gru" or b_hh is None else b_hh[2 * hidden :]
        hw = xp.empty((batch, width), xw.dtype)
        w_hh_t = w_hh.T
        for k, t in enumerate(self._order(steps, backward=False)):
            p, n = self._links(t)
            xp.matmul(states[p], w_hh_t, out=hw)
            gates = None if acts is None else acts[t]
            out_t = None if out is None else out[t]
            common = {"out": out_t, "lengths": lengths, "t": t, "validate": k == 0}  # fmt: skip
            if mode == "lstm":
                rnn_cells.lstm_cell_fwd(xw[t], hw, states[p], cells[p], states[n], cells[n],
                                        gates=gates, **common)  # fmt: skip
            elif mode == "gru":
                rnn_cells.gru_cell_fwd(xw[t], hw, states[p], states[n], b_hn=b_hn, gates=gates,
                                       **common)  # fmt: skip
            else:
                act = NONLINEARITY[mode]  # "tanh" or "relu"
                rnn_cells.rnn_cell_fwd(act, xw[t], hw, states[p], states[n], **common)
        return self._time_views(states)[1] if out is None else out

    # ---- backward ----

    def backward(self, g_out, g_hn, g_cn=None):
        x, w_ih, w_hh, states, cells, acts = self.saved_arrays
        xp = get_array_module(states)
        steps, batch, hidden = states.shape[0] - 1, states.shape[1], states.shape[2]
        width = GATES[self.mode] * hidden
        need_x, need_h0, need_c0, need_w_ih, need_w_hh, need_b_ih, need_b_hh = self.needs_input_grad
        dgates_x = xp.empty((steps, batch, width), states.dtype)
        dgates_h = xp.empty_like(dgates_x) if self.mode == "gru" else dgates_x
        sweep = self._backward_kernels if self.kernel else self._backward_numpy
        dh0, dc0 = sweep(g_out, g_hn, g_cn, w_hh, states, cells, acts, dgates_x, dgates_h,
                         need_h0)  # fmt: skip
        dgx = dgates_x.reshape(steps * batch, width)
        dgh = dgates_h.reshape(steps * batch, width)
        dx = (dgx @ w_ih).reshape(steps, batch, -1) if need_x else None
        dw_ih = dgx.T @ x.reshape(steps * batch, -1) if need_w_ih else None
        dw_hh = None
        if need_w_hh:
            h_prev = self._time_views(states)[0]  # h_{t-1} of every step, contiguous
            dw_hh = dgh.T @ h_prev.reshape(steps * batch, hidden)
        db_ih = dgx.sum(axis=0) if need_b_ih else None
        db_hh = None
        if need_b_hh:
            db_hh = db_ih if db_ih is not None and dgh is dgx else dgh.sum(axis=0)
        return dx, dh0 if need_h0 else None, dc0 if need_c0 else None, dw_ih, dw_hh, db_ih, db_hh

    def backward_graph(self, *grads):
        """Under create_graph: the layer recomputed step by step with differentiable ops
        (autograd/composite.py), and its gradients taken with a graph."""
        from gradflow.autograd.composite import backward_graph_by_recompute, recurrent_reference
        from gradflow.autograd.differentiable import input_array

        x, w_ih, w_hh, states, cells, _ = self.saved_arrays
        x = input_array(self, 0, x)  # kept for dW_ih; else a leaf's own array
        if x is None:  # neither: its value is gone, so a second derivative through it raises
            return NotImplemented
        b_ih, b_hh = self.biases
        first = states.shape[0] - 1 if self.reverse else 0  # the initial state's slot
        arrays = (x, states[first], None if cells is None else cells[first], w_ih, w_hh, b_ih,
                  b_hh)  # fmt: skip
        lengths = None if self.lengths is None else self.lengths_device
        reference = recurrent_reference(self.mode, self.reverse, lengths)
        return backward_graph_by_recompute(self, grads, reference, arrays)

    def _backward_numpy(self, g_out, g_hn, g_cn, w_hh, states, cells, acts, dgx, dgh, need_h0):
        """The sweep through time; returns (dh0, dc0). dgx/dgh first receive each step's local
        derivatives, which the sweep multiplies by the incoming gradient in place."""
        xp = get_array_module(states)
        steps, batch, hidden = dgx.shape[0], states.shape[1], states.shape[2]
        mask = self._mask(steps)
        if mask is not None:
            g_out = g_out * mask  # finished steps output a constant 0
        h_prev, h_next = self._time_views(states)
        passes = None  # multiplies dh into dh_{t-1} besides the W_hh path
        if self.mode == "lstm":
            c_prev, c_next = self._time_views(cells)
            to_cell, forget = _lstm_factors(acts, c_prev, c_next, dgx, mask)
            dc = g_cn.copy()
        elif self.mode == "gru":
            passes = _gru_factors(acts, h_prev, dgx, dgh, mask)
        else:
            _rnn_factors(h_next, dgx, self.mode == "rnn_relu", mask)
        if mask is not None and passes is None:
            passes = ~mask  # finished rows hand dh straight back
        dh_next, recurrent = g_hn, xp.empty((batch, hidden), states.dtype)
        for k, t in enumerate(self._order(steps, backward=True)):
            dh = g_out[t] + dh_next
            if self.mode == "lstm":
                dcc = dh * to_cell[t]
                dcc += dc
                rows = dgx[t].reshape(batch, 4, hidden)
                rows[:, :3] *= dcc[:, None]
                rows[:, 3] *= dh
                xp.multiply(dcc, forget[t], out=dc)
            else:
                for dgates in (dgx, dgh) if dgh is not dgx else (dgx,):
                    rows = dgates[t].reshape(batch, -1, hidden)
                    rows *= dh[:, None]
            if k == steps - 1 and not need_h0:
                break
            dh_next = xp.matmul(dgh[t], w_hh, out=recurrent)
            if passes is not None:
                dh_next += dh * passes[t]
        return dh_next, dc if self.mode == "lstm" else None

    def _backward_kernels(self, g_out, g_hn, g_cn, w_hh, states, cells, acts, dgx, dgh, need_h0):
        """The sweep through time with one fused kernel and one GEMM per step."""
        xp = get_array_module(states)
        steps, batch, hidden = dgx.shape[0], states.shape[1], states.shape[2]
        mode, lengths = self.mode, self.lengths_device
        g_out = xp.ascontiguousarray(g_out)
        dh_carry = g_hn.copy()  # C-contiguous, updated in place by the steps
        dc = g_cn.copy() if mode == "lstm" else None
        recurrent = xp.empty((batch, hidden), states.dtype)
        dh_rec = None
        for k, t in enumerate(self._order(steps, backward=True)):
            p, n = self._links(t)
            common = {"dout": g_out[t], "dh_rec": dh_rec, "lengths": lengths, "t": t,
                      "validate": k == 0}  # fmt: skip
            if mode == "lstm":
                rnn_cells.lstm_cell_bwd(acts[t], cells[p], cells[n], dh_carry, dc, dgx[t],
                                        **common)  # fmt: skip
            elif mode == "gru":
                rnn_cells.gru_cell_bwd(acts[t], states[p], dh_carry, dgx[t], dgh[t], **common)
            else:
                rnn_cells.rnn_cell_bwd(NONLINEARITY[mode], states[n], dh_carry, dgx[t], **common)
            if k < steps - 1 or need_h0:
                dh_rec = xp.matmul(dgh[t], w_hh, out=recurrent)
        return (dh_carry + dh_rec if need_h0 else None), dc


def _input_projection(x, w_ih, b_ih, b_hh, mode, scale=None) -> Any:
    """X W_ih^T for all steps in one GEMM, plus the biases that sit outside the recurrence
    (both for LSTM and RNN; for GRU all but b_hn, which r multiplies), added in one pass:
    (T, B, G*H). `scale` (G*H,) multiplies the columns, folded into W_ih and the bias."""
    steps, batch, n_in = x.shape
    width = w_ih.shape[0]
    bias = None
    for b, is_hh in ((b_ih, False), (b_hh, True)):
        if b is None:
            continue
        if is_hh and mode == "gru":
            b = b.copy()
            b[2 * width // 3 :] = 0  # b_hn stays inside the recurrence
        bias = b if bias is None else bias + b
    if scale is not None:
        w_ih = w_ih * scale[:, None]
        bias = None if bias is None else bias * scale
    xw = x.reshape(steps * batch, n_in) @ w_ih.T
    if bias is not None:
        xw += bias
    return xw.reshape(steps, batch, width)


def _state_buffer(xp, x, steps, batch, hidden, initial, reverse) -> Any:
    """A (T+1, B, H) buffer of states in time order, the initial state at its start (forward
    direction) or end (reverse direction)."""
    buffer = xp.empty((steps + 1, batch, hidden), x.dtype)
    slot = buffer[steps] if reverse else buffer[0]
    slot[...] = 0 if initial is None else initial
    return buffer


# ---- public functions ------------------------------------------------------------------------


def _check_tensor(op: str, name: str, x: Any, expected: tuple, meaning: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument '{name}' must be a Tensor, got {type(x).__name__}")
    if tuple(x.shape) != expected:
        raise ValueError(
            f"{op}: argument '{name}' has shape {tuple(x.shape)}; expected {expected} ({meaning})"
        )


def sequence_lengths(lengths: Any, batch: int, steps: int, op: str) -> numpy.ndarray:
    """`lengths` (a list, int array or int Tensor of B values in [1, T]) as host int64 [B]."""
    if isinstance(lengths, Tensor):
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"{op}: lengths must hold integers, got dtype {lengths.dtype}")
        values = lengths.detach().cpu().numpy()  # lengths live on the host, as in PyTorch
    else:
        values = numpy.asarray(lengths)
        if values.dtype.kind not in "iu" and values.size:
            raise TypeError(f"{op}: lengths must hold integers, got {lengths!r:.80}")
    values = values.astype(numpy.int64).reshape(values.shape)
    if values.shape != (batch,):
        raise ValueError(
            f"{op}: lengths has shape {values.shape}; expected ({batch},), one length per "
            "sequence of the batch"
        )
    if batch and (values.min() < 1 or values.max() > steps):
        raise ValueError(
            f"{op}: lengths must be in [1, {steps}] (the sequence length of the input), got "
            f"min {int(values.min())} and max {int(values.max())}"
        )
    return values


def rnn_layer(
    input: Tensor,
    hx: Any,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    mode: str = "lstm",
    reverse: bool = False,
    lengths: Any = None,
) -> tuple:
    """One recurrent layer in one direction over a whole sequence, as one graph node.

    input (T, B, I); weight_ih (G*H, I), weight_hh (G*H, H), biases (G*H,) or None, with
    G = 4 (mode "lstm", gates i, f, g, o), 3 ("gru", gates r, z, n) or 1 ("rnn_tanh",
    "rnn_relu"), PyTorch's layouts and formulas. hx: the initial state h0 (B, H), or (h0, c0)
    for LSTM; None (or None entries) for zeros. reverse=True runs from the last step to the
    first. lengths (B values in [1, T]): each sequence stops at its own end (see the module
    docstring). Returns (output (T, B, H), h_n) or, for LSTM, (output, (h_n, c_n)).

    >>> import gradflow
    >>> x, w_ih, w_hh = gradflow.ones(5, 2, 3), gradflow.zeros(8, 3), gradflow.zeros(8, 2)
    >>> out, (h, c) = rnn_layer(x, None, w_ih, w_hh, mode="lstm", lengths=[5, 3])
    >>> out.shape, h.shape, c.shape
    (gradflow.Size([5, 2, 2]), gradflow.Size([2, 2]), gradflow.Size([2, 2]))
    """
    return _recurrent("rnn_layer", input, hx, weight_ih, weight_hh, bias_ih, bias_hh, mode,
                      reverse, lengths)  # fmt: skip


def _sequence_shape(op: str, input: Any) -> tuple:
    """(T, B, input_size) of a recurrent layer's input, checked to be a 3-D Tensor with T > 0."""
    if not isinstance(input, Tensor) or input.ndim != 3:
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"{op}: input must be a (T, B, input_size) Tensor, got {got}")
    steps = input.shape[0]
    if steps == 0:
        raise ValueError(f"{op}: input has shape {tuple(input.shape)}; the sequence is empty (T=0)")
    return tuple(input.shape)


def _check_biases(op: str, bias_ih: Any, bias_hh: Any, width: int, expected: str) -> None:
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is not None:
            _check_tensor(op, name, bias, (width,), expected)


def _recurrent(op, input, hx, weight_ih, weight_hh, bias_ih, bias_hh, mode, reverse, lengths):
    """rnn_layer, its errors and its node named `op` (the function the user called)."""
    if mode not in GATES:
        raise ValueError(f"{op}: unknown mode {mode!r}; expected one of {MODES}")
    steps, batch, n_in = _sequence_shape(op, input)
    if not isinstance(weight_hh, Tensor) or weight_hh.ndim != 2:
        raise ValueError(f"{op}: weight_hh must be a 2-D Tensor (G*H, H)")
    hidden = weight_hh.shape[1]
    width = GATES[mode] * hidden
    _check_tensor(op, "weight_hh", weight_hh, (width, hidden), f"{GATES[mode]}*H rows for {mode}")
    _check_tensor(op, "weight_ih", weight_ih, (width, n_in), "(G*H, input features)")
    _check_biases(op, bias_ih, bias_hh, width, "(G*H,)")
    h0, c0 = hx if mode == "lstm" and hx is not None else (hx, None)
    for name, state in (("h0", h0), ("c0", c0)):
        if state is not None:
            _check_tensor(op, name, state, (batch, hidden), "(batch, hidden_size)")
    host = device_lengths = None
    min_length = steps
    if lengths is not None:
        host = sequence_lengths(lengths, batch, steps, op)
        min_length = int(host.min()) if batch else steps
        if min_length == steps:
            host = None  # every sequence spans the input: nothing to mask
        elif is_cuda_array(input.array):
            with input.array.device:
                device_lengths = get_array_module(input.array).asarray(host)
        else:
            device_lengths = host
    outputs = RecurrentLayer.apply(
        input, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, mode=mode, reverse=bool(reverse),
        lengths=host, lengths_device=device_lengths, min_length=min_length, op_name=op,
    )  # fmt: skip
    if mode == "lstm":
        return outputs[0], (outputs[1], outputs[2])
    return outputs


def lstm_projected_layer(
    input: Tensor,
    hx: Any,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None,
    bias_hh: Tensor | None,
    weight_hr: Tensor,
    *,
    reverse: bool = False,
    lengths: Any = None,
) -> tuple:
    """One LSTM layer and direction with a projection (torch.nn.LSTM's proj_size): the gates
    and cell as in :func:`rnn_layer`, then ``h_t = (o_t * tanh(c_t)) @ weight_hr^T``.

    input (T, B, I), weight_ih (4H, I), weight_hh (4H, P), biases (4H,) or None, weight_hr
    (P, H); hx = (h0 (B, P), c0 (B, H)) or None. Returns (output (T, B, P), (h_n, c_n)).
    Computed step by step with differentiable ops (the fused node has no projection), so it
    runs on every device and has gradients of any order; ``lengths`` as in rnn_layer.
    """
    from gradflow.autograd.differentiable import const
    from gradflow.ops import unary
    from gradflow.ops.arithmetic import where
    from gradflow.ops.shape import chunk, stack, unbind

    op = "lstm_projected_layer"
    steps, batch, n_in = _sequence_shape(op, input)
    if not isinstance(weight_hr, Tensor) or weight_hr.ndim != 2:
        raise ValueError(f"{op}: weight_hr must be a 2-D Tensor (proj_size, hidden_size)")
    proj, hidden = weight_hr.shape
    _check_tensor(op, "weight_hh", weight_hh, (4 * hidden, proj), "(4*hidden, proj_size)")
    _check_tensor(op, "weight_ih", weight_ih, (4 * hidden, n_in), "(4*hidden, input features)")
    _check_biases(op, bias_ih, bias_hh, 4 * hidden, "(4*hidden,)")
    h, c = hx if hx is not None else (None, None)
    if h is None:
        h = input.new_zeros(batch, proj)
    if c is None:
        c = input.new_zeros(batch, hidden)
    _check_tensor(op, "h0", h, (batch, proj), "(batch, proj_size)")
    _check_tensor(op, "c0", c, (batch, hidden), "(batch, hidden_size)")
    active = None
    if lengths is not None:
        host = sequence_lengths(lengths, batch, steps, op)
        if int(host.min()) < steps:
            xp = get_array_module(input.array)
            if is_cuda_array(input.array):
                with input.array.device:
                    active = xp.asarray(host)
            else:
                active = host
    xw = input @ weight_ih.transpose(0, 1)
    if bias_ih is not None:
        xw = xw + bias_ih
    if bias_hh is not None:
        xw = xw + bias_hh
    xw = unbind(xw, 0)
    w_hh_t, w_hr_t = weight_hh.transpose(0, 1), weight_hr.transpose(0, 1)
    outputs: list = [None] * steps
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        i, f, g, o = chunk(xw[t] + h @ w_hh_t, 4, 1)
        c_new = unary.sigmoid(f) * c + unary.sigmoid(i) * unary.tanh(g)
        h_new = (unary.sigmoid(o) * unary.tanh(c_new)) @ w_hr_t
        if active is None or int(host.min()) > t:
            outputs[t], h, c = h_new, h_new, c_new
            continue
        running = (active > t)[:, None]  # (B, 1): step t still runs for sequence b
        outputs[t] = h_new * const(running.astype(h_new.dtype))
        keep = const(running)
        h, c = where(keep, h_new, h), where(keep, c_new, c)
    return stack(outputs, 0), (h, c)


def _cell(mode: str, input: Tensor, hx: Any, w_ih, w_hh, b_ih, b_hh) -> Any:
    """One step of `mode`: a one-step rnn_layer whose errors and node name `{mode}_cell`."""
    op = f"{mode}_cell"
    if not isinstance(input, Tensor) or input.ndim != 2:
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"{op}: input must be a (B, input_size) Tensor, got {got}")
    _, state = _recurrent(op, input[None], hx, w_ih, w_hh, b_ih, b_hh, mode, False, None)
    return state


def lstm_cell(
    input: Tensor,
    hx: tuple | None,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step: input (B, I), hx = (h, c) (B, H) each or None; returns (h', c')."""
    return _cell("lstm", input, hx, weight_ih, weight_hh, bias_ih, bias_hh)


def gru_cell(
    input: Tensor,
    hx: Tensor | None,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> Tensor:
    """One GRU step: input (B, I), hx (B, H) or None; returns h'."""
    return _cell("gru", input, hx, weight_ih, weight_hh, bias_ih, bias_hh)


def rnn_tanh_cell(
    input: Tensor,
    hx: Tensor | None,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> Tensor:
    """One Elman RNN step, h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); returns h'."""
    return _cell("rnn_tanh", input, hx, weight_ih, weight_hh, bias_ih, bias_hh)


def rnn_relu_cell(
    input: Tensor,
    hx: Tensor | None,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> Tensor:
    """One Elman RNN step with relu, h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh); returns h'."""
    return _cell("rnn_relu", input, hx, weight_ih, weight_hh, bias_ih, bias_hh)


# The cell function of each mode (nn.LSTMCell, GRUCell and RNNCell call these).
CELLS = {"lstm": lstm_cell, "gru": gru_cell, "rnn_tanh": rnn_tanh_cell, "rnn_relu": rnn_relu_cell}
