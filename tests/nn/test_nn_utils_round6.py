"""nn.utils round 6: parametrize, parametrizations (weight_norm, spectral_norm, orthogonal),
the hook-based weight_norm/spectral_norm, get_total_norm/clip_grads_with_norm_/clip_grad_norm,
Conv/Linear + BatchNorm fusion, skip_init, stateless.functional_call and the memory-format
converters: values, gradients and state dicts against PyTorch, torch-free checks and errors."""

import copy
import math
import pickle
import warnings

import numpy
import pytest

import gradflow
from gradflow import nn
from gradflow.autograd.gradcheck import gradcheck, gradgradcheck
from gradflow.nn.utils import parametrizations, parametrize, stateless


def th():
    return pytest.importorskip("torch")


def host(x):
    return x.detach().cpu().numpy()


def to_torch_sd(sd):
    torch = th()
    return {k: torch.tensor(host(v)) for k, v in sd.items()}


def from_torch_sd(sd):
    return {k: gradflow.tensor(v.detach().numpy()) for k, v in sd.items()}


def grads_match(tm, gm, atol=1e-10):
    tg = {n: p.grad for n, p in tm.named_parameters()}
    for n, p in gm.named_parameters():
        assert tg[n] is not None and p.grad is not None, n
        numpy.testing.assert_allclose(host(p.grad), tg[n].numpy(), atol=atol, rtol=1e-7, err_msg=n)


def run_both(tm, gm, x):
    torch = th()
    tout = tm(torch.tensor(x))
    gout = gm(gradflow.tensor(x))
    numpy.testing.assert_allclose(host(gout), tout.detach().numpy(), rtol=1e-9, atol=1e-10)
    w = numpy.linspace(-1, 1, tout.numel()).reshape(tout.shape)
    (tout * torch.tensor(w)).sum().backward()
    (gout * gradflow.tensor(w)).sum().backward()
    return tout, gout


X = numpy.random.default_rng(1).standard_normal((5, 4))


# ---- parametrizations.weight_norm ------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, None])
def test_parametrized_weight_norm_matches_torch_and_round_trips(dim):
    torch = th()
    tm = torch.nn.utils.parametrizations.weight_norm(
        torch.nn.Linear(4, 3, dtype=torch.float64), dim=dim
    )
    gm = parametrizations.weight_norm(nn.Linear(4, 3, dtype=gradflow.float64), dim=dim)
    assert type(gm).__name__ == "ParametrizedLinear"
    assert list(gm.state_dict()) == list(tm.state_dict())
    assert gm.parametrizations.weight.original0.shape == tuple(
        tm.parametrizations.weight.original0.shape
    )
    gm.load_state_dict(from_torch_sd(tm.state_dict()))
    run_both(tm, gm, X)
    grads_match(tm, gm)
    # the reverse: gradflow's state loads into torch
    tm2 = torch.nn.utils.parametrizations.weight_norm(
        torch.nn.Linear(4, 3, dtype=torch.float64), dim=dim
    )
    tm2.load_state_dict(to_torch_sd(gm.state_dict()))
    numpy.testing.assert_allclose(tm2.weight.detach().numpy(), host(gm.weight), rtol=1e-12)


def test_weight_norm_keeps_the_weight_and_gradchecks():
    lin = nn.Linear(4, 3, dtype=gradflow.float64)
    w0 = host(lin.weight).copy()
    parametrizations.weight_norm(lin)
    numpy.testing.assert_allclose(host(lin.weight), w0, rtol=1e-12)
    g = lin.parametrizations.weight.original0
    numpy.testing.assert_allclose(host(g)[:, 0], numpy.linalg.norm(w0, axis=1), rtol=1e-12)
    v = lin.parametrizations.weight.original1.detach().requires_grad_()
    gg = g.detach().requires_grad_()
    from gradflow.nn.utils.weight_norm import _weight_norm

    assert gradcheck(lambda a, b: _weight_norm(a, b, 0), (v, gg))
    assert gradcheck(lambda a, b: _weight_norm(a, b, -1), (v, gg[:1, 0].sum()))
    # assignment goes through right_inverse
    lin.weight = gradflow.tensor(2 * w0)
    numpy.testing.assert_allclose(host(lin.weight), 2 * w0, rtol=1e-12)
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        lin.weight = nn.Parameter(gradflow.tensor(w0))


