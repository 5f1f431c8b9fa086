"""Edge inputs where the NumPy routes (numba absent, or inside compiled.disabled()) follow PyTorch
as the compiled routes do: softmax / log_softmax of rows holding +inf, NaN or all -inf (NaN
throughout, gradients too); cross_entropy 'mean' with every target ignored (loss NaN, gradient
0); elu's gradient at a NaN input (g, from PyTorch's x <= 0 ? ... : g). Each case runs on both
routes, float32 and float64: against the expected values directly, and against torch when it is
installed."""

import contextlib

import numpy
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.backend import compiled

INF, NAN = numpy.inf, numpy.nan
DTYPES = [numpy.float32, numpy.float64]
ROUTES = ["numpy", "default"]


def _route(route):
    return compiled.disabled() if route == "numpy" else contextlib.nullcontext()


def _close(got, want, dtype):
    rtol = 1e-5 if dtype == numpy.float32 else 1e-12
    numpy.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, equal_nan=True)


# ---- softmax / log_softmax --------------------------------------------------------------------

# rows: +inf; NaN; all -inf; +inf and -inf; finite (with a -inf, which keeps its 0 / -inf)
SOFTMAX_ROWS = [
    [INF, 0.0, 1.0, -2.0],
    [NAN, 0.0, 1.0, -2.0],
    [-INF, -INF, -INF, -INF],
    [INF, -INF, 0.0, 3.0],
    [1.0, -INF, 3.0, 0.5],
]
BAD_ROWS = 4  # the first four are NaN throughout, values and gradients


