"""Double backward (create_graph=True) of the fused recurrent and attention ops, by
recomputation (gradflow/autograd/composite.py): the references against the fused forward,
gradgradcheck in float64 of rnn_layer, the nn recurrent layers and cells, and
scaled_dot_product_attention (masks, broadcasting, grouped heads, dropout) and
nn.MultiheadAttention; second derivatives against torch."""

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import gradgradcheck
from gradflow.autograd.composite import attention_reference, recurrent_reference
from gradflow.ops.rnn import CELLS, GATES, rnn_layer


def _t(rng, shape, device="cpu", scale=0.5):
    a = rng.standard_normal(shape) * scale
    return gf.tensor(a, dtype=gf.float64, device=device, requires_grad=True)


def _layer_inputs(rng, mode, device="cpu", steps=3, batch=2, n_in=2, hidden=2):
    width = GATES[mode] * hidden
    return (
        _t(rng, (steps, batch, n_in), device),
        _t(rng, (batch, hidden), device),
        _t(rng, (batch, hidden), device),
        _t(rng, (width, n_in), device),
        _t(rng, (width, hidden), device),
        _t(rng, (width,), device),
        _t(rng, (width,), device),
    )


def _layer(mode, reverse, lengths, bias):
    """rnn_layer as a function of (x, h0, c0, w_ih, w_hh, b_ih, b_hh) returning a tuple."""

    def f(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        hx = (h0, c0) if mode == "lstm" else h0
        out, state = rnn_layer(x, hx, w_ih, w_hh, b_ih if bias else None,
                               b_hh if bias else None, mode=mode, reverse=reverse,
                               lengths=lengths)  # fmt: skip
        return (out, *state) if mode == "lstm" else (out, state)

    return f


CASES = [(False, None, True), (True, [3, 1], False), (False, [2, 3], True)]


@pytest.mark.parametrize("mode", sorted(GATES))
@pytest.mark.parametrize("reverse,lengths,bias", CASES)
def test_recurrent_reference_is_the_fused_forward(mode, reverse, lengths, bias, rng):
    inputs = _layer_inputs(rng, mode)
    got = _layer(mode, reverse, lengths, bias)(*inputs)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = inputs
    ref = recurrent_reference(mode, reverse, None if lengths is None else numpy.array(lengths))(
        x, h0, c0 if mode == "lstm" else None, w_ih, w_hh, *((b_ih, b_hh) if bias else (None,) * 2)
    )
    assert len(ref) == len(got)
    for a, b in zip(ref, got):
        numpy.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-14)


@pytest.mark.parametrize("mode", sorted(GATES))
@pytest.mark.parametrize("reverse,lengths,bias", CASES[:2])
def test_gradgradcheck_rnn_layer(mode, reverse, lengths, bias, rng):
    inputs = _layer_inputs(rng, mode)
    f = _layer(mode, reverse, lengths, bias)
    if mode != "lstm":  # c0 is not an input
        inputs = inputs[:2] + inputs[3:]
        f = _without_c0(f)
    assert gradgradcheck(f, inputs)


@pytest.mark.parametrize("mode", sorted(GATES))
def test_gradgradcheck_rnn_layer_full_jacobian(mode, rng):
    """Small enough for gradcheck's full Jacobian (the others check random directions)."""
    inputs = _layer_inputs(rng, mode, steps=2, batch=1, n_in=1, hidden=1)
    f = _layer(mode, True, None, True)
    if mode != "lstm":
        inputs, f = inputs[:2] + inputs[3:], _without_c0(f)
    assert gradgradcheck(f, inputs)


def _without_c0(f):
    return lambda x, h0, w_ih, w_hh, b_ih, b_hh: f(x, h0, None, w_ih, w_hh, b_ih, b_hh)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_gradgradcheck_rnn_layer_on_device(mode, device, rng):
    inputs = _layer_inputs(rng, mode, device)
    f = _layer(mode, False, [3, 2], True)
    if mode != "lstm":
        inputs, f = inputs[:2] + inputs[3:], _without_c0(f)
    assert gradgradcheck(f, inputs)


