"""ops.rnn: rnn_layer (one layer, one direction, one graph node) and the cell functions:
gradchecks on every device, torch parity, errors, and what backward keeps."""

import weakref

import numpy as np
import pytest

import gradflow as gf
from gradflow.ops.rnn import (
    GATES,
    RecurrentLayer,
    gru_cell,
    lstm_cell,
    rnn_layer,
    rnn_relu_cell,
    rnn_tanh_cell,
)
from gradflow.testing import gradcheck

MODES = list(GATES)


def _arrays(mode, steps=3, batch=2, n_in=3, hidden=3, seed=0, bias=True):
    """x, h0, c0, w_ih, w_hh, b_ih, b_hh as float64 NumPy arrays (biases None without bias)."""
    rng = np.random.default_rng(seed)
    width = GATES[mode] * hidden
    shapes = [(steps, batch, n_in), (batch, hidden), (batch, hidden), (width, n_in),
              (width, hidden), (width,), (width,)]  # fmt: skip
    arrays = [rng.standard_normal(s) * 0.6 for s in shapes]
    return arrays if bias else arrays[:5] + [None, None]


def _tensors(arrays, device):
    return [None if a is None else gf.tensor(a, device=device, requires_grad=True) for a in arrays]


def _layer_fn(mode, reverse=False, lengths=None):
    def fn(x, h0, c0, *weights):
        hx = (h0, c0) if mode == "lstm" else h0
        out, state = rnn_layer(x, hx, *weights, mode=mode, reverse=reverse, lengths=lengths)
        return (out, *state) if mode == "lstm" else (out, state)

    return fn


