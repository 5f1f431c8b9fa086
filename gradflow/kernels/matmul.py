"""Launcher for kernels/matmul.cu: dX = (dY * f'(Z)) @ W^T without materializing dY * f'(Z)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradflow.kernels._common import (
    KernelBackend,
    check_activation,
    check_float_arrays,
    check_ndim,
    check_shape,
    contiguous,
    describe,
    resolve_backend,
)
from gradflow.kernels.activations import ACT_CODES

TILE = 16  # act_matmul_bwd's tile edge and block shape (matmul.cu)


def fused_act_matmul_bwd(
    dy: Any, z: Any, w: Any, act: str, *, backend: KernelBackend | None = None
) -> Any:
    """Input gradient of ``y = f(z)``, ``z = x @ w``: returns dx = (dy * f'(z)) @ w.T, [M, K].

    dy and z are [M, N]; w is [K, N] and may be any strided view with non-negative strides
    (w = weight.T of a [N, K] weight costs no copy). act is one of "identity", "relu",
    "sigmoid", "tanh", "gelu_erf", "gelu_tanh", "silu".
    """
    launcher = "fused_act_matmul_bwd"
    backend = resolve_backend(backend)
    check_activation(launcher, act, tuple(ACT_CODES))
    dtype, device = check_float_arrays(launcher, backend, dy=dy, z=z, w=w)
    check_ndim(launcher, "dy", dy, 2, "[M, N]")
    check_shape(launcher, "z", z, dy.shape, "the shape of 'dy'")
    check_ndim(launcher, "w", w, 2, "[K, N]")
    n_rows, n_inner = dy.shape
    if w.shape[1] != n_inner:
        raise ValueError(
            f"{launcher}: argument 'w' has {describe(w)}; expected [K, {n_inner}] (its second "
            f"dimension must match dy's {dy.shape})"
        )
    n_out = w.shape[0]
    dy, z = contiguous(backend, dy, z)
    item = w.dtype.itemsize
    if any(s < 0 or s % item for s in w.strides):
        w = backend.ascontiguous(w)
    stride_k, stride_n = (s // item for s in w.strides)
    dx = backend.empty((n_rows, n_out), dtype, device)
    if dx.size == 0:
        return dx
    if n_inner == 0:
        dx[...] = 0
        return dx
    cap = backend.max_grid_blocks(device)
    tiles_k, tiles_m = -(-n_out // TILE), -(-n_rows // TILE)
    grid_k = min(tiles_k, cap)
    grid = (grid_k, max(1, min(tiles_m, cap // grid_k)), 1)
    args = (dy, z, w, dx, np.int64(n_rows), np.int64(n_inner), np.int64(n_out),
            np.int64(stride_k), np.int64(stride_n), np.int32(ACT_CODES[act]))  # fmt: skip
    backend.launch("matmul", dtype, "act_matmul_bwd", grid, (TILE, TILE, 1), args, device)
    return dx
