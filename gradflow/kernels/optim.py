"""Launchers for kernels/optim.cu: one launch updates every tensor of a parameter group."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradflow.kernels._common import (
    BLOCK,
    KernelBackend,
    check_contiguous,
    check_float_arrays,
    check_shape,
    grid_1d,
    resolve_backend,
    scalar,
)


def _tensor_tables(
    launcher: str, backend: KernelBackend, params: Sequence[Any], **lists: Sequence[Any] | None
) -> tuple[Any, Any, list[Any], int] | None:
    """Checks a group and uploads its tables: (dtype, device, [address tables], total size).

    Returns None for an empty group. The address tables follow the order (params, *lists);
    a list given as None gets a None table.
    """
    params = list(params)
    for name, arrays in lists.items():
        if arrays is not None and len(arrays) != len(params):
            raise ValueError(
                f"{launcher}: '{name}' has {len(arrays)} arrays but 'params' has {len(params)}; "
                "pass one per parameter"
            )
    if not params:
        return None
    named = {f"params[{i}]": p for i, p in enumerate(params)}
    for name, arrays in lists.items():
        named.update({f"{name}[{i}]": a for i, a in enumerate(arrays or ())})
    dtype, device = check_float_arrays(launcher, backend, **named)
    for name, x in named.items():
        index = int(name[name.index("[") + 1 : -1])
        check_shape(launcher, name, x, params[index].shape, f"the shape of 'params[{index}]'")
        check_contiguous(launcher, name, x)
    prefix = np.zeros(len(params) + 1, dtype=np.int64)
    np.cumsum([p.size for p in params], out=prefix[1:])
    tables = [backend.upload(prefix, device)]
    for arrays in (params, *lists.values()):
        if arrays is None:
            tables.append(None)
        else:
            addresses = np.array([backend.address(a) for a in arrays], dtype=np.uint64)
            tables.append(backend.upload(addresses, device))
    return dtype, device, tables, int(prefix[-1])


def sgd_step_multi(
    params: Sequence[Any],
    grads: Sequence[Any],
    bufs: Sequence[Any] | None,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    first_step: bool = False,
    backend: KernelBackend | None = None,
) -> None:
    """One torch.optim.SGD step over a group, in place (params, and bufs when momentum != 0).

    bufs are the momentum buffers (contiguous, shaped like params; None when momentum == 0);
    pass first_step=True on the step that creates them: the kernel then sets buf = d, as
    PyTorch does, so they may start uninitialized.
    """
    launcher = "sgd_step_multi"
    backend = resolve_backend(backend)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{launcher}: nesterov needs momentum > 0 and dampening == 0")
    if momentum != 0 and bufs is None:
        raise ValueError(f"{launcher}: momentum={momentum} needs momentum buffers in 'bufs'")
    group = _tensor_tables(
        launcher, backend, params, grads=grads, bufs=bufs if momentum != 0 else None
    )
    if group is None:
        return
    dtype, device, (prefix, p_table, g_table, b_table), total = group
    if total:
        grid = (grid_1d(backend, device, total), 1, 1)
        args = (p_table, g_table, b_table, prefix, np.int32(len(params)), scalar(dtype, lr),
                scalar(dtype, momentum), scalar(dtype, dampening), scalar(dtype, weight_decay),
                np.int32(nesterov), np.int32(first_step))  # fmt: skip
        backend.launch("optim", dtype, "sgd_step", grid, (BLOCK, 1, 1), args, device)


def adam_step_multi(
    params: Sequence[Any],
    grads: Sequence[Any],
    exp_avgs: Sequence[Any],
    exp_avg_sqs: Sequence[Any],
    *,
    lr: float,
    step: int,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    backend: KernelBackend | None = None,
) -> None:
    """One torch.optim.Adam (decoupled=False) or AdamW (decoupled=True) step, in place.

    ``step`` is the group's step count after this update (1 on the first call); every tensor
    of one launch shares it, so tensors whose counts differ go in separate calls. exp_avgs and
    exp_avg_sqs start as zeros, as in PyTorch.
    """
    launcher = "adam_step_multi"
    backend = resolve_backend(backend)
    if step < 1:
        raise ValueError(f"{launcher}: step must be >= 1 (counting this step), got {step}")
    group = _tensor_tables(
        launcher, backend, params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs
    )
    if group is None:
        return
    dtype, device, (prefix, p_table, g_table, m_table, v_table), total = group
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    if total:
        grid = (grid_1d(backend, device, total), 1, 1)
        args = (p_table, g_table, m_table, v_table, prefix, np.int32(len(params)),
                *(scalar(dtype, v) for v in (lr, beta1, beta2, eps, weight_decay)),
                np.int32(decoupled), scalar(dtype, step_size),
                scalar(dtype, bias_correction2_sqrt))  # fmt: skip
        backend.launch("optim", dtype, "adam_step", grid, (BLOCK, 1, 1), args, device)
