"""kernels/pooling.cu through its launchers on the CPU emulation, against NumPy float64
references that visit each output window in turn."""

import numpy as np
import pytest
from kernel_reference import TOLERANCES

from gradflow.kernels.pooling import (
    avg_pool2d_bwd,
    avg_pool2d_fwd,
    max_pool2d_bwd,
    max_pool2d_fwd,
)

# (x shape, kernel, output size, stride, padding, dilation): a single pixel, windows with
# padding, a ceil-mode size whose last window runs past the (padded) input, dilation, and
# 1,824 outputs (several rounds of the 4-block grid, 256 threads each).
CASES = [
    ((1, 1, 1, 1), (1, 1), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((1, 2, 5, 4), (3, 3), (3, 2), (2, 2), (1, 1), (1, 1)),
    ((2, 3, 7, 9), (2, 3), (4, 4), (2, 2), (1, 1), (1, 1)),
    ((2, 1, 9, 8), (3, 2), (3, 3), (2, 3), (1, 1), (2, 2)),
    ((1, 2, 6, 6), (3, 3), (3, 3), (2, 2), (0, 0), (1, 1)),
    ((2, 3, 20, 17), (2, 2), (19, 16), (1, 1), (0, 0), (1, 1)),
]
AVG_CASES = [case for case in CASES if case[5] == (1, 1)]  # average pooling has no dilation


def _windows(x_shape, kernel, out, stride, padding, dilation):
    """Per output pixel (r, q): the list of (offset, row, col) of its window inside the input."""
    h, w = x_shape[2:]
    for r in range(out[0]):
        for q in range(out[1]):
            cells = []
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    row = r * stride[0] - padding[0] + i * dilation[0]
                    col = q * stride[1] - padding[1] + j * dilation[1]
                    if 0 <= row < h and 0 <= col < w:
                        cells.append((i * kernel[1] + j, row, col))
            yield r, q, cells


def reference_max_pool(x, kernel, out, stride, padding, dilation):
    y = np.zeros((*x.shape[:2], *out))
    arg = np.zeros((*x.shape[:2], *out), np.int32)
    for r, q, cells in _windows(x.shape, kernel, out, stride, padding, dilation):
        values = np.stack([x[:, :, row, col] for _, row, col in cells], axis=-1)
        first = values.argmax(axis=-1)  # the first of equal maxima
        y[:, :, r, q] = values.max(axis=-1)
        arg[:, :, r, q] = np.array([k for k, _, _ in cells])[first]
    return y, arg


def reference_max_pool_grad(g, arg, x_shape, kernel, out, stride, padding, dilation):
    dx = np.zeros(x_shape)
    for r, q, cells in _windows(x_shape, kernel, out, stride, padding, dilation):
        for k, row, col in cells:
            dx[:, :, row, col] += np.where(arg[:, :, r, q] == k, g[:, :, r, q], 0)
    return dx


def torch_divisor(r, q, x_shape, kernel, stride, padding, count_include_pad):
    """PyTorch's avg_pool2d divisor, spelled out."""
    h, w = x_shape[2:]
    h0, w0 = r * stride[0] - padding[0], q * stride[1] - padding[1]
    h1, w1 = min(h0 + kernel[0], h + padding[0]), min(w0 + kernel[1], w + padding[1])
    if count_include_pad:
        return (h1 - h0) * (w1 - w0)
    return (min(h1, h) - max(h0, 0)) * (min(w1, w) - max(w0, 0))


def reference_avg_pool(x, kernel, out, stride, padding, count_include_pad, divisor):
    y = np.zeros((*x.shape[:2], *out))
    for r, q, cells in _windows(x.shape, kernel, out, stride, padding, (1, 1)):
        d = divisor or torch_divisor(r, q, x.shape, kernel, stride, padding, count_include_pad)
        y[:, :, r, q] = sum(x[:, :, row, col] for _, row, col in cells) / d
    return y


def reference_avg_pool_grad(g, x_shape, kernel, out, stride, padding, count_include_pad, divisor):
    dx = np.zeros(x_shape)
    for r, q, cells in _windows(x_shape, kernel, out, stride, padding, (1, 1)):
        d = divisor or torch_divisor(r, q, x_shape, kernel, stride, padding, count_include_pad)
        for _, row, col in cells:
            dx[:, :, row, col] += g[:, :, r, q] / d
    return dx


@pytest.mark.parametrize("case", CASES)
def test_max_pool2d_fwd_bwd_match_reference(emu, dtype, case):
    x_shape, kernel, out, stride, padding, dilation = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    x.reshape(-1)[::5] = 0.5  # ties inside windows: the first offset must win
    options = dict(stride=stride, padding=padding, dilation=dilation)
    y, arg = max_pool2d_fwd(x, kernel, out, backend=emu, **options)
    ref_y, ref_arg = reference_max_pool(x.astype(np.float64), kernel, out, **options)
    assert y.dtype == dtype and arg.dtype == np.int32 and y.shape == arg.shape == ref_y.shape
    np.testing.assert_array_equal(y, ref_y.astype(dtype))
    np.testing.assert_array_equal(arg, ref_arg)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = max_pool2d_bwd(g, arg, x_shape, kernel, backend=emu, **options)
    expected = reference_max_pool_grad(g.astype(np.float64), arg, x_shape, kernel, out, **options)
    np.testing.assert_allclose(dx, expected, **TOLERANCES[dtype])


def test_max_pool2d_fwd_propagates_nan(emu):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    y, arg = max_pool2d_fwd(x, (2, 2), (2, 2), stride=(2, 2), backend=emu)
    assert np.isnan(y[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 1
    np.testing.assert_array_equal(y[0, 0].ravel()[1:], [7.0, 13.0, 15.0])


@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize(
    "count_include_pad,divisor",
    [(True, None), (False, None), (True, 3)],
    ids=["pad", "nopad", "d3"],
)
def test_avg_pool2d_fwd_bwd_match_reference(emu, dtype, case, count_include_pad, divisor):
    x_shape, kernel, out, stride, padding, _ = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    options = dict(stride=stride, padding=padding, count_include_pad=count_include_pad,
                   divisor_override=divisor)  # fmt: skip
    y = avg_pool2d_fwd(x, kernel, out, backend=emu, **options)
    tol = TOLERANCES[dtype]
    expected = reference_avg_pool(x.astype(np.float64), kernel, out, stride, padding,
                                  count_include_pad, divisor)  # fmt: skip
    np.testing.assert_allclose(y, expected, rtol=tol["rtol"], atol=tol["atol"] * 10)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = avg_pool2d_bwd(g, x_shape, kernel, backend=emu, **options)
    expected = reference_avg_pool_grad(g.astype(np.float64), x_shape, kernel, out, stride,
                                       padding, count_include_pad, divisor)  # fmt: skip
    np.testing.assert_allclose(dx, expected, rtol=tol["rtol"], atol=tol["atol"] * 10)


def test_pooling_launcher_errors(emu):
    x = np.zeros((1, 2, 4, 4))
    g = np.zeros((1, 2, 2, 2))
    arg = np.zeros((1, 2, 2, 2), np.int32)
    with pytest.raises(
        ValueError,
        match=r"max_pool2d_fwd: argument 'x' has shape \(2, 4, 4\) and dtype float64; expected "
        r"a 4-D array \(\[N, C, H, W\]\)",
    ):
        max_pool2d_fwd(x[0], (2, 2), (2, 2), stride=(2, 2), backend=emu)
    with pytest.raises(
        TypeError,
        match=r"max_pool2d_bwd: argument 'argmax' has shape \(1, 2, 2, 2\) and dtype int64; "
        r"expected int32",
    ):
        max_pool2d_bwd(g, arg.astype(np.int64), x.shape, (2, 2), stride=(2, 2), backend=emu)
    with pytest.raises(
        ValueError,
        match=r"max_pool2d_bwd: argument 'argmax' has shape \(1, 2, 2, 1\) and dtype int32; "
        r"expected shape \(1, 2, 2, 2\) \(the shape of 'g'\)",
    ):
        max_pool2d_bwd(g, arg[..., :1], x.shape, (2, 2), stride=(2, 2), backend=emu)
    with pytest.raises(
        ValueError,
        match=r"max_pool2d_bwd: argument 'input_shape' is \(1, 3, 4, 4\); expected \(N, C, H, W\) "
        r"with the \(N, C\) of 'g', \(1, 2\)",
    ):
        max_pool2d_bwd(g, arg, (1, 3, 4, 4), (2, 2), stride=(2, 2), backend=emu)
    with pytest.raises(
        TypeError,
        match=r"avg_pool2d_bwd: argument 'g' has shape \(1, 2, 2, 2\) and dtype float16; "
        "expected float32 or float64",
    ):
        avg_pool2d_bwd(g.astype(np.float16), x.shape, (2, 2), stride=(2, 2), backend=emu)
    with pytest.raises(
        ValueError,
        match=r"avg_pool2d_fwd: argument 'divisor_override' is 0; expected None or a nonzero int",
    ):
        avg_pool2d_fwd(x, (2, 2), (2, 2), stride=(2, 2), divisor_override=0, backend=emu)
    with pytest.raises(
        ValueError, match=r"avg_pool2d_fwd: argument 'kernel_size' is 2; expected a pair of ints"
    ):
        avg_pool2d_fwd(x, 2, (2, 2), stride=(2, 2), backend=emu)
