"""nn.EmbeddingBag and F.embedding_bag: sums, means and maxima of bags against torch (values
and gradients, per_sample_weights, padding_idx, include_last_offset), gradchecks, errors."""

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.testing import gradcheck

INDICES = [1, 2, 4, 5, 4, 3, 2, 0, 2]
OFFSETS = [0, 2, 2, 5, 9]  # bag 1 empty; with include_last_offset the last bag is [5, 9)


def _np(t):
    return t.detach().cpu().numpy()


def test_embedding_bag_small_example(device):
    weight = gf.arange(12.0, device=device).reshape(6, 2)
    indices = gf.tensor([1, 2, 4, 5], device=device)
    offsets = gf.tensor([0, 2], device=device)
    assert _np(F.embedding_bag(indices, weight, offsets, mode="sum")).tolist() == [
        [6.0, 8.0], [18.0, 20.0],
    ]  # fmt: skip
    assert _np(F.embedding_bag(indices, weight, offsets)).tolist() == [[3, 4], [9, 10]]
    assert _np(F.embedding_bag(indices, weight, offsets, mode="max")).tolist() == [
        [4, 5], [10, 11],
    ]  # fmt: skip
    fixed = F.embedding_bag(indices.reshape(2, 2), weight, mode="sum")  # 2-D: fixed-size bags
    assert _np(fixed).tolist() == [[6.0, 8.0], [18.0, 20.0]]


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 2])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_embedding_bag_matches_torch(mode, padding_idx, include_last_offset, rng, device):
    torch = pytest.importorskip("torch")
    w_np = rng.standard_normal((6, 3))
    weight = gf.tensor(w_np, device=device, requires_grad=True)
    weight_t = torch.tensor(w_np, requires_grad=True)
    psw = psw_t = None
    if mode == "sum":
        psw_np = rng.standard_normal(len(INDICES))
        psw = gf.tensor(psw_np, device=device, requires_grad=True)
        psw_t = torch.tensor(psw_np, requires_grad=True)
    kwargs = dict(mode=mode, padding_idx=padding_idx, include_last_offset=include_last_offset)
    indices, offsets = gf.tensor(INDICES, device=device), gf.tensor(OFFSETS, device=device)
    out = F.embedding_bag(indices, weight, offsets, per_sample_weights=psw, **kwargs)
    out_t = torch.nn.functional.embedding_bag(torch.tensor(INDICES), weight_t,
                                              torch.tensor(OFFSETS), per_sample_weights=psw_t,
                                              **kwargs)  # fmt: skip
    np.testing.assert_allclose(_np(out), out_t.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(out_t.shape)
    (out * gf.tensor(g, device=device)).sum().backward()
    (out_t * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(_np(weight.grad), weight_t.grad.numpy(), rtol=1e-12, atol=1e-15)
    if psw is not None:
        np.testing.assert_allclose(_np(psw.grad), psw_t.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_gradcheck(mode, rng, device):
    weight = gf.tensor(rng.standard_normal((6, 3)), device=device, requires_grad=True)
    indices = gf.tensor(INDICES, device=device)
    offsets = gf.tensor(OFFSETS, device=device)
    inputs = [weight]
    if mode == "sum":
        inputs.append(gf.tensor(rng.standard_normal(9), device=device, requires_grad=True))
    assert gradcheck(
        lambda w, *psw: F.embedding_bag(indices, w, offsets, mode=mode, padding_idx=3,
                                        per_sample_weights=psw[0] if psw else None),
        inputs,
    )  # fmt: skip


def test_embedding_bag_scale_grad_by_freq_is_embeddings(rng):
    # Each row's gradient is divided by how often it occurs in the batch, as F.embedding's.
    # (torch's CPU embedding_bag divides by the counts of the wrong rows: [0, 0, 1] in one bag
    # gives row 1 a gradient of 0.5; gradflow follows the documented rule.)
    w_np = rng.standard_normal((6, 2))
    weight, reference = gf.tensor(w_np, requires_grad=True), gf.tensor(w_np, requires_grad=True)
    g = rng.standard_normal((5, 2))  # 5 bags, the last one empty
    bags = F.embedding_bag(gf.tensor(INDICES), weight, gf.tensor(OFFSETS), scale_grad_by_freq=True,
                           mode="sum")  # fmt: skip
    (bags * gf.tensor(g)).sum().backward()
    rows = F.embedding(gf.tensor(INDICES), reference, scale_grad_by_freq=True)
    bag_of = np.searchsorted(OFFSETS, np.arange(len(INDICES)), side="right") - 1
    (rows * gf.tensor(g[bag_of])).sum().backward()
    np.testing.assert_allclose(_np(weight.grad), _np(reference.grad), rtol=1e-12)


def test_embedding_bag_module_matches_torch(rng, device):
    torch = pytest.importorskip("torch")
    bag = nn.EmbeddingBag(6, 3, mode="max", padding_idx=2).double().to(device)
    assert bag.weight.shape == (6, 3) and not _np(bag.weight)[2].any()
    bag_t = torch.nn.EmbeddingBag(6, 3, mode="max", padding_idx=2).double()
    with torch.no_grad():
        bag_t.weight.copy_(torch.tensor(_np(bag.weight)))
    out = bag(gf.tensor(INDICES, device=device), gf.tensor(OFFSETS, device=device))
    out_t = bag_t(torch.tensor(INDICES), torch.tensor(OFFSETS))
    np.testing.assert_allclose(_np(out), out_t.detach().numpy())
    assert repr(bag) == repr(bag_t) == "EmbeddingBag(6, 3, mode='max', padding_idx=2)"
    assert repr(nn.EmbeddingBag(5, 3)) == repr(torch.nn.EmbeddingBag(5, 3))


def test_embedding_bag_from_pretrained_shares_and_freezes():
    table = gf.arange(6.0).reshape(3, 2)
    bag = nn.EmbeddingBag.from_pretrained(table, mode="sum")
    assert not bag.weight.requires_grad and bag.weight.array is table.array
    assert bag(gf.tensor([[0, 2]])).tolist() == [[4.0, 6.0]]
    assert nn.EmbeddingBag.from_pretrained(table, freeze=False).weight.requires_grad


def test_embedding_bag_errors():
    weight = gf.ones(6, 2)
    indices = gf.tensor(INDICES)
    offsets = gf.tensor(OFFSETS)
    with pytest.raises(ValueError, match="mode has to be one of sum, mean or max, got 'min'"):
        F.embedding_bag(indices, weight, offsets, mode="min")
    with pytest.raises(
        NotImplementedError,
        match="per_sample_weights is only supported for mode='sum' \\(got mode='mean'\\)",
    ):
        F.embedding_bag(indices, weight, offsets, per_sample_weights=gf.ones(9))
    with pytest.raises(ValueError, match="must have the same shape as the input \\(9,\\)"):
        F.embedding_bag(indices, weight, offsets, mode="sum", per_sample_weights=gf.ones(3))
    with pytest.raises(RuntimeError, match="offsets\\[0\\] has to be 0.*However, got 1"):
        F.embedding_bag(indices, weight, gf.tensor([1, 2]))
    with pytest.raises(
        RuntimeError,
        match="can not be greater than input's length 9 but got offsets\\[-1\\] of 10",
    ):
        F.embedding_bag(indices, weight, gf.tensor([0, 10]))
    with pytest.raises(RuntimeError, match="offsets must be non-decreasing, got \\[0, 5, 3\\]"):
        F.embedding_bag(indices, weight, gf.tensor([0, 5, 3]))
    with pytest.raises(ValueError, match="if input is 2D, then offsets has to be None"):
        F.embedding_bag(indices.reshape(3, 3), weight, offsets)
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got NoneType"):
        F.embedding_bag(indices, weight)
    with pytest.raises(
        ValueError, match="input has to be 1D or 2D Tensor, but got Tensor of dimension 3"
    ):
        F.embedding_bag(indices.reshape(3, 3, 1), weight)
    with pytest.raises(TypeError, match="input must be a Tensor of integer indices"):
        F.embedding_bag(indices.float(), weight, offsets)
    with pytest.raises(ValueError, match="weight must be a 2-D floating-point Tensor"):
        F.embedding_bag(indices, gf.ones(6), offsets)
    with pytest.raises(IndexError, match="index 7 is out of range for weight with 6 rows"):
        F.embedding_bag(gf.tensor([1, 7]), weight, gf.tensor([0]))
    with pytest.raises(ValueError, match="padding_idx=6 is out of range for weight with 6 rows"):
        F.embedding_bag(indices, weight, offsets, padding_idx=6)
    with pytest.raises(TypeError, match="max_norm must be a number"):
        F.embedding_bag(indices, weight, offsets, max_norm=[1.0])
    with pytest.raises(NotImplementedError, match="sparse=True is not supported"):
        F.embedding_bag(indices, weight, offsets, sparse=True)
    with pytest.raises(ValueError, match="EmbeddingBag: mode has to be one of sum, mean or max"):
        nn.EmbeddingBag(3, 2, mode="min")
    with pytest.raises(
        ValueError, match="EmbeddingBag: padding_idx must be within \\[-3, 3\\), got 3"
    ):
        nn.EmbeddingBag(3, 2, padding_idx=3)
    with pytest.raises(NotImplementedError, match="EmbeddingBag: sparse=True is not supported"):
        nn.EmbeddingBag(3, 2, sparse=True)
    with pytest.raises(ValueError, match="_weight has shape \\(2, 2\\), but num_embeddings=3"):
        nn.EmbeddingBag(3, 2, _weight=gf.ones(2, 2))
