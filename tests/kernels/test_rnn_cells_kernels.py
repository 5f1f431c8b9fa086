"""kernels/rnn_cells.cu through its launchers on the CPU emulation, against NumPy float64
formulas; and the rnn op's kernel route (route_kernels) against its NumPy route."""

import numpy as np
import pytest
from kernel_reference import TOLERANCES

import gradflow as gf
from gradflow.kernels.rnn_cells import (
    gru_cell_bwd,
    gru_cell_fwd,
    lstm_cell_bwd,
    lstm_cell_fwd,
    rnn_cell_bwd,
    rnn_cell_fwd,
)
from gradflow.ops.rnn import rnn_layer
from gradflow.testing.emulation import route_kernels, unavailable_reason

# (B, H): single element, odd sizes, and 9 * 130 = 1,170 elements > 4 blocks * 256 threads, so
# the grid-stride loop goes round.
SHAPES = [(1, 1), (3, 5), (7, 33), (9, 130)]
T_STEP = 2  # the time index of the tested step; lengths below put some rows past their end


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _lengths(batch, variable):
    """None, or lengths where rows alternate between active (3 > t) and finished (2 <= t)."""
    return None if not variable else np.array([3, 2] * batch, dtype=np.int64)[:batch]


def _active(lengths, batch):
    return np.ones((batch, 1), bool) if lengths is None else (lengths > T_STEP)[:, None]


