"""The Tensor methods added in round 6 (gradflow/ops/tensor_extras.py and tensor.py): in-place
comparisons and logicals, cumsum_/cumprod_/addbmm_/addmv_/addr_, swapaxes_/swapdims_, the
small queries (is_signed, is_nonzero, data_ptr, storage_offset, ...), short/byte/char, new,
new_empty_strided, H/mH/adjoint, sum_to_size, split_with_sizes and the unsafe splits,
resize_/resize_as_, cholesky_solve/cholesky_inverse, apply_/map_, against torch and against
NumPy references."""

import numpy
import pytest

import gradflow as gf
from gradflow.autograd.gradcheck import gradcheck

A = numpy.array([[1.0, -2.0, 3.0], [0.0, 2.0, -1.5]], dtype=numpy.float32)
B = numpy.array([[1.0, 2.0, 3.0], [0.5, 2.0, 0.0]], dtype=numpy.float32)

COMPARISONS = {
    "eq_": numpy.equal,
    "ne_": numpy.not_equal,
    "not_equal_": numpy.not_equal,
    "lt_": numpy.less,
    "less_": numpy.less,
    "le_": numpy.less_equal,
    "less_equal_": numpy.less_equal,
    "gt_": numpy.greater,
    "greater_": numpy.greater,
    "ge_": numpy.greater_equal,
    "greater_equal_": numpy.greater_equal,
    "logical_and_": numpy.logical_and,
    "logical_or_": numpy.logical_or,
    "logical_xor_": numpy.logical_xor,
}


@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_inplace_comparisons_keep_the_dtype_and_write_ones_and_zeros(name, device):
    x = gf.tensor(A, device=device)
    before = x._version
    out = getattr(x, name)(gf.tensor(B, device=device))
    assert out is x and x.dtype == gf.float32 and x._version > before
    numpy.testing.assert_array_equal(x.cpu().numpy(), COMPARISONS[name](A, B).astype("float32"))
    # a scalar operand and an integer tensor (1/0 in int64)
    i = gf.tensor([1, 2, 3], device=device)
    getattr(i, name)(2)
    assert i.dtype == gf.int64
    numpy.testing.assert_array_equal(i.cpu().numpy(), COMPARISONS[name]([1, 2, 3], 2).astype(int))


@pytest.mark.parametrize("name", ["eq_", "lt_", "logical_and_", "ge_"])
def test_inplace_comparisons_match_torch(name):
    torch = pytest.importorskip("torch")
    x, t = gf.tensor(A), torch.tensor(A)
    getattr(x, name)(gf.tensor(B[1]))  # broadcast operand
    getattr(t, name)(torch.tensor(B[1]))
    numpy.testing.assert_array_equal(x.numpy(), t.numpy())
    b, tb = gf.tensor([True, False, True]), torch.tensor([True, False, True])
    getattr(b, name)(gf.tensor([1.0, 0.0, 0.0]))
    getattr(tb, name)(torch.tensor([1.0, 0.0, 0.0]))
    assert b.dtype == gf.bool and b.tolist() == tb.tolist()


def test_logical_not_and_nan_inputs():
    x = gf.tensor([0.0, 2.0, float("nan"), -1.0])
    x.logical_not_()
    assert x.tolist() == [1.0, 0.0, 0.0, 0.0] and x.dtype == gf.float32
    y = gf.tensor([float("nan"), 1.0])
    y.eq_(y.clone())
    assert y.tolist() == [0.0, 1.0]  # NaN != NaN
    z = gf.tensor([float("nan"), float("inf")])
    z.lt_(float("inf"))
    assert z.tolist() == [0.0, 0.0]


def test_inplace_rules_leaf_view_and_broadcast():
    w = gf.ones(3, requires_grad=True)
    for name in ("eq_", "logical_not_", "cumsum_"):
        args = () if name == "logical_not_" else (0,) if name == "cumsum_" else (1.0,)
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            getattr(w, name)(*args)
    with gf.no_grad():
        w.eq_(1.0)
    assert w.tolist() == [1.0, 1.0, 1.0]
    base = gf.zeros(2, 3)
    view = base[0]
    view.ge_(0)
    assert base.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    with pytest.raises(RuntimeError, match="single memory location"):
        gf.zeros(3).expand(2, 3).eq_(0)
    with pytest.raises(RuntimeError):  # the result can't be written into the smaller self
        gf.zeros(3).eq_(gf.zeros(2, 3))


