"""nn.utils.rnn: PackedSequence, pack/pad functions and the recurrent layers on packed input,
against torch (values, lengths, indices and gradients), gradchecks and error messages."""

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)
from gradflow.testing import gradcheck

LENGTHS = [2, 5, 3, 5]  # unsorted, with a tie (the stable sort keeps 1 before 3)


def _np(t):
    return t.detach().cpu().numpy()


def _x(rng, device, batch_first=False):
    x = rng.standard_normal((4, 5, 3) if batch_first else (5, 4, 3))
    return x, gf.tensor(x, device=device, requires_grad=True)


# ---- packing and padding -----------------------------------------------------------------------


def test_pack_padded_sequence_sorted_layout(device):
    x = gf.arange(12.0, device=device).reshape(3, 2, 2)  # (T=3, B=2, 2)
    packed = pack_padded_sequence(x, [3, 1])
    assert isinstance(packed, PackedSequence)
    assert packed.batch_sizes.tolist() == [2, 1, 1] and packed.batch_sizes.device.type == "cpu"
    assert packed.sorted_indices is None and packed.unsorted_indices is None
    assert _np(packed.data).tolist() == [[0, 1], [2, 3], [4, 5], [8, 9]]
    data, batch_sizes, sorted_indices, unsorted_indices = packed  # a namedtuple, as torch's
    assert data is packed.data