@pytest.mark.parametrize("lengths", [None, [3, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("mode", MODES)
def test_rnn_layer_gradcheck(device, mode, reverse, lengths):
    inputs = _tensors(_arrays(mode), device)
    if mode != "lstm":
        inputs[2] = None  # c0 is LSTM's
    # Random directional derivatives, three directions (the full Jacobian costs one pair of
    # forwards per input and output element: minutes at these sizes).
    for seed in range(3):
        assert gradcheck(_layer_fn(mode, reverse, lengths), inputs, seed=seed, full_jacobian=False)


def test_rnn_layer_full_jacobian(device):
    arrays = _arrays("lstm", steps=2, batch=2, n_in=1, hidden=1, seed=3)
    assert gradcheck(_layer_fn("lstm", True, [2, 1]), _tensors(arrays, device),
                     full_jacobian=True)  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_rnn_layer_gradcheck_without_bias_or_initial_state(device, mode):
    x, _, _, w_ih, w_hh, _, _ = _tensors(_arrays(mode, bias=False), device)
    assert gradcheck(_layer_fn(mode), [x, None, None, w_ih, w_hh])


CELLS = {"lstm": lstm_cell, "gru": gru_cell, "rnn_tanh": rnn_tanh_cell, "rnn_relu": rnn_relu_cell}


@pytest.mark.parametrize("mode", MODES)
def test_cell_functions_gradcheck(device, mode):
    arrays = _arrays(mode, steps=1, batch=2, n_in=2, hidden=2, seed=1)
    x, h, c, *weights = _tensors(arrays, device)
    x = x[0].detach().requires_grad_()

    def fn(x, h, c, *weights):
        return CELLS[mode](x, (h, c) if mode == "lstm" else h, *weights)

    assert gradcheck(fn, [x, h, c if mode == "lstm" else None, *weights], full_jacobian=True)


def test_rnn_layer_is_one_node_with_every_output_on_it():
    x, h0, c0, *weights = _tensors(_arrays("lstm"), "cpu")
    out, (h_n, c_n) = rnn_layer(x, (h0, c0), *weights, mode="lstm")
    assert isinstance(out.grad_fn, RecurrentLayer)
    assert out.grad_fn is h_n.grad_fn is c_n.grad_fn
    edges = [e[0] for e in out.grad_fn._edges if e is not None]
    assert all(e.grad_fn is None for e in edges)  # straight to the leaves: x, states, weights


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_rnn_layer_matches_torch(mode):
    torch = pytest.importorskip("torch")
    arrays = _arrays(mode, steps=6, batch=3, n_in=5, hidden=4, seed=2)
    cls = torch.nn.LSTM if mode == "lstm" else torch.nn.GRU
    module = cls(5, 4).double()
    with torch.no_grad():
        for name, a in zip(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"],
                           arrays[3:]):  # fmt: skip
            getattr(module, name).copy_(torch.tensor(a))
    x_t = torch.tensor(arrays[0])
    h_t, c_t = torch.tensor(arrays[1])[None], torch.tensor(arrays[2])[None]
    out_t, _ = module(x_t, (h_t, c_t) if mode == "lstm" else h_t)
    inputs = _tensors(arrays, "cpu")
    out = _layer_fn(mode)(*inputs)[0]
    np.testing.assert_allclose(out.detach().numpy(), out_t.detach().numpy(), atol=1e-12)


def test_backward_keeps_states_cells_and_gates_only():
    """LSTM keeps h_0..h_T, c_0..c_T and 4H gate activations per step, plus references."""
    steps, batch, hidden = 5, 2, 3
    x, h0, c0, *weights = _tensors(_arrays("lstm", steps, batch, 3, hidden), "cpu")
    out, _ = rnn_layer(x, (h0, c0), *weights, mode="lstm")
    saved = out.grad_fn.saved_arrays
    assert saved[0] is x.array and saved[1] is weights[0].array and saved[2] is weights[1].array
    states, cells, gates = saved[3:]
    assert states.shape == cells.shape == (steps + 1, batch, hidden)
    assert gates.shape == (steps, batch, 4 * hidden)
    assert np.shares_memory(out.array, states)  # the output is a view of the saved states


def test_elman_rnn_keeps_no_gates_and_no_grad_keeps_nothing():
    x, h0, _, *weights = _tensors(_arrays("rnn_tanh"), "cpu")
    out, _ = rnn_layer(x, h0, *weights, mode="rnn_tanh")
    assert out.grad_fn.saved_arrays[4:] == (None, None)
    with gf.no_grad():
        out, h_n = rnn_layer(x, h0, *weights, mode="rnn_tanh")
    assert out.grad_fn is None and h_n.grad_fn is None


def test_saved_input_only_when_weights_need_grad():
    arrays = _arrays("gru")
    x = gf.tensor(arrays[0], requires_grad=True)
    weights = [gf.tensor(a) for a in arrays[3:]]  # frozen weights
    out, _ = rnn_layer(x, None, *weights, mode="gru")
    assert out.grad_fn.saved_arrays[0] is None  # dW_ih is not needed: x is not kept
    out.sum().backward()
    assert x.grad is not None and weights[0].grad is None


def test_graph_is_freed_with_its_outputs():
    x, h0, c0, *weights = _tensors(_arrays("lstm"), "cpu")
    out, (h_n, c_n) = rnn_layer(x, (h0, c0), *weights, mode="lstm")
    node = weakref.ref(out.grad_fn)
    del out, h_n, c_n
    assert node() is None


def test_second_backward_needs_retain_graph():
    x, h0, _, *weights = _tensors(_arrays("gru"), "cpu")
    out, _ = rnn_layer(x, h0, *weights, mode="gru")
    loss = out.sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()


def test_lengths_stop_each_sequence_at_its_end():
    x, h0, _, *weights = _tensors(_arrays("gru", steps=4, batch=2), "cpu")
    out, h_n = rnn_layer(x, h0, *weights, mode="gru", lengths=[4, 2])
    short, _ = rnn_layer(x[:2, 1:], h0[1:], *weights, mode="gru")
    np.testing.assert_array_equal(out.detach().numpy()[2:, 1], 0)
    np.testing.assert_allclose(h_n.detach().numpy()[1], short.detach().numpy()[-1, 0], atol=1e-14)
    # Reverse: the second sequence starts at its own end (step 1), not at step 3.
    out, h_n = rnn_layer(x, h0, *weights, mode="gru", lengths=[4, 2], reverse=True)
    short, short_h = rnn_layer(x[:2, 1:], h0[1:], *weights, mode="gru", reverse=True)
    np.testing.assert_allclose(out.detach().numpy()[:2, 1], short.detach().numpy()[:, 0],
                               atol=1e-14)  # fmt: skip
    np.testing.assert_allclose(h_n.detach().numpy()[1], short_h.detach().numpy()[0], atol=1e-14)


def test_lengths_as_int_tensor_and_full_lengths_are_the_plain_run():
    x, h0, _, *weights = _tensors(_arrays("rnn_tanh", steps=3, batch=2), "cpu")
    plain, _ = rnn_layer(x, h0, *weights, mode="rnn_tanh")
    full, _ = rnn_layer(x, h0, *weights, mode="rnn_tanh", lengths=gf.tensor([3, 3]))
    np.testing.assert_array_equal(full.detach().numpy(), plain.detach().numpy())


# ---- errors ----------------------------------------------------------------------------------


def _lstm_inputs():
    return _tensors(_arrays("lstm", steps=3, batch=2, n_in=3, hidden=4), "cpu")


def test_error_unknown_mode():
    x, h0, c0, *w = _lstm_inputs()
    with pytest.raises(ValueError, match=r"rnn_layer: unknown mode 'lstm2'; expected one of"):
        rnn_layer(x, None, *w, mode="lstm2")


def test_error_input_features_do_not_fit_weight_ih():
    x, h0, c0, *w = _lstm_inputs()
    x = gf.zeros(3, 2, 5, dtype=gf.float64)
    with pytest.raises(ValueError, match=r"argument 'weight_ih' has shape \(16, 3\); expected "
                       r"\(16, 5\)"):  # fmt: skip
        rnn_layer(x, None, *w, mode="lstm")


def test_error_wrong_state_shapes():
    x, h0, c0, *w = _lstm_inputs()
    with pytest.raises(ValueError, match=r"argument 'h0' has shape \(4,\); expected \(2, 4\)"):
        rnn_layer(x, (h0[0], c0), *w, mode="lstm")
    with pytest.raises(ValueError, match=r"argument 'c0' has shape \(3, 4\); expected \(2, 4\)"):
        rnn_layer(x, (h0, gf.zeros(3, 4, dtype=gf.float64)), *w, mode="lstm")


def test_error_wrong_input_rank_and_empty_sequence():
    x, h0, c0, *w = _lstm_inputs()
    with pytest.raises(ValueError, match=r"input must be a \(T, B, input_size\) Tensor, got "
                       r"\(2, 3\)"):  # fmt: skip
        rnn_layer(x[0], None, *w, mode="lstm")
    with pytest.raises(ValueError, match=r"the sequence is empty"):
        rnn_layer(x[:0], None, *w, mode="lstm")


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ([4, 1], r"lengths must be in \[1, 3\] \(the sequence length of the input\), got min 1 "
                 r"and max 4"),
        ([0, 3], r"lengths must be in \[1, 3\].*got min 0"),
        ([3], r"lengths has shape \(1,\); expected \(2,\)"),
        ([1.5, 2.0], r"lengths must hold integers"),
    ],
)  # fmt: skip
def test_error_bad_lengths(lengths, message):
    x, h0, c0, *w = _lstm_inputs()
    with pytest.raises((ValueError, TypeError), match=message):
        rnn_layer(x, None, *w, mode="lstm", lengths=lengths)


def test_error_mixed_dtypes_name_the_op():
    x, h0, c0, *w = _lstm_inputs()
    with pytest.raises(TypeError, match=r"^rnn_layer: expected floating tensors of one dtype"):
        rnn_layer(x.float(), None, *w, mode="lstm")


@pytest.mark.parametrize("mode", MODES)
def test_the_cells_node_and_messages_name_the_cell_function(mode):
    """The cells run RecurrentLayer too, yet their nodes and messages name the cell function
    (lstm_cell, not rnn_layer or the class)."""
    x, h, c, *weights = _tensors(_arrays(mode), "cpu")
    hx = (h, c) if mode == "lstm" else h
    state = CELLS[mode](x[0], hx, *weights)
    node = (state[0] if mode == "lstm" else state).grad_fn
    assert isinstance(node, RecurrentLayer) and node.name == f"{mode}_cell"
    camel = {"lstm": "Lstm", "gru": "Gru", "rnn_tanh": "RnnTanh", "rnn_relu": "RnnRelu"}[mode]
    assert repr(node) == f"<{camel}CellBackward>"
    with pytest.raises(TypeError, match=rf"^{mode}_cell: expected floating tensors of one dtype"):
        CELLS[mode](x[0].float(), hx, *weights)
    with pytest.raises(ValueError, match=rf"^{mode}_cell: argument 'weight_ih' has shape"):
        CELLS[mode](x[0], hx, weights[0][:, :-1], *weights[1:])
    out, _ = rnn_layer(x, hx, *weights, mode=mode)
    assert repr(out.grad_fn) == "<RnnLayerBackward>"
