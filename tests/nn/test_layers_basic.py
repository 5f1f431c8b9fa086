"""Tests for the basic layers: Linear and Identity, activation modules, Dropout, Flatten and
Unflatten, and the loss modules (against their functional forms and torch.nn)."""

import math
import re

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn
from gradflow.testing import gradcheck


def as_numpy(t):
    return t.detach().cpu().numpy()


# ---- Linear -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", [(4,), (2, 4), (2, 3, 4)])
def test_linear_gradcheck(device, rng, bias, x_shape):
    layer = nn.Linear(4, 3, bias=bias, device=device, dtype=gf.float64)
    x = gf.tensor(rng.standard_normal(x_shape), device=device, requires_grad=True)
    out = layer(x)
    assert out.shape == (*x_shape[:-1], 3) and out.device.type == device
    expected = as_numpy(x) @ as_numpy(layer.weight).T
    if bias:
        expected = expected + as_numpy(layer.bias)
    numpy.testing.assert_allclose(as_numpy(out), expected, rtol=1e-12)
    params = [layer.weight] + ([layer.bias] if bias else [])
    assert gradcheck(lambda x, *params: layer(x), [x, *params])


def test_linear_matches_torch(rng):
    torch = pytest.importorskip("torch")
    ours = nn.Linear(5, 3)
    theirs = torch.nn.Linear(5, 3)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(as_numpy(ours.weight)))
        theirs.bias.copy_(torch.from_numpy(as_numpy(ours.bias)))
    x = rng.standard_normal((4, 2, 5)).astype(numpy.float32)
    g = rng.standard_normal((4, 2, 3)).astype(numpy.float32)
    x_ours = gf.tensor(x, requires_grad=True)
    x_theirs = torch.tensor(x, requires_grad=True)
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    numpy.testing.assert_allclose(as_numpy(out_ours), as_numpy(out_theirs), rtol=1e-5, atol=1e-6)
    out_ours.backward(gf.tensor(g))
    out_theirs.backward(torch.from_numpy(g))
    for a, b in [
        (x_ours.grad, x_theirs.grad),
        (ours.weight.grad, theirs.weight.grad),
        (ours.bias.grad, theirs.bias.grad),
    ]:
        numpy.testing.assert_allclose(as_numpy(a), as_numpy(b), rtol=1e-5, atol=1e-5)


def test_linear_default_init_is_uniform_within_one_over_sqrt_fan_in():
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    assert layer.weight.dtype == numpy.float32 and layer.weight.requires_grad
    w, b = as_numpy(layer.weight), as_numpy(layer.bias)
    assert numpy.abs(w).max() <= bound and numpy.abs(b).max() <= bound
    # spread: the samples reach close to the bound and have the std of U(-k, k), k / sqrt(3)
    assert numpy.abs(w).max() > 0.999 * bound and numpy.abs(b).max() > 0.95 * bound
    assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.02
    assert abs(w.mean()) < 0.01 * bound
    assert (b > 0).sum() > 100 and (b < 0).sum() > 100  # both signs: not U(0, k)


def test_linear_init_is_reproducible_under_manual_seed():
    gf.manual_seed(7)
    first = nn.Linear(6, 4)
    gf.manual_seed(7)
    second = nn.Linear(6, 4)
    third = nn.Linear(6, 4)
    numpy.testing.assert_array_equal(as_numpy(first.weight), as_numpy(second.weight))
    numpy.testing.assert_array_equal(as_numpy(first.bias), as_numpy(second.bias))
    assert not numpy.array_equal(as_numpy(second.weight), as_numpy(third.weight))