def test_gradgradcheck_rnn_layer_frozen_weights_and_zero_state(rng):
    """Only the input needs a gradient and the initial state is None: the double backward
    still recomputes from the saved input and weights."""
    x, _, _, w_ih, w_hh, b_ih, b_hh = _layer_inputs(rng, "lstm")
    w_ih, w_hh = w_ih.detach(), w_hh.detach()

    def f(a):
        return rnn_layer(a, None, w_ih, w_hh, b_ih.detach(), None, mode="lstm")[0]

    assert gradgradcheck(f, (x,))


def test_rnn_layer_input_not_kept_raises_when_differentiated_twice(rng):
    """Frozen weights keep no input (nothing needs dW_ih): with a non-leaf input its value is
    gone, so the create_graph gradient raises, naming the op, where it is differentiated."""
    x, _, _, w_ih, w_hh, _, _ = _layer_inputs(rng, "gru")
    w_ih, w_hh = w_ih.detach(), w_hh.detach()
    out, _ = rnn_layer(x * 2, None, w_ih, w_hh, mode="gru")
    (gx,) = gf.grad(out.pow(2).sum(), x, create_graph=True)
    (plain,) = gf.grad(rnn_layer(x * 2, None, w_ih, w_hh, mode="gru")[0].pow(2).sum(), x)
    numpy.testing.assert_allclose(gx.detach().numpy(), plain.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="rnn_layer: double backward"):
        gx.sum().backward()


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_tanh", "RNN_relu"])
def test_gradgradcheck_nn_recurrent_layers(kind, rng):
    name, _, act = kind.partition("_")
    extra = {"nonlinearity": act} if act else {}
    layer = getattr(gf.nn, name)(2, 2, num_layers=2, bidirectional=True, **extra).double()
    x = _t(rng, (3, 3, 2))  # the Jacobian is too big for a full check: a directional one
    h0 = _t(rng, (4, 3, 2))

    def f(a, h):
        out, state = layer(a, (h, h * 0.5) if name == "LSTM" else h)
        return out, state[0] if name == "LSTM" else state

    assert gradgradcheck(f, (x, h0))


def test_gradgradcheck_lstm_on_a_packed_sequence(rng):
    from gradflow.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    lstm = gf.nn.LSTM(2, 2, batch_first=True, bidirectional=True).double()
    x = _t(rng, (3, 4, 2), scale=1)

    def f(a):
        out, (h, _) = lstm(pack_padded_sequence(a, [4, 2, 1], batch_first=True))
        return pad_packed_sequence(out, batch_first=True)[0], h

    assert gradgradcheck(f, (x,))


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell_tanh", "RNNCell_relu"])
def test_gradgradcheck_nn_cells(kind, rng):
    name, _, act = kind.partition("_")
    extra = {"nonlinearity": act} if act else {}
    cell = getattr(gf.nn, name)(3, 2, **extra).double()
    x, h = _t(rng, (2, 3)), _t(rng, (2, 2))
    weights = tuple(p.detach().requires_grad_() for p in cell.parameters())
    mode = {"LSTMCell": "lstm", "GRUCell": "gru"}.get(name, f"rnn_{act}")
    cell_fn = CELLS[mode]

    def f(a, hh, *w):
        state = cell_fn(a, (hh, hh * hh) if mode == "lstm" else hh, *w)
        return state if mode != "lstm" else state[0] * state[1]

    assert gradgradcheck(f, (x, h, *weights))
    assert gradgradcheck(lambda a: cell(a, (h, h) if mode == "lstm" else h)[0], (x,))


def test_lstm_gradient_penalty_matches_torch(rng):
    """The input gradient of a 2-layer bidirectional LSTM, its norm differentiated into the
    weights: the parameters' .grad match torch's."""
    torch = pytest.importorskip("torch")
    model = gf.nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    tmodel = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    for (name, p), (tname, tp) in zip(model.named_parameters(), tmodel.named_parameters()):
        assert name == tname
        tp.data = torch.tensor(p.detach().numpy())
    data = rng.standard_normal((5, 2, 3))

    def penalty(lib, net):
        x = lib.tensor(data, dtype=lib.float64, requires_grad=True)
        (gx,) = lib.autograd.grad(net(x)[0].pow(2).sum(), x, create_graph=True)
        return ((gx.reshape(-1).norm() - 1) ** 2) + net(x)[0].mean()

    penalty(gf, model).backward()
    penalty(torch, tmodel).backward()
    for p, tp in zip(model.parameters(), tmodel.parameters()):
        numpy.testing.assert_allclose(p.grad.detach().numpy(), tp.grad.numpy(), rtol=1e-9,
                                      atol=1e-12)  # fmt: skip


