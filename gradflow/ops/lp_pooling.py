"""Power-average pooling: lp_pool1d/2d, composites of avg_pool (max_pool for p = inf) and
powers, with PyTorch's definition; no node of their own, so the memory is that of the ops
they are built from.
"""

from __future__ import annotations

import math
from typing import Any

from gradflow.ops._util import float_input
from gradflow.ops.pooling import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from gradflow.ops.window import int_tuple
from gradflow.tensor import Tensor


def _lp_pool(op: str, x: Any, norm_type: float, kernel_size: Any, stride: Any, ceil_mode: bool,
             dims: int) -> Tensor:  # fmt: skip
    x = float_input(x, op)
    kernel = int_tuple(kernel_size, dims, "kernel_size", op, 1)
    pool_max = max_pool2d if dims == 2 else max_pool1d
    if norm_type == float("inf"):
        return pool_max(x.abs(), kernel, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -pool_max(-x.abs(), kernel, stride, 0, 1, ceil_mode)
    pool_avg = avg_pool2d if dims == 2 else avg_pool1d
    out = pool_avg(x.pow(norm_type), kernel, stride, 0, ceil_mode)
    # sign * relu(abs): PyTorch's form, whose gradient is 0 where a window's power sum is 0.
    return (out.sign() * out.abs().relu() * math.prod(kernel)).pow(1.0 / norm_type)


def lp_pool2d(
    input: Tensor,
    norm_type: float,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """2-D power-average pooling: ``(sum over the window of x ** p) ** (1 / p)`` with
    p = norm_type (inf: max pooling of |x|). A composite of avg_pool2d and powers.

    >>> import gradflow
    >>> lp_pool2d(gradflow.ones(1, 1, 2, 2) * 3, 2, 2).tolist()
    [[[[6.0]]]]
    """
    return _lp_pool("lp_pool2d", input, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool1d(
    input: Tensor,
    norm_type: float,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """1-D power-average pooling over (N, C, L) or (C, L) inputs (see :func:`lp_pool2d`)."""
    return _lp_pool("lp_pool1d", input, norm_type, kernel_size, stride, ceil_mode, 1)