def test_linear_errors_name_the_layer_and_shapes():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"Linear\(in_features=3\): expected input of shape "
                                         r"\(\.\.\., 3\), got \(5, 4\)"):  # fmt: skip
        layer(gf.ones(5, 4))
    with pytest.raises(ValueError, match=r"Linear\(in_features=3\).*got \(\)"):
        layer(gf.tensor(1.0))
    with pytest.raises(ValueError, match=r"Linear\(in_features=3\).*got ndarray"):
        layer(numpy.ones((2, 3), numpy.float32))
    for bad, error in ((0, ValueError), (-1, RuntimeError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match=r"^Linear: in_features must be a positive int, got"):
            nn.Linear(bad, 2)


def test_linear_without_bias_and_identity():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert list(layer.state_dict()) == ["weight"]
    x = gf.ones(2, 3)
    assert nn.Identity(54, unused="argument")(x) is x


# ---- activations ------------------------------------------------------------------------------

ACTIVATIONS = [
    # (gradflow module, functional, keyword arguments shared by both, torch module name)
    (nn.ReLU, F.relu, {}, "ReLU"),
    (nn.LeakyReLU, F.leaky_relu, {"negative_slope": 0.2}, "LeakyReLU"),
    (nn.ELU, F.elu, {"alpha": 0.7}, "ELU"),
    (nn.GELU, F.gelu, {}, "GELU"),
    (nn.GELU, F.gelu, {"approximate": "tanh"}, "GELU"),
    (nn.Sigmoid, F.sigmoid, {}, "Sigmoid"),
    (nn.Tanh, F.tanh, {}, "Tanh"),
    (nn.SiLU, F.silu, {}, "SiLU"),
    (nn.Softplus, F.softplus, {"beta": 2.0, "threshold": 5.0}, "Softplus"),
    (nn.Softmax, F.softmax, {"dim": 1}, "Softmax"),
    (nn.LogSoftmax, F.log_softmax, {"dim": 0}, "LogSoftmax"),
]


@pytest.mark.parametrize("module, functional, kwargs, torch_name", ACTIVATIONS)
def test_activation_module_equals_functional_and_torch(rng, module, functional, kwargs, torch_name):
    x_np = rng.standard_normal((3, 5)) * 4
    x = gf.tensor(x_np, requires_grad=True)
    out = module(**kwargs)(x)
    numpy.testing.assert_array_equal(as_numpy(out), as_numpy(functional(x, **kwargs)))
    assert gradcheck(module(**kwargs), [x])
    torch = pytest.importorskip("torch")
    expected = getattr(torch.nn, torch_name)(**kwargs)(torch.from_numpy(x_np))
    numpy.testing.assert_allclose(as_numpy(out), expected.numpy(), rtol=1e-10, atol=1e-12)


def test_activations_with_inplace_true_write_into_their_input():
    for module, expected in (
        (nn.ReLU(inplace=True), [0.0, 2.0]),
        (nn.SiLU(inplace=True), [-1 / (1 + numpy.e), 2 / (1 + numpy.exp(-2.0))]),
        (nn.ELU(inplace=True), [numpy.expm1(-1.0), 2.0]),
    ):
        x = gf.tensor([-1.0, 2.0])
        out = module(x)
        assert out is x
        numpy.testing.assert_allclose(as_numpy(x), expected, rtol=1e-6)


# ---- Dropout ----------------------------------------------------------------------------------


def test_dropout_in_training_mode_zeros_and_rescales():
    drop = nn.Dropout(0.25)
    x = gf.ones(10_000, requires_grad=True)
    out = drop(x)
    kept = as_numpy(out) != 0
    numpy.testing.assert_allclose(as_numpy(out)[kept], 1 / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.02
    out.sum().backward()
    numpy.testing.assert_array_equal(as_numpy(x.grad), as_numpy(out))  # the same mask
    # a fresh mask on each call
    assert not numpy.array_equal(as_numpy(drop(x)) != 0, kept)


def test_dropout_in_eval_mode_and_at_the_ends_of_p():
    x = gf.randn(100)
    drop = nn.Dropout(0.5)
    model = nn.Sequential(nn.Identity(), drop).eval()
    assert model(x) is x
    model.train()
    assert (as_numpy(model(x)) == 0).any()
    assert nn.Dropout(0.0)(x) is x
    assert not as_numpy(nn.Dropout(1.0)(x)).any()
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"Dropout: p must be in \[0, 1\], got {p}"):
            nn.Dropout(p)


def test_dropout_is_reproducible_under_manual_seed():
    x = gf.ones(64)
    gf.manual_seed(3)
    first = as_numpy(nn.Dropout()(x))
    gf.manual_seed(3)
    numpy.testing.assert_array_equal(as_numpy(nn.Dropout()(x)), first)


# ---- Flatten and Unflatten --------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, end, expected",
    [(1, -1, (2, 60)), (0, -1, (120,)), (1, 2, (2, 12, 5)), (-2, -1, (2, 3, 20)), (2, 2, None)],
)
def test_flatten_shapes(rng, start, end, expected):
    x_np = rng.standard_normal((2, 3, 4, 5))
    x = gf.tensor(x_np, requires_grad=True)
    out = nn.Flatten(start, end)(x)
    assert out.shape == (expected or x_np.shape)
    numpy.testing.assert_array_equal(as_numpy(out).ravel(), x_np.ravel())
    out.sum().backward()
    assert x.grad.shape == x.shape
    torch = pytest.importorskip("torch")
    assert tuple(torch.nn.Flatten(start, end)(torch.from_numpy(x_np)).shape) == out.shape


