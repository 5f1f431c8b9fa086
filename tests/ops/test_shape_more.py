"""The shape ops PyTorch programs use beyond the basics (gradflow/ops/shape.py): narrow,
unbind, unflatten, roll, movedim, rot90, select, take, flipud/fliplr, tril/triu, diag/diagonal/
diag_embed/trace, repeat_interleave, meshgrid, tensor_split and the h/v/dsplit and stack family,
atleast_nd, broadcast_tensors: values and gradients against PyTorch, gradcheck, and the error
messages."""

import numpy
import pytest

import gradflow as gf
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")

A = numpy.linspace(-2.0, 3.0, 24).reshape(2, 3, 4)

# name -> fn(x, lib) with names gradflow and torch share; the result is a tensor or a tuple
CASES = {
    "narrow": lambda x, lib: x.narrow(2, 1, 2),
    "narrow_negative": lambda x, lib: lib.narrow(x, -1, -3, 3),
    "unbind": lambda x, lib: x.unbind(1),
    "unbind_fn": lambda x, lib: lib.unbind(x),
    "unflatten": lambda x, lib: x.unflatten(2, (2, -1)),
    "roll": lambda x, lib: x.roll(1, 2),
    "roll_dims": lambda x, lib: lib.roll(x, (1, -2), (0, 2)),
    "roll_flat": lambda x, lib: x.roll(5),
    "movedim": lambda x, lib: x.movedim(0, -1),
    "movedim_many": lambda x, lib: lib.movedim(x, (0, 1), (2, 0)),
    "moveaxis": lambda x, lib: lib.moveaxis(x, 2, 0),
    "swapaxes": lambda x, lib: x.swapaxes(0, 2),
    "swapdims": lambda x, lib: lib.swapdims(x, 1, 2),
    "rot90": lambda x, lib: x.rot90(1, (1, 2)),
    "rot90_back": lambda x, lib: lib.rot90(x, -1, (2, 0)),
    "rot90_twice": lambda x, lib: x.rot90(2),
    "tril": lambda x, lib: x.tril(),
    "tril_offset": lambda x, lib: lib.tril(x, -1),
    "triu": lambda x, lib: x.triu(1),
    "triu_fn": lambda x, lib: lib.triu(x[0], -1),
    "diag_vector": lambda x, lib: lib.diag(x[0, 0], 1),
    "diag_matrix": lambda x, lib: x[0].diag(-1),
    "diagonal": lambda x, lib: x.diagonal(),
    "diagonal_dims": lambda x, lib: lib.diagonal(x, 1, 0, 2),
    "diagonal_negative": lambda x, lib: x.diagonal(-1, -1, 1),
    "diag_embed": lambda x, lib: x.diag_embed(),
    "diag_embed_dims": lambda x, lib: lib.diag_embed(x[0], -1, 0, 2),
    "trace": lambda x, lib: x[1].trace(),
    "repeat_interleave": lambda x, lib: x.repeat_interleave(2, dim=1),
    "repeat_interleave_counts": lambda x, lib: lib.repeat_interleave(
        x, lib.tensor([0, 2, 1]), dim=1
    ),
    "repeat_interleave_flat": lambda x, lib: x.repeat_interleave(2),
    "meshgrid": lambda x, lib: lib.meshgrid(x[0, 0], x[1, 1, :2], indexing="ij"),
    "meshgrid_xy": lambda x, lib: lib.meshgrid(x[0, 0], x[1, 1, :2], x[0, 2, :3], indexing="xy"),
    "tensor_split": lambda x, lib: x.tensor_split(3, dim=2),
    "tensor_split_indices": lambda x, lib: lib.tensor_split(x, [1, 3, 2], dim=2),
    "tensor_split_tensor": lambda x, lib: x.tensor_split(lib.tensor([1, 2]), 1),
    "hsplit": lambda x, lib: x.hsplit(3),
    "vsplit": lambda x, lib: lib.vsplit(x, [1]),
    "dsplit": lambda x, lib: x.dsplit(2),
    "hstack": lambda x, lib: lib.hstack([x[0], x[1]]),
    "hstack_1d": lambda x, lib: lib.hstack([x[0, 0], x[1, 1]]),
    "vstack": lambda x, lib: lib.vstack([x[0, 0], x[1]]),
    "row_stack": lambda x, lib: lib.row_stack([x[0, 0], x[1, 0]]),
    "dstack": lambda x, lib: lib.dstack([x[0], x[1]]),
    "column_stack": lambda x, lib: lib.column_stack([x[0, 0, :3], x[1, :, :2]]),
    "atleast_1d": lambda x, lib: lib.atleast_1d(x[0, 0, 0]),
    "atleast_2d": lambda x, lib: lib.atleast_2d((x[0, 0], x[0, 0, 0], x[0])),
    "atleast_3d": lambda x, lib: lib.atleast_3d(x[0, 0], x[0], x),
    "broadcast_tensors": lambda x, lib: lib.broadcast_tensors(x[:, :1], x[0, 0]),
    "chunk_uneven": lambda x, lib: x.flatten().chunk(5),
    "squeeze_dims": lambda x, lib: x[:, :1, :1].squeeze((1, 2)),
    "take_along_dim_none": lambda x, lib: lib.take_along_dim(x, lib.tensor([3, 0, 23])),
    "select": lambda x, lib: x.select(1, -1),
    "select_fn": lambda x, lib: lib.select(x, 2, 0),
    "take": lambda x, lib: lib.take(x, lib.tensor([[0, -1], [5, 5]])),
    "flipud": lambda x, lib: x.flipud(),
    "fliplr": lambda x, lib: lib.fliplr(x),
    "take_along_dim": lambda x, lib: x.take_along_dim(lib.tensor([[[1], [0], [3]]]), 2),
}


