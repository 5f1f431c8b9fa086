"""torch.nn.functional's pooling names that gradflow's pooling ops serve under another form:
``max_pool{1,2,3}d_with_indices`` and ``adaptive_max_pool{1,2,3}d_with_indices`` (always
(output, indices), whatever return_indices says, as in PyTorch), and ``lp_pool3d`` (the 3-D
power-average pooling, a composite of avg_pool3d or max_pool3d and powers like lp_pool1d/2d).
"""

from __future__ import annotations

import math
from typing import Any

from gradflow.ops import adaptive_pooling, pooling, pooling3d
from gradflow.ops._util import float_input
from gradflow.ops.window import int_tuple
from gradflow.tensor import Tensor


def _max_pool_with_indices(pool: Any, dims: int) -> Any:
    """max_pool{dims}d_with_indices: pool returning (output, indices) whatever
    return_indices says, as in PyTorch."""

    def with_indices(
        input: Tensor,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> tuple[Tensor, Tensor]:
        return pool(input, kernel_size, stride, padding, dilation, ceil_mode, True)

    return _named(with_indices, f"max_pool{dims}d")


def _adaptive_max_pool_with_indices(pool: Any, dims: int) -> Any:
    """adaptive_max_pool{dims}d_with_indices: pool returning (output, indices)."""

    def with_indices(
        input: Tensor, output_size: Any, return_indices: bool = False
    ) -> tuple[Tensor, Tensor]:
        return pool(input, output_size, True)

    return _named(with_indices, f"adaptive_max_pool{dims}d")


def _named(function: Any, pool_name: str) -> Any:
    function.__name__ = function.__qualname__ = f"{pool_name}_with_indices"
    function.__doc__ = (
        f"{pool_name} returning (output, indices) (return_indices is ignored, as in PyTorch)."
    )
    return function


max_pool1d_with_indices = _max_pool_with_indices(pooling.max_pool1d, 1)
max_pool2d_with_indices = _max_pool_with_indices(pooling.max_pool2d, 2)
max_pool3d_with_indices = _max_pool_with_indices(pooling3d.max_pool3d, 3)
adaptive_max_pool1d_with_indices = _adaptive_max_pool_with_indices(
    adaptive_pooling.adaptive_max_pool1d, 1
)
adaptive_max_pool2d_with_indices = _adaptive_max_pool_with_indices(
    adaptive_pooling.adaptive_max_pool2d, 2
)
adaptive_max_pool3d_with_indices = _adaptive_max_pool_with_indices(
    adaptive_pooling.adaptive_max_pool3d, 3
)


def lp_pool3d(
    input: Tensor,
    norm_type: float,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """3-D power-average pooling over (N, C, D, H, W) or (C, D, H, W) inputs:
    ``(sum over the window of x ** p) ** (1 / p)``, p = norm_type (inf: max pooling of |x|).

    >>> import gradflow
    >>> lp_pool3d(gradflow.ones(1, 1, 2, 2, 2) * 3, 2, 2).flatten().tolist()
    [8.485280990600586]
    """
    op = "lp_pool3d"
    x = float_input(input, op)
    kernel = int_tuple(kernel_size, 3, "kernel_size", op, 1)
    if norm_type == float("inf"):
        return pooling3d.max_pool3d(x.abs(), kernel, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -pooling3d.max_pool3d(-x.abs(), kernel, stride, 0, 1, ceil_mode)
    out = pooling3d.avg_pool3d(x.pow(norm_type), kernel, stride, 0, ceil_mode)
    # sign * relu(abs): PyTorch's form, whose gradient is 0 where a window's power sum is 0.
    return (out.sign() * out.abs().relu() * math.prod(kernel)).pow(1.0 / norm_type)