@pytest.mark.parametrize(
    "dim, sizes, expected",
    [(1, (3, 4), (2, 3, 4, 5)), (-1, (5, 1), (2, 12, 5, 1)), (1, (2, -1), (2, 2, 6, 5))],
)
def test_unflatten_shapes(rng, dim, sizes, expected):
    x_np = rng.standard_normal((2, 12, 5))
    out = nn.Unflatten(dim, sizes)(gf.tensor(x_np))
    assert out.shape == expected
    numpy.testing.assert_array_equal(as_numpy(out).ravel(), x_np.ravel())
    torch = pytest.importorskip("torch")
    assert tuple(torch.nn.Unflatten(dim, sizes)(torch.from_numpy(x_np)).shape) == expected


def test_flatten_then_unflatten_round_trips():
    x = gf.randn(2, 3, 4)
    model = nn.Sequential(nn.Flatten(), nn.Unflatten(1, [3, 4]))
    numpy.testing.assert_array_equal(as_numpy(model(x)), as_numpy(x))
    assert repr(model[1]) == "Unflatten(dim=1, unflattened_size=(3, 4))"


@pytest.mark.parametrize(
    "shape, dim, sizes, expected",
    [
        ((1, 0), 0, (0,), None),  # reshape alone allowed this: it gave (0, 0)
        ((2, 0), 1, (0, 3), (2, 0, 3)),
        ((2, 0), 1, (3, -1), (2, 3, 0)),
        ((2, 0), 1, (0, -1), None),  # -1 beside a 0 could be anything
        ((2, 6), 1, (4, 2), None),
        ((2, 6), -1, (4, -1), None),
        ((), 0, (1, -1), (1, 1)),  # a 0-d tensor's dim 0 has size 1, as in flatten
    ],
)
def test_unflatten_checks_that_the_sizes_multiply_to_the_dim(shape, dim, sizes, expected):
    x = gf.zeros(*shape)
    if expected is None:
        with pytest.raises(
            ValueError,
            match=rf"Unflatten: unflattened_size {re.escape(str(sizes))}"
            rf" doesn't split dim {dim} of input of shape {re.escape(str(shape))}",
        ):
            nn.Unflatten(dim, sizes)(x)
        return
    assert nn.Unflatten(dim, sizes)(x).shape == expected


def test_unflatten_refuses_bad_sizes_when_built():
    with pytest.raises(ValueError, match=r"Unflatten: unflattened_size \(-1, -1\) must be"):
        nn.Unflatten(1, (-1, -1))
    with pytest.raises(ValueError, match=r"Unflatten: unflattened_size \(\) must be non-empty"):
        nn.Unflatten(1, [])
    with pytest.raises(TypeError, match=r"Unflatten: unflattened_size must be a sequence of ints"):
        nn.Unflatten(1, (2.0, 3))


# ---- losses -----------------------------------------------------------------------------------


def _loss_case(name, rng):
    """(module kwargs, functional, (input, target) as NumPy arrays) for one loss."""
    logits = rng.standard_normal((6, 4))
    classes = numpy.array([0, 3, 1, 2, 3, 1])
    if name in ("MSELoss", "L1Loss"):
        return logits, rng.standard_normal((6, 4))
    if name in ("CrossEntropyLoss", "NLLLoss"):
        if name == "NLLLoss":
            logits = logits - numpy.log(numpy.exp(logits).sum(1, keepdims=True))
        return logits, classes
    if name == "BCELoss":
        return 1 / (1 + numpy.exp(-logits)), rng.random((6, 4))
    return logits, (rng.random((6, 4)) > 0.5).astype(numpy.float64)


