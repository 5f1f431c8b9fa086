"""kernels/conv.cu (im2col_fwd, col2im) through its launchers on the CPU emulation, against
NumPy float64 references written pixel-row by pixel-row."""

import numpy as np
import pytest
from kernel_reference import TOLERANCES

from gradflow.kernels.conv import col2im, im2col_fwd

# (x shape, kernel, output size, stride, padding (top, left), dilation). Output sizes that
# leave bottom/right padding, or leave trailing input rows unread; cols of 9 and 6 elements
# (less than a block) and of 1,000s (several rounds of the 4-block grid).
CASES = [
    ((1, 1, 1, 1), (1, 1), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((1, 1, 3, 3), (3, 3), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((1, 2, 2, 3), (1, 3), (3, 1), (1, 1), (1, 0), (1, 1)),
    ((2, 3, 7, 6), (3, 3), (7, 6), (1, 1), (1, 1), (1, 1)),
    ((2, 3, 9, 8), (3, 2), (4, 5), (2, 1), (1, 2), (2, 3)),
    ((3, 5, 11, 13), (2, 4), (5, 6), (2, 2), (0, 1), (1, 1)),
    ((2, 4, 6, 5), (4, 4), (4, 3), (1, 2), (2, 2), (1, 1)),
]


def reference_im2col(x, kernel, out, stride, padding, dilation):
    """cols[(c, i, j), (n, oh, ow)], one kernel offset at a time, in float64."""
    n, c, h, w = x.shape
    (kh, kw), (oh, ow), (sh, sw), (pt, pl), (dh, dw) = kernel, out, stride, padding, dilation
    cols = np.zeros((c, kh, kw, n, oh, ow))
    for i in range(kh):
        for j in range(kw):
            for r in range(oh):
                row = r * sh - pt + i * dh
                if not 0 <= row < h:
                    continue
                for q in range(ow):
                    col = q * sw - pl + j * dw
                    if 0 <= col < w:
                        cols[:, i, j, :, r, q] = x[:, :, row, col].T
    return cols.reshape(c * kh * kw, n * oh * ow)


def reference_col2im(cols, x_shape, kernel, out, stride, padding, dilation):
    """The adjoint: each column entry added back at the pixel it was copied from."""
    n, c, h, w = x_shape
    (kh, kw), (oh, ow), (sh, sw), (pt, pl), (dh, dw) = kernel, out, stride, padding, dilation
    per = cols.astype(np.float64).reshape(c, kh, kw, n, oh, ow)
    dx = np.zeros(x_shape)
    for i in range(kh):
        for j in range(kw):
            for r in range(oh):
                row = r * sh - pt + i * dh
                for q in range(ow):
                    col = q * sw - pl + j * dw
                    if 0 <= row < h and 0 <= col < w:
                        dx[:, :, row, col] += per[:, i, j, :, r, q].T
    return dx


def _geometry(case):
    _, kernel, out, stride, padding, dilation = case
    return dict(stride=stride, padding=padding, dilation=dilation), kernel, out


@pytest.mark.parametrize("case", CASES)
def test_im2col_fwd_matches_reference(emu, dtype, case):
    x = np.random.default_rng(0).standard_normal(case[0]).astype(dtype)
    options, kernel, out = _geometry(case)
    cols = im2col_fwd(x, kernel, out, backend=emu, **options)
    expected = reference_im2col(x.astype(np.float64), kernel, out, **options)
    assert cols.dtype == dtype and cols.shape == expected.shape
    np.testing.assert_array_equal(cols, expected.astype(dtype))  # a pure copy: exact


@pytest.mark.parametrize("case", CASES)
def test_col2im_matches_reference_and_is_the_adjoint(emu, dtype, case):
    rng = np.random.default_rng(1)
    options, kernel, out = _geometry(case)
    x_shape = case[0]
    rows = x_shape[1] * kernel[0] * kernel[1]
    cols = rng.standard_normal((rows, x_shape[0] * out[0] * out[1])).astype(dtype)
    dx = col2im(cols, x_shape, kernel, out, backend=emu, **options)
    expected = reference_col2im(cols, x_shape, kernel, out, **options)
    assert dx.shape == x_shape and dx.dtype == dtype
    tol = TOLERANCES[dtype]
    np.testing.assert_allclose(dx, expected, rtol=tol["rtol"], atol=tol["atol"] * 10)
    # <im2col(x), cols> == <x, col2im(cols)>
    x = rng.standard_normal(x_shape).astype(dtype)
    lhs = (im2col_fwd(x, kernel, out, backend=emu, **options).astype(np.float64) * cols).sum()
    np.testing.assert_allclose(lhs, (x * dx.astype(np.float64)).sum(), rtol=1e-4)


def test_col2im_is_deterministic_and_takes_non_contiguous_columns(emu):
    rng = np.random.default_rng(2)
    cols_t = rng.standard_normal((2 * 2 * 2, 3 * 3 * 3)).astype(np.float32).T  # a view
    options = dict(stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    first = col2im(cols_t, (2, 3, 4, 4), (3, 3), (2, 2), backend=emu, **options)
    again = col2im(cols_t.copy(), (2, 3, 4, 4), (3, 3), (2, 2), backend=emu, **options)
    np.testing.assert_array_equal(first, again)  # fixed summation order: bitwise equal
    expected = reference_col2im(cols_t, (2, 3, 4, 4), (3, 3), (2, 2), **options)
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-6)
    x = rng.standard_normal((3, 2, 6, 6)).transpose(1, 0, 2, 3)  # a non-contiguous input
    cols = im2col_fwd(x, (3, 3), (4, 4), backend=emu)
    np.testing.assert_array_equal(cols, reference_im2col(x, (3, 3), (4, 4), (1, 1), (0, 0), (1, 1)))


def test_empty_batch_gives_empty_arrays(emu):
    cols = im2col_fwd(np.zeros((0, 2, 3, 3)), (2, 2), (2, 2), backend=emu)
    assert cols.shape == (8, 0)
    assert col2im(cols, (0, 2, 3, 3), (2, 2), (2, 2), backend=emu).shape == (0, 2, 3, 3)


def test_conv_launcher_errors(emu):
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(
        ValueError,
        match=r"im2col_fwd: argument 'x' has shape \(2, 4, 4\) and dtype float64; expected a "
        r"4-D array \(\[N, C, H, W\]\)",
    ):
        im2col_fwd(x[0], (3, 3), (2, 2), backend=emu)
    with pytest.raises(
        TypeError,
        match=r"im2col_fwd: argument 'x' has shape \(1, 2, 4, 4\) and dtype int64; expected "
        "float32 or float64",
    ):
        im2col_fwd(x.astype(np.int64), (3, 3), (2, 2), backend=emu)
    with pytest.raises(TypeError, match=r"im2col_fwd: argument 'x' is a list; expected a numpy"):
        im2col_fwd([[1.0]], (1, 1), (1, 1), backend=emu)
    with pytest.raises(
        ValueError, match=r"im2col_fwd: argument 'stride' is \(0, 1\); expected a pair of ints >= 1"
    ):
        im2col_fwd(x, (3, 3), (2, 2), stride=(0, 1), backend=emu)
    with pytest.raises(ValueError, match=r"argument 'padding' is \(1,\); expected a pair"):
        im2col_fwd(x, (3, 3), (2, 2), padding=(1,), backend=emu)
    with pytest.raises(
        ValueError,
        match=r"col2im: argument 'cols' has shape \(18, 4\) and dtype float64; expected shape "
        r"\(18, 8\) \(\[C\*kh\*kw, N\*OH\*OW\]\)",
    ):
        col2im(np.zeros((18, 4)), (2, 2, 4, 4), (3, 3), (2, 2), backend=emu)
    with pytest.raises(
        ValueError, match=r"col2im: argument 'input_shape' is \(2, 4, 4\); expected \(N, C, H, W\)"
    ):
        col2im(np.zeros((18, 4)), (2, 4, 4), (3, 3), (2, 2), backend=emu)
    with pytest.raises(TypeError, match=r"col2im: argument 'cols' .* dtype float16; expected"):
        col2im(np.zeros((18, 4), np.float16), (1, 2, 4, 4), (3, 3), (2, 2), backend=emu)
