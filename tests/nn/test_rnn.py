"""nn.RNN / LSTM / GRU and the cells: PyTorch's parameters and outputs (parity with torch when
importable), gradchecks of stacks, variable lengths, long sequences, and error messages."""

import math

import numpy as np
import pytest

import gradflow as gf
from gradflow.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from gradflow.testing import gradcheck

LAYERS = {"lstm": LSTM, "gru": GRU, "rnn_tanh": RNN, "rnn_relu": RNN}
TORCH_LAYERS = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


def _make(mode, **kwargs):
    if mode.startswith("rnn_"):
        kwargs["nonlinearity"] = mode[4:]
    return LAYERS[mode](**kwargs)


def _saved_bytes(*outputs):
    """Bytes of the arrays saved for backward by every node reachable from `outputs`."""
    seen, stack, total = set(), [o.grad_fn for o in outputs if o.grad_fn is not None], 0
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        total += sum(a.nbytes for a in fn.saved_arrays if a is not None)
        stack.extend(e[0] for e in fn._edges if e is not None and e[1] >= 0)
    return total


# ---- construction ----------------------------------------------------------------------------


def test_parameter_names_shapes_and_init_follow_pytorch():
    lstm = LSTM(5, 4, num_layers=2, bidirectional=True)
    names = [n for n, _ in lstm.named_parameters()]
    stems = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    expected = [f"{s}_l{k}{d}" for k in range(2) for d in ("", "_reverse") for s in stems]
    assert names == expected
    assert lstm.weight_ih_l0.shape == (16, 5) and lstm.weight_ih_l1_reverse.shape == (16, 8)
    assert lstm.weight_hh_l1.shape == (16, 4) and lstm.bias_hh_l0_reverse.shape == (16,)
    bound = 1 / math.sqrt(4)
    for p in lstm.parameters():
        assert p.dtype == gf.float32 and np.abs(p.detach().numpy()).max() <= bound
    assert GRU(3, 6, bias=False).weight_hh_l0.shape == (18, 6)
    assert [n for n, _ in GRU(3, 6, bias=False).named_parameters()] == [
        "weight_ih_l0",
        "weight_hh_l0",
    ]


def test_cell_parameters_and_repr():
    cell = LSTMCell(3, 5)
    assert [(n, p.shape) for n, p in cell.named_parameters()] == [
        ("weight_ih", (20, 3)), ("weight_hh", (20, 5)), ("bias_ih", (20,)), ("bias_hh", (20,))
    ]  # fmt: skip
    assert repr(GRU(3, 4, num_layers=2, batch_first=True)) == (
        "GRU(3, 4, num_layers=2, batch_first=True)"
    )
    assert repr(RNNCell(2, 3, nonlinearity="relu")) == "RNNCell(2, 3, nonlinearity='relu')"


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"LSTM: hidden_size must be a positive int, got 0"):
        LSTM(3, 0)
    with pytest.raises(ValueError, match=r"RNN: unknown nonlinearity 'sigmoid'"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"GRU: dropout must be in \[0, 1\], got 1.5"):
        GRU(3, 4, num_layers=2, dropout=1.5)
    with pytest.warns(UserWarning, match="dropout=0.5 acts between layers"):
        GRU(3, 4, dropout=0.5)


