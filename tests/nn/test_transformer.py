"""nn.TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder, TransformerDecoder
and Transformer: torch's attribute names and state-dict keys, values and gradients (inputs and
every parameter) equal to torch's in float64 across layouts, masks, norm_first and activations,
causal-mask detection, dropout, errors, and the subclass pattern of pytorch/examples'
word_language_model."""

import math
import warnings

import numpy as np
import pytest
from layer_parity import as_numpy, load_into_torch

import gradflow as gf
from gradflow import nn

D, NHEAD, FF, N, S, T = 8, 2, 16, 2, 5, 4


def _load_torch_state(ours, theirs):
    ours.load_state_dict({k: gf.tensor(v.numpy()) for k, v in theirs.state_dict().items()})


def _activation(name, fw):
    """The activation argument `name` in framework `fw` (torch or gradflow)."""
    if name in ("relu", "gelu"):
        return name
    if name == "gelu_module":
        return fw.nn.GELU(approximate="tanh")
    return fw.nn.functional.silu  # a callable torch has no fast path for


def _build(fw, cls, kwargs):
    kwargs = dict(kwargs)
    if "activation" in kwargs:
        kwargs["activation"] = _activation(kwargs["activation"], fw)
    if cls in ("TransformerEncoder", "TransformerDecoder"):
        layer_cls = cls + "Layer"
        layer_kwargs = {k: v for k, v in kwargs.items() if k != "final_norm"}
        layer = getattr(fw.nn, layer_cls)(D, NHEAD, FF, dropout=0.0, **layer_kwargs)
        norm = fw.nn.LayerNorm(D) if kwargs.get("final_norm") else None
        return getattr(fw.nn, cls)(layer, 2, norm=norm)
    if cls == "Transformer":
        return fw.nn.Transformer(D, NHEAD, 1, 2, FF, dropout=0.0, **kwargs)
    return getattr(fw.nn, cls)(D, NHEAD, FF, dropout=0.0, **kwargs)


def _twins(cls, kwargs):
    torch = pytest.importorskip("torch")
    theirs = _build(torch, cls, kwargs).double()
    ours = _build(gf, cls, kwargs).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _load_torch_state(ours, theirs)
    return ours, theirs


def _seq(rng, length, batched, batch_first):
    if not batched:
        return rng.standard_normal((length, D))
    return rng.standard_normal((N, length, D) if batch_first else (length, N, D))


def _masks(rng, spec, batched):
    """Masks as NumPy arrays by name: "causal" (float), "causal_bool", "bool", "float" for the
    attention masks; key padding masks "kpm_bool" / "kpm_float"."""
    out = {}
    for name, kind in spec.items():
        length = T if name.startswith("tgt") else S
        rows = T if name in ("tgt_mask", "memory_mask") else S
        if not isinstance(kind, str):
            out[name] = kind  # a flag such as is_causal
        elif kind == "causal":
            out[name] = np.triu(np.full((length, length), -np.inf), 1)
        elif kind == "causal_bool":
            out[name] = np.triu(np.ones((length, length), dtype=bool), 1)
        elif kind == "bool":
            mask = rng.random((rows, S if name == "memory_mask" else length)) < 0.3
            mask[:, 0] = False
            out[name] = mask
        elif kind == "float":
            out[name] = rng.standard_normal((rows, S if name == "memory_mask" else length))
        elif kind.startswith("kpm"):
            shape = (N, length) if batched else (length,)
            if kind == "kpm_bool":
                mask = rng.random(shape) < 0.3
                mask[..., 0] = False
            else:
                mask = rng.standard_normal(shape)
            out[name] = mask
    return out


