"""Resampling: interpolate (nearest, nearest-exact, linear, bilinear, bicubic, trilinear,
area), pixel_shuffle / pixel_unshuffle / channel_shuffle, unfold / fold (im2col / col2im),
and affine_grid / grid_sample (spatial transformers).

interpolate is separable: each spatial axis is resampled by a linear map from its input
size to its output size, with PyTorch's source-index rules (align_corners, scale_factor,
the float32 index arithmetic of nearest). The forward gathers each output's few taps
(``take`` along the axis, weighted: 1 tap for nearest, 2 for linear, 4 for bicubic) and
the backward scatters them back, or, on the CPU with finite values, each axis is one dense
GEMM both ways (see Interpolate). area is adaptive average pooling's bin matrix.

unfold/fold loop over the kh*kw kernel offsets, each a strided slice of the zero-padded
frame (ops/window.py, shared with conv and pooling): unfold copies the slices into the
columns, fold adds them back; each is the other's backward.

grid_sample gathers each output's four (bilinear) or one (nearest) input pixels (one take
per sample on the CPU, take_along_axis on CuPy) and scatters the gradient back with a
scatter-add (numpy.add.at per sample on the CPU, one cupyx.scatter_add on CuPy); the grid's
gradient differentiates the bilinear weights. Where numba is installed, the CPU runs each
direction as one compiled loop per sample instead (backend/compiled_loops.py: the corners in
the NumPy route's arithmetic, then per channel a gather or scatter over the plane in cache);
grids with NaN source positions keep the NumPy route.

Memory: interpolate keeps its small per-axis index and weight tables, unfold and fold keep
nothing but shapes, grid_sample keeps the grid (and the input only when the grid needs a
gradient).
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from gradflow.autograd.differentiable import linear_backward_graph
from gradflow.autograd.function import Function
from gradflow.backend import compiled, get_array_module
from gradflow.ops._util import float_input
from gradflow.ops.adaptive_pooling import _bin_matrix
from gradflow.ops.window import Window, conv_output_size, gradient_frame, int_tuple, padded_frame
from gradflow.tensor import Tensor

# ---- interpolate ------------------------------------------------------------------------------

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")
_RANK_OF_MODE = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_CUBIC_A = -0.75  # PyTorch's (and OpenCV's) cubic convolution coefficient


def _cubic_weights(t: numpy.ndarray) -> numpy.ndarray:
    """PyTorch's cubic convolution weights of the taps i-1, i, i+1, i+2 for fractions t."""
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return numpy.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)


def _taps(mode: str, size: int, out: int, scale: float | None, align_corners: bool,
          shortcut: bool = False):  # fmt: skip
    """(indices [out, T], weights [out, T] float64) of one axis: output o is the sum over t of
    weights[o, t] * input[indices[o, t]], PyTorch's source-index rules. `shortcut`: PyTorch's
    2-D "nearest" kernel copies when the size is unchanged and takes o // 2 when it doubles,
    whatever the scale_factor (its 1-D and 3-D kernels use the scale)."""
    o = numpy.arange(out)
    if mode == "nearest" and shortcut and out in (size, 2 * size):
        index = o if out == size else o // 2
        return index[:, None], numpy.ones((out, 1))
    if mode in ("nearest", "nearest-exact"):
        # PyTorch computes the nearest index in float32: the same floats pick the same pixel.
        step = numpy.float32(1.0 / scale) if scale else numpy.float32(size) / numpy.float32(out)
        if mode == "nearest":
            src = numpy.floor(o.astype(numpy.float32) * step)
        else:
            # (o + 0.5) * scale in double, rounded to float by floorf: PyTorch's arithmetic.
            src = numpy.floor(((o + 0.5) * numpy.float64(step)).astype(numpy.float32))
        index = numpy.minimum(src.astype(numpy.int64), size - 1)
        return index[:, None], numpy.ones((out, 1))
    if align_corners:
        step = (size - 1) / (out - 1) if out > 1 else 0.0
        src = o * step
    else:
        step = 1.0 / scale if scale else size / out
        src = (o + 0.5) * step - 0.5
    if mode == "bicubic":
        base = numpy.floor(src)
        index = base.astype(numpy.int64)[:, None] + numpy.arange(-1, 3)
        return numpy.clip(index, 0, size - 1), _cubic_weights(src - base)
    if out == size:  # PyTorch copies (lambda 1 on the same pixel)
        return o[:, None], numpy.ones((out, 1))
    src = numpy.maximum(src, 0.0)
    first = numpy.minimum(numpy.floor(src).astype(numpy.int64), size - 1)
    frac = numpy.clip(src - first, 0.0, 1.0)
    second = numpy.where(first < size - 1, first + 1, first)
    return numpy.stack([first, second], axis=1), numpy.stack([1 - frac, frac], axis=1)


def _dense(index: numpy.ndarray, weight: numpy.ndarray, size: int) -> numpy.ndarray:
    """The [out, in] matrix of one axis' taps (repeated taps, clamped at a border, add up)."""
    matrix = numpy.zeros((index.shape[0], size))
    numpy.add.at(matrix, (numpy.arange(index.shape[0])[:, None], index), weight)
    return matrix


def _apply_dense(y: Any, matrix: Any, axis: int) -> Any:
    """y with `axis` mapped by matrix [new, old]: one GEMM (tensordot reshapes to 2-D)."""
    xp = get_array_module(y)
    return xp.moveaxis(xp.tensordot(y, matrix, ([axis], [1])), -1, axis)


