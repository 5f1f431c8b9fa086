"""Tests for gradflow/ops/attention.py: scaled_dot_product_attention's values and gradients
against PyTorch (masks bool and additive, causal, broadcasting, grouped heads, scale), float64
gradchecks (the additive mask and dropout included), fully masked rows, dropout, errors."""

import numpy
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow.testing.gradcheck import gradcheck


def t(array, device, requires_grad=False):
    return gradflow.tensor(numpy.asarray(array), device=device, requires_grad=requires_grad)


def host(x):
    return x.detach().cpu().numpy()


CASES = {  # name: (query, key, value shapes, keyword arguments built from rng)
    "4d": ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5), lambda rng: {}),
    "2d": ((4, 8), (6, 8), (6, 5), lambda rng: {}),
    "broadcast_batch": ((2, 3, 4, 8), (1, 3, 6, 8), (1, 3, 6, 5), lambda rng: {}),
    "causal": ((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4), lambda rng: {"is_causal": True}),
    "causal_rectangular": ((1, 3, 8), (1, 5, 8), (1, 5, 8), lambda rng: {"is_causal": True}),
    "bool_mask": (
        (2, 3, 4, 8),
        (2, 3, 6, 8),
        (2, 3, 6, 5),
        lambda rng: {"attn_mask": rng.random((4, 6)) > 0.3},
    ),
    "float_mask": (
        (2, 3, 4, 8),
        (2, 3, 6, 8),
        (2, 3, 6, 5),
        lambda rng: {"attn_mask": rng.standard_normal((3, 1, 6))},
    ),
    "scale_and_gqa": (
        (2, 4, 3, 8),
        (2, 2, 6, 8),
        (2, 2, 6, 8),
        lambda rng: {"scale": 0.3, "enable_gqa": True},
    ),
}


def _arguments(case, rng, device):
    qs, ks, vs, extra = CASES[case]
    q, k, v = (rng.standard_normal(s) for s in (qs, ks, vs))
    kwargs = extra(rng)
    return (q, k, v), kwargs


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_values_and_gradients(case, device, rng):
    torch = pytest.importorskip("torch")
    (q, k, v), kwargs = _arguments(case, rng, device)
    mask = kwargs.pop("attn_mask", None)
    float_mask = mask is not None and mask.dtype != bool
    ours = [t(a, device, True) for a in (q, k, v)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    om = None if mask is None else t(mask, device, float_mask)
    tm = None if mask is None else torch.tensor(mask, requires_grad=float_mask)
    out = F.scaled_dot_product_attention(*ours, attn_mask=om, **kwargs)
    ref = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=tm, **kwargs)
    numpy.testing.assert_allclose(host(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(tuple(ref.shape))
    out.backward(t(g, device))
    ref.backward(torch.tensor(g))
    pairs = list(zip(ours, theirs)) + ([(om, tm)] if float_mask else [])
    for a, b in pairs:
        numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradcheck(case, device, rng):
    (q, k, v), kwargs = _arguments(case, rng, device)
    mask = kwargs.pop("attn_mask", None)
    inputs = [t(a, device, True) for a in (q, k, v)]
    if mask is not None and mask.dtype != bool:
        inputs.append(t(mask, device, True))  # the additive mask gets a gradient too

        def fn(q, k, v, m):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kwargs)
    else:
        m = None if mask is None else t(mask, device)

        def fn(q, k, v):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kwargs)

    assert gradcheck(fn, inputs)


def test_gradcheck_with_dropout_replays_the_mask(device, rng):
    """The same generator state gives the same dropout mask, so finite differences see a fixed
    function of q, k and v."""
    q, k, v = (t(rng.standard_normal((2, 4, 3)), device, True) for _ in range(3))

    def fn(q, k, v):
        gradflow.manual_seed(7)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)

    assert gradcheck(fn, [q, k, v])


def test_dropout_zeroes_weights_and_keeps_the_expectation(device):
    gradflow.manual_seed(0)
    q = k = t(numpy.zeros((1, 64, 4)), device)  # uniform weights 1/64 on every key
    v = t(numpy.ones((1, 64, 1)), device)
    out = host(F.scaled_dot_product_attention(q, k, v, dropout_p=0.5))
    assert out.min() >= 0 and out.std() > 0  # the rows differ: weights were dropped
    assert abs(out.mean() - 1.0) < 0.1  # dropped weights rescaled by 1 / (1 - p)
    dropped_all = host(F.scaled_dot_product_attention(q, k, v, dropout_p=1.0))
    assert (dropped_all == 0).all()


def test_fully_masked_rows_give_zero_output_and_gradient(device, rng):
    q, k, v = (t(rng.standard_normal((3, 4)), device, True) for _ in range(3))
    keep = numpy.ones((3, 3), bool)
    keep[1] = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=t(keep, device))
    assert numpy.isfinite(host(out)).all() and (host(out)[1] == 0).all()
    out.sum().backward()
    assert (host(q.grad)[1] == 0).all() and numpy.isfinite(host(k.grad)).all()
    additive = numpy.zeros((3, 3))
    additive[2] = -numpy.inf
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=t(additive, device))
    assert (host(out)[2] == 0).all() and numpy.isfinite(host(out)).all()


