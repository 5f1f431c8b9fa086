"""Tests for gradflow/ops/embedding.py: lookups of any index shape, the scatter-add weight
gradient (repeated indices, padding_idx, scale_grad_by_freq), gradcheck, parity with PyTorch,
non-contiguous inputs, the memory contract and error messages."""

import weakref

import numpy
import pytest

import gradflow
from gradflow.ops.embedding import embedding
from gradflow.testing.gradcheck import gradcheck


def t(array, device, requires_grad=False):
    return gradflow.tensor(numpy.asarray(array), device=device, requires_grad=requires_grad)


def host(x):
    return numpy.array(x.detach().cpu().numpy())


def reference_weight_grad(indices, g, num_rows, padding_idx=None):
    """Row by row in float64: every position adds its output gradient to the row it picked."""
    out = numpy.zeros((num_rows, g.shape[-1]))
    for pos, row in numpy.ndenumerate(indices):
        out[row] += g[pos]
    if padding_idx is not None:
        out[padding_idx] = 0
    return out


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 2)])
def test_embedding_looks_up_rows_for_any_index_shape(device, rng, shape):
    weight = rng.standard_normal((7, 3))
    indices = rng.integers(0, 7, size=shape)
    y = embedding(t(indices, device), t(weight, device))
    assert y.shape == (*shape, 3)
    numpy.testing.assert_array_equal(host(y), weight[indices])


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_weight_grad_adds_repeated_indices(device, rng, padding_idx):
    weight = t(rng.standard_normal((6, 4)), device, True)
    indices = numpy.array([[1, 2, 2, 5], [2, 0, 1, 2]])  # 2 four times, 1 twice, 3 and 4 never
    g = rng.standard_normal((2, 4, 4))
    embedding(t(indices, device), weight, padding_idx=padding_idx).backward(t(g, device))
    pad = None if padding_idx is None else padding_idx % 6
    expected = reference_weight_grad(indices, g, 6, pad)
    numpy.testing.assert_allclose(host(weight.grad), expected, rtol=1e-12, atol=1e-12)
    if pad is not None:
        assert not host(weight.grad)[pad].any()


def test_embedding_padding_row_is_still_looked_up(device, rng):
    weight = rng.standard_normal((4, 2))
    y = embedding(t([0, 3, 0], device), t(weight, device), padding_idx=0)
    numpy.testing.assert_array_equal(host(y), weight[[0, 3, 0]])  # as in PyTorch: only grad is 0


def test_embedding_gradcheck(device, rng):
    # padding_idx and scale_grad_by_freq change the gradient on purpose (it is no longer the
    # derivative of the lookup), so finite differences check the plain case only; the others
    # are held to a float64 reference and to PyTorch below.
    weight = t(rng.standard_normal((5, 3)), device, True)
    indices = t(numpy.array([[0, 1, 1], [4, 1, 0]]), device)
    assert gradcheck(lambda w: embedding(indices, w), [weight], full_jacobian=True)


def test_embedding_scale_grad_by_freq_divides_by_the_count(device, rng):
    weight = t(rng.standard_normal((4, 2)), device, True)
    indices = numpy.array([3, 1, 3, 3, 0])
    g = rng.standard_normal((5, 2))
    embedding(t(indices, device), weight, scale_grad_by_freq=True).backward(t(g, device))
    expected = numpy.zeros((4, 2))
    expected[3] = g[[0, 2, 3]].sum(0) / 3
    expected[1], expected[0] = g[1], g[4]
    numpy.testing.assert_allclose(host(weight.grad), expected, rtol=1e-12)


def test_embedding_non_contiguous_indices_and_weight(device, rng):
    base = t(rng.standard_normal((3, 6)), device, True)  # the weight is base.T: (6, 3), strided
    indices_np = rng.integers(0, 6, size=(4, 5))
    indices = t(indices_np, device).T  # (5, 4), non-contiguous
    assert not indices.array.flags.c_contiguous and not base.T.array.flags.c_contiguous
    y = embedding(indices, base.T)
    numpy.testing.assert_array_equal(host(y), host(base).T[indices_np.T])
    assert gradcheck(lambda b: embedding(indices, b.T), [base])
    embedding(indices, base.T, padding_idx=3).sum().backward()
    expected = reference_weight_grad(indices_np.T, numpy.ones((5, 4, 3)), 6, padding_idx=3)
    numpy.testing.assert_allclose(host(base.grad), expected.T, rtol=1e-12)


