"""kernels/fused.cu through its launchers on the CPU emulation, against NumPy float64."""

import numpy as np
import pytest
from kernel_reference import TOLERANCES, activation_grad, xent_grad, xent_rows

from gradflow.kernels import (
    FUSED_ACTIVATIONS,
    bias_act_bwd,
    softmax_xent_bwd,
    softmax_xent_fwd,
    sum_to_bias,
)
from gradflow.testing.emulation import EmulationBackend

# (N, C): one row or column, partial column strips (C = 7, 33), more strips than the grid cap
# (C = 200 > 4 * 32, the strip loop goes round), and N large enough to split rows into slices.
SHAPES = [(1, 1), (7, 33), (64, 7), (300, 200), (1000, 5)]


def _random(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", FUSED_ACTIVATIONS)
def test_bias_act_bwd_matches_reference(emu, dtype, act, shape):
    dy, z = _random(shape, dtype, 0), _random(shape, dtype, 1) * 2
    dz, db = bias_act_bwd(dy, z, act, backend=emu)
    expected = dy.astype(np.float64) * activation_grad(act, z.astype(np.float64))
    np.testing.assert_allclose(dz, expected, **TOLERANCES[dtype])
    tol = TOLERANCES[dtype]
    np.testing.assert_allclose(db, expected.sum(axis=0), rtol=tol["rtol"], atol=tol["atol"] * 50)
    assert dz.dtype == db.dtype == dtype and db.shape == (shape[1],)


def test_bias_sums_are_deterministic_and_use_row_slices(emu):
    g = _random((1000, 5), np.float32, 3)
    wide = EmulationBackend(max_grid_blocks=16)  # 1 strip, 16 row slices -> column_sum pass
    first = sum_to_bias(g, backend=wide)
    np.testing.assert_array_equal(first, sum_to_bias(g, backend=wide))
    np.testing.assert_allclose(first, g.astype(np.float64).sum(axis=0), rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1), (3, 4, 7), (257, 40)])
def test_sum_to_bias_reduces_leading_axes(emu, dtype, shape):
    g = _random(shape, dtype, 4)
    out = sum_to_bias(g, backend=emu)
    expected = g.astype(np.float64).reshape(-1, shape[-1]).sum(axis=0)
    tol = TOLERANCES[dtype]
    np.testing.assert_allclose(out, expected, rtol=tol["rtol"], atol=tol["atol"] * 50)


def test_sum_to_bias_of_no_rows_is_zero(emu):
    np.testing.assert_array_equal(sum_to_bias(np.empty((0, 3)), backend=emu), np.zeros(3))


def _xent_case(dtype, n, c, seed, ignore=True):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, c)) * 4).astype(dtype)
    target = rng.integers(0, c, n).astype(np.int64)
    if ignore and n > 2:
        target[1] = -100
    weight = rng.uniform(0.2, 2.0, c).astype(dtype)
    return logits, target, weight


XENT_SHAPES = [(1, 1), (5, 3), (9, 300), (70, 10)]  # C > 256 makes threads loop over columns


