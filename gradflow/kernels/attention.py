"""Launchers for kernels/attention.cu: the masked, scaled softmax of scaled dot-product
attention and its backward, in place over the score matrices cuBLAS produces.

Scores are (..., L, S) arrays, C-contiguous (a matmul's output), one softmax row per query.
The mask is PyTorch's ``attn_mask``: a bool array (True takes part) or an additive array of the
scores' dtype, broadcastable to the scores' shape. It is passed to the kernel as element
strides over the scores' dims, 0 along broadcast dims, so a (L, S) or (B, 1, 1, S) mask is
never expanded to (B, H, L, S). ``is_causal`` masks key c > query l from the indices alone.
Dropout's bool keep-mask is drawn by the caller (CuPy's generator, so a seed gives the same
masks as the array path) and applied inside the kernels: the forward writes the dropped,
rescaled P beside P, the backward multiplies dP by it and can rebuild the dropped P for dV.

The tiled launchers (``attn_flash_fwd``, ``attn_flash_bwd``) take q, k and v themselves and
never write the scores: the forward keeps two values per query row (the score max and the sum
of exp), the backward recomputes P from them tile by tile. gradflow.kernels.dispatch decides
whether the op uses them ("attention": "flash"; not by default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.kernels._common import (
    KernelBackend,
    check_array_type,
    check_contiguous,
    check_device,
    check_float_arrays,
    check_shape,
    contiguous,
    describe,
    resolve_backend,
    row_threads,
    scalar,
)

MASK_BATCH_DIMS = 4  # batch dims a broadcast mask's layout can describe (after merging)


def _check_scores(launcher: str, backend: KernelBackend, name: str, x: Any) -> tuple[Any, Any]:
    dtype, device = check_float_arrays(launcher, backend, **{name: x})
    if x.ndim < 2:
        raise ValueError(f"{launcher}: argument '{name}' has {describe(x)}; expected (..., L, S)")
    check_contiguous(launcher, name, x)
    return dtype, device


def _check_bool(
    launcher: str, backend: KernelBackend, name: str, x: Any, device: Any, first: str
) -> None:
    check_array_type(launcher, backend, name, x)
    if x.dtype != np.bool_:
        raise TypeError(f"{launcher}: argument '{name}' has {describe(x)}; expected bool")
    check_device(launcher, backend, name, x, device, first)


def mask_layout(mask_shape: tuple, mask_strides: tuple, itemsize: int, shape: tuple) -> tuple:
    """The kernel's view of a mask broadcast to ``shape`` (the scores' (..., L, S)):
    (n1, n2, n3, m0, m1, m2, m3, ml, mc) as attention.cu's header defines them, or None when
    the batch dims do not merge into MASK_BATCH_DIMS (then the caller expands the mask).

    The mask's element strides are taken along each of ``shape``'s dims (0 where the mask is
    missing the dim or has size 1 there); batch dims of size 1 are dropped and neighbours
    merged where one stride continues the other, as one flat index would."""
    ndim = len(shape)
    if len(mask_shape) > ndim:
        raise ValueError(f"mask of shape {mask_shape} has more dims than the scores' {shape}")
    lead = ndim - len(mask_shape)
    strides = []
    for axis, size in enumerate(shape):
        i = axis - lead
        if i < 0 or mask_shape[i] == 1:
            strides.append(0)
        elif mask_shape[i] == size:
            strides.append(mask_strides[i] // itemsize)
        else:
            raise ValueError(f"mask of shape {mask_shape} does not broadcast to {shape}")
    dims: list[list[int]] = []  # [size, stride] of the batch dims, outer first
    for size, stride in zip(shape[:-2], strides[:-2]):
        if size == 1:
            continue
        if dims and dims[-1][1] == stride * size:
            dims[-1] = [dims[-1][0] * size, stride]
        else:
            dims.append([size, stride])
    if len(dims) > MASK_BATCH_DIMS:
        return None
    dims = [[1, 0]] * (MASK_BATCH_DIMS - len(dims)) + dims
    n = [size for size, _ in dims]
    m = [stride for _, stride in dims]
    return (n[1], n[2], n[3], *m, strides[-2], strides[-1])


def _mask_args(
    launcher: str,
    backend: KernelBackend,
    attn_mask: Any,
    shape: tuple,
    dtype: Any,
    device: Any,
    first: str,
) -> tuple[Any, Any, tuple]:
    """(add, keep, layout) for the kernel: one of add/keep is the mask, or both are None.
    ``shape`` is the scores' (..., L, S); ``first`` names the argument giving dtype and device."""
    if attn_mask is None:
        return None, None, (1, 1, 1, 0, 0, 0, 0, 0, 0)
    check_array_type(launcher, backend, "attn_mask", attn_mask)
    check_device(launcher, backend, "attn_mask", attn_mask, device, first)
    if attn_mask.dtype != np.bool_ and attn_mask.dtype != dtype:
        raise TypeError(
            f"{launcher}: argument 'attn_mask' has {describe(attn_mask)}; expected bool or the "
            f"scores' dtype {dtype}"
        )
    try:
        layout = mask_layout(
            tuple(attn_mask.shape), tuple(attn_mask.strides), attn_mask.itemsize, shape
        )
    except ValueError:
        raise ValueError(
            f"{launcher}: argument 'attn_mask' has {describe(attn_mask)}; expected a shape that "
            f"broadcasts to the scores' {shape}"
        ) from None
    if layout is None:  # too many batch dims to describe by strides: expand it once
        from gradflow.backend import get_array_module

        xp = get_array_module(attn_mask)
        attn_mask = backend.ascontiguous(xp.broadcast_to(attn_mask, shape))
        layout = mask_layout(shape, tuple(attn_mask.strides), attn_mask.itemsize, shape)
    if attn_mask.dtype == np.bool_:
        return None, attn_mask, layout
    return attn_mask, None, layout


