"""Kernel launches of layers on cuda, counted by the CuPy stand-in (GRADFLOW_CUDA_STANDIN=1):
BatchNorm without repeats or einsums, Linear on (B, T, in) input as 2-D GEMMs without transposed
copies, and no host syncs in either. Counts and values only, never timings.

The stand-in counts one cuBLAS call per matmul whatever its operands; CuPy 14.2 itself copies a
non-contiguous operand of a matmul beyond 2-D (``ascontiguousarray``) and builds pointer tables
for a broadcast batch (three more kernels). So the GEMM tests also record each matmul's operands
and require what CuPy's 2-D ``dot`` reads without a copy: 2-D, C- or F-contiguous.
"""

import numpy
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.testing import standin

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not standin.enabled(),
        reason="launch counts need the CuPy stand-in (GRADFLOW_CUDA_STANDIN=1)",
    ),
]

# BatchNorm, training, affine, running statistics. Forward: the channel sum (float64) and the
# division, x - mean, the squares and their mean, var + eps and its -0.5 power, weight * invstd,
# the scale and the shift of the output (10), the two running buffers (3 each), and the module's
# num_batches_tracked += 1. Backward: the bias sum, x - mean, g * (x - mean) and its sum, times
# invstd (dw), weight * invstd, two products for the (x - mean) factor, four passes over dx and
# the mean of g. Before the cuda route: 23 + 18 (einsums counted as one cuBLAS call each).
BATCH_NORM_TRAIN_FORWARD = 17
BATCH_NORM_TRAIN_BACKWARD = 13
BATCH_NORM_EVAL = 14  # forward 7 (with the copy of the running mean dw needs), backward 7


def cuda_tensor(array, requires_grad=False):
    return gf.tensor(array, device="cuda", requires_grad=requires_grad)


def forward_backward_counts(layer, x, g):
    """(forward counts, backward counts) of one call after a warm-up call."""
    layer(x).backward(g)
    x.grad = None
    for p in layer.parameters():
        p.grad = None
    with standin.counting() as forward:
        y = layer(x)
    with standin.counting() as backward:
        y.backward(g)
    return forward.counts, backward.counts


@pytest.fixture
def gemms(monkeypatch):
    """The operands of every matmul on the stand-in (the @ operator and cupy.matmul)."""
    from gradflow.testing.standin import _module

    seen = []
    real = _module.matmul

    def spy(a, b, *args, **kwargs):
        seen.append((a, b))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(_module, "matmul", spy)
    monkeypatch.setattr(standin.module(), "matmul", spy)
    return seen


def assert_plain_gemms(operands):
    """Every product is one a 2-D CuPy dot reads in place: no copy, no pointer tables."""
    for a, b in operands:
        for m in (a, b):
            assert m.ndim <= 2, f"a {m.ndim}-D matmul operand {m.shape}"
            if m.ndim == 2:
                assert m.flags.c_contiguous or m.flags.f_contiguous, f"strided {m.shape}"


# ---- BatchNorm ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "shape"),
    [(nn.BatchNorm2d, (64, 16, 8, 8)), (nn.BatchNorm1d, (64, 16)), (nn.BatchNorm1d, (8, 16, 10))],
    ids=["2d", "1d-NC", "1d-NCL"],
)
def test_batch_norm_training_launches(rng, layer, shape):
    bn = layer(16, device="cuda")
    x = cuda_tensor(rng.standard_normal(shape).astype(numpy.float32), requires_grad=True)
    g = cuda_tensor(rng.standard_normal(shape).astype(numpy.float32))
    forward, backward = forward_backward_counts(bn, x, g)
    assert forward.launches() <= BATCH_NORM_TRAIN_FORWARD, forward
    assert backward.launches() <= BATCH_NORM_TRAIN_BACKWARD, backward
    for counts in (forward, backward):
        assert counts.cublas == 0, counts  # no einsum standing in for a reduction
        assert counts.syncs == counts.d2h == counts.h2d == 0, counts


def test_batch_norm_eval_launches(rng):
    bn = nn.BatchNorm2d(16, device="cuda").eval()
    x = cuda_tensor(rng.standard_normal((64, 16, 8, 8)).astype(numpy.float32), requires_grad=True)
    g = cuda_tensor(rng.standard_normal(x.shape).astype(numpy.float32))
    forward, backward = forward_backward_counts(bn, x, g)
    assert forward.launches() + backward.launches() <= BATCH_NORM_EVAL, (forward, backward)
    assert forward.syncs == backward.syncs == forward.cublas == backward.cublas == 0


