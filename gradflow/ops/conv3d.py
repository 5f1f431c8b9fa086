"""3-D convolutions: conv3d and conv_transpose3d over (N, C, D, H, W) or unbatched
(C, D, H, W) inputs, one graph node each (bias included), PyTorch's semantics.

im2col by kernel offset in the array module's own operations, no kernels of ours: the columns
[N, C*kd*kh*kw, OD*OH*OW] are built by one strided-slice copy per kernel offset (the same code
on CuPy), one batched GEMM per group does the rest. conv_transpose3d is conv3d's input
gradient run forward, as conv_transpose2d is conv2d's.

Memory: each op keeps its input (only when the weight needs a gradient) and its weight (only
when the input needs one); the columns are kd*kh*kw times the input and are rebuilt in
backward, never kept.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops._util import float_input
from gradflow.ops.conv import _apply, _check_conv_weight
from gradflow.ops.window import (
    check_output_size,
    conv_output_size,
    conv_padding,
    int_tuple,
    transposed_output_size,
)
from gradflow.tensor import Tensor


class _Window3(NamedTuple):
    """A 3-D conv's geometry: per dim kernel, stride, padding before and after, dilation,
    output size."""

    kernel: tuple
    stride: tuple
    before: tuple
    after: tuple
    dilation: tuple
    out: tuple

    def offsets(self) -> list:
        kd, kh, kw = self.kernel
        return [(a, b, c) for a in range(kd) for b in range(kh) for c in range(kw)]

    def offset_slices(self, offset: tuple) -> tuple:
        return tuple(
            slice(i * d, i * d + (o - 1) * s + 1, s)
            for i, d, s, o in zip(offset, self.dilation, self.stride, self.out)
        )

    def frame_shape(self, sizes: tuple) -> tuple:
        return tuple(b + n + a for b, n, a in zip(self.before, sizes, self.after))

    def inside(self, sizes: tuple) -> tuple:
        return (..., *(slice(b, b + n) for b, n in zip(self.before, sizes)))


def _columns3(x: Any, window: _Window3) -> Any:
    """x [N, C, D, H, W] -> cols [N, C*K, L] (rows (c, kernel offset), columns the outputs)."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    if any(window.before) or any(window.after):
        frame = xp.zeros((n, c, *window.frame_shape(x.shape[2:])), dtype=x.dtype)
        frame[window.inside(x.shape[2:])] = x
    else:
        frame = x
    offsets = window.offsets()
    cols = xp.empty((n, c, len(offsets), *window.out), dtype=x.dtype)
    for k, offset in enumerate(offsets):
        cols[:, :, k] = frame[(..., *window.offset_slices(offset))]
    return cols.reshape(n, c * len(offsets), -1)


def _col2im3(dcols: Any, window: _Window3, x_shape: tuple) -> Any:
    """The adjoint of _columns3: dx [N, C, D, H, W] from dcols [N, C*K, L]."""
    xp = get_array_module(dcols)
    n, c = x_shape[:2]
    offsets = window.offsets()
    blocks = dcols.reshape(n, c, len(offsets), *window.out)
    frame = xp.zeros((n, c, *window.frame_shape(x_shape[2:])), dtype=dcols.dtype)
    for k, offset in enumerate(offsets):
        frame[(..., *window.offset_slices(offset))] += blocks[:, :, k]
    return xp.ascontiguousarray(frame[window.inside(x_shape[2:])])