@pytest.mark.parametrize("shape", XENT_SHAPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_xent_fwd_bwd_match_reference(emu, dtype, shape, smoothing, weighted):
    logits, target, weight = _xent_case(dtype, *shape, seed=5)
    weight = weight if weighted else None
    loss, stats = softmax_xent_fwd(
        logits, target, label_smoothing=smoothing, weight=weight, backend=emu
    )
    tol = TOLERANCES[dtype]
    assert stats.shape == (2, shape[0]) and stats.dtype == dtype
    np.testing.assert_array_equal(stats[0], logits.max(axis=1))
    x64 = logits.astype(np.float64)
    m = x64.max(axis=1)
    np.testing.assert_allclose(stats[1], np.log(np.exp(x64 - m[:, None]).sum(axis=1)), **tol)
    expected = xent_rows(logits, target, weight, -100, smoothing)
    np.testing.assert_allclose(loss, expected, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)

    scale = np.random.default_rng(6).uniform(0.5, 1.5, shape[0]).astype(dtype)
    cases = [(0.25, 0.25), (dtype.type(0.5), 0.5), (scale[:1], scale[0]), (scale, scale)]
    for grad_scale, s in cases:
        d = softmax_xent_bwd(
            logits, stats, target, grad_scale, label_smoothing=smoothing, weight=weight, backend=emu
        )
        expected = xent_grad(logits, target, weight, -100, smoothing, np.broadcast_to(s, shape[:1]))
        np.testing.assert_allclose(d, expected, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)


def test_softmax_xent_grid_stride_over_rows(emu):
    logits, target, _ = _xent_case(
        np.float64, 11, 6, seed=7, ignore=False
    )  # 11 rows on a 4-block grid
    loss, stats = softmax_xent_fwd(logits, target, ignore_index=3, backend=emu)
    np.testing.assert_allclose(loss, xent_rows(logits, target, None, 3, 0.0), rtol=1e-12)
    d = softmax_xent_bwd(logits, stats, target, 1.0, ignore_index=3, backend=emu)
    np.testing.assert_allclose(d, xent_grad(logits, target, None, 3, 0.0, np.ones(11)), atol=1e-14)
    assert np.all(d[target == 3] == 0)


def test_softmax_xent_marks_out_of_range_targets_nan(emu):
    logits = np.zeros((3, 4))
    target = np.array([0, 4, -1], dtype=np.int64)
    loss, stats = softmax_xent_fwd(logits, target, backend=emu)
    assert np.isfinite(loss[0]) and np.isnan(loss[1]) and np.isnan(loss[2])
    d = softmax_xent_bwd(logits, stats, target, 1.0, backend=emu)
    assert np.all(np.isfinite(d[0])) and np.all(np.isnan(d[1:]))


def test_softmax_xent_is_stable_for_huge_logits(emu, dtype):
    logits = np.array([[1e4, 0.0, -1e4]], dtype=dtype)
    target = np.array([1], dtype=np.int64)
    loss, stats = softmax_xent_fwd(logits, target, backend=emu)
    np.testing.assert_allclose(loss, [1e4], rtol=1e-6)
    d = softmax_xent_bwd(logits, stats, target, 1.0, backend=emu)
    np.testing.assert_allclose(d, [[1.0, -1.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_xent_matches_pytorch(emu, smoothing, weighted):
    torch = pytest.importorskip("torch")
    logits, target, weight = _xent_case(np.float64, 12, 9, seed=8)
    weight = weight if weighted else None
    x = torch.tensor(logits, requires_grad=True)
    w = None if weight is None else torch.tensor(weight)
    t = torch.tensor(target)
    ref = torch.nn.functional.cross_entropy(
        x, t, weight=w, label_smoothing=smoothing, reduction="mean"
    )
    ref.backward()
    loss, stats = softmax_xent_fwd(
        logits, target, label_smoothing=smoothing, weight=weight, backend=emu
    )
    kept = target != -100
    denom = (weight[target[kept]] if weighted else np.ones(kept.sum())).sum()
    np.testing.assert_allclose(loss.sum() / denom, ref.item(), rtol=1e-12)
    d = softmax_xent_bwd(
        logits, stats, target, 1.0 / denom, label_smoothing=smoothing, weight=weight, backend=emu
    )
    np.testing.assert_allclose(d, x.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_fused_errors(emu):
    x = np.zeros((3, 4))
    t = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match=r"bias_act_bwd: unknown activation 'gelu'; expected one"):
        bias_act_bwd(x, x, "gelu", backend=emu)
    with pytest.raises(
        ValueError,
        match=r"bias_act_bwd: argument 'dy' has shape \(12,\) and dtype "
        r"float64; expected a 2-D array \(\[N, C\]\)",
    ):
        bias_act_bwd(x.ravel(), x.ravel(), "relu", backend=emu)
    with pytest.raises(
        ValueError,
        match=r"bias_act_bwd: argument 'z' has shape \(3, 5\) .*"
        r"expected shape \(3, 4\) \(the shape of 'dy'\)",
    ):
        bias_act_bwd(x, np.zeros((3, 5)), "relu", backend=emu)
    with pytest.raises(
        ValueError,
        match=r"sum_to_bias: argument 'g' has shape \(4,\) and dtype "
        r"float64; expected \[..., C\], 2-D\+",
    ):
        sum_to_bias(np.zeros(4), backend=emu)
    with pytest.raises(
        TypeError,
        match=r"softmax_xent_fwd: argument 'target' has shape \(3,\) "
        r"and dtype int32; expected int64",
    ):
        softmax_xent_fwd(x, t.astype(np.int32), backend=emu)
    with pytest.raises(
        ValueError,
        match=r"argument 'target' has shape \(2,\) and dtype int64; "
        r"expected shape \(3,\) \(one class index per row of 'logits'\)",
    ):
        softmax_xent_fwd(x, t[:2], backend=emu)
    with pytest.raises(
        ValueError,
        match=r"argument 'weight' has shape \(3,\) and dtype float64; "
        r"expected shape \(4,\) \(one weight per class\)",
    ):
        softmax_xent_fwd(x, t, weight=np.ones(3), backend=emu)
    with pytest.raises(
        ValueError,
        match=r"softmax_xent_fwd: argument 'logits' has shape \(3, 0\) "
        r"and dtype float64; C must be >= 1",
    ):
        softmax_xent_fwd(np.zeros((3, 0)), t, backend=emu)
    with pytest.raises(TypeError, match=r"softmax_xent_fwd: argument 'target' is a list"):
        softmax_xent_fwd(x, [0, 0, 0], backend=emu)
    with pytest.raises(
        ValueError,
        match=r"softmax_xent_bwd: argument 'row_stats' has shape \(3,\) .*"
        r"expected shape \(2, 3\) \(softmax_xent_fwd's row stats for 'logits'\)",
    ):
        softmax_xent_bwd(x, np.zeros(3), t, 1.0, backend=emu)
    with pytest.raises(
        ValueError,
        match=r"softmax_xent_bwd: argument 'grad_scale' has shape "
        r"\(2,\) and dtype float64; expected a float, a one-element array or "
        r"shape \(3,\)",
    ):
        softmax_xent_bwd(x, np.zeros((2, 3)), t, np.ones(2), backend=emu)
    with pytest.raises(
        TypeError,
        match=r"softmax_xent_bwd: argument 'grad_scale' has shape "
        r"\(3,\) and dtype float32; expected dtype float64 like 'logits'",
    ):
        softmax_xent_bwd(x, np.zeros((2, 3)), t, np.ones(3, np.float32), backend=emu)


def test_softmax_xent_fwd_float32_loss_is_accurate_at_1e4():
    """Large logits: the loss is formed from differences to the row max, not lse - x[t]."""
    from gradflow.kernels import softmax_xent_fwd
    from gradflow.testing.emulation import EmulationBackend

    rng = np.random.default_rng(11)
    x64 = 1e4 + rng.standard_normal((5, 9)) * 3
    target = rng.integers(0, 9, size=5).astype(np.int64)
    loss, _ = softmax_xent_fwd(
        x64.astype(np.float32), target, label_smoothing=0.1, backend=EmulationBackend(2)
    )
    x = x64.astype(np.float32).astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    logp = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    ref = -(0.9 * logp[np.arange(5), target] + 0.1 * logp.mean(axis=1))
    np.testing.assert_allclose(loss, ref, rtol=1e-5, atol=1e-5)


# Large logits (issue 13): rows at +1e4 and -1e4 (a spread of a few units, so every class
# counts), one ordinary row, one row whose spread is wide enough that some classes underflow,
# an ignored row. The float32 reference is taken on the float32 logits themselves (cast to
# float64), so it is exact for the kernel's input. When the backward used one stored
# lse = max + log(sum), that sum rounded to the ulp of 1e4 (~1e-3 in float32, ~2e-12 in
# float64) and the softmax carried it as a relative error: max |grad error| 2.8e-4 (float32)
# and 5e-13 (float64), where the NumPy route (max subtracted first) is within 1e-7 / 1e-15.
LARGE_TOLERANCES = {
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
    np.dtype(np.float64): {"rtol": 1e-13, "atol": 1e-15},
}


def _large_logits_case(dtype, n_classes, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, n_classes)) * 3
    x[0] += 1e4  # huge
    x[1] *= 1.5  # normal
    x[2] -= 1e4  # huge, negative
    x[3] = 1e4 + rng.standard_normal(n_classes) * 30  # huge, some classes underflow
    x[4] += 1e4 - 2.5  # huge, ignored
    x[5] = rng.standard_normal(n_classes) - 1e4  # huge, narrow
    target = rng.integers(0, n_classes, 6).astype(np.int64)
    target[4] = -100
    weight = rng.uniform(0.2, 2.0, n_classes).astype(dtype)
    return x.astype(dtype), target, weight


@pytest.mark.parametrize("n_classes", [37, 300])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_xent_is_accurate_for_logits_near_1e4(emu, dtype, n_classes, smoothing, weighted):
    logits, target, weight = _large_logits_case(dtype, n_classes, seed=12)
    weight = weight if weighted else None
    tol = LARGE_TOLERANCES[dtype]
    loss, stats = softmax_xent_fwd(
        logits, target, label_smoothing=smoothing, weight=weight, backend=emu
    )
    expected = xent_rows(logits, target, weight, -100, smoothing)
    # The loss of a row is up to ~100 here: the same relative accuracy, on that scale.
    np.testing.assert_allclose(loss, expected, rtol=tol["rtol"], atol=tol["atol"] * 100)
    scale = np.random.default_rng(13).uniform(0.5, 1.5, 6).astype(dtype)
    for grad_scale, s in [(1.0, 1.0), (scale, scale)]:
        d = softmax_xent_bwd(
            logits, stats, target, grad_scale, label_smoothing=smoothing, weight=weight, backend=emu
        )
        expected = xent_grad(logits, target, weight, -100, smoothing, np.broadcast_to(s, 6))
        np.testing.assert_allclose(d, expected, **tol)
        assert np.all(d[4] == 0)


def test_softmax_xent_grad_at_1e4_matches_the_numpy_softmax(emu, dtype):
    """The kernel's gradient is as close to float64 as the NumPy route's own arithmetic in
    ``dtype`` (max subtracted, then exp(x - m - log(sum))), not just within a fixed tolerance."""
    logits, target, _ = _large_logits_case(dtype, 37, seed=14)
    target[4] = 0
    _, stats = softmax_xent_fwd(logits, target, backend=emu)
    d = softmax_xent_bwd(logits, stats, target, 1.0, backend=emu)
    m = logits.max(axis=1, keepdims=True)
    shifted = logits - m
    p = np.exp(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))
    p[np.arange(6), target] -= 1
    exact = xent_grad(logits, target, None, -100, 0.0, np.ones(6))
    numpy_error = np.abs(p - exact).max()
    kernel_error = np.abs(d - exact).max()
    assert kernel_error <= 4 * max(numpy_error, np.finfo(dtype).eps), (kernel_error, numpy_error)