def test_a_saved_tensor_changed_by_eq_is_caught():
    w = gf.ones(3, requires_grad=True)
    h = w * 2
    y = (h * h).sum()  # saves h
    h.eq_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation|in-place"):
        y.backward()


def test_cumsum_cumprod_inplace(device):
    x = gf.tensor(A, device=device)
    x.cumsum_(1)
    numpy.testing.assert_allclose(x.cpu().numpy(), numpy.cumsum(A, 1))
    y = gf.tensor(A, device=device)
    y.cumprod_(dim=0)
    numpy.testing.assert_allclose(y.cpu().numpy(), numpy.cumprod(A, 0))
    i = gf.tensor([1, 2, 3], dtype=gf.int32, device=device)
    i.cumsum_(0)
    assert i.dtype == gf.int32 and i.tolist() == [1, 3, 6]
    e = gf.zeros(0, device=device)
    assert e.cumsum_(0).shape == (0,)


def test_cumsum_inplace_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    x = gf.tensor(A, requires_grad=True)
    t = torch.tensor(A, requires_grad=True)
    h, th = x * 1.5, t * 1.5
    h.cumsum_(1)
    th.cumsum_(1)
    (h * gf.tensor(B)).sum().backward()
    (th * torch.tensor(B)).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)


def test_addbmm_addmv_addr_inplace_match_torch():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(0)
    m, b1, b2 = (rng.standard_normal(s).astype("float32") for s in ((3, 4), (2, 3, 5), (2, 5, 4)))
    v, u = rng.standard_normal(4).astype("float32"), rng.standard_normal(3).astype("float32")
    for name, args in (
        ("addbmm_", (b1, b2)),
        ("addmv_", (m, v)),
        ("addr_", (u, v)),
    ):
        base = rng.standard_normal((3,) if name == "addmv_" else (3, 4)).astype("float32")
        x, t = gf.tensor(base), torch.tensor(base)
        assert getattr(x, name)(*map(gf.tensor, args), beta=0.5, alpha=2.0) is x
        getattr(t, name)(*map(torch.tensor, args), beta=0.5, alpha=2.0)
        numpy.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-5, atol=1e-5)
    # recorded: gradients flow to the operands
    p = gf.tensor(u, requires_grad=True)
    tp = torch.tensor(u, requires_grad=True)
    x, t = gf.zeros(3, 4) + 0, torch.zeros(3, 4)
    x.addr_(p, gf.tensor(v))
    t.addr_(tp, torch.tensor(v))
    x.sum().backward()
    t.sum().backward()
    numpy.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5)


def test_swapaxes_swapdims_inplace():
    x = gf.arange(6.0).reshape(2, 3)
    assert x.swapaxes_(0, 1) is x and x.shape == (3, 2)
    assert x.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    x.swapdims_(1, 0)
    assert x.shape == (2, 3) and x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    with pytest.raises((IndexError, RuntimeError)):
        x.swapaxes_(0, 5)


def test_method_forms_of_functions_match_torch():
    torch = pytest.importorskip("torch")
    x, t = gf.tensor(A), torch.tensor(A)
    numpy.testing.assert_allclose(x.hardshrink(1.5).numpy(), t.hardshrink(1.5).numpy())
    numpy.testing.assert_allclose(x.hardshrink().numpy(), t.hardshrink().numpy())
    w = numpy.array([0.25], dtype="float32")
    numpy.testing.assert_allclose(
        x.prelu(gf.tensor(w)).numpy(), t.prelu(torch.tensor(w)).numpy(), rtol=1e-6
    )
    a, b = gf.tensor(A[0]), gf.tensor(B[0])
    assert a.vdot(b).item() == pytest.approx(torch.tensor(A[0]).vdot(torch.tensor(B[0])).item())


