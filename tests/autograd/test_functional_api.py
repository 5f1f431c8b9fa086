"""gradflow.autograd.functional (vjp, jvp, jacobian, hessian, hvp, vhp) against
torch.autograd.functional on small functions, and the names it keeps (grad, backward)."""

import numpy
import pytest

import gradflow as gf
from gradflow.autograd import functional as AF

torch = pytest.importorskip("torch")
TF = torch.autograd.functional


def _pair(rng, *shape):
    a = rng.standard_normal(shape)
    return gf.tensor(a, dtype=gf.float64), torch.tensor(a, dtype=torch.float64)


def _close(ours, theirs, tol=1e-10):
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            _close(o, t, tol)
        return
    numpy.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=tol, atol=tol)


def f_one(lib):
    return lambda x: (lib.tanh(x) * x.sum()).exp()


def f_two(lib):
    return lambda x, y: (lib.sin(x) * y, (x * y).sum())


def f_scalar(lib):
    return lambda x, y: (lib.tanh(x @ y) ** 2).sum() + (x * x * x).sum()


def test_grad_and_backward_keep_their_homes():
    from gradflow.autograd.functional import backward, grad

    assert grad is gf.grad and backward is gf.autograd.backward


def test_vjp_matches_torch(rng):
    x, tx = _pair(rng, 3)
    v, tv = _pair(rng, 3)
    out, g = AF.vjp(f_one(gf), x, v)
    tout, tg = TF.vjp(f_one(torch), tx, tv)
    _close(out, tout)
    _close(g, tg)
    y, ty = _pair(rng, 3)
    vs = (v, gf.tensor(1.5, dtype=gf.float64))
    tvs = (tv, torch.tensor(1.5, dtype=torch.float64))
    out, g = AF.vjp(f_two(gf), (x, y), vs)
    tout, tg = TF.vjp(f_two(torch), (tx, ty), tvs)
    _close(out, tout)
    _close(g, tg)
    assert g[0].grad_fn is None


def test_jvp_matches_torch(rng):
    x, tx = _pair(rng, 3)
    v, tv = _pair(rng, 3)
    out, j = AF.jvp(f_one(gf), x, v)
    tout, tj = TF.jvp(f_one(torch), tx, tv)
    _close(out, tout)
    _close(j, tj)
    y, ty = _pair(rng, 3)
    w, tw = _pair(rng, 3)
    out, j = AF.jvp(f_two(gf), (x, y), (v, w))
    tout, tj = TF.jvp(f_two(torch), (tx, ty), (tv, tw))
    _close(j, tj)


def test_jacobian_matches_torch_in_every_form(rng):
    x, tx = _pair(rng, 3)
    y, ty = _pair(rng, 3)
    _close(AF.jacobian(f_one(gf), x), TF.jacobian(f_one(torch), tx))
    _close(AF.jacobian(f_two(gf), (x, y)), TF.jacobian(f_two(torch), (tx, ty)))

    def g(lib):
        return lambda x, y: lib.sin(x)[:, None] * y

    _close(AF.jacobian(g(gf), (x, y)), TF.jacobian(g(torch), (tx, ty)))
    m, tm = _pair(rng, 2, 3)
    _close(AF.jacobian(lambda a: gf.tanh(a) * 2, m), TF.jacobian(lambda a: torch.tanh(a) * 2, tm))


def test_hessian_matches_torch(rng):
    x, tx = _pair(rng, 2, 3)
    y, ty = _pair(rng, 3)
    _close(AF.hessian(f_scalar(gf), (x, y)), TF.hessian(f_scalar(torch), (tx, ty)))
    h = AF.hessian(lambda a: (gf.sin(a) * a).sum(), y)
    _close(h, TF.hessian(lambda a: (torch.sin(a) * a).sum(), ty))


def test_hvp_and_vhp_match_torch(rng):
    x, tx = _pair(rng, 2, 3)
    y, ty = _pair(rng, 3)
    v, tv = _pair(rng, 2, 3)
    w, tw = _pair(rng, 3)
    for ours, theirs in ((AF.hvp, TF.hvp), (AF.vhp, TF.vhp)):
        out, p = ours(f_scalar(gf), (x, y), (v, w))
        tout, tp = theirs(f_scalar(torch), (tx, ty), (tv, tw))
        _close(out, tout)
        _close(p, tp)


def test_hvp_of_a_tanh_mlp_matches_torch(rng):
    shapes = [(8, 4), (8,), (3, 8), (3,)]
    arrays = [rng.standard_normal(s) * 0.5 for s in shapes]
    data = rng.standard_normal((5, 4))
    target = rng.standard_normal((5, 3))
    vecs = [rng.standard_normal(s) for s in shapes]

    def loss(lib, F):
        xb = lib.tensor(data, dtype=lib.float64)
        tb = lib.tensor(target, dtype=lib.float64)

        def f(w1, b1, w2, b2):
            h = lib.tanh(F.linear(xb, w1, b1))
            return F.mse_loss(F.linear(h, w2, b2), tb)

        return f

    params = tuple(gf.tensor(a, dtype=gf.float64) for a in arrays)
    tparams = tuple(torch.tensor(a, dtype=torch.float64) for a in arrays)
    v = tuple(gf.tensor(a, dtype=gf.float64) for a in vecs)
    tv = tuple(torch.tensor(a, dtype=torch.float64) for a in vecs)
    out, p = AF.hvp(loss(gf, gf.nn.functional), params, v)
    tout, tp = TF.hvp(loss(torch, torch.nn.functional), tparams, tv)
    _close(out, tout)
    _close(p, tp, 1e-9)


def test_create_graph_results_stay_in_the_graph(rng):
    x = gf.tensor(rng.standard_normal(3), dtype=gf.float64, requires_grad=True)
    _, g = AF.vjp(lambda a: (a**3).sum(), x, create_graph=True)
    assert g.grad_fn is not None
    g.sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy())


def test_strict_and_errors(rng):
    x = gf.tensor([1.0, 2.0], dtype=gf.float64)
    _, g = AF.vjp(lambda a: gf.ones(2, dtype=gf.float64), x, gf.ones(2, dtype=gf.float64))
    numpy.testing.assert_array_equal(g.numpy(), [0.0, 0.0])
    with pytest.raises(RuntimeError, match="independent of input 0"):
        AF.vjp(lambda a: gf.ones(2, dtype=gf.float64), x, gf.ones(2), strict=True)
    with pytest.raises(RuntimeError, match="single Tensor with one element"):
        AF.hessian(lambda a: a * 2, x)
    with pytest.raises(RuntimeError, match="v can be omitted only"):
        AF.vjp(lambda a: a * 2, x)
    with pytest.raises(TypeError, match="must be a Tensor"):
        AF.jacobian(lambda a: a, [1.0, 2.0])