def _gather_taps(y: Any, index: Any, weight: Any, axis: int) -> Any:
    """Output o along `axis` = sum over t of weight[o, t] * y[index[o, t]]."""
    xp = get_array_module(y)
    shape = [1] * y.ndim
    shape[axis] = index.shape[0]
    total = None
    for t in range(index.shape[1]):
        part = xp.take(y, xp.asarray(index[:, t]), axis=axis)
        if not (weight[:, t] == 1).all():
            part = part * xp.asarray(weight[:, t], dtype=y.dtype).reshape(shape)
        total = part if total is None else total + part
    return total


def _scatter_taps(g: Any, index: Any, weight: Any, axis: int, size: int) -> Any:
    """The adjoint of _gather_taps: each g[o] * weight[o, t] added at index[o, t]."""
    xp = get_array_module(g)
    moved = xp.moveaxis(g, axis, 0)
    out = xp.zeros((size, *moved.shape[1:]), dtype=g.dtype)
    shape = (-1,) + (1,) * (moved.ndim - 1)
    for t in range(index.shape[1]):
        part = moved * xp.asarray(weight[:, t], dtype=g.dtype).reshape(shape)
        if xp is numpy:
            numpy.add.at(out, index[:, t], part)
        else:
            import cupyx

            cupyx.scatter_add(out, xp.asarray(index[:, t]), part)
    return xp.moveaxis(out, 0, axis)