def _compare(ours, theirs, inputs, kwargs, rtol=1e-9, atol=1e-10):
    """Forward and backward of both with the same NumPy inputs and keyword arrays; equal
    outputs, input gradients and parameter gradients (by name)."""
    torch = pytest.importorskip("torch")

    def run(fw, module, grad=None):
        xs = [fw.tensor(x, requires_grad=True) for x in inputs]
        kw = {k: fw.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's nested-tensor and mixed-mask warnings
            out = module(*xs, **kw)
        if grad is None:
            grad = np.random.default_rng(3).standard_normal(tuple(out.shape))
        (out * fw.tensor(grad)).sum().backward()
        return out, xs, grad

    out_t, xs_t, g = run(torch, theirs)
    out_o, xs_o, _ = run(gf, ours, g)
    assert tuple(out_o.shape) == tuple(out_t.shape)
    np.testing.assert_allclose(as_numpy(out_o), as_numpy(out_t), rtol=rtol, atol=atol)
    for i, (a, b) in enumerate(zip(xs_o, xs_t)):
        np.testing.assert_allclose(as_numpy(a.grad), as_numpy(b.grad), rtol=rtol, atol=atol,
                                   err_msg=f"input {i}")  # fmt: skip
    theirs_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(theirs_params)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(as_numpy(p.grad), as_numpy(theirs_params[name].grad),
                                   rtol=rtol, atol=atol, err_msg=name)  # fmt: skip


# ---- construction ----------------------------------------------------------------------------


def test_encoder_layer_attributes_state_dict_and_repr_follow_torch():
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF)
    assert [n for n, _ in layer.named_children()] == [
        "self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2"
    ]  # fmt: skip
    assert layer.self_attn.batch_first is False and layer.norm_first is False
    assert layer.dropout.p == 0.1 and layer.norm1.eps == 1e-5 and layer.linear1.out_features == FF
    assert layer.activation is nn.functional.relu and layer.activation_relu_or_gelu == 1
    assert nn.TransformerEncoderLayer(D, NHEAD, activation="gelu").activation_relu_or_gelu == 2
    assert nn.TransformerEncoderLayer(D, NHEAD, activation=gf.tanh).activation_relu_or_gelu == 0
    no_bias = nn.TransformerEncoderLayer(D, NHEAD, FF, bias=False)
    assert all("bias" not in n for n, _ in no_bias.named_parameters())
    torch = pytest.importorskip("torch")
    theirs = torch.nn.TransformerEncoderLayer(D, NHEAD, FF)
    assert list(layer.state_dict()) == list(theirs.state_dict())
    assert repr(layer) == repr(theirs)
    assert list(no_bias.state_dict()) == list(
        torch.nn.TransformerEncoderLayer(D, NHEAD, FF, bias=False).state_dict()
    )


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        ("TransformerDecoderLayer", {}),
        ("TransformerDecoderLayer", {"bias": False, "activation": "gelu_module"}),
        ("TransformerEncoder", {"final_norm": True}),
        ("TransformerDecoder", {"final_norm": True}),
        ("Transformer", {}),
        ("Transformer", {"bias": False}),
    ],
)
def test_state_dict_keys_and_repr_equal_torch(cls, kwargs):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's nested-tensor warning
        theirs = _build(torch, cls, kwargs)
    ours = _build(gf, cls, kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if cls.endswith("Layer"):  # torch's ModuleList repr folds equal layers: "(0-1): 2 x ..."
        assert repr(ours) == repr(theirs)


def test_stacks_are_deep_copies():
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF)
    encoder = nn.TransformerEncoder(layer, 3)
    first, second = encoder.layers[0], encoder.layers[1]
    assert first is not layer and first is not second and encoder.num_layers == 3
    np.testing.assert_array_equal(as_numpy(first.linear1.weight), as_numpy(second.linear1.weight))
    first.linear1.weight.data.fill_(0.5)
    assert not np.allclose(as_numpy(second.linear1.weight), 0.5)
    assert not np.allclose(as_numpy(layer.linear1.weight), 0.5)
    assert encoder.norm is None and encoder.enable_nested_tensor and encoder.mask_check
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, NHEAD, FF), 2, nn.LayerNorm(D))
    assert isinstance(decoder.norm, nn.LayerNorm) and len(decoder.layers) == 2