def _close(actual, expected, dtype, scale=1.0):
    tol = TOLERANCES[np.dtype(dtype)]
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def _f64(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


# ---- LSTM ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("shape", SHAPES)
def test_lstm_cell_fwd_matches_reference(emu, dtype, shape, variable):
    batch, hidden = shape
    rng = np.random.default_rng(0)
    xw, hw = _rand(rng, (batch, 4 * hidden), dtype, 2), _rand(rng, (batch, 4 * hidden), dtype)
    h_prev, c_prev = _rand(rng, (batch, hidden), dtype), _rand(rng, (batch, hidden), dtype)
    h_next, c_next, out = (np.empty((batch, hidden), dtype) for _ in range(3))
    gates = np.empty((batch, 4 * hidden), dtype)
    lengths = _lengths(batch, variable)
    lstm_cell_fwd(xw, hw, h_prev, c_prev, h_next, c_next, gates=gates, out=out, lengths=lengths,
                  t=T_STEP, backend=emu)  # fmt: skip
    a = sum(_f64(xw, hw))
    i, f, o = (_sig(a[:, k * hidden : (k + 1) * hidden]) for k in (0, 1, 3))
    g = np.tanh(a[:, 2 * hidden : 3 * hidden])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    active = _active(lengths, batch)
    _close(c_next, np.where(active, c, c_prev), dtype)
    _close(h_next, np.where(active, h, h_prev), dtype)
    _close(out, np.where(active, h, 0), dtype)
    rows = active[:, 0]
    _close(gates[rows], np.concatenate([i, f, g, o], axis=1)[rows], dtype)


@pytest.mark.parametrize("variable", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("shape", SHAPES)
def test_lstm_cell_bwd_matches_reference(emu, dtype, shape, variable):
    batch, hidden = shape
    rng = np.random.default_rng(1)
    pre = rng.standard_normal((batch, 4 * hidden))
    acts = np.concatenate(
        [_sig(pre[:, : 2 * hidden]), np.tanh(pre[:, 2 * hidden : 3 * hidden]),
         _sig(pre[:, 3 * hidden :])], axis=1,
    ).astype(dtype)  # fmt: skip
    c_prev, c_next, dout, dh_rec, carry0, dc0 = (
        _rand(rng, (batch, hidden), dtype) for _ in range(6)
    )
    dh_carry, dc = carry0.copy(), dc0.copy()
    dgates = np.full((batch, 4 * hidden), np.nan, dtype)
    lengths = _lengths(batch, variable)
    lstm_cell_bwd(acts, c_prev, c_next, dh_carry, dc, dgates, dout=dout, dh_rec=dh_rec,
                  lengths=lengths, t=T_STEP, backend=emu)  # fmt: skip
    active = _active(lengths, batch)
    a, c_prev, c_next, dout, dh_rec, carry0, dc0 = _f64(acts, c_prev, c_next, dout, dh_rec,
                                                        carry0, dc0)  # fmt: skip
    i, f, g, o = (a[:, k * hidden : (k + 1) * hidden] for k in range(4))
    dh = carry0 + dh_rec + dout * active
    tc = np.tanh(c_next)
    dcc = dc0 + dh * o * (1 - tc**2)
    expected = np.concatenate(
        [dcc * g * i * (1 - i), dcc * c_prev * f * (1 - f), dcc * i * (1 - g**2),
         dh * tc * o * (1 - o)], axis=1,
    )  # fmt: skip
    _close(dgates, expected * active, dtype, scale=10)
    _close(dc, np.where(active, dcc * f, dc0), dtype, scale=10)
    _close(dh_carry, np.where(active, 0, dh), dtype, scale=10)


# ---- GRU -------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_bias", [False, True], ids=["no_b_hn", "b_hn"])
@pytest.mark.parametrize("variable", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("shape", SHAPES)
def test_gru_cell_fwd_matches_reference(emu, dtype, shape, variable, with_bias):
    batch, hidden = shape
    rng = np.random.default_rng(2)
    xw, hw = _rand(rng, (batch, 3 * hidden), dtype, 2), _rand(rng, (batch, 3 * hidden), dtype)
    b_hn = _rand(rng, (hidden,), dtype) if with_bias else None
    h_prev = _rand(rng, (batch, hidden), dtype)
    h_next, out = np.empty((batch, hidden), dtype), np.empty((batch, hidden), dtype)
    gates = np.empty((batch, 4 * hidden), dtype)
    lengths = _lengths(batch, variable)
    gru_cell_fwd(xw, hw, h_prev, h_next, b_hn=b_hn, gates=gates, out=out, lengths=lengths,
                 t=T_STEP, backend=emu)  # fmt: skip
    x, w, hp = _f64(xw, hw, h_prev)
    r = _sig(x[:, :hidden] + w[:, :hidden])
    z = _sig(x[:, hidden : 2 * hidden] + w[:, hidden : 2 * hidden])
    hn = w[:, 2 * hidden :] + (0 if b_hn is None else b_hn.astype(np.float64))
    n = np.tanh(x[:, 2 * hidden :] + r * hn)
    h = (1 - z) * n + z * hp
    active = _active(lengths, batch)
    _close(h_next, np.where(active, h, hp), dtype)
    _close(out, np.where(active, h, 0), dtype)
    rows = active[:, 0]
    _close(gates[rows], np.concatenate([r, z, n, hn], axis=1)[rows], dtype)


@pytest.mark.parametrize("variable", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("shape", SHAPES)
def test_gru_cell_bwd_matches_reference(emu, dtype, shape, variable):
    batch, hidden = shape
    rng = np.random.default_rng(3)
    acts = np.concatenate(
        [_sig(rng.standard_normal((batch, 2 * hidden))),
         np.tanh(rng.standard_normal((batch, hidden))), rng.standard_normal((batch, hidden))],
        axis=1,
    ).astype(dtype)  # fmt: skip
    h_prev, dout, dh_rec, carry0 = (_rand(rng, (batch, hidden), dtype) for _ in range(4))
    dh_carry = carry0.copy()
    dgx = np.full((batch, 3 * hidden), np.nan, dtype)
    dgh = np.full((batch, 3 * hidden), np.nan, dtype)
    lengths = _lengths(batch, variable)
    gru_cell_bwd(acts, h_prev, dh_carry, dgx, dgh, dout=dout, dh_rec=dh_rec, lengths=lengths,
                 t=T_STEP, backend=emu)  # fmt: skip
    active = _active(lengths, batch)
    a, hp, dout, dh_rec, carry0 = _f64(acts, h_prev, dout, dh_rec, carry0)
    r, z, n, hn = (a[:, k * hidden : (k + 1) * hidden] for k in range(4))
    dh = carry0 + dh_rec + dout * active
    dn = dh * (1 - z) * (1 - n**2)
    dr = dn * hn * r * (1 - r)
    dz = dh * (hp - n) * z * (1 - z)
    _close(dgx, np.concatenate([dr, dz, dn], axis=1) * active, dtype, scale=10)
    _close(dgh, np.concatenate([dr, dz, dn * r], axis=1) * active, dtype, scale=10)
    _close(dh_carry, np.where(active, dh * z, dh), dtype, scale=10)


# ---- Elman RNN -------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("variable", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("shape", SHAPES)
def test_rnn_cell_fwd_and_bwd_match_reference(emu, dtype, shape, variable, act):
    batch, hidden = shape
    rng = np.random.default_rng(4)
    xw, hw, h_prev, dout, dh_rec, carry0 = (_rand(rng, (batch, hidden), dtype) for _ in range(6))
    h_next, out = np.empty((batch, hidden), dtype), np.empty((batch, hidden), dtype)
    lengths = _lengths(batch, variable)
    rnn_cell_fwd(act, xw, hw, h_prev, h_next, out=out, lengths=lengths, t=T_STEP, backend=emu)
    active = _active(lengths, batch)
    a = sum(_f64(xw, hw))
    h = np.tanh(a) if act == "tanh" else np.maximum(a, 0)
    _close(h_next, np.where(active, h, h_prev), dtype)
    _close(out, np.where(active, h, 0), dtype)

    dh_carry, dpre = carry0.copy(), np.full((batch, hidden), np.nan, dtype)
    h_out = h.astype(dtype)
    rnn_cell_bwd(act, h_out, dh_carry, dpre, dout=dout, dh_rec=dh_rec, lengths=lengths,
                 t=T_STEP, backend=emu)  # fmt: skip
    dh = sum(_f64(carry0, dh_rec)) + dout.astype(np.float64) * active
    h64 = h_out.astype(np.float64)
    slope = 1 - h64**2 if act == "tanh" else (h64 > 0).astype(np.float64)
    _close(dpre, dh * slope * active, dtype, scale=10)
    _close(dh_carry, np.where(active, 0, dh), dtype, scale=10)


def test_optional_gradient_inputs_may_be_null(emu):
    """No dh_rec (the first backward step) and no dout: dh is the carry alone."""
    rng = np.random.default_rng(5)
    h = np.tanh(rng.standard_normal((2, 3)))
    carry = rng.standard_normal((2, 3))
    dh_carry, dpre = carry.copy(), np.empty((2, 3))
    rnn_cell_bwd("tanh", h, dh_carry, dpre, backend=emu)
    np.testing.assert_allclose(dpre, carry * (1 - h**2), rtol=1e-13)
    np.testing.assert_array_equal(dh_carry, 0)


# ---- argument checks -------------------------------------------------------------------------


def _lstm_args(batch=2, hidden=3, dtype=np.float64):
    z = np.zeros
    return [z((batch, 4 * hidden), dtype), z((batch, 4 * hidden), dtype),
            *(z((batch, hidden), dtype) for _ in range(4))]  # fmt: skip


def test_launchers_reject_wrong_shapes(emu):
    args = _lstm_args()
    args[1] = np.zeros((2, 11))
    with pytest.raises(ValueError, match=r"lstm_cell_fwd: argument 'hw' has shape \(2, 11\).*"
                       r"expected shape \(2, 12\)"):  # fmt: skip
        lstm_cell_fwd(*args, backend=emu)
    with pytest.raises(ValueError, match=r"gru_cell_fwd: argument 'b_hn' has shape \(4,\).*"
                       r"expected shape \(3,\)"):  # fmt: skip
        gru_cell_fwd(np.zeros((2, 9)), np.zeros((2, 9)), np.zeros((2, 3)), np.zeros((2, 3)),
                     b_hn=np.zeros(4), backend=emu)  # fmt: skip


def test_launchers_reject_bad_dtypes_lengths_and_time(emu):
    args = _lstm_args()
    args[0] = args[0].astype(np.float32)
    with pytest.raises(TypeError, match=r"argument 'hw' has .* expected dtype float32 like 'xw'"):
        lstm_cell_fwd(*args, backend=emu)
    args = _lstm_args()
    with pytest.raises(TypeError, match=r"argument 'lengths' has .*int32; expected int64"):
        lstm_cell_fwd(*args, lengths=np.ones(2, np.int32), backend=emu)
    with pytest.raises(ValueError, match=r"argument 'lengths' has shape \(3,\).*expected shape "
                       r"\(2,\)"):  # fmt: skip
        lstm_cell_fwd(*args, lengths=np.ones(3, np.int64), backend=emu)
    with pytest.raises(ValueError, match=r"argument 't' is -1; expected a time index >= 0"):
        lstm_cell_fwd(*args, t=-1, backend=emu)


def test_launchers_reject_non_contiguous_outputs(emu):
    args = _lstm_args()
    args[4] = np.zeros((3, 2)).T
    with pytest.raises(ValueError, match=r"argument 'h_next' .* is not C-contiguous"):
        lstm_cell_fwd(*args, backend=emu)


def test_rnn_launcher_rejects_unknown_nonlinearity(emu):
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"unknown nonlinearity 'sigmoid'"):
        rnn_cell_fwd("sigmoid", z, z, z, z.copy(), backend=emu)


def test_read_only_inputs_may_be_non_contiguous(emu):
    rng = np.random.default_rng(6)
    xw = rng.standard_normal((3, 2)).T  # (2, 3), Fortran order
    h_next = np.empty((2, 3))
    rnn_cell_fwd("tanh", xw, np.zeros((2, 3)), np.zeros((2, 3)), h_next, backend=emu)
    np.testing.assert_allclose(h_next, np.tanh(xw), rtol=1e-13)


# ---- the op's kernel route -------------------------------------------------------------------

route = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def _run_layer(mode, reverse, lengths, arrays):
    tensors = [gf.tensor(a, requires_grad=True) for a in arrays]
    x, h0, c0, *weights = tensors
    hx = (h0, c0) if mode == "lstm" else h0
    out, state = rnn_layer(x, hx, *weights, mode=mode, reverse=reverse, lengths=lengths)
    states = list(state) if mode == "lstm" else [state]
    rng = np.random.default_rng(7)
    loss = (out * gf.tensor(rng.standard_normal(out.shape).astype(arrays[0].dtype))).sum()
    for s in states:
        loss = loss + (s * gf.tensor(rng.standard_normal(s.shape).astype(s.dtype))).sum()
    loss.backward()
    if mode != "lstm":
        tensors.pop(2)  # c0 is not an input
    return [out.detach().numpy(), *(s.detach().numpy() for s in states)] + [
        t.grad.numpy() for t in tensors
    ]


def _route_arrays(mode, steps, seed, batch=3, n_in=4, hidden=7):
    """x, h0, c0, w_ih, w_hh, b_ih, b_hh (float64)."""
    width = {"lstm": 4, "gru": 3}.get(mode, 1) * hidden
    rng = np.random.default_rng(seed)
    shapes = [(steps, batch, n_in), (batch, hidden), (batch, hidden), (width, n_in),
              (width, hidden), (width,), (width,)]  # fmt: skip
    return [rng.standard_normal(s) * 0.5 for s in shapes]


@route
@pytest.mark.parametrize("lengths", [None, [5, 1, 3]], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_op_kernel_route_matches_numpy_route(dtype, mode, reverse, lengths):
    arrays = [a.astype(dtype) for a in _route_arrays(mode, steps=5, seed=8)]
    expected = _run_layer(mode, reverse, lengths, arrays)
    with route_kernels(max_grid_blocks=2):
        actual = _run_layer(mode, reverse, lengths, arrays)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for ours, ref in zip(actual, expected):
        np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)


@route
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_op_kernel_route_launches_one_kernel_per_step_each_way(mode):
    """Besides GEMMs: one launch per timestep forward and one backward (the target is <= 2)."""
    steps = 6
    arrays = [a.astype(np.float32) for a in _route_arrays(mode, steps, seed=9)]
    tensors = [gf.tensor(a, requires_grad=True) for a in arrays]
    x, h0, c0, *weights = tensors
    with route_kernels() as backend:
        launched = []
        run = backend.launch
        backend.launch = lambda *args: (launched.append(args[2]), run(*args))[1]
        out, state = rnn_layer(x, (h0, c0) if mode == "lstm" else h0, *weights, mode=mode)
        forward = list(launched)
        out.sum().backward()
    assert forward == [f"{mode}_cell_fwd"] * steps
    assert launched[steps:] == [f"{mode}_cell_bwd"] * steps