LOSSES = [
    ("MSELoss", F.mse_loss, {}),
    ("L1Loss", F.l1_loss, {}),
    ("CrossEntropyLoss", F.cross_entropy, {}),
    ("CrossEntropyLoss", F.cross_entropy, {"weight": [0.2, 1.0, 2.0, 0.5]}),
    ("CrossEntropyLoss", F.cross_entropy, {"ignore_index": 3}),
    ("CrossEntropyLoss", F.cross_entropy, {"label_smoothing": 0.1}),
    (
        "CrossEntropyLoss",
        F.cross_entropy,
        {"weight": [0.2, 1.0, 2.0, 0.5], "ignore_index": 1, "label_smoothing": 0.3},
    ),
    ("NLLLoss", F.nll_loss, {}),
    ("NLLLoss", F.nll_loss, {"weight": [0.2, 1.0, 2.0, 0.5], "ignore_index": 0}),
    ("BCELoss", F.binary_cross_entropy, {}),
    ("BCELoss", F.binary_cross_entropy, {"weight": [0.2, 1.0, 2.0, 0.5]}),
    ("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits, {}),
    ("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits, {"pos_weight": [1.0, 3.0, 0.5, 2]}),
    (
        "BCEWithLogitsLoss",
        F.binary_cross_entropy_with_logits,
        {"weight": [0.2, 1.0, 2.0, 0.5], "pos_weight": [1.0, 3.0, 0.5, 2.0]},
    ),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name, functional, kwargs", LOSSES)
def test_loss_module_equals_functional_and_torch(rng, name, functional, kwargs, reduction):
    x_np, target_np = _loss_case(name, rng)
    tensors = {k: numpy.asarray(v, numpy.float64) if isinstance(v, list) else v
               for k, v in kwargs.items()}  # fmt: skip
    ours_kwargs = {k: gf.tensor(v) if isinstance(v, numpy.ndarray) else v
                   for k, v in tensors.items()}  # fmt: skip
    x = gf.tensor(x_np, requires_grad=True)
    target = gf.tensor(target_np)
    loss = getattr(nn, name)(reduction=reduction, **ours_kwargs)(x, target)
    reference = functional(x, target, reduction=reduction, **ours_kwargs)
    numpy.testing.assert_array_equal(as_numpy(loss), as_numpy(reference))
    loss.sum().backward()

    torch = pytest.importorskip("torch")
    torch_kwargs = {k: torch.from_numpy(v) if isinstance(v, numpy.ndarray) else v
                    for k, v in tensors.items()}  # fmt: skip
    x_torch = torch.tensor(x_np, requires_grad=True)
    expected = getattr(torch.nn, name)(reduction=reduction, **torch_kwargs)(
        x_torch, torch.from_numpy(target_np)
    )
    numpy.testing.assert_allclose(as_numpy(loss), as_numpy(expected), rtol=1e-10, atol=1e-12)
    expected.sum().backward()
    numpy.testing.assert_allclose(as_numpy(x.grad), x_torch.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_loss_weights_are_buffers_in_the_state_dict():
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    loss = nn.CrossEntropyLoss(weight=gf.ones(3))
    assert list(loss.state_dict()) == ["weight"]
    both = nn.BCEWithLogitsLoss(weight=gf.ones(3), pos_weight=gf.ones(3))
    assert list(both.state_dict()) == ["weight", "pos_weight"]
    both.double()
    assert both.weight.dtype == numpy.float64 and both.pos_weight.dtype == numpy.float64
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_matches_torch_and_gradchecks(device, rng, bias):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Bilinear(3, 4, 2, bias=bias).double()
    ours = nn.Bilinear(3, 4, 2, bias=bias, device=device, dtype=gf.float64)
    ours.load_state_dict({k: gf.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    a, b = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 4))  # extra batch dims
    x1, x2 = (gf.tensor(v, device=device, requires_grad=True) for v in (a, b))
    t1, t2 = (torch.tensor(v, requires_grad=True) for v in (a, b))
    y, ty = ours(x1, x2), theirs(t1, t2)
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-10)
    y.sum().backward()
    ty.sum().backward()
    numpy.testing.assert_allclose(x1.grad.cpu().numpy(), t1.grad.numpy(), rtol=1e-10)
    numpy.testing.assert_allclose(
        ours.weight.grad.cpu().numpy(), theirs.weight.grad.numpy(), rtol=1e-10
    )
    assert repr(ours) == repr(theirs)
    w = gf.tensor(rng.standard_normal((2, 3, 4)), device=device, requires_grad=True)
    args = [gf.tensor(v[0], device=device, requires_grad=True) for v in (a, b)]
    assert gradcheck(lambda p, q, w: F.bilinear(p, q, w), [*args, w])
    with pytest.raises(RuntimeError, match="bilinear: expected input1"):
        F.bilinear(args[1], args[0], w)


def test_bilinear_batch_dims_must_agree_and_unbatched_inputs_work(rng):
    w = gf.tensor(rng.standard_normal((2, 4, 5)))
    with pytest.raises(RuntimeError, match="batch dimensions do not match"):
        F.bilinear(gf.randn(3, 4, dtype=gf.float64), gf.randn(1, 5, dtype=gf.float64), w)
    a, b = rng.standard_normal(4), rng.standard_normal(5)
    y = F.bilinear(gf.tensor(a), gf.tensor(b), w)
    assert y.shape == (2,)
    numpy.testing.assert_allclose(y.numpy(), numpy.einsum("i,oij,j->o", a, w.numpy(), b))


def test_bilinear_default_init_is_torchs():
    m = nn.Bilinear(16, 3, 4)
    bound = 1 / math.sqrt(16)
    assert m.weight.shape == (4, 16, 3) and m.bias.shape == (4,)
    assert float(m.weight.abs().max()) <= bound and float(m.weight.abs().max()) > bound / 2