def test_transformer_initialization_and_attributes():
    model = nn.Transformer(D, NHEAD, 1, 1, FF)
    assert (model.d_model, model.nhead, model.batch_first) == (D, NHEAD, False)
    assert isinstance(model.encoder.norm, nn.LayerNorm) and isinstance(
        model.decoder.norm, nn.LayerNorm
    )
    w = model.encoder.layers[0].linear1.weight  # xavier_uniform_, not Linear's default
    bound = math.sqrt(6.0 / (D + FF))
    assert np.abs(as_numpy(w)).max() <= bound and np.abs(as_numpy(w)).max() > 0.8 * bound
    custom = nn.Transformer(D, NHEAD, custom_encoder=nn.Identity(), custom_decoder=nn.Identity())
    assert isinstance(custom.encoder, nn.Identity) and isinstance(custom.decoder, nn.Identity)
    defaults = nn.TransformerEncoderLayer(512, 8)
    assert defaults.linear1.out_features == 2048 and defaults.dropout.p == 0.1


def test_generate_square_subsequent_mask_matches_torch():
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    assert mask.dtype == gf.float32 and tuple(mask.shape) == (4, 4)
    expected = np.triu(np.full((4, 4), -np.inf, dtype=np.float32), 1)
    np.testing.assert_array_equal(as_numpy(mask), expected)
    assert nn.Transformer.generate_square_subsequent_mask(3, dtype=gf.float64).dtype == gf.float64
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(
        as_numpy(mask), torch.nn.Transformer.generate_square_subsequent_mask(4).numpy()
    )


@pytest.mark.parametrize(
    "name",
    ["MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerDecoder",
     "TransformerEncoderLayer", "TransformerDecoderLayer"],
)  # fmt: skip
def test_signatures_equal_torch(name):
    """Constructor and forward: torch's argument names, order and (non-callable) defaults."""
    import inspect

    torch = pytest.importorskip("torch")
    for method in ("__init__", "forward"):
        theirs = inspect.signature(getattr(getattr(torch.nn, name), method)).parameters
        ours = inspect.signature(getattr(getattr(nn, name), method)).parameters
        assert list(ours) == list(theirs), method
        for arg, param in theirs.items():
            if not callable(param.default):
                assert ours[arg].default == param.default, (method, arg)


def test_modules_path():
    from gradflow.nn.modules import transformer

    assert transformer.Transformer is nn.Transformer
    assert transformer.TransformerEncoderLayer is nn.TransformerEncoderLayer
    assert "TransformerDecoder" in dir(transformer)


# ---- parity with torch -----------------------------------------------------------------------

ENCODER_LAYER = {
    "default": ({}, True, {}),
    "batch_first": ({"batch_first": True}, True, {}),
    "unbatched": ({}, False, {}),
    "norm_first_gelu": ({"norm_first": True, "activation": "gelu"}, True, {}),
    "gelu_module_batch_first": ({"activation": "gelu_module", "batch_first": True}, True, {}),
    "callable_activation": ({"activation": "silu"}, True, {"src_mask": "float"}),
    "bool_masks": ({}, True, {"src_mask": "bool", "src_key_padding_mask": "kpm_bool"}),
    "float_padding": ({"batch_first": True}, True, {"src_key_padding_mask": "kpm_float"}),
    "causal": ({"norm_first": True}, True, {"src_mask": "causal", "is_causal": True}),
    "causal_padding_unbatched": (
        {},
        False,
        {"src_mask": "causal", "is_causal": True, "src_key_padding_mask": "kpm_bool"},
    ),
    "no_bias": ({"bias": False, "layer_norm_eps": 1e-3}, True, {"src_mask": "causal_bool"}),
}


@pytest.mark.parametrize("case", list(ENCODER_LAYER))
def test_encoder_layer_matches_torch(case, rng):
    kwargs, batched, masks = ENCODER_LAYER[case]
    ours, theirs = _twins("TransformerEncoderLayer", kwargs)
    src = _seq(rng, S, batched, kwargs.get("batch_first", False))
    _compare(ours, theirs, [src], _masks(rng, masks, batched))


