"""Sorting and searching (gradflow/ops/sorting.py): sort/argsort/msort/topk/kthvalue values,
indices and gradients against PyTorch, the named result tuples, nonzero/unique/searchsorted/
bucketize/histc/bincount/count_nonzero against PyTorch, gradcheck, and the error messages."""

import numpy
import pytest

import gradflow as gf
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")

DISTINCT = numpy.array([[0.3, -1.2, 2.5, 0.7, -0.1], [1.9, 0.4, -2.2, 0.0, 3.1]])
TIES = numpy.array([[3.0, 1.0, 2.0, 1.0, 3.0], [numpy.nan, 0.0, 5.0, 5.0, -1.0]])

# name -> fn(x, lib) returning (values, indices) with names gradflow and torch share
SORTS = {
    "sort": lambda x, lib: x.sort(),
    "sort_dim0_desc": lambda x, lib: lib.sort(x, 0, descending=True),
    "sort_stable_desc": lambda x, lib: x.sort(dim=1, descending=True, stable=True),
    "topk": lambda x, lib: x.topk(3),
    "topk_smallest": lambda x, lib: lib.topk(x, 2, dim=0, largest=False),
    "kthvalue": lambda x, lib: x.kthvalue(2),
    "kthvalue_keepdim": lambda x, lib: lib.kthvalue(x, 1, 0, True),
}


def _host(t):
    return numpy.asarray(t.detach().cpu().tolist())


@pytest.mark.parametrize("name", sorted(SORTS))
def test_values_indices_and_gradients_match_torch(name, device):
    fn = SORTS[name]
    x = gf.tensor(DISTINCT, device=device, requires_grad=True)
    tx = torch.tensor(DISTINCT, requires_grad=True)
    values, indices = fn(x, gf)
    tvalues, tindices = fn(tx, torch)
    numpy.testing.assert_array_equal(_host(values), tvalues.detach().numpy())
    numpy.testing.assert_array_equal(_host(indices), tindices.numpy())
    assert indices.dtype == gf.int64
    weights = numpy.cos(numpy.arange(tvalues.numel())).reshape(tvalues.shape)
    (values * gf.tensor(weights, device=device)).sum().backward()
    (tvalues * torch.tensor(weights)).sum().backward()
    numpy.testing.assert_allclose(_host(x.grad), tx.grad.numpy())
    assert gradcheck(
        lambda t: fn(t, gf)[0], [gf.tensor(DISTINCT, device=device, requires_grad=True)]
    )


@pytest.mark.parametrize("descending", [False, True])
def test_stable_sort_of_ties_and_nan_matches_torch(descending, device):
    x = gf.tensor(TIES, device=device)
    values, indices = x.sort(descending=descending, stable=True)
    tvalues, tindices = torch.tensor(TIES).sort(descending=descending, stable=True)
    numpy.testing.assert_array_equal(_host(values), tvalues.numpy())
    numpy.testing.assert_array_equal(_host(indices), tindices.numpy())
    numpy.testing.assert_array_equal(_host(gf.argsort(x, descending=descending)), tindices.numpy())


def test_named_results_and_msort(device):
    x = gf.tensor(DISTINCT, device=device)
    result = x.topk(2)
    assert type(result).__name__ == "topk" and result.indices is result[1]
    values, indices = x.sort()
    assert gf.sort(x).values.tolist() == values.tolist()
    assert x.kthvalue(1).indices.tolist() == torch.tensor(DISTINCT).kthvalue(1).indices.tolist()
    assert x.msort().tolist() == torch.tensor(DISTINCT).msort().tolist()
    assert gf.msort(x).tolist() == torch.msort(torch.tensor(DISTINCT)).tolist()
    assert x.argsort(dim=0).tolist() == torch.tensor(DISTINCT).argsort(dim=0).tolist()


def test_zero_dim_inputs(device):
    x = gf.tensor(2.5, device=device)
    values, indices = x.sort()
    assert values.item() == 2.5 and indices.item() == 0
    assert x.topk(1).values.item() == 2.5 and x.kthvalue(1).indices.item() == 0
    assert x.nonzero().shape == (1, 0) and gf.tensor(0.0).nonzero().shape == (0, 0)
    assert [t.tolist() for t in x.nonzero(as_tuple=True)] == [[0]]


