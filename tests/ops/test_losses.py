"""Tests for gradflow/ops/losses.py: gradients (float64 finite differences), numerical
stability at |x| ~ 1e4 in float32, parity with PyTorch, the memory contract, names in messages,
errors."""

import itertools
import math

import numpy
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow.ops import losses
from gradflow.testing.gradcheck import gradcheck

REDUCTIONS = ["mean", "sum", "none"]


def t(array, device, requires_grad=False):
    return gradflow.tensor(numpy.asarray(array), device=device, requires_grad=requires_grad)


def host(x):
    return x.detach().cpu().numpy()


def class_targets(rng, shape, n_classes, ignore_index=-100):
    """Random class indices with the first and a middle element ignored."""
    target = rng.integers(0, n_classes, size=shape)
    flat = target.reshape(-1)
    flat[0] = ignore_index
    flat[flat.size // 2] = ignore_index
    return target


# ---- gradcheck -------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy_gradcheck(device, rng, reduction, weighted, label_smoothing, ignore_index):
    x = t(rng.standard_normal((5, 4)), device, requires_grad=True)
    target = t(class_targets(rng, (5,), 4, ignore_index), device)
    weight = t(rng.random(4) + 0.5, device) if weighted else None
    fn = lambda x: losses.cross_entropy(  # noqa: E731
        x, target, weight, None, ignore_index, None, reduction, label_smoothing
    )
    assert gradcheck(fn, [x], full_jacobian=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_spatial_gradcheck(device, rng, reduction, label_smoothing):
    x = t(rng.standard_normal((2, 3, 4, 2)), device, requires_grad=True)
    target = t(class_targets(rng, (2, 4, 2), 3), device)
    weight = t(rng.random(3) + 0.5, device)
    fn = lambda x: losses.cross_entropy(  # noqa: E731
        x, target, weight, reduction=reduction, label_smoothing=label_smoothing
    )
    assert gradcheck(fn, [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets_gradcheck(
    device, rng, reduction, weighted, label_smoothing
):
    x = t(rng.standard_normal((4, 3)), device, requires_grad=True)
    probs = rng.random((4, 3))
    target = t(probs / probs.sum(1, keepdims=True), device, requires_grad=True)
    weight = t(rng.random(3) + 0.5, device) if weighted else None
    fn = lambda x, q: losses.cross_entropy(  # noqa: E731
        x, q, weight, reduction=reduction, label_smoothing=label_smoothing
    )
    assert gradcheck(fn, [x, target], full_jacobian=True)


def test_cross_entropy_unbatched_input(device, rng):
    x = t(rng.standard_normal(5), device, requires_grad=True)
    target = t(numpy.int64(3), device)
    assert gradcheck(lambda x: losses.cross_entropy(x, target), [x])
    assert losses.cross_entropy(x, target, reduction="none").shape == ()
    expected = math.log(numpy.exp(host(x)).sum()) - host(x)[3]
    assert float(losses.cross_entropy(x, target)) == pytest.approx(expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3)])
def test_nll_loss_gradcheck(device, rng, reduction, weighted, shape):
    x = t(rng.standard_normal(shape), device, requires_grad=True)
    target = t(class_targets(rng, shape[:1] + shape[2:], shape[1]), device)
    weight = t(rng.random(shape[1]) + 0.5, device) if weighted else None
    fn = lambda x: losses.nll_loss(x, target, weight, reduction=reduction)  # noqa: E731
    assert gradcheck(fn, [x], full_jacobian=True)


@pytest.mark.parametrize("op", [losses.mse_loss, losses.l1_loss])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_shape", [(3, 4), (4,)])
@pytest.mark.filterwarnings("ignore:.*using a target size")  # the (4,) target broadcasts on purpose
def test_regression_losses_gradcheck(device, rng, op, reduction, target_shape):
    x = t(rng.standard_normal((3, 4)), device, requires_grad=True)
    y = t(rng.standard_normal(target_shape), device, requires_grad=True)
    assert gradcheck(lambda x, y: op(x, y, reduction=reduction), [x, y], full_jacobian=True)


def test_l1_loss_gradient_is_zero_where_input_equals_target(device):
    x = t([1.0, 2.0, 3.0], device, requires_grad=True)
    losses.l1_loss(x, t([0.0, 2.0, 5.0], device), reduction="sum").backward()
    numpy.testing.assert_array_equal(host(x.grad), [1.0, 0.0, -1.0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_gradcheck(device, rng, reduction, weighted, with_pos_weight):
    x = t(rng.standard_normal((3, 4)) * 3, device, requires_grad=True)
    y = t(rng.random((3, 4)), device, requires_grad=True)
    inputs = [x, y]
    weight = pos_weight = None
    if weighted:
        weight = t(rng.random((3, 4)) + 0.5, device, requires_grad=True)
        inputs.append(weight)
    if with_pos_weight:
        pos_weight = t(rng.random(4) + 0.5, device, requires_grad=True)
        inputs.append(pos_weight)

    def fn(*args):
        return losses.binary_cross_entropy_with_logits(
            x, y, weight, reduction=reduction, pos_weight=pos_weight
        )

    assert gradcheck(fn, inputs, full_jacobian=True, max_jacobian_size=4096)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_gradcheck(device, rng, reduction, weighted):
    p = t(rng.uniform(0.1, 0.9, (3, 4)), device, requires_grad=True)
    y = t(rng.random((3, 4)), device, requires_grad=True)
    weight = t(rng.random(4) + 0.5, device) if weighted else None
    fn = lambda p, y: losses.binary_cross_entropy(p, y, weight, reduction=reduction)  # noqa: E731
    assert gradcheck(fn, [p, y], full_jacobian=True)


# ---- numerical stability (float32, |x| ~ 1e4) ------------------------------------------------

BIG = numpy.array([[1e4, -1e4, 0.0, 9999.0], [-1e4, -1e4 + 1.0, -1e4 + 2.0, -1e4 + 3.0]])


def reference_log_softmax(x):
    x = numpy.asarray(x, dtype=numpy.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - numpy.log(numpy.exp(x - m).sum(axis=1, keepdims=True))


def test_logsumexp_is_stable_for_large_inputs(device):
    x = t(BIG.astype(numpy.float32), device)
    m = BIG.max(axis=1)
    ref = m + numpy.log(numpy.exp(BIG - m[:, None]).sum(axis=1))
    numpy.testing.assert_allclose(host(x.logsumexp(1)), ref, rtol=1e-6)


def test_cross_entropy_is_stable_for_large_logits(device):
    x = t(BIG.astype(numpy.float32), device, requires_grad=True)
    target = t([1, 3], device)
    ref = -reference_log_softmax(BIG)[[0, 1], [1, 3]]
    loss = losses.cross_entropy(x, target, reduction="none", label_smoothing=0.1)
    smooth_ref = 0.9 * ref - 0.1 / 4 * reference_log_softmax(BIG).sum(axis=1)
    numpy.testing.assert_allclose(host(loss), smooth_ref, rtol=1e-6)
    loss.sum().backward()
    g = host(x.grad)
    assert numpy.isfinite(g).all()
    softmax = numpy.exp(reference_log_softmax(BIG))
    onehot = numpy.eye(4)[[1, 3]]
    numpy.testing.assert_allclose(g, softmax - 0.9 * onehot - 0.1 / 4, atol=1e-6)


def test_softplus_and_sigmoid_are_stable_for_large_inputs(device):
    big = numpy.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=numpy.float32)
    x = t(big, device)
    numpy.testing.assert_allclose(
        host(gradflow.ops.unary.softplus(x)), numpy.logaddexp(0, big.astype(float)), rtol=1e-6
    )
    s = host(gradflow.sigmoid(x))
    assert numpy.isfinite(s).all()
    numpy.testing.assert_allclose(s, [0.0, math.exp(-50.0), 0.5, 1.0, 1.0], rtol=1e-6, atol=0)


def test_bce_with_logits_is_stable_for_large_logits(device):
    logits = numpy.array([1e4, -1e4, 1e4, -1e4, 30.0], dtype=numpy.float32)
    target = numpy.array([1.0, 0.0, 0.0, 1.0, 0.5], dtype=numpy.float32)
    pos_weight = numpy.float32(2.0)
    x = t(logits, device, requires_grad=True)
    loss = losses.binary_cross_entropy_with_logits(
        x, t(target, device), reduction="none", pos_weight=t([pos_weight], device)
    )
    # Known limits: a confident right answer costs 0; a confident wrong one costs |x| (times
    # pos_weight for a missed positive).
    expected = [0.0, 0.0, 1e4, 2e4, 0.5 * 30.0 + 1.5 * math.log1p(math.exp(-30.0))]
    numpy.testing.assert_allclose(host(loss), expected, rtol=1e-6, atol=1e-30)
    loss.sum().backward()
    # d/dx = (1 - y) - (1 + (pw - 1) y) sigmoid(-x)
    sig_neg = 0.5 - 0.5 * numpy.tanh(logits.astype(float) / 2)  # sigmoid(-x), no overflow
    grad = (1 - target) - (1 + (pos_weight - 1) * target) * sig_neg
    numpy.testing.assert_allclose(host(x.grad), grad, rtol=1e-5, atol=1e-7)


# ---- parity with PyTorch ----------------------------------------------------------------------


def torch_pair(array, requires_grad=False):
    torch = pytest.importorskip("torch")
    return torch.tensor(numpy.asarray(array), requires_grad=requires_grad)


def assert_parity(ours, theirs, our_inputs, their_inputs):
    numpy.testing.assert_allclose(host(ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    for a, b in zip(our_inputs, their_inputs):
        numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "reduction, weighted, label_smoothing, spatial",
    list(itertools.product(REDUCTIONS, [False, True], [0.0, 0.1], [False, True])),
)
def test_cross_entropy_matches_torch(device, rng, reduction, weighted, label_smoothing, spatial):
    torch = pytest.importorskip("torch")
    shape = (6, 5, 3) if spatial else (6, 5)
    x = rng.standard_normal(shape)
    target = class_targets(rng, shape[:1] + shape[2:], 5)
    weight = rng.random(5) + 0.5 if weighted else None
    ours_x, theirs_x = t(x, device, True), torch_pair(x, True)
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing, ignore_index=-100)
    ours = losses.cross_entropy(
        ours_x, t(target, device), None if weight is None else t(weight, device), **kwargs
    )
    theirs = torch.nn.functional.cross_entropy(
        theirs_x, torch.tensor(target), None if weight is None else torch.tensor(weight), **kwargs
    )
    assert_parity(ours, theirs, [ours_x], [theirs_x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_probability_targets_match_torch(device, rng, reduction, label_smoothing):
    torch = pytest.importorskip("torch")
    x, q, w = rng.standard_normal((4, 3, 2)), rng.random((4, 3, 2)), rng.random(3) + 0.5
    ours_x, ours_q = t(x, device, True), t(q, device, True)
    theirs_x, theirs_q = torch_pair(x, True), torch_pair(q, True)
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing)
    ours = losses.cross_entropy(ours_x, ours_q, t(w, device), **kwargs)
    theirs = torch.nn.functional.cross_entropy(theirs_x, theirs_q, torch.tensor(w), **kwargs)
    assert_parity(ours, theirs, [ours_x, ours_q], [theirs_x, theirs_q])


def test_cross_entropy_all_ignored_mean_is_nan_like_torch(device):
    torch = pytest.importorskip("torch")
    target = numpy.array([-100, -100])
    x = numpy.zeros((2, 3))
    ours = losses.cross_entropy(t(x, device), t(target, device))
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(target))
    assert math.isnan(float(ours)) and math.isnan(float(theirs))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_torch(device, rng, reduction, weighted):
    torch = pytest.importorskip("torch")
    x = reference_log_softmax(rng.standard_normal((6, 4)))
    target = class_targets(rng, (6,), 4, ignore_index=1)
    w = rng.random(4) + 0.5 if weighted else None
    ours_x, theirs_x = t(x, device, True), torch_pair(x, True)
    ours = losses.nll_loss(
        ours_x, t(target, device), None if w is None else t(w, device), None, 1, None, reduction
    )
    theirs = torch.nn.functional.nll_loss(
        theirs_x, torch.tensor(target), None if w is None else torch.tensor(w), None, 1, None,
        reduction,
    )  # fmt: skip
    assert_parity(ours, theirs, [ours_x], [theirs_x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_matches_torch(device, rng, reduction, weighted):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal((5, 3)) * 4, rng.random((5, 3))
    pw, w = rng.random(3) + 0.5, rng.random((5, 3)) if weighted else None
    ours_x, ours_y = t(x, device, True), t(y, device, True)
    theirs_x, theirs_y = torch_pair(x, True), torch_pair(y, True)
    ours = losses.binary_cross_entropy_with_logits(
        ours_x, ours_y, None if w is None else t(w, device), reduction=reduction,
        pos_weight=t(pw, device),
    )  # fmt: skip
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(
        theirs_x, theirs_y, None if w is None else torch.tensor(w), reduction=reduction,
        pos_weight=torch.tensor(pw),
    )  # fmt: skip
    assert_parity(ours, theirs, [ours_x, ours_y], [theirs_x, theirs_y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_torch(device, rng, reduction):
    torch = pytest.importorskip("torch")
    p, y = rng.uniform(0.01, 0.99, (5, 3)), rng.random((5, 3))
    ours_p, ours_y = t(p, device, True), t(y, device, True)
    theirs_p, theirs_y = torch_pair(p, True), torch_pair(y, True)
    ours = losses.binary_cross_entropy(ours_p, ours_y, reduction=reduction)
    theirs = torch.nn.functional.binary_cross_entropy(theirs_p, theirs_y, reduction=reduction)
    assert_parity(ours, theirs, [ours_p, ours_y], [theirs_p, theirs_y])


def test_bce_at_zero_and_one_is_clamped_like_torch(device):
    torch = pytest.importorskip("torch")
    p, y = numpy.array([0.0, 1.0, 0.0, 1.0]), numpy.array([1.0, 0.0, 0.0, 1.0])
    ours = losses.binary_cross_entropy(t(p, device), t(y, device), reduction="none")
    theirs = torch.nn.functional.binary_cross_entropy(
        torch.tensor(p), torch.tensor(y), reduction="none"
    )
    numpy.testing.assert_array_equal(host(ours), theirs.numpy())  # [100, 100, 0, 0]


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_match_torch(device, rng, name, reduction):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    ours_x, ours_y = t(x, device, True), t(y, device, True)
    theirs_x, theirs_y = torch_pair(x, True), torch_pair(y, True)
    ours = getattr(losses, name)(ours_x, ours_y, reduction=reduction)
    theirs = getattr(torch.nn.functional, name)(theirs_x, theirs_y, reduction=reduction)
    assert_parity(ours, theirs, [ours_x, ours_y], [theirs_x, theirs_y])


# ---- the cuda route, run on the CPU through the kernel emulation ------------------------------


@pytest.fixture
def emulated_kernels(monkeypatch):
    """Route CrossEntropy through gradflow.kernels' softmax_xent launchers on NumPy arrays."""
    from gradflow.testing.emulation import route_kernels

    with route_kernels():
        yield


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_kernel_route_matches_array_path(
    rng, reduction, weighted, label_smoothing, request
):
    x = rng.standard_normal((9, 7))
    target = class_targets(rng, (9,), 7)
    weight = t(rng.random(7) + 0.5, "cpu") if weighted else None
    upstream = t(rng.standard_normal(9) if reduction == "none" else rng.standard_normal(()), "cpu")
    results = []
    for route in ("array", "kernel"):
        if route == "kernel":
            request.getfixturevalue("emulated_kernels")
        xt = t(x, "cpu", True)
        loss = losses.cross_entropy(
            xt, t(target, "cpu"), weight, reduction=reduction, label_smoothing=label_smoothing
        )
        assert loss.grad_fn.kernel is (route == "kernel")
        loss.backward(upstream)
        results.append((host(loss), host(xt.grad)))
    numpy.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12, atol=1e-12)


# ---- the memory contract ---------------------------------------------------------------------


def test_cross_entropy_saves_the_logits_by_reference_and_two_values_per_row(rng):
    x = t(rng.standard_normal((6, 5)), "cpu", True)
    target = t(class_targets(rng, (6,), 5), "cpu")
    loss = losses.cross_entropy(x, target, label_smoothing=0.1)
    saved_x, row_max, log_sum, saved_target, weight = loss.grad_fn.saved_arrays
    assert saved_x is x.array and saved_target is target.array and weight is None
    assert row_max.size == log_sum.size == 6


def test_cross_entropy_leaves_probability_targets_untouched(rng):
    x = t(rng.standard_normal((3, 4)), "cpu", True)
    q = rng.random((3, 4))
    target = t(q, "cpu")
    losses.cross_entropy(x, target).backward()
    numpy.testing.assert_array_equal(target.numpy(), q)


def test_l1_saves_an_int8_sign(rng):
    x = t(rng.standard_normal((4, 4)), "cpu", True)
    (sign,) = losses.l1_loss(x, t(numpy.zeros((4, 4)), "cpu")).grad_fn.saved_arrays
    assert sign.dtype == numpy.int8


def test_nothing_is_saved_without_grad(rng):
    x = t(rng.standard_normal((3, 4)), "cpu")
    loss = losses.cross_entropy(x, t([0, 1, 2], "cpu"))
    assert loss.grad_fn is None


# ---- names: the grad_fn and the messages name the public function ----------------------------

PROBS = [[0.25, 0.5, 0.75], [0.125, 0.5, 0.875]]  # valid for every loss here (BCE: in [0, 1])
CLASSES = [0, 2]

NAMED = [
    ("cross_entropy", "<CrossEntropyBackward>", lambda x: F.cross_entropy(x, t(CLASSES, "cpu"))),
    ("nll_loss", "<NllLossBackward>", lambda x: F.nll_loss(x, t(CLASSES, "cpu"))),
    ("mse_loss", "<MseLossBackward>", lambda x: F.mse_loss(x, x.detach() * 2)),
    ("l1_loss", "<L1LossBackward>", lambda x: F.l1_loss(x, x.detach() * 2)),
    ("binary_cross_entropy", "<BinaryCrossEntropyBackward>",
     lambda x: F.binary_cross_entropy(x, x.detach() * 0)),
    ("binary_cross_entropy_with_logits", "<BinaryCrossEntropyWithLogitsBackward>",
     lambda x: F.binary_cross_entropy_with_logits(x, x.detach() * 0)),
]  # fmt: skip


@pytest.mark.parametrize("name, node, call", NAMED, ids=[n[0] for n in NAMED])
def test_grad_fn_is_named_after_the_public_function(name, node, call):
    loss = call(t(PROBS, "cpu", True))
    assert repr(loss.grad_fn) == node and loss.grad_fn.name == name
    loss.backward()
    with pytest.raises(RuntimeError, match=rf"^Trying to backward through {name} a second time"):
        loss.backward()


MISMATCHED = [  # a float64 operand beside a float32 input, through the public function
    ("cross_entropy", lambda x, y: F.cross_entropy(x, t(CLASSES, "cpu"), y[0])),
    ("nll_loss", lambda x, y: F.nll_loss(x, t(CLASSES, "cpu"), y[0])),
    ("mse_loss", F.mse_loss),
    ("l1_loss", F.l1_loss),
    ("binary_cross_entropy", F.binary_cross_entropy),
    ("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits),
    ("binary_cross_entropy_with_logits",
     lambda x, y: F.binary_cross_entropy_with_logits(x, x, pos_weight=y[0])),
]  # fmt: skip


@pytest.mark.parametrize("name, call", MISMATCHED, ids=[n[0] for n in MISMATCHED])
def test_a_dtype_mismatch_names_the_public_function(name, call):
    x32 = t(numpy.float32(PROBS), "cpu", True)
    y64 = t(PROBS, "cpu")
    with pytest.raises((TypeError, ValueError), match=rf"^{name}: argument '\w+' .*float64"):
        call(x32, y64)


APPLIED = [  # the op nodes themselves, for callers that reach them past the public checks
    ("cross_entropy", lambda x, y: losses.CrossEntropy.apply(
        x, t(CLASSES, "cpu"), y[0], ignore_index=-100, label_smoothing=0.0, probs=False,
        reduction="mean")),
    ("nll_loss", lambda x, y: losses.NLLLossFunction.apply(
        x, t(CLASSES, "cpu"), y[0], ignore_index=-100, reduction="mean")),
    ("mse_loss", lambda x, y: losses.MSELossFunction.apply(x, y, reduction="mean")),
    ("l1_loss", lambda x, y: losses.L1LossFunction.apply(x, y, reduction="mean")),
    ("binary_cross_entropy", lambda x, y: losses.BCE.apply(x, y, None, reduction="mean")),
    ("binary_cross_entropy_with_logits",
     lambda x, y: losses.BCEWithLogits.apply(x, y, None, None, reduction="mean")),
]  # fmt: skip


@pytest.mark.parametrize("name, call", APPLIED, ids=[n[0] for n in APPLIED])
def test_the_op_node_names_the_public_function_in_its_dtype_check(name, call):
    x32 = t(numpy.float32(PROBS), "cpu", True)
    with pytest.raises(TypeError, match=rf"^{name}: expected floating tensors of one dtype"):
        call(x32, t(PROBS, "cpu"))


# ---- errors ----------------------------------------------------------------------------------


@pytest.fixture
def logits():
    return gradflow.tensor(numpy.zeros((4, 3), dtype=numpy.float32))


def test_cross_entropy_rejects_float_class_targets(logits):
    target = gradflow.tensor(numpy.zeros(4, dtype=numpy.float32))
    with pytest.raises(
        TypeError,
        match=r"'target' has dtype float32 and shape \(4,\); expected "
        r"integer class indices \(int64\) of shape \(4,\), or class probabilities",
    ):
        losses.cross_entropy(logits, target)
    with pytest.raises(TypeError, match=r"nll_loss: argument 'target' has dtype float32.*\(4,\)$"):
        losses.nll_loss(logits, target)


def test_cross_entropy_rejects_a_target_of_the_wrong_shape(logits):
    with pytest.raises(
        ValueError,
        match=r"'target' has shape \(5,\) for 'input' of shape "
        r"\(4, 3\); expected class indices of shape \(4,\)",
    ):
        losses.cross_entropy(logits, gradflow.tensor([0, 1, 2, 0, 1]))
    spatial = gradflow.tensor(numpy.zeros((2, 3, 5), dtype=numpy.float32))
    with pytest.raises(ValueError, match=r"expected class indices of shape \(2, 5\)"):
        losses.nll_loss(spatial, gradflow.tensor([0, 1]))


def test_cross_entropy_rejects_out_of_range_classes(logits):
    with pytest.raises(IndexError, match=r"class index 3 at position \(2,\), outside \[0, 3\)"):
        losses.cross_entropy(logits, gradflow.tensor([0, 1, 3, 0]))
    with pytest.raises(IndexError, match=r"class index -1 .*not ignore_index=-100"):
        losses.nll_loss(logits, gradflow.tensor([0, -1, 2, 0]))
    losses.cross_entropy(logits, gradflow.tensor([0, -1, 2, 0]), ignore_index=-1)  # ignored: fine


def test_losses_reject_an_unknown_reduction(logits):
    target = gradflow.tensor([0, 1, 2, 0])
    message = r"argument 'reduction' is 'avg'; expected 'mean', 'sum' or 'none'"
    for call in (
        lambda: losses.cross_entropy(logits, target, reduction="avg"),
        lambda: losses.nll_loss(logits, target, reduction="avg"),
        lambda: losses.mse_loss(logits, logits, reduction="avg"),
        lambda: losses.l1_loss(logits, logits, reduction="avg"),
        lambda: losses.binary_cross_entropy_with_logits(logits, logits, reduction="avg"),
    ):
        with pytest.raises(ValueError, match=message):
            call()


def test_cross_entropy_rejects_a_weight_of_the_wrong_shape(logits):
    weight = gradflow.tensor(numpy.ones(4, dtype=numpy.float32))
    with pytest.raises(
        ValueError,
        match=r"'weight' has shape \(4,\) and dtype float32; "
        r"expected one float32 weight per class, shape \(3,\)",
    ):
        losses.cross_entropy(logits, gradflow.tensor([0, 1, 2, 0]), weight)


def test_cross_entropy_rejects_bad_label_smoothing_and_probability_dtype(logits):
    with pytest.raises(ValueError, match=r"'label_smoothing' is 1.5; expected a float in \[0, 1\]"):
        losses.cross_entropy(logits, gradflow.tensor([0, 1, 2, 0]), label_smoothing=1.5)
    probs = gradflow.tensor(numpy.zeros((4, 3)))
    with pytest.raises(
        TypeError, match=r"probability 'target' has dtype float64; expected float32"
    ):
        losses.cross_entropy(logits, probs)


def test_losses_reject_non_tensor_inputs(logits):
    with pytest.raises(TypeError, match=r"cross_entropy: argument 'input' must be a Tensor"):
        losses.cross_entropy([[0.0, 1.0]], gradflow.tensor([0]))


def test_regression_losses_reject_mismatched_targets(logits):
    with pytest.raises(
        ValueError,
        match=r"mse_loss: argument 'target' has shape \(5,\), which "
        r"does not broadcast with 'input' of shape \(4, 3\)",
    ):
        losses.mse_loss(logits, gradflow.tensor(numpy.zeros(5, dtype=numpy.float32)))
    with pytest.raises(
        TypeError,
        match=r"l1_loss: argument 'target' has dtype float64; expected "
        r"float32",
    ):
        losses.l1_loss(logits, gradflow.tensor(numpy.zeros((4, 3))))


def test_binary_losses_reject_bad_shapes_and_values(logits):
    op = "binary_cross_entropy_with_logits"
    with pytest.raises(
        ValueError,
        match=rf"{op}: argument 'target' has shape \(3,\); expected "
        r"the shape of 'input', \(4, 3\)",
    ):
        losses.binary_cross_entropy_with_logits(logits, logits[0])
    bad = gradflow.tensor(numpy.ones(2, dtype=numpy.float32))
    with pytest.raises(
        ValueError,
        match=r"'pos_weight' has shape \(2,\) and dtype float32; "
        r"expected a float32 tensor that broadcasts to 'input' of shape \(4, 3\)",
    ):
        losses.binary_cross_entropy_with_logits(logits, logits, pos_weight=bad)
    with pytest.raises(ValueError, match=r"'weight' has shape \(2,\)"):
        losses.binary_cross_entropy(logits, logits, weight=bad)
    with pytest.raises(
        ValueError,
        match=r"binary_cross_entropy: argument 'input' holds values "
        r"outside \[0, 1\] \(min -1.0, max -1.0\)",
    ):
        losses.binary_cross_entropy(logits - 1, logits)


# ---- non-contiguous inputs and broadcast shapes -----------------------------------------------


def test_losses_accept_non_contiguous_inputs(device, rng):
    base = t(rng.standard_normal((5, 6)), device, True)
    x = base.T  # (6, 5), a transposed view
    assert not x.array.flags.c_contiguous
    target = t(class_targets(rng, (6,), 5), device)
    weight = t(rng.random(5) + 0.5, device)
    assert gradcheck(
        lambda b: losses.cross_entropy(b.T, target, weight, label_smoothing=0.1), [base]
    )


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       op=st.sampled_from([losses.mse_loss, losses.l1_loss]),
       reduction=st.sampled_from(REDUCTIONS))  # fmt: skip
@pytest.mark.filterwarnings("ignore:.*using a target size")
def test_regression_losses_broadcast_shapes_gradcheck(shapes, op, reduction):
    rng = numpy.random.default_rng(1)
    x_shape, y_shape = shapes.input_shapes
    x = t(rng.standard_normal(x_shape), "cpu", True)
    y = t(rng.standard_normal(y_shape), "cpu", True)
    out = op(x, y, reduction=reduction)
    assert out.shape == (shapes.result_shape if reduction == "none" else ())
    assert gradcheck(lambda x, y: op(x, y, reduction=reduction), [x, y])