# ---- gradchecks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config", [{"num_layers": 2}, {"bidirectional": True}], ids=["two_layers", "bidirectional"]
)
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_stack_gradcheck(device, mode, config):
    model = _make(mode, input_size=2, hidden_size=3, **config).to(device=device, dtype=gf.float64)
    rng = np.random.default_rng(0)
    layers = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    x = gf.tensor(rng.standard_normal((3, 2, 2)), device=device, requires_grad=True)
    states = [gf.tensor(rng.standard_normal((layers, 2, 3)), device=device, requires_grad=True)
              for _ in range(2 if mode == "lstm" else 1)]  # fmt: skip
    params = list(model.parameters())

    def fn(x, *states_and_params):
        hx = tuple(states_and_params[:2]) if mode == "lstm" else states_and_params[0]
        out, state = model(x, hx, lengths=[3, 2])
        return (out, *state) if mode == "lstm" else (out, state)

    for seed in range(2):
        assert gradcheck(fn, [x, *states, *params], seed=seed, full_jacobian=False)


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_relu"])
def test_cell_gradcheck(device, mode):
    cls = {"lstm": LSTMCell, "gru": GRUCell, "rnn_relu": RNNCell}[mode]
    kwargs = {"nonlinearity": "relu"} if mode == "rnn_relu" else {}
    cell = cls(2, 2, **kwargs).to(device=device, dtype=gf.float64)
    rng = np.random.default_rng(1)
    x = gf.tensor(rng.standard_normal((2, 2)), device=device, requires_grad=True)
    h = gf.tensor(rng.standard_normal((2, 2)), device=device, requires_grad=True)
    c = gf.tensor(rng.standard_normal((2, 2)), device=device, requires_grad=True)

    def fn(x, h, c, *params):
        return cell(x, (h, c)) if mode == "lstm" else cell(x, h)

    assert gradcheck(fn, [x, h, c if mode == "lstm" else None, *cell.parameters()],
                     full_jacobian=True)  # fmt: skip


# ---- parity with torch -----------------------------------------------------------------------

PARITY = {
    "default": ({}, (5, 3), None),
    "batch_first": ({"batch_first": True}, (3, 5), None),
    "bidirectional": ({"bidirectional": True}, (5, 3), None),
    "two_layers": ({"num_layers": 2}, (5, 3), None),
    "lengths": ({"num_layers": 2, "bidirectional": True}, (5, 3), [5, 2, 4]),
    "lengths_batch_first": ({"batch_first": True, "bidirectional": True}, (3, 5), [1, 5, 3]),
    "unbatched": ({"bidirectional": True}, (5,), None),
}


def _copy_weights_from(ours, theirs):
    for name, p in theirs.named_parameters():
        getattr(ours, name).array[...] = p.detach().numpy()


