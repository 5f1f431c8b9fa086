"""Recurrent layers: one layer and one direction of an LSTM, GRU or Elman RNN over a whole
sequence as ONE graph node, trained by backpropagation through time; and the single-step cells.

Forward: the input projection of all T steps is one GEMM, ``X (T*B, I) @ W_ih^T``; then each
step makes one recurrent GEMM, ``h_{t-1} @ W_hh^T``, and one fused pointwise step (gates, cell
and hidden update). Backward sweeps time in reverse with one fused pointwise step and one
recurrent GEMM (``dgates_t @ W_hh``) per step; after the sweep, dW_hh is one GEMM over all
steps, dW_ih and dX one GEMM each, bias gradients are sums.

The pointwise steps run our kernels (kernels/rnn_cells.cu) on cuda, or under
``gradflow.testing.emulation.route_kernels()`` on cpu; a NumPy version of each otherwise.

Memory (saved for backward, all linear in T): the states h_0..h_T in one (T+1, B, H) buffer
whose slices are also the outputs (no copy), the cells c_0..c_T for LSTM, the gate
activations (LSTM i, f, g, o; GRU r, z, n and W_hn h + b_hn: 4H per step; none for the Elman
RNN, whose backward needs only h), the input (for dW_ih) and the weights (references).

Variable lengths: ``lengths[b]`` is sequence b's length. Step t is active for b when
t < lengths[b]: past its end a sequence keeps its state and outputs 0, so h_n is its state at
its own last step; the reverse direction starts at each sequence's own end.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.kernels import rnn_cells
from gradflow.ops import _util
from gradflow.ops._util import uses_kernels, xp_of
from gradflow.tensor import Tensor

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
MODES = tuple(GATES)
_SAVED_GATES = {"lstm": 4, "gru": 4}  # activations saved per hidden unit and step


# ---- NumPy pointwise steps (the kernels' contract, kernels/rnn_cells.cu, on whole arrays) ----
# `active` is None when every row is active at this step, else a (B, 1) bool array.


def _sigmoid_(a: Any) -> None:
    """sigmoid in place, as 0.5 tanh(a / 2) + 0.5: one transcendental call, no overflow."""
    xp = xp_of(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5


def _finish_fwd(h_prev, h_next, out, active, c_prev=None, c_next=None) -> None:
    """Inactive rows keep their state; the output is h_next where active, else 0."""
    xp = xp_of(h_next)
    if active is not None:
        keep = ~active
        xp.copyto(h_next, h_prev, where=keep)
        if c_next is not None:
            xp.copyto(c_next, c_prev, where=keep)
    if out is not None:
        if active is None:
            out[...] = h_next
        else:
            xp.multiply(h_next, active, out=out)


def _incoming_dh(dout, dh_rec, dh_carry, active) -> Any:
    dh = dh_carry + dh_rec if dh_rec is not None else dh_carry.copy()
    if dout is not None:
        dh += dout if active is None else dout * active
    return dh


def _finish_bwd(dh, dh_carry, carry_active, active, *dgates) -> None:
    """dh_carry becomes `carry_active` (0 when None) on active rows and dh on inactive ones;
    inactive rows get zero gate gradients."""
    if active is None:
        if carry_active is None:
            dh_carry[...] = 0
        else:
            dh_carry[...] = carry_active
        return
    xp = xp_of(dh)
    xp.multiply(dh, ~active, out=dh_carry)
    if carry_active is not None:
        dh_carry += carry_active * active
    for d in dgates:
        d *= active


def _lstm_fwd_numpy(xw, hw, h_prev, c_prev, h_next, c_next, acts, out, active) -> None:
    xp, hidden = xp_of(xw), h_next.shape[1]
    xp.add(xw, hw, out=acts)
    _sigmoid_(acts[:, : 2 * hidden])
    xp.tanh(acts[:, 2 * hidden : 3 * hidden], out=acts[:, 2 * hidden : 3 * hidden])
    _sigmoid_(acts[:, 3 * hidden :])
    i, f, g, o = (acts[:, k * hidden : (k + 1) * hidden] for k in range(4))
    xp.multiply(f, c_prev, out=c_next)
    c_next += i * g
    xp.tanh(c_next, out=h_next)
    h_next *= o
    _finish_fwd(h_prev, h_next, out, active, c_prev, c_next)


def _lstm_bwd_numpy(acts, c_prev, c_next, dout, dh_rec, dh_carry, dc, dgates, active) -> None:
    xp, hidden = xp_of(acts), dc.shape[1]
    dh = _incoming_dh(dout, dh_rec, dh_carry, active)
    i, f, g, o = (acts[:, k * hidden : (k + 1) * hidden] for k in range(4))
    di, df, dg, do = (dgates[:, k * hidden : (k + 1) * hidden] for k in range(4))
    tc = xp.tanh(c_next)
    xp.multiply(dh, tc, out=do)
    do *= o * (1 - o)
    tc *= tc
    dcc = (1 - tc) * o
    dcc *= dh
    dcc += dc  # the gradient of c_t
    xp.multiply(dcc, g, out=di)
    di *= i * (1 - i)
    xp.multiply(dcc, c_prev, out=df)
    df *= f * (1 - f)
    xp.multiply(dcc, i, out=dg)
    dg *= 1 - g * g
    dcc *= f  # the gradient of c_{t-1}
    if active is None:
        dc[...] = dcc
    else:
        xp.copyto(dc, dcc, where=active)
    _finish_bwd(dh, dh_carry, None, active, dgates)


def _gru_fwd_numpy(xw, hw, b_hn, h_prev, h_next, acts, out, active) -> None:
    xp, hidden = xp_of(xw), h_next.shape[1]
    rz = acts[:, : 2 * hidden]
    xp.add(xw[:, : 2 * hidden], hw[:, : 2 * hidden], out=rz)
    _sigmoid_(rz)
    r, z = acts[:, :hidden], acts[:, hidden : 2 * hidden]
    n, hn = acts[:, 2 * hidden : 3 * hidden], acts[:, 3 * hidden :]
    if b_hn is None:
        hn[...] = hw[:, 2 * hidden :]
    else:
        xp.add(hw[:, 2 * hidden :], b_hn, out=hn)
    xp.multiply(r, hn, out=n)
    n += xw[:, 2 * hidden :]
    xp.tanh(n, out=n)
    xp.subtract(h_prev, n, out=h_next)
    h_next *= z
    h_next += n
    _finish_fwd(h_prev, h_next, out, active)


def _gru_bwd_numpy(acts, h_prev, dout, dh_rec, dh_carry, dgates_x, dgates_h, active) -> None:
    xp, hidden = xp_of(acts), h_prev.shape[1]
    dh = _incoming_dh(dout, dh_rec, dh_carry, active)
    r, z, n, hn = (acts[:, k * hidden : (k + 1) * hidden] for k in range(4))
    dr, dz, dn = (dgates_x[:, k * hidden : (k + 1) * hidden] for k in range(3))
    xp.multiply(dh, 1 - z, out=dn)
    dn *= 1 - n * n
    xp.multiply(dn, hn, out=dr)
    dr *= r * (1 - r)
    xp.subtract(h_prev, n, out=dz)
    dz *= dh
    dz *= z * (1 - z)
    dgates_h[:, : 2 * hidden] = dgates_x[:, : 2 * hidden]
    xp.multiply(dn, r, out=dgates_h[:, 2 * hidden :])
    _finish_bwd(dh, dh_carry, dh * z, active, dgates_x, dgates_h)


def _rnn_fwd_numpy(act, xw, hw, h_prev, h_next, out, active) -> None:
    xp = xp_of(xw)
    xp.add(xw, hw, out=h_next)
    if act == "tanh":
        xp.tanh(h_next, out=h_next)
    else:
        xp.maximum(h_next, 0, out=h_next)
    _finish_fwd(h_prev, h_next, out, active)


def _rnn_bwd_numpy(act, h_next, dout, dh_rec, dh_carry, dpre, active) -> None:
    xp = xp_of(h_next)
    dh = _incoming_dh(dout, dh_rec, dh_carry, active)
    if act == "tanh":
        xp.multiply(h_next, h_next, out=dpre)
        xp.subtract(1, dpre, out=dpre)
        dpre *= dh
    else:
        xp.multiply(dh, h_next > 0, out=dpre)
    _finish_bwd(dh, dh_carry, None, active, dpre)


# ---- the op ----------------------------------------------------------------------------------


class RecurrentLayer(Function):
    """One layer, one direction, all T steps: inputs (x, h0, c0, W_ih, W_hh, b_ih, b_hh),
    outputs (output, h_n) or, for LSTM, (output, h_n, c_n). Parameters: mode, reverse,
    lengths (host int64 [B] or None), lengths_device (the same on x's device)."""

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        xp = xp_of(x)
        steps, batch, _ = x.shape
        hidden = w_hh.shape[1]
        mode, lstm = self.mode, self.mode == "lstm"
        self.kernel = uses_kernels(x)
        need_x, _, _, need_w_ih = self.needs_input_grad[:4]
        xw = _input_projection(x, w_ih, b_ih, b_hh, mode)
        states = _state_buffer(xp, x, steps, batch, hidden, h0, self.reverse)
        cells = _state_buffer(xp, x, steps, batch, hidden, c0, self.reverse) if lstm else None
        saved_width = _SAVED_GATES.get(mode, 0) * hidden
        acts = None
        if saved_width and self._recording:
            acts = xp.empty((steps, batch, saved_width), x.dtype)
        out = None if self.lengths is None else xp.empty((steps, batch, hidden), x.dtype)
        step = self._forward_step(xp, xw, states, cells, acts, out, w_hh, b_hh, saved_width)
        recurrent = xp.empty((batch, GATES[mode] * hidden), x.dtype)
        w_hh_t = w_hh.T
        for k, t in enumerate(self._order(steps, backward=False)):
            prev, nxt = (t + 1, t) if self.reverse else (t, t + 1)
            xp.matmul(states[prev], w_hh_t, out=recurrent)
            step(t, prev, nxt, recurrent, k == 0)
        # Memory: the input only for dW_ih, W_ih only for dX (references); W_hh; the states
        # (their slices are the outputs), the cells (LSTM) and the gate activations.
        self.save_for_backward(
            x if need_w_ih else None, w_ih if need_x else None, w_hh, states, cells, acts
        )
        h_n = states[0] if self.reverse else states[steps]
        if out is None:
            out = states[:steps] if self.reverse else states[1:]
        if lstm:
            return out, h_n, cells[0] if self.reverse else cells[steps]
        return out, h_n

    def _order(self, steps: int, backward: bool) -> range:
        """Time indices in processing order (forward pass), or its reverse (backward)."""
        if self.reverse != backward:
            return range(steps - 1, -1, -1)
        return range(steps)

    def _active(self, t: int) -> Any:
        """The NumPy steps' row mask: None while every sequence is still running."""
        if self.lengths is None or t < self.min_length:
            return None
        return (self.lengths_device > t)[:, None]

    def _forward_step(self, xp, xw, states, cells, acts, out, w_hh, b_hh, saved_width):
        """A function (t, prev, nxt, recurrent, first) running one fused step forward."""
        mode, lengths = self.mode, self.lengths_device
        backend = _util.kernel_backend
        scratch = None
        if acts is None and saved_width and not self.kernel:
            scratch = xp.empty((xw.shape[1], saved_width), xw.dtype)
        b_hn = None
        if mode == "gru" and b_hh is not None:
            b_hn = b_hh[2 * w_hh.shape[1] :]

        def gates_at(t):
            return acts[t] if acts is not None else scratch

        def out_at(t):
            return None if out is None else out[t]

        if mode == "lstm":
            if self.kernel:
                return lambda t, p, n, hw, first: rnn_cells.lstm_cell_fwd(
                    xw[t], hw, states[p], cells[p], states[n], cells[n], gates=gates_at(t),
                    out=out_at(t), lengths=lengths, t=t, backend=backend, validate=first,
                )  # fmt: skip
            return lambda t, p, n, hw, first: _lstm_fwd_numpy(
                xw[t], hw, states[p], cells[p], states[n], cells[n], gates_at(t), out_at(t),
                self._active(t),
            )  # fmt: skip
        if mode == "gru":
            if self.kernel:
                return lambda t, p, n, hw, first: rnn_cells.gru_cell_fwd(
                    xw[t], hw, states[p], states[n], b_hn=b_hn, gates=gates_at(t),
                    out=out_at(t), lengths=lengths, t=t, backend=backend, validate=first,
                )  # fmt: skip
            return lambda t, p, n, hw, first: _gru_fwd_numpy(
                xw[t], hw, b_hn, states[p], states[n], gates_at(t), out_at(t), self._active(t)
            )
        act = mode[4:]
        if self.kernel:
            return lambda t, p, n, hw, first: rnn_cells.rnn_cell_fwd(
                act, xw[t], hw, states[p], states[n], out=out_at(t), lengths=lengths, t=t,
                backend=backend, validate=first,
            )  # fmt: skip
        return lambda t, p, n, hw, first: _rnn_fwd_numpy(
            act, xw[t], hw, states[p], states[n], out_at(t), self._active(t)
        )

    def backward(self, g_out, g_hn, g_cn=None):
        x, w_ih, w_hh, states, cells, acts = self.saved_arrays
        xp = xp_of(states)
        steps, batch, hidden = states.shape[0] - 1, states.shape[1], states.shape[2]
        width = GATES[self.mode] * hidden
        need_x, need_h0, need_c0, need_w_ih, need_w_hh, need_b_ih, need_b_hh = self.needs_input_grad
        g_out = xp.ascontiguousarray(g_out)
        dgates_x = xp.empty((steps, batch, width), states.dtype)
        dgates_h = xp.empty_like(dgates_x) if self.mode == "gru" else dgates_x
        dh_carry = g_hn.copy()  # C-contiguous, updated in place by the steps
        dc = g_cn.copy() if self.mode == "lstm" else None
        step = self._backward_step(g_out, states, cells, acts, dh_carry, dc, dgates_x, dgates_h)
        recurrent = xp.empty((batch, hidden), states.dtype)
        dh_rec = None
        for k, t in enumerate(self._order(steps, backward=True)):
            prev, nxt = (t + 1, t) if self.reverse else (t, t + 1)
            step(t, prev, nxt, dh_rec, k == 0)
            if k < steps - 1 or need_h0:
                xp.matmul(dgates_h[t], w_hh, out=recurrent)
                dh_rec = recurrent
        dh0 = dh_carry + dh_rec if need_h0 else None
        dgx = dgates_x.reshape(steps * batch, width)
        dgh = dgates_h.reshape(steps * batch, width)
        dx = (dgx @ w_ih).reshape(steps, batch, -1) if need_x else None
        dw_ih = dgx.T @ x.reshape(steps * batch, -1) if need_w_ih else None
        dw_hh = None
        if need_w_hh:
            h_prev = states[1:] if self.reverse else states[:steps]  # h_{t-1} of every step
            dw_hh = dgh.T @ h_prev.reshape(steps * batch, hidden)
        db_ih = dgx.sum(axis=0) if need_b_ih else None
        db_hh = None
        if need_b_hh:
            db_hh = db_ih if db_ih is not None and dgh is dgx else dgh.sum(axis=0)
        return dx, dh0, dc if need_c0 else None, dw_ih, dw_hh, db_ih, db_hh

    def _backward_step(self, g_out, states, cells, acts, dh_carry, dc, dgates_x, dgates_h):
        """A function (t, prev, nxt, dh_rec, first) running one fused step backward."""
        mode, lengths = self.mode, self.lengths_device
        backend = _util.kernel_backend
        if mode == "lstm":
            if self.kernel:
                return lambda t, p, n, rec, first: rnn_cells.lstm_cell_bwd(
                    acts[t], cells[p], cells[n], dh_carry, dc, dgates_x[t], dout=g_out[t],
                    dh_rec=rec, lengths=lengths, t=t, backend=backend, validate=first,
                )  # fmt: skip
            return lambda t, p, n, rec, first: _lstm_bwd_numpy(
                acts[t], cells[p], cells[n], g_out[t], rec, dh_carry, dc, dgates_x[t],
                self._active(t),
            )  # fmt: skip
        if mode == "gru":
            if self.kernel:
                return lambda t, p, n, rec, first: rnn_cells.gru_cell_bwd(
                    acts[t], states[p], dh_carry, dgates_x[t], dgates_h[t], dout=g_out[t],
                    dh_rec=rec, lengths=lengths, t=t, backend=backend, validate=first,
                )  # fmt: skip
            return lambda t, p, n, rec, first: _gru_bwd_numpy(
                acts[t], states[p], g_out[t], rec, dh_carry, dgates_x[t], dgates_h[t],
                self._active(t),
            )  # fmt: skip
        act = mode[4:]
        if self.kernel:
            return lambda t, p, n, rec, first: rnn_cells.rnn_cell_bwd(
                act, states[n], dh_carry, dgates_x[t], dout=g_out[t], dh_rec=rec,
                lengths=lengths, t=t, backend=backend, validate=first,
            )  # fmt: skip
        return lambda t, p, n, rec, first: _rnn_bwd_numpy(
            act, states[n], g_out[t], rec, dh_carry, dgates_x[t], self._active(t)
        )


def _input_projection(x, w_ih, b_ih, b_hh, mode) -> Any:
    """X W_ih^T for all steps in one GEMM, plus the biases that sit outside the recurrence
    (both for LSTM and RNN; for GRU all but b_hn, which r multiplies): (T, B, G*H)."""
    steps, batch, n_in = x.shape
    xw = x.reshape(steps * batch, n_in) @ w_ih.T
    if b_ih is not None:
        xw += b_ih
    if b_hh is not None:
        if mode == "gru":
            cut = 2 * w_ih.shape[0] // 3
            xw[:, :cut] += b_hh[:cut]
        else:
            xw += b_hh
    return xw.reshape(steps, batch, -1)


def _state_buffer(xp, x, steps, batch, hidden, initial, reverse) -> Any:
    """A (T+1, B, H) buffer of states in time order, the initial state at its start (forward
    direction) or end (reverse direction)."""
    buffer = xp.empty((steps + 1, batch, hidden), x.dtype)
    slot = buffer[steps] if reverse else buffer[0]
    if initial is None:
        slot[...] = 0
    else:
        slot[...] = initial
    return buffer


# ---- public functions ------------------------------------------------------------------------


def _shape(x: Any) -> tuple:
    return tuple(x.shape)


def _check_tensor(op: str, name: str, x: Any, expected: tuple, meaning: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument '{name}' must be a Tensor, got {type(x).__name__}")
    if _shape(x) != expected:
        raise ValueError(
            f"{op}: argument '{name}' has shape {_shape(x)}; expected {expected} ({meaning})"
        )


def sequence_lengths(lengths: Any, batch: int, steps: int, op: str) -> numpy.ndarray:
    """`lengths` (a list, int array or int Tensor of B values in [1, T]) as host int64 [B]."""
    if isinstance(lengths, Tensor):
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"{op}: lengths must hold integers, got dtype {lengths.dtype}")
        values = lengths.numpy()
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

    >>> out, (h, c) = rnn_layer(x, None, w_ih, w_hh, b_ih, b_hh, mode="lstm")
    """
    op = "rnn_layer"
    if mode not in GATES:
        raise ValueError(f"{op}: unknown mode {mode!r}; expected one of {MODES}")
    if not isinstance(input, Tensor) or input.ndim != 3:
        got = _shape(input) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"{op}: input must be a (T, B, input_size) Tensor, got {got}")
    steps, batch, n_in = _shape(input)
    if steps == 0:
        raise ValueError(f"{op}: input has shape {_shape(input)}; the sequence is empty (T=0)")
    if not isinstance(weight_hh, Tensor) or weight_hh.ndim != 2:
        raise ValueError(f"{op}: weight_hh must be a 2-D Tensor (G*H, H)")
    hidden = weight_hh.shape[1]
    width = GATES[mode] * hidden
    _check_tensor(op, "weight_hh", weight_hh, (width, hidden), f"{GATES[mode]}*H rows for {mode}")
    _check_tensor(op, "weight_ih", weight_ih, (width, n_in), "(G*H, input features)")
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is not None:
            _check_tensor(op, name, bias, (width,), "(G*H,)")
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
        else:
            device_lengths = xp_of(input.data).asarray(host) if _util.is_cuda(input.data) else host
    outputs = RecurrentLayer.apply(
        input, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, mode=mode, reverse=bool(reverse),
        lengths=host, lengths_device=device_lengths, min_length=min_length,
    )  # fmt: skip
    if mode == "lstm":
        return outputs[0], (outputs[1], outputs[2])
    return outputs


def _cell(mode: str, input: Tensor, hx: Any, w_ih, w_hh, b_ih, b_hh) -> Any:
    if not isinstance(input, Tensor) or input.ndim != 2:
        got = _shape(input) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"{mode}_cell: input must be a (B, input_size) Tensor, got {got}")
    _, state = rnn_layer(input[None], hx, w_ih, w_hh, b_ih, b_hh, mode=mode)
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
