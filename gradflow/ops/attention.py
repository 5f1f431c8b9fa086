"""Scaled dot-product attention as one autograd node: PyTorch's
``F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale,
enable_gqa)``.

Forward, for query (..., L, E), key (..., S, E), value (..., S, Ev):
    S = scale * Q K^T + additive mask      (masked-out places: -inf)
    P = softmax(S) along the keys           (a row with every key masked out: all 0, as torch)
    O = dropout(P) V
Backward, from dO:
    dV = dropout(P)^T dO,   dP = dropout'(dO V^T),   dS = P * (dP - rowsum(dP * P)),
    dQ = scale * dS K,      dK = scale * dS^T Q,     d(additive mask) = dS.

Memory. On the CPU (NumPy) the node runs in blocks of heads whose scores fill about 1 MiB, so
the softmax passes stay in cache, and keeps one log-sum-exp per query row beside references to
Q, K, V, the output and an additive mask: the backward recomputes each block's P (one more
GEMM per block) and takes rowsum(dP * P) as rowsum(dO * O). Peak memory at B=8, H=8, T=512 in
float32 is torch's (42 MB both), where keeping P took 5.2x. With dropout or a gradient for an
additive mask, or batch dims that broadcast, the node keeps P, (..., L, S) in the input's dtype
(64 MiB at that size), and the dropout mask as bools: the path below. On cuda the row kernels
keep P too (the backward reads it whole); the tiled kernels keep two values per query row.

Routes. The array path that keeps P (NumPy where the blocks don't apply, or CuPy's own
functions for float16 on cuda) is the code below:
the mask is applied by writing -inf, the softmax and its backward are a few array passes each.
The kernel route, taken when ``routing.uses_kernels(query)`` (a float32/float64 cuda array,
or any such array inside ``kernels_through``, as the tests' CPU emulation routes it), keeps the
four GEMMs (cuBLAS through ``@``) and replaces everything between them with one kernel each
way (kernels/attention.cu, launchers in gradflow/kernels/attention.py):
- forward, ``attn_softmax_fwd`` in place over Q K^T: scale, additive mask, the bool mask read
  through broadcast strides (never expanded to (..., L, S)), the causal mask from the indices
  (no tri array), the all-masked-row rule, and dropout: CuPy's generator draws the keep-mask
  (as on the array path, so a seed gives the same masks) and the kernel writes the dropped,
  rescaled P beside P;
- backward, ``attn_softmax_bwd`` in place over dO V^T: dropout applied to dP, dS, and dS
  scaled by ``scale`` so dQ = dS K and dK = dS^T Q need no extra pass (CuPy's matmul has no
  alpha); the unscaled dS is written as a second output only when the additive mask needs a
  gradient beside Q or K, and the dropped P for dV comes out of the same pass.
Both take the same arrays and save the same arrays, so a backward may take either route
whatever the forward took. Values agree to rounding (the kernel sums a row in another order).
On cuda the array path waits for the device twice per forward (its boolean-mask writes); the
kernel route never does.
The tiled route (``attn_flash_fwd``, ``attn_flash_bwd_dq``, ``attn_flash_bwd_dkv``; no GEMM
call, no (..., L, S) array: P is recomputed tile by tile in the backward) runs on the kernel
route only where gradflow.kernels.dispatch picks "attention": "flash" for the GPU and the work
B H L S E, which no architecture does until ``python -m gradflow.bench.tune --write`` has
measured it, and only where it applies: no dropout, no gradient for an additive mask, query,
key and value of one batch shape (enable_gqa's repeat gives that), head dims up to 128.
Elsewhere the row kernels run. Its backward runs on the backend its forward ran on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.function import Function
from gradflow.backend import device_of, get_array_module, is_cuda_array
from gradflow.backend.routing import uses_kernels
from gradflow.ops._util import float_input, unbroadcast
from gradflow.random import seed_for
from gradflow.tensor import Tensor

_OP = "scaled_dot_product_attention"
BLOCK_BYTES = 1 << 20  # the NumPy route's scores per block of heads: about 1 MiB, in cache


def _block_of(mask: Any, index: tuple, ndim: int) -> Any:
    """The part of a mask that block `index` of the batch dims reads, for scores of `ndim`
    dims (batch dims, L, S): an int in the index drops that dim, a slice keeps it, and the
    mask's dims of size 1 stay broadcast (read at 0, or whole)."""
    lead = ndim - mask.ndim  # batch dims the mask lacks: it broadcasts over them
    picks = []
    for i, item in enumerate(index):
        axis = i - lead
        if axis < 0:
            continue
        if mask.shape[axis] == 1:
            item = 0 if isinstance(item, int) else slice(None)
        picks.append(item)
    return mask[tuple(picks)] if picks else mask


