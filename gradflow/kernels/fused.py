"""Launchers for kernels/fused.cu: bias+activation backward, bias sums, softmax cross-entropy."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from gradflow.kernels._common import (
    BLOCK,
    KernelBackend,
    check_activation,
    check_array_type,
    check_device,
    check_float_arrays,
    check_ndim,
    check_shape,
    contiguous,
    describe,
    grid_1d,
    resolve_backend,
    row_threads,
    scalar,
)
from gradflow.kernels.activations import ACT_CODES

STRIP_COLS, STRIP_LANES = 32, 8  # bias_act_bwd's block shape (fused.cu)
MIN_ROWS_PER_SLICE = 64  # below this, splitting rows across blocks costs more than it gives


def _column_reduce(
    launcher: str, dy: Any, z: Any, dz: Any, act: str, backend: KernelBackend, device: Any
) -> Any:
    """db[c] = sum over rows of dy * f'(z) (written to dz too unless dz is None)."""
    n_rows, n_cols = dy.shape
    dtype = dy.dtype
    db = backend.empty((n_cols,), dtype, device)
    if n_cols == 0:
        return db
    if n_rows == 0:
        db[...] = 0
        return db
    cap = backend.max_grid_blocks(device)
    strips = min(-(-n_cols // STRIP_COLS), cap)
    slices = max(1, min(-(-n_rows // MIN_ROWS_PER_SLICE), cap // strips))
    partial = db if slices == 1 else backend.empty((slices, n_cols), dtype, device)
    args = (dy, z, dz, partial, np.int64(n_rows), np.int64(n_cols), np.int32(ACT_CODES[act]))
    block = (STRIP_COLS, STRIP_LANES, 1)
    backend.launch("fused", dtype, "bias_act_bwd", (strips, slices, 1), block, args, device)
    if slices > 1:
        grid = (grid_1d(backend, device, n_cols), 1, 1)
        args = (partial, db, np.int64(slices), np.int64(n_cols))
        backend.launch("fused", dtype, "column_sum", grid, (BLOCK, 1, 1), args, device)
    return db


def bias_act_bwd(
    dy: Any, z: Any, act: str, *, write_dz: bool = True, backend: KernelBackend | None = None
) -> tuple[Any, Any]:
    """Backward of ``y = f(x @ W + b)`` through f and b: returns (dz, db).

    dy and z (the pre-activation x @ W + b) are [N, C]; dz = dy * f'(z) is [N, C] and
    db = dz.sum(axis=0) is [C], summed in a fixed order (deterministic). act is one of
    "identity", "relu", "sigmoid", "tanh", "gelu_erf", "gelu_tanh", "silu". With
    ``write_dz=False`` only db is computed and dz is returned as None (dy * f'(z) is summed
    without being written: for when nothing else needs dz).
    """
    launcher = "bias_act_bwd"
    backend = resolve_backend(backend)
    check_activation(launcher, act, tuple(ACT_CODES))
    _, device = check_float_arrays(launcher, backend, dy=dy, z=z)
    check_ndim(launcher, "dy", dy, 2, "[N, C]")
    check_shape(launcher, "z", z, dy.shape, "the shape of 'dy'")
    dy, z = contiguous(backend, dy, z)
    dz = backend.empty(dy.shape, dy.dtype, device) if write_dz else None
    return dz, _column_reduce(launcher, dy, z, dz, act, backend, device)


def sum_to_bias(g: Any, *, backend: KernelBackend | None = None) -> Any:
    """The bias gradient of a [..., C] gradient: the sum over all leading axes, shape [C].

    Deterministic (fixed summation order), unlike an atomics-based reduction.
    """
    launcher = "sum_to_bias"
    backend = resolve_backend(backend)
    _, device = check_float_arrays(launcher, backend, g=g)
    if g.ndim < 2:
        raise ValueError(f"{launcher}: argument 'g' has {describe(g)}; expected [..., C], 2-D+")
    (g,) = contiguous(backend, g)
    g2 = g.reshape(-1, g.shape[-1])
    return _column_reduce(launcher, g2, None, None, "identity", backend, device)


def _check_xent_args(
    launcher: str, backend: KernelBackend, logits: Any, target: Any, weight: Any, **more: Any
) -> tuple[Any, Any]:
    arrays = {"logits": logits, **more}
    if weight is not None:
        arrays["weight"] = weight
    dtype, device = check_float_arrays(launcher, backend, **arrays)
    check_ndim(launcher, "logits", logits, 2, "[N, C]")
    n_rows, n_cols = logits.shape
    if n_cols == 0:
        raise ValueError(f"{launcher}: argument 'logits' has {describe(logits)}; C must be >= 1")
    check_array_type(launcher, backend, "target", target)
    if target.dtype != np.int64:
        raise TypeError(f"{launcher}: argument 'target' has {describe(target)}; expected int64")
    check_shape(launcher, "target", target, (n_rows,), "one class index per row of 'logits'")
    check_device(launcher, backend, "target", target, device, "logits")
    if weight is not None:
        check_shape(launcher, "weight", weight, (n_cols,), "one weight per class")
    return dtype, device


def softmax_xent_fwd(
    logits: Any,
    target: Any,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    weight: Any = None,
    backend: KernelBackend | None = None,
) -> tuple[Any, Any]:
    """Per-row softmax cross-entropy: returns (loss [N], row_stats [2, N]).

    logits [N, C] float, target [N] int64, weight [C] or None. loss is PyTorch's
    ``cross_entropy(logits, target, weight, ignore_index=..., label_smoothing=...,
    reduction='none')``: 0 on ignored rows, NaN where a target is outside [0, C) (a kernel
    cannot raise). For reduction='mean' divide loss.sum() by the sum of weight[target] over
    the rows kept (their count when weight is None). row_stats is what
    :func:`softmax_xent_bwd` needs: row_stats[0] is each row's max m and row_stats[1] is
    log(sum(exp(x - m))), so logsumexp = row_stats[0] + row_stats[1]. They are kept apart
    because that sum rounds to the precision of m (about 1e-3 at |logits| ~ 1e4 in float32),
    which would show up as a relative error of the same size in the gradient.
    """
    launcher = "softmax_xent_fwd"
    backend = resolve_backend(backend)
    dtype, device = _check_xent_args(launcher, backend, logits, target, weight)
    logits, target, weight = contiguous(backend, logits, target, weight)
    n_rows, n_cols = logits.shape
    loss = backend.empty((n_rows,), dtype, device)
    row_stats = backend.empty((2, n_rows), dtype, device)  # [row max, log sum exp(x - max)]
    if n_rows:
        grid = (min(n_rows, backend.max_grid_blocks(device)), 1, 1)
        args = (logits, target, weight, loss, row_stats[0], row_stats[1], np.int64(n_rows),
                np.int64(n_cols), np.int64(ignore_index),
                scalar(dtype, label_smoothing))  # fmt: skip
        backend.launch(
            "fused", dtype, "softmax_xent_fwd", grid, (row_threads(n_cols), 1, 1), args, device
        )
    return loss, row_stats


def softmax_xent_bwd(
    logits: Any,
    row_stats: Any,
    target: Any,
    grad_scale: Any,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    weight: Any = None,
    backend: KernelBackend | None = None,
) -> Any:
    """Gradient of sum_n grad_scale_n * loss_n (loss from softmax_xent_fwd) w.r.t. logits.

    row_stats is the [2, N] array softmax_xent_fwd returned (each row's max, and the log of
    the sum of exp(x - max)); the softmax is exp((x - max) - log_sum), as accurate at large
    logits as with the max subtracted in NumPy.

    grad_scale is a real number (Python or NumPy scalar), a one-element array (a device scalar
    such as the upstream gradient divided by the mean's denominator: no host synchronization),
    or an [N] array (reduction='none'). Returns dlogits [N, C] = scale * (softmax - smoothed
    one-hot) in the unweighted case, zero rows for ignored targets, NaN rows for out-of-range
    targets.
    """
    launcher = "softmax_xent_bwd"
    backend = resolve_backend(backend)
    scale_array = None if isinstance(grad_scale, numbers.Real) else grad_scale
    more = {"row_stats": row_stats}
    if scale_array is not None:
        more["grad_scale"] = scale_array
    dtype, device = _check_xent_args(launcher, backend, logits, target, weight, **more)
    n_rows, n_cols = logits.shape
    check_shape(
        launcher, "row_stats", row_stats, (2, n_rows), "softmax_xent_fwd's row stats for 'logits'"
    )
    scale_stride = 0
    if scale_array is not None:
        if scale_array.size == n_rows and scale_array.ndim == 1:
            scale_stride = 1
        elif scale_array.size != 1:
            raise ValueError(
                f"{launcher}: argument 'grad_scale' has {describe(scale_array)}; expected a "
                f"float, a one-element array or shape ({n_rows},)"
            )
    logits, row_stats, target, weight, scale_array = contiguous(
        backend, logits, row_stats, target, weight, scale_array
    )
    weight_sum = None if weight is None else weight.sum(keepdims=True)
    scale_mul = 1.0 if scale_array is not None else float(grad_scale)
    dlogits = backend.empty((n_rows, n_cols), dtype, device)
    if n_rows:
        grid = (min(n_rows, backend.max_grid_blocks(device)), 1, 1)
        args = (logits, row_stats[0], row_stats[1], target, weight, weight_sum, scale_array,
                np.int64(scale_stride), scalar(dtype, scale_mul), dlogits, np.int64(n_rows),
                np.int64(n_cols), np.int64(ignore_index),
                scalar(dtype, label_smoothing))  # fmt: skip
        backend.launch(
            "fused", dtype, "softmax_xent_bwd", grid, (row_threads(n_cols), 1, 1), args, device
        )
    return dlogits