@pytest.mark.parametrize(
    "shape,dim", [((4, 3), 0), ((4, 3), 1), ((2, 3, 4), 1), ((2, 3), -1), ((5,), 0)]
)
def test_weight_norm_op_matches_torch_first_and_second_order(shape, dim):
    torch = th()
    from gradflow.nn.utils.weight_norm import _weight_norm

    rng = numpy.random.default_rng(11)
    v = rng.standard_normal(shape)
    g = rng.uniform(0.5, 2, tuple(torch.norm_except_dim(torch.tensor(v), 2, dim).shape))
    w = rng.standard_normal(shape)
    tv, tg = torch.tensor(v, requires_grad=True), torch.tensor(g, requires_grad=True)
    gv, gg = gradflow.tensor(v, requires_grad=True), gradflow.tensor(g, requires_grad=True)
    tout, gout = torch._weight_norm(tv, tg, dim), _weight_norm(gv, gg, dim)
    numpy.testing.assert_allclose(host(gout), tout.detach().numpy(), rtol=1e-12)
    (tout * torch.tensor(w)).sum().backward()
    (gout * gradflow.tensor(w)).sum().backward()
    numpy.testing.assert_allclose(host(gv.grad), tv.grad.numpy(), rtol=1e-9, atol=1e-12)
    numpy.testing.assert_allclose(host(gg.grad), tg.grad.numpy(), rtol=1e-9, atol=1e-12)
    # second order against finite differences (torch's fused kernel disagrees with its own
    # composite formula here; gradflow follows the formula)
    assert gradgradcheck(lambda a, b: _weight_norm(a, b, dim), (gv, gg))


def test_householder_product_matches_torch():
    torch = th()
    from gradflow.nn.utils.parametrizations import _householder_product

    rng = numpy.random.default_rng(12)
    for shape in [(6, 3), (5, 5), (2, 7, 4)]:
        a = 0.5 * rng.standard_normal(shape)
        tau = rng.uniform(0.2, 1.8, (*shape[:-2], shape[-1]))
        w = rng.standard_normal(shape)
        ta, tt = torch.tensor(a, requires_grad=True), torch.tensor(tau, requires_grad=True)
        ga, gt = gradflow.tensor(a, requires_grad=True), gradflow.tensor(tau, requires_grad=True)
        tq, gq = torch.linalg.householder_product(ta, tt), _householder_product(ga, gt)
        numpy.testing.assert_allclose(host(gq), tq.detach().numpy(), atol=1e-12)
        (tq * torch.tensor(w)).sum().backward()
        (gq * gradflow.tensor(w)).sum().backward()
        numpy.testing.assert_allclose(host(ga.grad), ta.grad.numpy(), atol=1e-12)
        numpy.testing.assert_allclose(host(gt.grad), tt.grad.numpy(), atol=1e-12)


# ---- parametrizations.spectral_norm ----------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
def test_parametrized_spectral_norm_matches_torch(training):
    torch = th()
    torch.manual_seed(0)
    tm = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Linear(4, 3, dtype=torch.float64))
    gm = parametrizations.spectral_norm(nn.Linear(4, 3, dtype=gradflow.float64))
    assert list(gm.state_dict()) == list(tm.state_dict())
    gm.load_state_dict(from_torch_sd(tm.state_dict()))
    tm.train(training)
    gm.train(training)
    run_both(tm, gm, X)
    grads_match(tm, gm)
    sd_t, sd_g = tm.state_dict(), gm.state_dict()
    for k in sd_t:
        numpy.testing.assert_allclose(host(sd_g[k]), sd_t[k].numpy(), rtol=1e-9, atol=1e-12)


