"""kernels/matmul.cu through fused_act_matmul_bwd on the CPU emulation, against NumPy."""

import numpy as np
import pytest
from kernel_reference import TOLERANCES, activation_grad

from gradflow.kernels import FUSED_ACTIVATIONS, fused_act_matmul_bwd
from gradflow.testing.emulation import EmulationBackend

# (M, N, K): single elements, sizes off the 16-tile grid, an inner size of several tiles, and
# 5 x 3 output tiles, more than the 4-block grid cap (the tile loops go round).
SHAPES = [(1, 1, 1), (7, 5, 3), (17, 40, 33), (80, 23, 45)]


def _case(shape, dtype, seed=0):
    m, n, k = shape
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((m, n)).astype(dtype)
    z = (rng.standard_normal((m, n)) * 2).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)
    return dy, z, w


def _expected(dy, z, w, act):
    g = dy.astype(np.float64) * activation_grad(act, z.astype(np.float64))
    return g @ w.astype(np.float64).T


def _tolerance(dtype, n):
    tol = TOLERANCES[np.dtype(dtype)]  # a dot product of n terms: absolute error grows with n
    return {"rtol": tol["rtol"] * 10, "atol": tol["atol"] * 10 * max(1, n)}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", FUSED_ACTIVATIONS)
def test_fused_act_matmul_bwd_matches_reference(emu, dtype, act, shape):
    dy, z, w = _case(shape, dtype)
    dx = fused_act_matmul_bwd(dy, z, w, act, backend=emu)
    assert dx.shape == (shape[0], shape[2]) and dx.dtype == dtype
    np.testing.assert_allclose(dx, _expected(dy, z, w, act), **_tolerance(dtype, shape[1]))


def test_transposed_weight_view_is_used_without_copy(emu, dtype):
    dy, z, w = _case((20, 30, 18), dtype, seed=1)
    weight = np.ascontiguousarray(w.T)  # a Linear's [N, K] weight; pass its transpose view
    dx = fused_act_matmul_bwd(dy, z, weight.T, "gelu_tanh", backend=emu)
    np.testing.assert_allclose(dx, _expected(dy, z, w, "gelu_tanh"), **_tolerance(dtype, 30))


def test_negative_strides_are_copied(emu):
    dy, z, w = _case((9, 12, 10), np.float64, seed=2)
    dx = fused_act_matmul_bwd(dy, z, w[::-1], "relu", backend=emu)
    np.testing.assert_allclose(dx, _expected(dy, z, w[::-1], "relu"), rtol=1e-12, atol=1e-12)


def test_one_block_covers_every_tile(emu):
    dy, z, w = _case((50, 20, 40), np.float32, seed=3)
    dx = fused_act_matmul_bwd(dy, z, w, "silu", backend=EmulationBackend(max_grid_blocks=1))
    np.testing.assert_allclose(dx, _expected(dy, z, w, "silu"), **_tolerance(np.float32, 20))


def test_empty_inner_dimension_gives_zeros(emu):
    dx = fused_act_matmul_bwd(
        np.empty((3, 0)), np.empty((3, 0)), np.empty((4, 0)), "relu", backend=emu
    )
    np.testing.assert_array_equal(dx, np.zeros((3, 4)))


def test_matmul_errors(emu):
    dy = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"fused_act_matmul_bwd: unknown activation 'elu'"):
        fused_act_matmul_bwd(dy, dy, dy, "elu", backend=emu)
    with pytest.raises(
        ValueError,
        match=r"fused_act_matmul_bwd: argument 'w' has shape \(5, 3\) and dtype float64; "
        r"expected \[K, 4\] \(its second dimension must match dy's \(3, 4\)\)",
    ):
        fused_act_matmul_bwd(dy, dy, np.zeros((5, 3)), "relu", backend=emu)
    with pytest.raises(ValueError, match=r"argument 'w' has shape \(4,\) .*expected a 2-D array"):
        fused_act_matmul_bwd(dy, dy, np.zeros(4), "relu", backend=emu)
    with pytest.raises(
        ValueError, match=r"argument 'z' has shape \(4, 3\) .*expected shape \(3, 4\)"
    ):
        fused_act_matmul_bwd(dy, dy.T, np.zeros((5, 4)), "relu", backend=emu)
    with pytest.raises(
        TypeError,
        match=r"argument 'w' has shape \(5, 4\) and dtype float32; "
        r"expected dtype float64 like 'dy'",
    ):
        fused_act_matmul_bwd(dy, dy, np.zeros((5, 4), np.float32), "relu", backend=emu)