def _softmax_run(op, rows, dtype, route, dim=-1):
    x = gf.tensor(numpy.array(rows, dtype), requires_grad=True)
    g = (numpy.arange(x.numel(), dtype=dtype).reshape(x.shape) - 7) / 5
    with _route(route):
        y = getattr(F, op)(x, dim=dim)
        y.backward(gf.tensor(g))
    assert y.dtype == x.dtype and x.grad.dtype == x.dtype
    return y.detach().numpy(), x.grad.numpy(), g


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_bad_rows_are_nan(op, route, dtype, dim):
    rows = SOFTMAX_ROWS if dim == -1 else numpy.array(SOFTMAX_ROWS).T  # dim 0: columns
    y, dx, _ = _softmax_run(op, rows, dtype, route, dim)
    if dim == 0:
        y, dx = y.T, dx.T
    assert numpy.isnan(y[:BAD_ROWS]).all()
    assert numpy.isnan(dx[:BAD_ROWS]).all()
    good = y[BAD_ROWS]
    assert not numpy.isnan(good).any() and not numpy.isnan(dx[BAD_ROWS]).any()
    if op == "softmax":
        assert good[1] == 0 and dx[BAD_ROWS, 1] == 0
        _close(good.sum(), 1.0, dtype)
    else:
        assert good[1] == -INF
        _close(numpy.exp(good).sum(), 1.0, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_bad_rows_match_torch(op, route, dtype, dim):
    torch = pytest.importorskip("torch")
    rows = SOFTMAX_ROWS if dim == -1 else numpy.array(SOFTMAX_ROWS).T
    y, dx, g = _softmax_run(op, rows, dtype, route, dim)
    tx = torch.tensor(numpy.array(rows, dtype), requires_grad=True)
    ty = getattr(torch, op)(tx, dim)
    ty.backward(torch.tensor(g))
    _close(y, ty.detach().numpy(), dtype)
    _close(dx, tx.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_plus_inf_scalar_is_nan(op, route, dtype):
    x = gf.tensor(numpy.array(INF, dtype), requires_grad=True)
    with _route(route):
        y = getattr(F, op)(x, dim=0)
        y.backward()
    assert y.shape == () and numpy.isnan(y.item()) and numpy.isnan(x.grad.item())


# ---- cross_entropy with every target ignored ----------------------------------------------------

CE_OPTIONS = [
    {},
    {"weight": [1.0, 2.0, 0.5]},
    {"label_smoothing": 0.1},
    {"weight": [1.0, 2.0, 0.5], "label_smoothing": 0.2},
]
CE_IDS = ["plain", "weight", "smoothing", "weight+smoothing"]


def _ce_run(options, dtype, route, target, reduction, create_graph=False):
    x = gf.tensor(numpy.random.default_rng(0).standard_normal((4, 3)).astype(dtype))
    x.requires_grad_(True)
    kw = {k: gf.tensor(numpy.array(v, dtype)) if k == "weight" else v for k, v in options.items()}
    with _route(route):
        loss = F.cross_entropy(x, gf.tensor(numpy.array(target)), reduction=reduction, **kw)
        if create_graph:
            (dx,) = gf.autograd.grad(loss.sum(), x, create_graph=True)
            (dx * dx).sum().backward()
            return loss.detach().numpy(), dx.detach().numpy(), x.grad.numpy()
        loss.sum().backward()
    return loss.detach().numpy(), x.grad.numpy(), None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("options", CE_OPTIONS, ids=CE_IDS)
def test_cross_entropy_all_ignored_mean(options, route, dtype):
    loss, dx, _ = _ce_run(options, dtype, route, [-100] * 4, "mean")
    assert loss.shape == () and numpy.isnan(loss)
    assert (dx == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("options", CE_OPTIONS, ids=CE_IDS)
def test_cross_entropy_all_ignored_double_backward(options, route, dtype):
    loss, dx, ddx = _ce_run(options, dtype, route, [-100] * 4, "mean", create_graph=True)
    assert numpy.isnan(loss) and (dx == 0).all() and (ddx == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("options", CE_OPTIONS, ids=CE_IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target", [[-100] * 4, [0, -100, 2, 1]], ids=["all", "some"])
@pytest.mark.parametrize("create_graph", [False, True])
def test_cross_entropy_ignored_matches_torch(
    options, route, dtype, reduction, target, create_graph
):
    torch = pytest.importorskip("torch")
    loss, dx, ddx = _ce_run(options, dtype, route, target, reduction, create_graph)
    xa = numpy.random.default_rng(0).standard_normal((4, 3)).astype(dtype)
    tx = torch.tensor(xa, requires_grad=True)
    kw = {
        k: torch.tensor(numpy.array(v, dtype)) if k == "weight" else v for k, v in options.items()
    }
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(target), reduction=reduction, **kw)
    (tdx,) = torch.autograd.grad(tl.sum(), tx, create_graph=create_graph)
    _close(loss, tl.detach().numpy(), dtype)
    _close(dx, tdx.detach().numpy(), dtype)
    if create_graph:
        (tdx * tdx).sum().backward()
        _close(ddx, tx.grad.numpy(), dtype)


# ---- elu's gradient at NaN ---------------------------------------------------------------------

ELU_X = [NAN, -INF, INF, -2.0, -0.0, 0.0, 3.0, -1.0, 1e30, -1e30]
# alpha < 0 saves x (not the output) and takes the where route, whose exp(1e30) overflows
# in the branch not taken
pytestmark_elu = pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")


def _elu_run(alpha, dtype, route):
    x = gf.tensor(numpy.array(ELU_X, dtype), requires_grad=True)
    g = (numpy.arange(len(ELU_X), dtype=dtype) + 1) / 3
    with _route(route):
        y = F.elu(x, alpha)
        y.backward(gf.tensor(g))
    return y.detach().numpy(), x.grad.numpy(), g


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("alpha", [1.0, 0.0, 0.5, 2.0, 1e8, 1e-50, -0.5])
@pytestmark_elu
def test_elu_grad_at_nan_is_g(alpha, route, dtype):
    y, dx, g = _elu_run(alpha, dtype, route)
    assert numpy.isnan(y[0]) and dx[0] == g[0]
    x = numpy.array(ELU_X, numpy.float64)
    with numpy.errstate(over="ignore", invalid="ignore"):  # the branch not taken
        want = numpy.where(x > 0, g, g * (alpha * numpy.exp(x)))
    _close(dx[1:], want[1:], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("alpha", [1.0, 0.0, 0.5, 2.0, 1e8, -0.5])
@pytestmark_elu
def test_elu_grad_at_nan_matches_torch(alpha, route, dtype):
    torch = pytest.importorskip("torch")
    y, dx, g = _elu_run(alpha, dtype, route)
    tx = torch.tensor(numpy.array(ELU_X, dtype), requires_grad=True)
    ty = torch.nn.functional.elu(tx, alpha)
    ty.backward(torch.tensor(g))
    _close(y, ty.detach().numpy(), dtype)
    _close(dx, tx.grad.numpy(), dtype)


@pytest.mark.parametrize("route", ROUTES)
def test_elu_grad_at_nan_scalar(route):
    x = gf.tensor(numpy.array(NAN, numpy.float32), requires_grad=True)
    with _route(route):
        F.elu(x).backward(gf.tensor(numpy.array(2.5, numpy.float32)))
    assert x.grad.item() == 2.5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight", [None, [1.0, 2.0, 3.0]], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("create_graph", [False, True])
def test_nll_loss_every_target_ignored_mean(weight, create_graph, dtype):
    """'mean' over no kept target: the loss is nan (0 / 0) and the gradient 0, as PyTorch (it
    was NaN in the picked column: 1 / 0 times the ignored rows' weight 0)."""
    x = gf.tensor(numpy.arange(12.0).reshape(4, 3).astype(dtype), requires_grad=True)
    w = None if weight is None else gf.tensor(numpy.array(weight, dtype))
    loss = F.nll_loss(x, gf.tensor([-100] * 4), weight=w)
    assert numpy.isnan(float(loss))
    (grad,) = gf.autograd.grad(loss, x, create_graph=create_graph)
    numpy.testing.assert_array_equal(grad.detach().numpy(), numpy.zeros((4, 3), dtype))