def test_embedding_int32_indices_and_float32_weight(device, rng):
    weight = t(rng.standard_normal((9, 4)).astype(numpy.float32), device, True)
    indices = rng.integers(0, 9, size=(3, 7)).astype(numpy.int32)
    g = rng.standard_normal((3, 7, 4)).astype(numpy.float32)
    y = embedding(t(indices, device), weight)
    y.backward(t(g, device))
    assert y.dtype == numpy.float32 and weight.grad.dtype == numpy.float32
    expected = reference_weight_grad(indices, g, 9)
    numpy.testing.assert_allclose(host(weight.grad), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding_idx", [None, 0, -2])
@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
def test_embedding_matches_torch(device, rng, padding_idx, scale_grad_by_freq):
    torch = pytest.importorskip("torch")
    w = rng.standard_normal((8, 5))
    indices = rng.integers(0, 8, size=(4, 6))
    indices[0, :3] = 0  # the padding row and repeats for sure
    g = rng.standard_normal((4, 6, 5))
    ow, tw = t(w, device, True), torch.tensor(w, requires_grad=True)
    kwargs = dict(padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)
    oy = embedding(t(indices, device), ow, **kwargs)
    ty = torch.nn.functional.embedding(torch.tensor(indices), tw, **kwargs)
    oy.backward(t(g, device))
    ty.backward(torch.tensor(g))
    numpy.testing.assert_array_equal(host(oy), ty.detach().numpy())
    numpy.testing.assert_allclose(host(ow.grad), tw.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_embedding_saves_only_the_indices_and_frees_its_graph(rng):
    weight = t(rng.standard_normal((5, 3)), "cpu", True)
    indices = t([[1, 2], [3, 1]], "cpu")
    y = embedding(indices, weight)
    (saved,) = y.grad_fn.saved_arrays
    assert saved is indices.array
    node = weakref.ref(y.grad_fn)
    del y
    assert node() is None
    assert embedding(indices, weight.detach()).grad_fn is None


def cpu(array):
    return gradflow.tensor(numpy.asarray(array))


# (call with a (5, 3) float64 weight, error type, the message it must carry)
EMBEDDING_ERRORS = {
    "index too large": (
        lambda w: embedding(cpu([0, 5]), w),
        IndexError,
        r"embedding: index 5 is out of range for weight with 5 rows; indices must be in "
        r"\[0, 5\)",
    ),
    "negative index": (
        lambda w: embedding(cpu([[-1, 2]]), w),
        IndexError,
        r"embedding: index -1 is out of range for weight with 5 rows; indices must be in "
        r"\[0, 5\)",
    ),
    "float indices": (
        lambda w: embedding(cpu([0.0, 1.0]), w),
        TypeError,
        r"embedding: argument 'input' has dtype float64 and shape \(2,\); expected integer "
        r"indices \(int64 or int32\), convert with \.long\(\)",
    ),
    "bool indices": (
        lambda w: embedding(cpu([True, False]), w),
        TypeError,
        r"embedding: argument 'input' has dtype bool",
    ),
    "list indices": (
        lambda w: embedding([0, 1], w),
        TypeError,
        r"embedding: argument 'input' must be a Tensor of integer indices, got list",
    ),
    "1-d weight": (
        lambda w: embedding(cpu([0]), cpu(numpy.ones(5))),
        ValueError,
        r"embedding: argument 'weight' has shape \(5,\) and dtype float64; expected a 2-D "
        r"floating-point tensor \(num_embeddings, embedding_dim\)",
    ),
    "3-d weight": (
        lambda w: embedding(cpu([0]), cpu(numpy.ones((2, 3, 4)))),
        ValueError,
        r"embedding: argument 'weight' has shape \(2, 3, 4\) and dtype float64; expected a 2-D",
    ),
    "integer weight": (
        lambda w: embedding(cpu([0]), cpu(numpy.ones((5, 3), numpy.int64))),
        ValueError,
        r"embedding: argument 'weight' has shape \(5, 3\) and dtype int64",
    ),
    "padding_idx range": (
        lambda w: embedding(cpu([0]), w, padding_idx=5),
        ValueError,
        r"embedding: padding_idx=5 is out of range for weight with 5 rows; expected in "
        r"\[-5, 5\)",
    ),
    "max_norm type": (
        lambda w: embedding(cpu([0]), w, max_norm="1"),
        TypeError,
        r"embedding: max_norm must be a number, got str",
    ),
    "sparse": (
        lambda w: embedding(cpu([0]), w, sparse=True),
        NotImplementedError,
        r"embedding: sparse=True is not supported",
    ),
}


@pytest.mark.parametrize("case", EMBEDDING_ERRORS)
def test_embedding_errors(rng, case):
    call, error, message = EMBEDDING_ERRORS[case]
    with pytest.raises(error, match=message):
        call(cpu(rng.standard_normal((5, 3))))


def test_embedding_empty_indices(device, rng):
    weight = t(rng.standard_normal((4, 3)), device, True)
    y = embedding(t(numpy.zeros((0, 2), numpy.int64), device), weight)
    assert y.shape == (0, 2, 3)
    y.sum().backward()
    assert not host(weight.grad).any()


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_max_norm_renormalizes_the_picked_rows_as_torch(norm_type):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(3)
    table = rng.standard_normal((6, 4)) * 2
    indices = numpy.array([[0, 2], [2, 5]])
    ours = gradflow.nn.Embedding(6, 4, max_norm=1.5, norm_type=norm_type,
                                 _weight=gradflow.tensor(table))  # fmt: skip
    theirs = torch.nn.Embedding(6, 4, max_norm=1.5, norm_type=norm_type,
                                _weight=torch.tensor(table))  # fmt: skip
    out, ref = ours(gradflow.tensor(indices)), theirs(torch.tensor(indices))
    numpy.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    # the picked rows were rescaled in place, the others (1, 3, 4) kept
    numpy.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                                  rtol=1e-12)  # fmt: skip
    assert numpy.array_equal(ours.weight.detach().numpy()[[1, 3, 4]], table[[1, 3, 4]])
    g = rng.standard_normal(out.shape)
    out.backward(gradflow.tensor(g))
    ref.backward(torch.tensor(g))
    numpy.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy())
    assert "max_norm=1.5" in repr(ours)