def test_spectral_norm_gives_unit_largest_singular_value():
    gradflow.manual_seed(3)
    conv = parametrizations.spectral_norm(nn.Conv2d(3, 4, 3, dtype=gradflow.float64))
    for _ in range(30):
        w = conv.weight
    s = numpy.linalg.svd(host(w).reshape(4, -1), compute_uv=False)
    assert abs(s[0] - 1) < 1e-6
    conv.eval()
    u = host(conv.parametrizations.weight[0]._u).copy()
    assert conv.weight.shape == (4, 3, 3, 3)
    numpy.testing.assert_array_equal(host(conv.parametrizations.weight[0]._u), u)
    tconv = parametrizations.spectral_norm(nn.ConvTranspose2d(3, 4, 3))
    assert tconv.parametrizations.weight[0].dim == 1
    with pytest.raises(ValueError, match="n_power_iterations"):
        parametrizations.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        parametrizations.spectral_norm(nn.Linear(2, 2), dim=2)
    with pytest.raises(ValueError, match="no parameter or buffer with name 'nope'"):
        parametrizations.spectral_norm(nn.Linear(2, 2), name="nope")


# ---- parametrizations.orthogonal -------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,orth_map",
    [((4, 4), None), ((4, 4), "cayley"), ((4, 6), None), ((6, 4), "matrix_exp"), ((6, 3), None)],
)
def test_orthogonal_matches_torch(shape, orth_map):
    torch = th()
    out_f, in_f = shape
    tm = torch.nn.utils.parametrizations.orthogonal(
        torch.nn.Linear(in_f, out_f, dtype=torch.float64), orthogonal_map=orth_map
    )
    gm = parametrizations.orthogonal(
        nn.Linear(in_f, out_f, dtype=gradflow.float64), orthogonal_map=orth_map
    )
    assert gm.parametrizations.weight[0].orthogonal_map.name == (
        tm.parametrizations.weight[0].orthogonal_map.name
    )
    assert list(gm.state_dict()) == list(tm.state_dict())
    gm.load_state_dict(from_torch_sd(tm.state_dict()))
    w = host(gm.weight)
    numpy.testing.assert_allclose(w, tm.weight.detach().numpy(), atol=1e-10)
    q = w if out_f >= in_f else w.T
    numpy.testing.assert_allclose(q.T @ q, numpy.eye(q.shape[1]), atol=1e-10)
    # move away from the identity point so the gradients see a general X
    with torch.no_grad():
        tm.parametrizations.weight.original.add_(
            0.1 * torch.tensor(numpy.random.default_rng(2).standard_normal(shape))
        )
    gm.load_state_dict(from_torch_sd(tm.state_dict()))
    x = numpy.random.default_rng(3).standard_normal((5, in_f))
    run_both(tm, gm, x)
    grads_match(tm, gm, atol=1e-9)


def test_orthogonal_assignment_and_errors():
    gradflow.manual_seed(0)
    lin = parametrizations.orthogonal(nn.Linear(5, 5, dtype=gradflow.float64))
    q = numpy.linalg.qr(numpy.random.default_rng(0).standard_normal((5, 5)))[0]
    lin.weight = gradflow.tensor(q)
    numpy.testing.assert_allclose(host(lin.weight), q, atol=1e-10)  # orthogonal: kept as is
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices of shape"):
        lin.weight = gradflow.zeros(4, 5, dtype=gradflow.float64)
    with pytest.raises(ValueError, match="orthogonal_map has to be one of"):
        parametrizations.orthogonal(nn.Linear(3, 3), orthogonal_map="svd")
    with pytest.raises(ValueError, match="Got a tensor of 1 dimensions"):
        parametrizations.orthogonal(nn.Linear(3, 3), name="bias")
    hh = parametrizations.orthogonal(
        nn.Linear(3, 5, dtype=gradflow.float64),
        orthogonal_map="householder",
        use_trivialization=False,
    )
    w = host(hh.weight)
    numpy.testing.assert_allclose(w.T @ w, numpy.eye(3), atol=1e-10)
    plain = parametrizations.orthogonal(nn.Linear(3, 3), use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        plain.weight = gradflow.eye(3)


# ---- parametrize ------------------------------------------------------------------------------
class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).mT