def test_queries_match_torch():
    torch = pytest.importorskip("torch")
    for dt, tdt in ((gf.float32, torch.float32), (gf.int64, torch.int64), (gf.uint8, torch.uint8),
                    (gf.bool, torch.bool), (gf.int8, torch.int8)):  # fmt: skip
        x, t = gf.ones(2, dtype=dt), torch.ones(2, dtype=tdt)
        assert x.is_signed() == t.is_signed()
        assert x.itemsize == t.itemsize and x.nbytes() == t.nbytes
    for v in ([0.0], [2], 3.5):
        assert gf.tensor(v).is_nonzero() == torch.tensor(v).is_nonzero()
    for v in ([], [1.0, 2.0]):
        with pytest.raises(RuntimeError, match="ambiguous"):
            gf.tensor(v).is_nonzero()
    x = gf.ones(2, 3)
    assert x.is_same_size(gf.zeros(2, 3)) and not x.is_same_size(gf.zeros(3, 2))
    assert not x.is_complex() and x.is_cpu and not x.is_inference()
    assert not x.is_neg() and not x.is_conj() and x.layout is gf.strided
    assert x.conj() is x and x.conj_physical() is x and x.real is x
    assert x.resolve_conj() is x and x.resolve_neg() is x and x.share_memory_() is x


def test_storage_queries():
    x = gf.arange(12.0).reshape(3, 4)
    assert x.storage_offset() == 0 and x.data_ptr() == x.array.ctypes.data
    row = x[1]
    assert row.storage_offset() == 4 and row.data_ptr() == x.data_ptr() + 4 * 4
    assert x[1:, 2:].storage_offset() == 6 and x.t().storage_offset() == 0
    assert x.is_set_to(x) and x.is_set_to(x[:]) and x.is_set_to(x.view(3, 4))
    assert not x.is_set_to(x.clone()) and not x.is_set_to(x.t()) and not x.is_set_to(x[1:])
    assert gf.zeros(0).data_ptr() == 0
    with pytest.raises(TypeError, match="must be Tensor"):
        x.is_set_to(numpy.zeros(3))


def test_short_byte_char(device):
    x = gf.tensor([-1.7, 2.2, 300.0], device=device)
    assert x.short().dtype == gf.int16 and x.short().tolist() == [-1, 2, 300]
    assert x.char().dtype == gf.int8 and x[:2].char().tolist() == [-1, 2]
    assert gf.tensor([1.0, 255.0], device=device).byte().dtype == gf.uint8


def test_new_follows_torch():
    torch = pytest.importorskip("torch")
    x, t = gf.ones(2, dtype=gf.float64), torch.ones(2, dtype=torch.float64)
    assert x.new().shape == tuple(t.new().shape) == (0,) and x.new().dtype == gf.float64
    assert x.new(2, 3).shape == (2, 3) and x.new(gf.Size([4])).shape == (4,)
    assert x.new([1, 2]).dtype == gf.float64 and x.new([1, 2]).tolist() == [1.0, 2.0]
    assert x.new((1, 2)).tolist() == t.new((1, 2)).tolist()
    src = gf.tensor([3.0, 4.0], dtype=gf.float64)
    alias = x.new(src)
    alias[0] = 9.0
    assert src.tolist() == [9.0, 4.0]  # shares the storage, as torch's
    with pytest.raises(TypeError, match="dtype"):
        x.new(gf.tensor([1, 2]))
    with pytest.raises(TypeError):
        t.new(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="non-negative"):
        x.new(-1)


def test_new_empty_strided():
    x = gf.ones(2, dtype=gf.float64)
    e = x.new_empty_strided((2, 3), (1, 2))
    assert e.shape == (2, 3) and e.stride() == (1, 2) and e.dtype == gf.float64
    e.fill_(1.0)
    assert e.sum().item() == 6.0
    f = x.new_empty_strided((2, 2), (2, 1), dtype=gf.int32, requires_grad=False)
    assert f.dtype == gf.int32 and f.is_contiguous()
    assert x.new_empty_strided((0, 3), (3, 1)).shape == (0, 3)
    g = x.new_empty_strided((2,), (1,), requires_grad=True)
    assert g.requires_grad and g.is_leaf
    with pytest.raises(RuntimeError, match="differ in length"):
        x.new_empty_strided((2, 3), (1,))


