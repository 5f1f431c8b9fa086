"""Host synchronizations and kernel launches of the class-index losses on cuda, counted by the
CuPy stand-in (GRADFLOW_CUDA_STANDIN=1; skipped otherwise, real CuPy counts nothing).

cross_entropy and nll_loss never synchronize on cuda: out-of-range targets are not checked
there (reading them would cost a synchronization per step) but give NaN, which these tests hold
them to, since on the stand-in, as in CuPy, an unchecked index wraps around into some class's
finite value. On cpu they raise. The (N, C) kernel route's 'mean' denominator takes two small
launches (three with a weight) beside the fused kernel."""

import math

import numpy
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow.testing import standin

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not standin.enabled(), reason="counts need the CuPy stand-in"),
]

N, C = 8, 5


def cuda(array, requires_grad=False):
    return gradflow.tensor(numpy.asarray(array), device="cuda", requires_grad=requires_grad)


def counted(fn):
    """The counts of fn() after one warm-up call (which compiles and loads kernels)."""
    fn()
    with standin.counting() as block:
        result = fn()
    return result, block.counts


@pytest.fixture
def rng():
    return numpy.random.default_rng(0)


@pytest.fixture
def logits(rng):
    return cuda(rng.standard_normal((N, C)).astype(numpy.float32), requires_grad=True)


@pytest.fixture
def target(rng):
    t = rng.integers(0, C, N)
    t[3] = -100  # ignored
    return cuda(t)


@pytest.fixture
def weight(rng):
    return cuda((rng.random(C) + 0.5).astype(numpy.float32))


# ---- the (N, C) kernel route ------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_mean_forward_is_the_kernel_and_four_small_launches(
    logits, target, weight, weighted, label_smoothing
):
    w = weight if weighted else None
    loss, counts = counted(
        lambda: F.cross_entropy(logits, target, w, label_smoothing=label_smoothing)
    )
    assert loss.grad_fn.kernel
    assert counts.raw_launches == 1  # softmax_xent_fwd
    # the denominator: target != ignore_index and its sum (a gather and a where of the weight
    # more when weighted); then loss.sum() and the division
    assert counts.kernels == (6 if weighted else 4)
    assert counts.syncs == counts.d2h == counts.h2d == 0


@pytest.mark.parametrize("reduction, kernels", [("sum", 1), ("none", 0)])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_sum_and_none_compute_no_denominator(logits, target, weight, reduction,
                                                           kernels, weighted):  # fmt: skip
    w = weight if weighted else None
    _, counts = counted(lambda: F.cross_entropy(logits, target, w, reduction=reduction))
    assert (counts.raw_launches, counts.kernels, counts.syncs) == (1, kernels, 0)


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_backward_is_the_kernel_without_a_sync(logits, target, weight, weighted):
    w = weight if weighted else None
    F.cross_entropy(logits, target, w).backward()  # warm-up
    loss = F.cross_entropy(logits, target, w)
    with standin.counting() as block:
        loss.backward()
    counts = block.counts
    assert counts.raw_launches == 1  # softmax_xent_bwd
    assert counts.syncs == counts.d2h == 0
    # the seed and the gradient's accumulation (autograd), g / denominator, weight.sum()
    assert counts.kernels <= (4 if weighted else 3)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_step_runs_under_allow_synchronize_false(logits, target, weight, reduction):
    """CuPy's own sync detector (the stand-in's too): a whole forward and backward, no sync."""
    import cupyx

    F.cross_entropy(logits, target, weight, reduction=reduction).sum().backward()
    with cupyx.allow_synchronize(False):
        for w in (None, weight):
            F.cross_entropy(logits, target, w, reduction=reduction).sum().backward()


# ---- the array route: spatial targets, nll_loss -----------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_spatial_cross_entropy_never_synchronizes(rng, weight, reduction, weighted,
                                                  label_smoothing):  # fmt: skip
    x = cuda(rng.standard_normal((4, C, 3)).astype(numpy.float32), requires_grad=True)
    t = rng.integers(0, C, (4, 3))
    t[0, 1] = -100
    t = cuda(t)
    w = weight if weighted else None

    def step():
        loss = F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=label_smoothing)
        assert not loss.grad_fn.kernel
        loss.sum().backward()

    _, counts = counted(step)
    assert counts.syncs == counts.d2h == 0
    # a bound, not a design figure: what the array route took when the syncs went (21 to 31
    # forward, 22 to 29 backward, and the .sum() and its backward here)
    assert counts.launches() <= 64


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_never_synchronizes(rng, target, weight, reduction, weighted):
    logp = cuda(numpy.log(numpy.full((N, C), 1 / C, numpy.float32)), requires_grad=True)
    w = weight if weighted else None
    _, counts = counted(lambda: F.nll_loss(logp, target, w, reduction=reduction).sum().backward())
    assert counts.syncs == counts.d2h == 0
    assert counts.launches() <= 30  # 22 to 27 when the syncs went


# ---- out-of-range targets on cuda: NaN, not a wrapped-around class, and no sync ----------------


def _bad_target():
    t = numpy.array([0, 7, 2, -100, -3, 1, 4, 4])  # 7 and -3 are outside [0, 5)
    return t, numpy.array([False, True, False, False, True, False, False, False])


@pytest.mark.parametrize("spatial", [False, True], ids=["kernel", "array"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_out_of_range_targets_give_nan_rows_on_cuda(rng, weight, spatial,
                                                                  weighted):  # fmt: skip
    t, bad = _bad_target()
    x = rng.standard_normal((N, C)).astype(numpy.float32)
    if spatial:  # (N, C, 1) logits and (N, 1) targets take the array route
        x, t = x[:, :, None], t[:, None]
    xt = cuda(x, requires_grad=True)
    w = weight if weighted else None
    with standin.counting() as block:
        rows = F.cross_entropy(xt, cuda(t), w, reduction="none")
        mean = F.cross_entropy(xt, cuda(t), w)
        mean.backward()
    assert block.counts.syncs == 0
    rows = rows.detach().cpu().numpy().reshape(N)
    assert numpy.isnan(rows[bad]).all() and numpy.isfinite(rows[~bad]).all()
    assert rows[3] == 0  # ignored
    assert math.isnan(mean.item())
    grad = xt.grad.cpu().numpy().reshape(N, C)
    assert numpy.isnan(grad[bad]).all() and numpy.isfinite(grad[~bad]).all()
    position = r"\(1, 0\)" if spatial else r"\(1,\)"  # on cpu the first bad target raises
    with pytest.raises(
        IndexError, match=rf"class index 7 at position {position}, outside \[0, 5\)"
    ):
        F.cross_entropy(gradflow.tensor(x), gradflow.tensor(t), reduction="none")


def test_nll_loss_out_of_range_targets_give_nan_rows_on_cuda(rng):
    t, bad = _bad_target()
    x = cuda(rng.standard_normal((N, C)).astype(numpy.float32), requires_grad=True)
    with standin.counting() as block:
        rows = F.nll_loss(x, cuda(t), reduction="none")
        rows.sum().backward()
    assert block.counts.syncs == 0
    rows = rows.detach().cpu().numpy()
    assert numpy.isnan(rows[bad]).all() and numpy.isfinite(rows[~bad]).all()
    grad = x.grad.cpu().numpy()
    assert numpy.isnan(grad[bad]).any(axis=1).all() and numpy.isfinite(grad[~bad]).all()