INTS = numpy.array([[3, 0, 1], [0, 2, 3], [3, 0, 1]])

# name -> fn(lib, tensor_factory) whose results (a tensor or a tuple) must equal torch's
COUNTING = {
    "nonzero": lambda lib, T: lib.nonzero(T(INTS)),
    "nonzero_tuple": lambda lib, T: T(INTS).nonzero(as_tuple=True),
    "argwhere": lambda lib, T: lib.argwhere(T(INTS)),
    "unique": lambda lib, T: lib.unique(T(INTS)),
    "unique_all": lambda lib, T: T(INTS).unique(return_inverse=True, return_counts=True),
    "unique_dim": lambda lib, T: lib.unique(
        T(INTS), return_inverse=True, return_counts=True, dim=0
    ),
    "unique_consecutive": lambda lib, T: lib.unique_consecutive(
        T([1, 1, 2, 2, 3, 1, 1, 2]), return_inverse=True, return_counts=True
    ),
    "unique_consecutive_dim": lambda lib, T: T(INTS).unique_consecutive(return_counts=True, dim=1),
    "searchsorted": lambda lib, T: lib.searchsorted(T([1, 3, 5, 7]), T([[0, 3], [6, 9]])),
    "searchsorted_right": lambda lib, T: lib.searchsorted(T([1, 3, 5, 7]), T([3, 5]), right=True),
    "searchsorted_side": lambda lib, T: lib.searchsorted(T([1, 3, 5, 7]), 5, side="right"),
    "searchsorted_rows": lambda lib, T: lib.searchsorted(
        T([[1, 3, 5], [2, 4, 6]]), T([[3, 6], [0, 4]]), out_int32=True
    ),
    "searchsorted_sorter": lambda lib, T: lib.searchsorted(
        T([5, 1, 3]), T([2, 4]), sorter=T([1, 2, 0])
    ),
    "bucketize": lambda lib, T: lib.bucketize(T([[1, 4], [5, 9]]), T([1, 3, 5, 7])),
    "bucketize_right": lambda lib, T: lib.bucketize(T([1, 4, 5, 9]), T([1, 3, 5, 7]), right=True),
    "histc": lambda lib, T: lib.histc(T([1.0, 2.0, 1.0, 2.5, 7.0]), bins=4, min=0, max=3),
    "histc_range": lambda lib, T: T([1.0, 2.0, 1.0, 4.0]).histc(bins=3),
    "histc_constant": lambda lib, T: lib.histc(T([2.0, 2.0]), bins=4),
    "bincount": lambda lib, T: lib.bincount(T([0, 1, 1, 4])),
    "bincount_minlength": lambda lib, T: T([0, 1, 1]).bincount(minlength=5),
    "bincount_weights": lambda lib, T: lib.bincount(T([0, 1, 1]), T([0.5, 1.0, 2.0])),
    "bincount_int_weights": lambda lib, T: lib.bincount(T([0, 2]), T([3, 4])),
    "bincount_empty": lambda lib, T: lib.bincount(T(numpy.zeros(0, numpy.int64)), minlength=2),
    "count_nonzero": lambda lib, T: lib.count_nonzero(T(INTS)),
    "count_nonzero_dim": lambda lib, T: T(INTS).count_nonzero(dim=0),
    "count_nonzero_dims": lambda lib, T: lib.count_nonzero(T(INTS), dim=(0, 1)),
}


