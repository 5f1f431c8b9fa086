"""SyncBatchNorm: batch normalization whose training statistics span every rank of a process
group (PyTorch's ``torch.nn.SyncBatchNorm``), and ``convert_sync_batchnorm``.

In training each rank sums its input per channel (sum, sum of squares, element count) and one
all_reduce makes those sums global, so the mean and variance are those of the whole global
batch; backward all_reduces the two per-channel sums the input gradient needs (of the upstream
gradient and of its product with the normalized input), so the input gradient is that of the sum
of every rank's loss. The weight and bias gradients stay local: DistributedDataParallel averages
them with the other parameters, as in PyTorch. In eval mode, or without an initialized process
group of more than one rank, it is BatchNorm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.nn.module import Module
from gradflow.nn.normalization import _BatchNorm, _InstanceNorm
from gradflow.ops import normalization as norm_ops
from gradflow.tensor import Tensor


def _channel_axes(ndim: int) -> tuple[int, ...]:
    return (0, *range(2, ndim))


def _per_channel(a: Any, ndim: int) -> Any:
    return a.reshape((1, -1) + (1,) * (ndim - 2))


def global_batch_stats(x: Any, all_reduce_sum: Callable[[Any], Any]) -> tuple[Any, Any, int]:
    """Per-channel mean and (biased) variance of the array x (N, C, ...) over every rank, with
    the global element count per channel: one all_reduce of [sum, sum of squares, count],
    accumulated in float64."""
    xp = get_array_module(x)
    axes = _channel_axes(x.ndim)
    channels = x.shape[1]
    local = xp.empty(2 * channels + 1, dtype=xp.float64)
    local[:channels] = x.sum(axis=axes, dtype=xp.float64)
    local[channels:-1] = (x * x).sum(axis=axes, dtype=xp.float64)
    local[-1] = x.size // channels if channels else 0
    total = all_reduce_sum(local)
    count = round(float(total[-1]))
    mean = total[:channels] / count
    var = xp.maximum(total[channels:-1] / count - mean * mean, 0.0)
    return mean, var, count


class SyncBatchNormFunction(Function):
    """y = (x - mean) * invstd * weight + bias with mean and invstd given (global statistics);
    backward all_reduces the per-channel sums of dy and dy * xhat through `all_reduce_sum`."""

    op_name = "sync_batch_norm"
    all_reduce_sum: Any
    count: int

    def forward(self, x, weight, bias, mean, invstd):
        ndim = x.ndim
        xhat = (x - _per_channel(mean, ndim)) * _per_channel(invstd, ndim)
        out = xhat if weight is None else xhat * _per_channel(weight, ndim)
        if bias is not None:
            out = out + _per_channel(bias, ndim)
        self.save_for_backward(xhat, invstd, weight)
        return out

    def backward(self, grad):
        xhat, invstd, weight = self.saved_arrays
        xp = get_array_module(grad)
        ndim = grad.ndim
        axes = _channel_axes(ndim)
        need_x, need_w, need_b = self.needs_input_grad[:3]
        sum_dy = grad.sum(axis=axes)
        sum_dy_xhat = (grad * xhat).sum(axis=axes)
        gx = None
        if need_x:
            channels = sum_dy.shape[0]
            both = xp.concatenate([sum_dy, sum_dy_xhat]).astype(xp.float64)
            total = self.all_reduce_sum(both)
            mean_dy = (total[:channels] / self.count).astype(grad.dtype)
            mean_dy_xhat = (total[channels:] / self.count).astype(grad.dtype)
            scale = invstd if weight is None else invstd * weight
            gx = grad - _per_channel(mean_dy, ndim) - xhat * _per_channel(mean_dy_xhat, ndim)
            gx = gx * _per_channel(scale, ndim)
        gw = sum_dy_xhat if need_w else None
        gb = sum_dy if need_b else None
        return gx, gw, gb, None, None


def sync_batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    momentum: float,
    eps: float,
    all_reduce_sum: Callable[[Any], Any],
) -> Tensor:
    """Training-mode batch norm with the statistics of every rank (through `all_reduce_sum`,
    which sums a float64 array over the ranks and returns the result); updates the running
    statistics in place (unbiased variance of the global batch) when given."""
    x = input.array
    mean, var, count = global_batch_stats(x, all_reduce_sum)
    if count <= 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size "
            f"{tuple(input.shape)} (global count {count} per channel)"
        )
    dtype = x.dtype
    invstd = ((var + eps) ** -0.5).astype(dtype)
    if running_mean is not None:
        running_mean.array[...] = (1 - momentum) * running_mean.array + momentum * mean
    if running_var is not None:
        unbiased = var * (count / (count - 1))
        running_var.array[...] = (1 - momentum) * running_var.array + momentum * unbiased
    return SyncBatchNormFunction.apply(
        input,
        weight,
        bias,
        mean.astype(dtype),
        invstd,
        all_reduce_sum=all_reduce_sum,
        count=count,
    )


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over (N, C, ...) whose training statistics are those of the batch on
    every rank of `process_group` (the default group when None); see the module docstring.
    In eval mode, or when no process group is initialized (or it has one rank), it computes
    exactly what BatchNorm1d/2d/3d do (eval without running statistics normalizes with the
    local batch's, as PyTorch's does)."""

    _ranks = (2, 3, 4, 5)
    _layout = "(N, C, ...)"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _world_size(self) -> int:
        from gradflow import distributed as dist

        if not dist.is_initialized():
            return 1
        if self.process_group is None:
            return dist.get_world_size()
        return dist.get_world_size(self.process_group)

    def _all_reduce_sum(self, array: Any) -> Any:
        from gradflow import distributed as dist

        t = Tensor._wrap(array)
        if self.process_group is None:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        else:
            dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self.process_group)
        return t.array

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"SyncBatchNorm: expected a Tensor, got {type(x).__name__}")
        if x.ndim < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input (got {x.ndim}D input)")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"SyncBatchNorm({self.num_features}): expected {self.num_features} channels in "
                f"dim 1, got input of shape {tuple(x.shape)}"
            )
        # as PyTorch: only training synchronizes (eval without running stats uses the local batch)
        if not (self.training and self._world_size() > 1):
            return self._batch_norm(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        counting = self.track_running_stats
        if counting and self.momentum is None:
            momentum = 1.0 / (float(self.num_batches_tracked.array) + 1)
        out = sync_batch_norm(
            x,
            self.running_mean if counting else None,
            self.running_var if counting else None,
            self.weight,
            self.bias,
            momentum,
            self.eps,
            self._all_reduce_sum,
        )
        if counting:
            self.num_batches_tracked.array += 1
        return out

    def _batch_norm(self, x: Tensor) -> Tensor:
        """BatchNorm's computation (a single process, or eval mode)."""
        momentum = 0.0 if self.momentum is None else self.momentum
        counting = self.training and self.track_running_stats
        if counting and self.momentum is None:
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
        if counting:
            self.num_batches_tracked.array += 1
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """`module` with every BatchNorm1d/2d/3d in it (itself included) replaced by a
        SyncBatchNorm holding the same weight and bias Parameters, running statistics and
        training mode; returns the module (a new one when `module` itself is a BatchNorm)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, _InstanceNorm | cls):
            out = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
            )
            if module.affine:
                out.weight = module.weight
                out.bias = module.bias
            if module.track_running_stats:
                out.running_mean = module.running_mean
                out.running_var = module.running_var
                out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        del module
        return out


convert_sync_batchnorm = SyncBatchNorm.convert_sync_batchnorm

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm", "sync_batch_norm"]
