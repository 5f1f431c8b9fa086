"""Index bounds checks on cuda: one host synchronization per op (the min and max of every
integer array reduced on the device and read back together), and the same errors as on cpu.

CuPy does not check integer-array indices: it wraps them around (the stand-in does too), so an
unchecked out-of-range index would silently read another row. The count tests need the CuPy
stand-in (GRADFLOW_CUDA_STANDIN=1); the error tests run on any cuda device."""

import numpy
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow import cuda
from gradflow.ops import indexing
from gradflow.testing import standin

needs_cuda = pytest.mark.skipif(not cuda.is_available(), reason="no CUDA GPU visible to CuPy")
needs_standin = pytest.mark.skipif(not standin.enabled(), reason="counts need the CuPy stand-in")

X = numpy.arange(42, dtype=numpy.float32).reshape(6, 7)


def tensor(array, device, requires_grad=False):
    return gradflow.tensor(numpy.asarray(array), device=device, requires_grad=requires_grad)


def counted(fn):
    """The counts of fn() after one warm-up call."""
    fn()
    with standin.counting() as block:
        fn()
    return block.counts


# ---- one synchronization per op (stand-in) ----------------------------------------------------


def _x():
    return tensor(X, "cuda", requires_grad=True)


def _setitem():
    x = tensor(X, "cuda")
    x[tensor([0, -1, 3], "cuda")] = 1.0


def _embedding_step(**options):
    weight = tensor(numpy.ones((10, 3), numpy.float32), "cuda", requires_grad=True)
    rows = tensor([[1, 2], [4, 1]], "cuda")
    F.embedding(rows, weight, **options).sum().backward()


ONE_SYNC = {
    "getitem": lambda: _x()[tensor([0, 3, 5], "cuda")],
    "getitem_negative": lambda: _x()[tensor([0, -3, 5], "cuda")],
    "getitem_list": lambda: _x()[[0, 3, 5]],
    "getitem_two_arrays": lambda: _x()[tensor([0, 3], "cuda"), tensor([[1], [-2]], "cuda")],
    "getitem_slice_array_none": lambda: _x()[None, 2:, tensor([-1, 0], "cuda")],
    "getitem_backward": lambda: _x()[tensor([0, 0, 5], "cuda")].sum().backward(),
    "setitem": _setitem,
    "index_select": lambda: _x().index_select(1, tensor([6, 0, -1], "cuda")),
    "gather_backward": lambda: (
        _x().gather(1, tensor([[0], [6], [1], [2], [3], [-1]], "cuda")).sum().backward()
    ),
    "take_along_axis": lambda: indexing.take_along_axis(_x(), tensor([[0, -1]], "cuda"), 1),
    "take_along_axis_flat": lambda: indexing.take_along_axis(_x(), tensor([41, 0], "cuda"), None),
    "one_hot": lambda: F.one_hot(tensor([0, 2, 1], "cuda"), 3),
    "one_hot_inferred": lambda: F.one_hot(tensor([0, 2, 1], "cuda")),
    "embedding": lambda: _embedding_step(),
    "embedding_freq_padding": lambda: _embedding_step(scale_grad_by_freq=True, padding_idx=1),
    "masked_select": lambda: _x().masked_select(tensor(X > 20, "cuda")),  # CuPy counts the mask
}


@pytest.mark.gpu
@needs_standin
@pytest.mark.parametrize("call", ONE_SYNC.values(), ids=ONE_SYNC.keys())
def test_each_op_synchronizes_once(call):
    counts = counted(call)
    assert counts.syncs == 1 and counts.d2h <= 1  # a mask's count is read without a copy


@pytest.mark.gpu
@needs_standin
def test_the_check_is_three_small_launches():
    """min, max and their stack, read at once; then the gather itself."""
    x, index = _x(), tensor([0, 3, 5], "cuda")
    assert counted(lambda: x[index]).kernels == 4
    assert counted(lambda: x[index, index]).kernels == 6  # two arrays: one stack of four values
    assert counted(lambda: x.index_select(0, index)).kernels == 4  # not checked twice


@pytest.mark.gpu
@needs_standin
def test_embedding_counts_rows_without_bincount_on_cuda(monkeypatch):
    """CuPy's bincount synchronizes twice (a negative check and the max for its size)."""
    import cupy

    def refuse(*args, **kwargs):
        raise AssertionError("cupy.bincount synchronizes")

    monkeypatch.setattr(cupy, "bincount", refuse, raising=False)
    weight = tensor(numpy.ones((5, 2), numpy.float32), "cuda", requires_grad=True)
    F.embedding(tensor([1, 1, 3, 1], "cuda"), weight, scale_grad_by_freq=True).sum().backward()
    numpy.testing.assert_allclose(
        weight.grad.cpu().numpy(), [[0, 0], [1, 1], [0, 0], [1, 1], [0, 0]]
    )