def _keys_last(a: Any) -> Any:
    """a with its last two dims swapped (a view)."""
    return a.swapaxes(-1, -2)


def masked_softmax(s: Any, keep: Any) -> Any:
    """softmax of s along the last dim in place, where `keep` (bool, broadcast to s, or None)
    marks the places that take part; a row with none (or only -inf scores) gives all 0."""
    if keep is not None:
        get_array_module(s).copyto(s, s.dtype.type(-numpy.inf), where=~keep)
    softmax_rows(s)
    return s


def softmax_rows(s: Any) -> tuple[Any, Any, Any]:
    """softmax of s along the last dim in place (masked places already -inf); returns each
    row's (max, sum of exp(s - max), empty): an empty row (every score -inf, or a NaN max)
    gives all 0, its max read as 0 and its sum as 1."""
    xp = get_array_module(s)
    m = s.max(axis=-1, keepdims=True)
    m[~xp.isfinite(m)] = 0
    s -= m
    xp.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    empty = total == 0
    total[empty] = 1  # an all-masked row: 0 / 1
    s /= total
    return m, total, empty


def softmax_backward(p: Any, dp: Any) -> Any:
    """dS = P * (dP - rowsum(dP * P)) along the last dim, written over dp."""
    row = (dp * p).sum(axis=-1, keepdims=True)
    dp -= row
    dp *= p
    return dp