def _launch(backend, device, dtype, kernel, n_rows, n_cols, args) -> None:
    grid = (min(n_rows, backend.max_grid_blocks(device)), 1, 1)
    block = (row_threads(n_cols), 1, 1)
    backend.launch("attention", dtype, kernel, grid, block, args, device)


def attn_softmax_fwd(
    scores: Any,
    scale: float,
    *,
    attn_mask: Any = None,
    is_causal: bool = False,
    dropout_mask: Any = None,
    dropout_scale: float = 1.0,
    backend: KernelBackend | None = None,
) -> tuple[Any, Any]:
    """P = softmax(scale * scores + mask) along the last dim, written over ``scores``.

    scores: the (..., L, S) raw scores Q K^T, float32 or float64, C-contiguous (overwritten).
    attn_mask: None, bool (True takes part) or additive (the scores' dtype), broadcastable to
    the scores; is_causal masks out key c > query l. Masked places (and -inf scores) get
    probability 0; a row with none left is all 0 (PyTorch's). dropout_mask: None or a bool
    array of the scores' shape (True keeps); then the dropped weights
    ``pd = where(dropout_mask, P * dropout_scale, 0)`` are returned too. Returns (P, pd), P
    being ``scores`` itself and pd None without dropout.
    """
    launcher = "attn_softmax_fwd"
    backend = resolve_backend(backend)
    dtype, device = _check_scores(launcher, backend, "scores", scores)
    add, keep, layout = _mask_args(
        launcher, backend, attn_mask, tuple(scores.shape), dtype, device, "scores"
    )
    pd = None
    if dropout_mask is not None:
        _check_bool(launcher, backend, "dropout_mask", dropout_mask, device, "scores")
        check_shape(launcher, "dropout_mask", dropout_mask, scores.shape, "the scores' shape")
        (dropout_mask,) = contiguous(backend, dropout_mask)
        pd = backend.empty(tuple(scores.shape), dtype, device)
    n_cols = scores.shape[-1]
    n_query = scores.shape[-2]
    n_rows = scores.size // n_cols if n_cols else 0
    if n_rows:
        args = (scores, add, keep, *(np.int64(v) for v in layout), np.int32(bool(is_causal)),
                scalar(dtype, scale), dropout_mask, scalar(dtype, dropout_scale), pd,
                np.int64(n_rows), np.int64(n_query), np.int64(n_cols))  # fmt: skip
        _launch(backend, device, dtype, "attn_softmax_fwd", n_rows, n_cols, args)
    return scores, pd


