"""Unpooling: max_unpool1d/2d/3d, the partial inverse of max pooling: each value written at
its index (max_pool's return_indices) in a zero output, one graph node.

Memory: keeps the int64 positions written, not the values.
"""

from __future__ import annotations

import math

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import float_input
from gradflow.ops.pooling import max_pool2d  # noqa: F401 (max_unpool2d's example uses it)
from gradflow.ops.window import int_tuple
from gradflow.tensor import Tensor


class MaxUnpoolFunction(Function):
    """max_unpool as one node: each value written at its flat index in a zero plane."""

    op_name = "max_unpool2d"
    dims: int
    in_shape: tuple
    out_shape: tuple

    def forward(self, x, index):
        xp = get_array_module(x)
        rows = math.prod(x.shape[: x.ndim - self.dims])
        plane = math.prod(self.out_shape[-self.dims :])
        positions = index.reshape(rows, -1) + xp.arange(rows, dtype=index.dtype)[:, None] * plane
        self.save_for_backward(positions)  # the int64 positions written, not the values
        out = xp.zeros(rows * plane, dtype=x.dtype)
        out[positions.reshape(-1)] = x.reshape(-1)
        return out.reshape(self.out_shape)

    def backward(self, g, *_):
        (positions,) = self.saved_arrays
        return g.reshape(-1)[positions.reshape(-1)].reshape(self.in_shape), None

    def backward_graph(self, g, *_):
        (positions,) = self.saved_arrays  # the gradient is picked there: an indexing op
        return g.reshape(-1)[positions.reshape(-1)].reshape(self.in_shape), None


def _max_unpool(op, x, indices, kernel_size, stride, padding, output_size, dims) -> Tensor:
    x = float_input(x, op)
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer Tensor (max_pool's return_indices)")
    if tuple(indices.shape) != tuple(x.shape):
        raise ValueError(
            f"{op}: Expected shape of indices to be same as that of the input tensor "
            f"({tuple(x.shape)}) but got indices tensor with shape: {tuple(indices.shape)}"
        )
    if x.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"{op}: expected a {dims + 1}-D or {dims + 2}-D input, got shape "
                         f"{tuple(x.shape)}")  # fmt: skip
    kernel = int_tuple(kernel_size, dims, "kernel_size", op, 1)
    stride = kernel if stride is None else int_tuple(stride, dims, "stride", op, 1)
    padding = int_tuple(padding, dims, "padding", op, 0)
    default = tuple((n - 1) * s - 2 * p + k for n, s, p, k in
                    zip(x.shape[-dims:], stride, padding, kernel))  # fmt: skip
    if output_size is None:
        out = default
    else:
        out = tuple(output_size)[-dims:]
        for d, (o, n, s) in enumerate(zip(out, default, stride)):
            if not n - s < o < n + s:
                raise ValueError(
                    f'invalid output_size "{tuple(output_size)}" (dim {d} must be between '
                    f"{n - s} and {n + s})"
                )
    out_shape = (*x.shape[:-dims], *out)
    return MaxUnpoolFunction.apply(x, indices.array, out_shape=out_shape, dims=dims,
                                   in_shape=tuple(x.shape), op_name=op)  # fmt: skip


def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    output_size: tuple[int, ...] | None = None,
) -> Tensor:
    """The partial inverse of max_pool2d: each value placed at its index (from
    ``return_indices=True``) in a zero (N, C, H_out, W_out) output, ``H_out = (H - 1)*stride -
    2*padding + kernel_size`` unless output_size is given.

    >>> import gradflow
    >>> y, i = max_pool2d(gradflow.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
    >>> max_unpool2d(y, i, 2)[0, 0, 1].tolist()
    [0.0, 5.0, 0.0, 7.0]
    """
    return _max_unpool("max_unpool2d", input, indices, kernel_size, stride, padding,
                       output_size, 2)  # fmt: skip


def max_unpool1d(
    input: Tensor,
    indices: Tensor,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    output_size: tuple[int, ...] | None = None,
) -> Tensor:
    """The partial inverse of max_pool1d (see :func:`max_unpool2d`)."""
    return _max_unpool("max_unpool1d", input, indices, kernel_size, stride, padding,
                       output_size, 1)  # fmt: skip


def max_unpool3d(
    input: Tensor,
    indices: Tensor,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: int | tuple[int, int, int] = 0,
    output_size: tuple[int, ...] | None = None,
) -> Tensor:
    """The partial inverse of max_pool3d (see :func:`max_unpool2d`)."""
    return _max_unpool("max_unpool3d", input, indices, kernel_size, stride, padding,
                       output_size, 3)  # fmt: skip