class Scale(nn.Module):
    def forward(self, X):
        return 2 * X

    def right_inverse(self, X):
        return X / 2


class Split(nn.Module):
    def forward(self, a, b):
        return a + b

    def right_inverse(self, X):
        return X * 0.25, X * 0.75


def test_register_parametrization_behaviour():
    lin = nn.Linear(3, 3, dtype=gradflow.float64)
    w0 = host(lin.weight).copy()
    parametrize.register_parametrization(lin, "weight", Symmetric())
    assert parametrize.is_parametrized(lin) and parametrize.is_parametrized(lin, "weight")
    assert not parametrize.is_parametrized(lin, "bias")
    assert parametrize.type_before_parametrizations(lin) is nn.Linear
    assert isinstance(lin, nn.Linear) and type(lin).__name__ == "ParametrizedLinear"
    w = host(lin.weight)
    numpy.testing.assert_allclose(w, w.T)
    numpy.testing.assert_allclose(host(lin.parametrizations.weight.original), w0)
    lin(gradflow.ones(2, 3, dtype=gradflow.float64)).sum().backward()
    assert lin.parametrizations.weight.original.grad is not None
    assert "weight" not in dict(lin.named_parameters())
    # chaining, with right_inverse on the second
    parametrize.register_parametrization(lin, "weight", Scale())
    assert len(lin.parametrizations.weight) == 2
    numpy.testing.assert_allclose(host(lin.weight), 2 * w)
    with parametrize.cached():
        assert lin.weight is lin.weight
    assert lin.weight is not lin.weight
    # Symmetric has no right_inverse: assignment raises as torch does
    with pytest.raises(RuntimeError, match="does not implement right_inverse"):
        lin.weight = gradflow.zeros(3, 3, dtype=gradflow.float64)
    other = copy.deepcopy(lin)
    numpy.testing.assert_allclose(host(other.weight), host(lin.weight))
    with pytest.raises(RuntimeError, match="state_dict"):
        pickle.dumps(lin)
    parametrize.remove_parametrizations(lin, "weight")
    assert type(lin) is nn.Linear and isinstance(lin.weight, nn.Parameter)
    numpy.testing.assert_allclose(host(lin.weight), 2 * w)
    assert "parametrizations" not in lin._modules
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(lin, "weight")


def test_parametrize_tuple_originals_and_errors():
    torch = th()
    gl = nn.Linear(2, 2, dtype=gradflow.float64)
    tl = torch.nn.Linear(2, 2, dtype=torch.float64)

    class TSplit(torch.nn.Module):
        def forward(self, a, b):
            return a + b

        def right_inverse(self, X):
            return X * 0.25, X * 0.75

    w0 = host(gl.weight).copy()
    parametrize.register_parametrization(gl, "weight", Split())
    torch.nn.utils.parametrize.register_parametrization(tl, "weight", TSplit())
    assert list(gl.state_dict()) == list(tl.state_dict())
    numpy.testing.assert_allclose(host(gl.parametrizations.weight.original1), 0.75 * w0)
    numpy.testing.assert_allclose(host(gl.weight), w0)
    with pytest.raises(ValueError, match="leave_parametrized=False"):
        parametrize.remove_parametrizations(gl, "weight", leave_parametrized=False)
    parametrize.remove_parametrizations(gl, "weight")
    numpy.testing.assert_allclose(host(gl.weight), w0)

    class Shrink(nn.Module):
        def forward(self, X):
            return X[:1]

    with pytest.raises(ValueError, match="may not change the shape"):
        parametrize.register_parametrization(nn.Linear(2, 2), "weight", Shrink())
    lin = parametrize.register_parametrization(nn.Linear(2, 2), "weight", Shrink(), unsafe=True)
    assert lin.weight.shape == (1, 2)
    with pytest.raises(ValueError, match="does not have a parameter, a buffer"):
        parametrize.register_parametrization(nn.Linear(2, 2), "nope", Symmetric())
    # leave_parametrized=False gives back the original
    lin = parametrize.register_parametrization(nn.Linear(2, 2), "weight", Scale())
    orig = host(lin.parametrizations.weight.original).copy()
    parametrize.remove_parametrizations(lin, "weight", leave_parametrized=False)
    numpy.testing.assert_allclose(host(lin.weight), orig)
    # a buffer can be parametrized too
    bn = nn.BatchNorm1d(3)
    parametrize.register_parametrization(bn, "running_var", Scale())
    assert "parametrizations.running_var.original" in bn.state_dict()
    numpy.testing.assert_allclose(host(bn.running_var), numpy.ones(3))