class ScaledDotProductAttention(Function):
    """One node for attention; inputs (query, key, value[, additive float mask])."""

    op_name = _OP
    scale: float
    keep: Any  # the boolean attn_mask's array (True takes part), or None
    causal: bool = False  # is_causal: keys after each query masked out
    dropout_p: float
    generator: Any = None
    q_shape: tuple
    k_shape: tuple
    v_shape: tuple
    mask_shape: tuple | None
    _flash = False  # the tiled kernels ran forward (saved: output, row stats, q, k, v, mask)
    _route = None  # the kernel backend they ran on (None: CuPy), for the backward
    _chunked = False  # the NumPy route in blocks of heads ran (saved: output, lse, q, k, v, mask)

    def forward(self, q, k, v, mask=None):
        if uses_kernels(q):
            if self._flash_applies(q, k, v):
                return self._forward_flash(q, k, v, mask)
        elif self._chunks_apply(q, k, v):
            return self._forward_chunked(q, k, v, mask)
        s = q @ _keys_last(k)  # (..., L, S), batch dims broadcast
        if uses_kernels(q):
            p, drop, pd = self._softmax_kernel(s, mask)
        else:
            s *= s.dtype.type(self.scale)
            if mask is not None:
                s += mask
            keep = self.keep
            if self.causal:
                keep = get_array_module(s).tri(s.shape[-2], s.shape[-1], dtype=bool)
            p = masked_softmax(s, keep)
            drop = None
            if self.dropout_p > 0:
                drop = self._dropout_mask(p)
                pd = p * drop
                pd *= self._keep_scale(p.dtype)
            else:
                pd = p
        out = pd @ v
        # Memory: P, the dropout mask, and references to the inputs (q for dK, k for dQ, v for
        # dS; all of them, and the additive mask, for the double backward's recomputation)
        self.save_for_backward(p, drop, q, k, v, mask)
        return out

    def _softmax_kernel(self, s, mask):
        """(P, dropout mask, dropped P) from the raw scores s, by attn_softmax_fwd in place."""
        from gradflow.kernels.attention import attn_softmax_fwd

        drop = self._dropout_mask(s) if self.dropout_p > 0 else None
        p, pd = attn_softmax_fwd(
            s, self.scale, attn_mask=self.keep if mask is None else mask,
            is_causal=self.causal, dropout_mask=drop, dropout_scale=self._keep_scale(s.dtype),
        )  # fmt: skip
        return p, drop, (p if pd is None else pd)

    def _flash_applies(self, q, k, v):
        """Whether the tiled kernels run: where they apply (no dropout, no gradient for an
        additive mask, shapes they take) and the dispatch table picks them for this work."""
        from gradflow.kernels import dispatch
        from gradflow.kernels.attention import flash_supports

        need = self.needs_input_grad
        if self.dropout_p > 0 or (len(need) == 4 and need[3]):
            return False
        if not flash_supports(tuple(q.shape), tuple(k.shape), tuple(v.shape)):
            return False
        work = math.prod(q.shape[:-1]) * k.shape[-2] * q.shape[-1]
        return dispatch.choose("attention", work, q) == "flash"

    def _forward_flash(self, q, k, v, mask):
        from gradflow.backend import routing
        from gradflow.kernels.attention import attn_flash_fwd

        self._flash, self._route = True, routing.kernel_backend()
        out, stats = attn_flash_fwd(
            q, k, v, self.scale, attn_mask=self.keep if mask is None else mask,
            is_causal=self.causal, backend=self._route,
        )  # fmt: skip
        # Memory: two values per query row beside the inputs and the output (references)
        self.save_for_backward(out, stats, q, k, v, mask)
        return out

    def _backward_flash(self, g):
        from gradflow.kernels.attention import attn_flash_bwd

        out, stats, q, k, v, mask = self.saved_arrays
        grads = attn_flash_bwd(
            q, k, v, out, g, stats, self.scale, attn_mask=self.keep if mask is None else mask,
            is_causal=self.causal, backend=self._route,
        )  # fmt: skip
        need = self.needs_input_grad
        grads = tuple(x if n else None for x, n in zip(grads, need))
        return grads if len(need) == 3 else (*grads, None)

    # ---- the NumPy route: blocks of heads, P recomputed in backward ---------------------------
    def _chunks_apply(self, q, k, v):
        """Whether the CPU route in blocks runs: NumPy arrays of one batch shape, no dropout and
        no gradient for an additive mask (those keep P whole: the path above)."""
        need = self.needs_input_grad
        return (
            type(q) is numpy.ndarray
            and q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
            and self.dropout_p == 0
            and not (len(need) == 4 and need[3])
        )

    def _blocks(self, q, k):
        """Index tuples into the batch dims, each a block whose scores fill about BLOCK_BYTES,
        so the softmax passes run in cache: heads (the last batch dim) in steps, or, where all
        of a sample's heads fit, whole trailing batch dims with the one before stepped (at
        T=8, one block for all 64 x 4 heads instead of 64 blocks of 4)."""
        batch = q.shape[:-2]
        if not batch:
            return [()]
        size = max(q.shape[-2] * k.shape[-2] * q.itemsize, 1)  # one head's scores
        whole = len(batch)  # batch[whole:] fit one block whole
        while whole > 0 and size * batch[whole - 1] <= BLOCK_BYTES:
            size *= batch[whole - 1]
            whole -= 1
        rest = (slice(None),) * (len(batch) - whole)
        if whole == 0:
            return [rest]
        dim = whole - 1
        step = max(1, BLOCK_BYTES // size)
        return [
            (*outer, slice(h, h + step), *rest)
            for outer in numpy.ndindex(*batch[:dim])
            for h in range(0, batch[dim], step)
        ]

    def _block_scores(self, qs, k, mask, index):
        """scale Q K^T (+ mask, masked places -inf) for one block; qs is Q already scaled."""
        s = qs @ _keys_last(k)
        ndim = len(self.q_shape)  # the whole scores' dims: the block index is into them
        if mask is not None:
            s += _block_of(mask, index, ndim)
        if self.causal:
            numpy.copyto(s, s.dtype.type(-numpy.inf),
                         where=~numpy.tri(s.shape[-2], s.shape[-1], dtype=bool))  # fmt: skip
        elif self.keep is not None:
            numpy.copyto(s, s.dtype.type(-numpy.inf), where=~_block_of(self.keep, index, ndim))
        return s

    def _forward_chunked(self, q, k, v, mask):
        self._chunked = True
        scale = q.dtype.type(self.scale)
        out = numpy.empty((*q.shape[:-1], v.shape[-1]), q.dtype)
        lse = numpy.empty(q.shape[:-1] + (1,), q.dtype)  # log-sum-exp of each row's scores
        for index in self._blocks(q, k):
            s = self._block_scores(q[index] * scale, k[index], mask, index)
            m, total, empty = softmax_rows(s)
            numpy.matmul(s, v[index], out=out[index])
            numpy.log(total, out=total)
            total += m
            total[empty] = numpy.inf  # recomputed weights exp(s - inf) are 0, as forward's
            lse[index] = total
        # Memory: one value per query row beside references to q, k, v, the mask and the output
        self.save_for_backward(out, lse, q, k, v, mask)
        return out

    def _backward_chunked(self, g):
        out, lse, q, k, v, mask = self.saved_arrays
        need = self.needs_input_grad
        scale = q.dtype.type(self.scale)
        dq = numpy.empty_like(q) if need[0] else None
        dk = numpy.empty_like(k) if need[1] else None
        dv = numpy.empty_like(v) if need[2] else None
        # rowsum(dP * P) = rowsum(dO * O): one value per row, from arrays of O's size
        row = (g * out).sum(axis=-1, keepdims=True)
        for index in self._blocks(q, k):
            qs, kb, gb = q[index] * scale, k[index], g[index]
            p = self._block_scores(qs, kb, mask, index)
            p -= lse[index]
            numpy.exp(p, out=p)  # P, recomputed
            if dv is not None:
                numpy.matmul(_keys_last(p), gb, out=dv[index])
            if dq is None and dk is None:
                continue
            ds = gb @ _keys_last(v[index])  # dP
            ds -= row[index]
            ds *= p  # dS = P (dP - rowsum(dP P))
            if dq is not None:
                numpy.matmul(ds, kb, out=dq[index])
                dq[index] *= scale
            if dk is not None:
                numpy.matmul(_keys_last(ds), qs, out=dk[index])  # qs carries the scale
        grads = (dq, dk, dv)
        return grads if len(need) == 3 else (*grads, None)

    def _keep_scale(self, dtype):
        """Dropout's rescaling of the weights kept: 1 / (1 - p), 0 for p = 1 (1 without)."""
        p = self.dropout_p
        return numpy.dtype(dtype).type(1 if p == 0 else 0 if p == 1 else 1 / (1 - p))

    def _dropout_mask(self, p):
        rng = seed_for(self.generator, device_of(p))
        if is_cuda_array(p):
            with p.device:
                return rng.random(p.shape, dtype=p.dtype) >= self.dropout_p
        return rng.random(p.shape, dtype=p.dtype) >= self.dropout_p

    def backward(self, g):
        if self._flash:
            return self._backward_flash(g)
        if self._chunked:
            return self._backward_chunked(g)
        p, drop, q, k, v, _ = self.saved_arrays
        if uses_kernels(p):
            return self._backward_kernel(g, p, drop, q, k, v)
        need = self.needs_input_grad
        keep_scale = self._keep_scale(p.dtype)
        dq = dk = dv = dmask = None
        if need[2]:
            pd = p if drop is None else p * drop * keep_scale
            dv = unbroadcast(_keys_last(pd) @ g, self.v_shape)
        if need[0] or need[1] or (len(need) == 4 and need[3]):
            dp = g @ _keys_last(v)
            if drop is not None:
                dp *= drop
                dp *= keep_scale
            ds = softmax_backward(p, dp)
            if len(need) == 4 and need[3]:
                dmask = unbroadcast(ds.copy() if (need[0] or need[1]) else ds, self.mask_shape)
            ds *= ds.dtype.type(self.scale)
            if need[0]:
                dq = unbroadcast(ds @ k, self.q_shape)
            if need[1]:
                dk = unbroadcast(_keys_last(ds) @ q, self.k_shape)
        grads = (dq, dk, dv)
        return grads if len(need) == 3 else (*grads, dmask)

    def backward_graph(self, g):
        """Under create_graph: softmax(scale Q K^T + mask) V recomputed with differentiable ops
        (autograd/composite.py; dropout replayed from the saved keep-mask), and its gradients
        taken with a graph."""
        from gradflow.autograd.composite import attention_reference, backward_graph_by_recompute

        dropped = None
        if self._flash or self._chunked:  # no dropout on these routes
            *_, q, k, v, mask = self.saved_arrays
        else:
            p, drop, q, k, v, mask = self.saved_arrays
            if drop is not None:
                dropped = drop * self._keep_scale(p.dtype)
        arrays = (q, k, v) if len(self.needs_input_grad) == 3 else (q, k, v, mask)
        reference = attention_reference(self.scale, self.keep, self.causal, dropped)
        return backward_graph_by_recompute(self, g, reference, arrays)

    def _backward_kernel(self, g, p, drop, q, k, v):
        from gradflow.kernels.attention import attn_softmax_bwd

        need = self.needs_input_grad
        need_mask = len(need) == 4 and need[3]
        need_qk = need[0] or need[1]
        keep_scale = self._keep_scale(p.dtype)
        dq = dk = dv = dmask = pd = None
        if need_qk or need_mask:
            ds, ds_raw, pd = attn_softmax_bwd(
                p, g @ _keys_last(v), self.scale if need_qk else 1.0, dropout_mask=drop,
                dropout_scale=keep_scale, write_unscaled=need_mask and need_qk,
                write_dropped=need[2] and drop is not None,
            )  # fmt: skip
            if need_mask:  # dS itself: unscaled when ds is (need_qk false)
                dmask = unbroadcast(ds if ds_raw is None else ds_raw, self.mask_shape)
            if need[0]:
                dq = unbroadcast(ds @ k, self.q_shape)
            if need[1]:
                dk = unbroadcast(_keys_last(ds) @ q, self.k_shape)
        if need[2]:
            if pd is None:
                pd = p if drop is None else p * drop * keep_scale
            dv = unbroadcast(_keys_last(pd) @ g, self.v_shape)
        grads = (dq, dk, dv)
        return grads if len(need) == 3 else (*grads, dmask)


def _check(query: Any, key: Any, value: Any) -> tuple[Tensor, Tensor, Tensor]:
    q = float_input(query, _OP, "query")
    k = float_input(key, _OP, "key")
    v = float_input(value, _OP, "value")
    if not q.dtype == k.dtype == v.dtype:
        from gradflow.autograd.function import DtypeMismatchError

        raise DtypeMismatchError(
            f"{_OP}: Expected query, key, and value to have the same dtype, but got "
            f"query.dtype: {q.dtype} key.dtype: {k.dtype} and value.dtype: {v.dtype} instead."
        )
    for name, t in (("query", q), ("key", k), ("value", v)):
        if t.ndim < 2:
            raise ValueError(
                f"{_OP}: {name} of shape {tuple(t.shape)} needs at least 2 dims (..., L, E)"
            )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"{_OP}: query (..., L, E) of shape {tuple(q.shape)} and key (..., S, E) of shape "
            f"{tuple(k.shape)} differ in E"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{_OP}: key (..., S, E) of shape {tuple(k.shape)} and value (..., S, Ev) of shape "
            f"{tuple(v.shape)} differ in S"
        )
    return q, k, v