DECODER_LAYER = {
    "default": ({}, True, {}),
    "batch_first_norm_first": ({"batch_first": True, "norm_first": True}, True, {}),
    "unbatched_gelu": ({"activation": "gelu"}, False, {"tgt_mask": "causal"}),
    "causal_and_memory_masks": (
        {"activation": "silu"},
        True,
        {
            "tgt_mask": "causal",
            "tgt_is_causal": True,
            "memory_mask": "bool",
            "tgt_key_padding_mask": "kpm_bool",
            "memory_key_padding_mask": "kpm_bool",
        },
    ),
    "float_masks_batch_first": (
        {"batch_first": True},
        True,
        {"tgt_mask": "float", "memory_mask": "float", "memory_key_padding_mask": "kpm_float"},
    ),
}


@pytest.mark.parametrize("case", list(DECODER_LAYER))
def test_decoder_layer_matches_torch(case, rng):
    kwargs, batched, masks = DECODER_LAYER[case]
    ours, theirs = _twins("TransformerDecoderLayer", kwargs)
    first = kwargs.get("batch_first", False)
    tgt, memory = _seq(rng, T, batched, first), _seq(rng, S, batched, first)
    _compare(ours, theirs, [tgt, memory], _masks(rng, masks, batched))


STACKS = {
    "encoder_causal_detected": ("TransformerEncoder", {"final_norm": True}, {"mask": "causal"}),
    "encoder_bool_causal_detected": (
        "TransformerEncoder",
        {"batch_first": True},
        {"mask": "causal_bool", "src_key_padding_mask": "kpm_bool"},
    ),
    "encoder_not_causal": ("TransformerEncoder", {"norm_first": True}, {"mask": "float"}),
    "decoder": (
        "TransformerDecoder",
        {"final_norm": True, "batch_first": True},
        {"tgt_mask": "causal", "memory_key_padding_mask": "kpm_bool"},
    ),
    "decoder_bool_causal": ("TransformerDecoder", {}, {"tgt_mask": "causal_bool"}),
}


@pytest.mark.parametrize("case", list(STACKS))
def test_stacks_match_torch(case, rng):
    cls, kwargs, masks = STACKS[case]
    ours, theirs = _twins(cls, kwargs)
    first = kwargs.get("batch_first", False)
    inputs = [_seq(rng, S, True, first)]
    if cls == "TransformerDecoder":
        inputs = [_seq(rng, T, True, first), _seq(rng, S, True, first)]
    _compare(ours, theirs, inputs, _masks(rng, masks, True))


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_matches_torch(batch_first, rng):
    ours, theirs = _twins("Transformer", {"batch_first": batch_first})
    src, tgt = _seq(rng, S, True, batch_first), _seq(rng, T, True, batch_first)
    masks = _masks(
        rng,
        {"tgt_mask": "causal", "src_key_padding_mask": "kpm_bool",
         "memory_key_padding_mask": "kpm_bool", "tgt_key_padding_mask": "kpm_bool"},
        True,
    )  # fmt: skip
    masks["memory_key_padding_mask"] = masks["src_key_padding_mask"]
    _compare(ours, theirs, [src, tgt], masks)


def test_transformer_unbatched_and_our_state_into_torch(rng):
    torch = pytest.importorskip("torch")
    ours = _build(gf, "Transformer", {"norm_first": True, "activation": "gelu"}).double()
    theirs = _build(torch, "Transformer", {"norm_first": True, "activation": "gelu"}).double()
    load_into_torch(ours, theirs)
    src, tgt = _seq(rng, S, False, False), _seq(rng, T, False, False)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    _compare(ours, theirs, [src, tgt], {"tgt_mask": mask, "tgt_is_causal": True})


def test_encoder_detects_the_causal_mask_as_torch():
    """is_causal=None and a mask equal to the causal one: the layers get is_causal=True (both
    frameworks), so the attention runs as SDPA's causal path."""
    torch = pytest.importorskip("torch")
    seen = {}

    def spy(name):
        def hook(module, args, kwargs):
            seen.setdefault(name, []).append(kwargs.get("is_causal"))

        return hook

    ours, theirs = _twins("TransformerEncoder", {})
    for fw, model, name in ((gf, ours, "ours"), (torch, theirs, "theirs")):
        model.layers[0].register_forward_pre_hook(spy(name), with_kwargs=True)
        x = fw.tensor(np.zeros((S, N, D)))
        causal = fw.nn.Transformer.generate_square_subsequent_mask(S, dtype=fw.float64)
        model(x, mask=causal)
        model(x, mask=causal, is_causal=False)
        model(x, mask=fw.zeros(S, S, dtype=fw.float64))
    assert seen["ours"] == seen["theirs"] == [True, False, False]