def _conv3d_forward(x: Any, weight: Any, window: _Window3, groups: int) -> Any:
    """conv3d of x [N, C, D, H, W] with weight [O, C/G, kd, kh, kw], no bias."""
    n, o = x.shape[0], weight.shape[0]
    cols = _columns3(x, window)  # [N, C*K, L]
    out = weight.reshape(groups, o // groups, -1) @ cols.reshape(n, groups, -1, cols.shape[-1])
    return out.reshape(n, o, *window.out)


def _conv3d_input_grad(gy: Any, weight: Any, window: _Window3, groups: int, x_shape) -> Any:
    """The input gradient of a conv3d: col2im(W^T @ dY), gy [N, O, *out]."""
    n, o = gy.shape[:2]
    g3 = gy.reshape(n, groups, o // groups, -1)  # [N, G, O/G, L]
    dcols = weight.reshape(groups, o // groups, -1).transpose(0, 2, 1) @ g3  # [N, G, C/G*K, L]
    return _col2im3(dcols.reshape(n, -1, g3.shape[-1]), window, x_shape)


def _conv3d_weight_grad(gy: Any, x: Any, window: _Window3, groups: int, w_shape) -> Any:
    """The weight gradient of a conv3d: dY @ cols^T summed over the batch."""
    n, o = gy.shape[:2]
    g3 = gy.reshape(n, groups, o // groups, -1)
    cols = _columns3(x, window)
    cols = cols.reshape(n, groups, -1, cols.shape[-1])  # [N, G, C/G*K, L]
    return (g3 @ cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w_shape)


class Conv3dFunction(Function):
    """conv3d as one node (bias included); unbatched inputs arrive with a unit batch dim."""

    op_name = "conv3d"
    groups: int
    w_shape: tuple
    window: _Window3

    def forward(self, x, weight, bias=None):
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        self.x_shape = x.shape
        out = _conv3d_forward(x, weight, self.window, self.groups)
        if bias is not None:
            out += bias.reshape(-1, 1, 1, 1)
        return out

    def backward(self, grad):
        x, weight = self.saved_arrays
        need, g, window = self.needs_input_grad, self.groups, self.window
        dx = dw = db = None
        if need[1]:
            dw = _conv3d_weight_grad(grad, x, window, g, self.w_shape)
        if need[0]:
            dx = _conv3d_input_grad(grad, weight, window, g, self.x_shape)
        if len(need) == 3 and need[2]:
            db = grad.sum(axis=(0, 2, 3, 4))
        return (dx, dw) if len(need) == 2 else (dx, dw, db)


class ConvTranspose3dFunction(Function):
    """conv_transpose3d as one node: conv3d's input gradient run forward (the window is that
    of the conv3d from the output back to the input)."""

    op_name = "conv_transpose3d"
    groups: int
    out_shape: tuple
    w_shape: tuple
    window: _Window3

    def forward(self, x, weight, bias=None):
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        out = _conv3d_input_grad(x, weight, self.window, self.groups, self.out_shape)
        if bias is not None:
            out += bias.reshape(-1, 1, 1, 1)
        return out

    def backward(self, grad):
        x, weight = self.saved_arrays
        need, g, window = self.needs_input_grad, self.groups, self.window
        dx = dw = db = None
        if need[0]:
            dx = _conv3d_forward(grad, weight, window, g)
        if need[1]:  # conv3d's weight gradient with the roles of input and output swapped
            dw = _conv3d_weight_grad(x, grad, window, g, self.w_shape)
        if len(need) == 3 and need[2]:
            db = grad.sum(axis=(0, 2, 3, 4))
        return (dx, dw) if len(need) == 2 else (dx, dw, db)


def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] | str = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """3-D convolution (cross-correlation) over (N, C_in, D, H, W) or unbatched
    (C_in, D, H, W) inputs; weight (C_out, C_in / groups, kD, kH, kW). Arguments as
    :func:`conv2d` (ints or triples; padding also "same" or "valid").

    >>> import gradflow
    >>> conv3d(gradflow.ones(1, 1, 3, 3, 3), gradflow.ones(2, 1, 2, 2, 2)).shape
    gradflow.Size([1, 2, 2, 2, 2])
    """
    op = "conv3d"
    x = float_input(input, op)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{op}: expected a 5-D input (N, C, D, H, W) or a 4-D unbatched input (C, D, H, W), "
            f"got input of shape {tuple(x.shape)}"
        )
    _check_conv_weight(op, x, weight, bias, groups, 3, transposed=False)
    kernel = tuple(weight.shape[2:])
    stride = int_tuple(stride, 3, "stride", op, 1)
    dilation = int_tuple(dilation, 3, "dilation", op, 1)
    before, after = conv_padding(padding, kernel, dilation, stride, op)
    out = tuple(map(conv_output_size, x.shape[-3:], before, after, kernel, stride, dilation))
    check_output_size(
        op, x, out,
        f"weight of shape {tuple(weight.shape)} (dilation {dilation}, padding {before}+{after})",
    )  # fmt: skip
    window = _Window3(kernel, stride, before, after, dilation, out)
    batched = x.ndim == 5
    x5 = x if batched else x.unsqueeze(0)
    inputs = (x5, weight) if bias is None else (x5, weight, bias)
    y = _apply(Conv3dFunction, inputs, window=window, groups=groups,
               w_shape=tuple(weight.shape))  # fmt: skip
    return y if batched else y.squeeze(0)


def conv_transpose3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] = 0,
    output_padding: int | tuple[int, int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int, int] = 1,
) -> Tensor:
    """Transposed 3-D convolution over (N, C_in, D, H, W) or (C_in, D, H, W) inputs; weight
    (C_in, C_out / groups, kD, kH, kW). Arguments as :func:`conv_transpose2d` (ints or
    triples).

    >>> import gradflow
    >>> conv_transpose3d(gradflow.ones(1, 2, 2, 2, 2), gradflow.ones(2, 3, 2, 2, 2), stride=2).shape
    gradflow.Size([1, 3, 4, 4, 4])
    """
    op = "conv_transpose3d"
    x = float_input(input, op)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{op}: expected a 5-D input (N, C, D, H, W) or a 4-D unbatched input (C, D, H, W), "
            f"got input of shape {tuple(x.shape)}"
        )
    _check_conv_weight(op, x, weight, bias, groups, 3, transposed=True)
    kernel = tuple(weight.shape[2:])
    stride = int_tuple(stride, 3, "stride", op, 1)
    dilation = int_tuple(dilation, 3, "dilation", op, 1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding {padding!r} is not supported; pass an int or a triple")
    padding = int_tuple(padding, 3, "padding", op, 0)
    output_padding = int_tuple(output_padding, 3, "output_padding", op, 0)
    for extra, s, d in zip(output_padding, stride, dilation):
        if extra >= s and extra >= d:
            raise ValueError(
                f"{op}: output_padding {output_padding} must be smaller than either stride "
                f"{stride} or dilation {dilation}"
            )
    in_sizes = tuple(x.shape[-3:])
    if 0 in in_sizes:
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} has an empty spatial dim; give each sample "
            "at least one pixel per spatial dim"
        )
    out = tuple(
        map(transposed_output_size, in_sizes, kernel, stride, padding, dilation, output_padding)
    )
    check_output_size(
        op, x, out,
        f"weight of shape {tuple(weight.shape)} with stride {stride}, padding {padding}, "
        f"dilation {dilation} and output_padding {output_padding}",
    )  # fmt: skip
    # The conv3d from the output back to the input (output_padding's extra rows lie past its
    # last window: they get no value and no gradient, as in PyTorch).
    window = _Window3(kernel, stride, padding, padding, dilation, in_sizes)
    batched = x.ndim == 5
    x5 = x if batched else x.unsqueeze(0)
    out_shape = (x5.shape[0], weight.shape[1] * groups, *out)
    inputs = (x5, weight) if bias is None else (x5, weight, bias)
    y = _apply(ConvTranspose3dFunction, inputs, window=window, groups=groups,
               out_shape=out_shape, w_shape=tuple(weight.shape))  # fmt: skip
    return y if batched else y.squeeze(0)