# ---- the same errors on cuda as on cpu --------------------------------------------------------


def _getitem(index):
    return lambda device: tensor(X, device)[index(device)]


def _set(index):
    def call(device):
        x = tensor(X, device)
        x[index(device)] = 1.0

    return call


ERRORS = {
    "past_the_end": (_getitem(lambda d: tensor([0, 6], d)), "index 6 is out of bounds for dim 0"),
    "below_minus_size": (_getitem(lambda d: [0, -7]), "index -7 is out of bounds for dim 0"),
    "second_array": (
        _getitem(lambda d: (tensor([0, 1], d), tensor([3, 7], d))),
        "index 7 is out of bounds for dim 1 with size 7",
    ),
    "array_before_int": (  # both bad: the earlier item is named, as on cpu
        _getitem(lambda d: (tensor([9], d), 8)),
        "index 9 is out of bounds for dim 0",
    ),
    "int_after_good_array": (
        _getitem(lambda d: (tensor([1], d), 8)),
        "index 8 is out of bounds for dim 1",
    ),
    "array_before_bad_mask": (
        _getitem(lambda d: (tensor([9], d), tensor(numpy.ones(3, bool), d))),
        "index 9 is out of bounds for dim 0",
    ),
    "bad_mask_after_good_array": (
        _getitem(lambda d: (tensor([1], d), tensor(numpy.ones(3, bool), d))),
        "the mask of shape (3,) doesn't match",
    ),
    "setitem": (_set(lambda d: tensor([2, 6], d)), "index 6 is out of bounds for dim 0"),
    "index_select": (
        lambda d: tensor(X, d).index_select(1, tensor([0, 7], d)),
        "index_select: index 7 is out of bounds for dim 1 with size 7",
    ),
    "index_select_negative": (
        lambda d: tensor(X, d).index_select(0, tensor([-7], d)),
        "index_select: index -7 is out of bounds for dim 0 with size 6",
    ),
    "gather": (
        lambda d: tensor(X, d).gather(1, tensor([[0], [7]], d)),
        "gather: index 7 is out of bounds for dim 1 with size 7",
    ),
    "take_along_axis": (
        lambda d: indexing.take_along_axis(tensor(X, d), tensor([[-8]], d), 1),
        "take_along_axis: index -8 is out of bounds for dim 1 with size 7",
    ),
    "take_along_axis_flat": (
        lambda d: indexing.take_along_axis(tensor(X, d), tensor([42], d), None),
        "take_along_axis: index 42 is out of bounds for dim 0 with size 42",
    ),
    "one_hot": (
        lambda d: F.one_hot(tensor([0, 3], d), 3),
        "one_hot: class values must be in [0, 3), got min 0 and max 3",
    ),
    "one_hot_negative": (
        lambda d: F.one_hot(tensor([-1, 2], d)),
        "one_hot: class values must be in [0, 3), got min -1 and max 2",
    ),
    "embedding": (
        lambda d: F.embedding(tensor([[1, 10]], d), tensor(numpy.ones((10, 2)), d)),
        "embedding: index 10 is out of range for weight with 10 rows",
    ),
}


def _error(call, device):
    with pytest.raises(IndexError) as info:
        call(device)
    return str(info.value)


@pytest.mark.parametrize("call, message", ERRORS.values(), ids=ERRORS.keys())
def test_errors_on_cpu(call, message):
    assert message in _error(call, "cpu")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("call, message", ERRORS.values(), ids=ERRORS.keys())
def test_cuda_raises_the_cpu_error(call, message):
    assert _error(call, "cuda") == _error(call, "cpu")


@pytest.mark.gpu
@needs_cuda
def test_in_range_negative_indices_match_cpu():
    def run(device):
        x = tensor(X, device, requires_grad=True)
        out = x[tensor([-1, 0, -6], device), tensor([[-7], [6]], device)]
        out = out + x.index_select(1, tensor([-1, -7, 0], device))[:2, :3]
        out.sum().backward()
        return out.detach().cpu().numpy(), x.grad.cpu().numpy()

    for ours, cpu in zip(run("cuda"), run("cpu")):
        numpy.testing.assert_array_equal(ours, cpu)
