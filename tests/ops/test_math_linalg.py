"""Matrix products, einsum and norms (gradflow/ops/linalg.py, einsum.py, norms.py,
gradflow/linalg.py): torch parity for values and gradients, float64 gradcheck, and the errors
PyTorch raises."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")


def _pair(rng, shape, device):
    a = rng.standard_normal(shape)
    return gf.tensor(a, device=device, requires_grad=True), torch.tensor(a, requires_grad=True)


def _check(ours, theirs, xs, ts, rtol=1e-12):
    """Same values and gradients as torch (for a random output weight), and gradcheck."""
    y, ty = ours(*xs), theirs(*ts)
    assert tuple(y.shape) == tuple(ty.shape)
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=rtol)
    w = numpy.random.default_rng(1).standard_normal(tuple(ty.shape))
    (y * gf.tensor(w, device=xs[0].device)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        numpy.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=rtol, atol=1e-12)
    assert gradcheck(ours, [x.detach().requires_grad_() for x in xs])


PRODUCTS = {
    "mm": ((3, 4), (4, 2), gf.mm, torch.mm),
    "bmm": ((2, 3, 4), (2, 4, 5), gf.bmm, torch.bmm),
    "mv": ((3, 4), (4,), gf.mv, torch.mv),
    "dot": ((5,), (5,), gf.dot, torch.dot),
    "outer": ((3,), (4,), gf.outer, torch.outer),
    "matmul_broadcast": ((2, 1, 3, 4), (5, 4, 2), gf.matmul, torch.matmul),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_products_match_torch(name, device, rng):
    sa, sb, ours, theirs = PRODUCTS[name]
    (x, t), (y, u) = _pair(rng, sa, device), _pair(rng, sb, device)
    _check(ours, theirs, [x, y], [t, u])


ADD_PRODUCTS = {
    "addmm": ((4,), (3, 5), (5, 4), gf.addmm, torch.addmm),
    "baddbmm": ((1, 3, 4), (2, 3, 5), (2, 5, 4), gf.baddbmm, torch.baddbmm),
    "addbmm": ((3, 4), (2, 3, 5), (2, 5, 4), gf.addbmm, torch.addbmm),
    "addmv": ((3,), (3, 5), (5,), gf.addmv, torch.addmv),
    "addr": ((3, 1), (3,), (4,), gf.addr, torch.addr),
}


@pytest.mark.parametrize("name", sorted(ADD_PRODUCTS))
@pytest.mark.parametrize(("beta", "alpha"), [(1, 1), (0.5, -2.0)])
def test_add_products_match_torch(name, beta, alpha, device, rng):
    s0, s1, s2, ours, theirs = ADD_PRODUCTS[name]
    pairs = [_pair(rng, s, device) for s in (s0, s1, s2)]
    _check(
        lambda a, b, c: ours(a, b, c, beta=beta, alpha=alpha),
        lambda a, b, c: theirs(a, b, c, beta=beta, alpha=alpha),
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )


def test_addmm_with_beta_zero_ignores_nan_input():
    out = gf.addmm(gf.full((2, 2), math.nan), gf.eye(2), gf.eye(2), beta=0)
    assert out.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_tensor_methods_and_inplace_addmm():
    a, b = gf.ones(2, 3), gf.ones(3, 2)
    assert a.mm(b).tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert gf.ones(3).dot(gf.ones(3)).item() == 3.0
    c = gf.zeros(2, 2)
    c.addmm_(a, b, alpha=2)
    assert c.tolist() == [[6.0, 6.0], [6.0, 6.0]]
    assert gf.ger is gf.outer


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gf.mm(gf.ones(2), gf.ones(2, 2)), "mm: both arguments must be matrices"),
        (
            lambda: gf.mm(gf.ones(2, 3), gf.ones(2, 2)),
            r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x2\)",
        ),
        (lambda: gf.bmm(gf.ones(2, 3), gf.ones(2, 3, 3)), "bmm: both arguments must be 3-D"),
        (
            lambda: gf.bmm(gf.ones(2, 2, 3), gf.ones(3, 3, 2)),
            r"bmm: expected mat2 of shape \(2, 3, m\)",
        ),
        (lambda: gf.mv(gf.ones(2, 3), gf.ones(2)), "mv: expected a matrix"),
        (lambda: gf.dot(gf.ones(2, 1), gf.ones(3)), "dot: 1D tensors expected, but got 2D"),
        (lambda: gf.dot(gf.ones(2), gf.ones(3)), "dot: the tensors have 2 and 3 elements"),
        (lambda: gf.outer(gf.ones(2, 3), gf.ones(2)), "outer: expected 1-D arguments"),
        (
            lambda: gf.addmm(gf.ones(3), gf.ones(2, 2), gf.ones(2, 2)),
            r"addmm: input of shape \(3,\) does not broadcast",
        ),
        (lambda: gf.mm("a", gf.ones(2, 2)), "mm: argument 'input' must be a Tensor"),
    ],
)
def test_product_errors(call, message):
    with pytest.raises((RuntimeError, TypeError), match=message):
        call()


# ---- einsum ---------------------------------------------------------------------------------
EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk", [(5, 1, 2, 3), (4, 3, 2)]),
    ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ij->", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("ijk,kl,lm->im", [(2, 3, 4), (4, 5), (5, 2)]),
    ("b i d, b j d -> b i j", [(2, 3, 4), (2, 5, 4)]),
]


@pytest.mark.parametrize(("equation", "shapes"), EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum_matches_torch(equation, shapes, device, rng):
    pairs = [_pair(rng, s, device) for s in shapes]
    _check(
        lambda *xs: gf.einsum(equation, *xs),
        lambda *ts: torch.einsum(equation, *ts),
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )


def test_einsum_takes_a_list_of_operands():
    out = gf.einsum("ij,jk->ik", [gf.ones(2, 3), gf.ones(3, 2)])
    assert out.tolist() == [[3.0, 3.0], [3.0, 3.0]]


@pytest.mark.parametrize(
    ("equation", "operands", "message"),
    [
        ("ij,jk", [(2, 3)], "names 2 operands but 1 were given"),
        ("ij,jk->ik", [(2, 3), (2, 3)], "subscript j has size 2 for operand 1"),
        ("i->ii", [(2,)], "output subscript i appears more than once"),
        ("i->j", [(2,)], "output subscript j does not appear in any input"),
        ("ij->i", [(2,)], r"the subscripts 'ij' need 2 dims, but the operand has shape \(2,\)"),
        ("i1->i", [(2, 2)], "invalid subscripts 'i1'"),
    ],
)
def test_einsum_errors(equation, operands, message):
    with pytest.raises(RuntimeError, match=message):
        gf.einsum(equation, *[gf.ones(s) for s in operands])


def test_einsum_sublist_format_is_refused():
    with pytest.raises(TypeError, match="sublist format"):
        gf.einsum(gf.ones(2), [0])


# ---- norms ----------------------------------------------------------------------------------
VECTOR_NORMS = [
    (2, None, False),
    (2, 1, True),
    (1, (0, 1), False),
    (3, 0, False),
    (0.5, 1, False),
    (math.inf, 1, False),
    (-math.inf, None, False),
]


@pytest.mark.parametrize(("ord", "dim", "keepdim"), VECTOR_NORMS)
def test_vector_norm_matches_torch(ord, dim, keepdim, device, rng):
    x, t = _pair(rng, (3, 4), device)
    _check(
        lambda a: gf.linalg.vector_norm(a, ord, dim, keepdim),
        lambda a: torch.linalg.vector_norm(a, ord, dim, keepdim),
        [x],
        [t],
    )


@pytest.mark.parametrize("ord", ["fro", 1, -1, math.inf, -math.inf])
def test_matrix_norm_matches_torch(ord, device, rng):
    x, t = _pair(rng, (2, 3, 4), device)
    _check(
        lambda a: gf.linalg.matrix_norm(a, ord),
        lambda a: torch.linalg.matrix_norm(a, ord),
        [x],
        [t],
    )


@pytest.mark.parametrize(
    ("kwargs"),
    [{}, {"p": "fro", "dim": 1}, {"p": 1}, {"p": 2, "dim": (0, 1), "keepdim": True}, {"p": 3}],
)
def test_torch_norm_matches(kwargs, device, rng):
    x, t = _pair(rng, (3, 4), device)
    _check(lambda a: gf.norm(a, **kwargs), lambda a: torch.norm(a, **kwargs), [x], [t])
    assert x.norm(**kwargs).tolist() == gf.norm(x, **kwargs).tolist()


@pytest.mark.parametrize(
    ("kwargs"), [{}, {"ord": 1}, {"ord": math.inf}, {"dim": 1}, {"ord": 3, "dim": 0}]
)
def test_linalg_norm_matches(kwargs, device, rng):
    x, t = _pair(rng, (3, 4), device)
    _check(
        lambda a: gf.linalg.norm(a, **kwargs), lambda a: torch.linalg.norm(a, **kwargs), [x], [t]
    )


def test_norm_gradient_at_zero_is_zero(device):
    x = gf.zeros(3, dtype=gf.float64, device=device, requires_grad=True)
    gf.linalg.vector_norm(x).backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    x = gf.tensor([1.0, 0.0, 3.0], device=device, requires_grad=True)
    gf.linalg.vector_norm(x, 0.5).backward()
    assert x.grad.tolist()[1] == 0.0


def test_norm_ord_zero_counts_nonzeros_without_gradient():
    x = gf.tensor([1.0, 0.0, 3.0], requires_grad=True)
    out = gf.linalg.vector_norm(x, 0)
    assert out.item() == 2.0 and not out.requires_grad


def test_inf_norm_shares_the_gradient_among_ties():
    x = gf.tensor([1.0, -3.0, 3.0], requires_grad=True)
    gf.linalg.vector_norm(x, math.inf).backward()
    assert x.grad.tolist() == [0.0, -0.5, 0.5]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: gf.linalg.vector_norm(gf.tensor([1, 2])),
            RuntimeError,
            "vector_norm: expected a floating-point tensor as input, got int64",
        ),
        (
            lambda: gf.linalg.vector_norm(gf.ones(2), "fro"),
            RuntimeError,
            "ord must be a number",
        ),
        (
            lambda: gf.linalg.matrix_norm(gf.ones(2, 2), "nuc"),
            NotImplementedError,
            "needs singular values",
        ),
        (
            lambda: gf.linalg.matrix_norm(gf.ones(2, 2), 3),
            RuntimeError,
            "order 3 not supported",
        ),
        (lambda: gf.linalg.matrix_norm(gf.ones(2), "fro"), RuntimeError, "must be a matrix"),
        (
            lambda: gf.linalg.matrix_norm(gf.ones(2, 2), dim=1),
            RuntimeError,
            "dim must be a 2-tuple",
        ),
        (lambda: gf.norm(gf.ones(2, 2), "nuc"), NotImplementedError, "p='nuc' needs singular"),
        (lambda: gf.norm(gf.ones(2, 2), "abc"), RuntimeError, "p must be 'fro', 'nuc'"),
        (
            lambda: gf.linalg.norm(gf.ones(2, 2, 2), ord=1),
            RuntimeError,
            "must be 1-D or 2-D unless dim is given",
        ),
        (lambda: gf.linalg.vector_norm(gf.ones(0), -math.inf), RuntimeError, "empty tensor"),
    ],
)
def test_norm_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_linalg_names_not_implemented_say_so():
    with pytest.raises(AttributeError, match="gradflow.linalg.eig is not implemented"):
        gf.linalg.eig  # noqa: B018
    assert gf.linalg.matmul is gf.matmul
