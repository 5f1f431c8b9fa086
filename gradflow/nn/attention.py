"""nn.MultiheadAttention with PyTorch's constructor, parameter names, initialization, forward
signature, mask conventions and errors.

Parameters, as ``torch.nn.MultiheadAttention``'s (so state dicts load either way):
``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E) pack the query, key and value projections
in that order; with ``kdim``/``vdim`` other than ``embed_dim`` the weights are separate
(``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim)) and
``in_proj_weight`` is None; ``out_proj`` is a Linear; ``bias_k``/``bias_v`` (1, 1, E) with
``add_bias_kv``.

Masks follow PyTorch's MultiheadAttention, which is the opposite of scaled_dot_product_attention
for bool masks: True in ``attn_mask`` or ``key_padding_mask`` means *not allowed*; a float mask
is added to the scores. Both are turned into float masks and added, as torch does, so a float
key_padding_mask with a bool attn_mask works (with torch's deprecation warning).

How it computes (our own code, with torch.nn.functional.multi_head_attention_forward as the
reference behaviour): inputs in (N, L, E) inside, the projections as gradflow linears, heads
split to (N, H, L, D); the masks are kept broadcastable, (1 or N, 1 or H, L or 1, S), never
expanded per head. With ``need_weights=False`` attention is one
F.scaled_dot_product_attention node; with ``need_weights=True`` the weights are computed with
gradflow ops (scaled Q Kᵀ, plus the mask, softmax, dropout) so that they are returned and their
gradients flow exactly as torch's do. A query whose keys are all masked gets NaN weights and
output on the need_weights path and a zero output on the other, as in torch.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy

from gradflow import creation
from gradflow.nn import init
from gradflow.nn.linear import Linear
from gradflow.nn.module import Module
from gradflow.nn.parameter import Parameter
from gradflow.ops.attention import scaled_dot_product_attention
from gradflow.ops.dropout import dropout as dropout_op
from gradflow.ops.linalg import linear
from gradflow.ops.padding import pad
from gradflow.ops.shape import cat
from gradflow.ops.softmax import softmax
from gradflow.tensor import Size, Tensor

__all__ = ["MultiheadAttention", "NonDynamicallyQuantizableLinear"]


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear under the class name torch gives MultiheadAttention.out_proj (torch uses it to
    keep quantization tools off that layer; here it is only the name, so reprs match)."""


def _is_float(t: Tensor) -> bool:
    return t.dtype.kind == "f"


def canonical_mask(
    mask: Tensor | None,
    mask_name: str,
    other_type: Any,
    other_name: str,
    target_type: Any,
    check_other: bool = True,
) -> Tensor | None:
    """A bool or float mask as a float mask of `target_type` (True -> -inf, False -> 0); a
    float mask unchanged. PyTorch's rules: another dtype is an AssertionError, and a mask whose
    dtype differs from `other_type` (the other mask's) warns that mixing is deprecated."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{mask_name} must be a Tensor or None, got {type(mask).__name__}")
    is_float = _is_float(mask)
    if mask.dtype != numpy.bool_ and not is_float:
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other_type is not None and mask.dtype != other_type:
        warnings.warn(
            f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type "
            "for both instead.",
            stacklevel=3,
        )
    if not is_float:
        zeros = creation.zeros(tuple(mask.shape), dtype=target_type, device=mask.device)
        mask = zeros.masked_fill(mask, float("-inf"))
    return mask


def none_or_dtype(t: Tensor | None) -> Any:
    if t is None:
        return None
    if isinstance(t, Tensor):
        return t.dtype
    raise RuntimeError("input to _none_or_dtype() must be None or torch.Tensor")


def _dims(t: Any, name: str) -> int:
    if not isinstance(t, Tensor):
        raise TypeError(f"MultiheadAttention: {name} must be a Tensor, got {type(t).__name__}")
    return t.ndim


def _shape_check(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_padding_mask: Tensor | None,
    attn_mask: Tensor | None,
    num_heads: int,
) -> bool:
    """Whether the inputs are batched; PyTorch's AssertionErrors (and messages) otherwise."""
    q, k, v = _dims(query, "query"), _dims(key, "key"), _dims(value, "value")
    if q == 3:
        if k != 3 or v != 3:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                f"{k}-D and {v}-D tensors respectively"
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but "
                f"found {key_padding_mask.ndim}-D tensor instead"
            )
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise AssertionError(
                "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but "
                f"found {attn_mask.ndim}-D tensor instead"
            )
        return True
    if q == 2:
        if k != 2 or v != 2:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                f"{k}-D and {v}-D tensors respectively"
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D "
                f"but found {key_padding_mask.ndim}-D tensor instead"
            )
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise AssertionError(
                    "For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                    f"but found {attn_mask.ndim}-D tensor instead"
                )
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.ndim == 3 and tuple(attn_mask.shape) != expected:
                raise AssertionError(
                    f"Expected `attn_mask` shape to be {expected} but got {attn_mask.shape}"
                )
        return False
    raise AssertionError(
        f"query should be unbatched 2D or batched 3D tensor but received {q}-D query tensor"
    )