@pytest.mark.parametrize("case", list(PARITY))
@pytest.mark.parametrize("mode", list(LAYERS))
def test_matches_torch(mode, case):
    torch = pytest.importorskip("torch")
    config, lead, lengths = PARITY[case]
    n_in, hidden = 3, 4
    kwargs = dict(input_size=n_in, hidden_size=hidden, **config)
    if mode.startswith("rnn_"):
        kwargs["nonlinearity"] = mode[4:]
    theirs = getattr(torch.nn, TORCH_LAYERS[mode])(**kwargs).double()
    ours = _make(mode, **{k: v for k, v in kwargs.items() if k != "nonlinearity"}).double()
    _copy_weights_from(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]

    rng = np.random.default_rng(2)
    x_np = rng.standard_normal((*lead, n_in))
    layers = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    batch = () if len(lead) == 1 else (lead[0] if config.get("batch_first") else lead[1],)
    states_np = [rng.standard_normal((layers, *batch, hidden))
                 for _ in range(2 if mode == "lstm" else 1)]  # fmt: skip

    x_t = torch.tensor(x_np, requires_grad=True)
    states_t = [torch.tensor(s, requires_grad=True) for s in states_np]
    hx_t = tuple(states_t) if mode == "lstm" else states_t[0]
    if lengths is None:
        out_t, final_t = theirs(x_t, hx_t)
    else:
        pack = torch.nn.utils.rnn.pack_padded_sequence
        packed = pack(x_t, lengths, batch_first=ours.batch_first, enforce_sorted=False)
        out_t, final_t = theirs(packed, hx_t)
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out_t, batch_first=ours.batch_first, total_length=max(lead)
        )
    finals_t = list(final_t) if mode == "lstm" else [final_t]

    x = gf.tensor(x_np, requires_grad=True)
    states = [gf.tensor(s, requires_grad=True) for s in states_np]
    out, final = ours(x, tuple(states) if mode == "lstm" else states[0], lengths=lengths)
    finals = list(final) if mode == "lstm" else [final]

    weights = [rng.standard_normal(tuple(o.shape)) for o in [out, *finals]]
    sum((o * torch.tensor(w)).sum() for o, w in zip([out_t, *finals_t], weights)).backward()
    loss = sum((o * gf.tensor(w)).sum() for o, w in zip([out, *finals], weights))
    loss.backward()

    tol = {"rtol": 1e-10, "atol": 1e-12}
    for o, o_t in zip([out, *finals], [out_t, *finals_t]):
        np.testing.assert_allclose(o.detach().numpy(), o_t.detach().numpy(), **tol)
    for t, t_t in zip([x, *states], [x_t, *states_t]):
        np.testing.assert_allclose(t.grad.numpy(), t_t.grad.numpy(), **tol)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad.numpy(), p.grad.numpy(), **tol)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_cells_match_torch(mode, batched):
    torch = pytest.importorskip("torch")
    name = {"lstm": "LSTMCell", "gru": "GRUCell"}.get(mode, "RNNCell")
    kwargs = {"nonlinearity": mode[4:]} if mode.startswith("rnn_") else {}
    theirs = getattr(torch.nn, name)(3, 4, **kwargs).double()
    ours = {"LSTMCell": LSTMCell, "GRUCell": GRUCell, "RNNCell": RNNCell}[name](3, 4, **kwargs)
    ours.double()
    _copy_weights_from(ours, theirs)
    rng = np.random.default_rng(3)
    lead = (2,) if batched else ()
    x_np, h_np, c_np = (rng.standard_normal((*lead, k)) for k in (3, 4, 4))
    states_np = (h_np, c_np) if mode == "lstm" else (h_np,)
    for with_state in (True, False):
        hx_t = hx = None
        if with_state:
            hx_t = tuple(torch.tensor(s) for s in states_np)
            hx = tuple(gf.tensor(s) for s in states_np)
            if mode != "lstm":
                hx_t, hx = hx_t[0], hx[0]
        out_t = theirs(torch.tensor(x_np), hx_t)
        out = ours(gf.tensor(x_np), hx)
        outs_t = list(out_t) if mode == "lstm" else [out_t]
        outs = list(out) if mode == "lstm" else [out]
        sum(o.sum() for o in outs_t).backward()
        sum(o.sum() for o in outs).backward()
        for o, o_t in zip(outs, outs_t):
            np.testing.assert_allclose(o.detach().numpy(), o_t.detach().numpy(), atol=1e-12)
    for n, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, n).grad.numpy(), p.grad.numpy(), atol=1e-12)


# ---- behaviour -------------------------------------------------------------------------------


def test_dropout_between_layers_only_in_training():
    gf.manual_seed(0)
    model = LSTM(3, 4, num_layers=2, dropout=0.5).double()
    x = gf.tensor(np.random.default_rng(4).standard_normal((4, 2, 3)))
    model.eval()
    out_eval, _ = model(x)
    model.dropout = 0.0
    out_plain, _ = model(x)
    np.testing.assert_array_equal(out_eval.detach().numpy(), out_plain.detach().numpy())
    model.dropout = 0.5
    model.train()
    out_train, _ = model(x)
    assert not np.allclose(out_train.detach().numpy(), out_plain.detach().numpy())


def test_lengths_zero_outputs_past_each_end_and_take_h_n_at_the_end():
    model = GRU(2, 3, batch_first=True).double()
    x = gf.tensor(np.random.default_rng(5).standard_normal((2, 4, 2)))
    out, h_n = model(x, lengths=gf.tensor([4, 2]))
    short, short_h = model(x[1:, :2])
    np.testing.assert_array_equal(out.detach().numpy()[1, 2:], 0)
    np.testing.assert_allclose(out.detach().numpy()[1, :2], short.detach().numpy()[0], atol=1e-14)
    np.testing.assert_allclose(h_n.detach().numpy()[0, 1], short_h.detach().numpy()[0, 0],
                               atol=1e-14)  # fmt: skip