def _nearest_sum(g: numpy.ndarray, index: numpy.ndarray, axis: int, size: int) -> Any:
    """The adjoint of numpy.take(y, index, axis) for a non-decreasing index (nearest's): each
    input slice gets the sum of the output slices taken from it, in output order. Where every
    input slice was taken k times in a row (an integer upscale), k - 1 adds of strided views;
    else one numpy.add.reduceat over the runs."""
    out = index.shape[0]
    k = out // size
    if k * size == out and numpy.array_equal(index, numpy.arange(out) // k):
        parts = g.reshape(g.shape[:axis] + (size, k) + g.shape[axis + 1 :])
        lead = (slice(None),) * (axis + 1)
        if k == 1:
            return parts[lead + (0,)]
        total = numpy.add(parts[lead + (0,)], parts[lead + (1,)])
        for j in range(2, k):
            total += parts[lead + (j,)]
        return total
    starts = numpy.flatnonzero(numpy.concatenate(([True], index[1:] != index[:-1])))
    sums = numpy.add.reduceat(g, starts, axis=axis)
    if starts.size == size:  # every input slice was taken
        return sums
    total = numpy.zeros(g.shape[:axis] + (size,) + g.shape[axis + 1 :], g.dtype)
    total[(slice(None),) * axis + (index[starts],)] = sums
    return total


class Interpolate(Function):
    """interpolate as one node, axis by axis. On the CPU each axis' map is one dense GEMM both
    ways (BLAS: several times faster than gathering the taps), unless the array holds a NaN or
    an infinity, which a dense map's zero weights would spread along the whole axis; then, and
    on CuPy, the taps are gathered forward and scattered back. area is always dense. 3-D
    nearest on the CPU (`nearest`) takes whole slices per axis forward (numpy.take: copies,
    at any value) and sums them back (_nearest_sum), which beats the GEMMs' passes."""

    op_name = "interpolate"
    axes: tuple  # per spatial axis: (index [out, T] or None, weight [out, T], matrix [out, in])
    nearest: bool = False  # one tap of weight 1 per output (nearest, nearest-exact)

    def _dense(self, a: Any) -> bool:
        if get_array_module(a) is not numpy or a.dtype.kind != "f":  # integers: gathered
            return False
        return bool(numpy.isfinite(a).all())

    def forward(self, x):
        xp = get_array_module(x)
        self.shape = x.shape
        if self.nearest and xp is numpy:
            for d, (index, _, _) in enumerate(self.axes):
                x = numpy.take(x, index[:, 0], axis=2 + d)
            return x
        dense = self._dense(x)
        y = x
        for d, (index, weight, matrix) in enumerate(self.axes):
            if index is None or dense:
                y = _apply_dense(y, xp.asarray(matrix, dtype=x.dtype), 2 + d)
            else:
                y = _gather_taps(y, index, weight, 2 + d)
        return xp.ascontiguousarray(y)

    def backward(self, g):
        xp = get_array_module(g)
        if self.nearest and xp is numpy:
            for d in reversed(range(len(self.axes))):
                g = _nearest_sum(g, self.axes[d][0][:, 0], 2 + d, self.shape[2 + d])
            return numpy.ascontiguousarray(g)
        dense = self._dense(g)
        for d in reversed(range(len(self.axes))):
            index, weight, matrix = self.axes[d]
            if index is None or dense:  # dx = M^T applied along the axis
                g = _apply_dense(g, xp.asarray(matrix.T, dtype=g.dtype), 2 + d)
            else:
                g = _scatter_taps(g, index, weight, 2 + d, self.shape[2 + d])
        return xp.ascontiguousarray(g)

    def backward_graph(self, g):
        return linear_backward_graph(self, g)


def _spatial_tuple(value: Any, dims: int, what: str, x: Tensor) -> tuple:
    if isinstance(value, tuple | list):
        if len(value) != dims:
            raise ValueError(
                f"Input and {what} must have the same number of spatial dimensions, but got "
                f"input with spatial dimensions of {list(x.shape[2:])} and {what} of "
                f"{'shape ' if what == 'scale_factor' else ''}{tuple(value)}. Please provide "
                f"input tensor in (N, C, d1, d2, ...,dK) format and {what} in "
                f"({'s' if what == 'scale_factor' else 'o'}1, "
                f"{'s' if what == 'scale_factor' else 'o'}2, ...,"
                f"{'s' if what == 'scale_factor' else 'o'}K) format."
            )
        return tuple(value)
    return (value,) * dims


def interpolate(
    input: Tensor,
    size: int | tuple[int, ...] | None = None,
    scale_factor: float | tuple[float, ...] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resample (N, C, L), (N, C, H, W) or (N, C, D, H, W) inputs to `size` or by
    `scale_factor` (output size ``floor(in * scale_factor)``), PyTorch's rules.

    Modes: "nearest" (PyTorch's legacy nearest: ``floor(o * in / out)``), "nearest-exact"
    (pixel centres), "linear" (3-D), "bilinear" and "bicubic" (4-D), "trilinear" (5-D) and
    "area" (adaptive average pooling). align_corners (interpolating modes only, default False)
    maps the corner pixels' centres onto each other. With scale_factor the source index uses
    1 / scale_factor unless recompute_scale_factor=True (then in / out). antialias is not
    supported (an error says so).

    >>> import gradflow
    >>> x = gradflow.tensor([[[1.0, 2.0]]])
    >>> interpolate(x, scale_factor=2).tolist()
    [[[1.0, 1.0, 2.0, 2.0]]]
    >>> interpolate(x, size=4, mode="linear").tolist()
    [[[1.0, 1.25, 1.75, 2.0]]]
    """
    if (
        mode in ("nearest", "nearest-exact")
        and isinstance(input, Tensor)
        and input.dtype.kind in "iub"
    ):
        x = input  # copies of pixels: integer images (uint8) resample as in PyTorch
    else:
        x = float_input(input, "interpolate")
    if mode not in _MODES or x.ndim not in (3, 4, 5):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {x.ndim}D) for the "
            "modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area | "
            f"nearest-exact (got {mode})"
        )
    if mode in _RANK_OF_MODE and x.ndim != _RANK_OF_MODE[mode]:
        raise NotImplementedError(
            f"Got {x.ndim}D input, but {mode} mode needs {_RANK_OF_MODE[mode]}D input"
        )
    if mode not in _INTERPOLATING and align_corners is not None:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: linear | "
            "bilinear | bicubic | trilinear"
        )
    if antialias:
        raise NotImplementedError(
            "interpolate: antialias=True is not supported by gradflow; pass antialias=False "
            "(or low-pass filter the input, e.g. with avg_pool2d, before downsampling)"
        )
    align_corners = bool(align_corners)
    dims = x.ndim - 2
    in_sizes = tuple(x.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if size is not None:
        out_sizes = _spatial_tuple(size, dims, "output size", x)
        out_sizes = int_tuple(out_sizes, dims, "size", "interpolate", 1)
        scales: tuple = (None,) * dims
    else:
        scales = tuple(float(s) for s in _spatial_tuple(scale_factor, dims, "scale_factor", x))
        if any(not s > 0 or math.isinf(s) for s in scales):
            raise ValueError(f"interpolate: scale_factor must be positive and finite, got {scales}")
        out_sizes = tuple(math.floor(n * s) for n, s in zip(in_sizes, scales))
        if min(out_sizes) < 1:
            raise ValueError(
                f"interpolate: input of spatial size {in_sizes} with scale_factor {scales} gives "
                f"an empty output {out_sizes}; use a larger scale_factor"
            )
        if recompute_scale_factor:
            scales = (None,) * dims
    if min(in_sizes) < 1:
        raise ValueError(f"interpolate: input of shape {tuple(x.shape)} has an empty spatial dim")
    axes = []
    for n, o, s in zip(in_sizes, out_sizes, scales):
        if mode == "area":
            axes.append((None, None, _bin_matrix(n, o, numpy, numpy.float64)))
            continue
        index, weight = _taps(mode, n, o, s, align_corners, shortcut=dims == 2)
        axes.append((index, weight, _dense(index, weight, n)))
    nearest = mode in ("nearest", "nearest-exact") and dims == 3
    return Interpolate.apply(x, axes=tuple(axes), nearest=nearest)


def upsample(input: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:  # fmt: skip
    """PyTorch's deprecated alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """:func:`interpolate` with mode "nearest" (PyTorch's deprecated alias)."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """:func:`interpolate` with mode "bilinear" and align_corners=True (PyTorch's alias)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---- pixel shuffle ------------------------------------------------------------------------------


def _shuffle_factor(input: Any, value: Any, op: str, name: str) -> int:
    """The shuffle factor `value` as an int, checked, and the input checked to have at least 3
    dims (the factor first, as PyTorch checks)."""
    if isinstance(value, bool) or not isinstance(value, int | numpy.integer) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    if not isinstance(input, Tensor) or input.ndim < 3:
        got = input.ndim if isinstance(input, Tensor) else type(input).__name__
        raise RuntimeError(
            f"{op} expects input to have at least 3 dimensions, but got input with {got} "
            "dimension(s)"
        )
    return int(value)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C*r^2, H, W) -> (*, C, H*r, W*r): each group of r^2 channels becomes an r x r block
    of pixels (sub-pixel convolution's upsampling). A reshape and a permute, differentiable.

    >>> import gradflow
    >>> pixel_shuffle(gradflow.arange(8.0).reshape(1, 8, 1, 1), 2).shape
    gradflow.Size([1, 2, 2, 2])
    """
    r = _shuffle_factor(input, upscale_factor, "pixel_shuffle", "upscale_factor")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
            f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    k = len(lead)
    y = input.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H*r, W*r) -> (*, C*r^2, H, W), the inverse of :func:`pixel_shuffle`.

    >>> import gradflow
    >>> pixel_unshuffle(gradflow.ones(1, 2, 4, 4), 2).shape
    gradflow.Size([1, 8, 2, 2])
    """
    r = _shuffle_factor(input, downscale_factor, "pixel_unshuffle", "downscale_factor")
    *lead, c, h, w = input.shape
    for name, n, dim in (("height", h, -2), ("width", w, -1)):
        if n % r:
            raise RuntimeError(
                f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                f"input.size({dim})={n} is not divisible by {r}"
            )
    k = len(lead)
    y = input.reshape(*lead, c, h // r, r, w // r, r)
    y = y.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Shuffle the channels of (N, C, *) inputs: viewed as (groups, C / groups) and transposed
    (ShuffleNet's channel shuffle). A reshape and a permute, differentiable.

    >>> import gradflow
    >>> channel_shuffle(gradflow.arange(6.0).reshape(1, 6, 1), 2).flatten().tolist()
    [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """
    if not isinstance(input, Tensor) or input.ndim <= 2:
        got = list(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise RuntimeError(
            f"channel_shuffle expects input with > 2 dims, but got input with sizes {got}"
        )
    if isinstance(groups, bool) or not isinstance(groups, int | numpy.integer) or groups <= 0:
        raise RuntimeError(
            f"Number of groups to divide channels in must be positive. Value of groups:{groups}"
        )
    n, c, *rest = input.shape
    if c % groups:
        raise RuntimeError(
            f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups."
        )
    y = input.reshape(n, int(groups), c // groups, *rest).transpose(1, 2)
    return y.reshape(n, c, *rest)


# ---- unfold / fold ------------------------------------------------------------------------------


def _im2col(x: Any, window: Window) -> Any:
    """x [N, C, H, W] -> [N, C*kh*kw, L], PyTorch's unfold layout (rows (c, i, j))."""
    frame = padded_frame(x, window, 0)
    n, c = x.shape[:2]
    xp = get_array_module(x)
    cols = xp.empty((n, c, window.kernel[0] * window.kernel[1], *window.out), dtype=x.dtype)
    for k, (i, j) in enumerate(window.offsets()):
        cols[:, :, k] = frame[(..., *window.offset_slices(i, j))]
    return cols.reshape(n, -1, window.out[0] * window.out[1])


def _col2im(cols: Any, window: Window, hw: tuple) -> Any:
    """The adjoint of _im2col: [N, C*kh*kw, L] -> [N, C, H, W], overlapping windows adding."""
    xp = get_array_module(cols)
    kh, kw = window.kernel
    n = cols.shape[0]
    c = cols.shape[1] // (kh * kw)
    blocks = cols.reshape(n, c, kh * kw, *window.out)
    frame = gradient_frame((n, c), window, hw, cols.dtype, xp)
    for k, (i, j) in enumerate(window.offsets()):
        frame[(..., *window.offset_slices(i, j))] += blocks[:, :, k]
    top, left = window.padding
    return xp.ascontiguousarray(frame[..., top : top + hw[0], left : left + hw[1]])


class UnfoldFunction(Function):
    """unfold (im2col) as one node; its backward is fold."""

    op_name = "unfold"
    window: Window
    batched: bool

    def forward(self, x):
        self.shape = x.shape
        x4 = x if self.batched else x[None]
        cols = _im2col(x4, self.window)
        return cols if self.batched else cols[0]

    def backward(self, g):
        g3 = g if self.batched else g[None]
        x4_shape = self.shape if self.batched else (1, *self.shape)
        dx = _col2im(g3, self.window, x4_shape[2:])
        return dx if self.batched else dx[0]

    def backward_graph(self, g):
        return FoldFunction.apply(
            g, window=self.window, batched=self.batched, output_size=tuple(self.shape[-2:])
        )


class FoldFunction(Function):
    """fold (col2im) as one node; its backward is unfold."""

    op_name = "fold"
    window: Window
    batched: bool
    output_size: tuple

    def forward(self, cols):
        c3 = cols if self.batched else cols[None]
        out = _col2im(c3, self.window, self.output_size)
        return out if self.batched else out[0]

    def backward(self, g):
        g4 = g if self.batched else g[None]
        dcols = _im2col(g4, self.window)
        return dcols if self.batched else dcols[0]

    def backward_graph(self, g):
        return UnfoldFunction.apply(g, window=self.window, batched=self.batched)


def _fold_window(op: str, kernel_size, dilation, padding, stride, hw: tuple) -> Window:
    kernel = int_tuple(kernel_size, 2, "kernel_size", op, 1)
    dilation = int_tuple(dilation, 2, "dilation", op, 1)
    padding = int_tuple(padding, 2, "padding", op, 0)
    stride = int_tuple(stride, 2, "stride", op, 1)
    out = tuple(map(conv_output_size, hw, padding, padding, kernel, stride, dilation))
    if min(out) < 1:
        raise RuntimeError(
            f"{op}: the spatial size {hw} with padding {padding}, kernel_size {kernel} and "
            f"dilation {dilation} gives no sliding block ({out}); use a smaller kernel or more "
            "padding"
        )
    return Window(kernel, stride, padding, dilation, out)


def unfold(
    input: Tensor,
    kernel_size: int | tuple[int, int],
    dilation: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    stride: int | tuple[int, int] = 1,
) -> Tensor:
    """Extract sliding blocks (im2col): (N, C, H, W) -> (N, C*kh*kw, L), L the number of
    blocks, rows ordered (channel, kernel row, kernel column) as PyTorch's; (C, H, W) inputs
    give (C*kh*kw, L).

    >>> import gradflow
    >>> unfold(gradflow.ones(1, 2, 4, 4), 2).shape
    gradflow.Size([1, 8, 9])
    """
    op = "unfold"
    x = float_input(input, op)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected a 3-D (unbatched) or 4-D (batched) input, got input of shape "
            f"{tuple(x.shape)}; only 4-D input tensors (batched image-like tensors) are "
            "supported, as in PyTorch"
        )
    window = _fold_window(op, kernel_size, dilation, padding, stride, tuple(x.shape[-2:]))
    return UnfoldFunction.apply(x, window=window, batched=x.ndim == 4)


def fold(
    input: Tensor,
    output_size: int | tuple[int, int],
    kernel_size: int | tuple[int, int],
    dilation: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    stride: int | tuple[int, int] = 1,
) -> Tensor:
    """Combine sliding blocks into an image (col2im, the adjoint of :func:`unfold`):
    (N, C*kh*kw, L) -> (N, C, H, W) with (H, W) = output_size; overlapping values add up.

    >>> import gradflow
    >>> fold(gradflow.ones(1, 4, 9), (4, 4), 2)[0, 0].tolist()[1]
    [2.0, 4.0, 4.0, 2.0]
    """
    op = "fold"
    cols = float_input(input, op)
    if cols.ndim not in (2, 3):
        raise ValueError(
            f"{op}: expected a 2-D (unbatched) or 3-D (batched) input, got input of shape "
            f"{tuple(cols.shape)}"
        )
    hw = int_tuple(output_size, 2, "output_size", op, 1)
    window = _fold_window(op, kernel_size, dilation, padding, stride, hw)
    kh, kw = window.kernel
    rows, blocks = cols.shape[-2:]
    if rows % (kh * kw):
        raise RuntimeError(
            f"{op}: expected size of input's dimension {cols.ndim - 2} to be divisible by the "
            f"product of kernel_size, but got input.size({cols.ndim - 2})={rows} and "
            f"kernel_size={(kh, kw)}"
        )
    if blocks != window.out[0] * window.out[1]:
        raise RuntimeError(
            f"{op}: given output_size={hw}, kernel_size={(kh, kw)}, dilation="
            f"{window.dilation}, padding={window.padding}, stride={window.stride}, expected "
            f"size of input's dimension {cols.ndim - 1} to match the calculated number of "
            f"sliding blocks {window.out[0]} * {window.out[1]} = {window.out[0] * window.out[1]}"
            f", but got input.size({cols.ndim - 1})={blocks}"
        )
    return FoldFunction.apply(cols, window=window, batched=cols.ndim == 3, output_size=hw)


# ---- affine_grid / grid_sample (spatial transformers) -----------------------------------------


def _base_coords(size: int, align_corners: bool) -> numpy.ndarray:
    """The normalized [-1, 1] coordinates of `size` pixels: their centres, or with
    align_corners the corner pixels' centres at -1 and 1."""
    if size == 1:
        return numpy.zeros(1)
    if align_corners:
        return numpy.linspace(-1.0, 1.0, size)
    return (numpy.arange(size) * 2.0 + 1.0) / size - 1.0


def affine_grid(theta: Tensor, size: Any, align_corners: bool | None = None) -> Tensor:
    """The sampling grid of a batch of affine transforms, for :func:`grid_sample`: theta
    (N, 2, 3) and size (N, C, H, W) give (N, H, W, 2), each output pixel's normalized (x, y)
    source; theta (N, 3, 4) and size (N, C, D, H, W) give (N, D, H, W, 3). align_corners
    defaults to False. Differentiable in theta (a matmul).

    >>> import gradflow
    >>> theta = gradflow.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    >>> affine_grid(theta, (1, 1, 2, 2), align_corners=True)[0, 0].tolist()
    [[-1.0, -1.0], [1.0, -1.0]]
    """
    theta = float_input(theta, "affine_grid", "theta")
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise NotImplementedError(
            "affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
            f"respectively. Got size {size}."
        )
    dims = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (dims, dims + 1):
        kind = (
            "2D affine matrices of shape Nx2x3"
            if dims == 2
            else "3D affine matrices of shape Nx3x4"
        )
        raise ValueError(f"Expected a batch of {kind} for size {size}. Got {tuple(theta.shape)}.")
    if theta.shape[0] != size[0]:
        raise ValueError(
            f"affine_grid: theta has {theta.shape[0]} matrices but size {size} has a batch of "
            f"{size[0]}; pass one matrix per sample"
        )
    if min(size[2:]) <= 0:
        raise ValueError(f"affine_grid: expected a non-empty spatial size, got size {size}")
    align = bool(align_corners)
    axes = [_base_coords(n, align) for n in size[2:]]  # (D,) H, W
    mesh = numpy.meshgrid(*axes, indexing="ij")
    # Homogeneous coordinates ordered (x, y[, z], 1): x runs along the last dim.
    base = numpy.stack([*mesh[::-1], numpy.ones_like(mesh[0])], axis=-1).reshape(-1, dims + 1)
    from gradflow.creation import tensor  # here: gradflow.creation imports the ops

    points = tensor(base.astype(theta.dtype), device=theta.device)  # [P, dims + 1], constant
    grid = points @ theta.transpose(1, 2)  # [N, P, dims]
    return grid.reshape(size[0], *size[2:], dims)


def _source_index(coord: Any, size: int, padding_mode: str, align_corners: bool) -> tuple:
    """(pixel position, d position / d coord) of normalized coordinates along one axis, with
    PyTorch's unnormalization and border / reflection rules (clipped positions get no
    gradient; reflected ones a flipped sign)."""
    xp = get_array_module(coord)
    if align_corners:
        pos, mult = (coord + 1) / 2 * (size - 1), (size - 1) / 2
    else:
        pos, mult = ((coord + 1) * size - 1) / 2, size / 2
    grad = xp.full(coord.shape, mult, dtype=coord.dtype)
    if padding_mode == "zeros":
        return pos, grad
    if padding_mode == "reflection":
        low2, high2 = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        if low2 == high2:
            return xp.zeros_like(pos), xp.zeros_like(grad)
        low, span = low2 / 2, (high2 - low2) / 2
        shifted = pos - low
        sign = xp.where(shifted < 0, -1.0, 1.0).astype(coord.dtype)
        shifted = xp.abs(shifted)
        extra = xp.fmod(shifted, span)
        even = xp.floor(shifted / span) % 2 == 0
        pos = xp.where(even, extra + low, span - extra + low)
        grad = grad * xp.where(even, sign, -sign)
    inside = (pos > 0) & (pos < size - 1)
    return xp.clip(pos, 0, size - 1), grad * inside


def _gather_columns(planes: Any, flat: Any) -> Any:
    """planes[n, :, flat[n, p]] as [N, C, P] (planes [N, C, HW], flat [N, P] in range): on
    NumPy one take per sample, 5x faster than take_along_axis with flat broadcast over C."""
    xp = get_array_module(planes)
    if xp is not numpy:
        index = xp.broadcast_to(flat[:, None], planes.shape[:2] + flat.shape[1:])
        return xp.take_along_axis(planes, index, axis=2)
    out = numpy.empty(planes.shape[:2] + flat.shape[1:], planes.dtype)
    for i in range(planes.shape[0]):  # "clip": the positions are in range; "raise" copies out
        numpy.take(planes[i], flat[i], axis=1, out=out[i], mode="clip")
    return out


def _scatter_corners(g3: numpy.ndarray, corners: list, plane: int) -> numpy.ndarray:
    """grid_sample's dx on NumPy, [N, C, plane]: each corner's weighted gradient added at its
    pixel, one numpy.add.at per sample over its C * k * P positions (the bits of one add.at
    over the batch: each (n, c) row adds in the same order), so the positions stay in cache
    instead of an int64 array of N * C * k * P built and copied whole (1.8x faster at
    N, C, P = 16, 32, 1024)."""
    n, c, _ = g3.shape
    dx = numpy.zeros((n, c * plane), g3.dtype)
    channels = numpy.arange(c, dtype=numpy.intp)[:, None] * plane
    for i in range(n):
        flats = numpy.concatenate([flat[i] for flat, *_ in corners])  # [k*P]
        parts = numpy.concatenate([g3[i] * wt[i].astype(g3.dtype) for _, wt, *_ in corners],
                                  axis=1)  # [C, k*P]  # fmt: skip
        numpy.add.at(dx[i], (flats + channels).reshape(-1), parts.reshape(-1))
    return dx


def _clipped_index(xp: Any, c: Any, size: int) -> Any:
    """Integer positions c clipped to [0, size - 1]; a NaN position (a NaN grid value, or an
    infinite one under reflection) reads position 0, its weight and validity being 0 and
    False (its weight NaN, which forward keeps: a NaN output, as torch's)."""
    return xp.nan_to_num(xp.clip(c, 0, size - 1), copy=False, nan=0.0).astype(numpy.int64)


def _finite(xp: Any, weight: Any) -> Any:
    """A corner's weight for the input gradient: NaN (the weight of a NaN position, never
    valid) adds nothing, as in torch, where the NumPy forward's weight keeps it."""
    return xp.nan_to_num(weight, nan=0.0)


class GridSample(Function):
    """grid_sample (2-D) as one node: each output gathers up to four input pixels (bilinear)
    or one (nearest); backward scatters to them and, for bilinear, differentiates the
    weights by the grid. Keeps the grid, and the input only when the grid needs a
    gradient."""

    op_name = "grid_sample"
    align_corners: bool
    mode: str
    padding_mode: str

    def _corners(self, grid: Any, h: int, w: int) -> tuple:
        """[(flat index, weight with validity, dweight/dx, dweight/dy)] per corner, and the
        coordinate derivatives (each [N, P])."""
        n = grid.shape[0]
        gx, gy = (grid[..., k].reshape(n, grid.shape[1] * grid.shape[2]) for k in (0, 1))
        with numpy.errstate(invalid="ignore"):  # inf and NaN coordinates: NaN, no warning
            ix, dix = _source_index(gx, w, self.padding_mode, self.align_corners)
            iy, diy = _source_index(gy, h, self.padding_mode, self.align_corners)
            return self._corners_at(ix, iy, dix, diy, h, w)

    def _corners_at(self, ix: Any, iy: Any, dix: Any, diy: Any, h: int, w: int) -> tuple:
        """_corners from the source positions ix, iy and their derivatives."""
        xp = get_array_module(ix)
        if self.mode == "nearest":
            x, y = xp.rint(ix), xp.rint(iy)  # half to even, as PyTorch's nearbyint
            valid = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
            flat = _clipped_index(xp, y, h) * w
            flat += _clipped_index(xp, x, w)
            return [(flat, xp.ones_like(ix) * valid, valid, None, None)], dix, diy
        x0, y0 = xp.floor(ix), xp.floor(iy)
        tx, ty = ix - x0, iy - y0
        one = ix.dtype.type(1)
        ux, uy = one - tx, one - ty
        # Per axis, once: the two columns' (rows') validity and clipped positions; each corner
        # combines one of each (nw, ne, sw, se).
        columns, rows = [], []
        for c in (x0, x0 + 1):
            columns.append(((c >= 0) & (c <= w - 1), _clipped_index(xp, c, w)))
        for r in (y0, y0 + 1):
            rows.append(((r >= 0) & (r <= h - 1), _clipped_index(xp, r, h) * w))
        corners = [
            (0, 0, ux * uy, -uy, -ux),
            (1, 0, tx * uy, uy, -tx),
            (0, 1, ux * ty, -ty, ux),
            (1, 1, tx * ty, ty, tx),
        ]
        out = []
        for a, b, weight, dwx, dwy in corners:
            valid = columns[a][0] & rows[b][0]
            out.append((rows[b][1] + columns[a][1], weight * valid, valid, dwx, dwy))
        return out, dix, diy

    def _positions(self, loops: Any, grid: Any, h: int, w: int) -> tuple | None:
        """(ix, iy, dix, diy), each [N, P] C-contiguous in grid's dtype, for the compiled
        loops; None where a position is NaN (a NaN coordinate, or an infinite one reflected):
        the NumPy route takes those (_clipped_index, _finite)."""
        if loops is None:
            return None
        n = grid.shape[0]
        gx, gy = (grid[..., k].reshape(n, grid.shape[1] * grid.shape[2]) for k in (0, 1))
        with numpy.errstate(invalid="ignore"):
            ix, dix = _source_index(gx, w, self.padding_mode, self.align_corners)
            iy, diy = _source_index(gy, h, self.padding_mode, self.align_corners)
        out = tuple(numpy.ascontiguousarray(a, dtype=grid.dtype) for a in (ix, iy, dix, diy))
        if numpy.isnan(out[0]).any() or numpy.isnan(out[1]).any():
            return None
        return out

    def forward(self, x, grid):
        n, c, h, w = x.shape
        need_grid = self.needs_input_grad[1] and self.mode != "nearest"
        self.save_for_backward(x if need_grid else None, grid)
        self.x_shape = x.shape
        loops = compiled.loops(x, grid) if x.size and grid.size else None
        if (pos := self._positions(loops, grid, h, w)) is not None:  # one compiled pass
            planes = numpy.ascontiguousarray(x).reshape(n, c, h * w)
            out = numpy.empty((n, c, pos[0].shape[1]), x.dtype)
            loops.grid_sample_forward(planes, pos[0], pos[1], out, h, w, self.mode == "nearest")
            return out.reshape(n, c, *grid.shape[1:3])
        planes = x.reshape(n, c, h * w)
        out = None
        for flat, weight, *_ in self._corners(grid, h, w)[0]:
            part = _gather_columns(planes, flat)
            part *= weight[:, None].astype(x.dtype)
            out = part if out is None else out + part
        return out.reshape(n, c, *grid.shape[1:3])

    def backward(self, g):
        x, grid = self.saved_arrays
        xp = get_array_module(g)
        n, c, h, w = self.x_shape
        g3 = g.reshape(n, c, grid.shape[1] * grid.shape[2])
        loops = compiled.loops(g, grid) if g.size else None
        if (pos := self._positions(loops, grid, h, w)) is not None:
            return self._backward_compiled(loops, g, x, grid, pos)
        corners, dix, diy = self._corners(grid, h, w)
        if xp is numpy and self.mode != "nearest":
            return self._backward_numpy(g3, x, grid, corners, dix, diy)
        dx = dgrid = None
        if self.needs_input_grad[0] and xp is numpy:
            dx = _scatter_corners(g3, corners, h * w).reshape(self.x_shape)
        elif self.needs_input_grad[0]:
            from gradflow.ops.adaptive_pooling import _scatter_flat

            flats = xp.concatenate([flat for flat, *_ in corners], axis=1)  # [N, k*P]
            parts = xp.concatenate([g3 * _finite(xp, wt)[:, None].astype(g.dtype)
                                    for _, wt, *_ in corners], axis=2)  # [N, C, k*P]  # fmt: skip
            index = xp.broadcast_to(flats[:, None], parts.shape).reshape(n * c, -1)
            dx = _scatter_flat(parts.reshape(n * c, -1), index, h * w).reshape(self.x_shape)
        if self.needs_input_grad[1]:
            dgrid = xp.zeros(grid.shape, dtype=grid.dtype)
            if self.mode != "nearest":
                planes = x.reshape(n, c, h * w)
                gix = giy = 0
                for flat, _, valid, dwx, dwy in corners:
                    vals = _gather_columns(planes, flat)
                    gv = (g3 * vals).sum(axis=1) * valid  # [N, P]
                    gix = gix + gv * dwx
                    giy = giy + gv * dwy
                dgrid[..., 0] = (gix * dix).reshape(grid.shape[:-1])
                dgrid[..., 1] = (giy * diy).reshape(grid.shape[:-1])
        return dx, dgrid

    def _backward_compiled(self, loops, g, x, grid, pos):
        """dx and dgrid in one compiled loop per sample (backend/compiled_loops.py)."""
        n, c, h, w = self.x_shape
        need_x, need_grid = self.needs_input_grad
        g3 = numpy.ascontiguousarray(g).reshape(n, c, pos[0].shape[1])
        dx = numpy.zeros((n, c, h * w) if need_x else (1, 1, 1), g.dtype)
        dgrid = numpy.empty((n, pos[0].shape[1], 2) if need_grid else (1, 1, 2), g.dtype)
        planes = g3[:1, :1, :1]  # not read (nearest, or no grid gradient)
        if need_grid and self.mode != "nearest":
            planes = numpy.ascontiguousarray(x).reshape(n, c, h * w)
        loops.grid_sample_backward(g3, planes, *pos, dx, dgrid, h, w, self.mode == "nearest",
                                   need_x, need_grid)  # fmt: skip
        return (dx.reshape(self.x_shape) if need_x else None,
                dgrid.reshape(grid.shape) if need_grid else None)  # fmt: skip

    def _backward_numpy(self, g3, x, grid, corners, dix, diy):
        """Bilinear backward on NumPy, one sample at a time so that its arrays stay in cache:
        the four corners' weighted gradients added at their pixels (one numpy.add.at over
        the C * 4 * P positions, as _scatter_corners) and, for the grid, the four corners'
        values gathered in one take and dotted with g over the channels (einsum)."""
        n, c, h, w = self.x_shape
        p = g3.shape[2]
        need_x, need_grid = self.needs_input_grad
        flats = numpy.stack([flat for flat, *_ in corners], axis=1).reshape(n, 4 * p)  # [N, 4P]
        dx = dgrid = None
        if need_x:
            weights = numpy.stack([_finite(numpy, wt) for _, wt, *_ in corners], axis=1)
            weights = weights.astype(g3.dtype, copy=False)
            dx = numpy.zeros((n, c * h * w), g3.dtype)
            channels = numpy.arange(c, dtype=numpy.intp)[:, None] * (h * w)
        if need_grid:
            planes = x.reshape(n, c, h * w)
            gv = numpy.empty((n, 4, p), g3.dtype)
        for i in range(n):
            if need_x:
                parts = g3[i][:, None, :] * weights[i]  # [C, 4, P]
                numpy.add.at(dx[i], (flats[i] + channels).reshape(-1), parts.reshape(-1))
            if need_grid:  # "clip": the positions are in range; "raise" copies out
                vals = numpy.take(planes[i], flats[i], axis=1, mode="clip").reshape(c, 4, p)
                gv[i] = numpy.einsum("cp,ckp->kp", g3[i], vals)
        if need_x:
            dx = dx.reshape(self.x_shape)
        if need_grid:
            gv *= numpy.stack([valid for _, _, valid, *_ in corners], axis=1)
            gix = numpy.einsum("nkp,nkp->np", gv, numpy.stack([cn[3] for cn in corners], 1))
            giy = numpy.einsum("nkp,nkp->np", gv, numpy.stack([cn[4] for cn in corners], 1))
            dgrid = numpy.empty(grid.shape, dtype=grid.dtype)
            dgrid[..., 0] = (gix * dix).reshape(grid.shape[:-1])
            dgrid[..., 1] = (giy * diy).reshape(grid.shape[:-1])
        return dx, dgrid


def grid_sample(
    input: Tensor,
    grid: Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Tensor:
    """Sample input (N, C, H, W) at the normalized (x, y) locations of grid (N, H_out, W_out,
    2), -1 and 1 being the edges (or with align_corners the corner pixels' centres), as
    PyTorch does: mode "bilinear" or "nearest", padding_mode "zeros", "border" or
    "reflection" for locations outside the input. Differentiable in input and (bilinear) grid.
    5-D (volumetric) inputs and mode "bicubic" are not supported (an error says so).

    >>> import gradflow
    >>> x = gradflow.arange(4.0).reshape(1, 1, 2, 2)
    >>> grid = gradflow.tensor([[[[0.0, 0.0]]]])  # the centre
    >>> grid_sample(x, grid, align_corners=True).item()
    1.5
    """
    op = "grid_sample"
    x = float_input(input, op)
    grid = float_input(grid, op, "grid")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(
            "nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or "
            f"'bicubic', but got: '{mode}'"
        )
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(
            "nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
            f"'reflection', but got: '{padding_mode}'"
        )
    if mode == "bicubic":
        raise NotImplementedError(
            "grid_sample: mode 'bicubic' is not supported by gradflow; use 'bilinear' (or "
            "upsample with interpolate(mode='bicubic') first)"
        )
    if x.ndim == 5:
        raise NotImplementedError(
            "grid_sample: 5-D (volumetric) inputs are not supported by gradflow; sample each "
            "depth slice of a 4-D view with a 2-D grid instead"
        )
    if x.ndim != 4 or grid.ndim != 4:
        raise RuntimeError(
            "grid_sampler(): expected 4D input and grid with same number of dimensions, but "
            f"got input with sizes {list(x.shape)} and grid with sizes {list(grid.shape)}"
        )
    if grid.shape[0] != x.shape[0]:
        raise RuntimeError(
            "grid_sampler(): expected grid and input to have same batch size, but got input "
            f"with sizes {list(x.shape)} and grid with sizes {list(grid.shape)}"
        )
    if grid.shape[-1] != 2:
        raise RuntimeError(
            "grid_sampler(): expected grid to have size 2 in last dimension, but got grid with "
            f"sizes {list(grid.shape)}"
        )
    if min(x.shape[2:]) <= 0:
        raise RuntimeError(
            f"grid_sampler(): expected input to have non-empty spatial dimensions, but input "
            f"has sizes {list(x.shape)}"
        )
    if grid.dtype != x.dtype:
        raise TypeError(
            f"grid_sample: grid is {grid.dtype} but input is {x.dtype}; convert one to match"
        )
    return GridSample.apply(x, grid, mode=mode, padding_mode=padding_mode,
                            align_corners=bool(align_corners))  # fmt: skip