def test_max_norm_without_torch_and_in_bags():
    table = numpy.array([[3.0, 4.0], [0.3, 0.4], [0.0, 10.0]])
    weight = gradflow.tensor(table.copy(), requires_grad=True)
    version = weight._version
    out = gradflow.nn.functional.embedding(gradflow.tensor([0, 1, 0]), weight, max_norm=1.0)
    assert weight._version > version  # rescaled in place: a graph holding the old rows knows
    numpy.testing.assert_allclose(weight.detach().numpy()[0], [0.6, 0.8], rtol=1e-6)
    assert numpy.array_equal(weight.detach().numpy()[1:], table[1:])  # under the norm, unpicked
    numpy.testing.assert_allclose(out.detach().numpy()[2], [0.6, 0.8], rtol=1e-6)
    bag = gradflow.nn.EmbeddingBag(3, 2, max_norm=2.0, mode="sum",
                                   _weight=gradflow.tensor(table.copy()))  # fmt: skip
    summed = bag(gradflow.tensor([[2, 1]]))
    numpy.testing.assert_allclose(summed.detach().numpy(), [[0.3, 2.4]], rtol=1e-6)
    assert "max_norm=2.0" in repr(bag)
    empty = gradflow.tensor(table.copy())
    gradflow.nn.functional.embedding(gradflow.tensor([], dtype=gradflow.int64), empty, max_norm=0.1)
    assert numpy.array_equal(empty.numpy(), table)