def _host(t):
    return (
        numpy.asarray(t.detach().cpu().tolist()) if isinstance(t, gf.Tensor) else t.detach().numpy()
    )


def _outputs(out):
    return list(out) if isinstance(out, tuple | list) else [out]


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name, device):
    fn = CASES[name]
    x = gf.tensor(A, device=device, requires_grad=True)
    tx = torch.tensor(A, requires_grad=True)
    outs, touts = _outputs(fn(x, gf)), _outputs(fn(tx, torch))
    assert len(outs) == len(touts)
    loss, tloss = 0, 0
    for k, (out, tout) in enumerate(zip(outs, touts)):
        assert tuple(out.shape) == tuple(tout.shape)
        numpy.testing.assert_array_equal(_host(out), tout.detach().numpy())
        weights = numpy.cos(numpy.arange(tout.numel()) + k).reshape(tout.shape)
        loss = loss + (out * gf.tensor(weights, device=device)).sum()
        tloss = tloss + (tout * torch.tensor(weights)).sum()
    loss.backward()
    tloss.backward()
    numpy.testing.assert_allclose(_host(x.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck(name, device):
    fn = CASES[name]
    x = gf.tensor(A, device=device, requires_grad=True)

    def total(t):
        # (o * o) weighs the outputs differently (a scalar factor would hit a bug in arithmetic
        # on cuda at the time of writing: 0-d tensor * number)
        return sum((o * o).sum() + o.sum() for o in _outputs(fn(t, gf)))

    assert gradcheck(total, [x])


def test_tril_triu_in_place_and_integer_inputs(device):
    x = gf.tensor(numpy.arange(12).reshape(3, 4), device=device)
    assert x.tril().tolist() == torch.arange(12).reshape(3, 4).tril().tolist()
    assert x.triu_(1) is x
    assert x.tolist() == torch.arange(12).reshape(3, 4).triu(1).tolist()


def test_repeat_interleave_of_counts_and_output_size():
    assert gf.repeat_interleave(gf.tensor([1, 0, 2])).tolist() == [0, 2, 2]
    out = gf.tensor([1.0, 2.0]).repeat_interleave(gf.tensor(2), output_size=4)
    assert out.tolist() == [1.0, 1.0, 2.0, 2.0]


def test_broadcast_shapes_and_views():
    assert gf.broadcast_shapes((2, 1), (3,), 1) == (2, 3)
    x = gf.arange(6.0).reshape(2, 3)
    first, second = gf.broadcast_tensors(x, gf.tensor([1.0, 2.0, 3.0]))
    assert first is x and second.shape == (2, 3)


def test_unbind_of_an_empty_dim_and_chunk_of_an_empty_tensor():
    assert gf.zeros(0, 3).unbind(0) == ()
    assert [tuple(c.shape) for c in gf.zeros(0).chunk(3)] == [(0,), (0,), (0,)]


def test_narrow_is_a_view():
    x = gf.arange(6.0)
    gf.narrow(x, 0, 2, 2).array[...] = -1
    assert x.tolist() == [0.0, 1.0, -1.0, -1.0, 4.0, 5.0]


ERRORS = [
    (
        lambda: gf.zeros(2, 3).narrow(1, 2, 2),
        RuntimeError,
        r"narrow: start \(2\) \+ length \(2\) exceeds dimension size \(3\)",
    ),
    (lambda: gf.zeros(3).narrow(0, 4, 0), IndexError, r"narrow: start \(4\) is out of range"),
    (lambda: gf.zeros(3).narrow(0, 0, -1), RuntimeError, "narrow: length must be non-negative"),
    (lambda: gf.zeros(()).unbind(), ValueError, "unbind: a 0-d tensor has no dim to unbind"),
    (lambda: gf.zeros(4).unflatten(0, ()), ValueError, "unflatten: sizes must be non-empty"),
    (lambda: gf.zeros(4).unflatten(0, (3, -1)), ValueError, r"unflatten: shape \(3, -1\)"),
    (lambda: gf.zeros(4).roll((1, 2)), ValueError, "roll: without dims, shifts must be one int"),
    (lambda: gf.zeros(4).roll((1, 2), (0,)), ValueError, "must have the same length"),
    (
        lambda: gf.zeros(2, 3).movedim((0, 1), 0),
        ValueError,
        "movedim: source .* and destination .* must have the same length",
    ),
    (lambda: gf.zeros(2, 3).movedim((0, 0), (0, 1)), ValueError, "movedim: repeated dim"),
    (lambda: gf.zeros(2, 3).rot90(1, (0,)), ValueError, "rot90: needs 2 dims"),
    (lambda: gf.zeros(2, 3).rot90(1, (1, -1)), ValueError, "rot90: the two dims must differ"),
    (lambda: gf.zeros(3).tril(), ValueError, "tril: input tensor must have at least 2 dimensions"),
    (lambda: gf.zeros(2, 2, 2).diag(), ValueError, r"diag\(\): Supports 1D or 2D tensors. Got 3D"),
    (lambda: gf.zeros(2, 2).diagonal(0, 1, -1), ValueError, "diagonal: dim1 and dim2 must differ"),
    (lambda: gf.zeros(2).diag_embed(0, 0, -2), ValueError, "diag_embed: dim1 and dim2 must differ"),
    (lambda: gf.zeros(2, 2, 2).trace(), ValueError, "trace: expected a matrix"),
    (
        lambda: gf.zeros(3).repeat_interleave(gf.tensor([1, 2])),
        ValueError,
        "repeat_interleave: repeats must be an int or 3 integer counts",
    ),
    (lambda: gf.zeros(2).repeat_interleave(-1), ValueError, "repeats can not be negative"),
    (
        lambda: gf.zeros(2).repeat_interleave(2, output_size=3),
        ValueError,
        "output_size 3 differs from the 4 repeated elements",
    ),
    (lambda: gf.repeat_interleave(gf.zeros(2)), ValueError, "repeats must be a 1-D integer tensor"),
    (
        lambda: gf.meshgrid(gf.zeros(2), indexing="yx"),
        ValueError,
        "meshgrid: indexing must be 'ij' or 'xy'",
    ),
    (lambda: gf.meshgrid(gf.zeros(2, 2)), ValueError, "meshgrid: expects 0-D or 1-D tensors"),
    (
        lambda: gf.zeros(3).tensor_split(0),
        ValueError,
        "tensor_split: number of sections must be larger than 0",
    ),
    (
        lambda: gf.zeros(2, 3).hsplit(2),
        ValueError,
        "hsplit attempted to split along dimension 1, but the size of the dimension 3 is not "
        "divisible by the split_size 2",
    ),
    (lambda: gf.zeros(()).hsplit(1), ValueError, "hsplit: requires a tensor with at least 1"),
    (lambda: gf.zeros(3).vsplit(1), ValueError, "vsplit: requires a tensor with at least 2"),
    (lambda: gf.zeros(3, 3).dsplit(1), ValueError, "dsplit: requires a tensor with at least 3"),
    (
        lambda: gf.broadcast_shapes((2,), (3,)),
        ValueError,
        r"broadcast_shapes: shapes \(\(2,\), \(3,\)\) don't broadcast together",
    ),
    (
        lambda: gf.zeros(3).select(0, 3),
        IndexError,
        r"select\(\): index 3 out of range for tensor of size \[3\] at dimension 0",
    ),
    (lambda: gf.zeros(()).select(0, 0), IndexError, "select\\(\\) cannot be applied to a 0-dim"),
    (lambda: gf.zeros(()).flipud(), ValueError, "flipud: input must be >= 1-d"),
    (lambda: gf.zeros(3).fliplr(), ValueError, "fliplr: input must be >= 2-d"),
    (lambda: gf.atleast_2d(1.0), TypeError, "atleast_2d: expected Tensors, got float"),
]


@pytest.mark.parametrize(("fn", "error", "message"), ERRORS)
def test_errors_name_the_problem(fn, error, message):
    with pytest.raises(error, match=message):
        fn()


@pytest.mark.parametrize(
    "shape,repeats,dim", [((5, 7), 3, 0), ((2, 3, 4), 2, -1), ((3, 4), 0, 1), ((4,), 2, None)]
)
def test_repeat_interleave_by_one_count_matches_the_index_route(shape, repeats, dim):
    # an int count takes the repeat-and-reshape-sum node; one count per element the index
    # route: both give the same values and gradients, and the gradient differentiates again
    rng = numpy.random.default_rng(2)
    a = rng.standard_normal(shape)
    n = a.size if dim is None else a.shape[dim]
    results = []
    for counts in (repeats, gf.tensor(numpy.full(n, repeats))):
        x = gf.tensor(a, requires_grad=True)
        y = x.repeat_interleave(counts, dim=dim)
        g = numpy.random.default_rng(3).standard_normal(tuple(y.shape))
        y.backward(gf.tensor(g))
        results.append((y.detach().numpy(), x.grad.numpy()))
    assert results[0][0].shape == results[1][0].shape
    for ours, index_route in zip(results[0], results[1], strict=True):
        numpy.testing.assert_allclose(ours, index_route, rtol=1e-12, atol=1e-12)
    x = gf.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gf.autograd.gradgradcheck(lambda x: x.repeat_interleave(2, dim=1) ** 2, (x,))
