"""Launchers for kernels/rnn_cells.cu: one fused pointwise step of an LSTM, GRU or Elman RNN.

Each launcher runs one timestep over a batch: B rows, H hidden units. The GEMMs around a step
(the input projection ``xw = x_t W_ih^T + b`` and the recurrent ``hw = h_prev W_hh^T``) are
the caller's; gradflow/ops/rnn.py makes them. Destination arrays are passed in and written in
place (the op hands slices of its per-sequence buffers), so they must be C-contiguous.

Variable lengths: ``lengths`` (int64 [B]) and the time index ``t``; step t is active for row b
when ``t < lengths[b]``. Inactive rows keep their state, output 0 and pass gradients through
(the kernel file's header has the exact contract).

Per-step cost: the op checks its arguments on the first step of a sequence and passes
``validate=False`` afterwards, when every later step gets slices of the same buffers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.kernels._common import (
    BLOCK,
    KernelBackend,
    check_array_type,
    check_contiguous,
    check_device,
    check_float_arrays,
    check_ndim,
    check_shape,
    contiguous,
    describe,
    grid_1d,
    resolve_backend,
)

FAMILY = "rnn_cells"
RNN_ACTIVATIONS = ("tanh", "relu")


def _validated(
    launcher: str,
    backend: KernelBackend,
    state: str,
    specs: list[tuple[str, Any, int, str, bool]],
    lengths: Any,
    t: Any,
) -> list[Any]:
    """Checks a step's arrays; returns them in order (read-only ones made contiguous), then
    lengths.

    ``state`` names the (B, H) array that fixes B and H; each spec is (name, array or None,
    width, meaning, written in place): width k means shape (B, k*H), width 0 shape (H,).
    """
    present = {name: x for name, x, _, _, _ in specs if x is not None}
    _, device = check_float_arrays(launcher, backend, **present)
    check_ndim(launcher, state, present[state], 2, "[B, H]: batch rows, hidden units")
    rows, hidden = present[state].shape
    for name, x, width, meaning, written in specs:
        if x is None:
            continue
        check_shape(launcher, name, x, (rows, width * hidden) if width else (hidden,), meaning)
        if written:
            check_contiguous(launcher, name, x)
    if isinstance(t, bool) or not isinstance(t, int | np.integer) or t < 0:
        raise ValueError(f"{launcher}: argument 't' is {t!r}; expected a time index >= 0")
    if lengths is not None:
        check_array_type(launcher, backend, "lengths", lengths)
        if lengths.dtype != np.int64:
            raise TypeError(
                f"{launcher}: argument 'lengths' has {describe(lengths)}; expected int64"
            )
        check_shape(launcher, "lengths", lengths, (rows,), "one sequence length per batch row")
        check_device(launcher, backend, "lengths", lengths, device, state)
    arrays = [x if written else contiguous(backend, x)[0] for _, x, _, _, written in specs]
    return [*arrays, contiguous(backend, lengths)[0]]


def _launch(
    backend: KernelBackend, kernel: str, state: Any, args: tuple, t: int, lengths: Any
) -> None:
    rows, hidden = state.shape
    n = rows * hidden
    if n == 0:
        return
    device = backend.device_of(state)
    grid = (grid_1d(backend, device, n), 1, 1)
    args = (*args, lengths, np.int64(t), np.int64(rows), np.int64(hidden))
    backend.launch(FAMILY, state.dtype, kernel, grid, (BLOCK, 1, 1), args, device)


def lstm_cell_fwd(
    xw: Any,
    hw: Any,
    h_prev: Any,
    c_prev: Any,
    h_next: Any,
    c_next: Any,
    *,
    gates: Any = None,
    out: Any = None,
    lengths: Any = None,
    t: int = 0,
    backend: KernelBackend | None = None,
    validate: bool = True,
) -> None:
    """One LSTM step forward: writes h_next, c_next (and gates, out when given) in place.

    xw, hw [B, 4H]: the input projection (with b_ih + b_hh) and h_prev @ W_hh^T, gate order
    i, f, g, o. c_next = f c_prev + i g, h_next = o tanh(c_next). gates [B, 4H] receives the
    activations (i, f, g, o) for backward; out [B, H] the output (0 on inactive rows).
    """
    backend = resolve_backend(backend)
    if validate:
        xw, hw, h_prev, c_prev, h_next, c_next, gates, out, lengths = _validated(
            "lstm_cell_fwd", backend, "h_prev",
            [("xw", xw, 4, "[B, 4H] input projection", False),
             ("hw", hw, 4, "[B, 4H] recurrent projection", False),
             ("h_prev", h_prev, 1, "[B, H]", False), ("c_prev", c_prev, 1, "[B, H]", False),
             ("h_next", h_next, 1, "[B, H]", True), ("c_next", c_next, 1, "[B, H]", True),
             ("gates", gates, 4, "[B, 4H] saved activations", True),
             ("out", out, 1, "[B, H] output", True)],
            lengths, t,
        )  # fmt: skip
    args = (xw, hw, h_prev, c_prev, gates, h_next, c_next, out)
    _launch(backend, "lstm_cell_fwd", h_next, args, t, lengths)


def lstm_cell_bwd(
    gates: Any,
    c_prev: Any,
    c_next: Any,
    dh_carry: Any,
    dc: Any,
    dgates: Any,
    *,
    dout: Any = None,
    dh_rec: Any = None,
    lengths: Any = None,
    t: int = 0,
    backend: KernelBackend | None = None,
    validate: bool = True,
) -> None:
    """One LSTM step backward: writes dgates [B, 4H] and updates dh_carry, dc [B, H] in place.

    The gradient reaching h_next is dh_carry + dh_rec + dout (dh_rec: the previous step's
    dgates @ W_hh). On return dc holds the gradient of c_prev and dh_carry the part of h_prev's
    gradient that does not go through W_hh (0 on active rows); add it to the next dh_rec.
    """
    backend = resolve_backend(backend)
    if validate:
        gates, c_prev, c_next, dout, dh_rec, dh_carry, dc, dgates, lengths = _validated(
            "lstm_cell_bwd", backend, "dh_carry",
            [("gates", gates, 4, "[B, 4H] saved activations", False),
             ("c_prev", c_prev, 1, "[B, H]", False), ("c_next", c_next, 1, "[B, H]", False),
             ("dout", dout, 1, "[B, H] output gradient", False),
             ("dh_rec", dh_rec, 1, "[B, H] recurrent gradient", False),
             ("dh_carry", dh_carry, 1, "[B, H]", True), ("dc", dc, 1, "[B, H]", True),
             ("dgates", dgates, 4, "[B, 4H] gate gradients", True)],
            lengths, t,
        )  # fmt: skip
    args = (gates, c_prev, c_next, dout, dh_rec, dh_carry, dc, dgates)
    _launch(backend, "lstm_cell_bwd", dh_carry, args, t, lengths)


def gru_cell_fwd(
    xw: Any,
    hw: Any,
    h_prev: Any,
    h_next: Any,
    *,
    b_hn: Any = None,
    gates: Any = None,
    out: Any = None,
    lengths: Any = None,
    t: int = 0,
    backend: KernelBackend | None = None,
    validate: bool = True,
) -> None:
    """One GRU step forward: writes h_next (and gates, out when given) in place.

    xw [B, 3H]: the input projection with b_ih and the r, z parts of b_hh; hw [B, 3H]:
    h_prev @ W_hh^T without bias; b_hn [H]: the n part of b_hh. Gate order r, z, n:
    n = tanh(xw_n + r (hw_n + b_hn)), h_next = (1 - z) n + z h_prev. gates [B, 4H] receives
    r, z, n and hw_n + b_hn for backward.
    """
    backend = resolve_backend(backend)
    if validate:
        xw, hw, b_hn, h_prev, h_next, gates, out, lengths = _validated(
            "gru_cell_fwd", backend, "h_prev",
            [("xw", xw, 3, "[B, 3H] input projection", False),
             ("hw", hw, 3, "[B, 3H] recurrent projection", False),
             ("b_hn", b_hn, 0, "[H]: the n part of b_hh", False),
             ("h_prev", h_prev, 1, "[B, H]", False), ("h_next", h_next, 1, "[B, H]", True),
             ("gates", gates, 4, "[B, 4H] saved r, z, n, hn", True),
             ("out", out, 1, "[B, H] output", True)],
            lengths, t,
        )  # fmt: skip
    args = (xw, hw, b_hn, h_prev, gates, h_next, out)
    _launch(backend, "gru_cell_fwd", h_next, args, t, lengths)


def gru_cell_bwd(
    gates: Any,
    h_prev: Any,
    dh_carry: Any,
    dgates_x: Any,
    dgates_h: Any,
    *,
    dout: Any = None,
    dh_rec: Any = None,
    lengths: Any = None,
    t: int = 0,
    backend: KernelBackend | None = None,
    validate: bool = True,
) -> None:
    """One GRU step backward: writes dgates_x, dgates_h [B, 3H], updates dh_carry in place.

    dgates_x is the gradient of xw (for W_ih, b_ih and the input), dgates_h that of
    hw + (0, 0, b_hn) (for W_hh, b_hh and the recurrence). On return dh_carry holds dh * z
    on active rows: the part of h_prev's gradient that bypasses W_hh.
    """
    backend = resolve_backend(backend)
    if validate:
        gates, h_prev, dout, dh_rec, dh_carry, dgates_x, dgates_h, lengths = _validated(
            "gru_cell_bwd", backend, "dh_carry",
            [("gates", gates, 4, "[B, 4H] saved r, z, n, hn", False),
             ("h_prev", h_prev, 1, "[B, H]", False),
             ("dout", dout, 1, "[B, H] output gradient", False),
             ("dh_rec", dh_rec, 1, "[B, H] recurrent gradient", False),
             ("dh_carry", dh_carry, 1, "[B, H]", True),
             ("dgates_x", dgates_x, 3, "[B, 3H] input-side gate gradients", True),
             ("dgates_h", dgates_h, 3, "[B, 3H] hidden-side gate gradients", True)],
            lengths, t,
        )  # fmt: skip
    args = (gates, h_prev, dout, dh_rec, dh_carry, dgates_x, dgates_h)
    _launch(backend, "gru_cell_bwd", dh_carry, args, t, lengths)


def _check_rnn_activation(launcher: str, act: str) -> None:
    if act not in RNN_ACTIVATIONS:
        raise ValueError(
            f"{launcher}: unknown nonlinearity {act!r}; expected one of {RNN_ACTIVATIONS}"
        )


def rnn_cell_fwd(
    act: str,
    xw: Any,
    hw: Any,
    h_prev: Any,
    h_next: Any,
    *,
    out: Any = None,
    lengths: Any = None,
    t: int = 0,
    backend: KernelBackend | None = None,
    validate: bool = True,
) -> None:
    """One Elman RNN step forward: h_next = act(xw + hw), act "tanh" or "relu", in place.

    xw, hw [B, H]: the input projection (with both biases) and h_prev @ W_hh^T.
    """
    backend = resolve_backend(backend)
    if validate:
        _check_rnn_activation("rnn_cell_fwd", act)
        xw, hw, h_prev, h_next, out, lengths = _validated(
            "rnn_cell_fwd", backend, "h_prev",
            [("xw", xw, 1, "[B, H] input projection", False),
             ("hw", hw, 1, "[B, H] recurrent projection", False),
             ("h_prev", h_prev, 1, "[B, H]", False), ("h_next", h_next, 1, "[B, H]", True),
             ("out", out, 1, "[B, H] output", True)],
            lengths, t,
        )  # fmt: skip
    args = (xw, hw, h_prev, h_next, out)
    _launch(backend, f"rnn_{act}_cell_fwd", h_next, args, t, lengths)


def rnn_cell_bwd(
    act: str,
    h_next: Any,
    dh_carry: Any,
    dpre: Any,
    *,
    dout: Any = None,
    dh_rec: Any = None,
    lengths: Any = None,
    t: int = 0,
    backend: KernelBackend | None = None,
    validate: bool = True,
) -> None:
    """One Elman RNN step backward: writes dpre [B, H] (the pre-activation's gradient) and
    updates dh_carry in place. h_next is the step's output (act' is computed from it)."""
    backend = resolve_backend(backend)
    if validate:
        _check_rnn_activation("rnn_cell_bwd", act)
        h_next, dout, dh_rec, dh_carry, dpre, lengths = _validated(
            "rnn_cell_bwd", backend, "dh_carry",
            [("h_next", h_next, 1, "[B, H] the step's output", False),
             ("dout", dout, 1, "[B, H] output gradient", False),
             ("dh_rec", dh_rec, 1, "[B, H] recurrent gradient", False),
             ("dh_carry", dh_carry, 1, "[B, H]", True),
             ("dpre", dpre, 1, "[B, H] pre-activation gradient", True)],
            lengths, t,
        )  # fmt: skip
    args = (h_next, dout, dh_rec, dh_carry, dpre)
    _launch(backend, f"rnn_{act}_cell_bwd", dh_carry, args, t, lengths)
