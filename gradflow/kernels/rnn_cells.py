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

from typing import Any, NamedTuple

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


class _Signature(NamedTuple):
    """A step kernel's array arguments in its order, each (name, width, meaning, written in
    place): width k means shape (B, k*H), width 0 shape (H,). ``state`` is the position of the
    [B, H] array that fixes B and H."""

    state: int
    args: tuple[tuple[str, int, str, bool], ...]


def _signature(state: str, *args: tuple[str, int, str, bool]) -> _Signature:
    return _Signature([name for name, *_ in args].index(state), args)


def _step(
    launcher: str,
    kernel: str,
    signature: _Signature,
    arrays: tuple,
    lengths: Any,
    t: Any,
    backend: KernelBackend | None,
    validate: bool,
) -> None:
    """Checks ``arrays`` against ``signature`` (when ``validate``) and launches ``kernel`` on
    them: one thread per element of the [B, H] state."""
    backend = resolve_backend(backend)
    if validate:
        arrays, lengths = _validated(launcher, backend, signature, arrays, lengths, t)
    state = arrays[signature.state]
    rows, hidden = state.shape
    n = rows * hidden
    if n == 0:
        return
    device = backend.device_of(state)
    grid = (grid_1d(backend, device, n), 1, 1)
    args = (*arrays, lengths, np.int64(t), np.int64(rows), np.int64(hidden))
    backend.launch(FAMILY, state.dtype, kernel, grid, (BLOCK, 1, 1), args, device)


def _validated(
    launcher: str,
    backend: KernelBackend,
    signature: _Signature,
    arrays: tuple,
    lengths: Any,
    t: Any,
) -> tuple[list[Any], Any]:
    """Checks a step's arrays; returns them (read-only ones made contiguous) and lengths."""
    specs = signature.args
    state = specs[signature.state][0]
    present = {spec[0]: x for spec, x in zip(specs, arrays) if x is not None}
    _, device = check_float_arrays(launcher, backend, **present)
    check_ndim(launcher, state, present[state], 2, "[B, H]: batch rows, hidden units")
    rows, hidden = present[state].shape
    for (name, width, meaning, written), x in zip(specs, arrays):
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
    arrays = [x if spec[3] else contiguous(backend, x)[0] for spec, x in zip(specs, arrays)]
    return arrays, contiguous(backend, lengths)[0]


_LSTM_FWD = _signature(
    "h_prev",
    ("xw", 4, "[B, 4H] input projection", False),
    ("hw", 4, "[B, 4H] recurrent projection", False),
    ("h_prev", 1, "[B, H]", False),
    ("c_prev", 1, "[B, H]", False),
    ("gates", 4, "[B, 4H] saved activations", True),
    ("h_next", 1, "[B, H]", True),
    ("c_next", 1, "[B, H]", True),
    ("out", 1, "[B, H] output", True),
)


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
    arrays = (xw, hw, h_prev, c_prev, gates, h_next, c_next, out)
    _step("lstm_cell_fwd", "lstm_cell_fwd", _LSTM_FWD, arrays, lengths, t, backend, validate)


_LSTM_BWD = _signature(
    "dh_carry",
    ("gates", 4, "[B, 4H] saved activations", False),
    ("c_prev", 1, "[B, H]", False),
    ("c_next", 1, "[B, H]", False),
    ("dout", 1, "[B, H] output gradient", False),
    ("dh_rec", 1, "[B, H] recurrent gradient", False),
    ("dh_carry", 1, "[B, H]", True),
    ("dc", 1, "[B, H]", True),
    ("dgates", 4, "[B, 4H] gate gradients", True),
)


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
    arrays = (gates, c_prev, c_next, dout, dh_rec, dh_carry, dc, dgates)
    _step("lstm_cell_bwd", "lstm_cell_bwd", _LSTM_BWD, arrays, lengths, t, backend, validate)


_GRU_FWD = _signature(
    "h_prev",
    ("xw", 3, "[B, 3H] input projection", False),
    ("hw", 3, "[B, 3H] recurrent projection", False),
    ("b_hn", 0, "[H]: the n part of b_hh", False),
    ("h_prev", 1, "[B, H]", False),
    ("gates", 4, "[B, 4H] saved r, z, n, hn", True),
    ("h_next", 1, "[B, H]", True),
    ("out", 1, "[B, H] output", True),
)


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
    arrays = (xw, hw, b_hn, h_prev, gates, h_next, out)
    _step("gru_cell_fwd", "gru_cell_fwd", _GRU_FWD, arrays, lengths, t, backend, validate)


_GRU_BWD = _signature(
    "dh_carry",
    ("gates", 4, "[B, 4H] saved r, z, n, hn", False),
    ("h_prev", 1, "[B, H]", False),
    ("dout", 1, "[B, H] output gradient", False),
    ("dh_rec", 1, "[B, H] recurrent gradient", False),
    ("dh_carry", 1, "[B, H]", True),
    ("dgates_x", 3, "[B, 3H] input-side gate gradients", True),
    ("dgates_h", 3, "[B, 3H] hidden-side gate gradients", True),
)


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
    arrays = (gates, h_prev, dout, dh_rec, dh_carry, dgates_x, dgates_h)
    _step("gru_cell_bwd", "gru_cell_bwd", _GRU_BWD, arrays, lengths, t, backend, validate)


def _check_rnn_activation(launcher: str, act: str) -> None:
    if act not in RNN_ACTIVATIONS:
        raise ValueError(
            f"{launcher}: unknown nonlinearity {act!r}; expected one of {RNN_ACTIVATIONS}"
        )


_RNN_FWD = _signature(
    "h_prev",
    ("xw", 1, "[B, H] input projection", False),
    ("hw", 1, "[B, H] recurrent projection", False),
    ("h_prev", 1, "[B, H]", False),
    ("h_next", 1, "[B, H]", True),
    ("out", 1, "[B, H] output", True),
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
    if validate:
        _check_rnn_activation("rnn_cell_fwd", act)
    arrays = (xw, hw, h_prev, h_next, out)
    _step("rnn_cell_fwd", f"rnn_{act}_cell_fwd", _RNN_FWD, arrays, lengths, t, backend, validate)


_RNN_BWD = _signature(
    "dh_carry",
    ("h_next", 1, "[B, H] the step's output", False),
    ("dout", 1, "[B, H] output gradient", False),
    ("dh_rec", 1, "[B, H] recurrent gradient", False),
    ("dh_carry", 1, "[B, H]", True),
    ("dpre", 1, "[B, H] pre-activation gradient", True),
)


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
    if validate:
        _check_rnn_activation("rnn_cell_bwd", act)
    arrays = (h_next, dout, dh_rec, dh_carry, dpre)
    _step("rnn_cell_bwd", f"rnn_{act}_cell_bwd", _RNN_BWD, arrays, lengths, t, backend, validate)
