"""Launchers for kernels/conv.cu: im2col_fwd and col2im (the gather adjoint of im2col).

A 2-D convolution is ``weight [O, C*kh*kw] @ cols [C*kh*kw, N*OH*OW]`` (cuBLAS through
``xp.matmul``); these kernels move the data around that GEMM. Geometry arguments are pairs of
ints (rows, columns): ``padding`` is the top/left padding (the bottom/right padding follows from
``output_size``), so asymmetric ("same") padding needs no extra argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradflow.kernels._common import (
    BLOCK,
    KernelBackend,
    check_float_arrays,
    check_ndim,
    check_shape,
    contiguous,
    grid_1d,
    resolve_backend,
)

Pair = Sequence[int]


def int_pair(launcher: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    """``value`` as a pair of Python ints, each at least ``minimum``; a clear error otherwise."""
    pair = tuple(value) if isinstance(value, Sequence) else None
    ok = pair is not None and len(pair) == 2
    ok = ok and all(isinstance(v, int | np.integer) and v >= minimum for v in pair)
    if not ok:
        raise ValueError(
            f"{launcher}: argument '{name}' is {value!r}; expected a pair of ints >= {minimum}"
        )
    return int(pair[0]), int(pair[1])


def _geometry(
    launcher: str, kernel_size: Pair, output_size: Pair, stride: Pair, padding: Pair,
    dilation: Pair,
) -> tuple[np.int64, ...]:  # fmt: skip
    """(kh, kw, OH, OW, sh, sw, pt, pl, dh, dw) as the kernels' int64 arguments."""
    pairs = (
        int_pair(launcher, "kernel_size", kernel_size, 1),
        int_pair(launcher, "output_size", output_size, 1),
        int_pair(launcher, "stride", stride, 1),
        int_pair(launcher, "padding", padding, 0),
        int_pair(launcher, "dilation", dilation, 1),
    )
    return tuple(np.int64(v) for pair in pairs for v in pair)


def im2col_fwd(
    x: Any,
    kernel_size: Pair,
    output_size: Pair,
    *,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    backend: KernelBackend | None = None,
) -> Any:
    """The columns of a 2-D convolution's input: returns cols [C*kh*kw, N*OH*OW].

    x is [N, C, H, W]. Row (c, i, j), column (n, oh, ow) of cols holds
    ``x[n, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]``, or 0 outside x (zero padding), with
    (kh, kw) = kernel_size, (OH, OW) = output_size, (sh, sw) = stride, (pt, pl) = padding
    (top, left) and (dh, dw) = dilation.
    """
    launcher = "im2col_fwd"
    backend = resolve_backend(backend)
    dtype, device = check_float_arrays(launcher, backend, x=x)
    check_ndim(launcher, "x", x, 4, "[N, C, H, W]")
    geometry = _geometry(launcher, kernel_size, output_size, stride, padding, dilation)
    kh, kw, oh, ow = (int(v) for v in geometry[:4])
    n, c, h, w = x.shape
    cols = backend.empty((c * kh * kw, n * oh * ow), dtype, device)
    if cols.size:
        (x,) = contiguous(backend, x)
        grid = (grid_1d(backend, device, cols.size), 1, 1)
        args = (x, cols, *(np.int64(v) for v in (n, c, h, w)), *geometry)
        backend.launch("conv", dtype, "im2col_fwd", grid, (BLOCK, 1, 1), args, device)
    return cols


def col2im(
    cols: Any,
    input_shape: Sequence[int],
    kernel_size: Pair,
    output_size: Pair,
    *,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    backend: KernelBackend | None = None,
) -> Any:
    """The adjoint of :func:`im2col_fwd`: sums columns back into an [N, C, H, W] array.

    cols is [C*kh*kw, N*OH*OW] with (N, C, H, W) = input_shape. Each element of the result
    gathers the entries of cols that im2col_fwd would have copied from it, in a fixed order (no
    atomics, deterministic). With cols = W^T @ dY this is a convolution's input gradient, and a
    transposed convolution's output.
    """
    launcher = "col2im"
    backend = resolve_backend(backend)
    dtype, device = check_float_arrays(launcher, backend, cols=cols)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(
            f"{launcher}: argument 'input_shape' is {tuple(input_shape)}; expected (N, C, H, W)"
        )
    geometry = _geometry(launcher, kernel_size, output_size, stride, padding, dilation)
    kh, kw, oh, ow = (int(v) for v in geometry[:4])
    n, c = shape[:2]
    expected = (c * kh * kw, n * oh * ow)
    check_shape(launcher, "cols", cols, expected, "[C*kh*kw, N*OH*OW]")
    dx = backend.empty(shape, dtype, device)
    if dx.size:
        (cols,) = contiguous(backend, cols)
        grid = (grid_1d(backend, device, dx.size), 1, 1)
        args = (cols, dx, *(np.int64(v) for v in shape), *geometry)
        backend.launch("conv", dtype, "col2im", grid, (BLOCK, 1, 1), args, device)
    return dx
