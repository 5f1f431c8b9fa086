"""3-D convolutions: conv3d and conv_transpose3d over (N, C, D, H, W) or unbatched
(C, D, H, W) inputs, one graph node each (bias included), PyTorch's semantics.

On NumPy arrays without groups, gradflow/ops/conv3d_depth.py runs each as a conv2d over depth
slices (the depth taps as channels: conv.py's 2-D routes, Winograd's for 3x3). Otherwise
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

from gradflow.autograd.differentiable import graph_input
from gradflow.autograd.function import Function
from gradflow.backend import get_array_module
from gradflow.ops import conv3d_depth
from gradflow.ops._util import float_input
from gradflow.ops.conv import (
    _apply,
    _check_conv_weight,
    _check_output_padding,
    _transposed_sizes,
)
from gradflow.ops.window import (
    check_output_size,
    conv_output_size,
    conv_padding,
    int_tuple,
    offset_slices_3d,
    offsets_3d,
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

    offsets = offsets_3d
    offset_slices = offset_slices_3d

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
    if conv3d_depth.applies(x, groups):
        return conv3d_depth.forward(x, weight, window)
    n, o = x.shape[0], weight.shape[0]
    cols = _columns3(x, window)  # [N, C*K, L]
    out = weight.reshape(groups, o // groups, -1) @ cols.reshape(n, groups, -1, cols.shape[-1])
    return out.reshape(n, o, *window.out)


def _conv3d_input_grad(gy: Any, weight: Any, window: _Window3, groups: int, x_shape) -> Any:
    """The input gradient of a conv3d: col2im(W^T @ dY), gy [N, O, *out]."""
    if conv3d_depth.applies(gy, groups):
        return conv3d_depth.input_grad(gy, weight, window, x_shape)
    n, o = gy.shape[:2]
    g3 = gy.reshape(n, groups, o // groups, -1)  # [N, G, O/G, L]
    dcols = weight.reshape(groups, o // groups, -1).transpose(0, 2, 1) @ g3  # [N, G, C/G*K, L]
    return _col2im3(dcols.reshape(n, -1, g3.shape[-1]), window, x_shape)


def _conv3d_weight_grad(gy: Any, x: Any, window: _Window3, groups: int, w_shape) -> Any:
    """The weight gradient of a conv3d: dY @ cols^T summed over the batch."""
    if conv3d_depth.applies(x, groups):
        return conv3d_depth.weight_grad(gy, x, window, w_shape)
    n, o = gy.shape[:2]
    g3 = gy.reshape(n, groups, o // groups, -1)
    cols = _columns3(x, window)
    cols = cols.reshape(n, groups, -1, cols.shape[-1])  # [N, G, C/G*K, L]
    return (g3 @ cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w_shape)


class _Conv3dNode(Function):
    """What conv3d's and conv_transpose3d's nodes share: the arrays kept (the input only when
    the weight needs a gradient, the weight only when the input needs one), the bias added in
    forward and summed in backward. Unbatched inputs arrive with a unit batch dim."""

    groups: int
    w_shape: tuple
    window: _Window3

    def forward(self, x, weight, bias=None):
        need_x, need_w = self.needs_input_grad[:2]
        self.save_for_backward(x if need_w else None, weight if need_x else None)
        out = self._forward(x, weight)
        if bias is not None:
            out += bias.reshape(-1, 1, 1, 1)
        return out

    def backward(self, grad):
        x, weight = self.saved_arrays
        need = self.needs_input_grad
        dx, dw = self._input_and_weight_grads(grad, x, weight, need[0], need[1])
        if len(need) == 2:
            return dx, dw
        return dx, dw, grad.sum(axis=(0, 2, 3, 4)) if need[2] else None

    def backward_graph(self, grad):
        # backward's form on Tensors: _graph_grads builds dx and dW from ops that have their
        # own backward_graph, so the gradients differentiate again.
        x, weight = self.saved_arrays
        need = self.needs_input_grad
        p = {"window": self.window, "groups": self.groups, "w_shape": self.w_shape}
        dx, dw = self._graph_grads(grad, x, weight, need[0], need[1], p)
        if len(need) == 2:
            return dx, dw
        return dx, dw, grad.sum(dim=(0, 2, 3, 4)) if need[2] else None


class Conv3dFunction(_Conv3dNode):
    """conv3d as one node (bias included)."""

    op_name = "conv3d"

    def _forward(self, x, weight):
        self.x_shape = x.shape
        return _conv3d_forward(x, weight, self.window, self.groups)

    def _input_and_weight_grads(self, grad, x, weight, need_x, need_w):
        window, g = self.window, self.groups
        dw = _conv3d_weight_grad(grad, x, window, g, self.w_shape) if need_w else None
        dx = _conv3d_input_grad(grad, weight, window, g, self.x_shape) if need_x else None
        return dx, dw

    def _graph_grads(self, grad, x, weight, need_x, need_w, p):
        # dx is conv_transpose3d(g, W), dW a Conv3dWeightGrad node
        dx = dw = None
        if need_x:
            dx = ConvTranspose3dFunction.apply(grad, graph_input(self, 1, weight),
                                               out_shape=self.x_shape, **p)  # fmt: skip
        if need_w:
            dw = Conv3dWeightGrad.apply(grad, graph_input(self, 0, x), x_shape=self.x_shape, **p)
        return dx, dw


class ConvTranspose3dFunction(_Conv3dNode):
    """conv_transpose3d as one node: conv3d's input gradient run forward (the window is that
    of the conv3d from the output back to the input)."""

    op_name = "conv_transpose3d"
    out_shape: tuple

    def _forward(self, x, weight):
        return _conv3d_input_grad(x, weight, self.window, self.groups, self.out_shape)

    def _input_and_weight_grads(self, grad, x, weight, need_x, need_w):
        window, g = self.window, self.groups
        dx = _conv3d_forward(grad, weight, window, g) if need_x else None
        # conv3d's weight gradient with the roles of input and output swapped
        dw = _conv3d_weight_grad(x, grad, window, g, self.w_shape) if need_w else None
        return dx, dw

    def _graph_grads(self, grad, x, weight, need_x, need_w, p):
        # The conv3d it is the input gradient of: dx = conv3d(g, W); dW is that conv3d's weight
        # gradient with x as its output gradient and g as its input.
        dx = dw = None
        if need_x:
            dx = Conv3dFunction.apply(grad, graph_input(self, 1, weight), **p)
        if need_w:
            dw = Conv3dWeightGrad.apply(graph_input(self, 0, x), grad, x_shape=self.out_shape, **p)
        return dx, dw


class Conv3dWeightGrad(Function):
    """conv3d's weight gradient dW(gy, x) as an op (for double backward); bilinear: its
    gradients are conv3d(x, gw) for gy and conv3d's input gradient with weight gw for x."""

    op_name = "conv3d_weight_grad"
    groups: int
    w_shape: tuple
    window: _Window3
    x_shape: tuple

    def forward(self, gy, x):
        self.save_for_backward(gy, x)
        return _conv3d_weight_grad(gy, x, self.window, self.groups, self.w_shape)

    def backward(self, gw):
        gy, x = self.saved_arrays
        need_gy, need_x = self.needs_input_grad
        window, g = self.window, self.groups
        d_gy = _conv3d_forward(x, gw, window, g) if need_gy else None
        d_x = _conv3d_input_grad(gy, gw, window, g, self.x_shape) if need_x else None
        return d_gy, d_x

    def backward_graph(self, gw):
        gy, x = self.saved_arrays
        need_gy, need_x = self.needs_input_grad
        p = {"window": self.window, "groups": self.groups, "w_shape": self.w_shape}
        d_gy = Conv3dFunction.apply(graph_input(self, 1, x), gw, **p) if need_gy else None
        d_x = None
        if need_x:
            d_x = ConvTranspose3dFunction.apply(graph_input(self, 0, gy), gw,
                                                out_shape=self.x_shape, **p)  # fmt: skip
        return d_gy, d_x


