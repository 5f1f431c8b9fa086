"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d (PyTorch's arguments and init).

The computation is in gradflow/ops/conv.py (im2col + one GEMM; CUDA kernels on the GPU).
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow import creation
from gradflow.nn import init
from gradflow.nn.module import Module, check_size
from gradflow.nn.parameter import Parameter
from gradflow.ops import conv as conv_ops
from gradflow.ops import conv3d as conv3d_ops
from gradflow.ops.padding import pad
from gradflow.tensor import Tensor


def _tuple(value: Any, n: int, name: str, layer: str, minimum: int) -> tuple[int, ...]:
    """An int or a tuple (or list) of n ints, each >= minimum, as an n-tuple; else an error
    naming the layer and the argument: ValueError for a wrong length, TypeError for a value
    that is not an int, RuntimeError for one below minimum (PyTorch's type for a zero or
    negative kernel size, stride or dilation and a negative padding)."""
    if isinstance(value, int | numpy.integer) and not isinstance(value, bool):
        values = (value,) * n
    elif isinstance(value, tuple | list):
        values = tuple(value)
    else:
        values = None
    if values is None or not all(
        isinstance(v, int | numpy.integer) and not isinstance(v, bool) for v in values
    ):
        raise TypeError(f"{layer}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if len(values) != n:
        raise ValueError(f"{layer}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in values):
        what = "positive" if minimum == 1 else "non-negative"
        raise RuntimeError(f"{layer}: {name} must be {what} (each >= {minimum}), got {value!r}")
    return tuple(int(v) for v in values)


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What the conv layers share: argument checks, weight and bias, init, input checks, repr.
    The constructor takes Conv2d's (and Conv1d's) arguments."""

    _dims = 2
    _transposed = False
    _function = staticmethod(conv_ops.conv2d)  # each rank's op

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        output_padding: Any = 0,
    ):
        super().__init__()
        layer = type(self).__name__
        n = self._dims
        in_channels = check_size(layer, "in_channels", in_channels)
        out_channels = check_size(layer, "out_channels", out_channels)
        if isinstance(groups, bool) or not isinstance(groups, int | numpy.integer) or groups <= 0:
            raise ValueError(f"{layer}: groups must be a positive int, got {groups!r}")
        groups = int(groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{layer}: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"both be divisible by groups ({groups})"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"{layer}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}"
            )
        if padding_mode != "zeros" and self._transposed:
            raise ValueError(f'Only "zeros" padding mode is supported for {layer}')
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"{layer}: padding must be 'same', 'valid', an int or a tuple, got {padding!r}"
                )
        else:
            padding = _tuple(padding, n, "padding", layer, 0)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", layer, 1)
        self.stride = _tuple(stride, n, "stride", layer, 1)
        if padding == "same" and any(s != 1 for s in self.stride):
            raise ValueError(
                f"{layer}: padding='same' needs stride 1 (as in PyTorch), got stride "
                f"{self.stride}; pass an explicit padding for a strided convolution"
            )
        self.padding = padding
        self.dilation = _tuple(dilation, n, "dilation", layer, 1)
        self.output_padding = _tuple(output_padding, n, "output_padding", layer, 0)
        for extra, s, d in zip(self.output_padding, self.stride, self.dilation):
            if extra >= s and extra >= d:
                raise RuntimeError(
                    f"{layer}: output_padding {self.output_padding} must be smaller than either "
                    f"stride {self.stride} or dilation {self.dilation} (in each dim)"
                )
        self.padding_mode = padding_mode
        if self._transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(creation.empty(*shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.linear_default_(self.weight, self.bias)

    def _check_input(self, x: Tensor) -> None:
        n = self._dims
        if not isinstance(x, Tensor) or x.ndim not in (n + 1, n + 2):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            spatial = {1: "L", 2: "H, W", 3: "D, H, W"}[n]
            raise ValueError(
                f"{type(self).__name__}: expected a {n + 2}-D input (N, C, {spatial}) or an "
                f"unbatched {n + 1}-D input (C, {spatial}), got shape {got}"
            )
        channels = x.shape[-n - 1]
        if channels != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: expected {self.in_channels} input channels (dim "
                f"{x.ndim - n - 1}), got input of shape {tuple(x.shape)} with {channels}"
            )

    def _padded(self, x: Tensor) -> tuple[Tensor, Any]:
        """(input, padding) for the conv op: with padding_mode 'reflect', 'replicate' or
        'circular' the input is padded in that mode first and the conv pads nothing, as
        PyTorch does; with 'zeros' the conv pads."""
        if self.padding_mode == "zeros":
            return x, self.padding
        pads: list[int] = []
        for i in reversed(range(self._dims)):  # F.pad lists the last dim first
            if self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                pads += [total // 2, total - total // 2]
            elif self.padding == "valid":
                pads += [0, 0]
            else:
                pads += [self.padding[i], self.padding[i]]
        return pad(x, tuple(pads), mode=self.padding_mode), 0

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        x, padding = self._padded(x)
        return self._function(
            x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups
        )

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * self._dims:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self._dims:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._dims:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) or (C_in, L) inputs."""

    _dims = 1
    _function = staticmethod(conv_ops.conv1d)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) or (C_in, H, W) inputs.

    weight (C_out, C_in / groups, kH, kW) and bias (C_out,) start from PyTorch's defaults.
    padding may be an int, a pair, "valid" (none) or "same" (output as large as the input;
    stride 1 only).
    """


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution (the gradient of Conv2d with respect to its input), used to
    upsample. weight (C_in, C_out / groups, kH, kW)."""

    _transposed = True
    _function = staticmethod(conv_ops.conv_transpose2d)  # each rank's op

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ):
        if isinstance(padding, str):
            what = "a pair" if self._dims == 2 else f"a tuple of {self._dims}"
            raise ValueError(
                f"{type(self).__name__}: padding must be an int or {what}, got {padding!r}"
            )
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype,
                         output_padding=output_padding)  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self._function(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )


class Conv3d(_ConvNd):
    """3-D convolution over (N, C_in, D, H, W) or (C_in, D, H, W) inputs; weight
    (C_out, C_in / groups, kD, kH, kW)."""

    _dims = 3
    _function = staticmethod(conv3d_ops.conv3d)


class ConvTranspose1d(ConvTranspose2d):
    """Transposed 1-D convolution over (N, C_in, L) or (C_in, L) inputs; weight
    (C_in, C_out / groups, k)."""

    _dims = 1
    _function = staticmethod(conv_ops.conv_transpose1d)


class ConvTranspose3d(ConvTranspose2d):
    """Transposed 3-D convolution over (N, C_in, D, H, W) or (C_in, D, H, W) inputs; weight
    (C_in, C_out / groups, kD, kH, kW)."""

    _dims = 3
    _function = staticmethod(conv3d_ops.conv_transpose3d)