def test_H_mH_adjoint():
    torch = pytest.importorskip("torch")
    m, tm = gf.tensor(A), torch.tensor(A)
    numpy.testing.assert_array_equal(m.H.numpy(), tm.H.numpy())
    b = gf.tensor(numpy.arange(24.0).reshape(2, 3, 4))
    tb = torch.tensor(numpy.arange(24.0).reshape(2, 3, 4))
    numpy.testing.assert_array_equal(b.mH.numpy(), tb.mH.numpy())
    numpy.testing.assert_array_equal(b.adjoint().numpy(), tb.adjoint().numpy())
    assert gf.tensor(2.0).H.item() == 2.0
    with pytest.raises(RuntimeError, match="only supported on matrices \\(2-D"):
        _ = gf.ones(3).H
    with pytest.raises(RuntimeError, match="consider using tensor.mH"):
        _ = b.H
    with pytest.raises(RuntimeError, match="matrices or batches of matrices"):
        _ = gf.ones(3).mH
    with pytest.raises(RuntimeError, match="adjoint"):
        gf.ones(3).adjoint()
    w = gf.tensor(A, requires_grad=True)
    (w.mH * gf.tensor(B.T)).sum().backward()
    numpy.testing.assert_array_equal(w.grad.numpy(), B)


def test_sum_to_size(device):
    w = gf.tensor(numpy.arange(24.0).reshape(2, 3, 4), device=device, requires_grad=True)
    x = w.detach()
    ref = numpy.arange(24.0).reshape(2, 3, 4)
    numpy.testing.assert_array_equal(x.sum_to_size(3, 1).cpu().numpy(), ref.sum((0, 2))[:, None])
    numpy.testing.assert_array_equal(
        x.sum_to_size((1, 3, 4)).cpu().numpy(), ref.sum(0, keepdims=True)
    )
    numpy.testing.assert_array_equal(x.sum_to_size(4).cpu().numpy(), ref.sum((0, 1)))
    assert x.sum_to_size(2, 3, 4) is x
    w.sum_to_size(1, 3, 1).sum().backward()
    assert (w.grad.cpu().numpy() == 1).all()
    with pytest.raises(RuntimeError, match="not expandable"):
        x.sum_to_size(5)
    with pytest.raises(RuntimeError, match="not expandable"):
        x.sum_to_size(1, 2, 3, 4, 5)


def test_sum_to_size_matches_torch():
    torch = pytest.importorskip("torch")
    a = numpy.random.default_rng(0).standard_normal((2, 3)).astype("float32")
    for size in ((1, 3), (3,), (2, 1), (1, 1)):
        numpy.testing.assert_allclose(
            gf.tensor(a).sum_to_size(*size).numpy(), torch.tensor(a).sum_to_size(*size).numpy()
        )


def test_split_with_sizes_and_unsafe_splits():
    torch = pytest.importorskip("torch")
    x, t = gf.arange(10.0).reshape(5, 2), torch.arange(10.0).reshape(5, 2)
    for ours, theirs in (
        (x.split_with_sizes([2, 3]), t.split_with_sizes([2, 3])),
        (x.split_with_sizes([1, 1], dim=1), t.split_with_sizes([1, 1], dim=1)),
        (x.unsafe_split(2), t.unsafe_split(2)),
        (x.unsafe_chunk(2), t.unsafe_chunk(2)),
        (x.unsafe_split_with_sizes([4, 1]), t.unsafe_split_with_sizes([4, 1])),
        (x.split_with_sizes([0, 5]), t.split_with_sizes([0, 5])),
    ):
        assert [o.tolist() for o in ours] == [p.tolist() for p in theirs]
    with pytest.raises(RuntimeError, match="sum exactly to 5"):
        x.split_with_sizes([2, 2])
    with pytest.raises(RuntimeError, match="sum exactly"):
        x.split_with_sizes([6, -1])
    w = gf.arange(5.0, requires_grad=True)
    a, b = w.split_with_sizes([2, 3])
    (a.sum() * 2 + b.sum()).backward()
    assert w.grad.tolist() == [2.0, 2.0, 1.0, 1.0, 1.0]