def _checked_arguments(op, input, weight, bias, groups, stride, dilation, transposed):
    """(input, kernel, stride, dilation) of a 3-D conv, checked, as the ops use them."""
    x = float_input(input, op)
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{op}: expected a 5-D input (N, C, D, H, W) or a 4-D unbatched input (C, D, H, W), "
            f"got input of shape {tuple(x.shape)}"
        )
    _check_conv_weight(op, x, weight, bias, groups, 3, transposed=transposed)
    kernel = tuple(weight.shape[2:])
    stride = int_tuple(stride, 3, "stride", op, 1)
    dilation = int_tuple(dilation, 3, "dilation", op, 1)
    return x, kernel, stride, dilation


def _apply_batched(node: type, x: Tensor, weight: Tensor, bias: Tensor | None, **params) -> Tensor:
    """node applied to x with a unit batch dim added when x is unbatched (and taken off)."""
    batched = x.ndim == 5
    x5 = x if batched else x.unsqueeze(0)
    inputs = (x5, weight) if bias is None else (x5, weight, bias)
    y = _apply(node, inputs, w_shape=tuple(weight.shape), **params)
    return y if batched else y.squeeze(0)


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
    x, kernel, stride, dilation = _checked_arguments(
        op, input, weight, bias, groups, stride, dilation, transposed=False
    )
    before, after = conv_padding(padding, kernel, dilation, stride, op)
    out = tuple(map(conv_output_size, x.shape[-3:], before, after, kernel, stride, dilation))
    check_output_size(
        op, x, out,
        f"weight of shape {tuple(weight.shape)} (dilation {dilation}, padding {before}+{after})",
    )  # fmt: skip
    window = _Window3(kernel, stride, before, after, dilation, out)
    return _apply_batched(Conv3dFunction, x, weight, bias, window=window, groups=groups)


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
    x, kernel, stride, dilation = _checked_arguments(
        op, input, weight, bias, groups, stride, dilation, transposed=True
    )
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding {padding!r} is not supported; pass an int or a triple")
    padding = int_tuple(padding, 3, "padding", op, 0)
    output_padding = int_tuple(output_padding, 3, "output_padding", op, 0)
    _check_output_padding(op, output_padding, stride, dilation)
    in_sizes = tuple(x.shape[-3:])
    if 0 in in_sizes:
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} has an empty spatial dim; give each sample "
            "at least one pixel per spatial dim"
        )
    out = _transposed_sizes(op, x, weight, in_sizes, kernel, stride, padding, dilation,
                            output_padding)  # fmt: skip
    # The conv3d from the output back to the input (output_padding's extra rows lie past its
    # last window: they get no value and no gradient, as in PyTorch).
    window = _Window3(kernel, stride, padding, padding, dilation, in_sizes)
    out_shape = (x.shape[0] if x.ndim == 5 else 1, weight.shape[1] * groups, *out)
    return _apply_batched(ConvTranspose3dFunction, x, weight, bias, window=window,
                          groups=groups, out_shape=out_shape)  # fmt: skip