def test_float32_stays_float32_and_keeps_no_score_matrix(device, rng):
    q, k, v = (t(rng.standard_normal((2, 5, 4)).astype(numpy.float32), device, True)
               for _ in range(3))  # fmt: skip
    out = F.scaled_dot_product_attention(q, k, v)
    assert out.dtype == gradflow.float32 and out.shape == (2, 5, 4)
    saved = [a for a in out.grad_fn.saved_arrays if a is not None]
    if device == "cpu":  # the NumPy route keeps one value per query row, no (L, S) matrix
        assert not any(a.shape[-2:] == (5, 5) for a in saved)
        assert any(a.shape == (2, 5, 1) for a in saved)
    for x in (q, k, v):  # the inputs are kept by reference, never copied
        assert any(a is x.array for a in saved)


@pytest.mark.parametrize(
    "mask_shape, dtype",
    [(None, None), ((4, 6), bool), ((2, 1, 1, 6), bool), ((3, 4, 6), bool), ((3, 1, 6), float),
     ((1, 1, 4, 6), float), ("causal", None)],
)  # fmt: skip
def test_cpu_blocks_of_heads_agree_with_the_whole_matrix(monkeypatch, rng, mask_shape, dtype):
    """The NumPy route in blocks against the route that keeps P: one head per block, two
    heads, all of a sample's heads, all heads of the batch (head scores: 4*6*8 = 192 bytes)."""
    from gradflow.ops import attention

    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5)))
    kwargs = {}
    if mask_shape == "causal":
        kwargs["is_causal"] = True
    elif mask_shape is not None:
        m = rng.random(mask_shape) > 0.3 if dtype is bool else rng.standard_normal(mask_shape)
        kwargs["attn_mask"] = gradflow.tensor(m)
    g = rng.standard_normal((2, 3, 4, 5))
    results = []
    configs = [(1, True), (400, True), (600, True), (attention.BLOCK_BYTES, True),
               (attention.BLOCK_BYTES, False)]  # fmt: skip
    for block_bytes, chunked in configs:
        monkeypatch.setattr(attention, "BLOCK_BYTES", block_bytes)
        monkeypatch.setattr(
            attention.ScaledDotProductAttention, "_chunks_apply", lambda *a, c=chunked: c
        )
        xs = [gradflow.tensor(a, requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*xs, **kwargs)
        assert out.grad_fn._chunked is chunked
        out.backward(gradflow.tensor(g))
        results.append([out.detach().numpy()] + [x.grad.numpy() for x in xs])
    for blocked in results[:-1]:
        for ours, whole in zip(blocked, results[-1]):
            numpy.testing.assert_allclose(ours, whole, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "block_bytes, blocks",
    [(1, 6), (400, 4), (600, 2), (1200, 1), (1 << 20, 1)],  # 192 bytes a head, (2, 3) heads
)
def test_cpu_blocks_cover_every_head_once(block_bytes, blocks, monkeypatch):
    from gradflow.ops import attention

    monkeypatch.setattr(attention, "BLOCK_BYTES", block_bytes)
    q, k = numpy.zeros((2, 3, 4, 8)), numpy.zeros((2, 3, 6, 8))
    index = attention.ScaledDotProductAttention._blocks(None, q, k)
    assert len(index) == blocks
    seen = numpy.zeros((2, 3), int)
    for i in index:
        seen[i] += 1
    assert (seen == 1).all()


def test_errors_say_what_was_wrong(device):
    x = t(numpy.zeros((2, 3, 4)), device)
    with pytest.raises(RuntimeError, match="should not be set when is_causal=True"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=t(numpy.ones((3, 3), bool), device),
                                       is_causal=True)  # fmt: skip
    with pytest.raises(TypeError, match="same dtype"):
        F.scaled_dot_product_attention(x, x.float(), x)
    with pytest.raises(RuntimeError, match="attn_mask dtype to be bool or float"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=t(numpy.ones((3, 3), int), device))
    with pytest.raises(ValueError, match="does not broadcast"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=t(numpy.ones((2, 2), bool), device))
    with pytest.raises(ValueError, match="differ in E"):
        F.scaled_dot_product_attention(x, t(numpy.zeros((2, 3, 5)), device), x)
    with pytest.raises(ValueError, match="differ in S"):
        F.scaled_dot_product_attention(x, x, t(numpy.zeros((2, 4, 4)), device))
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(x, x, x, dropout_p=1.5)
    with pytest.raises(ValueError, match="multiple of the key's"):
        y = t(numpy.zeros((1, 3, 2, 4)), device)
        F.scaled_dot_product_attention(y, t(numpy.zeros((1, 2, 2, 4)), device), y,
                                       enable_gqa=True)  # fmt: skip
    with pytest.raises(TypeError, match="argument 'query' must be a Tensor"):
        F.scaled_dot_product_attention(numpy.zeros((2, 3)), x, x)
