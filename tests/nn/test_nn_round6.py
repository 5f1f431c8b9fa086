"""LSTM proj_size, lazy modules, RNNBase/RNNCellBase exports, multilabel_margin_loss,
gumbel_softmax, the *_with_indices pooling names, lp_pool3d and optim.Rprop: values and
gradients against PyTorch, torch-free references (NumPy, finite differences) and errors."""

import warnings

import numpy
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from gradflow.ops.rnn import lstm_projected_layer
from gradflow.testing.gradcheck import gradcheck


def t(array, device="cpu", requires_grad=False):
    return gradflow.tensor(numpy.asarray(array), device=device, requires_grad=requires_grad)


def host(x):
    return x.detach().cpu().numpy()


def th():
    return pytest.importorskip("torch")


# ---- LSTM proj_size ----------------------------------------------------------------------------


def _lstm_pair(torch, **kw):
    theirs = torch.nn.LSTM(**kw).double()
    ours = nn.LSTM(**kw, dtype=gradflow.float64)
    state = {k: t(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    result = ours.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, p in theirs.state_dict().items():
        assert tuple(ours.state_dict()[name].shape) == tuple(p.shape), name
    return ours, theirs


@pytest.mark.parametrize(
    "kw",
    [
        dict(num_layers=1),
        dict(num_layers=2, bidirectional=True, batch_first=True),
        dict(num_layers=3, bias=False),
    ],
)
def test_lstm_proj_matches_torch_values_and_all_gradients(rng, kw):
    torch = th()
    ours, theirs = _lstm_pair(torch, input_size=5, hidden_size=6, proj_size=3, **kw)
    d = 2 if kw.get("bidirectional") else 1
    layers = kw["num_layers"] * d
    x = rng.standard_normal((4, 7, 5) if kw.get("batch_first") else (7, 4, 5))
    h0, c0 = rng.standard_normal((layers, 4, 3)), rng.standard_normal((layers, 4, 6))
    tx = torch.tensor(x, requires_grad=True)
    gx = t(x, requires_grad=True)
    to, (th_, tc) = theirs(tx, (torch.tensor(h0), torch.tensor(c0)))
    go, (gh, gc) = ours(gx, (t(h0), t(c0)))
    assert go.shape == to.shape and gh.shape == (layers, 4, 3) and gc.shape == (layers, 4, 6)
    for a, b in ((go, to), (gh, th_), (gc, tc)):
        numpy.testing.assert_allclose(host(a), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(to.shape)
    (to * torch.tensor(w)).sum().add(th_.pow(2).sum()).add(tc.sum()).backward()
    ((go * t(w)).sum() + (gh**2).sum() + gc.sum()).backward()
    numpy.testing.assert_allclose(host(gx.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        numpy.testing.assert_allclose(
            host(ours_params[name].grad), p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name
        )


def test_lstm_proj_unbatched_lengths_and_packed_match_torch(rng):
    torch = th()
    ours, theirs = _lstm_pair(torch, input_size=3, hidden_size=5, proj_size=2, bidirectional=True)
    x = rng.standard_normal((6, 3))
    to, (th_, tc) = theirs(torch.tensor(x))
    go, (gh, gc) = ours(t(x))
    assert go.shape == (6, 4) and gh.shape == (2, 2) and gc.shape == (2, 5)
    numpy.testing.assert_allclose(host(go), to.detach().numpy(), atol=1e-12)
    # a packed batch of unequal lengths (unsorted)
    xb = rng.standard_normal((6, 3, 3))
    lengths = [4, 6, 2]
    packed_t = torch.nn.utils.rnn.pack_padded_sequence(
        torch.tensor(xb), lengths, enforce_sorted=False
    )
    packed_g = nn.utils.rnn.pack_padded_sequence(t(xb), lengths, enforce_sorted=False)
    po_t, (ph_t, pc_t) = theirs(packed_t)
    po_g, (ph_g, pc_g) = ours(packed_g)
    pad_t, _ = torch.nn.utils.rnn.pad_packed_sequence(po_t)
    pad_g, _ = nn.utils.rnn.pad_packed_sequence(po_g)
    numpy.testing.assert_allclose(host(pad_g), pad_t.detach().numpy(), atol=1e-12)
    numpy.testing.assert_allclose(host(ph_g), ph_t.detach().numpy(), atol=1e-12)
    numpy.testing.assert_allclose(host(pc_g), pc_t.detach().numpy(), atol=1e-12)
    # lengths= gives the same as the packed batch
    lo, (lh, lc) = ours(t(xb), lengths=lengths)
    numpy.testing.assert_allclose(host(lo), host(pad_g), atol=1e-12)
    numpy.testing.assert_allclose(host(lh), host(ph_g), atol=1e-12)


def test_lstm_projected_layer_numpy_reference_and_gradcheck(rng):
    x = rng.standard_normal((4, 2, 3))
    w_ih, w_hh = rng.standard_normal((12, 3)) * 0.5, rng.standard_normal((12, 2)) * 0.5
    b_ih, b_hh, w_hr = rng.standard_normal(12), rng.standard_normal(12), rng.standard_normal((2, 3))
    out, (h, c) = lstm_projected_layer(
        t(x), None, t(w_ih), t(w_hh), t(b_ih), t(b_hh), t(w_hr), reverse=True
    )

    def sigmoid(v):
        return 1 / (1 + numpy.exp(-v))

    hh, cc, ref = numpy.zeros((2, 2)), numpy.zeros((2, 3)), [None] * 4
    for step in (3, 2, 1, 0):
        gates = x[step] @ w_ih.T + b_ih + hh @ w_hh.T + b_hh
        i, f, g, o = numpy.split(gates, 4, axis=1)
        cc = sigmoid(f) * cc + sigmoid(i) * numpy.tanh(g)
        hh = (sigmoid(o) * numpy.tanh(cc)) @ w_hr.T
        ref[step] = hh
    numpy.testing.assert_allclose(host(out), numpy.stack(ref), rtol=1e-12, atol=1e-14)
    numpy.testing.assert_allclose(host(h), hh, atol=1e-14)
    numpy.testing.assert_allclose(host(c), cc, atol=1e-14)
    args = [t(a, requires_grad=True) for a in (x, w_ih, w_hh, b_ih, b_hh, w_hr)]

    def fn(x_, wi, wh, bi, bh, wr):
        o, (h_, c_) = lstm_projected_layer(x_, None, wi, wh, bi, bh, wr, lengths=[4, 2])
        return o.sum() + (h_ * h_).sum() + c_.sum()

    assert gradcheck(fn, args)


def test_lstm_proj_errors_and_repr():
    for bad, match in ((-1, "positive integer or zero"), (4, "smaller than hidden_size")):
        with pytest.raises(ValueError, match=match):
            nn.LSTM(3, 4, proj_size=bad)
    with pytest.raises(TypeError, match="proj_size must be an int"):
        nn.LSTM(3, 4, proj_size=1.5)
    for cls in (nn.GRU, nn.RNN):
        with pytest.raises(ValueError, match="only supported for LSTM"):
            cls(3, 4, proj_size=2)
    lstm = nn.LSTM(3, 4, num_layers=2, proj_size=2)
    assert repr(lstm) == "LSTM(3, 4, proj_size=2, num_layers=2)"
    assert lstm.weight_ih_l1.shape == (16, 2) and lstm.weight_hr_l1.shape == (2, 4)
    x = gradflow.randn(5, 2, 3)
    with pytest.raises(ValueError, match=r"h_0 of shape \(2, 2, 2\).*proj_size"):
        lstm(x, (gradflow.zeros(2, 2, 4), gradflow.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"c_0 of shape \(2, 2, 4\)"):
        lstm(x, (gradflow.zeros(2, 2, 2), gradflow.zeros(2, 2, 2)))
    assert nn.LSTM(3, 4).proj_size == 0


def test_lstm_proj_on_device_matches_cpu(device, rng):
    lstm = nn.LSTM(3, 5, proj_size=2, num_layers=2, dtype=gradflow.float64)
    x = rng.standard_normal((4, 2, 3))
    ref, (rh, rc) = lstm(t(x))
    lstm.to(device)
    gx = t(x, device, requires_grad=True)
    out, (h, c) = lstm(gx, lengths=[4, 4])
    numpy.testing.assert_allclose(host(out), host(ref), atol=1e-12)
    numpy.testing.assert_allclose(host(rc), host(c), atol=1e-12)
    out.sum().backward()
    assert gx.grad.shape == (4, 2, 3) and lstm.weight_hr_l1.grad.device == gx.device


def test_rnn_base_exports_and_torch_mode_first_form():
    assert nn.RNNBase is gradflow.nn.rnn.RNNBase and nn.RNNCellBase is gradflow.nn.rnn.RNNCellBase
    assert isinstance(nn.LSTM(2, 3), nn.RNNBase) and isinstance(nn.GRUCell(2, 3), nn.RNNCellBase)
    assert nn.modules.rnn.RNNBase is nn.RNNBase

    class MyLSTM(nn.RNNBase):
        def __init__(self, *args, **kwargs):
            super().__init__("LSTM", *args, **kwargs)

    m = MyLSTM(2, 3, num_layers=2, proj_size=1)
    out, (h, c) = m(gradflow.randn(4, 2))
    assert out.shape == (4, 1) and h.shape == (2, 1) and c.shape == (2, 3)
    assert nn.RNNBase("GRU", 2, 3).weight_hh_l0.shape == (9, 3)
    with pytest.raises(ValueError, match="Unrecognized RNN mode"):
        nn.RNNBase("CELL", 2, 3)
    with pytest.raises(TypeError, match="pass the mode first"):
        nn.RNNBase(2, 3)


# ---- lazy modules ------------------------------------------------------------------------------

LAZY_CASES = [
    ("LazyLinear", (3,), {}, (2, 4, 5)),
    ("LazyConv1d", (4, 3), dict(padding=1), (2, 3, 9)),
    ("LazyConv2d", (4, 3), dict(groups=2, stride=2), (2, 6, 7, 7)),
    ("LazyConv3d", (2, 2), {}, (6, 3, 3, 3)),
    ("LazyConvTranspose1d", (4, 3), dict(stride=2, output_padding=1), (2, 3, 5)),
    ("LazyConvTranspose2d", (4, 3), dict(bias=False), (2, 3, 4, 4)),
    ("LazyConvTranspose3d", (2, 2), {}, (1, 2, 3, 3, 3)),
    ("LazyBatchNorm1d", (), {}, (4, 3)),
    ("LazyBatchNorm2d", (), dict(affine=False), (4, 3, 2, 2)),
    ("LazyBatchNorm3d", (), dict(momentum=None), (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 5)),
    ("LazyInstanceNorm2d", (), dict(affine=True, track_running_stats=True), (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), dict(affine=True), (2, 3, 2, 3, 3)),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), LAZY_CASES)
def test_lazy_modules_become_their_class_and_match_torch(rng, name, args, kwargs, shape):
    torch = th()
    ours = getattr(nn, name)(*args, **kwargs, dtype=gradflow.float64)
    theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=torch.float64)
    assert type(ours).cls_to_become.__name__ == type(theirs).cls_to_become.__name__
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.has_uninitialized_params() == theirs.has_uninitialized_params()
    x = rng.standard_normal(shape)
    theirs(torch.tensor(x))
    ours(t(x))
    assert type(ours).__name__ == type(theirs).__name__ == name[4:]
    assert repr(ours) == repr(theirs)
    assert not ours._forward_pre_hooks and not hasattr(ours, "_initialize_hook")
    their_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(their_state)
    for key, value in ours.state_dict().items():
        assert tuple(value.shape) == tuple(their_state[key].shape), key
        assert type(value) is gradflow.Tensor
    for p in ours.parameters():
        assert type(p) is nn.Parameter and p.requires_grad and p.dtype == gradflow.float64
    # the same weights give torch's output and gradients
    ours.load_state_dict({k: t(v.numpy()) for k, v in their_state.items()})
    tx = torch.tensor(x, requires_grad=True)
    gx = t(x, requires_grad=True)
    theirs(tx).sum().backward()
    ours(gx).sum().backward()
    numpy.testing.assert_allclose(host(gx.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_lazy_placeholders_state_dict_load_and_optimizer():
    m = nn.LazyLinear(3)
    assert repr(m) == "LazyLinear(in_features=0, out_features=3, bias=True)"
    assert m.in_features == 0 and m.has_uninitialized_params()
    state = m.state_dict()
    assert list(state) == ["weight", "bias"] and all(is_lazy(v) for v in state.values())
    assert repr(m.weight) == "<UninitializedParameter>"
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized"):
        _ = m.weight.shape
    weight = m.weight
    opt = gradflow.optim.SGD(m.parameters(), lr=0.5)  # built before the first call
    x = gradflow.ones(2, 5)
    m(x).sum().backward()
    assert m.weight is weight and type(weight) is nn.Parameter and weight.shape == (3, 5)
    before = host(weight).copy()
    opt.step()
    numpy.testing.assert_allclose(host(weight), before - 0.5 * 2.0)
    assert type(m) is nn.Linear
    # loading into a lazy module materializes it to the checkpoint's shapes
    lazy = nn.LazyLinear(3)
    source = nn.Linear(4, 3)
    loaded = lazy.load_state_dict(source.state_dict())
    assert not loaded.missing_keys and not loaded.unexpected_keys
    assert type(lazy) is nn.LazyLinear and lazy.in_features == 4
    numpy.testing.assert_array_equal(
        host(lazy(gradflow.ones(1, 4))), host(source(gradflow.ones(1, 4)))
    )
    assert type(lazy) is nn.Linear
    # inside a container, the first forward initializes every lazy layer
    net = nn.Sequential(nn.LazyConv2d(4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    assert net(gradflow.randn(2, 3, 5, 5)).shape == (2, 2)
    assert type(net[0]) is nn.Conv2d and net[3].in_features == 36


def test_lazy_errors():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.LazyConv2d(4, 3, groups=2)(gradflow.ones(1, 3, 5, 5))
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input"):
        nn.LazyConv2d(4, 3)(gradflow.ones(5, 5))
    with pytest.raises(TypeError, match="out_features must be a positive int"):
        nn.LazyLinear(2.5)
    with pytest.raises(ValueError, match="groups"):
        nn.LazyConv1d(3, 2, groups=2)  # out_channels not divisible, as the concrete class
    p = UninitializedParameter(dtype=gradflow.float64)
    assert p.requires_grad and p.dtype == gradflow.float64 and is_lazy(p)
    p.materialize((2, 3))
    assert type(p) is nn.Parameter and p.shape == (2, 3) and not is_lazy(p)
    assert nn.UninitializedParameter is UninitializedParameter
    assert nn.UninitializedBuffer is UninitializedBuffer
    b = UninitializedBuffer()
    assert not b.requires_grad
    b.materialize(4)
    assert type(b) is gradflow.Tensor and b.shape == (4,)


# ---- multilabel_margin_loss --------------------------------------------------------------------

ML_TARGET = numpy.array([[3, 0, -1, 1, 2], [-1, 1, 2, 3, 4], [4, 4, -1, 0, 0], [0, 1, 2, 3, 4]])


def _multilabel_reference(x, y):
    out = []
    for row, targets in zip(x, y):
        chosen = []
        for j in targets:
            if j == -1:
                break
            chosen.append(j)
        others = [i for i in range(len(row)) if i not in chosen]
        total = sum(max(0.0, 1 - row[j] + row[i]) for j in chosen for i in others)
        out.append(total / len(row))
    return numpy.array(out)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_margin_loss_matches_torch_and_numpy(device, rng, reduction):
    x = rng.standard_normal((4, 5))
    gx = t(x, device, requires_grad=True)
    loss = F.multilabel_margin_loss(gx, t(ML_TARGET, device), reduction=reduction)
    ref = _multilabel_reference(x, ML_TARGET)
    expected = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    numpy.testing.assert_allclose(host(loss), expected, rtol=1e-12)
    weights = numpy.arange(1.0, loss.numel() + 1).reshape(tuple(loss.shape))
    (loss * t(weights, device)).sum().backward()
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.multilabel_margin_loss(
        tx, torch.tensor(ML_TARGET), reduction=reduction
    )
    (theirs * torch.tensor(weights)).sum().backward()
    numpy.testing.assert_allclose(host(loss), theirs.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(host(gx.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_multilabel_margin_loss_forms_gradcheck_and_module(rng):
    assert F.multilabel_margin_loss(t([0.1, 0.2, 0.4, 0.8]), t([3, 0, -1, 1])).item() == (
        pytest.approx(0.85)
    )
    assert F.multilabel_margin_loss(t([0.1, 0.2]), t([-1, 0]), reduction="none").shape == ()
    assert F.multilabel_margin_loss(t(0.5), t(0)).item() == 0.0  # 0-d: one class, a target
    empty = F.multilabel_margin_loss(gradflow.zeros(0, 3), gradflow.zeros(0, 3).long())
    assert numpy.isnan(empty.item())  # the mean of no samples
    x = t(rng.standard_normal((3, 4)) * 0.3, requires_grad=True)
    target = t([[1, -1, 0, 0], [3, 2, 1, -1], [-1, 0, 0, 0]])
    assert gradcheck(lambda v: F.multilabel_margin_loss(v, target, reduction="sum"), [x])
    no_targets = F.multilabel_margin_loss(x, t(-numpy.ones((3, 4), int)), reduction="sum")
    no_targets.backward()
    assert no_targets.item() == 0.0 and not host(x.grad).any()
    module = nn.MultiLabelMarginLoss(reduction="none")
    assert repr(module) == "MultiLabelMarginLoss(reduction='none')"
    numpy.testing.assert_allclose(
        host(module(x, target)), _multilabel_reference(host(x), host(target))
    )
    nt = t(numpy.array([[0.0, numpy.inf, 1.0]]))
    assert numpy.isinf(F.multilabel_margin_loss(nt, t([[0, -1, 0]])).item())


def test_multilabel_margin_loss_errors():
    x = gradflow.randn(2, 4)
    with pytest.raises(RuntimeError, match=r"inconsistent target size: \[1, 4\]"):
        F.multilabel_margin_loss(x, t([[3, 0, -1, 1]]))
    with pytest.raises(RuntimeError, match="out of range"):
        F.multilabel_margin_loss(x, t([[4, 0, -1, 1], [0, 0, 0, 0]]))
    with pytest.raises(RuntimeError, match="out of range"):
        F.multilabel_margin_loss(x, t([[-2, 0, -1, 1], [0, 0, 0, 0]]))
    with pytest.raises(RuntimeError, match="expected scalar type Long"):
        F.multilabel_margin_loss(x, t(numpy.zeros((2, 4), numpy.int32)))
    with pytest.raises(RuntimeError, match="non-empty vector or matrix"):
        F.multilabel_margin_loss(gradflow.randn(2, 3, 4), gradflow.zeros(2, 3, 4).long())
    with pytest.raises(RuntimeError, match="non-empty vector or matrix"):
        F.multilabel_margin_loss(gradflow.randn(2, 0), gradflow.zeros(2, 0).long())
    with pytest.raises(TypeError, match="floating-point"):
        F.multilabel_margin_loss(t([[1, 2]]), t([[0, 1]]))
    with pytest.raises(ValueError, match="reduction"):
        F.multilabel_margin_loss(x, gradflow.zeros(2, 4).long(), reduction="avg")


# ---- gumbel_softmax ----------------------------------------------------------------------------


def test_gumbel_softmax_samples_follow_the_softmax(device):
    probs = numpy.array([0.1, 0.2, 0.3, 0.4])
    logits = t(numpy.log(probs), device).expand(20000, 4)
    gradflow.manual_seed(1)
    hard = F.gumbel_softmax(logits, tau=0.7, hard=True)
    values = host(hard)
    assert set(numpy.unique(values)) == {0.0, 1.0} and (values.sum(1) == 1).all()
    # argmax of logits + Gumbel noise is a draw from softmax(logits), whatever tau
    numpy.testing.assert_allclose(values.mean(0), probs, atol=0.015)
    soft = host(F.gumbel_softmax(logits, tau=2.0))
    numpy.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    assert (soft > 0).all() and (soft < 1).all()
    gradflow.manual_seed(1)
    again = F.gumbel_softmax(logits, tau=0.7, hard=True)
    numpy.testing.assert_array_equal(host(again), values)  # seeded: repeatable


def test_gumbel_softmax_straight_through_gradient(rng):
    x = rng.standard_normal((3, 5))
    w = t(rng.standard_normal((3, 5)))
    hard_in, soft_in = t(x, requires_grad=True), t(x, requires_grad=True)
    gradflow.manual_seed(3)
    hard = F.gumbel_softmax(hard_in, tau=0.5, hard=True, dim=1)
    gradflow.manual_seed(3)
    soft = F.gumbel_softmax(soft_in, tau=0.5, hard=False, dim=1)
    one_hot = numpy.zeros((3, 5))
    one_hot[numpy.arange(3), host(soft).argmax(1)] = 1
    numpy.testing.assert_allclose(host(hard), one_hot, atol=1e-15)
    (hard * w).sum().backward()
    (soft * w).sum().backward()
    numpy.testing.assert_allclose(host(hard_in.grad), host(soft_in.grad), atol=1e-15)
    # along dim 0
    y = F.gumbel_softmax(t(x), hard=True, dim=0)
    assert (host(y).sum(0) == 1).all()


def test_gumbel_softmax_errors_and_eps_warning():
    with pytest.raises(TypeError, match="floating-point"):
        F.gumbel_softmax(t([1, 2, 3]))
    with pytest.raises(IndexError):
        F.gumbel_softmax(gradflow.zeros(2, 3), dim=2)
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated"):
        F.gumbel_softmax(gradflow.zeros(2, 3), eps=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert F.gumbel_softmax(gradflow.zeros(0, 3)).shape == (0, 3)
    assert F.gumbel_softmax(t(0.3), hard=True).item() == 1.0


# ---- pooling names -----------------------------------------------------------------------------


def test_with_indices_names_always_return_indices(rng):
    x = t(rng.standard_normal((2, 3, 8, 8, 8)))
    cases = [
        (F.max_pool1d_with_indices, F.max_pool1d, x[0, :, 0], (2,)),
        (F.max_pool2d_with_indices, F.max_pool2d, x[:, :, 0], (3, 2)),
        (F.max_pool3d_with_indices, F.max_pool3d, x, (2,)),
        (F.adaptive_max_pool1d_with_indices, F.adaptive_max_pool1d, x[0, :, 0], (3,)),
        (F.adaptive_max_pool2d_with_indices, F.adaptive_max_pool2d, x[:, :, 0], (3,)),
        (F.adaptive_max_pool3d_with_indices, F.adaptive_max_pool3d, x, (2,)),
    ]
    for alias, base, inp, args in cases:
        out, idx = alias(inp, *args)
        ref, ref_idx = base(inp, *args, return_indices=True)
        numpy.testing.assert_array_equal(host(out), host(ref))
        numpy.testing.assert_array_equal(host(idx), host(ref_idx))
        assert len(alias(inp, *args, return_indices=False)) == 2
    torch = pytest.importorskip("torch")
    out, idx = F.max_pool2d_with_indices(x[:, :, 0], 3, 2, 1)
    ref, ref_idx = torch.nn.functional.max_pool2d_with_indices(
        torch.tensor(host(x[:, :, 0])), 3, 2, 1
    )
    numpy.testing.assert_array_equal(host(idx), ref_idx.numpy())


@pytest.mark.parametrize("p", [2, 1.5, float("inf")])
def test_lp_pool3d_matches_torch_and_numpy(rng, p):
    x = rng.random((2, 3, 5, 6, 4)) + 0.1
    gx = t(x, requires_grad=True)
    out = F.lp_pool3d(gx, p, (2, 3, 2), stride=(1, 2, 2), ceil_mode=True)
    out.sum().backward()
    # NumPy reference (no ceil overhang in the first window)
    window = x[:, :, 0:2, 0:3, 0:2]
    first = numpy.abs(window).max((2, 3, 4)) if p == float("inf") else (window**p).sum((2, 3, 4))
    first = first if p == float("inf") else first ** (1 / p)
    numpy.testing.assert_allclose(host(out)[:, :, 0, 0, 0], first, rtol=1e-12)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.lp_pool3d(tx, p, (2, 3, 2), stride=(1, 2, 2), ceil_mode=True)
    theirs.sum().backward()
    numpy.testing.assert_allclose(host(out), theirs.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(host(gx.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_lp_pool3d_module_gradcheck_and_errors(rng):
    m = nn.LPPool3d(2, 2)
    assert repr(m) == "LPPool3d(norm_type=2, kernel_size=2, stride=None, ceil_mode=False)"
    x = t(rng.random((3, 4, 4, 4)) + 0.1, requires_grad=True)  # unbatched
    assert m(x).shape == (3, 2, 2, 2)
    assert gradcheck(lambda v: F.lp_pool3d(v, 3, 2, 1), [t(rng.random((1, 1, 3, 3, 3)) + 0.1,
                                                            requires_grad=True)])  # fmt: skip
    with pytest.raises(TypeError, match="floating-point"):
        F.lp_pool3d(gradflow.ones(1, 1, 2, 2, 2).long(), 2, 2)
    with pytest.raises(ValueError, match="kernel_size"):
        F.lp_pool3d(gradflow.ones(1, 1, 2, 2, 2), 2, (2, 2))


# ---- Rprop -------------------------------------------------------------------------------------


def _rprop_numpy(w, grad_fn, steps, lr=0.01, etas=(0.5, 1.2), sizes=(1e-6, 50), maximize=False):
    prev, size = numpy.zeros_like(w), numpy.full_like(w, lr)
    for _ in range(steps):
        g = grad_fn(w) * (-1 if maximize else 1)
        s = numpy.sign(g * prev)
        size = numpy.clip(size * numpy.select([s > 0, s < 0], [etas[1], etas[0]], 1.0), *sizes)
        g = numpy.where(s < 0, 0.0, g)
        w = w - numpy.sign(g) * size
        prev = g
    return w


def _loss(p):
    return ((p - 0.3) ** 2 * (p.sin() + 2)).sum()


@pytest.mark.parametrize(
    "kw",
    [{}, dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2)), dict(maximize=True)],
)
def test_rprop_matches_torch_and_numpy_over_20_steps(rng, kw):
    w0 = rng.standard_normal((5, 3))
    ours = nn.Parameter(t(w0))
    opt = gradflow.optim.Rprop([ours], **kw)
    for _ in range(20):
        opt.zero_grad()
        _loss(ours).backward()
        opt.step()

    def grad(w):
        return 2 * (w - 0.3) * (numpy.sin(w) + 2) + (w - 0.3) ** 2 * numpy.cos(w)

    ref = _rprop_numpy(w0, grad, 20, kw.get("lr", 0.01), kw.get("etas", (0.5, 1.2)),
                       kw.get("step_sizes", (1e-6, 50)), kw.get("maximize", False))  # fmt: skip
    numpy.testing.assert_allclose(host(ours), ref, atol=1e-12)
    assert list(opt.state_dict()["state"][0]) == ["step", "prev", "step_size"]
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.Rprop([theirs], **kw)
    for _ in range(20):
        topt.zero_grad()
        _loss(theirs).backward()
        topt.step()
    numpy.testing.assert_allclose(host(ours), theirs.detach().numpy(), atol=1e-12)
    tstate, gstate = topt.state_dict()["state"][0], opt.state_dict()["state"][0]
    assert list(gstate) == list(tstate) and int(gstate["step"]) == int(tstate["step"]) == 20
    for key in ("prev", "step_size"):
        numpy.testing.assert_allclose(host(gstate[key]), tstate[key].numpy(), atol=1e-12)
    groups = topt.state_dict()["param_groups"][0]
    assert set(opt.state_dict()["param_groups"][0]) == set(groups)


def test_rprop_float32_on_device_state_dict_round_trip_and_errors(device, rng):
    w0 = rng.standard_normal(6).astype(numpy.float32)
    p = nn.Parameter(t(w0, device))
    opt = gradflow.optim.Rprop([p], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    assert p.dtype == gradflow.float32 and opt.state[p]["step_size"].dtype == gradflow.float32
    q = nn.Parameter(t(host(p), device))
    other = gradflow.optim.Rprop([q], lr=0.1)
    other.load_state_dict(opt.state_dict())
    for o, param in ((opt, p), (other, q)):
        o.zero_grad()
        (param * param).sum().backward()
        o.step()
    numpy.testing.assert_array_equal(host(p), host(q))
    nan = nn.Parameter(t(numpy.array([1.0, 2.0]), device))
    nan_opt = gradflow.optim.Rprop([nan])
    nan.grad = t(numpy.array([numpy.nan, 1.0]), device)
    nan_opt.step()
    assert numpy.isnan(host(nan)[0]) and host(nan)[1] == pytest.approx(1.99)
    with pytest.raises(ValueError, match="Invalid eta values: 1.2, 0.5"):
        gradflow.optim.Rprop([p], etas=(1.2, 0.5))
    with pytest.raises(ValueError, match="Invalid eta values"):
        gradflow.optim.Rprop([p], etas=(0.5, 1.0))
    with pytest.raises(ValueError, match="invalid learning rate"):
        gradflow.optim.Rprop([p], lr=-1)
    with pytest.raises(ValueError, match="step_sizes must be a pair"):
        gradflow.optim.Rprop([p], step_sizes=1e-6)
    with pytest.raises(NotImplementedError, match="differentiable"):
        gradflow.optim.Rprop([p], differentiable=True)
    gradflow.optim.Rprop([p], foreach=True, capturable=True)  # accepted, change nothing


# ---- Adafactor ---------------------------------------------------------------------------------

ADAFACTOR_SHAPES = [(5, 3), (4,), (2, 3, 4), ()]


def _adafactor_run(lib, params, steps, **kw):
    opt = lib.optim.Adafactor(params, **kw)
    for _ in range(steps):
        opt.zero_grad()
        sum(_loss(p) for p in params).backward()
        opt.step()
    return opt


@pytest.mark.parametrize(
    "kw",
    [{}, dict(lr=0.05, weight_decay=0.1, d=1.5), dict(maximize=True, eps=(1e-8, 1e-3))],
)
def test_adafactor_matches_torch_over_20_steps(rng, kw):
    torch = th()
    w0 = [numpy.asarray(rng.standard_normal(s)) for s in ADAFACTOR_SHAPES]
    ours = [nn.Parameter(t(w)) for w in w0]
    theirs = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
    opt = _adafactor_run(gradflow, ours, 20, **kw)
    topt = _adafactor_run(torch, theirs, 20, **kw)
    for a, b in zip(ours, theirs):
        numpy.testing.assert_allclose(host(a), b.detach().numpy(), atol=1e-12)
    state, tstate = opt.state_dict()["state"], topt.state_dict()["state"]
    for i in range(len(w0)):
        assert list(state[i]) == list(tstate[i])
        for key in list(state[i])[1:]:
            numpy.testing.assert_allclose(host(state[i][key]), tstate[i][key].numpy(), rtol=1e-9)
    # float32, as PyTorch computes it
    ours32 = [nn.Parameter(t(w.astype(numpy.float32))) for w in w0]
    theirs32 = [torch.nn.Parameter(torch.tensor(w.astype(numpy.float32))) for w in w0]
    _adafactor_run(gradflow, ours32, 20, **kw)
    _adafactor_run(torch, theirs32, 20, **kw)
    for a, b in zip(ours32, theirs32):
        numpy.testing.assert_allclose(host(a), b.detach().numpy(), atol=1e-6)


def test_adafactor_numpy_reference_first_step_and_errors(device):
    # step 1: beta = 1 (the squares themselves), rho = min(lr, 1), one factored matrix
    w = numpy.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]])
    g = numpy.array([[0.1, -0.2], [0.3, 0.0], [-0.5, 0.4]])
    p = nn.Parameter(t(w, device))
    p.grad = t(g, device)
    gradflow.optim.Adafactor([p], lr=0.1).step()
    row = (g * g).mean(1, keepdims=True)
    col = (g * g).mean(0, keepdims=True)
    v = numpy.maximum(row @ col / max(row.mean(), numpy.finfo(float).eps), 1e-3 * 0)
    u = g / numpy.sqrt(numpy.maximum(v, numpy.finfo(float).eps ** 2))
    alpha = max(1e-3, numpy.sqrt((w * w).mean())) * 0.1
    expected = w - alpha / max(1.0, numpy.sqrt((u * u).mean())) * u
    numpy.testing.assert_allclose(host(p), expected, rtol=1e-12)
    for kw, match in (
        (dict(lr=-1.0), "learning rate"),
        (dict(beta2_decay=0.5), "beta2_decay should be <= 0"),
        (dict(eps=(-1.0, 1e-3)), "epsilon1"),
        (dict(eps=1e-3), "eps must be a pair"),
        (dict(d=0.5), "clipping threshold"),
        (dict(weight_decay=-0.1), "weight_decay"),
    ):
        with pytest.raises(ValueError, match=match):
            gradflow.optim.Adafactor([p], **kw)


def test_lazy_dtype_copies_and_loading_through_a_parent():
    import copy

    m = nn.LazyLinear(3).double()  # before the first call: the placeholders take the dtype
    twin = copy.deepcopy(m)
    assert twin(gradflow.ones(2, 4, dtype=gradflow.float64)).dtype == gradflow.float64
    assert type(twin) is nn.Linear and twin.weight.shape == (3, 4)
    assert type(m) is nn.LazyLinear and m.has_uninitialized_params()  # the original is apart
    assert m(gradflow.ones(1, 5, dtype=gradflow.float64)).shape == (1, 3)
    parent = nn.Sequential(nn.LazyLinear(3), nn.ReLU(), nn.LazyLinear(2))
    state = {"0.weight": gradflow.ones(3, 4), "0.bias": gradflow.ones(3)}
    state |= {"2.weight": gradflow.full((2, 3), 0.5), "2.bias": gradflow.zeros(2)}
    loaded = parent.load_state_dict(state)  # through the parent: each child sized from its keys
    assert not loaded.missing_keys and not loaded.unexpected_keys
    assert parent[0].in_features == 4 and parent[2].in_features == 3
    assert parent(gradflow.ones(1, 4)).tolist() == [[7.5, 7.5]]
    assert type(parent[0]) is nn.Linear and type(parent[2]) is nn.Linear
    child = nn.LazyLinear(3)
    loaded = child.load_state_dict({"weight": gradflow.ones(3, 4), "bias": gradflow.ones(3)})
    assert not loaded.missing_keys and child(gradflow.ones(1, 4)).tolist() == [[5.0, 5.0, 5.0]]
    unsized = nn.Sequential(nn.LazyLinear(3))  # a key the checkpoint lacks stays a placeholder
    with pytest.raises(RuntimeError, match="missing keys: 0.weight"):
        unsized.load_state_dict({"0.bias": gradflow.ones(3)})
    unsized.load_state_dict({"0.bias": gradflow.ones(3)}, strict=False)
    assert unsized[0].has_uninitialized_params() and unsized[0].bias.tolist() == [1.0] * 3


def test_multilabel_margin_loss_double_backward(rng):
    x = t(rng.standard_normal((3, 4)) * 0.3, requires_grad=True)
    target = t([[1, -1, 0, 0], [3, 2, 1, -1], [-1, 0, 0, 0]])
    for reduction in ("mean", "sum", "none"):
        u = (x * x).detach().requires_grad_()
        F.multilabel_margin_loss(u, target, reduction=reduction).sum().backward()
        loss = F.multilabel_margin_loss(x * x, target, reduction=reduction).sum()
        (g,) = gradflow.autograd.grad(loss, [x], create_graph=True)
        (gg,) = gradflow.autograd.grad(g.sum(), [x])
        # the loss is piecewise linear in u = x^2: d(sum g)/dx = 2 dL/du
        numpy.testing.assert_allclose(host(gg), 2 * host(u.grad), atol=1e-15)