def test_batch_norm_float32_statistics_are_accurate_with_a_large_mean(rng):
    # The channel mean is summed in float64 on cuda too: one float32 sum of the 1024 values
    # of a channel near 1e4 may be off by ~1e-3, which the normalized output shows directly.
    x = (rng.standard_normal((64, 4, 4, 4)) + 1e4).astype(numpy.float32)
    g = rng.standard_normal(x.shape).astype(numpy.float32)
    running_var = cuda_tensor(numpy.zeros(4, numpy.float32))
    xt = cuda_tensor(x, requires_grad=True)
    y = gf.nn.functional.batch_norm(xt, None, running_var, training=True, momentum=1.0)
    y.backward(cuda_tensor(g))
    x64, g64 = x.astype(numpy.float64), g.astype(numpy.float64)
    axes = (0, 2, 3)
    mean, var = x64.mean(axes, keepdims=True), x64.var(axes, keepdims=True)
    xhat = (x64 - mean) / numpy.sqrt(var + 1e-5)
    numpy.testing.assert_allclose(y.cpu().detach().numpy(), xhat, atol=1e-3)
    numpy.testing.assert_allclose(running_var.cpu().numpy(), x64.var(axes, ddof=1), rtol=1e-3)
    expected = (
        g64 - g64.mean(axes, keepdims=True) - xhat * (g64 * xhat).mean(axes, keepdims=True)
    ) / numpy.sqrt(var + 1e-5)
    numpy.testing.assert_allclose(xt.grad.cpu().numpy(), expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_layer_and_group_norm_use_no_einsum_on_cuda(rng, norm):
    layer = (
        nn.LayerNorm(32, device="cuda") if norm == "layer" else nn.GroupNorm(4, 16, device="cuda")
    )
    shape = (8, 10, 32) if norm == "layer" else (8, 16, 4, 4)
    x = cuda_tensor(rng.standard_normal(shape).astype(numpy.float32), requires_grad=True)
    g = cuda_tensor(rng.standard_normal(shape).astype(numpy.float32))
    forward, backward = forward_backward_counts(layer, x, g)
    assert forward.cublas == backward.cublas == 0, (forward, backward)
    assert forward.launches() <= 9 and backward.launches() <= 11, (forward, backward)
    assert forward.syncs == backward.syncs == 0


# ---- Linear -------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape", [(4, 6, 32), (2, 3, 5, 32), (24, 32)], ids=["3d", "4d", "2d"])
def test_linear_is_three_plain_gemms_and_a_bias_sum(rng, gemms, x_shape):
    layer = nn.Linear(32, 24, device="cuda")
    x = cuda_tensor(rng.standard_normal(x_shape).astype(numpy.float32), requires_grad=True)
    g = cuda_tensor(rng.standard_normal((*x_shape[:-1], 24)).astype(numpy.float32))
    forward, backward = forward_backward_counts(layer, x, g)
    assert forward.cublas == 1 and backward.cublas == 2, (forward, backward)
    # forward: the GEMM and the bias add; backward: two GEMMs and the bias sum. No copies:
    # weight.T and g2.T are views, and dx is written into a new array x.grad keeps as it is.
    assert forward.launches() == 2 and backward.launches() == 3, (forward, backward)
    assert forward.syncs == backward.syncs == 0
    assert_plain_gemms(gemms)
    x_np, w_np = x.cpu().detach().numpy(), layer.weight.cpu().detach().numpy()
    g_np = g.cpu().numpy()
    rows = x_np.reshape(-1, 32)
    numpy.testing.assert_allclose(
        layer(x).cpu().detach().numpy(),
        x_np @ w_np.T + layer.bias.cpu().detach().numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), g_np @ w_np, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(
        layer.weight.grad.cpu().numpy(), g_np.reshape(-1, 24).T @ rows, rtol=1e-4, atol=1e-4
    )
    numpy.testing.assert_allclose(
        layer.bias.grad.cpu().numpy(), g_np.reshape(-1, 24).sum(0), rtol=1e-5, atol=1e-5
    )


def test_matmul_of_stacked_rows_by_a_matrix_is_plain_gemms(rng, gemms):
    a = cuda_tensor(rng.standard_normal((3, 4, 5)), requires_grad=True)
    b = cuda_tensor(rng.standard_normal((5, 6)), requires_grad=True)
    with standin.counting() as counted:
        (a @ b).backward(cuda_tensor(numpy.ones((3, 4, 6))))
    assert counted.counts.cublas == 3 and counted.counts.syncs == 0, counted.counts
    assert_plain_gemms(gemms)
    numpy.testing.assert_allclose(
        b.grad.cpu().numpy(), a.cpu().detach().numpy().reshape(12, 5).T @ numpy.ones((12, 6))
    )