def _grouped(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """enable_gqa: key and value heads (dim -3) repeated to the query's head count."""
    if q.ndim < 3 or k.ndim < 3 or v.ndim < 3:
        raise ValueError(f"{_OP}: enable_gqa needs (..., H, L, E) inputs with a head dim")
    hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
    if hk != hv or hq % hk:
        raise ValueError(
            f"{_OP}: enable_gqa needs the query's heads ({hq}) to be a multiple of the key's "
            f"({hk}) and value's ({hv}), which must be equal"
        )
    if hq == hk:
        return k, v
    return k.repeat_interleave(hq // hk, dim=-3), v.repeat_interleave(hq // hk, dim=-3)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(Q K^T * scale + mask) V over the last two dims, batch dims broadcast (PyTorch's).

    attn_mask: bool (True takes part) or float (added to the scores), broadcastable to
    (..., L, S); is_causal masks out the keys after each query (not with attn_mask as well).
    scale defaults to 1 / sqrt(E). dropout_p > 0 drops attention weights, always: pass
    ``dropout_p if self.training else 0.0`` as PyTorch's modules do. A query whose keys are all
    masked out gets a zero output and zero gradients, as in PyTorch.

    >>> import gradflow
    >>> q = k = v = gradflow.ones(1, 2, 3, 4)
    >>> scaled_dot_product_attention(q, k, v, is_causal=True).shape
    gradflow.Size([1, 2, 3, 4])
    """
    q, k, v = _check(query, key, value)
    if enable_gqa:
        k, v = _grouped(q, k, v)
    if (
        isinstance(dropout_p, bool)
        or not isinstance(dropout_p, int | float)
        or not (0.0 <= dropout_p <= 1.0)
    ):
        raise ValueError(f"{_OP}: dropout_p must be a float in [0, 1], got {dropout_p!r}")
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    keep = None
    inputs = [q, k, v]
    mask_shape = None
    if is_causal and attn_mask is not None:  # PyTorch's reference and math path refuse both
        raise RuntimeError(
            f"{_OP}: Explicit attn_mask should not be set when is_causal=True; fold the causal "
            "mask into attn_mask instead (gradflow.ones(L, S, dtype=gradflow.bool).tril())"
        )
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise TypeError(f"{_OP}: attn_mask must be a Tensor or None, got "
                            f"{type(attn_mask).__name__}")  # fmt: skip
        if attn_mask.dtype != numpy.bool_ and attn_mask.dtype != q.dtype:
            raise RuntimeError(
                f"{_OP}: Expected attn_mask dtype to be bool or float or to match query dtype, "
                f"but got attn_mask.dtype: {attn_mask.dtype} and query.dtype: {q.dtype} instead."
            )
        try:
            numpy.broadcast_shapes(tuple(attn_mask.shape), (*q.shape[:-2], L, S))
        except ValueError:
            raise ValueError(
                f"{_OP}: attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to the "
                f"scores' shape (..., L={L}, S={S}) for query {tuple(q.shape)}"
            ) from None
        if attn_mask.dtype == numpy.bool_:
            keep = attn_mask.array
        else:
            inputs.append(attn_mask)
            mask_shape = tuple(attn_mask.shape)
    node = ScaledDotProductAttention.apply(
        *inputs,
        scale=scale,
        keep=keep,
        causal=bool(is_causal),
        dropout_p=float(dropout_p),
        q_shape=tuple(q.shape),
        k_shape=tuple(k.shape),
        v_shape=tuple(v.shape),
        mask_shape=mask_shape,
    )
    return node