def attn_softmax_bwd(
    p: Any,
    dp: Any,
    scale: float = 1.0,
    *,
    dropout_mask: Any = None,
    dropout_scale: float = 1.0,
    write_unscaled: bool = False,
    write_dropped: bool = False,
    backend: KernelBackend | None = None,
) -> tuple[Any, Any, Any]:
    """The softmax backward of attention, written over ``dp``: returns (ds, ds_raw, pd).

    p: the forward's P (..., L, S); dp: dO V^T of the same shape, C-contiguous (overwritten).
    With g = dp, or ``where(dropout_mask, dp * dropout_scale, 0)`` under dropout,
    dS = P * (g - rowsum(g * P)); ``ds`` (that is, ``dp``) holds scale * dS, ready for
    dQ = ds K and dK = ds^T Q. ``write_unscaled`` also returns dS itself (the additive mask's
    gradient); ``write_dropped`` (dropout only) returns ``where(dropout_mask, P *
    dropout_scale, 0)`` for dV. Either is None when not asked for.
    """
    launcher = "attn_softmax_bwd"
    backend = resolve_backend(backend)
    dtype, device = check_float_arrays(launcher, backend, p=p, dp=dp)
    _check_scores(launcher, backend, "dp", dp)
    check_shape(launcher, "p", p, dp.shape, "the shape of 'dp'")
    if write_dropped and dropout_mask is None:
        raise ValueError(f"{launcher}: write_dropped needs a dropout_mask")
    if dropout_mask is not None:
        _check_bool(launcher, backend, "dropout_mask", dropout_mask, device, "p")
        check_shape(launcher, "dropout_mask", dropout_mask, dp.shape, "the shape of 'dp'")
    p, dropout_mask = contiguous(backend, p, dropout_mask)
    shape = tuple(dp.shape)
    ds_raw = backend.empty(shape, dtype, device) if write_unscaled else None
    pd = backend.empty(shape, dtype, device) if write_dropped else None
    n_cols = shape[-1]
    n_rows = dp.size // n_cols if n_cols else 0
    if n_rows:
        args = (p, dp, dropout_mask, scalar(dtype, dropout_scale), scalar(dtype, scale), ds_raw,
                pd, np.int64(n_rows), np.int64(n_cols))  # fmt: skip
        _launch(backend, device, dtype, "attn_softmax_bwd", n_rows, n_cols, args)
    return dp, ds_raw, pd


# ---- the tiled (FlashAttention-style) route ---------------------------------------------------

FLASH_LANES = 8  # threads per tile row (attention.cu)
FLASH_MAX_DIM = 128  # the largest head dim E or Ev the tiled kernels take


def flash_tile(dtype: Any) -> int:
    """Rows per tile of the tiled kernels: 16 in float32, 8 in float64 (shared memory)."""
    return 16 if np.dtype(dtype) == np.float32 else 8


def flash_supports(q_shape: tuple, k_shape: tuple, v_shape: tuple) -> bool:
    """Whether the tiled kernels take these shapes: one batch shape (no broadcasting), at least
    one key, head dims 1 to FLASH_MAX_DIM."""
    return (
        len(q_shape) >= 2
        and q_shape[:-2] == k_shape[:-2] == v_shape[:-2]
        and q_shape[-1] == k_shape[-1]
        and k_shape[-2] == v_shape[-2] >= 1
        and 1 <= q_shape[-1] <= FLASH_MAX_DIM
        and 1 <= v_shape[-1] <= FLASH_MAX_DIM
    )


def _check_flash(launcher: str, backend: KernelBackend, q: Any, k: Any, v: Any, **more: Any):
    """(dtype, device, (BH, L, S, E, Ev)) of a tiled launch, its arguments checked."""
    dtype, device = check_float_arrays(launcher, backend, q=q, k=k, v=v, **more)
    if not flash_supports(tuple(q.shape), tuple(k.shape), tuple(v.shape)):
        raise ValueError(
            f"{launcher}: q {describe(q)}, k {describe(k)} and v {describe(v)}; expected "
            f"(..., L, E), (..., S, E) and (..., S, Ev) with one batch shape, S >= 1 and "
            f"1 <= E, Ev <= {FLASH_MAX_DIM}"
        )
    *batch, n_query, dim = q.shape
    n_keys, dim_v = v.shape[-2:]
    bh = int(np.prod(batch, dtype=np.int64)) if batch else 1
    return dtype, device, (bh, n_query, n_keys, dim, dim_v)


def _flash_grid(backend: KernelBackend, device: Any, n_tiles: int) -> tuple:
    """One block per tile, capped (the kernels walk the tiles grid-stride)."""
    return (max(1, min(n_tiles, backend.max_grid_blocks(device))), 1, 1)


