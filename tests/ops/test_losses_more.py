"""Tests for the losses beyond the core family (gradflow/ops/regression_losses.py,
margin_losses.py, ctc_loss.py: smooth_l1 ... ctc_loss): values and gradients against PyTorch
for every reduction, float64 gradcheck, the deprecated size_average/reduce arguments, and the
error messages."""

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.testing import gradcheck

REDUCTIONS = ["mean", "sum", "none"]


def t(a, device="cpu", requires_grad=False):
    return gf.tensor(numpy.asarray(a), device=device, requires_grad=requires_grad)


def host(x):
    return x.detach().cpu().numpy()


def signs(rng, shape):
    return numpy.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _cases(rng):
    """name -> (arrays (float inputs that get gradients first), other arrays, kwargs)."""
    x, y = rng.standard_normal((4, 5)) * 2, rng.standard_normal((4, 5))
    p = rng.random((4, 5)) + 0.1
    return {
        "smooth_l1_loss": ([x, y], [], {"beta": 0.7}),
        "smooth_l1_loss_beta0": ([x, y], [], {"beta": 0.0}),
        "huber_loss": ([x, y], [], {"delta": 1.5}),
        "kl_div": ([x, p / p.sum(1, keepdims=True)], [], {}),
        "kl_div_log_target": ([x, numpy.log(p)], [], {"log_target": True}),
        "poisson_nll_loss": ([x, p * 3], [], {}),
        "poisson_nll_loss_full": ([p, p * 3], [], {"log_input": False, "full": True}),
        "gaussian_nll_loss": ([x, y, p], [], {}),
        "gaussian_nll_loss_full": ([x, y, p[:, :1]], [], {"full": True}),
        "margin_ranking_loss": ([x[:, 0], y[:, 0]], [signs(rng, 4)], {"margin": 0.3}),
        "hinge_embedding_loss": ([x], [signs(rng, (4, 5))], {"margin": 1.5}),
        "soft_margin_loss": ([x], [signs(rng, (4, 5))], {}),
        "multilabel_soft_margin_loss": ([x], [(rng.random((4, 5)) < 0.5) * 1.0], {}),
        "cosine_embedding_loss": ([x, y], [signs(rng, 4)], {"margin": 0.2}),
        "triplet_margin_loss": ([x, y, p], [], {"margin": 2.0}),
        "triplet_margin_loss_swap": ([x, y, p], [], {"p": 1, "swap": True, "margin": 2.0}),
        "multi_margin_loss": ([x], [rng.integers(0, 5, 4)], {}),
        "multi_margin_loss_p2": ([x], [rng.integers(0, 5, 4)], {"p": 2, "margin": 0.5}),
    }


def _fn(name):
    for suffix in ("_beta0", "_log_target", "_full", "_swap", "_p2"):
        name = name.removesuffix(suffix)
    return name


