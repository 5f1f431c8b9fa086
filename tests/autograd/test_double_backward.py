"""Double backward (create_graph=True): gradgradcheck per op in float64, higher derivatives
against closed forms, the graph-carrying .grad, and the error for an op without it."""

import math

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import gradgradcheck


def _t(rng, shape, device, low=None, high=None):
    a = rng.standard_normal(shape) if low is None else rng.uniform(low, high, shape)
    return gf.tensor(a, dtype=gf.float64, device=device, requires_grad=True)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "neg": lambda a, b: -a * b,
    "pow": lambda a, b: a**b,
    "pow_scalar": lambda a, b: a**3 * b + a**-1.5,
    "rpow_scalar": lambda a, b: 2.0**a * b,
    "scalars": lambda a, b: (a * 2 + 3 - b / 2) / 1.5,
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_gradgradcheck_arithmetic_with_broadcasting(name, device, rng):
    a = _t(rng, (3, 4), device, 0.5, 1.5)
    b = _t(rng, (4,), device, 0.5, 1.5)
    assert gradgradcheck(BINARY[name], (a, b))


POSITIVE = {
    "exp": gf.exp,
    "log": gf.log,
    "log1p": gf.log1p,
    "expm1": gf.expm1,
    "sqrt": gf.sqrt,
    "rsqrt": gf.rsqrt,
    "log2": gf.log2,
    "log10": gf.log10,
    "exp2": gf.exp2,
    "reciprocal": gf.reciprocal,
    "asin": gf.asin,
    "acos": gf.acos,
    "atanh": gf.atanh,
    "acosh": lambda t: gf.acosh(t + 1.5),
}
REAL = {
    "sigmoid": gf.sigmoid,
    "tanh": gf.tanh,
    "sin": gf.sin,
    "cos": gf.cos,
    "tan": lambda t: gf.tan(t * 0.5),
    "atan": gf.atan,
    "sinh": gf.sinh,
    "cosh": gf.cosh,
    "asinh": gf.asinh,
    "abs": gf.abs,
    "relu": gf.relu,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.1),
    "elu": F.elu,
    "gelu": F.gelu,
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
    "silu": F.silu,
    "softplus": lambda t: F.softplus(t, 2.0, 1.0),
}


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_gradgradcheck_unary_on_0_1(name, device, rng):
    assert gradgradcheck(POSITIVE[name], (_t(rng, (3, 4), device, 0.1, 0.9),))


@pytest.mark.parametrize("name", sorted(REAL))
def test_gradgradcheck_unary(name, device, rng):
    x = _t(rng, (3, 4), device)
    x.array[abs(x.array) < 0.05] = 0.3  # away from the kinks of abs/relu
    assert gradgradcheck(REAL[name], (x,))


def _derivatives(f, x, n):
    """f(x) and its first n derivatives (elementwise), each by grad(create_graph=True)."""
    out = [f(x)]
    for _ in range(n):
        (g,) = gf.grad(out[-1].sum(), x, create_graph=True)
        out.append(g)
    return [o.detach().numpy() for o in out]