def test_full_bptt_over_1000_steps():
    model = LSTM(2, 4, num_layers=2)
    x = gf.randn(1000, 2, 2)
    out, (h_n, c_n) = model(x)
    (out.sum() + c_n.sum()).backward()
    for p in model.parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all()


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_saved_memory_is_linear_in_sequence_length(mode):
    model = _make(mode, input_size=3, hidden_size=4, num_layers=2)
    saved = {}
    for steps in (250, 500, 1000):
        out, _ = model(gf.randn(steps, 2, 3))
        saved[steps] = _saved_bytes(out)
    per_250 = saved[500] - saved[250]
    assert per_250 > 0 and saved[1000] - saved[500] == 2 * per_250  # exactly linear
    assert saved[500] <= 2 * saved[250]  # no superlinear part, a constant part at most


# ---- errors ----------------------------------------------------------------------------------


def test_error_wrong_input_feature_size():
    with pytest.raises(ValueError, match=r"LSTM: input.size\(-1\) must be equal to input_size: "
                       r"expected 3, got 5 \(input of shape \(4, 2, 5\)\)"):  # fmt: skip
        LSTM(3, 4)(gf.zeros(4, 2, 5))
    with pytest.raises(ValueError, match=r"GRUCell: input.size\(-1\) must be equal to "
                       r"input_size: expected 3, got 2"):  # fmt: skip
        GRUCell(3, 4)(gf.zeros(2, 2))


def test_error_wrong_input_rank():
    message = r"RNN: expected input of shape \(seq_len, batch, input_size\) or unbatched"
    with pytest.raises(ValueError, match=message + r" \(seq_len, input_size\), got \(3,\)"):
        RNN(3, 4)(gf.zeros(3))


def test_error_wrong_initial_state_shapes():
    lstm = LSTM(3, 4, num_layers=2)
    x, h = gf.zeros(5, 2, 3), gf.zeros(2, 2, 4)
    with pytest.raises(ValueError, match=r"LSTM: expected c_0 of shape \(2, 2, 4\) .*got "
                       r"\(1, 2, 4\)"):  # fmt: skip
        lstm(x, (h, gf.zeros(1, 2, 4)))
    with pytest.raises(TypeError, match=r"LSTM: hx must be a tuple \(h_0, c_0\), got Tensor"):
        lstm(x, h)
    with pytest.raises(ValueError, match=r"GRU: expected h_0 of shape \(1, 4\) .*got \(1, 2, 4\)"):
        GRU(3, 4)(gf.zeros(5, 3), gf.zeros(1, 2, 4))  # unbatched input, batched state
    with pytest.raises(ValueError, match=r"LSTMCell: expected hidden state c of shape \(2, 4\), "
                       r"got \(4,\)"):  # fmt: skip
        LSTMCell(3, 4)(gf.zeros(2, 3), (gf.zeros(2, 4), gf.zeros(4)))


def test_error_batch_first_mismatch_names_the_layout():
    gru = GRU(3, 4)  # batch_first=False, but the data is (batch=2, seq=5, features)
    with pytest.raises(ValueError, match=r"GRU: expected h_0 of shape \(1, 5, 4\).*got "
                       r"\(1, 2, 4\); the input of shape \(2, 5, 3\) was read as \(seq_len, "
                       r"batch, features\) since batch_first=False"):  # fmt: skip
        gru(gf.zeros(2, 5, 3), gf.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"lengths has shape \(2,\); expected \(5,\).*read as "
                       r"\(seq_len, batch, features\) since batch_first=False"):  # fmt: skip
        gru(gf.zeros(2, 5, 3), lengths=[5, 3])


@pytest.mark.parametrize(
    ("lengths", "message"),
    [([6, 2], r"lengths must be in \[1, 5\] .*got min 2 and max 6"),
     ([0, 5], r"lengths must be in \[1, 5\] .*got min 0 and max 5"),
     ([-1, 5], r"lengths must be in .*got min -1")],
)  # fmt: skip
def test_error_lengths_out_of_range(lengths, message):
    with pytest.raises(ValueError, match=r"LSTM: " + message):
        LSTM(3, 4, batch_first=True)(gf.zeros(2, 5, 3), lengths=lengths)
