"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (over (N, C, H, W) or (C, H, W)).

The computation is in gradflow/ops/pooling.py (strided views on the CPU, kernels on the GPU).
"""

from __future__ import annotations

from typing import Any

from gradflow.nn.module import Module
from gradflow.ops import adaptive_pooling, lp_pooling, pooling3d, unpooling
from gradflow.ops import pooling as pool_ops
from gradflow.ops.pooling_aliases import lp_pool3d
from gradflow.tensor import Tensor


def _check_input(layer: str, x: Any) -> None:
    if not isinstance(x, Tensor) or x.ndim not in (3, 4):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{layer}: expected a 4-D input (N, C, H, W) or a 3-D input (C, H, W), got shape {got}"
        )


class _MaxPool(Module):
    """What the max-pooling layers share: PyTorch's arguments, stored as given, and repr."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(_MaxPool):
    """The maximum over each kernel_size window (stride defaults to kernel_size)."""

    def forward(self, x: Tensor) -> Any:
        _check_input("MaxPool2d", x)
        return pool_ops.max_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )


class AvgPool2d(Module):
    """The mean over each kernel_size window (stride defaults to kernel_size)."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        _check_input("AvgPool2d", x)
        return pool_ops.avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptivePool(Module):
    _function: Any = None

    def __init__(self, output_size: Any):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._function(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptivePool):
    """Average pooling to a fixed output size, whatever the input's height and width."""

    _function = staticmethod(adaptive_pooling.adaptive_avg_pool2d)

    def forward(self, x: Tensor) -> Tensor:
        _check_input("AdaptiveAvgPool2d", x)
        return super().forward(x)


class MaxPool1d(_MaxPool):
    """The maximum over each kernel_size window of (N, C, L) or (C, L) inputs."""

    def forward(self, x: Tensor) -> Any:
        return pool_ops.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                   self.ceil_mode, self.return_indices)  # fmt: skip


class MaxPool3d(MaxPool1d):
    """The maximum over each kernel_size window of (N, C, D, H, W) or (C, D, H, W) inputs."""

    def forward(self, x: Tensor) -> Any:
        return pooling3d.max_pool3d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                    self.ceil_mode, self.return_indices)  # fmt: skip


def _single(value: Any) -> tuple:
    """PyTorch's AvgPool1d stores its arguments as 1-tuples (its repr shows them)."""
    return tuple(value) if isinstance(value, tuple | list) else (value,)


class AvgPool1d(Module):
    """The mean over each kernel_size window of (N, C, L) or (C, L) inputs."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ):
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return pool_ops.avg_pool1d(x, self.kernel_size, self.stride, self.padding,
                                   self.ceil_mode, self.count_include_pad)  # fmt: skip

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool3d(AvgPool2d):
    """The mean over each kernel_size window of (N, C, D, H, W) or (C, D, H, W) inputs."""

    def forward(self, x: Tensor) -> Tensor:
        return pooling3d.avg_pool3d(x, self.kernel_size, self.stride, self.padding,
                                    self.ceil_mode, self.count_include_pad,
                                    self.divisor_override)  # fmt: skip


class AdaptiveAvgPool1d(_AdaptivePool):
    """Average pooling of (N, C, L) or (C, L) inputs to a fixed output length."""

    _function = staticmethod(adaptive_pooling.adaptive_avg_pool1d)


class AdaptiveAvgPool3d(_AdaptivePool):
    """Average pooling of (N, C, D, H, W) or (C, D, H, W) inputs to a fixed output size."""

    _function = staticmethod(adaptive_pooling.adaptive_avg_pool3d)


class _AdaptiveMaxPool(_AdaptivePool):
    def __init__(self, output_size: Any, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, x: Tensor) -> Any:
        return type(self)._function(x, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """Max pooling of (N, C, L) or (C, L) inputs to a fixed output length."""

    _function = staticmethod(adaptive_pooling.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """Max pooling of (N, C, H, W) or (C, H, W) inputs to a fixed output size."""

    _function = staticmethod(adaptive_pooling.adaptive_max_pool2d)


class _MaxUnpool(Module):
    _dims = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        super().__init__()
        n = self._dims

        def tup(v):
            return tuple(v) if isinstance(v, tuple | list) else (v,) * n

        self.kernel_size = tup(kernel_size)
        self.stride = tup(stride if stride is not None else kernel_size)
        self.padding = tup(padding)

    def forward(self, x: Tensor, indices: Tensor, output_size: Any = None) -> Tensor:
        fn = getattr(unpooling, f"max_unpool{self._dims}d")
        return fn(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpool):
    """The partial inverse of MaxPool1d (takes its indices)."""

    _dims = 1


class MaxUnpool2d(_MaxUnpool):
    """The partial inverse of MaxPool2d (takes its indices)."""


class LPPool1d(Module):
    """Power-average pooling: (sum over each window of x ** norm_type) ** (1 / norm_type)."""

    _dims = 1

    def __init__(self, norm_type: float, kernel_size: Any, stride: Any = None,
                 ceil_mode: bool = False):  # fmt: skip
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        fn = lp_pooling.lp_pool2d if self._dims == 2 else lp_pooling.lp_pool1d
        return fn(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (
            f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"ceil_mode={self.ceil_mode}"
        )


class LPPool2d(LPPool1d):
    """2-D power-average pooling over (N, C, H, W) or (C, H, W) inputs."""

    _dims = 2


class LPPool3d(LPPool1d):
    """3-D power-average pooling over (N, C, D, H, W) or (C, D, H, W) inputs."""

    _dims = 3

    def forward(self, x: Tensor) -> Tensor:
        return lp_pool3d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    """Max pooling of (N, C, D, H, W) or (C, D, H, W) inputs to a fixed output size."""

    _function = staticmethod(adaptive_pooling.adaptive_max_pool3d)


class MaxUnpool3d(_MaxUnpool):
    """The partial inverse of MaxPool3d (takes its indices)."""

    _dims = 3