def test_hvp_of_a_small_lstm_model_matches_torch(rng):
    torch = pytest.importorskip("torch")
    shapes = [(12, 2), (12, 3), (12,), (12,), (1, 3)]
    arrays = [rng.standard_normal(s) * 0.5 for s in shapes]
    vecs = [rng.standard_normal(s) for s in shapes]
    data = rng.standard_normal((4, 2, 2))
    target = rng.standard_normal((2, 1))

    def gf_loss(w_ih, w_hh, b_ih, b_hh, w_out):
        out, (h, _) = rnn_layer(gf.tensor(data), None, w_ih, w_hh, b_ih, b_hh, mode="lstm")
        return ((F.linear(h, w_out) - gf.tensor(target)) ** 2).mean() + out.pow(2).mean()

    def torch_loss(w_ih, w_hh, b_ih, b_hh, w_out):
        weights = (w_ih, w_hh, b_ih, b_hh)
        h0 = torch.zeros(1, 2, 3, dtype=torch.float64)
        # input, (h0, c0), weights, has_biases, num_layers, dropout, train, bidirectional,
        # batch_first
        out, h, _ = torch._VF.lstm(
            torch.tensor(data), (h0, h0), weights, True, 1, 0.0, False, False, False
        )
        pred = torch.nn.functional.linear(h[0], w_out)
        return ((pred - torch.tensor(target)) ** 2).mean() + out.pow(2).mean()

    params = tuple(gf.tensor(a) for a in arrays)
    v = tuple(gf.tensor(a) for a in vecs)
    out, hv = gf.autograd.functional.hvp(gf_loss, params, v)
    tparams = tuple(torch.tensor(a) for a in arrays)
    tout, thv = torch.autograd.functional.hvp(
        torch_loss, tparams, tuple(torch.tensor(a) for a in vecs)
    )
    numpy.testing.assert_allclose(out.detach().numpy(), tout.numpy(), rtol=1e-12)
    for a, b in zip(hv, thv):
        numpy.testing.assert_allclose(a.detach().numpy(), b.numpy(), rtol=1e-8, atol=1e-12)


# ---- attention -------------------------------------------------------------------------------

_KEEP = numpy.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)  # a row all out
ATTENTION = {
    "plain": lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
    "causal": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    "bool_mask": lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=gf.tensor(_KEEP, device=q.device)
    ),
    "scale": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3),
    "broadcast_batch": lambda q, k, v: F.scaled_dot_product_attention(q, k[:1], v[:1]),
}


@pytest.mark.parametrize("name", sorted(ATTENTION))
def test_gradgradcheck_attention(name, rng):
    q, k, v = _t(rng, (2, 2, 3, 4), scale=1), _t(rng, (2, 2, 5, 4), scale=1), _t(rng, (2, 2, 5, 3))
    assert gradgradcheck(ATTENTION[name], (q, k, v))


def test_attention_all_masked_row_gives_zero_gradients_with_create_graph(rng):
    """A query with no key left outputs 0 and gets 0 gradients, also under create_graph and
    in the second derivative (no NaN from a softmax of -inf scores)."""
    q, k, v = _t(rng, (2, 3, 4), scale=1), _t(rng, (2, 5, 4), scale=1), _t(rng, (2, 5, 3))
    out = ATTENTION["bool_mask"](q, k, v)
    plain = gf.grad(out.pow(2).sum(), (q, k, v), retain_graph=True)
    graph = gf.grad(out.pow(2).sum(), (q, k, v), create_graph=True)
    for a, b in zip(plain, graph):
        numpy.testing.assert_allclose(b.detach().numpy(), a.numpy(), rtol=1e-12, atol=1e-15)
    assert not graph[0].detach().numpy()[:, 1].any()  # the all-masked query
    sum(g.pow(2).sum() for g in graph).backward()
    for t in (q, k, v):
        assert numpy.isfinite(t.grad.detach().numpy()).all()
    assert not q.grad.detach().numpy()[:, 1].any()


