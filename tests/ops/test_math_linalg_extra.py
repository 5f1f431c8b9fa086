"""tensordot, inner, kron, cross, vecdot, multi_dot, and inv/det/slogdet/logdet/solve
(gradflow/ops/einsum.py, linalg.py, decompositions.py, gradflow.linalg): torch parity, float64
gradcheck, errors."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")


def _pairs(rng, device, *shapes, well_conditioned=False):
    out = []
    for shape in shapes:
        a = rng.standard_normal(shape)
        if well_conditioned:
            a = a + 4 * numpy.eye(shape[-1])
        out.append(
            (gf.tensor(a, device=device, requires_grad=True), torch.tensor(a, requires_grad=True))
        )
    return [p[0] for p in out], [p[1] for p in out]


def _check(ours, theirs, xs, ts):
    y, ty = ours(*xs), theirs(*ts)
    assert tuple(y.shape) == tuple(ty.shape)
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-10)
    w = numpy.random.default_rng(3).standard_normal(tuple(ty.shape))
    (y * gf.tensor(w, device=xs[0].device)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        numpy.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert gradcheck(ours, [x.detach().requires_grad_() for x in xs])


CASES = {
    "tensordot_int": (
        [(2, 3, 4), (3, 4, 5)],
        lambda a, b: gf.tensordot(a, b, 2),
        lambda a, b: torch.tensordot(a, b, 2),
    ),
    "tensordot_lists": (
        [(2, 3, 4), (4, 3, 5)],
        lambda a, b: gf.tensordot(a, b, ([1, 2], [1, 0])),
        lambda a, b: torch.tensordot(a, b, ([1, 2], [1, 0])),
    ),
    "inner": ([(2, 3), (4, 3)], gf.inner, torch.inner),
    "kron": ([(2, 3), (2, 2)], gf.kron, torch.kron),
    "kron_mixed_ndim": ([(2,), (2, 3)], gf.kron, torch.kron),
    "cross": (
        [(4, 3), (1, 3)],
        lambda a, b: gf.linalg.cross(a, b),
        lambda a, b: torch.linalg.cross(a, b),
    ),
    "cross_dim0": (
        [(3, 2), (3, 2)],
        lambda a, b: gf.cross(a, b, dim=0),
        lambda a, b: torch.cross(a, b, dim=0),
    ),
    "vecdot": (
        [(2, 4), (4,)],
        lambda a, b: gf.linalg.vecdot(a, b),
        lambda a, b: torch.linalg.vecdot(a, b),
    ),
    "multi_dot": (
        [(3,), (3, 4), (4, 2)],
        lambda *m: gf.linalg.multi_dot(m),
        lambda *m: torch.linalg.multi_dot(m),
    ),
    "chain_matmul": ([(2, 3), (3, 4), (4, 2)], gf.chain_matmul, torch.linalg.multi_dot),
    "vdot": ([(4,), (4,)], gf.vdot, torch.vdot),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_products_match_torch(name, device, rng):
    shapes, ours, theirs = CASES[name]
    xs, ts = _pairs(rng, device, *shapes)
    if name == "chain_matmul":
        theirs_ = lambda *m: theirs(m)  # noqa: E731
    else:
        theirs_ = theirs
    _check(ours, theirs_, xs, ts)


DECOMPOSITIONS = {
    "inv": ([(3, 3)], gf.linalg.inv, torch.linalg.inv),
    "inv_batch": ([(2, 3, 3)], gf.inverse, torch.inverse),
    "det": ([(2, 3, 3)], gf.linalg.det, torch.linalg.det),
    "slogdet": (
        [(3, 3)],
        lambda a: gf.linalg.slogdet(a).logabsdet,
        lambda a: torch.linalg.slogdet(a).logabsdet,
    ),
    "logdet": ([(3, 3)], gf.logdet, torch.logdet),
    "solve_matrix": ([(2, 3, 3), (3, 2)], gf.linalg.solve, torch.linalg.solve),
    "solve_vector": ([(3, 3), (3,)], gf.linalg.solve, torch.linalg.solve),
    "solve_batch_vector": ([(2, 3, 3), (2, 3)], gf.linalg.solve, torch.linalg.solve),
}


@pytest.mark.parametrize("name", sorted(DECOMPOSITIONS))
def test_decompositions_match_torch(name, device, rng):
    shapes, ours, theirs = DECOMPOSITIONS[name]
    xs, ts = _pairs(rng, device, *shapes[:1], well_conditioned=True)
    if len(shapes) > 1:
        more = _pairs(rng, device, *shapes[1:])
        xs, ts = xs + more[0], ts + more[1]
    _check(ours, theirs, xs, ts)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_matches_torch(upper, device, rng):
    (b,), (tb,) = _pairs(rng, device, (2, 3, 3))
    eye = gf.eye(3, dtype=gf.float64, device=device)
    _check(
        lambda m: gf.linalg.cholesky(m @ m.mT + 3 * eye, upper=upper),
        lambda m: torch.linalg.cholesky(
            m @ m.mT + 3 * torch.eye(3, dtype=torch.float64), upper=upper
        ),
        [b],
        [tb],
    )


def test_cholesky_of_a_matrix_not_positive_definite_raises():
    with pytest.raises(RuntimeError, match="linalg.cholesky: the input matrix is not positive"):
        gf.linalg.cholesky(-gf.eye(2))
    assert gf.cholesky(gf.eye(2) * 4).tolist() == [[2.0, 0.0], [0.0, 2.0]]


def test_slogdet_sign_and_logdet_of_negative():
    a = gf.tensor([[-2.0, 0.0], [0.0, 1.0]])
    sign, logabsdet = gf.slogdet(a)
    assert sign.item() == -1.0 and logabsdet.item() == pytest.approx(math.log(2))
    assert math.isnan(gf.logdet(a).item())
    assert gf.logdet(gf.zeros(2, 2)).item() == -math.inf


def test_tensor_methods():
    a = gf.tensor([[2.0, 0.0], [0.0, 4.0]])
    assert a.inverse().tolist() == [[0.5, 0.0], [0.0, 0.25]]
    assert a.det().item() == 8.0
    assert a.kron(gf.ones(1, 1)).tolist() == a.tolist()
    assert gf.ones(3).cross(gf.ones(3)).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: gf.linalg.inv(gf.zeros(2, 2)),
            RuntimeError,
            "linalg.inv: the input matrix is singular",
        ),
        (
            lambda: gf.linalg.inv(gf.ones(2, 3)),
            RuntimeError,
            "A must be batches of square matrices",
        ),
        (
            lambda: gf.linalg.det(gf.tensor([[1, 2], [3, 4]])),
            RuntimeError,
            "expected a floating-point",
        ),
        (lambda: gf.linalg.solve(gf.eye(2), gf.ones(3)), RuntimeError, "incompatible shapes of A"),
        (
            lambda: gf.linalg.solve(gf.eye(2), gf.ones(2), left=False),
            NotImplementedError,
            "left=False",
        ),
        (
            lambda: gf.tensordot(gf.ones(2, 3), gf.ones(2, 3), 1),
            RuntimeError,
            "contracted dimensions need to match",
        ),
        (
            lambda: gf.tensordot(gf.ones(2), gf.ones(2), 2),
            RuntimeError,
            r"dims must be in \[0, 1\]",
        ),
        (lambda: gf.tensordot(gf.ones(2), gf.ones(2), ([0], [])), RuntimeError, "one length"),
        (lambda: gf.cross(gf.ones(2, 2), gf.ones(2, 2)), RuntimeError, "no dimension of size 3"),
        (lambda: gf.linalg.cross(gf.ones(3, 2), gf.ones(3, 2)), RuntimeError, "must have length 3"),
        (lambda: gf.linalg.multi_dot([gf.ones(2, 2)]), RuntimeError, "expected at least 2 tensors"),
        (
            lambda: gf.linalg.multi_dot([gf.ones(2, 2), gf.ones(2), gf.ones(2)]),
            RuntimeError,
            "tensor 1 must be 2D",
        ),
        (lambda: gf.chain_matmul(gf.ones(2)), RuntimeError, "tensor 0 must be 2D"),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