def _quiet_weight_norm(module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nn.utils.weight_norm(module, dim=1)


# ---- hook-based weight_norm and spectral_norm --------------------------------------------------
def test_hook_weight_norm_matches_torch():
    torch = th()
    with pytest.warns(FutureWarning, match="deprecated"):
        gm = nn.utils.weight_norm(nn.Conv1d(2, 3, 3, dtype=gradflow.float64), dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = torch.nn.utils.weight_norm(torch.nn.Conv1d(2, 3, 3, dtype=torch.float64), dim=1)
    assert list(gm.state_dict()) == list(tm.state_dict()) == ["bias", "weight_g", "weight_v"]
    gm.load_state_dict(from_torch_sd(tm.state_dict()))
    x = numpy.random.default_rng(4).standard_normal((2, 2, 7))
    run_both(tm, gm, x)
    grads_match(tm, gm)
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
        _quiet_weight_norm(gm)
    w = host(gm.weight).copy()
    nn.utils.remove_weight_norm(gm)
    assert list(gm.state_dict()) == ["bias", "weight"]
    numpy.testing.assert_allclose(host(gm.weight), w)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        nn.utils.remove_weight_norm(gm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert nn.utils.weight_norm(nn.Linear(3, 2), dim=None).weight_g.shape == ()


@pytest.mark.parametrize("training", [True, False])
def test_hook_spectral_norm_matches_torch(training):
    torch = th()
    torch.manual_seed(0)
    tm = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3, dtype=torch.float64))
    gm = nn.utils.spectral_norm(nn.Linear(4, 3, dtype=gradflow.float64))
    assert list(gm.state_dict()) == list(tm.state_dict())
    assert list(gm.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    gm.load_state_dict(from_torch_sd(tm.state_dict()))
    tm.train(training)
    gm.train(training)
    run_both(tm, gm, X)
    grads_match(tm, gm)
    for k, v in tm.state_dict().items():
        numpy.testing.assert_allclose(host(gm.state_dict()[k]), v.numpy(), rtol=1e-9, err_msg=k)
    nn.utils.remove_spectral_norm(gm)
    assert list(gm.state_dict()) == ["bias", "weight"]
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(gm)
    with pytest.raises(ValueError, match="n_power_iterations"):
        nn.utils.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)


# ---- clipping ---------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_get_total_norm_and_clip_grads_with_norm_match_torch(norm_type):
    torch = th()
    rng = numpy.random.default_rng(5)
    arrays = [rng.standard_normal((3, 4)).astype(numpy.float32), rng.standard_normal(5)]
    arrays[1] = arrays[1].astype(numpy.float32)
    tp = [torch.nn.Parameter(torch.zeros(a.shape)) for a in arrays]
    gp = [nn.Parameter(gradflow.zeros(*a.shape)) for a in arrays]
    for p, q, a in zip(tp, gp, arrays):
        p.grad = torch.tensor(a)
        q.grad = gradflow.tensor(a)
    tn = torch.nn.utils.get_total_norm([p.grad for p in tp], norm_type)
    gn = nn.utils.get_total_norm([p.grad for p in gp], norm_type)
    numpy.testing.assert_allclose(host(gn), tn.numpy(), rtol=1e-6)
    torch.nn.utils.clip_grads_with_norm_(tp, 1.0, tn)
    nn.utils.clip_grads_with_norm_(gp, 1.0, gn)
    for p, q in zip(tp, gp):
        numpy.testing.assert_allclose(host(q.grad), p.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_alias_and_errors():
    p = nn.Parameter(gradflow.zeros(3))
    p.grad = gradflow.tensor([3.0, 4.0, 0.0])
    with pytest.warns(FutureWarning, match="clip_grad_norm_"):
        n = nn.utils.clip_grad_norm(p, 1.0)
    assert float(n) == pytest.approx(5.0)
    numpy.testing.assert_allclose(host(p.grad), [0.6, 0.8, 0.0], rtol=1e-5)
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.get_total_norm([gradflow.tensor([1.0, math.nan])], error_if_nonfinite=True)
    assert float(nn.utils.get_total_norm([])) == 0.0
    with pytest.warns(UserWarning, match="empty generator"):
        nn.utils.clip_grad_norm_((q for q in []), 1.0)
    nn.utils.clip_grads_with_norm_([], 1.0, gradflow.tensor(1.0))  # nothing to do


# ---- fusion -----------------------------------------------------------------------------------
def _bn(cls, n, dtype=gradflow.float64):
    bn = cls(n, dtype=dtype).eval()
    rng = numpy.random.default_rng(6)
    bn.running_mean.copy_(gradflow.tensor(rng.standard_normal(n)))
    bn.running_var.copy_(gradflow.tensor(rng.uniform(0.5, 2, n)))
    bn.weight.data.copy_(gradflow.tensor(rng.standard_normal(n)))
    bn.bias.data.copy_(gradflow.tensor(rng.standard_normal(n)))
    return bn


@pytest.mark.parametrize("transpose", [False, True])
def test_fuse_conv_bn_eval_equals_bn_of_conv(transpose):
    conv = (nn.ConvTranspose2d if transpose else nn.Conv2d)(3, 4, 3, dtype=gradflow.float64)
    conv.eval()
    bn = _bn(nn.BatchNorm2d, 4)
    fused = nn.utils.fuse_conv_bn_eval(conv, bn, transpose=transpose)
    assert fused is not conv and isinstance(fused.weight, nn.Parameter)
    x = gradflow.tensor(numpy.random.default_rng(7).standard_normal((2, 3, 6, 6)))
    numpy.testing.assert_allclose(host(fused(x)), host(bn(conv(x))), rtol=1e-10, atol=1e-12)
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        nn.utils.fuse_conv_bn_eval(conv.train(), bn)


def test_fuse_weights_match_torch_and_linear():
    torch = th()
    lin = nn.Linear(4, 3, dtype=gradflow.float64).eval()
    bn = _bn(nn.BatchNorm1d, 3)
    fused = nn.utils.fuse_linear_bn_eval(lin, bn)
    x = gradflow.tensor(X)
    numpy.testing.assert_allclose(host(fused(x)), host(bn(lin(x))), rtol=1e-10, atol=1e-12)
    args = [lin.weight, None, bn.running_mean, bn.running_var, 1e-5, bn.weight, bn.bias]
    targs = [None if a is None else (torch.tensor(host(a)) if hasattr(a, "array") else a)
             for a in args]  # fmt: skip
    for g, t in zip(
        nn.utils.fuse_linear_bn_weights(*args), torch.nn.utils.fuse_linear_bn_weights(*targs)
    ):
        numpy.testing.assert_allclose(host(g), t.detach().numpy(), rtol=1e-12)
    conv_w = gradflow.tensor(numpy.random.default_rng(8).standard_normal((3, 2, 3, 3)))
    g = nn.utils.fuse_conv_bn_weights(conv_w, None, *args[2:5], None, None)
    t = torch.nn.utils.fuse_conv_bn_weights(
        torch.tensor(host(conv_w)), None, *targs[2:5], None, None
    )
    for a, b in zip(g, t):
        numpy.testing.assert_allclose(host(a), b.detach().numpy(), rtol=1e-12)
    with pytest.raises(AssertionError, match="out_features == bn.num_features"):
        nn.utils.fuse_linear_bn_eval(lin, _bn(nn.BatchNorm1d, 5))


# ---- skip_init, functional_call, memory format ------------------------------------------------
def test_skip_init_and_memory_format():
    lin = nn.utils.skip_init(nn.Linear, 4, 3, bias=False)
    assert isinstance(lin, nn.Linear) and lin.weight.shape == (3, 4) and lin.bias is None
    with pytest.raises(RuntimeError, match="Expected a Module"):
        nn.utils.skip_init(int)

    class NoDevice(nn.Module):
        def __init__(self, n):
            super().__init__()

    with pytest.raises(RuntimeError, match="support a 'device' arg"):
        nn.utils.skip_init(NoDevice, 3)
    net = nn.Sequential(nn.Conv2d(2, 3, 3))
    w = host(net[0].weight).copy()
    assert nn.utils.convert_conv2d_weight_memory_format(net, gradflow.channels_last) is net
    assert nn.utils.convert_conv3d_weight_memory_format(net, gradflow.channels_last_3d) is net
    numpy.testing.assert_array_equal(host(net[0].weight), w)
    with pytest.raises(TypeError, match="memory_format"):
        nn.utils.convert_conv2d_weight_memory_format(net, "channels_last")


def test_functional_call_matches_torch_and_restores():
    torch = th()
    gm = nn.Sequential(nn.Linear(4, 3, dtype=gradflow.float64), nn.Tanh())
    tm = torch.nn.Sequential(torch.nn.Linear(4, 3, dtype=torch.float64), torch.nn.Tanh())
    rng = numpy.random.default_rng(9)
    w = rng.standard_normal((3, 4))
    gw = gradflow.tensor(w, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    old = gm[0].weight
    with pytest.warns(FutureWarning, match="functional_call"):
        gout = stateless.functional_call(gm, {"0.weight": gw}, gradflow.tensor(X))
    tm[0].bias.data.copy_(torch.tensor(host(gm[0].bias)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tout = torch.nn.utils.stateless.functional_call(tm, {"0.weight": tw}, (torch.tensor(X),))
    numpy.testing.assert_allclose(host(gout), tout.detach().numpy(), rtol=1e-12)
    gout.sum().backward()
    tout.sum().backward()
    numpy.testing.assert_allclose(host(gw.grad), tw.grad.numpy(), rtol=1e-10)
    assert gm[0].weight is old and old.grad is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="Missing key"):
            stateless.functional_call(gm, {"0.weight": gw}, gradflow.tensor(X), strict=True)
        with pytest.raises(TypeError, match="expected a Tensor"):
            stateless.functional_call(gm, {"0.weight": w}, gradflow.tensor(X))
        # tied weights: one value serves both names
        shared = nn.Linear(2, 2, bias=False)
        tied = nn.Sequential(shared, shared)
        z = gradflow.zeros(2, 2)
        out = stateless.functional_call(tied, {"0.weight": z}, gradflow.ones(1, 2))
        numpy.testing.assert_array_equal(host(out), [[0.0, 0.0]])
        assert tied[1].weight is shared.weight


# ---- devices ----------------------------------------------------------------------------------
def test_parametrizations_run_on_device(device):
    gradflow.manual_seed(0)
    lin = nn.Linear(4, 3).to(device)
    parametrizations.weight_norm(lin)
    parametrizations.spectral_norm(lin, name="bias")  # 1-d: plain normalization
    x = gradflow.randn(2, 4, device=device)
    lin(x).sum().backward()
    assert lin.parametrizations.weight.original1.grad.device == x.device
    numpy.testing.assert_allclose(numpy.linalg.norm(host(lin.bias)), 1.0, rtol=1e-5)
    sn = parametrizations.spectral_norm(nn.Linear(4, 3).to(device))
    sn(x).sum().backward()
    assert sn.parametrizations.weight.original.grad.device == x.device
    orth = parametrizations.orthogonal(nn.Linear(3, 3).to(device))
    orth(gradflow.randn(2, 3, device=device)).sum().backward()
    w = host(orth.weight)
    numpy.testing.assert_allclose(w.T @ w, numpy.eye(3), atol=1e-5)
    old = nn.utils.spectral_norm(nn.Linear(4, 3).to(device))
    old(x).sum().backward()
    assert old.weight_orig.grad.device == x.device


def test_weight_norm_op_hostile_inputs():
    torch = th()
    from gradflow.nn.utils.weight_norm import _weight_norm

    rng = numpy.random.default_rng(13)
    v = rng.standard_normal((3, 4))
    v[1] = 0.0  # a zero row: 0 * inf = nan, as torch
    v[2, 0] = numpy.nan
    g = numpy.ones((3, 1))
    ours = host(_weight_norm(gradflow.tensor(v), gradflow.tensor(g), 0))
    theirs = torch._weight_norm(torch.tensor(v), torch.tensor(g), 0).numpy()
    numpy.testing.assert_array_equal(numpy.isnan(ours), numpy.isnan(theirs))
    # non-contiguous input (a transposed view), float32
    base = rng.standard_normal((4, 3)).astype(numpy.float32)
    gv = gradflow.tensor(base).mT
    gg = gradflow.ones(3, 1)
    numpy.testing.assert_allclose(
        host(_weight_norm(gv, gg, 0)),
        torch._weight_norm(torch.tensor(base).mT, torch.ones(3, 1), 0).numpy(),
        rtol=1e-6,
    )
    assert _weight_norm(gv, gg, 0).dtype == gradflow.float32
    with pytest.raises(IndexError, match="Dimension out of range"):
        _weight_norm(gv, gg, 3)
    # empty: nothing to normalize
    assert _weight_norm(gradflow.zeros(0, 3), gradflow.zeros(0, 1), 0).shape == (0, 3)


def test_transfer_parametrizations_and_conv_transpose_spectral_norm():
    torch = th()
    src = parametrize.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())
    dst = parametrize.transfer_parametrizations_and_params(src, nn.Linear(3, 3))
    assert dst.parametrizations.weight.original is src.parametrizations.weight.original
    numpy.testing.assert_array_equal(host(dst.weight), host(src.weight))
    # the hook spectral_norm on a ConvTranspose normalizes along dim 1, as torch's
    gm = nn.utils.spectral_norm(nn.ConvTranspose2d(2, 5, 3))
    tm = torch.nn.utils.spectral_norm(torch.nn.ConvTranspose2d(2, 5, 3))
    assert gm.weight_u.shape == tuple(tm.weight_u.shape) == (5,)
    assert gm.weight_v.shape == tuple(tm.weight_v.shape)
    gm.load_state_dict(from_torch_sd(tm.state_dict()))
    x = numpy.random.default_rng(14).standard_normal((1, 2, 4, 4)).astype(numpy.float32)
    numpy.testing.assert_allclose(
        host(gm(gradflow.tensor(x))), tm(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5
    )
    # moving a parametrized module moves its originals and buffers
    sn = parametrizations.spectral_norm(nn.Linear(3, 2)).to(gradflow.float64)
    assert sn.weight.dtype == gradflow.float64
    assert sn.parametrizations.weight[0]._u.dtype == gradflow.float64