def _seq_first(t: Tensor) -> Size:
    """The shape of an (N, L, E) tensor as torch's messages print it, (L, N, E)."""
    return Size((t.shape[1], t.shape[0], t.shape[2]))


class MultiheadAttention(Module):
    """Attention over `num_heads` heads of ``embed_dim // num_heads`` features each, with
    PyTorch's arguments: see the module docstring for the parameters and masks.

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (attn_output, attn_output_weights or None),
    for query (L, N, E) (or (N, L, E) with batch_first, or unbatched (L, E)), key (S, N, kdim)
    and value (S, N, vdim). The weights are (N, L, S), or (N, num_heads, L, S) with
    ``average_attn_weights=False`` (no N when unbatched); dropout applies to them in training.

    >>> import gradflow
    >>> mha = MultiheadAttention(8, 2, batch_first=True)
    >>> x = gradflow.randn(3, 5, 8)
    >>> out, weights = mha(x, x, x)
    >>> tuple(out.shape), tuple(weights.shape)
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                f"num_heads={num_heads} instead"
            )
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(creation.empty((embed_dim, embed_dim), **factory))
            self.k_proj_weight = Parameter(creation.empty((embed_dim, self.kdim), **factory))
            self.v_proj_weight = Parameter(creation.empty((embed_dim, self.vdim), **factory))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(creation.empty((3 * embed_dim, embed_dim), **factory))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(creation.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = Parameter(creation.empty((1, 1, embed_dim), **factory))
            self.bias_v = Parameter(creation.empty((1, 1, embed_dim), **factory))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """torch's: xavier_uniform_ projections, zero biases, xavier_normal_ bias_k/bias_v."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        _dims(query, "query")
        key_padding_mask = canonical_mask(
            key_padding_mask, "key_padding_mask", none_or_dtype(attn_mask), "attn_mask",
            query.dtype,
        )  # fmt: skip
        attn_mask = canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, False)
        batched = _shape_check(query, key, value, key_padding_mask, attn_mask, self.num_heads)
        self_attention, shared_kv = query is key and key is value, key is value
        # Inside: (N, L, E), whatever the caller's layout.
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        out, weights = self._attend(
            query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights,
            is_causal, self_attention, shared_kv,
        )  # fmt: skip
        if not batched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _attend(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None,
        need_weights: bool,
        attn_mask: Tensor | None,
        average_attn_weights: bool,
        is_causal: bool,
        self_attention: bool,
        shared_kv: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Attention on (N, L, E) inputs with canonical (float) masks: the computation of
        torch's multi_head_attention_forward, in our layout."""
        bsz, tgt_len, embed_dim = query.shape
        heads, head_dim = self.num_heads, self.head_dim
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        if is_causal and key_padding_mask is None and not need_weights:
            attn_mask = None  # the hint is trusted: SDPA's causal mask replaces attn_mask
        elif key_padding_mask is not None:
            is_causal = False
        if embed_dim != self.embed_dim:
            raise AssertionError(
                f"was expecting embedding dimension of {self.embed_dim}, but got {embed_dim}"
            )
        if self._qkv_same_embed_dim:
            if key.shape != value.shape:
                raise AssertionError(
                    f"key shape {_seq_first(key)} does not match value shape {_seq_first(value)}"
                )
        elif key.shape[:2] != value.shape[:2]:
            raise AssertionError(
                f"key's sequence and batch dims {Size(_seq_first(key)[:2])} do not match "
                f"value's {Size(_seq_first(value)[:2])}"
            )
        for name, t, size in (("key", key, self.kdim), ("value", value, self.vdim)):
            if t.shape[2] == size:
                continue
            if not self._qkv_same_embed_dim:  # torch's check of the separate weights
                w = self.k_proj_weight if name == "key" else self.v_proj_weight
                raise AssertionError(
                    f"expecting {name} weights shape of {(embed_dim, t.shape[2])}, but got "
                    f"{w.shape}"
                )
            raise RuntimeError(  # torch's comes from the packed projection's matmul
                f"MultiheadAttention: expected {name} of {size} features (embed_dim={size}; "
                f"pass kdim/vdim for other sizes), got {t.shape[2]}"
            )
        if key.shape[0] != bsz:
            raise RuntimeError(
                f"MultiheadAttention: key and value have batch size {key.shape[0]}, query has {bsz}"
            )
        q, k, v = self._project(query, key, value, self_attention, shared_kv)
        src_len = k.shape[1]

        if attn_mask is not None:
            if attn_mask.ndim == 2:
                if tuple(attn_mask.shape) != (tgt_len, src_len):
                    raise RuntimeError(
                        f"The shape of the 2D attn_mask is {attn_mask.shape}, but should be "
                        f"{(tgt_len, src_len)}."
                    )
                attn_mask = attn_mask.reshape(1, 1, tgt_len, src_len)
            elif attn_mask.ndim == 3:
                expected = (bsz * heads, tgt_len, src_len)
                if tuple(attn_mask.shape) != expected:
                    raise RuntimeError(
                        f"The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                        f"{expected}."
                    )
                attn_mask = attn_mask.reshape(bsz, heads, tgt_len, src_len)
            else:
                raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")

        if self.bias_k is not None and self.bias_v is not None:
            k = cat([k, self.bias_k.expand(bsz, 1, embed_dim)], 1)
            v = cat([v, self.bias_v.expand(bsz, 1, embed_dim)], 1)
            attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
        elif self.bias_k is not None:
            raise AssertionError("bias_k is set but bias_v is None")
        elif self.bias_v is not None:
            raise AssertionError("bias_v is set but bias_k is None")

        # (N, L, E) -> (N, H, L, D)
        q = q.reshape(bsz, tgt_len, heads, head_dim).transpose(1, 2)
        k = k.reshape(bsz, k.shape[1], heads, head_dim).transpose(1, 2)
        v = v.reshape(bsz, v.shape[1], heads, head_dim).transpose(1, 2)
        if self.add_zero_attn:
            zeros = creation.zeros((bsz, heads, 1, head_dim), dtype=k.dtype, device=k.device)
            k, v = cat([k, zeros], 2), cat([v, zeros], 2)
            attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
        src_len = k.shape[2]

        if key_padding_mask is not None:
            if key_padding_mask.shape[0] != bsz:
                raise AssertionError(
                    f"Expected key_padded_mask.shape[0] to be {bsz}, but got "
                    f"{key_padding_mask.shape[0]}"
                )
            if key_padding_mask.shape[1] != src_len:
                raise AssertionError(
                    f"Expected key_padded_mask.shape[1] to be {src_len}, but got "
                    f"{key_padding_mask.shape[1]}"
                )
            key_padding_mask = key_padding_mask.reshape(bsz, 1, 1, src_len)
            attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask

        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            if attn_mask is not None and attn_mask.dtype != q.dtype:
                raise RuntimeError(
                    f"MultiheadAttention: expected a float mask of the query's dtype {q.dtype}, "
                    f"got {attn_mask.dtype}"
                )
            scores = (q * math.sqrt(1.0 / float(head_dim))) @ k.transpose(-2, -1)
            if attn_mask is not None:
                scores = scores + attn_mask
            weights = softmax(scores, -1)
            if dropout_p > 0.0:
                weights = dropout_op(weights, dropout_p)
            out = weights @ v
            if average_attn_weights:
                weights = weights.mean(dim=1)
        else:
            out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
        out = out.transpose(1, 2).reshape(bsz, tgt_len, embed_dim)
        return linear(out, self.out_proj.weight, self.out_proj.bias), weights

    def _project(
        self, query: Tensor, key: Tensor, value: Tensor, self_attention: bool, shared_kv: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The input projections, as torch packs them: one linear for self-attention, one for
        the query and one for key and value when those are one tensor, else three."""
        E = self.embed_dim
        b = self.in_proj_bias
        if not self._qkv_same_embed_dim:
            bq, bk, bv = (None, None, None) if b is None else b.chunk(3)
            return (
                linear(query, self.q_proj_weight, bq),
                linear(key, self.k_proj_weight, bk),
                linear(value, self.v_proj_weight, bv),
            )
        w = self.in_proj_weight
        if self_attention:
            q, k, v = linear(query, w, b).split(E, -1)
            return q, k, v
        if shared_kv:
            q = linear(query, w[:E], None if b is None else b[:E])
            k, v = linear(key, w[E:], None if b is None else b[E:]).split(E, -1)
            return q, k, v
        wq, wk, wv = w.chunk(3)
        bq, bk, bv = (None, None, None) if b is None else b.chunk(3)
        return linear(query, wq, bq), linear(key, wk, bk), linear(value, wv, bv)

    def merge_masks(
        self, attn_mask: Tensor | None, key_padding_mask: Tensor | None, query: Tensor
    ) -> tuple[Tensor | None, int | None]:
        """torch's helper for its fused path, for code that calls it: (merged mask, type), the
        type 1 for key_padding_mask alone and 2 with attn_mask (with both, the two expanded to
        (N, num_heads, L, L) and added); `query` is (N, L, E). forward does not use it."""
        mask_type: int | None = None
        merged: Tensor | None = None
        if key_padding_mask is not None:
            mask_type, merged = 1, key_padding_mask
        if attn_mask is not None:
            batch_size, seq_len, _ = query.shape
            mask_type = 2
            if attn_mask.ndim == 3:
                merged = attn_mask.view(batch_size, -1, seq_len, seq_len)
            else:
                merged = attn_mask.view(1, 1, seq_len, seq_len).expand(
                    batch_size, self.num_heads, -1, -1
                )
            if key_padding_mask is not None:
                padding = key_padding_mask.view(batch_size, 1, 1, seq_len).expand(
                    -1, self.num_heads, -1, -1
                )
                merged = merged + padding
        return merged, mask_type
