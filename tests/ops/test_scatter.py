"""Scatter ops (gradflow/ops/scatter.py): values and gradients against PyTorch, gradcheck,
the in-place forms through the in-place machinery, and every error message."""

import numpy
import pytest

import gradflow as gf
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")

X = numpy.arange(12.0).reshape(3, 4) / 7 - 0.5
SRC = numpy.linspace(-1.0, 2.0, 12).reshape(3, 4)
ROWS = [[2, 0, 1, 0], [1, 2, 0, 2]]  # along dim 0: repeats within columns
UNIQUE_ROWS = [[2, 0, 1, 0], [1, 2, 0, 2]][:1]  # one row: no position written twice
COLS = [[3, 1], [0, 0], [2, 3]]  # along dim 1, with a repeat in row 1

# name -> fn(tensor, x, src, lib) using names gradflow and torch share
CASES = {
    "scatter": lambda x, s, lib: x.scatter(0, lib.tensor(UNIQUE_ROWS), s[:1]),
    "scatter_value": lambda x, s, lib: x.scatter(1, lib.tensor([[3], [0], [1]]), 2.5) * s,
    "scatter_fn": lambda x, s, lib: lib.scatter(x, 0, lib.tensor(UNIQUE_ROWS), s[:1]),
    "scatter_add": lambda x, s, lib: x.scatter_add(0, lib.tensor(ROWS), s[:2]),
    "scatter_add_cols": lambda x, s, lib: lib.scatter_add(x, 1, lib.tensor(COLS), s[:, :2]),
    "index_add": lambda x, s, lib: x.index_add(0, lib.tensor([2, 0, 2]), s, alpha=2),
    "index_add_dim1": lambda x, s, lib: lib.index_add(x, 1, lib.tensor([1, 1, 3, 0]), s),
    "index_copy": lambda x, s, lib: x.index_copy(1, lib.tensor([3, 1, 0, 2]), s),
    "index_fill": lambda x, s, lib: x.index_fill(1, lib.tensor([0, 2]), -1.0) * s,
    "index_fill_tensor": lambda x, s, lib: x.index_fill(0, lib.tensor([1]), s.sum()),
    "index_put": lambda x, s, lib: x.index_put((lib.tensor([0, 2]), lib.tensor([1, 3])), s[0, :2]),
    "index_put_acc": lambda x, s, lib: x.index_put(
        (lib.tensor([0, 0, 2]), lib.tensor([1, 1, 3])), s[1, :3], accumulate=True
    ),
    "index_put_row": lambda x, s, lib: x.index_put((lib.tensor([1]),), s[2]),
    "put": lambda x, s, lib: x.put(lib.tensor([0, 11, -2, 5]), s[0]),
    "put_acc": lambda x, s, lib: x.put(lib.tensor([0, 5, 5]), s[1, :3], accumulate=True),
    "masked_fill": lambda x, s, lib: x.masked_fill(x > 0, -2.0) * s,
    "masked_fill_fn": lambda x, s, lib: lib.masked_fill(
        x, lib.tensor([True, False, True, False]), s[0, 0]
    ),
    "masked_fill_broadcast": lambda x, s, lib: x[0].masked_fill(lib.tensor([[True], [False]]), 1.0),
    "masked_scatter": lambda x, s, lib: x.masked_scatter(x > 0, s),
}
REDUCES = [(r, inc) for r in ("sum", "prod", "mean", "amax", "amin") for inc in (True, False)]


def _pair(device, requires_grad=True):
    x = gf.tensor(X, device=device, requires_grad=requires_grad)
    s = gf.tensor(SRC, device=device, requires_grad=requires_grad)
    tx = torch.tensor(X, requires_grad=requires_grad)
    ts = torch.tensor(SRC, requires_grad=requires_grad)
    return x, s, tx, ts


def _host(t):
    return (
        numpy.asarray(t.detach().cpu().tolist()) if isinstance(t, gf.Tensor) else t.detach().numpy()
    )