def test_attention_reference_is_the_fused_forward(rng):
    q, k, v = _t(rng, (2, 3, 4), scale=1), _t(rng, (2, 5, 4), scale=1), _t(rng, (2, 5, 3))
    mask = _t(rng, (3, 5))
    for keep, causal, m in ((None, False, None), (_KEEP, False, None), (None, True, None),
                            (None, False, mask)):  # fmt: skip
        got = F.scaled_dot_product_attention(
            q, k, v, attn_mask=gf.tensor(keep) if keep is not None else m, is_causal=causal
        )
        ref = attention_reference(0.5, keep, causal)(q, k, v, *(() if m is None else (m,)))
        numpy.testing.assert_allclose(ref.detach().numpy(), got.detach().numpy(), atol=1e-14)


def test_gradgradcheck_attention_additive_mask_grouped_heads_and_dropout(rng):
    q, k, v = _t(rng, (1, 4, 3, 4), scale=1), _t(rng, (1, 2, 5, 4), scale=1), _t(rng, (1, 2, 5, 3))
    mask = _t(rng, (3, 5))
    assert gradgradcheck(
        lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m, enable_gqa=True),
        (q, k, v, mask),
    )

    def dropped(a, b, c):
        gf.manual_seed(3)  # the same keep-mask on every call
        return F.scaled_dot_product_attention(a, b, c, dropout_p=0.3, enable_gqa=True)

    assert gradgradcheck(dropped, (q, k, v))


@pytest.mark.parametrize("name", ["plain", "bool_mask"])
def test_gradgradcheck_attention_on_device(name, device, rng):
    q = _t(rng, (2, 3, 4), device, scale=1)
    k, v = _t(rng, (2, 5, 4), device, scale=1), _t(rng, (2, 5, 3), device)
    assert gradgradcheck(ATTENTION[name], (q, k, v))


def test_gradgradcheck_multihead_attention(rng):
    mha = gf.nn.MultiheadAttention(4, 2, batch_first=True).double()
    x = _t(rng, (2, 3, 4), scale=1)
    pad = gf.tensor(numpy.array([[False, False, True], [False, False, False]]))
    assert gradgradcheck(lambda a: mha(a, a, a, need_weights=False)[0], (x,))
    assert gradgradcheck(lambda a: mha(a, a, a, key_padding_mask=pad, need_weights=False)[0], (x,))


# ---- embedding_bag -----------------------------------------------------------------------------

_IDX, _OFFSETS = [1, 2, 4, 5, 4, 3, 2, 0], [0, 2, 2, 5]  # bag 1 is empty
EMBEDDING_BAG = {
    "sum": {"mode": "sum"},
    "mean": {"mode": "mean"},
    "max": {"mode": "max"},
    "sum_include_last_offset": {"mode": "sum", "include_last_offset": True},
    "mean_padding_idx": {"mode": "mean", "padding_idx": 2},
}


def _bag(w, psw=None, **kw):
    idx, offsets = gf.tensor(_IDX, device=w.device), gf.tensor(_OFFSETS, device=w.device)
    if kw.get("include_last_offset"):
        offsets = gf.tensor([0, 2, 5], device=w.device)
    return F.embedding_bag(idx, w, offsets, per_sample_weights=psw, **kw)


@pytest.mark.parametrize("name", sorted(EMBEDDING_BAG))
def test_gradgradcheck_embedding_bag(name, rng):
    w = _t(rng, (6, 3), scale=1)
    assert gradgradcheck(lambda a: _bag(a, **EMBEDDING_BAG[name]) ** 2, (w,))
    assert gradgradcheck(lambda a: _bag(a * 1.5, **EMBEDDING_BAG[name]) ** 2, (w,))  # non-leaf


