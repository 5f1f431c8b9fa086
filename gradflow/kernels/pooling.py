"""Launchers for kernels/pooling.cu: 2-D max and average pooling, forward and backward.

Arrays are [N, C, H, W] (inputs) and [N, C, OH, OW] (outputs, their gradients, argmax).
Geometry arguments are pairs of ints (rows, columns); ``padding`` is the top/left padding and
the output size is the caller's (floor or ceil mode), so the kernels never recompute it.
Max pooling records, per output, the offset ``i * kw + j`` of the maximum in its window as an
int32 array: that is all its backward needs (not the input).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradflow.kernels._common import (
    BLOCK,
    KernelBackend,
    check_array_type,
    check_device,
    check_float_arrays,
    check_ndim,
    check_shape,
    contiguous,
    describe,
    grid_1d,
    resolve_backend,
)
from gradflow.kernels.conv import Pair, int_pair


def _geometry(launcher: str, output_size: Pair, kernel_size: Pair, stride: Pair, padding: Pair):
    """(OH, OW, kh, kw, sh, sw, ph, pw) as Python ints, validated."""
    return (
        *int_pair(launcher, "output_size", output_size, 1),
        *int_pair(launcher, "kernel_size", kernel_size, 1),
        *int_pair(launcher, "stride", stride, 1),
        *int_pair(launcher, "padding", padding, 0),
    )


def _input_shape(launcher: str, input_shape: Sequence[int], g: Any) -> tuple[int, ...]:
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 4 or min(shape) < 0 or shape[:2] != tuple(g.shape[:2]):
        raise ValueError(
            f"{launcher}: argument 'input_shape' is {tuple(input_shape)}; expected (N, C, H, W) "
            f"with the (N, C) of 'g', {tuple(g.shape[:2])}"
        )
    return shape


def _launch(backend, device, dtype, kernel, work, arrays, shape, geometry, more=()) -> None:
    n, c, h, w = shape
    args = (*arrays, *(np.int64(v) for v in (n * c, h, w, *geometry)), *more)
    grid = (grid_1d(backend, device, work), 1, 1)
    backend.launch("pooling", dtype, kernel, grid, (BLOCK, 1, 1), args, device)


def max_pool2d_fwd(
    x: Any,
    kernel_size: Pair,
    output_size: Pair,
    *,
    stride: Pair,
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    backend: KernelBackend | None = None,
) -> tuple[Any, Any]:
    """Max pooling of x [N, C, H, W]: returns (y, argmax), both [N, C, OH, OW].

    ``y[n, c, oh, ow]`` is the maximum of x over rows ``oh*sh - ph + i*dh`` and columns
    ``ow*sw - pw + j*dw`` (i < kh, j < kw) inside x; argmax (int32) is the winning ``i*kw + j``.
    NaN wins, as in PyTorch; ties keep the first offset.
    """
    launcher = "max_pool2d_fwd"
    backend = resolve_backend(backend)
    dtype, device = check_float_arrays(launcher, backend, x=x)
    check_ndim(launcher, "x", x, 4, "[N, C, H, W]")
    geometry = _geometry(launcher, output_size, kernel_size, stride, padding)
    geometry += int_pair(launcher, "dilation", dilation, 1)
    out_shape = (*x.shape[:2], *geometry[:2])
    y = backend.empty(out_shape, dtype, device)
    argmax = backend.empty(out_shape, np.int32, device)
    if y.size and x.size:
        (x,) = contiguous(backend, x)
        _launch(backend, device, dtype, "max_pool2d_fwd", y.size, (x, y, argmax), x.shape,
                geometry)  # fmt: skip
    return y, argmax


def max_pool2d_bwd(
    g: Any,
    argmax: Any,
    input_shape: Sequence[int],
    kernel_size: Pair,
    *,
    stride: Pair,
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    backend: KernelBackend | None = None,
) -> Any:
    """The input gradient of :func:`max_pool2d_fwd`: dx [N, C, H, W] (H, W from input_shape).

    Each input pixel sums the g of the windows whose argmax it is (a gather: no atomics).
    """
    launcher = "max_pool2d_bwd"
    backend = resolve_backend(backend)
    dtype, device = check_float_arrays(launcher, backend, g=g)
    check_ndim(launcher, "g", g, 4, "[N, C, OH, OW]")
    check_array_type(launcher, backend, "argmax", argmax)
    if argmax.dtype != np.int32:
        raise TypeError(
            f"{launcher}: argument 'argmax' has {describe(argmax)}; expected int32 (the window "
            "offsets max_pool2d_fwd returns)"
        )
    check_shape(launcher, "argmax", argmax, g.shape, "the shape of 'g'")
    check_device(launcher, backend, "argmax", argmax, device, "g")
    shape = _input_shape(launcher, input_shape, g)
    geometry = _geometry(launcher, g.shape[2:], kernel_size, stride, padding)
    geometry += int_pair(launcher, "dilation", dilation, 1)
    dx = backend.empty(shape, dtype, device)
    if dx.size:
        g, argmax = contiguous(backend, g, argmax)
        _launch(backend, device, dtype, "max_pool2d_bwd", dx.size, (g, argmax, dx), shape,
                geometry)  # fmt: skip
    return dx


def _avg_options(launcher: str, count_include_pad: bool, divisor_override: Any) -> tuple:
    if divisor_override is not None and (
        not isinstance(divisor_override, int | np.integer) or divisor_override == 0
    ):
        raise ValueError(
            f"{launcher}: argument 'divisor_override' is {divisor_override!r}; expected None or "
            "a nonzero int"
        )
    return np.int32(bool(count_include_pad)), np.int64(divisor_override or 0)


def avg_pool2d_fwd(
    x: Any,
    kernel_size: Pair,
    output_size: Pair,
    *,
    stride: Pair,
    padding: Pair = (0, 0),
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    backend: KernelBackend | None = None,
) -> Any:
    """Average pooling of x [N, C, H, W]: returns y [N, C, OH, OW].

    Each window's sum is divided by divisor_override when given, else by the window's size
    clipped to the padded input (count_include_pad=True) or by its number of input pixels
    (PyTorch's avg_pool2d rule, ceil_mode windows included).
    """
    launcher = "avg_pool2d_fwd"
    backend = resolve_backend(backend)
    dtype, device = check_float_arrays(launcher, backend, x=x)
    check_ndim(launcher, "x", x, 4, "[N, C, H, W]")
    geometry = _geometry(launcher, output_size, kernel_size, stride, padding)
    options = _avg_options(launcher, count_include_pad, divisor_override)
    y = backend.empty((*x.shape[:2], *geometry[:2]), dtype, device)
    if y.size:
        (x,) = contiguous(backend, x)
        _launch(backend, device, dtype, "avg_pool2d_fwd", y.size, (x, y), x.shape, geometry,
                options)  # fmt: skip
    return y


def avg_pool2d_bwd(
    g: Any,
    input_shape: Sequence[int],
    kernel_size: Pair,
    *,
    stride: Pair,
    padding: Pair = (0, 0),
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    backend: KernelBackend | None = None,
) -> Any:
    """The input gradient of :func:`avg_pool2d_fwd`: dx [N, C, H, W] (H, W from input_shape).

    Each input pixel sums g / divisor over the windows that hold it (a gather: no atomics).
    """
    launcher = "avg_pool2d_bwd"
    backend = resolve_backend(backend)
    dtype, device = check_float_arrays(launcher, backend, g=g)
    check_ndim(launcher, "g", g, 4, "[N, C, OH, OW]")
    shape = _input_shape(launcher, input_shape, g)
    geometry = _geometry(launcher, g.shape[2:], kernel_size, stride, padding)
    options = _avg_options(launcher, count_include_pad, divisor_override)
    dx = backend.empty(shape, dtype, device)
    if dx.size:
        (g,) = contiguous(backend, g)
        _launch(backend, device, dtype, "avg_pool2d_bwd", dx.size, (g, dx), shape, geometry,
                options)  # fmt: skip
    return dx