def attn_flash_fwd(
    q: Any,
    k: Any,
    v: Any,
    scale: float,
    *,
    attn_mask: Any = None,
    is_causal: bool = False,
    backend: KernelBackend | None = None,
) -> tuple[Any, Any]:
    """softmax(scale * q k^T + mask) v without writing the (..., L, S) scores: (o, stats).

    q (..., L, E), k (..., S, E), v (..., S, Ev), one batch shape, E and Ev at most
    FLASH_MAX_DIM; attn_mask and is_causal as for :func:`attn_softmax_fwd` (no dropout).
    o is (..., L, Ev); stats is [2, R] (R = the rows of o): each row's score max and its sum of
    exp(score - max), which :func:`attn_flash_bwd` needs to recompute P.
    """
    launcher = "attn_flash_fwd"
    backend = resolve_backend(backend)
    dtype, device, (bh, n_query, n_keys, dim, dim_v) = _check_flash(launcher, backend, q, k, v)
    shape = (*q.shape[:-1], n_keys)
    add, keep, layout = _mask_args(launcher, backend, attn_mask, shape, dtype, device, "q")
    q, k, v = contiguous(backend, q, k, v)
    o = backend.empty((*q.shape[:-1], dim_v), dtype, device)
    stats = backend.empty((2, bh * n_query), dtype, device)
    tile = flash_tile(dtype)
    n_tiles = bh * -(-n_query // tile)
    if n_tiles:
        args = (q, k, v, add, keep, *(np.int64(x) for x in layout), np.int32(bool(is_causal)),
                scalar(dtype, scale), o, stats,
                *(np.int64(x) for x in (bh, n_query, n_keys, dim, dim_v)))  # fmt: skip
        grid = _flash_grid(backend, device, n_tiles)
        backend.launch("attention", dtype, "attn_flash_fwd", grid, (FLASH_LANES, tile, 1), args,
                       device)  # fmt: skip
    return o, stats


def attn_flash_bwd(
    q: Any,
    k: Any,
    v: Any,
    o: Any,
    dout: Any,
    stats: Any,
    scale: float,
    *,
    attn_mask: Any = None,
    is_causal: bool = False,
    backend: KernelBackend | None = None,
) -> tuple[Any, Any, Any]:
    """(dq, dk, dv) of :func:`attn_flash_fwd`'s o for the gradient ``dout`` of o, recomputing P
    tile by tile from q, k and ``stats`` (two kernels: dq, then dk and dv; no atomics)."""
    launcher = "attn_flash_bwd"
    backend = resolve_backend(backend)
    dtype, device, (bh, n_query, n_keys, dim, dim_v) = _check_flash(
        launcher, backend, q, k, v, o=o, dout=dout, stats=stats
    )
    for name, x in (("o", o), ("dout", dout)):
        check_shape(launcher, name, x, (*q.shape[:-1], dim_v), "q's rows by v's head dim")
    check_shape(launcher, "stats", stats, (2, bh * n_query), "attn_flash_fwd's row stats")
    shape = (*q.shape[:-1], n_keys)
    add, keep, layout = _mask_args(launcher, backend, attn_mask, shape, dtype, device, "q")
    q, k, v, o, dout, stats = contiguous(backend, q, k, v, o, dout, stats)
    dq = backend.empty(tuple(q.shape), dtype, device)
    dk = backend.empty(tuple(k.shape), dtype, device)
    dv = backend.empty(tuple(v.shape), dtype, device)
    delta = backend.empty((bh * n_query,), dtype, device)
    tile = flash_tile(dtype)
    mask = (add, keep, *(np.int64(x) for x in layout), np.int32(bool(is_causal)),
            scalar(dtype, scale))  # fmt: skip
    dims = tuple(np.int64(x) for x in (bh, n_query, n_keys, dim, dim_v))
    block = (FLASH_LANES, tile, 1)
    q_tiles = bh * -(-n_query // tile)
    if q_tiles:
        args = (q, k, v, o, dout, *mask, stats, dq, delta, *dims)
        grid = _flash_grid(backend, device, q_tiles)
        backend.launch("attention", dtype, "attn_flash_bwd_dq", grid, block, args, device)
        args = (q, k, v, dout, *mask, stats, delta, dk, dv, *dims)
        grid = _flash_grid(backend, device, bh * -(-n_keys // tile))
        backend.launch("attention", dtype, "attn_flash_bwd_dkv", grid, block, args, device)
    else:  # no queries: nothing flows back to the keys and values
        dk[...] = 0
        dv[...] = 0
    return dq, dk, dv
