"""Normalization layers: BatchNorm1d, BatchNorm2d (running statistics) and LayerNorm.

The computation is in gradflow/ops/normalization.py (one graph node per call).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradflow import creation, dtypes
from gradflow.nn import init
from gradflow.nn.module import Module
from gradflow.nn.parameter import Parameter
from gradflow.ops import normalization as norm_ops
from gradflow.tensor import Tensor


def _register_affine(
    module: Module, affine: bool, bias: bool, shape: Any, device: Any, dtype: Any
) -> None:
    """weight (ones) and bias (zeros) of `shape`; None where `affine` (or `bias`) is off."""
    weight = creation.ones(shape, device=device, dtype=dtype) if affine else None
    module.register_parameter("weight", None if weight is None else Parameter(weight))
    bias_value = creation.zeros(shape, device=device, dtype=dtype) if affine and bias else None
    module.register_parameter("bias", None if bias_value is None else Parameter(bias_value))


class _BatchNorm(Module):
    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        if not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(
                f"{type(self).__name__}: num_features must be a positive int, got {num_features!r}"
            )
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _register_affine(self, affine, bias, num_features, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, device=device,
                                                                dtype=dtype))  # fmt: skip
            self.register_buffer("running_var", creation.ones(num_features, device=device,
                                                              dtype=dtype))  # fmt: skip
            self.register_buffer("num_batches_tracked",
                                 creation.zeros((), device=device, dtype=dtypes.int64))  # fmt: skip
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.array[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        layer = type(self).__name__
        if not isinstance(x, Tensor) or x.ndim not in self._ranks:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{layer}: expected input of shape {self._layout}, got shape {got}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{layer}({self.num_features}): expected {self.num_features} channels in dim 1, "
                f"got input of shape {tuple(x.shape)}"
            )
        momentum = 0.0 if self.momentum is None else self.momentum
        counting = self.training and self.track_running_stats
        if counting and self.momentum is None:  # cumulative moving average
            momentum = 1.0 / (float(self.num_batches_tracked.array) + 1)
        use_batch_stats = self.training or not self.track_running_stats
        track = not self.training or self.track_running_stats
        out = norm_ops.batch_norm(
            x,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            use_batch_stats,
            momentum,
            self.eps,
        )
        if counting:  # after the op: a call that raises leaves the count as it was
            self.num_batches_tracked.array += 1
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L): per channel, batch statistics in training
    (running statistics updated with `momentum`), running statistics in eval mode."""

    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W), per channel (see BatchNorm1d)."""

    _ranks = (4,)
    _layout = "(N, C, H, W)"


class LayerNorm(Module):
    """Normalize over the trailing `normalized_shape` dims of each sample, then scale and shift
    (weight starts at 1, bias at 0)."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _register_affine(self, elementwise_affine, bias, self.normalized_shape, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        n = len(self.normalized_shape)
        if not isinstance(x, Tensor) or tuple(x.shape[x.ndim - n :]) != self.normalized_shape:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            trailing = ", ".join(map(str, self.normalized_shape))
            raise ValueError(f"LayerNorm: expected input of shape (*, {trailing}), got shape {got}")
        return norm_ops.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Normalize each sample over groups of channels (num_groups must divide num_channels);
    per-channel weight and bias start at 1 and 0."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                f"({num_groups})"
            )
        self.num_groups, self.num_channels, self.eps, self.affine = (
            num_groups, num_channels, eps, affine,
        )  # fmt: skip
        _register_affine(self, affine, bias, num_channels, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[1] != self.num_channels:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"GroupNorm: expected input of shape (N, {self.num_channels}, *), got shape {got}"
            )
        return norm_ops.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class BatchNorm3d(_BatchNorm):
    """Batch normalization over (N, C, D, H, W), per channel (see BatchNorm1d)."""

    _ranks = (5,)
    _layout = "(N, C, D, H, W)"


class _InstanceNorm(_BatchNorm):
    """Instance normalization: statistics per (sample, channel) over the spatial dims. PyTorch's
    defaults: affine=False, track_running_stats=False; unbatched inputs have no N dim."""

    _spatial = 1

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        layer, n = type(self).__name__, self._spatial
        if not isinstance(x, Tensor) or x.ndim not in (n + 1, n + 2):
            got = f"{x.ndim}D" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{layer}: expected {n + 1}D or {n + 2}D input (got {got} input)")
        unbatched = x.ndim == n + 1
        feature_dim = 0 if unbatched else 1
        if x.shape[feature_dim] != self.num_features and self.affine:
            raise ValueError(
                f"{layer}: expected input's size at dim={feature_dim} to match num_features "
                f"({self.num_features}), but got: {x.shape[feature_dim]}."
            )
        if unbatched:
            x = x.unsqueeze(0)
        out = norm_ops.instance_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over (N, C, L) or unbatched (C, L) inputs."""


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over (N, C, H, W) or unbatched (C, H, W) inputs."""

    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over (N, C, D, H, W) or unbatched (C, D, H, W) inputs."""

    _spatial = 3


class RMSNorm(Module):
    """Root-mean-square normalization over the trailing `normalized_shape` dims, times a
    weight (starts at 1); eps=None uses the input dtype's machine epsilon."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        weight = creation.ones(self.normalized_shape, device=device, dtype=dtype)
        self.register_parameter("weight", Parameter(weight) if elementwise_affine else None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return norm_ops.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class LocalResponseNorm(Module):
    """Local response normalization across neighbouring channels (see F.local_response_norm)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        return norm_ops.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