def _parity(fn, device):
    x, s, tx, ts = _pair(device)
    out, tout = fn(x, s, gf), fn(tx, ts, torch)
    numpy.testing.assert_allclose(_host(out), _host(tout), rtol=1e-12, atol=1e-12)
    weights = numpy.cos(numpy.arange(tout.numel())).reshape(tout.shape)
    (out * gf.tensor(weights, device=device)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    for mine, theirs in ((x.grad, tx.grad), (s.grad, ts.grad)):
        if theirs is None:
            assert mine is None or not _host(mine).any()
        else:
            numpy.testing.assert_allclose(_host(mine), theirs.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name, device):
    _parity(CASES[name], device)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck(name, device):
    x, s, _, _ = _pair(device)
    assert gradcheck(lambda a, b: CASES[name](a, b, gf), [x, s])


@pytest.mark.parametrize(("reduce", "include_self"), REDUCES)
def test_scatter_reduce_matches_torch(reduce, include_self, device):
    def fn(x, s, lib):
        return x.scatter_reduce(0, lib.tensor(ROWS), s[:2], reduce, include_self=include_self)

    _parity(fn, device)
    x, s, _, _ = _pair(device)
    assert gradcheck(lambda a, b: fn(a, b, gf), [x, s])


@pytest.mark.parametrize("reduce", ["amax", "amin", "prod"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_ties_and_zeros_match_torch(reduce, include_self, device):
    # Ties share amax/amin's gradient evenly; prod with one zero (and with two) among a
    # position's values gives the zero the others' product.
    base = numpy.array([[1.0, 0.0, 2.0], [3.0, 1.0, 0.0]])
    src = numpy.array([[1.0, 0.0, 2.0], [1.0, 5.0, 0.0]])
    index = [[0, 0, 1], [0, 1, 1]]
    x, s = (gf.tensor(a, device=device, requires_grad=True) for a in (base, src))
    tx, ts = (torch.tensor(a, requires_grad=True) for a in (base, src))
    out = x.scatter_reduce(1, gf.tensor(index), s, reduce, include_self=include_self)
    tout = tx.scatter_reduce(1, torch.tensor(index), ts, reduce, include_self=include_self)
    numpy.testing.assert_allclose(_host(out), tout.detach().numpy())
    out.sum().backward()
    tout.sum().backward()
    numpy.testing.assert_allclose(_host(x.grad), tx.grad.numpy())
    numpy.testing.assert_allclose(_host(s.grad), ts.grad.numpy())


def test_integer_scatter_reduce_matches_torch(device):
    x = torch.tensor([[5, 1, 7], [2, 2, 2]])
    index = torch.tensor([[0, 0, 2], [1, 1, 1]])
    src = torch.tensor([[4, 9, 3], [8, 6, 1]])
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        for inc in (True, False):
            got = gf.tensor(x.numpy(), device=device).scatter_reduce(
                1,
                gf.tensor(index.numpy()),
                gf.tensor(src.numpy(), device=device),
                reduce,
                include_self=inc,
            )
            assert (
                got.tolist() == x.scatter_reduce(1, index, src, reduce, include_self=inc).tolist()
            )


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter:UserWarning")
@pytest.mark.parametrize("reduce", ["add", "multiply"])
def test_scatter_with_reduce_values_match_torch_and_gradcheck(reduce, device):
    # PyTorch has no derivative for scatter(reduce=...); gradflow's is scatter_reduce's.
    x, s, tx, ts = _pair(device)
    out = x.scatter(1, gf.tensor(COLS), s[:, :2], reduce=reduce)
    expected = tx.detach().scatter(1, torch.tensor(COLS), ts.detach()[:, :2], reduce=reduce)
    numpy.testing.assert_allclose(_host(out), expected.numpy())
    assert gradcheck(lambda a, b: a.scatter(1, gf.tensor(COLS), b[:, :2], reduce=reduce), [x, s])


def test_src_larger_than_index_uses_its_corner(device):
    x = gf.zeros(3, 4, dtype=gf.float64, device=device)
    src = gf.tensor(SRC, device=device, requires_grad=True)
    out = x.scatter(1, gf.tensor([[0, 1], [2, 3]]), src)
    expected = torch.zeros(3, 4, dtype=torch.float64).scatter(
        1, torch.tensor([[0, 1], [2, 3]]), torch.tensor(SRC)
    )
    numpy.testing.assert_array_equal(_host(out), expected.numpy())
    out.sum().backward()
    grad = numpy.zeros((3, 4))
    grad[:2, :2] = 1
    numpy.testing.assert_array_equal(_host(src.grad), grad)


INPLACE = {
    "scatter_": lambda t, s, lib: t.scatter_(0, lib.tensor(UNIQUE_ROWS), s[:1]),
    "scatter_value_": lambda t, s, lib: t.scatter_(1, lib.tensor([[0], [1], [2]]), 4.0),
    "scatter_add_": lambda t, s, lib: t.scatter_add_(0, lib.tensor(ROWS), s[:2]),
    "scatter_reduce_": lambda t, s, lib: t.scatter_reduce_(0, lib.tensor(ROWS), s[:2], "amax"),
    "index_add_": lambda t, s, lib: t.index_add_(0, lib.tensor([2, 0, 2]), s),
    "index_copy_": lambda t, s, lib: t.index_copy_(0, lib.tensor([2, 0, 1]), s),
    "index_fill_": lambda t, s, lib: t.index_fill_(1, lib.tensor([3]), 7.0),
    "index_put_": lambda t, s, lib: t.index_put_((lib.tensor([0, 1]),), s[:2], accumulate=True),
    "put_": lambda t, s, lib: t.put_(lib.tensor([1, 2]), s[0, :2]),
    "masked_fill_": lambda t, s, lib: t.masked_fill_(lib.tensor([True, False, False, True]), 0.5),
    "masked_fill_tensor_": lambda t, s, lib: t.masked_fill_(
        lib.tensor([[True], [False], [True]]), s[1, 1]
    ),
    "masked_scatter_": lambda t, s, lib: t.masked_scatter_(
        lib.tensor([False, True, True, False]), s
    ),
    "tril_": lambda t, s, lib: t.tril_(1),
    "triu_": lambda t, s, lib: t.triu_(-1),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_forms_write_the_tensor_and_record_gradients(name, device):
    fn = INPLACE[name]
    x, s, tx, ts = _pair(device)
    target, ttarget = x * 1, tx * 1  # non-leaf tensors requiring grad: the write is recorded
    assert fn(target, s, gf) is target
    fn(ttarget, ts, torch)
    numpy.testing.assert_allclose(_host(target), ttarget.detach().numpy())
    assert target._version > 0
    weights = numpy.sin(numpy.arange(12.0)).reshape(3, 4)
    (target * gf.tensor(weights, device=device)).sum().backward()
    (ttarget * torch.tensor(weights)).sum().backward()
    numpy.testing.assert_allclose(_host(x.grad), tx.grad.numpy())
    if ts.grad is not None:
        numpy.testing.assert_allclose(_host(s.grad), ts.grad.numpy())
    # Unrecorded (no tensor requires grad): written in place, same values.
    plain = gf.tensor(X, device=device)
    array = plain.array
    fn(plain, gf.tensor(SRC, device=device), gf)
    assert plain.array is array
    numpy.testing.assert_allclose(_host(plain), ttarget.detach().numpy())


def test_inplace_source_requiring_grad_makes_the_target_part_of_the_graph(device):
    target = gf.zeros(3, dtype=gf.float64, device=device)
    src = gf.tensor([1.0, 2.0], dtype=gf.float64, device=device, requires_grad=True)
    target.index_add_(0, gf.tensor([2, 2]), src)
    assert target.grad_fn is not None
    (target * gf.tensor([1.0, 2.0, 3.0], dtype=gf.float64, device=device)).sum().backward()
    assert _host(src.grad).tolist() == [3.0, 3.0]


def test_inplace_on_a_leaf_that_requires_grad_raises():
    leaf = gf.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="scatter_add_: a leaf tensor that requires grad"):
        leaf.scatter_add_(0, gf.tensor(ROWS), gf.tensor(SRC))
    with pytest.raises(RuntimeError, match="masked_fill_: a leaf tensor that requires grad"):
        leaf.masked_fill_(gf.tensor([True, False, True, False]), 0.0)


def test_masked_fill_keeps_the_input_dtype():
    x = gf.tensor([1, 2])
    out = x.masked_fill(gf.tensor([True, False]), 0.7)
    assert out.dtype == gf.int64 and out.tolist() == [0, 2]
    f = gf.tensor([1.0, 2.0])
    assert (
        gf.masked_fill(f, gf.tensor([False, True]), gf.tensor(3.0, dtype=gf.float64)).dtype
        == gf.float32
    )


ERRORS = [
    (
        lambda: gf.zeros(3).scatter(0, gf.tensor([5]), 1.0),
        IndexError,
        "scatter: index 5 is out of bounds for dimension 0 with size 3",
    ),
    (
        lambda: gf.zeros(3).scatter(0, gf.tensor([-1]), 1.0),
        IndexError,
        "scatter: index -1 is out of bounds for dimension 0 with size 3",
    ),
    (
        lambda: gf.zeros(3).scatter(0, gf.tensor([1.0]), 1.0),
        TypeError,
        "scatter: index must be an integer tensor",
    ),
    (lambda: gf.zeros(3).scatter(0, gf.tensor([1])), TypeError, "pass src"),
    (
        lambda: gf.zeros(3).scatter(0, gf.tensor([1]), 1.0, reduce="max"),
        ValueError,
        "reduce argument must be either add or multiply",
    ),
    (
        lambda: gf.zeros(3).scatter_reduce(0, gf.tensor([1]), gf.ones(1), "max"),
        ValueError,
        "reduce argument must be either sum, prod, mean, amax or amin, got 'max'",
    ),
    (
        lambda: gf.zeros(3).scatter(0, gf.tensor([1, 2]), gf.ones(1)),
        ValueError,
        r"expected index \[2\] to be no larger than self \[3\] apart from dimension 0 and to be "
        r"no larger than src \[1\]",
    ),
    (
        lambda: gf.zeros(3, 2).scatter(0, gf.tensor([1]), gf.ones(3, 2)),
        ValueError,
        "must have as many dims as the input",
    ),
    (
        lambda: gf.zeros(3, 2).scatter_add(0, gf.tensor([[1]]), gf.ones(3)),
        ValueError,
        "src of shape",
    ),
    (
        lambda: gf.zeros(3).scatter_add(0, gf.tensor([1]), gf.ones(1, dtype=gf.float64)),
        TypeError,
        "scatter_add: expected src to have the input's dtype float32, got float64",
    ),
    (
        lambda: gf.zeros(3).scatter_add(0, gf.tensor([1]), 1.0),
        TypeError,
        "scatter_add: argument 'src' must be a Tensor",
    ),
    (
        lambda: gf.zeros(3).index_add(0, gf.tensor([1, 2]), gf.ones(1)),
        ValueError,
        "index_add: source of shape",
    ),
    (
        lambda: gf.zeros(3).index_add(0, gf.tensor([[1]]), gf.ones(1)),
        ValueError,
        r"index_add: index must be 1-D \(or 0-d\)",
    ),
    (
        lambda: gf.zeros(3).index_copy(0, gf.tensor([3]), gf.ones(1)),
        IndexError,
        "index_copy: index 3 is out of bounds for dimension 0 with size 3",
    ),
    (
        lambda: gf.zeros(()).index_copy(0, gf.tensor([0, 0]), gf.ones(2)),
        ValueError,
        "a 0-d input takes a 0-d",
    ),
    (
        lambda: gf.zeros(3).index_fill(0, gf.tensor([1]), "a"),
        TypeError,
        "index_fill: value must be a number or a 0-d tensor",
    ),
    (
        lambda: gf.zeros(3).masked_fill(gf.tensor([True, False, True]), gf.ones(3)),
        ValueError,
        "masked_fill only supports a 0-dimensional value tensor, but got tensor with 1 dimension",
    ),
    (
        lambda: gf.zeros(3).masked_fill(gf.ones(3), 1.0),
        TypeError,
        "masked_fill only supports boolean masks, but got mask with dtype float32",
    ),
    (
        lambda: gf.zeros(3).masked_fill(gf.tensor([True, False]), 1.0),
        ValueError,
        r"masked_fill: mask of shape \(2,\) doesn't broadcast",
    ),
    (
        lambda: gf.zeros(3).masked_fill_(gf.ones(2, 3, dtype=gf.bool), 1.0),
        ValueError,
        r"masked_fill_: mask of shape \(2, 3\) doesn't broadcast to the input's shape \(3,\)",
    ),
    (
        lambda: gf.zeros(3).masked_scatter(gf.ones(3, dtype=gf.bool), gf.ones(2)),
        ValueError,
        "masked_scatter: the mask selects 3 elements but source has only 2",
    ),
    (
        lambda: gf.zeros(3).index_put([gf.tensor([1])], gf.ones(2)),
        ValueError,
        r"index_put: values of shape \(2,\) can't be broadcast to the indexed shape \(1,\)",
    ),
    (
        lambda: gf.zeros(3).index_put(gf.tensor([1]), gf.ones(1)),
        TypeError,
        "index_put: indices must be a tuple of tensors",
    ),
    (
        lambda: gf.zeros(3).put(gf.tensor([1, 2]), gf.ones(1)),
        ValueError,
        "put: expected source and index to have the same number of elements, got 1 and 2",
    ),
    (
        lambda: gf.zeros(3).put(gf.tensor([-4]), gf.ones(1)),
        IndexError,
        "put: index -4 is out of bounds",
    ),
    (
        lambda: gf.zeros(3, 3).expand(2, 3, 3).tril_(),
        RuntimeError,
        "refers to a single memory location",
    ),
]


@pytest.mark.parametrize(("fn", "error", "message"), ERRORS)
def test_errors_name_the_problem(fn, error, message):
    with pytest.raises(error, match=message):
        fn()


def test_inplace_result_of_another_shape_is_refused():
    from gradflow.ops.scatter import inplace

    with pytest.raises(ValueError, match=r"tril_: the result has shape \(2, 3\), not the shape"):
        inplace(gf.zeros(3), "tril_", lambda t: t.expand(2, 3))


def test_zero_dim_input_and_empty_index(device):
    x = gf.tensor(1.5, dtype=gf.float64, device=device, requires_grad=True)
    out = x.scatter(0, gf.tensor(0), gf.tensor(4.0, dtype=gf.float64, device=device))
    assert out.shape == () and out.item() == 4.0
    assert gf.tensor(1.0, device=device).index_fill(0, gf.tensor([0]), 5).item() == 5.0
    one = gf.tensor(1.0, device=device).index_add(0, gf.tensor([0]), gf.tensor(2.0, device=device))
    assert one.shape == () and one.item() == 3.0
    empty = gf.tensor(X, device=device).scatter_add(
        0, gf.zeros(0, 4, dtype=gf.int64), gf.tensor(SRC)
    )
    numpy.testing.assert_array_equal(_host(empty), X)


@pytest.mark.gpu
def test_cuda_prod_reduces_on_the_host_and_returns_to_the_device():
    if not gf.cuda.is_available():
        pytest.skip("needs cuda (or the CuPy stand-in)")
    x = gf.tensor([[2.0, 3.0]], device="cuda")
    out = x.scatter_reduce(
        1, gf.tensor([[1, 1]], device="cuda"), gf.tensor([[4.0, 5.0]], device="cuda"), "prod"
    )
    assert out.device.type == "cuda" and out.tolist() == [[2.0, 60.0]]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_index_put_accumulate_by_rows_matches_the_general_route(monkeypatch, dtype):
    """index_put((rows,), values, accumulate=True) with whole rows takes index_add's node;
    repeated and negative rows, 3-D input: the values and gradients of the general route."""
    from gradflow.ops import scatter

    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((7, 3, 4)).astype(dtype)
    rows = numpy.array([2, -1, 2, 0, 6, -7, 2])
    v = rng.standard_normal((7, 3, 4)).astype(dtype)
    g = rng.standard_normal((7, 3, 4)).astype(dtype)

    def run():
        xt, vt = gf.tensor(x, requires_grad=True), gf.tensor(v, requires_grad=True)
        out = xt.index_put((gf.tensor(rows),), vt, accumulate=True)
        out.backward(gf.tensor(g))
        return out.detach().numpy(), xt.grad.numpy(), vt.grad.numpy(), out.grad_fn.name()

    fast = run()
    monkeypatch.setattr(scatter, "_leading_rows", lambda *a: None)
    general = run()
    assert fast[3] != general[3]  # the two routes ran
    for a, b in zip(fast[:3], general[:3], strict=True):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    expected = x.copy()
    numpy.add.at(expected, rows, v)
    numpy.testing.assert_allclose(fast[0], expected, rtol=1e-6)
    with pytest.raises(IndexError):
        gf.tensor(x).index_put((gf.tensor([7]),), gf.tensor(v[:1]), accumulate=True)