def test_resize_follows_torch():
    torch = pytest.importorskip("torch")
    for make, sizes in (
        (lambda m: m.arange(6.0), (2, 2)),
        (lambda m: m.arange(6.0), (3, 3)),
        (lambda m: m.arange(6.0), (2, 3)),
        (lambda m: m.arange(6.0)[::2], (2,)),
        (lambda m: m.arange(6.0).reshape(2, 3).t(), (6,)),
        (lambda m: m.arange(6.0)[2:], (2, 2)),
        (lambda m: m.arange(6.0), (0,)),
    ):
        x, t = make(gf), make(torch)
        assert x.resize_(*sizes) is x
        t.resize_(*sizes)
        assert x.shape == tuple(t.shape) and x.is_contiguous()
        n = min(6, x.numel())  # the grown part is uninitialized in torch
        numpy.testing.assert_array_equal(x.numpy().ravel()[:n], t.numpy().ravel()[:n])
    x = gf.arange(6.0)
    view = x.view(2, 3)
    x.resize_(2, 2)
    x[0, 0] = 7.0
    assert view[0, 0].item() == 7.0  # shrinking keeps the storage
    assert gf.ones(3).resize_as_(gf.zeros(2, 2)).shape == (2, 2)
    assert gf.ones(3).resize_([1, 3]).shape == (1, 3)


def test_resize_errors():
    w = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
        w.resize_(3)
    with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
        (w * 2).resize_(2)
    with gf.no_grad(), pytest.raises(RuntimeError, match="require grad"):
        w.resize_(4)
    with pytest.raises(RuntimeError, match="non-negative"):
        gf.ones(3).resize_(-1)
    with pytest.raises(TypeError, match="ints"):
        gf.ones(3).resize_(2.5)
    with pytest.raises(TypeError, match="must be Tensor"):
        gf.ones(3).resize_as_((2, 2))


def _spd(rng, batch, n):
    a = rng.standard_normal((*batch, n, n))
    return a @ numpy.swapaxes(a, -1, -2) + n * numpy.eye(n)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_and_inverse_match_torch(upper):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(0)
    A_ = _spd(rng, (2,), 3)
    L = numpy.linalg.cholesky(A_)
    F = numpy.swapaxes(L, -1, -2) if upper else L
    rhs = rng.standard_normal((2, 3, 2))
    gfac, tfac = gf.tensor(F, requires_grad=True), torch.tensor(F, requires_grad=True)
    grhs, trhs = gf.tensor(rhs, requires_grad=True), torch.tensor(rhs, requires_grad=True)
    x = grhs.cholesky_solve(gfac, upper)
    tx = trhs.cholesky_solve(tfac, upper)
    numpy.testing.assert_allclose(x.detach().numpy(), tx.detach().numpy(), rtol=1e-10)
    numpy.testing.assert_allclose(x.detach().numpy(), numpy.linalg.solve(A_, rhs), rtol=1e-10)
    w = rng.standard_normal(x.shape)
    (x * gf.tensor(w)).sum().backward()
    (tx * torch.tensor(w)).sum().backward()
    numpy.testing.assert_allclose(gfac.grad.numpy(), tfac.grad.numpy(), rtol=1e-9, atol=1e-12)
    numpy.testing.assert_allclose(grhs.grad.numpy(), trhs.grad.numpy(), rtol=1e-9, atol=1e-12)
    gfac.grad = None
    tfac.grad = None
    inv = gf.cholesky_inverse(gfac, upper)
    tinv = torch.cholesky_inverse(tfac, upper)
    numpy.testing.assert_allclose(inv.detach().numpy(), numpy.linalg.inv(A_), rtol=1e-10)
    numpy.testing.assert_allclose(inv.detach().numpy(), tinv.detach().numpy(), rtol=1e-10)
    w = rng.standard_normal(inv.shape)
    (inv * gf.tensor(w)).sum().backward()
    (tinv * torch.tensor(w)).sum().backward()
    numpy.testing.assert_allclose(gfac.grad.numpy(), tfac.grad.numpy(), rtol=1e-9, atol=1e-12)
    # the no-grad route (two triangular solves) gives the same values
    with gf.no_grad():
        numpy.testing.assert_allclose(
            gf.cholesky_solve(grhs, gfac, upper).numpy(), tx.detach().numpy(), rtol=1e-10
        )