def test_gradgradcheck_embedding_bag_per_sample_weights(device, rng):
    """Bilinear in (weight, per_sample_weights): torch has no double backward for this one."""
    w, psw = _t(rng, (6, 3), device, scale=1), _t(rng, (8,), device, scale=1)
    assert gradgradcheck(lambda a, p: _bag(a, p, mode="sum"), (w, psw))
    assert gradgradcheck(lambda p: _bag(w.detach(), p, mode="sum") ** 2, (psw,))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_hvp_of_embedding_bag_matches_torch(mode, rng):
    """Against torch on embedding plus per-bag reductions (torch's embedding_bag itself has
    no double backward)."""
    torch = pytest.importorskip("torch")
    w, v = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    bags = [[1, 2], [], [4, 5, 4], [3, 2, 0]]

    def torch_loss(a):
        rows = []
        for bag in bags:
            e = torch.nn.functional.embedding(torch.tensor(bag, dtype=torch.int64), a)
            reduce = {"sum": e.sum(0), "mean": e.mean(0), "max": e.max(0).values if bag else 0}
            rows.append(reduce[mode] if bag else torch.zeros(3, dtype=a.dtype))
        return (torch.stack(rows).tanh() ** 2).sum()

    def gf_loss(a):
        return (_bag(a, mode=mode).tanh() ** 2).sum()

    _, got = gf.autograd.functional.hvp(gf_loss, gf.tensor(w), gf.tensor(v))
    _, want = torch.autograd.functional.hvp(torch_loss, torch.tensor(w), torch.tensor(v))
    numpy.testing.assert_allclose(got.detach().numpy(), want.numpy(), rtol=1e-10, atol=1e-12)


def test_embedding_bag_edge_cases_under_create_graph(rng):
    w = _t(rng, (6, 3), scale=1)
    empty = F.embedding_bag(gf.tensor([1, 2]), w, gf.tensor([0, 2, 2]), mode="max")
    (g,) = gf.grad(empty[1:].sum() + empty[:1].pow(2).sum(), w, create_graph=True)
    g.pow(2).sum().backward()
    assert numpy.isfinite(w.grad.detach().numpy()).all()
    # scale_grad_by_freq's gradient is not the forward's derivative: differentiating it raises
    out = F.embedding_bag(gf.tensor(_IDX), w, gf.tensor(_OFFSETS), scale_grad_by_freq=True)
    (g,) = gf.grad(out.pow(2).sum(), w, create_graph=True)
    with pytest.raises(RuntimeError, match="embedding_bag: double backward"):
        g.sum().backward()


@pytest.mark.parametrize("route", ["row_kernels", "flash"])
def test_gradgradcheck_attention_on_the_kernel_routes(route, rng):
    """The kernel routes (on the CPU emulation) save other arrays than the NumPy route: the
    recomputation reads the inputs from each."""
    import contextlib

    from gradflow.kernels import dispatch
    from gradflow.testing.emulation import route_kernels, unavailable_reason

    if unavailable_reason():
        pytest.skip(unavailable_reason())
    q, k, v = _t(rng, (2, 3, 4), scale=1), _t(rng, (2, 3, 4), scale=1), _t(rng, (2, 3, 3))
    flash = dispatch.forced("attention", "flash") if route == "flash" else contextlib.nullcontext()

    def f(a, b, c):
        return F.scaled_dot_product_attention(a, b, c, is_causal=True)

    with route_kernels(), flash:
        assert f(q, k, v).grad_fn._flash == (route == "flash")
        assert gradgradcheck(f, (q, k, v))


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_gradgradcheck_rnn_layer_on_the_kernel_route(mode, rng):
    """The fused step kernels (on the CPU emulation) ran forward: the recomputation needs
    only the inputs, the states' first slot and the weights."""
    from gradflow.testing.emulation import route_kernels, unavailable_reason

    if unavailable_reason():
        pytest.skip(unavailable_reason())
    inputs = _layer_inputs(rng, mode)
    f = _layer(mode, True, [3, 2], True)
    if mode != "lstm":
        inputs, f = inputs[:2] + inputs[3:], _without_c0(f)
    with route_kernels():
        assert f(*inputs)[0].grad_fn.kernel
        assert gradgradcheck(f, inputs)
