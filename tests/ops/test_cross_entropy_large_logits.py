"""F.cross_entropy at |logits| ~ 1e4 (issue 13): the kernel route (kernels/fused.cu's
softmax_xent kernels, run on the CPU through gradflow.testing.emulation) is as accurate as the
NumPy route, which subtracts the row max before anything else.

The fused backward once used one stored lse = max + log(sum) per row; at 1e4 in float32 that
sum rounds to ~1e-3, and the gradient was off by ~3e-4 where the NumPy route is within 1e-7.
"""

import numpy
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow.testing.emulation import route_kernels, unavailable_reason

N, C = 8, 11

# Both routes are held to these, relative to the size of the loss / gradient: what the NumPy
# route meets (asserted below, so the bound is not loose by construction).
TOLERANCES = {
    numpy.float32: {"rtol": 1e-5, "atol": 1e-6},
    numpy.float64: {"rtol": 1e-13, "atol": 1e-15},
}

OPTIONS = {
    "plain": {},
    "weight": {"weight": True},
    "label_smoothing": {"label_smoothing": 0.1},
    "ignore_index": {"ignore_index": 2},
    "all": {"weight": True, "label_smoothing": 0.2, "ignore_index": 2},
}


@pytest.fixture(autouse=True)
def _needs_emulation():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)


def _case(dtype, ignore_index):
    """Rows at +-1e4 with a spread of a few units, one ordinary row, one with classes that
    underflow, and targets that include ignore_index (and -100, ignored by default only)."""
    rng = numpy.random.default_rng(21)
    x = rng.standard_normal((N, C)) * 3
    x[0] += 1e4
    x[1] *= 1.5  # an ordinary row among huge ones
    x[2] -= 1e4
    x[3] = 1e4 + rng.standard_normal(C) * 30
    x[4:] += rng.choice([-1e4, 1e4], size=(N - 4, 1))
    target = rng.integers(0, C, N)
    target[[0, 5]] = 2  # ignored when ignore_index=2
    target[6] = ignore_index
    weight = rng.uniform(0.2, 2.0, C)
    return x.astype(dtype), target, weight.astype(dtype)


def _reference(x, target, weight, ignore_index, eps, reduction, upstream):
    """Loss and d(upstream . loss)/dx in float64, from the definition (PyTorch's semantics)."""
    x = x.astype(numpy.float64)
    w = numpy.ones(C) if weight is None else weight.astype(numpy.float64)
    m = x.max(axis=1, keepdims=True)
    logp = (x - m) - numpy.log(numpy.exp(x - m).sum(axis=1, keepdims=True))
    keep = target != ignore_index
    safe = numpy.where(keep, target, 0)
    rows = numpy.arange(N)
    wt = numpy.where(keep, w[safe], 0.0)
    loss = wt * -(1 - eps) * logp[rows, safe] + keep * eps / C * -(logp * w).sum(axis=1)
    onehot = numpy.zeros((N, C))
    onehot[rows, safe] = 1
    p = numpy.exp(logp)
    grad = (1 - eps) * wt[:, None] * (p - onehot) + keep[:, None] * eps / C * (w.sum() * p - w)
    if reduction == "none":
        return loss, grad * upstream[:, None]
    if reduction == "sum":
        return loss.sum(), grad * upstream
    denom = wt.sum()
    return loss.sum() / denom, grad * (upstream / denom)


def _run(x, target, weight, ignore_index, eps, reduction, upstream, kernel):
    xt = gradflow.tensor(x, requires_grad=True)
    wt = None if weight is None else gradflow.tensor(weight)
    loss = F.cross_entropy(
        xt, gradflow.tensor(target), wt, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=eps,
    )  # fmt: skip
    assert loss.grad_fn.kernel is kernel
    assert loss.dtype == xt.dtype
    loss.backward(gradflow.tensor(upstream.astype(x.dtype)))
    return loss.detach().numpy(), xt.grad.numpy()


def _error(value, expected, tol):
    """Largest |value - expected| in units of the tolerance, scaled to the largest |expected|."""
    scale = max(numpy.abs(expected).max(), 1.0)
    bound = tol["atol"] * scale + tol["rtol"] * numpy.abs(expected)
    return (numpy.abs(value - expected) / bound).max()


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("option", list(OPTIONS))
def test_kernel_route_is_as_accurate_as_numpy_route_at_1e4(dtype, reduction, option):
    opts = OPTIONS[option]
    ignore_index = opts.get("ignore_index", -100)
    eps = opts.get("label_smoothing", 0.0)
    x, target, weight = _case(dtype, ignore_index)
    weight = weight if opts.get("weight") else None
    rng = numpy.random.default_rng(22)
    upstream = rng.uniform(0.5, 1.5, N) if reduction == "none" else numpy.array(0.75)
    ref_loss, ref_grad = _reference(x, target, weight, ignore_index, eps, reduction, upstream)
    tol = TOLERANCES[dtype]

    numpy_loss, numpy_grad = _run(x, target, weight, ignore_index, eps, reduction, upstream, False)
    with route_kernels():
        kernel_loss, kernel_grad = _run(
            x, target, weight, ignore_index, eps, reduction, upstream, True
        )

    # The NumPy route meets the tolerance: it is the accuracy the kernel route is held to.
    assert _error(numpy_loss, ref_loss, tol) <= 1, "the NumPy route misses the tolerance"
    assert _error(numpy_grad, ref_grad, tol) <= 1, "the NumPy route misses the tolerance"
    assert _error(kernel_loss, ref_loss, tol) <= 1
    assert _error(kernel_grad, ref_grad, tol) <= 1
    # And the two routes agree with each other to that accuracy.
    assert _error(kernel_grad, numpy_grad, tol) <= 2
    ignored = target == ignore_index
    assert numpy.all(kernel_grad[ignored] == 0) and numpy.all(numpy_grad[ignored] == 0)