def _needs_grad(name, i):
    # targets of distributions and variances get gradients too where PyTorch gives them
    return not (name.startswith(("poisson", "multi_margin")) and i > 0)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # kl_div's, as PyTorch's
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(_cases(numpy.random.default_rng(0))))
def test_matches_torch(name, reduction, rng):
    torch = pytest.importorskip("torch")
    grads, others, kwargs = _cases(rng)[name]
    fn = _fn(name)
    gx = [t(a, requires_grad=_needs_grad(name, i)) for i, a in enumerate(grads)]
    tx = [torch.tensor(a, requires_grad=_needs_grad(name, i)) for i, a in enumerate(grads)]
    go, to = [t(a) for a in others], [torch.tensor(a) for a in others]
    out = getattr(F, fn)(*gx, *go, reduction=reduction, **kwargs)
    expected = getattr(torch.nn.functional, fn)(*tx, *to, reduction=reduction, **kwargs)
    numpy.testing.assert_allclose(host(out), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(tuple(expected.shape))
    out.backward(gf.tensor(w))
    expected.backward(torch.tensor(w))
    for a, b in zip(gx, tx):
        if b.grad is not None:
            numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", sorted(_cases(numpy.random.default_rng(0))))
def test_gradcheck(name, device, rng):
    grads, others, kwargs = _cases(rng)[name]
    fn = getattr(F, _fn(name))
    gx = [t(a, device, requires_grad=_needs_grad(name, i)) for i, a in enumerate(grads)]
    go = [t(a, device) for a in others]
    # inputs with no gradient go in as constants
    wrt = [a for a in gx if a.requires_grad]
    fixed = [a for a in gx if not a.requires_grad]
    assert gradcheck(lambda *xs: fn(*xs, *fixed, *go, reduction="sum", **kwargs), wrt)


def test_kl_div_batchmean_and_its_mean_warning(rng):
    x = t(numpy.log(rng.dirichlet(numpy.ones(3), size=4)))
    y = t(rng.dirichlet(numpy.ones(3), size=4))
    total = F.kl_div(x, y, reduction="sum")
    numpy.testing.assert_allclose(host(F.kl_div(x, y, reduction="batchmean")), host(total) / 4)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        mean = F.kl_div(x, y)
    numpy.testing.assert_allclose(host(mean), host(total) / 12)


def test_kl_div_zero_targets_give_zero_not_nan():
    x = t([[-1.0, -2.0]], requires_grad=True)
    out = F.kl_div(x, t([[0.0, 1.0]]), reduction="sum")
    numpy.testing.assert_allclose(host(out), 2.0)
    out.backward()
    numpy.testing.assert_array_equal(host(x.grad), [[0.0, -1.0]])


def test_huber_weight_and_gaussian_var_shapes(rng):
    torch = pytest.importorskip("torch")
    x, y, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.random((3, 4))
    out = F.huber_loss(t(x), t(y), weight=t(w), delta=0.5)
    expected = (
        torch.nn.functional.huber_loss(
            torch.tensor(x), torch.tensor(y), reduction="none", delta=0.5
        )
        * torch.tensor(w)
    ).mean()
    numpy.testing.assert_allclose(host(out), expected.numpy(), rtol=1e-12)
    v = rng.random(3) + 0.1  # var without input's last dim
    out = F.gaussian_nll_loss(t(x), t(y), t(v))
    expected = torch.nn.functional.gaussian_nll_loss(
        torch.tensor(x), torch.tensor(y), torch.tensor(v)
    )
    numpy.testing.assert_allclose(host(out), expected.numpy(), rtol=1e-12)
    out = F.gaussian_nll_loss(t(x), t(y), 0.5)  # a float variance
    expected = torch.nn.functional.gaussian_nll_loss(torch.tensor(x), torch.tensor(y), 0.5)
    numpy.testing.assert_allclose(host(out), expected.numpy(), rtol=1e-12)


def test_gaussian_nll_gradient_passes_the_eps_clamp():
    torch = pytest.importorskip("torch")
    var = t([1e-9, 2.0], requires_grad=True)
    tvar = torch.tensor([1e-9, 2.0], dtype=torch.float64, requires_grad=True)
    F.gaussian_nll_loss(t([0.1, 0.2]), t([0.0, 0.0]), var).backward()
    torch.nn.functional.gaussian_nll_loss(
        torch.tensor([0.1, 0.2], dtype=torch.float64), torch.zeros(2, dtype=torch.float64), tvar
    ).backward()
    numpy.testing.assert_allclose(host(var.grad), tvar.grad.numpy(), rtol=1e-10)


def test_multi_margin_weight_and_unbatched(rng):
    torch = pytest.importorskip("torch")
    x, y, w = rng.standard_normal((4, 3)), rng.integers(0, 3, 4), rng.random(3) + 0.5
    out = F.multi_margin_loss(t(x), t(y), weight=t(w))
    expected = torch.nn.functional.multi_margin_loss(
        torch.tensor(x), torch.tensor(y), weight=torch.tensor(w)
    )
    numpy.testing.assert_allclose(host(out), expected.numpy(), rtol=1e-12)
    out = F.multi_margin_loss(t(x[0]), t(y[0]), reduction="none")
    expected = torch.nn.functional.multi_margin_loss(
        torch.tensor(x[0]), torch.tensor(y[0]), reduction="none"
    )
    assert tuple(out.shape) == tuple(expected.shape)
    numpy.testing.assert_allclose(host(out), expected.numpy(), rtol=1e-12)


def test_legacy_size_average_and_reduce_set_the_reduction():
    x, y = t([1.0, 3.0]), t([0.0, 0.0])
    with pytest.warns(UserWarning, match="please use reduction='sum' instead"):
        out = F.smooth_l1_loss(x, y, size_average=False)
    numpy.testing.assert_allclose(host(out), 0.5 + 2.5)
    with pytest.warns(UserWarning, match="please use reduction='none' instead"):
        out = F.soft_margin_loss(x, y, reduce=False)
    assert tuple(out.shape) == (2,)


def test_loss_errors():
    x = t([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match="smooth_l1_loss: does not support negative values"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(RuntimeError, match="huber_loss: does not support non-positive values"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match="smooth_l1_loss: argument 'reduction' is 'avg'"):
        F.smooth_l1_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="gaussian_nll_loss: var is of incorrect size"):
        F.gaussian_nll_loss(x, x, t([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="gaussian_nll_loss: var has negative entry"):
        F.gaussian_nll_loss(x, x, t([[1.0, -2.0]]))
    with pytest.raises(ValueError, match="triplet_margin_loss: margin must be greater than 0"):
        F.triplet_margin_loss(x, x, x, margin=0.0)
    with pytest.raises(RuntimeError, match="triplet_margin_loss: expected anchor, positive"):
        F.triplet_margin_loss(x, x, t([1.0, 2.0]))
    with pytest.raises(ValueError, match="multi_margin_loss: only p == 1 and p == 2"):
        F.multi_margin_loss(x, t([0]), p=3)
    with pytest.raises(ValueError, match="multi_margin_loss: expected input .* integer class"):
        F.multi_margin_loss(x, t([0.0]))
    with pytest.raises(RuntimeError, match="margin_ranking_loss: all input tensors should have"):
        F.margin_ranking_loss(x, x, t([1.0]))
    with pytest.raises(RuntimeError, match="cosine_embedding_loss: expected a 1-D target"):
        F.cosine_embedding_loss(x, x, t([[1.0]]))
    with pytest.raises(RuntimeError, match="cosine_embedding_loss: expected two 1-D or 2-D"):
        F.cosine_embedding_loss(t([[[1.0]]]), t([[[1.0]]]), t([1.0]))
    with pytest.raises(TypeError, match="margin_ranking_loss: argument 'target' must be a Tensor"):
        F.margin_ranking_loss(x, x, [[1.0]])
    with pytest.raises(ValueError, match="kl_div: argument 'target' has shape \\(3,\\), which"):
        F.kl_div(x, t([1.0, 2.0, 3.0]), reduction="sum")


# ---- ctc_loss ---------------------------------------------------------------------------------


def _ctc_batch(rng, T=12, N=4, C=6, S=5):
    logits = rng.standard_normal((T, N, C))
    target_lengths = numpy.array([5, 3, 0, 2])
    input_lengths = numpy.array([12, 10, 7, 3])
    targets = rng.integers(1, C, size=(N, S))
    targets[0, 2] = targets[0, 1]  # a repeated label needs a blank between
    return logits, targets, input_lengths, target_lengths


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_matches_torch(reduction, zero_infinity, rng):
    torch = pytest.importorskip("torch")
    logits, targets, il, tl = _ctc_batch(rng)
    x, tx = t(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    lp, tlp = F.log_softmax(x, 2), torch.log_softmax(tx, 2)
    out = F.ctc_loss(lp, t(targets), t(il), t(tl), reduction=reduction, zero_infinity=zero_infinity)
    expected = torch.nn.functional.ctc_loss(
        tlp,
        torch.tensor(targets),
        torch.tensor(il),
        torch.tensor(tl),
        reduction=reduction,
        zero_infinity=zero_infinity,
    )
    numpy.testing.assert_allclose(host(out), expected.detach().numpy(), rtol=1e-10)
    w = rng.standard_normal(tuple(expected.shape))
    out.backward(gf.tensor(w))
    expected.backward(torch.tensor(w))
    numpy.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_ctc_gradient_wrt_log_probs_is_torchs(rng):
    torch = pytest.importorskip("torch")
    logits, targets, il, tl = _ctc_batch(rng)
    lp = torch.log_softmax(torch.tensor(logits), 2)
    glp = t(lp.numpy(), requires_grad=True)
    tlp = lp.clone().requires_grad_(True)
    F.ctc_loss(glp, t(targets), list(il), tuple(tl)).backward()
    torch.nn.functional.ctc_loss(
        tlp, torch.tensor(targets), torch.tensor(il), torch.tensor(tl)
    ).backward()
    numpy.testing.assert_allclose(host(glp.grad), tlp.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_ctc_gradcheck_through_log_softmax(device, rng):
    # PyTorch's gradient assumes normalized log-probabilities: checked through log_softmax
    logits, targets, il, tl = _ctc_batch(rng, T=6, N=4, C=4, S=3)
    tl, il = numpy.array([3, 1, 0, 2]), numpy.array([6, 5, 2, 6])
    targets = rng.integers(1, 4, size=(4, 3))
    x = t(logits, device, requires_grad=True)
    args = (t(targets, device), t(il), t(tl))
    for reduction in REDUCTIONS:
        fn = lambda x, r=reduction: F.ctc_loss(F.log_softmax(x, 2), *args, reduction=r)  # noqa: E731
        assert gradcheck(fn, [x])


def test_ctc_concatenated_targets_and_unbatched_input(rng):
    torch = pytest.importorskip("torch")
    logits, targets, il, tl = _ctc_batch(rng)
    lp = t(logits).log_softmax(2)
    flat = numpy.concatenate([targets[i, : tl[i]] for i in range(4)])
    padded = F.ctc_loss(lp, t(targets), t(il), t(tl), reduction="none")
    concatenated = F.ctc_loss(lp, t(flat), t(il), t(tl), reduction="none")
    numpy.testing.assert_allclose(host(concatenated), host(padded), rtol=1e-12)
    one = F.ctc_loss(lp[:, 0], t(targets[0]), 12, 5, reduction="none")
    expected = torch.nn.functional.ctc_loss(
        torch.tensor(host(lp[:, 0])), torch.tensor(targets[0]), (12,), (5,), reduction="none"
    )
    assert tuple(one.shape) == tuple(expected.shape) == ()
    numpy.testing.assert_allclose(host(one), expected.numpy(), rtol=1e-10)


def test_ctc_impossible_alignment_is_inf_or_zero_with_zero_infinity(rng):
    lp = t(rng.standard_normal((2, 1, 4)), requires_grad=True)
    # three labels need at least three frames; two repeated ones need a blank between
    for targets in ([[1, 2, 3]], [[2, 2]]):
        out = F.ctc_loss(lp.log_softmax(2), t(targets), [2], [len(targets[0])], reduction="sum")
        assert host(out) == numpy.inf
        out = F.ctc_loss(
            lp.log_softmax(2),
            t(targets),
            [2],
            [len(targets[0])],
            reduction="sum",
            zero_infinity=True,
        )
        out.backward()
        assert host(out) == 0 and not host(lp.grad).any()


def test_ctc_float32(rng):
    torch = pytest.importorskip("torch")
    logits, targets, il, tl = _ctc_batch(rng)
    lp = t(logits.astype(numpy.float32)).log_softmax(2)
    out = F.ctc_loss(lp, t(targets), t(il), t(tl))
    assert out.dtype == gf.float32
    expected = torch.nn.functional.ctc_loss(
        torch.tensor(host(lp)), torch.tensor(targets), torch.tensor(il), torch.tensor(tl)
    )
    numpy.testing.assert_allclose(host(out), expected.numpy(), rtol=1e-5)


def test_ctc_errors(rng):
    lp = t(rng.standard_normal((5, 2, 4))).log_softmax(2)
    tg = t([[1, 2], [3, 1]])
    with pytest.raises(RuntimeError, match="ctc_loss: blank must be in label range \\[0, 4\\)"):
        F.ctc_loss(lp, tg, [5, 5], [2, 2], blank=4)
    with pytest.raises(
        RuntimeError,
        match="ctc_loss: expected input_lengths to have value at most 5, but got value 6",
    ):
        F.ctc_loss(lp, tg, [6, 5], [2, 2])
    with pytest.raises(RuntimeError, match="ctc_loss: expected 'input_lengths' to hold 2 lengths"):
        F.ctc_loss(lp, tg, [5], [2, 2])
    with pytest.raises(RuntimeError, match="ctc_loss: padded targets of shape \\(2, 2\\)"):
        F.ctc_loss(lp, tg, [5, 5], [3, 2])
    with pytest.raises(RuntimeError, match="ctc_loss: concatenated targets hold 3 labels"):
        F.ctc_loss(lp, t([1, 2, 3]), [5, 5], [2, 2])
    with pytest.raises(
        RuntimeError,
        match="ctc_loss: targets must be class indices in \\[0, 4\\) other than blank=0",
    ):
        F.ctc_loss(lp, t([[1, 0], [3, 1]]), [5, 5], [2, 2])
    with pytest.raises(RuntimeError, match="ctc_loss: expected 'log_probs' of shape \\(T, N, C\\)"):
        F.ctc_loss(lp[0, 0], tg, [5, 5], [2, 2])
    with pytest.raises(RuntimeError, match="ctc_loss: 'target_lengths' holds a negative length"):
        F.ctc_loss(lp, tg, [5, 5], [2, -1])
    with pytest.raises(TypeError, match="ctc_loss: 'input_lengths' must hold integers"):
        F.ctc_loss(lp, tg, t([5.0, 5.0]), [2, 2])


# ---- PyTorch's full signatures on the original losses --------------------------------------


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_and_l1_weight_match_torch(name, reduction, rng):
    torch = pytest.importorskip("torch")
    x, y, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.random((3, 4))
    gx, tx = t(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = getattr(F, name)(gx, t(y), reduction=reduction, weight=t(w))
    expected = getattr(torch.nn.functional, name)(
        tx, torch.tensor(y), reduction=reduction, weight=torch.tensor(w)
    )
    numpy.testing.assert_allclose(host(out), expected.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    numpy.testing.assert_allclose(host(gx.grad), tx.grad.numpy(), rtol=1e-12)


def test_original_losses_take_size_average_and_reduce(rng):
    x = t(rng.standard_normal((3, 4)))
    y = t(rng.standard_normal((3, 4)))
    cls = t(rng.integers(0, 4, 3))
    probs = t(rng.random((3, 4)))
    calls = [
        (F.mse_loss, (x, y), None),
        (F.l1_loss, (x, y), None),
        (F.nll_loss, (x, cls), None),
        (F.cross_entropy, (x, cls), None),
        (F.binary_cross_entropy, (probs, probs), None),
        (F.binary_cross_entropy_with_logits, (x, probs), None),
    ]
    for fn, args, _ in calls:
        with pytest.warns(UserWarning, match="please use reduction='sum' instead"):
            legacy = fn(*args, size_average=False)
        numpy.testing.assert_allclose(host(legacy), host(fn(*args, reduction="sum")))
        with pytest.warns(UserWarning, match="please use reduction='none' instead"):
            assert fn(*args, reduce=False).shape == fn(*args, reduction="none").shape
    with pytest.raises(ValueError, match="mse_loss: weight has shape \\(4,\\); weights and input"):
        F.mse_loss(x, y, weight=t(numpy.ones(4)))


def test_more_error_paths():
    x = t([[1.0, 2.0]])
    with pytest.raises(ValueError, match="triplet_margin_with_distance_loss: margin must be"):
        F.triplet_margin_with_distance_loss(x, x, x, margin=0.0)
    with pytest.raises(ValueError, match="triplet_margin_with_distance_loss: argument 'reduct"):
        F.triplet_margin_with_distance_loss(x, x, x, reduction="avg")
    lp = t(numpy.zeros((3, 1, 2)))
    with pytest.raises(RuntimeError, match="ctc_loss: targets must be 1-D or 2-D, got shape"):
        F.ctc_loss(lp, t(numpy.ones((1, 1, 1), dtype=numpy.int64)), [3], [1])
    with pytest.raises(TypeError, match="ctc_loss: argument 'targets' must be a Tensor"):
        F.ctc_loss(lp, [[1]], [3], [1])