@pytest.mark.parametrize("name", sorted(COUNTING))
def test_counting_and_searching_match_torch(name, device):
    fn = COUNTING[name]
    mine = fn(gf, lambda a: gf.tensor(numpy.asarray(a), device=device))
    theirs = fn(torch, lambda a: torch.tensor(numpy.asarray(a)))
    mine = mine if isinstance(mine, tuple) else (mine,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    assert len(mine) == len(theirs)
    for m, t in zip(mine, theirs):
        assert tuple(m.shape) == tuple(t.shape)
        assert str(m.dtype) == str(t.dtype).replace("torch.", "")
        numpy.testing.assert_array_equal(_host(m), t.numpy())


ERRORS = [
    (lambda: gf.tensor([1.0, 2.0]).topk(3), IndexError, "topk: selected index k=3 out of range"),
    (
        lambda: gf.tensor([1.0, 2.0]).kthvalue(0),
        IndexError,
        r"kthvalue\(\): selected number k=0 out of range",
    ),
    (lambda: gf.sort([1, 2]), TypeError, "sort: argument 'input' must be a Tensor, got list"),
    (lambda: gf.tensor([1.0]).sort(dim=2), IndexError, "sort: dim 2 is out of range"),
    (
        lambda: gf.searchsorted(gf.tensor([1, 2]), 1, side="middle"),
        ValueError,
        "searchsorted: side must be 'left' or 'right'",
    ),
    (
        lambda: gf.searchsorted(gf.tensor([1, 2]), 1, side="left", right=True),
        ValueError,
        "side and right can't be set to opposites",
    ),
    (
        lambda: gf.searchsorted(gf.tensor([[1, 2]]), gf.tensor([[1], [2]])),
        ValueError,
        "searchsorted: boundaries of shape .* must have the same leading dims",
    ),
    (
        lambda: gf.bucketize(gf.tensor([1]), gf.tensor([[1, 2]])),
        ValueError,
        "bucketize: boundaries must be 1-D",
    ),
    (lambda: gf.histc(gf.tensor([1, 2])), TypeError, "histc: input must be a floating-point"),
    (lambda: gf.histc(gf.tensor([1.0]), bins=0), ValueError, "histc: bins must be > 0"),
    (lambda: gf.histc(gf.tensor([1.0]), min=3, max=1), ValueError, "histc: max must be larger"),
    (
        lambda: gf.bincount(gf.tensor([0, -1])),
        ValueError,
        "bincount only supports 1-d non-negative integral inputs",
    ),
    (lambda: gf.bincount(gf.tensor([0.0])), ValueError, "1-d non-negative integral"),
    (lambda: gf.bincount(gf.tensor([0]), minlength=-1), ValueError, "minlength should be >= 0"),
    (
        lambda: gf.bincount(gf.tensor([0, 1]), gf.tensor([1.0])),
        ValueError,
        r"bincount: weights of shape \(1,\) must match",
    ),
]


@pytest.mark.parametrize(("fn", "error", "message"), ERRORS)
def test_errors_name_the_problem(fn, error, message):
    with pytest.raises(error, match=message):
        fn()


MODES = [
    numpy.array([[3, 1, 3, 2, 1, 1, 3], [5, 5, 4, 4, 0, 0, 9]]),  # ties: the smallest wins
    numpy.array([[2.0, 1.0, 1.0, 2.0], [0.5, -1.0, 0.5, 7.0]]),
]


@pytest.mark.parametrize("data", MODES, ids=["int_ties", "float"])
@pytest.mark.parametrize("dim,keepdim", [(-1, False), (0, False), (1, True)])
def test_mode_matches_torch(data, dim, keepdim, device):
    values, indices = gf.tensor(data, device=device).mode(dim, keepdim)
    tvalues, tindices = torch.tensor(data).mode(dim, keepdim)
    numpy.testing.assert_array_equal(_host(values), tvalues.numpy())
    numpy.testing.assert_array_equal(_host(indices), tindices.numpy())  # last occurrence
    assert indices.dtype == gf.int64 and type(gf.mode(gf.tensor(data))).__name__ == "mode"


def test_mode_gradient_goes_to_the_returned_index(device):
    x = gf.tensor([[1.0, 2.0, 2.0], [3.0, 3.0, 4.0]], device=device, requires_grad=True)
    tx = torch.tensor([[1.0, 2.0, 2.0], [3.0, 3.0, 4.0]], requires_grad=True)
    x.mode().values.sum().backward()
    tx.mode().values.sum().backward()
    numpy.testing.assert_array_equal(_host(x.grad), tx.grad.numpy())
    scalar = gf.tensor(3.0, device=device).mode()
    assert scalar.values.item() == 3.0 and scalar.indices.item() == 0
