"""Indexing: getitem (basic, advanced, masks, combinations) against NumPy with gradcheck,
accumulation of repeated indices, gather/take_along_axis/index_select/masked_select, one_hot,
bounds and dtype errors, __setitem__ through normalize_index, PyTorch parity."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops import indexing as I
from gradflow.testing import gradcheck


def _t(a, device, requires_grad=True):
    a = numpy.asarray(a, dtype=numpy.float64)
    return gf.tensor(a, device=device, requires_grad=requires_grad)


def _host(t):
    return t.detach().cpu().numpy()


A = numpy.random.default_rng(7).standard_normal((4, 5, 6))
MASK = A[..., 0] > 0  # (4, 5)

# (id, index built from a device) -> the same index in NumPy terms is built from plain values
INDEXES = {
    "int": lambda dev: 1,
    "negative_int": lambda dev: (-1, 2),
    "slices": lambda dev: (slice(1, 3), slice(None, None, 2)),
    "negative_step": lambda dev: (slice(None, None, -2), slice(4, 0, -1)),
    "none_ellipsis": lambda dev: (None, Ellipsis, 2, None),
    "list": lambda dev: [0, 2, 2, -1],
    "int_tensor": lambda dev: gf.tensor([[3, 0], [0, 3]], device=dev),
    "int32_tensor": lambda dev: gf.tensor([1, 1, 2], dtype=gf.int32, device=dev),
    "two_arrays": lambda dev: ([0, 0, 3], slice(None), [5, 5, -6]),
    "array_slice_array": lambda dev: (gf.tensor([1, 1], device=dev), slice(1, 4), [0, 0]),
    "mask": lambda dev: gf.tensor(MASK, device=dev),
    "mask_last": lambda dev: (Ellipsis, gf.tensor(A[0, 0] > 0, device=dev)),
    "mask_and_int": lambda dev: (1, gf.tensor(A[0, :, 0] > 0, device=dev)),
    "mixed": lambda dev: (slice(None), None, [4, 0, 4], -1),
    "empty_list": lambda dev: [],
    "zero_d_tensor": lambda dev: gf.tensor(2, device=dev),
}


def _numpy_index(index):
    def plain(i):
        if isinstance(i, gf.Tensor):
            return i.cpu().numpy()
        if isinstance(i, list):
            return numpy.asarray(i, dtype=numpy.int64)
        return i

    return tuple(plain(i) for i in index) if isinstance(index, tuple) else plain(index)


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_getitem_values_and_gradcheck(name, device):
    index = INDEXES[name](device)
    x = _t(A, device)
    out = x[index]
    expected = A[_numpy_index(index)]
    assert out.shape == expected.shape
    numpy.testing.assert_array_equal(_host(out), expected)
    if out.array.size:
        assert gradcheck(lambda t: t[index], [x], full_jacobian=False)


@pytest.mark.parametrize("name", ["slices", "list", "two_arrays", "mask_last"])
def test_getitem_of_non_contiguous_input(name, device):
    index = INDEXES[name](device)
    base = _t(numpy.ascontiguousarray(A.transpose(2, 1, 0)), device)  # (6, 5, 4)

    def op(t):
        return t.transpose(0, 2)[index]  # a (4, 5, 6) non-contiguous view

    numpy.testing.assert_array_equal(_host(op(base)), A[_numpy_index(index)])
    assert gradcheck(op, [base], full_jacobian=False)


def test_repeated_indices_accumulate_gradient(device):
    x = _t([1.0, 2.0, 3.0], device)
    x[[0, 0, 2, 0, -1]].sum().backward()
    numpy.testing.assert_array_equal(_host(x.grad), [3, 0, 2])


def test_repeated_rows_accumulate_gradient(device, rng):
    # one integer array on dim 0 of a 2-D tensor: the embedding-lookup case
    w = _t(rng.standard_normal((6, 3)), device)
    rows = gf.tensor([5, 1, 1, 5, 5, 0], device=device)
    g = rng.standard_normal((6, 3))
    w[rows].backward(gf.tensor(g, device=device))
    expected = numpy.zeros((6, 3))
    numpy.add.at(expected, rows.cpu().numpy(), g)
    numpy.testing.assert_allclose(_host(w.grad), expected, rtol=1e-14)
    assert gradcheck(lambda t: t[rows], [w], full_jacobian=True)


def test_basic_index_is_a_view():
    x = _t(A, "cpu", requires_grad=False)
    assert numpy.shares_memory(x[1:3, ::2].array, x.array)
    assert not numpy.shares_memory(x[[1, 2]].array, x.array)


# ---- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "index, message",
    [
        (4, r"index 4 is out of bounds for dim 0 with size 4"),
        ((0, -6), r"index -6 is out of bounds for dim 1 with size 5"),
        ((Ellipsis, 6), r"index 6 is out of bounds for dim 2 with size 6"),
        ([0, 4], r"index 4 is out of bounds for dim 0 with size 4"),
        ((slice(None), [1, -9]), r"index -9 is out of bounds for dim 1 with size 5"),
        ((None, 0, 0, [7]), r"index 7 is out of bounds for dim 2 with size 6"),
        ((0, 0, 0, 0), r"too many indices for a tensor of dimension 3: the index uses 4 dims"),
        ((Ellipsis, 0, Ellipsis), r"an index can only have a single ellipsis"),
        (
            numpy.ones((5, 4), bool),
            r"the mask of shape \(5, 4\) doesn't match .* \(4, 5\) at dim 0",
        ),
    ],
)
def test_getitem_out_of_bounds_names_index_dim_and_size(index, message, device):
    x = _t(A, device)
    with pytest.raises(IndexError, match=message):
        x[index]


def test_tensor_index_out_of_bounds(device):
    x = _t(A, device)
    with pytest.raises(IndexError, match=r"index 5 is out of bounds for dim 1 with size 5"):
        x[:, gf.tensor([[0, 5]], device=device)]


def test_float_index_is_a_type_error(device):
    x = _t(A, device)
    with pytest.raises(
        TypeError, match=r"index tensors must be integer \(int64/int32\) or bool, got float32"
    ):
        x[gf.tensor([0.0, 1.0], device=device)]
    with pytest.raises(TypeError, match=r"must be integer .* or bool, got float64"):
        x[[0.5]]
    with pytest.raises(TypeError, match=r"indices must be ints, slices, .* got float"):
        x[1.0]
    with pytest.raises(TypeError, match=r"indices must be .* got str"):
        x["a"]


# ---- __setitem__ -----------------------------------------------------------------------
def test_setitem_converts_tensors_in_lists_and_checks_bounds(device):
    x = gf.zeros((3, 4), dtype=gf.float64, device=device)
    x[[gf.tensor(0), gf.tensor(2)], 1] = 5.0
    x[gf.tensor([True, False, False], device=device), -1] = 2.0
    expected = numpy.zeros((3, 4))
    expected[[0, 2], 1] = 5.0
    expected[0, -1] = 2.0
    numpy.testing.assert_array_equal(x.cpu().numpy(), expected)
    with pytest.raises(IndexError, match=r"index 3 is out of bounds for dim 0 with size 3"):
        x[[0, 3]] = 1.0
    with pytest.raises(TypeError, match=r"got float64"):
        x[gf.tensor([1.0], dtype=gf.float64, device=device)] = 1.0


def test_normalize_index_makes_negative_arrays_non_negative():
    x = gf.zeros((3, 4))
    (rows, cols) = I.normalize_index(([-1, 0], gf.tensor([-4, 3])), x)
    assert rows.tolist() == [2, 0] and cols.tolist() == [0, 3]
    assert I.normalize_index(1, x) == (1,)


# ---- gather / take_along_axis / index_select / masked_select ---------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(dim, device, rng):
    x = _t(A, device)
    shape = list(A.shape)
    shape[dim] = 7  # more picks than the dim holds: repeats are certain
    shape[(dim + 1) % 3] -= 1  # smaller than x outside dim (PyTorch allows it)
    index = rng.integers(-A.shape[dim], A.shape[dim], shape)
    out = I.gather(x, dim, gf.tensor(index, device=device))
    corner = tuple(slice(None) if d == dim % 3 else slice(0, n) for d, n in enumerate(shape))
    expected = numpy.take_along_axis(A[corner], index % A.shape[dim], axis=dim)
    numpy.testing.assert_array_equal(_host(out), expected)
    assert gradcheck(lambda t: I.gather(t, dim, gf.tensor(index, device=device)), [x])


def test_gather_matches_torch(rng):
    torch = pytest.importorskip("torch")
    index = rng.integers(0, 5, (3, 8, 6))
    x, tx = _t(A, "cpu"), torch.tensor(A, requires_grad=True)
    out = x.gather(1, gf.tensor(index))
    tout = tx.gather(1, torch.tensor(index))
    numpy.testing.assert_array_equal(_host(out), tout.detach().numpy())
    out.sum().backward()
    tout.sum().backward()
    numpy.testing.assert_allclose(_host(x.grad), tx.grad.numpy())


def test_take_along_axis_broadcasts_like_numpy(device, rng):
    x = _t(A, device)
    index = rng.integers(0, 6, (1, 5, 3))
    out = I.take_along_axis(x, gf.tensor(index, device=device), 2)
    numpy.testing.assert_array_equal(_host(out), numpy.take_along_axis(A, index, 2))
    assert gradcheck(lambda t: I.take_along_axis(t, gf.tensor(index, device=device), 2), [x])
    flat = I.take_along_axis(x, gf.tensor([7, 7, 0], device=device), None)
    numpy.testing.assert_array_equal(_host(flat), A.reshape(-1)[[7, 7, 0]])


def test_take_along_axis_where_x_broadcasts(device, rng):
    x = _t(A[:1], device)  # (1, 5, 6) against indices (4, 5, 2)
    index = rng.integers(0, 6, (4, 5, 2))
    out = I.take_along_axis(x, gf.tensor(index, device=device), -1)
    numpy.testing.assert_array_equal(_host(out), numpy.take_along_axis(A[:1], index, -1))
    assert gradcheck(lambda t: I.take_along_axis(t, gf.tensor(index, device=device), -1), [x])


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_index_select(dim, device):
    x = _t(A, device)
    index = gf.tensor([3, 0, 3, -1], device=device)
    out = I.index_select(x, dim, index)
    numpy.testing.assert_array_equal(_host(out), numpy.take(A, [3, 0, 3, -1], axis=dim))
    assert gradcheck(lambda t: I.index_select(t, dim, index), [x])
    assert x.index_select(dim, gf.tensor(1, device=device)).shape[dim] == 1


def test_masked_select_broadcasts_the_mask(device):
    x = _t(A, device)
    mask = gf.tensor(A[0] > 0, device=device)  # (5, 6) against (4, 5, 6)
    out = I.masked_select(x, mask)
    numpy.testing.assert_array_equal(_host(out), A[numpy.broadcast_to(A[0] > 0, A.shape)])
    assert gradcheck(lambda t: I.masked_select(t, mask), [x])


def test_gather_family_errors(device):
    x = _t(A, device)
    with pytest.raises(IndexError, match=r"index 5 is out of bounds for dim 1 with size 5"):
        I.gather(x, 1, gf.tensor([[[5]]], device=device))
    with pytest.raises(ValueError, match=r"gather: index of shape \(2,\) must have the 3 dims"):
        I.gather(x, 0, gf.tensor([0, 1], device=device))
    with pytest.raises(ValueError, match=r"gather: index of shape \(1, 6, 1\) .* outside dim 0"):
        I.gather(x, 0, gf.zeros((1, 6, 1), dtype=gf.int64, device=device))
    with pytest.raises(TypeError, match=r"gather: index must be an integer tensor .*got bool"):
        I.gather(x, 0, gf.tensor([[[True]]], device=device))
    with pytest.raises(TypeError, match=r"index tensors must be integer .* got float32"):
        I.gather(x, 0, gf.zeros((1, 1, 1), device=device))
    with pytest.raises(IndexError, match=r"gather: dim 3 is out of range"):
        I.gather(x, 3, gf.tensor([[[0]]], device=device))
    with pytest.raises(ValueError, match=r"index_select: index must be 1-D"):
        I.index_select(x, 0, gf.tensor([[0]], device=device))
    with pytest.raises(IndexError, match=r"index 6 is out of bounds for dim 2 with size 6"):
        I.index_select(x, 2, gf.tensor([6], device=device))
    with pytest.raises(ValueError, match=r"take_along_axis: shapes \(4, 5, 6\) and \(3, 5, 1\)"):
        I.take_along_axis(x, gf.zeros((3, 5, 1), dtype=gf.int64, device=device), 2)
    with pytest.raises(ValueError, match=r"take_along_axis: indices of shape \(2,\) must have"):
        I.take_along_axis(x, gf.tensor([0, 1], device=device), 0)
    with pytest.raises(TypeError, match=r"masked_select: mask must be a bool tensor"):
        I.masked_select(x, gf.tensor([1, 0], device=device))
    with pytest.raises(ValueError, match=r"masked_select: mask of shape \(2,\) doesn't broadcast"):
        I.masked_select(x, gf.tensor([True, False], device=device))


# ---- one_hot ---------------------------------------------------------------------------
def test_one_hot(device):
    out = I.one_hot(gf.tensor([[0, 2], [1, 2]], device=device))
    assert out.shape == (2, 2, 3) and out.dtype == numpy.int64
    numpy.testing.assert_array_equal(_host(out)[0], [[1, 0, 0], [0, 0, 1]])
    assert I.one_hot(gf.tensor([1], device=device), 4).shape == (1, 4)


def test_one_hot_errors():
    with pytest.raises(
        TypeError,
        match=r"one_hot: argument 'tensor' has dtype float32; expected "
        r"integer indices",
    ):
        I.one_hot(gf.tensor([0.0]))
    with pytest.raises(IndexError, match=r"class values must be in \[0, 2\), got min 0 and max 2"):
        I.one_hot(gf.tensor([0, 2]), 2)


# ---- PyTorch parity --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["negative_int", "list", "two_arrays", "mask", "mixed"])
def test_getitem_torch_parity(name, rng):
    torch = pytest.importorskip("torch")
    index = INDEXES[name]("cpu")
    x, tx = _t(A, "cpu"), torch.tensor(A, requires_grad=True)

    def torch_index(i):
        if isinstance(i, gf.Tensor):
            return torch.from_numpy(i.numpy())
        return torch.tensor(i) if isinstance(i, list) else i

    tindex = tuple(map(torch_index, index)) if isinstance(index, tuple) else torch_index(index)
    out, tout = x[index], tx[tindex]
    numpy.testing.assert_array_equal(_host(out), tout.detach().numpy())
    g = rng.standard_normal(tout.shape)
    out.backward(gf.tensor(g))
    tout.backward(torch.tensor(g))
    numpy.testing.assert_allclose(_host(x.grad), tx.grad.numpy(), rtol=1e-14)


@pytest.mark.parametrize(
    "shape,args",
    [
        ((5,), (0, 2, 1)),
        ((2, 3, 4), (1, 2, 1)),
        ((2, 3, 4), (-1, 3, 2)),
        ((7,), (0, 3, 3)),
        ((5,), (0, 0, 1)),
        ((), (0, 1, 1)),
    ],
)
def test_tensor_unfold_matches_torch(shape, args, device):
    """Tensor.unfold (sliding windows, e.g. for time series), values and gradients: the
    overlapping windows' gradients add up."""
    torch = pytest.importorskip("torch")
    data = numpy.random.default_rng(0).random(shape)
    x = gf.tensor(data, device=device, requires_grad=True)
    tx = torch.tensor(data, requires_grad=True)
    y, ty = x.unfold(*args), tx.unfold(*args)
    assert y.shape == tuple(ty.shape)
    numpy.testing.assert_allclose(numpy.asarray(y.detach().cpu().tolist()), ty.detach().numpy())
    weights = numpy.random.default_rng(1).random(tuple(ty.shape))
    (y * gf.tensor(weights, device=device)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    numpy.testing.assert_allclose(numpy.asarray(x.grad.cpu().tolist()), tx.grad.numpy())
    if data.size:
        assert gradcheck(
            lambda t: t.unfold(*args), [gf.tensor(data, device=device, requires_grad=True)]
        )


def test_tensor_unfold_errors():
    with pytest.raises(
        RuntimeError, match="maximum size for tensor at dimension 0 is 5 but size is 6"
    ):
        gf.arange(5.0).unfold(0, 6, 1)
    with pytest.raises(RuntimeError, match="step is 0 but must be > 0"):
        gf.arange(5.0).unfold(0, 2, 0)


def test_add_rows_compiled_loop_has_add_at_bits():
    """_add_rows through numba's add_rows: numpy.add.at's bits on repeated rows (index order),
    for strided values; negative rows take numpy.add.at, which wraps them."""
    from gradflow.backend import compiled
    from gradflow.ops.indexing import _add_rows

    rng = numpy.random.default_rng(11)
    for dtype, width in [(numpy.float32, 64), (numpy.float64, 5)]:
        rows = rng.integers(0, 40, 500)
        values = rng.standard_normal((width, 500)).astype(dtype).T  # strided values
        ours, expected = numpy.zeros((40, width), dtype), numpy.zeros((40, width), dtype)
        _add_rows(ours, rows, values)
        numpy.add.at(expected, rows, values)
        assert numpy.array_equal(ours, expected)
        with compiled.disabled():
            plain = numpy.zeros((40, width), dtype)
            _add_rows(plain, rows, values)
        assert numpy.array_equal(plain, expected)
    wrapped, expected = numpy.zeros((4, 3)), numpy.zeros((4, 3))
    _add_rows(wrapped, numpy.array([-1, 0, -1]), numpy.ones((3, 3)))
    numpy.add.at(expected, numpy.array([-1, 0, -1]), numpy.ones((3, 3)))
    assert numpy.array_equal(wrapped, expected)