@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_pad_round_trip_match_torch(batch_first, rng, device):
    torch = pytest.importorskip("torch")
    from torch.nn.utils import rnn as trnn

    x_np, x = _x(rng, device, batch_first)
    xt = torch.tensor(x_np, requires_grad=True)
    packed = pack_padded_sequence(x, LENGTHS, batch_first=batch_first, enforce_sorted=False)
    packed_t = trnn.pack_padded_sequence(xt, LENGTHS, batch_first=batch_first,
                                         enforce_sorted=False)  # fmt: skip
    np.testing.assert_array_equal(_np(packed.data), packed_t.data.detach().numpy())
    for name in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        assert getattr(packed, name).tolist() == getattr(packed_t, name).tolist()
    padded, lengths = pad_packed_sequence(packed, batch_first, -1.0, total_length=6)
    padded_t, lengths_t = trnn.pad_packed_sequence(packed_t, batch_first, -1.0, total_length=6)
    np.testing.assert_array_equal(_np(padded), padded_t.detach().numpy())
    assert lengths.tolist() == lengths_t.tolist() and lengths.dtype == np.int64
    weights = rng.standard_normal(padded_t.shape)
    (padded * gf.tensor(weights, device=device)).sum().backward()
    (padded_t * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(_np(x.grad), xt.grad.numpy())


def test_pack_and_pad_gradcheck(rng, device):
    _, x = _x(rng, device)

    def round_trip(x):
        packed = pack_padded_sequence(x, LENGTHS, enforce_sorted=False)
        return pad_packed_sequence(packed, padding_value=0.5)[0] * 2

    assert gradcheck(round_trip, [x])


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequence_matches_torch(side, batch_first, rng, device):
    torch = pytest.importorskip("torch")
    from torch.nn.utils import rnn as trnn

    arrays = [rng.standard_normal((n, 2)) for n in (3, 1, 4)]
    ours = [gf.tensor(a, device=device, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    padded = pad_sequence(ours, batch_first, 7.0, side)
    padded_t = trnn.pad_sequence(theirs, batch_first, 7.0, side)
    np.testing.assert_array_equal(_np(padded), padded_t.detach().numpy())
    weights = rng.standard_normal(padded_t.shape)
    (padded * gf.tensor(weights, device=device)).sum().backward()
    (padded_t * torch.tensor(weights)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(_np(a.grad), b.grad.numpy())
    assert gradcheck(lambda *s: pad_sequence(s, batch_first, 7.0, side), ours)


def test_pack_sequence_unpack_and_unpad(rng, device):
    seqs = [gf.tensor(rng.standard_normal((n, 2)), device=device) for n in (2, 4, 1)]
    packed = pack_sequence(seqs, enforce_sorted=False)
    assert packed.batch_sizes.tolist() == [3, 2, 1, 1] and packed.sorted_indices.tolist() == [
        1,
        0,
        2,
    ]
    for ours, original in zip(unpack_sequence(packed), seqs):
        np.testing.assert_array_equal(_np(ours), _np(original))
    padded = pad_sequence(seqs, batch_first=True)
    for ours, original in zip(unpad_sequence(padded, [2, 4, 1], batch_first=True), seqs):
        np.testing.assert_array_equal(_np(ours), _np(original))
    time_major = pad_sequence(seqs)
    assert [tuple(s.shape) for s in unpad_sequence(time_major, gf.tensor([2, 4, 1]))] == [
        (2, 2), (4, 2), (1, 2),
    ]  # fmt: skip


def test_packed_sequence_moves_and_casts(device):
    packed = pack_sequence([gf.ones(3, 2), gf.ones(1, 2)], enforce_sorted=False)
    assert packed.to("cpu") is packed
    moved = packed.to(device).double()
    assert moved.data.dtype == np.float64 and moved.data.device.type == device
    assert moved.is_cuda == (device == "cuda") and not moved.is_pinned()
    assert moved.sorted_indices.device.type == device and moved.batch_sizes.device.type == "cpu"
    assert moved.cpu().float().data.dtype == np.float32


# ---- errors ------------------------------------------------------------------------------------


def test_pack_errors():
    x = gf.zeros(5, 4, 1)
    with pytest.raises(RuntimeError, match="`lengths` array must be sorted in decreasing order"):
        pack_padded_sequence(x, [2, 3, 3, 1])
    with pytest.raises(RuntimeError, match="has to be greater than 0"):
        pack_padded_sequence(x, [2, 3, 0, 1], enforce_sorted=False)
    with pytest.raises(
        RuntimeError,
        match=r"Expected `len\(lengths\)` to be equal to batch_size, but got 3 \(batch_size=4\)",
    ):
        pack_padded_sequence(x, [2, 3, 1], enforce_sorted=False)
    with pytest.raises(RuntimeError, match="a length of 9 is longer than the input's 5 steps"):
        pack_padded_sequence(x, [9, 3, 1, 1])
    with pytest.raises(ValueError, match=r"input must be a Tensor of shape \(T, B, \*\)"):
        pack_padded_sequence(gf.zeros(5), [5])
    with pytest.raises(TypeError, match="lengths must hold integers"):
        pack_padded_sequence(x, [2.5, 1.0, 1.0, 1.0])


def test_pad_errors():
    packed = pack_padded_sequence(gf.zeros(3, 2, 1), [3, 1])
    with pytest.raises(ValueError, match="total_length=2 and max sequence length being 3"):
        pad_packed_sequence(packed, total_length=2)
    with pytest.raises(TypeError, match="pad_packed_sequence expects a PackedSequence"):
        pad_packed_sequence(gf.zeros(3))
    with pytest.raises(RuntimeError, match="received an empty list of sequences"):
        pad_sequence([])
    with pytest.raises(
        RuntimeError, match=r"sequences\[1\] has shape \(2, 4\) but sequences\[0\] has \(2, 3\)"
    ):
        pad_sequence([gf.zeros(2, 3), gf.zeros(2, 4)])
    with pytest.raises(
        ValueError, match="Expected padding_side to be one of left or right, but got up"
    ):
        pad_sequence([gf.zeros(2)], padding_side="up")
    with pytest.raises(TypeError, match=r"sequences\[0\] must be a Tensor with at least 1 dim"):
        pad_sequence([gf.tensor(1.0)])


# ---- recurrent layers on packed input -----------------------------------------------------------


def _copy_weights(ours, theirs, torch):
    with torch.no_grad():
        for (name, p), (name_t, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert name == name_t
            q.copy_(torch.tensor(_np(p)))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_recurrent_layers_on_packed_input_match_torch(kind, enforce_sorted, rng, device):
    torch = pytest.importorskip("torch")
    from torch.nn.utils import rnn as trnn

    ours = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=True).double().to(device)
    theirs = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True).double()
    _copy_weights(ours, theirs, torch)
    lengths = [5, 5, 3, 2] if enforce_sorted else LENGTHS
    x_np, x = _x(rng, device)
    xt = torch.tensor(x_np, requires_grad=True)
    h_np = rng.standard_normal((4, 4, 4))
    h0 = gf.tensor(h_np, device=device, requires_grad=True)
    h0t = torch.tensor(h_np, requires_grad=True)
    hx, hxt = ((h0, h0 * 2), (h0t, h0t * 2)) if kind == "LSTM" else (h0, h0t)
    out, h_n = ours(pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted), hx)
    out_t, h_n_t = theirs(
        trnn.pack_padded_sequence(xt, lengths, enforce_sorted=enforce_sorted), hxt
    )
    assert isinstance(out, PackedSequence)
    assert out.batch_sizes.tolist() == out_t.batch_sizes.tolist()
    if kind == "LSTM":
        h_n, h_n_t = h_n[0] + h_n[1] * 3, h_n_t[0] + h_n_t[1] * 3
    np.testing.assert_allclose(_np(out.data), out_t.data.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(h_n), h_n_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    w_out, w_h = rng.standard_normal(out_t.data.shape), rng.standard_normal(h_n_t.shape)
    ((out.data * gf.tensor(w_out, device=device)).sum()
     + (h_n * gf.tensor(w_h, device=device)).sum()).backward()  # fmt: skip
    ((out_t.data * torch.tensor(w_out)).sum() + (h_n_t * torch.tensor(w_h)).sum()).backward()
    np.testing.assert_allclose(_np(x.grad), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(_np(h0.grad), h0t.grad.numpy(), rtol=1e-9, atol=1e-12)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(_np(p.grad), q.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_packed_output_equals_running_each_sequence_alone(rng):
    gru = nn.GRU(3, 2, batch_first=True).double()
    seqs = [gf.tensor(rng.standard_normal((n, 3))) for n in (2, 4, 3)]
    out, h_n = gru(pack_sequence(seqs, enforce_sorted=False))
    padded, lengths = pad_packed_sequence(out, batch_first=True)
    assert lengths.tolist() == [2, 4, 3]
    for i, s in enumerate(seqs):
        alone, h_alone = gru(s[None])
        np.testing.assert_allclose(_np(padded[i, : s.shape[0]]), _np(alone[0]), rtol=1e-12)
        np.testing.assert_allclose(_np(h_n[0, i]), _np(h_alone[0, 0]), rtol=1e-12)


def test_packed_lstm_gradcheck(rng):
    lstm = nn.LSTM(2, 2, bidirectional=True).double()
    x = gf.tensor(rng.standard_normal((3, 3, 2)), requires_grad=True)

    def run(x):
        out, (h, c) = lstm(pack_padded_sequence(x, [1, 3, 2], enforce_sorted=False))
        return out.data, h, c

    assert gradcheck(run, [x])


def test_packed_input_errors():
    lstm = nn.LSTM(3, 2)
    packed = pack_padded_sequence(gf.zeros(4, 2, 3), [4, 2])
    with pytest.raises(ValueError, match="pass either a PackedSequence or lengths, not both"):
        lstm(packed, lengths=[4, 2])
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(1, 2, 2\).*holds 2 sequences"):
        lstm(packed, (gf.zeros(1, 3, 2), gf.zeros(1, 3, 2)))
    with pytest.raises(
        ValueError, match="input.size\\(-1\\) must be equal to input_size: expected 3, got 4"
    ):
        lstm(pack_padded_sequence(gf.zeros(4, 2, 4), [4, 2]))
