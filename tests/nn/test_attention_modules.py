"""nn.MultiheadAttention: PyTorch's parameters, initialization, repr and state-dict keys; values
and gradients (inputs, float masks, every parameter) equal to torch's in float64 across layouts,
masks, kdim/vdim, add_bias_kv, add_zero_attn and both attention paths; dropout; errors."""

import math
import warnings

import numpy as np
import pytest
from layer_parity import as_numpy, load_into_torch

import gradflow as gf
from gradflow import nn

L, S, N, E, H = 4, 5, 2, 8, 2

# ---- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, names",
    [
        ({}, ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]),
        ({"bias": False}, ["in_proj_weight", "out_proj.weight"]),
        (
            {"kdim": 6, "vdim": 3, "add_bias_kv": True},
            [
                "q_proj_weight",
                "k_proj_weight",
                "v_proj_weight",
                "in_proj_bias",
                "bias_k",
                "bias_v",
                "out_proj.weight",
                "out_proj.bias",
            ],
        ),
    ],
    ids=["default", "no_bias", "kdim_vdim_bias_kv"],
)
def test_parameters_state_dict_and_repr_follow_torch(kwargs, names):
    ours = nn.MultiheadAttention(E, H, **kwargs)
    assert [n for n, _ in ours.named_parameters()] == names
    assert ours._qkv_same_embed_dim is ("kdim" not in kwargs)
    assert ours.head_dim == E // H and ours.kdim == kwargs.get("kdim", E)
    if "kdim" in kwargs:
        assert ours.in_proj_weight is None
        assert ours.k_proj_weight.shape == (E, 6) and ours.v_proj_weight.shape == (E, 3)
        assert ours.bias_k.shape == (1, 1, E)
    else:
        assert ours.in_proj_weight.shape == (3 * E, E) and ours.q_proj_weight is None
        assert ours.bias_k is None and ours.bias_v is None
    assert isinstance(ours.out_proj, nn.Linear)
    torch = pytest.importorskip("torch")
    theirs = torch.nn.MultiheadAttention(E, H, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_initialization_follows_torch():
    mha = nn.MultiheadAttention(16, 4, add_bias_kv=True)
    bound = math.sqrt(6.0 / (16 + 48))  # xavier_uniform_ over the packed (3E, E) weight
    w = as_numpy(mha.in_proj_weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert not as_numpy(mha.in_proj_bias).any() and not as_numpy(mha.out_proj.bias).any()
    assert np.abs(as_numpy(mha.out_proj.weight)).max() <= 1 / math.sqrt(16)
    assert as_numpy(mha.bias_k).std() > 0  # xavier_normal_
    separate = nn.MultiheadAttention(16, 4, kdim=4)
    assert np.abs(as_numpy(separate.k_proj_weight)).max() <= math.sqrt(6.0 / 20)
    assert nn.MultiheadAttention(8, 2, dtype=gf.float64).in_proj_weight.dtype == gf.float64


def test_modules_path_and_functional_names():
    from gradflow.nn.modules.activation import MultiheadAttention

    assert MultiheadAttention is nn.MultiheadAttention
    assert isinstance(nn.MultiheadAttention(4, 2), nn.modules.activation.MultiheadAttention)


# ---- parity with torch -----------------------------------------------------------------------

# name -> (constructor kwargs, call): kind "self" (query is key is value, L == S), "kv" (key is
# value), "separate" (three tensors); masks: attn "bool"/"float"/"bool3d"/"float3d"/"causal",
# kpm "bool"/"float"; other keys go to forward as they are.
CASES = {
    "self_attention": ({}, {"kind": "self"}),
    "batch_first": ({"batch_first": True}, {"kind": "self"}),
    "unbatched": ({}, {"kind": "self", "batched": False}),
    "unbatched_batch_first": ({"batch_first": True}, {"kind": "kv", "batched": False}),
    "cross_attention": ({}, {"kind": "kv"}),
    "separate_inputs": ({"batch_first": True}, {"kind": "separate"}),
    "kdim_vdim": ({"kdim": 6, "vdim": 3}, {"kind": "separate", "attn": "bool", "kpm": "bool"}),
    "kdim_vdim_batch_first": ({"kdim": 6, "vdim": 3, "batch_first": True}, {"kind": "separate"}),
    "no_bias": ({"bias": False}, {"kind": "kv", "attn": "float"}),
    "add_bias_kv": ({"add_bias_kv": True}, {"kind": "kv", "kpm": "bool", "attn": "bool"}),
    "add_zero_attn": ({"add_zero_attn": True}, {"kind": "kv", "kpm": "float", "attn": "float"}),
    "bias_kv_zero_attn_unbatched": (
        {"add_bias_kv": True, "add_zero_attn": True, "batch_first": True},
        {"kind": "self", "batched": False, "kpm": "bool", "attn": "float3d"},
    ),
    "bool_attn_mask": ({}, {"kind": "kv", "attn": "bool"}),
    "float_attn_mask": ({"batch_first": True}, {"kind": "kv", "attn": "float"}),
    "attn_mask_3d": ({"batch_first": True}, {"kind": "kv", "attn": "bool3d"}),
    "float_attn_mask_3d": ({}, {"kind": "separate", "attn": "float3d"}),
    "unbatched_mask_3d": ({}, {"kind": "self", "batched": False, "attn": "float3d"}),
    "key_padding_bool": ({}, {"kind": "kv", "kpm": "bool"}),
    "key_padding_float": ({"batch_first": True}, {"kind": "kv", "kpm": "float"}),
    "bool_masks_both": ({}, {"kind": "self", "attn": "bool", "kpm": "bool"}),
    "mixed_mask_types": ({}, {"kind": "kv", "attn": "float", "kpm": "bool"}),
    "causal_hint": ({}, {"kind": "self", "attn": "causal", "is_causal": True}),
    "causal_hint_bool_batch_first": (
        {"batch_first": True},
        {"kind": "self", "attn": "causal_bool", "is_causal": True},
    ),
    "causal_hint_with_padding": (
        {},
        {"kind": "self", "attn": "causal", "is_causal": True, "kpm": "bool"},
    ),
    "per_head_weights": ({}, {"kind": "kv", "attn": "bool", "average_attn_weights": False}),
    "per_head_weights_unbatched": (
        {},
        {"kind": "kv", "batched": False, "average_attn_weights": False},
    ),
}


def _arrays(call, rng):
    """The inputs and masks of one call as NumPy arrays (float64; masks bool or float)."""
    batched = call.get("batched", True)
    kind = call["kind"]
    src = L if kind == "self" else S
    first = call.get("batch_first", False)
    lead_q = ((N, L) if first else (L, N)) if batched else (L,)
    lead_k = ((N, src) if first else (src, N)) if batched else (src,)
    arrays = {"query": rng.standard_normal((*lead_q, E))}
    if kind != "self":
        arrays["key"] = rng.standard_normal((*lead_k, call.get("kdim", E)))
    if kind == "separate":
        arrays["value"] = rng.standard_normal((*lead_k, call.get("vdim", E)))
    attn = call.get("attn")
    heads = N * H if batched else H
    if attn in ("bool", "bool3d"):
        shape = (L, src) if attn == "bool" else (heads, L, src)
        mask = rng.random(shape) < 0.4
        mask[..., 0] = False  # every query keeps a key (no all-masked rows: NaN in torch)
        arrays["attn_mask"] = mask
    elif attn in ("float", "float3d"):
        arrays["attn_mask"] = rng.standard_normal((L, src) if attn == "float" else (heads, L, src))
    elif attn == "causal":
        arrays["attn_mask"] = np.triu(np.full((L, L), -np.inf), 1)
    elif attn == "causal_bool":
        arrays["attn_mask"] = np.triu(np.ones((L, L), dtype=bool), 1)
    kpm = call.get("kpm")
    shape = (N, src) if batched else (src,)
    if kpm == "bool":
        mask = rng.random(shape) < 0.4
        mask[..., 0] = False
        arrays["key_padding_mask"] = mask
    elif kpm == "float":
        arrays["key_padding_mask"] = rng.standard_normal(shape)
    return arrays


def _run(fw, module, arrays, call, need_weights, grads):
    """One forward and backward under framework `fw` (torch or gradflow); returns the outputs
    and the gradients of the inputs and float masks (by name) and the parameters."""
    leaves = {n: fw.tensor(a, requires_grad=a.dtype.kind == "f") for n, a in arrays.items()}
    query = leaves["query"]
    key = leaves.get("key", query)
    value = leaves.get("value", key)
    kwargs = {n: leaves[n] for n in ("attn_mask", "key_padding_mask") if n in leaves}
    for name in ("is_causal", "average_attn_weights"):
        if name in call:
            kwargs[name] = call[name]
    out, weights = module(query, key, value, need_weights=need_weights, **kwargs)
    if grads is None:  # the first run draws the output gradients
        rng = np.random.default_rng(1)
        grads = [rng.standard_normal(tuple(out.shape))]
        if weights is not None:
            grads.append(rng.standard_normal(tuple(weights.shape)))
    loss = (out * fw.tensor(grads[0])).sum()
    if weights is not None:
        loss = loss + (weights * fw.tensor(grads[1])).sum()
    loss.backward()
    found = {n: t.grad for n, t in leaves.items()}
    found.update({n: p.grad for n, p in module.named_parameters()})
    return out, weights, found, grads


def _assert_same(ours, theirs, label):
    if theirs is None:
        assert ours is None, label
        return
    assert ours is not None, label
    assert tuple(ours.shape) == tuple(theirs.shape), label
    np.testing.assert_allclose(as_numpy(ours), as_numpy(theirs), rtol=1e-9, atol=1e-11,
                               err_msg=label)  # fmt: skip


def _parity(ours, theirs, call, rng, need_weights, device="cpu"):
    import torch

    arrays = _arrays(call, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the mixed-mask deprecation warning: its own test
        out_t, w_t, grads_t, g = _run(torch, theirs, arrays, call, need_weights, None)

        class OnDevice:  # gradflow with tensors made on `device`
            @staticmethod
            def tensor(a, requires_grad=False):
                return gf.tensor(a, device=device, requires_grad=requires_grad)

        out_o, w_o, grads_o, _ = _run(OnDevice, ours, arrays, call, need_weights, g)
    _assert_same(out_o, out_t, "attn_output")
    if need_weights:
        _assert_same(w_o, w_t, "attn_output_weights")
    else:
        assert w_o is None and w_t is None
    assert set(grads_o) == set(grads_t)
    for name, grad in grads_t.items():
        _assert_same(grads_o[name], grad, f"grad of {name}")


def _twins(kwargs):
    """A torch MultiheadAttention and ours with the same float64 weights (torch's loaded)."""
    torch = pytest.importorskip("torch")
    theirs = torch.nn.MultiheadAttention(E, H, **kwargs).double()
    ours = nn.MultiheadAttention(E, H, **kwargs).double()
    ours.load_state_dict({k: gf.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "sdpa"])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, need_weights, rng):
    kwargs, call = CASES[case]
    call = {**call, **{k: v for k, v in kwargs.items() if k in ("kdim", "vdim", "batch_first")}}
    ours, theirs = _twins(kwargs)
    _parity(ours, theirs, call, rng, need_weights)


def test_our_state_dict_loads_into_torch(rng):
    torch = pytest.importorskip("torch")
    ours = nn.MultiheadAttention(E, H, kdim=6, vdim=3, add_bias_kv=True).double()
    theirs = torch.nn.MultiheadAttention(E, H, kdim=6, vdim=3, add_bias_kv=True).double()
    load_into_torch(ours, theirs)
    call = {"kind": "separate", "kdim": 6, "vdim": 3, "attn": "bool", "kpm": "bool"}
    _parity(ours, theirs, call, rng, need_weights=True)


def test_eval_mode_matches_torch_fast_path(rng):
    """torch's eval-mode self-attention under no_grad takes its fused kernel; same values."""
    torch = pytest.importorskip("torch")
    ours, theirs = _twins({"batch_first": True, "dropout": 0.3})
    ours.eval(), theirs.eval()
    x = rng.standard_normal((N, L, E))
    kpm = np.array([[False, False, True, True], [False, False, False, True]])
    with torch.no_grad():
        xt = torch.tensor(x)
        out_t, w_t = theirs(xt, xt, xt, key_padding_mask=torch.tensor(kpm))
    with gf.no_grad():
        xo = gf.tensor(x)
        out_o, w_o = ours(xo, xo, xo, key_padding_mask=gf.tensor(kpm))
    _assert_same(out_o, out_t, "attn_output")
    _assert_same(w_o, w_t, "attn_output_weights")


@pytest.mark.parametrize("case", ["batch_first", "add_zero_attn", "causal_hint_with_padding"])
def test_on_device_matches_torch(device, case, rng):
    kwargs, call = CASES[case]
    call = {**call, "batch_first": kwargs.get("batch_first", False)}
    ours, theirs = _twins(kwargs)
    ours.to(device)
    for need_weights in (True, False):
        ours.zero_grad(), theirs.zero_grad()
        _parity(ours, theirs, call, rng, need_weights, device=device)


def test_fully_masked_query_matches_torch():
    """A query with every key masked: NaN weights (softmax of -inf) with need_weights, a zero
    attention output with SDPA, as torch."""
    torch = pytest.importorskip("torch")
    ours, theirs = _twins({})
    x = np.random.default_rng(2).standard_normal((3, N, E))
    kpm = np.array([[True, True, True], [False, True, False]])
    xt, xo = torch.tensor(x), gf.tensor(x)
    for need_weights in (True, False):
        out_t, w_t = theirs(xt, xt, xt, torch.tensor(kpm), need_weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's 0/0
            out_o, w_o = ours(xo, xo, xo, gf.tensor(kpm), need_weights)
        np.testing.assert_allclose(as_numpy(out_o), as_numpy(out_t.detach()), atol=1e-12)
        if need_weights:
            np.testing.assert_allclose(as_numpy(w_o), as_numpy(w_t.detach()), atol=1e-12)


def test_merge_masks_matches_torch(rng):
    torch = pytest.importorskip("torch")
    ours, theirs = _twins({"batch_first": True})
    attn = rng.standard_normal((L, L))
    kpm = rng.standard_normal((N, L))
    query = rng.standard_normal((N, L, E))

    def wrap(fw, arr):
        return None if arr is None else fw.tensor(arr)

    for a, k in ((attn, None), (None, kpm), (attn, kpm)):
        m_o, t_o = ours.merge_masks(wrap(gf, a), wrap(gf, k), wrap(gf, query))
        m_t, t_t = theirs.merge_masks(wrap(torch, a), wrap(torch, k), wrap(torch, query))
        assert t_o == t_t
        _assert_same(m_o, m_t, "merged mask")


# ---- dropout ---------------------------------------------------------------------------------


def test_dropout_on_the_weights_in_training_only():
    gf.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True).double()
    x = gf.randn(4, 16, 8, dtype=gf.float64)
    _, weights = mha(x, x, x, average_attn_weights=False)
    zero = float((as_numpy(weights) == 0).mean())
    assert 0.4 < zero < 0.6  # half the weights dropped...
    kept = as_numpy(weights)[as_numpy(weights) != 0]
    assert kept.max() > 1 / 16  # ...and the rest scaled by 1 / (1 - p)
    a, _ = mha(x, x, x, need_weights=False)
    b, _ = mha(x, x, x, need_weights=False)
    assert np.abs(as_numpy(a) - as_numpy(b)).max() > 1e-3  # SDPA's dropout too
    mha.eval()
    reference = nn.MultiheadAttention(8, 2, batch_first=True).double()
    reference.load_state_dict(mha.state_dict())
    for need_weights in (True, False):
        out, w = mha(x, x, x, need_weights=need_weights)
        ref, ref_w = reference(x, x, x, need_weights=need_weights)
        np.testing.assert_array_equal(as_numpy(out), as_numpy(ref))
    np.testing.assert_allclose(as_numpy(mha(x, x, x)[1]).sum(-1), 1.0, rtol=1e-12)


# ---- errors ----------------------------------------------------------------------------------


def _t(*shape, dtype="float32"):
    return np.zeros(shape, dtype=dtype)


ERRORS = {
    "query_4d": ({}, _t(1, L, N, E), _t(S, N, E), {}, AssertionError, "query should be"),
    "key_2d_for_batched": ({}, _t(L, N, E), _t(S, E), {}, AssertionError, "to be 3-D"),
    "key_3d_for_unbatched": ({}, _t(L, E), _t(S, N, E), {}, AssertionError, "to be 2-D"),
    "key_padding_3d": ({}, _t(L, N, E), _t(S, N, E),
                       {"key_padding_mask": _t(N, S, 1, dtype=bool)}, AssertionError,
                       "`key_padding_mask` to be `None` or 2-D"),
    "key_padding_2d_unbatched": ({}, _t(L, E), _t(S, E),
                                 {"key_padding_mask": _t(N, S, dtype=bool)}, AssertionError,
                                 "or 1-D"),
    "attn_mask_4d": ({}, _t(L, N, E), _t(S, N, E), {"attn_mask": _t(1, 1, L, S, dtype=bool)},
                     AssertionError, "2-D or 3-D"),
    "attn_mask_2d_shape": ({}, _t(L, N, E), _t(S, N, E), {"attn_mask": _t(L, L, dtype=bool)},
                           RuntimeError, "The shape of the 2D attn_mask is"),
    "attn_mask_3d_shape": ({}, _t(L, N, E), _t(S, N, E), {"attn_mask": _t(H, L, S)},
                           RuntimeError, "The shape of the 3D attn_mask is"),
    "unbatched_attn_mask_3d_shape": ({}, _t(L, E), _t(S, E), {"attn_mask": _t(3, L, S)},
                                     AssertionError, "Expected `attn_mask` shape to be (2, 4, 5)"),
    "int_attn_mask": ({}, _t(L, N, E), _t(S, N, E), {"attn_mask": _t(L, S, dtype="int64")},
                      AssertionError, "only bool and floating types of attn_mask"),
    "int_key_padding_mask": ({}, _t(L, N, E), _t(S, N, E),
                             {"key_padding_mask": _t(N, S, dtype="int64")}, AssertionError,
                             "only bool and floating types of key_padding_mask"),
    "key_padding_length": ({}, _t(L, N, E), _t(S, N, E),
                           {"key_padding_mask": _t(N, L, dtype=bool)}, AssertionError,
                           "Expected key_padded_mask.shape[1] to be 5, but got 4"),
    "key_padding_batch": ({}, _t(L, N, E), _t(S, N, E),
                          {"key_padding_mask": _t(3, S, dtype=bool)}, AssertionError,
                          "Expected key_padded_mask.shape[0] to be 2, but got 3"),
    "embed_dim": ({}, _t(L, N, 6), _t(S, N, 6), {}, AssertionError,
                  "was expecting embedding dimension of 8, but got 6"),
    "key_features": ({}, _t(L, N, E), _t(S, N, 6), {}, RuntimeError, "expected key of 8"),
    "separate_key_features": ({"kdim": 6}, _t(L, N, E), _t(S, N, E), {}, AssertionError,
                              "expecting key weights shape of (8, 8)"),
    "batch_size": ({}, _t(L, N, E), _t(S, 3, E), {}, RuntimeError, "batch size"),
    "causal_without_mask": ({}, _t(L, N, E), _t(S, N, E), {"is_causal": True}, RuntimeError,
                            "Need attn_mask if specifying the is_causal hint"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_as_torch(case):
    kwargs, query, key, call, error, message = ERRORS[case]
    ours = nn.MultiheadAttention(E, H, **kwargs)

    def run(fw, module):
        args = {n: fw.tensor(a) if isinstance(a, np.ndarray) else a for n, a in call.items()}
        return module(fw.tensor(query), fw.tensor(key), fw.tensor(key), **args)

    with pytest.raises(error) as info:
        run(gf, ours)
    assert message in str(info.value)
    torch = pytest.importorskip("torch")
    with pytest.raises(error):
        run(torch, torch.nn.MultiheadAttention(E, H, **kwargs))


def test_key_value_shape_errors_as_torch():
    mha = nn.MultiheadAttention(E, H)
    with pytest.raises(AssertionError, match=r"key shape .* does not match value shape"):
        mha(gf.zeros(L, N, E), gf.zeros(S, N, E), gf.zeros(L, N, E))
    separate = nn.MultiheadAttention(E, H, vdim=3)
    with pytest.raises(AssertionError, match=r"key's sequence and batch dims .*\[5, 2\]"):
        separate(gf.zeros(L, N, E), gf.zeros(S, N, E), gf.zeros(L, N, 3))


def test_constructor_errors_as_torch():
    with pytest.raises(ValueError, match="embed_dim and num_heads must be greater than 0"):
        nn.MultiheadAttention(0, 2)
    with pytest.raises(ValueError, match="num_heads=0"):
        nn.MultiheadAttention(8, 0)
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(8, 3)


def test_mixed_mask_types_warn_as_torch():
    mha = nn.MultiheadAttention(E, H)
    x = gf.zeros(L, N, E)
    with pytest.warns(UserWarning, match="Support for mismatched key_padding_mask and attn_mask"):
        mha(x, x, x, key_padding_mask=gf.zeros(N, L, dtype=gf.bool), attn_mask=gf.zeros(L, L))