def test_eval_under_no_grad_matches_torch_fast_path_where_not_padded(rng):
    """torch's eval-mode encoder with a key padding mask under no_grad runs on nested tensors
    and returns 0 at padded positions (before the final norm); gradflow has no such path and
    returns what the layers computed there. Unpadded positions agree."""
    torch = pytest.importorskip("torch")
    ours, theirs = _twins("TransformerEncoder", {"batch_first": True})
    ours.eval(), theirs.eval()
    src = rng.standard_normal((N, S, D))
    kpm = np.array([[False] * S, [False, False, False, True, True]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_t = theirs(torch.tensor(src), src_key_padding_mask=torch.tensor(kpm)).numpy()
    with gf.no_grad():
        out_o = as_numpy(ours(gf.tensor(src), src_key_padding_mask=gf.tensor(kpm)))
    keep = ~kpm
    np.testing.assert_allclose(out_o[keep], out_t[keep], rtol=1e-9, atol=1e-10)


def test_on_device(device, rng):
    """A Transformer on `device` gives the values and gradients it gives on the cpu."""
    model = nn.Transformer(D, NHEAD, 1, 1, FF, dropout=0.0, batch_first=True).double()
    on_device = nn.Transformer(D, NHEAD, 1, 1, FF, dropout=0.0, batch_first=True).double()
    on_device.load_state_dict(model.state_dict())
    on_device.to(device)
    src, tgt = rng.standard_normal((N, S, D)), rng.standard_normal((N, T, D))
    kpm = np.zeros((N, S), dtype=bool)
    kpm[1, 3:] = True
    results = []
    for m, dev in ((model, "cpu"), (on_device, device)):
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=dev, dtype=gf.float64)
        out = m(gf.tensor(src, device=dev), gf.tensor(tgt, device=dev), tgt_mask=mask,
                src_key_padding_mask=gf.tensor(kpm, device=dev))  # fmt: skip
        out.square().sum().backward()
        results.append([as_numpy(out)] + [as_numpy(p.grad) for p in m.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


# ---- dropout ---------------------------------------------------------------------------------


def test_dropout_active_in_training_off_in_eval():
    gf.manual_seed(0)
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.5).double()
    reference = nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0).double()
    reference.load_state_dict(layer.state_dict())
    x = gf.randn(S, N, D, dtype=gf.float64)
    a, b = as_numpy(layer(x)), as_numpy(layer(x))
    assert np.abs(a - b).max() > 1e-2  # a new mask per call
    assert np.abs(a - as_numpy(reference(x))).max() > 1e-2
    layer.eval()
    np.testing.assert_array_equal(as_numpy(layer(x)), as_numpy(reference(x)))
    # the feed-forward dropout zeroes about half the hidden units in training
    layer.train()
    hidden = []
    layer.dropout.register_forward_hook(lambda m, args, out: hidden.append(as_numpy(out)))
    layer(gf.randn(16, 4, D, dtype=gf.float64))
    relu_positive = hidden[0] != 0
    assert 0.15 < relu_positive.mean() < 0.4  # relu keeps ~half, dropout keeps half of those


# ---- errors ----------------------------------------------------------------------------------


def test_errors_as_torch():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(D, NHEAD, activation="tanh")
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not swish"):
        nn.TransformerDecoderLayer(D, NHEAD, activation="swish")
    model = nn.Transformer(D, NHEAD, 1, 1, FF)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        model(gf.zeros(S, N, D), gf.zeros(T, 3, D))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal"):
        model(gf.zeros(S, N, D), gf.zeros(T, N, 6))
    batch_first = nn.Transformer(D, NHEAD, 1, 1, FF, batch_first=True)
    with pytest.raises(RuntimeError, match="the batch number"):
        batch_first(gf.zeros(N, S, D), gf.zeros(3, T, D))
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        layer(gf.zeros(S, N, D), is_causal=True)
    with pytest.raises(AssertionError, match="only bool and floating types of src_mask"):
        layer(gf.zeros(S, N, D), src_mask=gf.zeros(S, S, dtype=gf.int64))
    with pytest.warns(UserWarning, match="mismatched src_key_padding_mask and src_mask"):
        layer(gf.zeros(S, N, D), src_mask=gf.zeros(S, S),
              src_key_padding_mask=gf.zeros(N, S, dtype=gf.bool))  # fmt: skip


# ---- pytorch/examples' word_language_model -----------------------------------------------------


def _word_language_model(torch):
    """pytorch/examples word_language_model/model.py's TransformerModel, as written there."""
    nn_ = torch.nn
    F = torch.nn.functional

    class PositionalEncoding(nn_.Module):
        def __init__(self, d_model, dropout=0.1, max_len=5000):
            super().__init__()
            self.dropout = nn_.Dropout(p=dropout)
            pe = torch.zeros(max_len, d_model)
            position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
            div_term = torch.exp(
                torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model)
            )
            pe[:, 0::2] = torch.sin(position * div_term)
            pe[:, 1::2] = torch.cos(position * div_term)
            pe = pe.unsqueeze(0).transpose(0, 1)
            self.register_buffer("pe", pe)

        def forward(self, x):
            x = x + self.pe[: x.size(0), :]
            return self.dropout(x)

    class TransformerModel(nn_.Transformer):
        def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
            super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid,
                             num_encoder_layers=nlayers)  # fmt: skip
            self.model_type = "Transformer"
            self.src_mask = None
            self.pos_encoder = PositionalEncoding(ninp, dropout)
            self.input_emb = nn_.Embedding(ntoken, ninp)
            self.ninp = ninp
            self.decoder = nn_.Linear(ninp, ntoken)
            self.init_weights()

        def _generate_square_subsequent_mask(self, sz):
            return torch.log(torch.tril(torch.ones(sz, sz)))

        def init_weights(self):
            initrange = 0.1
            nn_.init.uniform_(self.input_emb.weight, -initrange, initrange)
            nn_.init.zeros_(self.decoder.bias)
            nn_.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, src, has_mask=True):
            if has_mask:
                device = src.device
                if self.src_mask is None or self.src_mask.size(0) != len(src):
                    mask = self._generate_square_subsequent_mask(len(src)).to(device)
                    self.src_mask = mask
            else:
                self.src_mask = None
            src = self.input_emb(src) * math.sqrt(self.ninp)
            src = self.pos_encoder(src)
            output = self.encoder(src, mask=self.src_mask)
            output = self.decoder(output)
            return F.log_softmax(output, dim=-1)

    return TransformerModel(ntoken=20, ninp=D, nhead=NHEAD, nhid=FF, nlayers=2)


def test_word_language_model_subclass(rng):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's log(0) in the mask
        ours = _word_language_model(gf)
        assert isinstance(ours, nn.Transformer) and isinstance(ours.decoder, nn.Linear)
        assert len(ours.encoder.layers) == 2 and "pos_encoder.pe" in ours.state_dict()
        tokens = rng.integers(0, 20, (6, 3))
        out = ours(gf.tensor(tokens))
        assert tuple(out.shape) == (6, 3, 20)
        np.testing.assert_allclose(as_numpy(out.exp().sum(-1)), 1.0, rtol=1e-5)
        out[:, :, 0].sum().backward()
        assert ours.input_emb.weight.grad is not None
        torch = pytest.importorskip("torch")
        theirs = _word_language_model(torch)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        _load_torch_state(ours, theirs)
        ours.eval(), theirs.eval()
        for has_mask in (True, False):
            expected = theirs(torch.tensor(tokens), has_mask).detach().numpy()
            got = as_numpy(ours(gf.tensor(tokens), has_mask))
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