def test_third_derivative_of_tanh_and_sin_match_closed_forms():
    a = numpy.linspace(-2, 2, 9)
    x = gf.tensor(a, dtype=gf.float64, requires_grad=True)
    _, d1, d2, d3 = _derivatives(gf.tanh, x, 3)
    t = numpy.tanh(a)
    numpy.testing.assert_allclose(d1, 1 - t**2, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(d2, -2 * t * (1 - t**2), rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(d3, -2 * (1 - t**2) * (1 - 3 * t**2), rtol=1e-12, atol=1e-12)
    _, d1, d2, d3, d4 = _derivatives(gf.sin, x, 4)
    numpy.testing.assert_allclose(d1, numpy.cos(a), atol=1e-12)
    numpy.testing.assert_allclose(d2, -numpy.sin(a), atol=1e-12)
    numpy.testing.assert_allclose(d3, -numpy.cos(a), atol=1e-12)
    numpy.testing.assert_allclose(d4, numpy.sin(a), atol=1e-12)


def test_backward_create_graph_leaves_a_grad_with_a_graph():
    x = gf.tensor([1.0, 2.0, 3.0], dtype=gf.float64, requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    assert x.grad.grad_fn is not None  # as PyTorch: x.grad is in the graph
    numpy.testing.assert_allclose(x.grad.detach().numpy(), 3 * x.detach().numpy() ** 2)
    grad = x.grad
    x.grad = None
    grad.sum().backward()
    numpy.testing.assert_allclose(x.grad.detach().numpy(), 6 * x.detach().numpy())


def test_create_graph_keeps_the_forward_graph_and_accumulates():
    x = gf.tensor([0.5, -1.0], dtype=gf.float64, requires_grad=True)
    y = gf.sin(x).sum()
    y.backward(create_graph=True)  # retain_graph defaults to create_graph
    y.backward(create_graph=True)
    numpy.testing.assert_allclose(x.grad.detach().numpy(), 2 * numpy.cos(x.detach().numpy()))
    assert x.grad.grad_fn is not None


def test_first_order_grad_is_unchanged_and_has_no_graph():
    x = gf.tensor([0.5, -1.0], requires_grad=True)
    (gx,) = gf.grad((x * x).sum(), x)
    assert gx.grad_fn is None and not gx.requires_grad
    (x * x).sum().backward()
    assert x.grad.grad_fn is None


def test_grad_create_graph_through_a_gradient_that_needs_no_graph():
    # d(2x)/dx is a constant: with create_graph the result is a constant Tensor, not an error
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    (gx,) = gf.grad((2 * x).sum(), x, create_graph=True)
    numpy.testing.assert_allclose(gx.detach().numpy(), [2.0, 2.0])
    assert not gx.requires_grad


def test_gradient_penalty_mixed_partials():
    # d/dw of |d(w x^2)/dx|^2 = d/dw (2 w x)^2 = 8 w x^2
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    w = gf.tensor(0.7, dtype=gf.float64, requires_grad=True)
    (gx,) = gf.grad((w * x * x).sum(), x, create_graph=True)
    (gx * gx).sum().backward()
    numpy.testing.assert_allclose(w.grad.detach().numpy(), 8 * 0.7 * (1 + 4))


def test_an_op_without_double_backward_raises_naming_it():
    from gradflow.autograd.function import Function

    class Cube(Function):  # an array-level op with no backward_graph
        def forward(self, x):
            self.save_for_backward(x)
            return x**3

        def backward(self, g):
            (x,) = self.saved_arrays
            return 3 * x * x * g

    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    (gx,) = gf.grad(Cube.apply(x).sum(), x, create_graph=True)
    numpy.testing.assert_allclose(gx.detach().numpy(), [3.0, 12.0])  # first order still right
    with pytest.raises(RuntimeError, match=r"Cube: double backward \(create_graph=True\)"):
        gx.sum().backward()


def test_hooks_see_graph_gradients_under_create_graph():
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    y = x * x
    seen = []
    y.register_hook(lambda g: seen.append(g.grad_fn))
    (gx,) = gf.grad(y.sum() * x.sum(), x, create_graph=True)
    assert len(seen) == 1
    numpy.testing.assert_allclose(gx.detach().numpy(), 2 * x.detach().numpy() * 3 + 5)


def test_closed_form_sanity_of_pow_second_derivative():
    x = gf.tensor([2.0], dtype=gf.float64, requires_grad=True)
    _, d1, d2 = _derivatives(lambda t: t**2.5, x, 2)
    assert d2[0] == pytest.approx(2.5 * 1.5 * math.sqrt(2.0))


def _structural(dev):
    def idx(values):
        return gf.tensor(numpy.array(values), device=dev)

    return {
        "sum": (lambda a: (a * a).sum(), 1),
        "sum_dim": (lambda a: (a * a).sum(dim=1), 1),
        "sum_keepdim": (lambda a: (a * a).sum(dim=0, keepdim=True), 1),
        "mean": (lambda a: (a * a).mean(dim=1), 1),
        "var": (lambda a: a.var(dim=1), 1),
        "std": (lambda a: a.std(dim=0, keepdim=True), 1),
        "logsumexp": (lambda a: gf.logsumexp(a * a, dim=1), 1),
        "reshape": (lambda a: (a * a).reshape(4, 3), 1),
        "view": (lambda a: (a * a).view(12), 1),
        "transpose": (lambda a: (a * a).transpose(0, 1) * a.T, 1),
        "permute": (lambda a: (a.reshape(3, 2, 2) ** 2).permute(2, 0, 1), 1),
        "expand": (lambda a: (a[:1] * a[:1]).expand(3, 4) * a, 1),
        "getitem": (lambda a: (a * a)[1:, ::2], 1),
        "getitem_advanced": (lambda a: (a * a)[[0, 0, 2]], 1),
        "cat": (lambda a, c: gf.cat([a * a, c * a], 1), 2),
        "stack": (lambda a, c: gf.stack([a * a, c * a], 0), 2),
        "split": (lambda a: gf.split(a * a, [1, 3], 1)[1], 1),
        "unbind": (lambda a: (a * a).unbind(0)[2], 1),
        "flip": (lambda a: gf.flip(a * a, [0]), 1),
        "roll": (lambda a: gf.roll(a * a, 1, 0), 1),
        "repeat": (lambda a: (a * a).repeat(2, 1), 1),
        "clone": (lambda a: a.clone() * a, 1),
        "matmul": (lambda a, c: (a @ c.T) * (a @ c.T), 2),
        "matmul_batched": (lambda a, c: (a.reshape(3, 2, 2) @ c.reshape(3, 2, 2)) ** 2, 2),
        "matmul_vector": (lambda a, c: (a @ c[0]) ** 2 + (c[1] @ a.T) ** 2, 2),
        "linear": (lambda a, c: F.linear(a, c, c[0, :3]) ** 2, 2),
        "linear_no_bias": (lambda a, c: F.linear(a, c) ** 2, 2),
        "softmax": (lambda a: F.softmax(a * a, dim=1), 1),
        "log_softmax": (lambda a: F.log_softmax(a * a, dim=0), 1),
        "mse_loss": (lambda a, c: F.mse_loss(a * a, c), 2),
        "mse_loss_none": (lambda a, c: F.mse_loss(a * a, c, reduction="none"), 2),
        "cross_entropy": (lambda a, c: F.cross_entropy(a @ c.T, idx([0, 2, 1])), 2),
        "cross_entropy_smoothing": (
            lambda a: F.cross_entropy(
                a * a, idx([0, 2, -100]), reduction="sum", label_smoothing=0.1
            ),
            1,
        ),
        "cross_entropy_weight_none": (
            lambda a: F.cross_entropy(
                a * a,
                idx([0, 2, 3]),
                weight=gf.tensor([0.5, 1.0, 2.0, 0.3], dtype=gf.float64, device=dev),
                reduction="none",
            ),
            1,
        ),
        "cross_entropy_probs": (lambda a, c: F.cross_entropy(a * a, F.softmax(c, 1)), 2),
        "nll_loss": (lambda a: F.nll_loss(F.log_softmax(a, 1), idx([0, 2, 3])), 1),
    }


STRUCTURAL = sorted(_structural("cpu"))


@pytest.mark.parametrize("name", STRUCTURAL)
def test_gradgradcheck_reductions_shapes_matmul_softmax_losses(name, device, rng):
    fn, n = _structural(device)[name]
    inputs = tuple(_t(rng, (3, 4), device) for _ in range(n))
    assert gradgradcheck(fn, inputs)


def _more(dev):
    def f64(*shape):
        rng = numpy.random.default_rng(1)
        return gf.tensor(rng.standard_normal(shape), dtype=gf.float64, device=dev)

    idx = gf.tensor(numpy.array([[0, 2, 2], [5, 1, 0]]), device=dev)
    weights = {"w": f64(4, 3, 3, 3), "wg": f64(4, 1, 3, 3), "w1": f64(4, 3, 3)}
    return {
        "maximum": (lambda a, c: gf.maximum(a * a, c), [(3, 4), (3, 4)]),
        "minimum": (lambda a, c: gf.minimum(a, c * c), [(3, 4), (4,)]),
        "where": (lambda a, c: gf.where(a > 0, a * a, c * a), [(3, 4), (3, 4)]),
        "clamp": (lambda a: gf.clamp(a * a, 0.1, 1.0), [(3, 4)]),
        "amax": (lambda a: gf.amax(a * a, dim=1), [(3, 4)]),
        "max": (lambda a: (a * a).max(), [(3, 4)]),
        "dropout": (
            lambda a: F.dropout(a * a, 0.5, generator=gf.Generator(dev).manual_seed(1)),
            [(3, 4)],
        ),
        "pad": (lambda a: F.pad(a * a, (1, 2), value=3.0), [(3, 4)]),
        "pad_reflect": (lambda a: F.pad((a * a)[None], (1, 2), mode="reflect"), [(3, 4)]),
        "avg_pool2d": (lambda a: F.avg_pool2d(a * a, 2, padding=1), [(2, 3, 5, 5)]),
        "unfold": (lambda a: F.unfold(a * a, 2, padding=1), [(2, 3, 5, 5)]),
        "fold": (lambda a: F.fold(a * a, (3, 3), 2), [(2, 12, 4)]),
        "erf": (gf.erf, [(3, 4)]),
        "erfc": (gf.erfc, [(3, 4)]),
        "layer_norm": (lambda a, w, b: F.layer_norm(a * a, (4,), w, b), [(3, 4), (4,), (4,)]),
        "layer_norm_no_affine": (lambda a: F.layer_norm(a * a, (3, 4)), [(3, 4)]),
        "conv2d": (
            lambda a, w, b: F.conv2d(a, w, b, padding=1, stride=2) ** 2,
            [(2, 3, 5, 5), (4, 3, 3, 3), (4,)],
        ),
        "conv2d_groups_dilation": (
            lambda a, w: F.conv2d(a.repeat(1, 2, 1, 1), w, groups=4, dilation=2) ** 2,
            [(1, 2, 5, 5), (4, 1, 3, 3)],
        ),
        "conv2d_constant_weight": (
            lambda a: F.conv2d(a, weights["w"], padding=1) ** 2,
            [(1, 3, 4, 4)],
        ),
        "conv1d": (lambda a, w: F.conv1d(a, w, padding=1) ** 2, [(2, 3, 5), (4, 3, 3)]),
        "embedding": (lambda e: F.embedding(idx, e) ** 2, [(6, 3)]),
        "embedding_padding_idx": (lambda e: F.embedding(idx, e, padding_idx=2) ** 2, [(6, 3)]),
    }


@pytest.mark.parametrize("name", sorted(_more("cpu")))
def test_gradgradcheck_more_ops(name, device, rng):
    fn, shapes = _more(device)[name]
    assert gradgradcheck(fn, tuple(_t(rng, s, device) for s in shapes))


def test_hvp_of_a_small_cnn_matches_torch(rng):
    torch = pytest.importorskip("torch")
    shapes = [(4, 1, 3, 3), (4,), (3, 16), (3,)]
    arrays = [rng.standard_normal(s) * 0.4 for s in shapes]
    vecs = [rng.standard_normal(s) for s in shapes]
    data = rng.standard_normal((2, 1, 6, 6))
    labels = numpy.array([0, 2])

    def loss(lib, F):
        xb = lib.tensor(data, dtype=lib.float64)
        yb = lib.tensor(labels)

        def f(w1, b1, w2, b2):
            h = lib.tanh(F.conv2d(xb, w1, b1, stride=2))
            h = F.avg_pool2d(h, 1).reshape(2, -1)
            return F.cross_entropy(F.linear(h, w2, b2), yb)

        return f

    params = tuple(gf.tensor(a, dtype=gf.float64) for a in arrays)
    tparams = tuple(torch.tensor(a, dtype=torch.float64) for a in arrays)
    v = tuple(gf.tensor(a, dtype=gf.float64) for a in vecs)
    tv = tuple(torch.tensor(a, dtype=torch.float64) for a in vecs)
    out, p = gf.autograd.functional.hvp(loss(gf, F), params, v)
    tout, tp = torch.autograd.functional.hvp(loss(torch, torch.nn.functional), tparams, tv)
    numpy.testing.assert_allclose(out.detach().numpy(), tout.numpy(), rtol=1e-10)
    for a, b in zip(p, tp):
        numpy.testing.assert_allclose(a.detach().numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "gelu_erf", "gelu_tanh", "silu"])
def test_gradgradcheck_fused_linear_activation(act, device, rng):
    from gradflow.ops.fused import linear_activation

    x, w, b = _t(rng, (3, 4), device), _t(rng, (5, 4), device), _t(rng, (5,), device)
    assert gradgradcheck(lambda a, ww, bb: linear_activation(a * a, ww, bb, act) ** 2, (x, w, b))
    frozen = w.detach()  # a frozen layer: its weight saved only for the input's gradient
    assert gradgradcheck(lambda a: linear_activation(a, frozen, None, act), (x,))


def test_sequential_mlp_gradient_penalty_matches_torch(rng):
    torch = pytest.importorskip("torch")
    model = gf.nn.Sequential(gf.nn.Linear(3, 8), gf.nn.Tanh(), gf.nn.Linear(8, 1)).double()
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    tmodel = tmodel.double()
    for p, tp in zip(model.parameters(), tmodel.parameters()):
        tp.data = torch.tensor(p.detach().numpy())
    data = rng.standard_normal((4, 3))

    def penalty(lib, net):
        x = lib.tensor(data, dtype=lib.float64, requires_grad=True)
        (gx,) = lib.autograd.grad(net(x).sum(), x, create_graph=True)
        return ((gx.norm(dim=1) - 1) ** 2).mean()

    penalty(gf, model).backward()
    penalty(torch, tmodel).backward()
    for p, tp in zip(model.parameters(), tmodel.parameters()):
        if tp.grad is None:  # the last bias: the penalty does not depend on it
            assert p.grad is None
            continue
        numpy.testing.assert_allclose(p.grad.detach().numpy(), tp.grad.numpy(), rtol=1e-10)


def _pointwise_losses_activations(dev):
    def unit(*shape):  # values in (0.1, 0.9), as probabilities and targets
        rng = numpy.random.default_rng(2)
        return gf.tensor(rng.uniform(0.1, 0.9, shape), dtype=gf.float64, device=dev)

    t, w, pw = unit(3, 4), unit(3, 4), unit(4)
    return {
        "atan2": (gf.atan2, 2),
        "logaddexp": (gf.logaddexp, 2),
        "hypot": (gf.hypot, 2),
        "xlogy": (lambda a, b: gf.xlogy(a, b * b + 0.5), 2),
        "copysign": (lambda a, b: gf.copysign(a * a, b), 2),
        "nan_to_num": (lambda a, b: gf.nan_to_num(a * b), 2),
        "floor_frac": (lambda a, b: gf.floor(a) * b + gf.frac(a * b), 2),
        "l1_loss": (lambda a, b: F.l1_loss(a * a, b), 2),
        "smooth_l1_loss": (lambda a, b: F.smooth_l1_loss(a * a, b, beta=0.7), 2),
        "huber_loss": (lambda a, b: F.huber_loss(a * a, b, delta=0.7), 2),
        "kl_div": (lambda a: F.kl_div(a, t, reduction="batchmean"), 1),
        "kl_div_log_target": (lambda a, b: F.kl_div(a, b, reduction="sum", log_target=True), 2),
        "binary_cross_entropy": (lambda a: F.binary_cross_entropy(gf.sigmoid(a), t, w), 1),
        "bce_with_logits": (
            lambda a: F.binary_cross_entropy_with_logits(a, t, weight=w, pos_weight=pw),
            1,
        ),
        "hardtanh": (lambda a: F.hardtanh(a * a), 1),
        "hardswish": (lambda a: F.hardswish(a * 2), 1),
        "hardsigmoid": (lambda a: F.hardsigmoid(a) * a, 1),
        "mish": (F.mish, 1),
        "selu": (F.selu, 1),
        "celu": (lambda a: F.celu(a, 0.7), 1),
        "threshold": (lambda a: F.threshold(a * a, 0.5, -1.0), 1),
        "softsign": (F.softsign, 1),
        "tanhshrink": (F.tanhshrink, 1),
        "softshrink": (lambda a: F.softshrink(a * a, 0.5), 1),
        "logsigmoid": (F.logsigmoid, 1),
        "glu": (lambda a: F.glu(a, 1), 1),
        "prelu": (lambda a, b: F.prelu(a * a, b[0, :1]) * a, 2),
        "softmin": (lambda a: F.softmin(a, 1), 1),
    }


@pytest.mark.parametrize("name", sorted(_pointwise_losses_activations("cpu")))
def test_gradgradcheck_pointwise_losses_activations(name, device, rng):
    fn, n = _pointwise_losses_activations(device)[name]
    x = _t(rng, (3, 4), device)
    x.array[abs(abs(x.array) - 3) < 0.1] += 0.3  # off the kinks of hardswish
    x.array[abs(x.array) < 0.05] = 0.3
    rest = tuple(_t(rng, (3, 4), device) for _ in range(n - 1))
    assert gradgradcheck(fn, (x, *rest))


def _norms_pooling_indexing(dev):
    def f64(*shape, low=0.5, high=1.5):
        rng = numpy.random.default_rng(3)
        return gf.tensor(rng.uniform(low, high, shape), dtype=gf.float64, device=dev)

    mean, var = f64(3, low=-0.5, high=0.5), f64(3)
    idx = gf.tensor(numpy.array([[0, 1, 1], [2, 2, 0]]), device=dev)
    return {
        "batch_norm_training": (
            lambda a, w, b: F.batch_norm(a * a, None, None, w, b, training=True),
            [(4, 3, 5), (3,), (3,)],
        ),
        "batch_norm_no_affine": (
            lambda a: F.batch_norm(a, None, None, training=True) ** 2,
            [(4, 3)],
        ),
        "batch_norm_eval": (
            lambda a, w, b: F.batch_norm(a * a, mean, var, w, b, training=False),
            [(4, 3, 5), (3,), (3,)],
        ),
        "group_norm": (lambda a, w, b: F.group_norm(a * a, 3, w, b), [(4, 3, 5), (3,), (3,)]),
        "group_norm_one_group": (lambda a: F.group_norm(a * a, 1) ** 2, [(2, 3, 4)]),
        "max_pool2d": (
            lambda a: F.max_pool2d(a * a, 2, stride=2, padding=1) ** 2,
            [(2, 3, 5, 5)],
        ),
        "max_pool2d_dilation": (
            lambda a: F.max_pool2d(a, 3, stride=1, dilation=2) * a[:, :, :1, :1],
            [(1, 2, 5, 5)],
        ),
        "max_pool1d": (lambda a: F.max_pool1d(a * a, 2), [(2, 3, 6)]),
        "max_pool3d": (lambda a: F.max_pool3d(a * a, 2, padding=1) ** 2, [(1, 2, 4, 5, 4)]),
        "adaptive_max_pool2d": (
            lambda a: F.adaptive_max_pool2d(a * a, (2, 3), return_indices=True)[0] ** 2,
            [(2, 3, 5, 5)],
        ),
        "adaptive_max_pool1d": (lambda a: F.adaptive_max_pool1d(a, 3) ** 2, [(2, 3, 7)]),
        "max_dim": (lambda a: (a * a).max(dim=1).values, [(3, 4)]),
        "min_dim_keepdim": (lambda a: (a * a).min(dim=0, keepdim=True)[0], [(3, 4)]),
        "cumsum": (lambda a: gf.cumsum(a * a, 1), [(3, 4)]),
        "prod": (lambda a: gf.prod(a, 1), [(3, 4)]),
        "cumprod": (lambda a: gf.cumprod(a, 1) + gf.cumprod(a * a, 0), [(3, 4)]),
        "cummax_cummin": (
            lambda a: gf.cummax(a * a, 1).values ** 2 + gf.cummin(a, 0)[0] * a,
            [(3, 4)],
        ),
        "gather": (lambda a: gf.gather(a * a, 0, idx), [(3, 4)]),
        "scatter": (lambda a, b: gf.scatter(a * a, 0, idx[:1], b * b), [(3, 4), (2, 3)]),
        "scatter_add": (lambda a, b: gf.scatter_add(a * a, 0, idx, b * b), [(3, 4), (2, 3)]),
        "scatter_reduce_mean": (
            lambda a, b: gf.scatter_reduce(a * a, 0, idx, b * b, "mean", include_self=False),
            [(3, 4), (2, 3)],
        ),
        "scatter_reduce_amax": (
            lambda a, b: gf.scatter_reduce(a * a, 0, idx, b * b, "amax") ** 2,
            [(3, 4), (2, 3)],
        ),
        "scatter_reduce_amin_no_self": (
            lambda a, b: gf.scatter_reduce(a, 0, idx, b, "amin", include_self=False) ** 2,
            [(3, 4), (2, 3)],
        ),
    }


@pytest.mark.parametrize("name", sorted(_norms_pooling_indexing("cpu")))
def test_gradgradcheck_norms_pooling_indexing(name, device, rng):
    fn, shapes = _norms_pooling_indexing(device)[name]
    assert gradgradcheck(fn, tuple(_t(rng, s, device) for s in shapes))


def test_prod_with_a_zero_raises_when_differentiated_twice():
    z = gf.tensor([[0.0, 2.0], [1.0, 3.0]], dtype=gf.float64, requires_grad=True)
    (gz,) = gf.grad(gf.prod(z, 1).sum(), z, create_graph=True)
    assert gz.detach().numpy().tolist() == [[2.0, 0.0], [3.0, 1.0]]
    with pytest.raises(RuntimeError, match="Prod: double backward"):
        gz.sum().backward()


def _attention(dev):
    rng = numpy.random.default_rng(4)
    keep = gf.tensor(rng.random((3, 5)) > 0.3, device=dev)
    keep.array[:, 0] = True  # every query sees a key

    def sdpa(**kw):
        def f(q, k, v, *mask):
            gf.manual_seed(0)  # the dropout mask: the same draw at every call
            if mask:
                kw["attn_mask"] = mask[0]
            return F.scaled_dot_product_attention(q, k, v, **kw)

        return f

    qkv = [(2, 3, 4), (2, 5, 4), (2, 5, 3)]
    return {
        "sdpa": (sdpa(), qkv),
        "sdpa_causal": (sdpa(is_causal=True), [(2, 3, 4), (2, 3, 4), (2, 3, 3)]),
        "sdpa_bool_mask": (sdpa(attn_mask=keep), qkv),
        "sdpa_additive_mask": (sdpa(), [*qkv, (3, 5)]),
        "sdpa_dropout": (sdpa(dropout_p=0.3), qkv),
    }


@pytest.mark.parametrize("name", sorted(_attention("cpu")))
def test_gradgradcheck_attention(name, device, rng):
    fn, shapes = _attention(device)[name]
    assert gradgradcheck(fn, tuple(_t(rng, s, device) for s in shapes))


NORMS_EINSUM = {
    "norm_2_dim": (lambda a, b: a.norm(dim=1) * b.sum(), 2),
    "norm_2_all": (lambda a, b: gf.linalg.vector_norm(a * b), 2),
    "norm_1": (lambda a, b: gf.linalg.vector_norm(a, 1, dim=0) * b.sum(), 2),
    "norm_inf": (lambda a, b: gf.linalg.vector_norm(a, float("inf"), dim=1, keepdim=True) * b, 2),
    "norm_3": (lambda a, b: gf.linalg.vector_norm(a * b, 3, dim=1), 2),
    "einsum_matmul": (lambda a, b: gf.einsum("ij,kj->ik", a, b) ** 2, 2),
    "einsum_diagonal": (lambda a, b: gf.einsum("ii->i", (a @ b.T)[:3, :3] ** 2), 2),
    "einsum_broadcast": (lambda a, b: gf.einsum("...j,j->...", a, b[0]) ** 2, 2),
    "einsum_outer": (lambda a, b: gf.einsum("i,j->ij", a[0], b[1]) ** 2, 2),
    "einsum_total": (lambda a, b: gf.einsum("ij,ij->", a * a, b), 2),
}


@pytest.mark.parametrize("name", sorted(NORMS_EINSUM))
def test_gradgradcheck_norms_einsum(name, device, rng):
    fn, n = NORMS_EINSUM[name]
    assert gradgradcheck(fn, tuple(_t(rng, (3, 4), device) for _ in range(n)))


LINEAR_AND_TRANSPOSED = {
    "conv_transpose2d": (
        lambda a, w, b: F.conv_transpose2d(a, w, b, stride=2, padding=1, output_padding=1) ** 2,
        [(2, 4, 3, 3), (4, 2, 3, 3), (2,)],
    ),
    "conv_transpose2d_groups_dilation": (
        lambda a, w: F.conv_transpose2d(a, w, groups=2, dilation=2) ** 2,
        [(1, 4, 3, 3), (4, 1, 2, 2)],
    ),
    "conv_transpose1d": (
        lambda a, w: F.conv_transpose1d(a, w, stride=2) ** 2,
        [(2, 4, 5), (4, 3, 3)],
    ),
    "adaptive_avg_pool2d": (lambda a: F.adaptive_avg_pool2d(a * a, (2, 3)), [(2, 3, 5, 5)]),
    "interpolate_nearest": (lambda a: F.interpolate(a * a, scale_factor=2), [(1, 2, 3, 3)]),
    "interpolate_bilinear": (
        lambda a: F.interpolate(a * a, size=(5, 4), mode="bilinear", align_corners=False),
        [(1, 2, 3, 3)],
    ),
    "interpolate_bicubic": (
        lambda a: F.interpolate(a, size=(3, 5), mode="bicubic") ** 2,
        [(1, 2, 4, 4)],
    ),
    "tril_triu": (lambda a: gf.tril(a * a, -1) + (a * a).triu(1), [(3, 4)]),
    "diagonal_trace": (lambda a: gf.diagonal(a * a, 1) * gf.trace(a * a), [(3, 4)]),
    "diag_embed": (lambda a: gf.diag_embed(a * a, 1) * 2, [(2, 3)]),
    "avg_pool3d": (lambda a: F.avg_pool3d(a * a, 2), [(1, 2, 4, 4, 4)]),
    "conv3d": (
        lambda a, w, b: F.conv3d(a, w, b, padding=1, stride=(1, 2, 1)) ** 2,
        [(1, 2, 4, 4, 3), (3, 2, 2, 2, 2), (3,)],
    ),
    "conv3d_groups_dilation": (
        lambda a, w: F.conv3d(a, w, groups=2, dilation=(1, 2, 1)) ** 2,
        [(1, 2, 4, 4, 3), (4, 1, 2, 2, 2)],
    ),
    "conv_transpose3d": (
        lambda a, w, b: F.conv_transpose3d(a, w, b, stride=2, padding=1) ** 2,
        [(1, 2, 3, 3, 2), (2, 3, 2, 2, 2), (3,)],
    ),
}


@pytest.mark.parametrize("name", sorted(LINEAR_AND_TRANSPOSED))
def test_gradgradcheck_conv_transpose_and_linear_ops(name, device, rng):
    fn, shapes = LINEAR_AND_TRANSPOSED[name]
    assert gradgradcheck(fn, tuple(_t(rng, s, device) for s in shapes))


def _setitem(a, b):
    z = a * 1.0
    z[1, :] = b[0] * b[0]
    z[0, [0, 2]] = 3.0
    return z * a


MISC = {
    "setitem": (_setitem, 2),
    "erfinv": (lambda a, b: gf.erfinv(gf.tanh(a) * 0.8), 1),
    "remainder": (lambda a, b: gf.remainder(a * a, b + 3), 2),
    "fmod": (lambda a, b: gf.fmod(a * a, b + 3) * a, 2),
}


@pytest.mark.parametrize("name", sorted(MISC))
def test_gradgradcheck_setitem_erfinv_remainder(name, device, rng):
    fn, n = MISC[name]
    inputs = tuple(_t(rng, (3, 4), device) for _ in range(n))
    assert gradgradcheck(fn if n == 2 else (lambda a: fn(a, None)), inputs)


def _square(rng, device, *batch):
    a = rng.standard_normal((*batch, 3, 3)) + 3 * numpy.eye(3)
    return gf.tensor(a, dtype=gf.float64, device=device, requires_grad=True)


LINALG_DISTANCE = {
    "inv": (lambda a, b: gf.linalg.inv(a), False),
    "det": (lambda a, b: gf.linalg.det(a * a), False),
    "det_batched": (lambda a, b: gf.linalg.det(a), True),
    "slogdet_logdet": (lambda a, b: gf.linalg.slogdet(a)[1] + gf.logdet(a @ a.T), False),
    "solve": (lambda a, b: gf.linalg.solve(a, b), False),
    "solve_batched": (lambda a, b: gf.linalg.solve(a, b), True),
    "solve_vector": (lambda a, b: gf.linalg.solve(a, b[:, 0]), False),
    "normalize": (lambda a, b: F.normalize(b * b + 0.1, dim=1), False),
    "normalize_p1": (lambda a, b: F.normalize(b, p=1, dim=0) * b, False),
    "normalize_p3": (lambda a, b: F.normalize(b, p=3, dim=1), False),
    "normalize_inf": (lambda a, b: F.normalize(b, p=float("inf"), dim=1) * b, False),
    "pairwise_distance": (lambda a, b: F.pairwise_distance(a, b @ b.T), False),
    "cosine_similarity": (lambda a, b: F.cosine_similarity(a, b @ b.T), False),
    "cholesky": (lambda a, b: gf.linalg.cholesky(a @ a.T), False),
    "cdist": (lambda a, b: gf.cdist(a, b @ b.T), False),
    "cdist_mm": (
        lambda a, b: gf.cdist(a, b @ b.T, compute_mode="use_mm_for_euclid_dist"),
        False,
    ),
    "cdist_p3": (lambda a, b: gf.cdist(a, b @ b.T, p=3), False),
}


@pytest.mark.parametrize("name", sorted(LINALG_DISTANCE))
def test_gradgradcheck_linalg_and_distances(name, device, rng):
    fn, batched = LINALG_DISTANCE[name]
    a = _square(rng, device, 2) if batched else _square(rng, device)
    assert gradgradcheck(fn, (a, _t(rng, (3, 2), device)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # sqrt's 1 / (2 sqrt(0)), on purpose
def test_create_graph_under_anomaly_mode():
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    with gf.autograd.detect_anomaly():
        (gx,) = gf.grad((x**3).sum(), x, create_graph=True)
        gx.sum().backward()
    numpy.testing.assert_allclose(x.grad.detach().numpy(), [6.0, 12.0])
    y = gf.tensor([0.0, 2.0], dtype=gf.float64, requires_grad=True)
    with pytest.raises(gf.autograd.AnomalyError, match="inf"), gf.autograd.detect_anomaly():
        (gy,) = gf.grad(gf.sqrt(y).sum(), y, create_graph=True)
        gy.sum().backward()


def test_backward_inputs_and_a_graph_carrying_gradient_argument():
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    w = gf.tensor([0.5, -1.0], dtype=gf.float64, requires_grad=True)
    y = x * x
    y.backward(w * 2, inputs=[x], create_graph=True)  # the gradient argument has a graph
    assert w.grad is None and x.grad.grad_fn is not None
    numpy.testing.assert_allclose(x.grad.detach().numpy(), 4 * w.detach().numpy() * [1, 2])
    x.grad.sum().backward(inputs=[w])  # d/dw sum(4 w x) = 4 x
    numpy.testing.assert_allclose(w.grad.detach().numpy(), [4.0, 8.0])


def test_gradgradcheck_max_unpool(device, rng):
    frame = gf.tensor(rng.standard_normal((1, 2, 4, 4)), dtype=gf.float64, device=device)
    _, idx = F.max_pool2d(frame, 2, return_indices=True)
    x = _t(rng, (1, 2, 2, 2), device)
    assert gradgradcheck(
        lambda a: F.max_unpool2d(a * a, idx, 2) + F.max_unpool2d(a, idx, 2) ** 2, (x,)
    )


class _CubeFn(gf.autograd.Function):  # PyTorch's kind: forward/backward on Tensors
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)  # an input: in the graph under create_graph
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g


class _ExpFn(gf.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)  # the output: in the graph as the node's output
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


def test_pytorch_style_custom_functions_differentiate_twice():
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    (g1,) = gf.grad(_CubeFn.apply(x).sum(), x, create_graph=True)
    (g2,) = gf.grad(g1.sum(), x, create_graph=True)
    (g3,) = gf.grad(g2.sum(), x)
    assert g2.detach().tolist() == [6.0, 12.0] and g3.tolist() == [6.0, 6.0]
    assert gradgradcheck(lambda a: _CubeFn.apply(a * a), (x,))
    assert gradgradcheck(_ExpFn.apply, (x,))


def test_module_backward_hooks_under_create_graph(rng):
    net = gf.nn.Sequential(gf.nn.Linear(3, 4), gf.nn.Tanh(), gf.nn.Linear(4, 1)).double()
    seen = []
    net[2].register_full_backward_hook(lambda m, gi, go: seen.append(len(go)))
    x = gf.tensor(rng.standard_normal((5, 3)), dtype=gf.float64, requires_grad=True)
    (gx,) = gf.grad(net(x).sum(), x, create_graph=True)  # the hook observes: identity
    (gx * gx).sum().backward()
    assert seen == [1] and net[0].weight.grad is not None
    net[2].register_full_backward_hook(lambda m, gi, go: tuple(g * 2 for g in gi))
    (gx,) = gf.grad(net(x).sum(), x, create_graph=True)  # a replaced gradient is an array
    with pytest.raises(RuntimeError, match="backward_hook_function: double backward"):
        (gx * gx).sum().backward()


def test_a_decomposition_through_a_fused_layer_keeps_its_second_order_term():
    # decomposed_backward_graph re-links the nodes its recomputation made; the fused
    # linear+activation makes two of them by hand, which it must find as well
    from gradflow.autograd.differentiable import decomposed_backward_graph
    from gradflow.autograd.function import Function

    gf.manual_seed(0)
    block = gf.nn.Sequential(gf.nn.Linear(3, 4), gf.nn.Tanh()).double()

    class Block(Function):
        def forward(self, x):
            self.save_for_backward(x)
            with gf.no_grad():
                return block(gf.Tensor._wrap(x)).array

        def backward(self, g):
            (x,) = self.saved_arrays
            t = gf.Tensor._wrap(x).requires_grad_()
            with gf.enable_grad():
                (dx,) = gf.grad(block(t), t, gf.Tensor._wrap(g))
            return dx.array

        def backward_graph(self, g):
            (x,) = self.saved_arrays
            return decomposed_backward_graph(self, g, lambda t: block(t), (x,))

    x0 = gf.randn(5, 3, dtype=gf.float64)

    def hessian_term(op):
        x = x0.clone().requires_grad_()
        (g,) = gf.grad(op(x).sum(), x, create_graph=True)
        (h,) = gf.grad(g.square().sum(), x)
        return h.numpy()

    numpy.testing.assert_allclose(hessian_term(Block.apply), hessian_term(block), rtol=1e-10)
