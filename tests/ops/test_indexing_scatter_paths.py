"""The cpu fast paths of integer indexing (issue 17): numpy.take for whole rows (x[idx],
x[i, j], index_select), flat positions for gather, and the one scatter-add (``_add_rows``,
``_add_at``) behind their gradients and embedding's. Values and gradients must be the bits of
NumPy's indexing and numpy.add.at in the output's dtype (float32 stays float32, repeats summed
in index order)."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops import indexing as I


def _add_at_reference(shape, index, g):
    out = numpy.zeros(shape, g.dtype)
    numpy.add.at(out, index, g)
    return out


@pytest.mark.parametrize("width", [1, 3, 16, 32, 33, 64, 700])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64, numpy.int64])
@pytest.mark.parametrize("index_dtype", [numpy.int64, numpy.int32, numpy.uint8])
def test_add_rows_is_add_at_bit_for_bit(width, dtype, index_dtype, rng):
    rows = rng.integers(0, 7, 1000).astype(index_dtype)  # many repeats of 7 rows
    values = (rng.standard_normal((1000, width)) * 1e3).astype(dtype)
    out = numpy.zeros((7, width), dtype)
    I._add_rows(out, rows, values)
    assert out.dtype == dtype
    numpy.testing.assert_array_equal(out, _add_at_reference((7, width), rows, values))


def test_add_rows_with_no_rows_and_strided_values(rng):
    out = numpy.zeros((4, 40), numpy.float32)
    I._add_rows(out, numpy.zeros(0, numpy.int64), numpy.zeros((0, 40), numpy.float32))
    assert not out.any()
    values = rng.standard_normal((40, 300)).astype(numpy.float32).T  # (300, 40), F-ordered
    rows = rng.integers(0, 4, 300)
    I._add_rows(out, rows, values)
    numpy.testing.assert_array_equal(out, _add_at_reference((4, 40), rows, values))
    narrow = numpy.zeros((4, 3), numpy.float32)
    ones = numpy.broadcast_to(numpy.float32(1), (300, 3))  # stride-0 (a sum's gradient)
    I._add_rows(narrow, rows, ones)
    numpy.testing.assert_array_equal(narrow, _add_at_reference((4, 3), rows, ones))


def test_add_at_flat(rng):
    positions = rng.integers(0, 50, 5000)
    values = rng.standard_normal(5000).astype(numpy.float32)
    out = numpy.zeros(50, numpy.float32)
    I._add_at(out, positions, values)
    numpy.testing.assert_array_equal(out, _add_at_reference(50, positions, values))


X = numpy.random.default_rng(3).standard_normal((5, 4, 3)).astype(numpy.float32)

INDEXES = {
    "rows": lambda: numpy.array([4, 0, 0, 2, 4, 4]),
    "rows_2d": lambda: numpy.array([[1, 1], [3, 0]]),
    "rows_int32": lambda: numpy.array([1, 1, 2], numpy.int32),
    "rows_uint8": lambda: numpy.array([3, 1, 3], numpy.uint8),
    "rows_trailing_slices": lambda: (numpy.array([2, 2, 0]), slice(None), slice(None)),
    "two": lambda: (numpy.array([4, 0, 4, 4]), numpy.array([3, 0, 3, 3])),
    "two_broadcast": lambda: (numpy.array([[4], [1]]), numpy.array([0, 3, 3])),
    "two_uint": lambda: (numpy.array([4, 4], numpy.uint16), numpy.array([1, 1], numpy.uint64)),
    "three": lambda: (numpy.array([1, 1, 0]), numpy.array([2, 2, 0]), numpy.array([1, 1, 2])),
    "two_then_slice": lambda: (numpy.array([0, 0]), numpy.array([1, 1]), slice(None)),
    "dim1": lambda: (slice(None), numpy.array([3, 3, 0, 1])),
    "dim2": lambda: (slice(None), slice(None), numpy.array([[2, 2], [0, 2]])),
    "empty": lambda: numpy.zeros(0, numpy.int64),
    # not row reads (the general path), for comparison
    "array_slice_array": lambda: (numpy.array([1, 1]), slice(1, 3), numpy.array([0, 0])),
    "int_and_array": lambda: (2, numpy.array([1, 1, 3])),
    "mask": lambda: X[:, :, 0] > 0,
}


@pytest.mark.parametrize("name", sorted(INDEXES))
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_getitem_values_and_gradient_are_numpy_bits(name, layout, rng):
    index = INDEXES[name]()
    base = X if layout == "contiguous" else numpy.ascontiguousarray(X.transpose(2, 1, 0))
    x = gf.tensor(base, requires_grad=True)
    view = x if layout == "contiguous" else x.permute(2, 1, 0)
    out = view[tuple(gf.tensor(i) if isinstance(i, numpy.ndarray) else i for i in index)
               if isinstance(index, tuple) else gf.tensor(index)]  # fmt: skip
    expected = X[index]
    assert out.dtype == gf.float32 and out.shape == expected.shape
    numpy.testing.assert_array_equal(out.detach().numpy(), expected)
    g = rng.standard_normal(expected.shape).astype(numpy.float32)
    out.backward(gf.tensor(g))
    grad = x.grad.numpy() if layout == "contiguous" else x.grad.numpy().transpose(2, 1, 0)
    assert x.grad.dtype == gf.float32
    numpy.testing.assert_array_equal(grad, _add_at_reference(X.shape, index, g))


def test_take_plan_declines_other_indexes():
    a = numpy.array([0, 1])
    for index in [(a, slice(1, 2)), (a, slice(None), a), (slice(0, 2), a), (None, a), (1, a)]:
        assert I._take_plan(index, (3, 3, 3)) is None
    assert I._take_plan((a, numpy.array([[0], [1], [2]]), numpy.array([0, 1])), (3, 3, 3))[1] == 3
    assert I._take_plan((a, numpy.array([0, 1, 2])), (3, 3)) is None  # don't broadcast


def test_two_arrays_that_do_not_broadcast_raise_index_error():
    x = gf.tensor(X)
    with pytest.raises(IndexError, match="shape mismatch"):
        x[gf.tensor([0, 1]), gf.tensor([0, 1, 2])]


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
@pytest.mark.parametrize("corner", [False, True])
def test_gather_values_and_gradient_are_numpy_bits(dim, corner, rng):
    d = dim % 3
    shape = list(X.shape)
    if corner:  # PyTorch lets the index be smaller than the input outside dim
        shape = [n if k == d else max(1, n - 1) for k, n in enumerate(shape)]
    shape[d] = 7
    index = rng.integers(0, X.shape[d], shape)
    x = gf.tensor(X, requires_grad=True)
    out = x.gather(dim, gf.tensor(index))
    picked = X[tuple(slice(None) if k == d else slice(0, n) for k, n in enumerate(shape))]
    expected = numpy.take_along_axis(picked, index, axis=d)
    numpy.testing.assert_array_equal(out.detach().numpy(), expected)
    g = rng.standard_normal(shape).astype(numpy.float32)
    out.backward(gf.tensor(g))
    grid = tuple(
        index if k == d else numpy.arange(n).reshape([-1 if j == k else 1 for j in range(3)])
        for k, n in enumerate(shape)
    )
    assert x.grad.dtype == gf.float32
    numpy.testing.assert_array_equal(x.grad.numpy(), _add_at_reference(X.shape, grid, g))


def test_gather_of_non_contiguous_input_and_broadcast_index(rng):
    base = gf.tensor(numpy.ascontiguousarray(X.transpose(2, 1, 0)), requires_grad=True)
    x = base.permute(2, 1, 0)
    out = gf.take_along_dim(x, gf.tensor(numpy.array([[[2], [0]]])), dim=1)  # broadcast index
    expected = numpy.take_along_axis(X, numpy.broadcast_to([[[2], [0]]], (5, 2, 3)), axis=1)
    numpy.testing.assert_array_equal(out.detach().numpy(), expected)
    out.sum().backward()
    grad = numpy.zeros_like(X)
    grad[:, 2] += 1
    grad[:, 0] += 1
    numpy.testing.assert_array_equal(base.grad.numpy().transpose(2, 1, 0), grad)


def test_embedding_gradient_is_add_at_bits(rng):
    weight = gf.tensor(rng.standard_normal((50, 40)).astype(numpy.float32), requires_grad=True)
    rows = rng.integers(0, 50, (8, 30))
    out = gf.nn.functional.embedding(gf.tensor(rows), weight)
    g = rng.standard_normal((8, 30, 40)).astype(numpy.float32)
    out.backward(gf.tensor(g))
    assert weight.grad.dtype == gf.float32
    numpy.testing.assert_array_equal(
        weight.grad.numpy(), _add_at_reference((50, 40), rows.reshape(-1), g.reshape(-1, 40))
    )


@pytest.mark.parametrize("width", [5, 48])
def test_embedding_bag_sums_are_add_at_bits(width, rng):
    table = rng.standard_normal((30, width)).astype(numpy.float32)
    weight = gf.tensor(table, requires_grad=True)
    rows = rng.integers(0, 30, 200)
    offsets = numpy.array([0, 3, 3, 90, 150])
    out = gf.nn.functional.embedding_bag(gf.tensor(rows), weight, gf.tensor(offsets), mode="sum")
    bags = numpy.searchsorted(offsets, numpy.arange(200), side="right") - 1
    numpy.testing.assert_array_equal(
        out.detach().numpy(), _add_at_reference((5, width), bags, table[rows])
    )
    g = rng.standard_normal((5, width)).astype(numpy.float32)
    out.backward(gf.tensor(g))
    numpy.testing.assert_array_equal(
        weight.grad.numpy(), _add_at_reference((30, width), rows, g[bags])
    )