def test_cholesky_solve_gradcheck_and_broadcast():
    rng = numpy.random.default_rng(1)
    L = numpy.linalg.cholesky(_spd(rng, (), 3))
    rhs = rng.standard_normal((2, 3, 1))
    args = [gf.tensor(rhs, requires_grad=True), gf.tensor(L, requires_grad=True)]
    # the forward reads the factor's triangle, the gradient is every entry's (as torch's):
    # finite differences agree on the triangle
    assert gradcheck(lambda b, f: gf.cholesky_solve(b, f.tril()), args)
    assert gradcheck(lambda f: f.tril().cholesky_inverse(), [args[1]])
    assert gradcheck(
        lambda f: f.triu().cholesky_inverse(upper=True),
        [args[1].mT.detach().contiguous().requires_grad_()],
    )
    # an upper triangle holding other values is not read
    noisy = gf.tensor(L + numpy.triu(numpy.ones((3, 3)), 1), requires_grad=True)
    numpy.testing.assert_allclose(
        gf.cholesky_solve(gf.tensor(rhs), noisy).detach().numpy(),
        gf.cholesky_solve(gf.tensor(rhs), gf.tensor(L)).numpy(),
        rtol=1e-10,
    )
    assert gf.cholesky_solve(gf.tensor(rhs), gf.tensor(L)).shape == (2, 3, 1)


def test_cholesky_solve_errors():
    L = gf.eye(3)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        gf.cholesky_solve(gf.ones(3), L)
    with pytest.raises(RuntimeError, match="same dtype"):
        gf.cholesky_solve(gf.ones(3, 1, dtype=gf.float64), L)
    with pytest.raises(RuntimeError, match="square"):
        gf.cholesky_solve(gf.ones(2, 1), L)
    with pytest.raises(TypeError, match="must be Tensor"):
        gf.cholesky_solve([[1.0]], L)
    with pytest.raises(RuntimeError, match="square matrix"):
        gf.ones(2, 3).cholesky_inverse()


def test_apply_and_map():
    torch = pytest.importorskip("torch")
    x, t = gf.arange(4.0), torch.arange(4.0)
    assert x.apply_(lambda v: v * v + 1) is x
    t.apply_(lambda v: v * v + 1)
    assert x.tolist() == t.tolist()
    before = x._version
    x.map_(gf.tensor([1.0]), lambda a, b: a - b)
    t.map_(torch.tensor([1.0]), lambda a, b: a - b)
    assert x.tolist() == t.tolist() and x._version > before
    nc = gf.arange(6.0).reshape(2, 3).t()
    nc.apply_(lambda v: -v)
    assert nc.tolist() == [[-0.0, -3.0], [-1.0, -4.0], [-2.0, -5.0]]
    with pytest.raises(RuntimeError, match="requires grad"):
        gf.ones(2, requires_grad=True).apply_(lambda v: v)
    with pytest.raises(RuntimeError, match="can't be broadcast"):
        gf.ones(3).map_(gf.ones(2), lambda a, b: a)
    with pytest.raises(TypeError, match="must be Tensor"):
        gf.ones(3).map_([1.0], lambda a, b: a)


@pytest.mark.gpu
def test_apply_refuses_a_gpu_tensor(device):
    if device == "cpu":
        pytest.skip("the refusal is for CUDA tensors")
    with pytest.raises(TypeError, match="CPU"):
        gf.ones(2, device=device).apply_(lambda v: v)
