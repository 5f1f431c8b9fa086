"""Reductions: values against NumPy, gradcheck over dims/keepdim, ties, zeros in prod,
stability of logsumexp, integer/bool reductions, errors, PyTorch parity."""

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow as gf
from gradflow.ops import reduction as R
from gradflow.testing import gradcheck


def _t(a, device, requires_grad=True):
    a = numpy.asarray(a, dtype=numpy.float64)
    return gf.tensor(a, device=device, requires_grad=requires_grad)


def _host(t):
    return t.detach().cpu().numpy()


def _x(device, rng, shape=(3, 4, 5)):
    return _t(rng.standard_normal(shape), device)


DIMS = [None, 0, -1, (0, 2), (1,)]

# name -> (gradflow op, NumPy reference with axis/keepdims)
SMOOTH = {
    "sum": (R.sum, numpy.sum),
    "mean": (R.mean, numpy.mean),
    "var": (R.var, lambda a, axis, keepdims: numpy.var(a, axis=axis, keepdims=keepdims, ddof=1)),
    "std": (R.std, lambda a, axis, keepdims: numpy.std(a, axis=axis, keepdims=keepdims, ddof=1)),
    "amax": (R.amax, numpy.max),
    "amin": (R.amin, numpy.min),
    "prod": (R.prod, numpy.prod),
    "logsumexp": (
        R.logsumexp,
        lambda a, axis, keepdims: numpy.log(numpy.exp(a).sum(axis=axis, keepdims=keepdims)),
    ),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_reduction_values_and_gradcheck(name, dim, keepdim, device, rng):
    op, ref = SMOOTH[name]
    x = _x(device, rng)
    out = op(x, dim, keepdim=keepdim)
    expected = ref(_host(x), axis=dim, keepdims=keepdim)
    assert out.shape == expected.shape
    numpy.testing.assert_allclose(_host(out), expected, rtol=1e-10)
    assert gradcheck(lambda t: op(t, dim, keepdim=keepdim), [x], full_jacobian=False)


@pytest.mark.parametrize("name", ["sum", "var", "amax", "logsumexp", "prod"])
def test_reduction_full_jacobian_on_non_contiguous_input(name, device, rng):
    op = SMOOTH[name][0]
    base = _x(device, rng, (4, 6))
    assert gradcheck(lambda t: op(t.T[::2], 1), [base], full_jacobian=True)
    assert gradcheck(lambda t: op(t[:, ::-3], (0, 1), keepdim=True), [base])


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    data=st.data(),
    keepdim=st.booleans(),
)
def test_sum_mean_amax_over_drawn_dims_match_numpy(shape, data, keepdim):
    ndim = len(shape)
    dims = data.draw(st.lists(st.integers(-ndim, ndim - 1), unique_by=lambda d: d % ndim))
    dim = tuple(dims) if dims else None
    a = numpy.random.default_rng(1).standard_normal(shape)
    x = _t(a, "cpu")
    for op, ref in [(R.sum, numpy.sum), (R.mean, numpy.mean), (R.amax, numpy.max)]:
        numpy.testing.assert_allclose(
            _host(op(x, dim, keepdim=keepdim)), ref(a, axis=dim, keepdims=keepdim), rtol=1e-12
        )
    assert gradcheck(lambda t: R.mean(t, dim, keepdim=keepdim), [x], full_jacobian=False)


def test_axis_and_keepdims_aliases(device, rng):
    x = _x(device, rng)
    numpy.testing.assert_allclose(
        _host(R.sum(x, axis=(0, 1), keepdims=True)), _host(R.sum(x, (0, 1), True))
    )
    assert R.mean(x, axis=1).shape == (3, 5)
    assert x.var(axis=-1, keepdims=True).shape == (3, 4, 1)


def test_zero_dim_tensor_accepts_dim_zero(device):
    x = _t(2.5, device)
    assert R.sum(x, 0).shape == ()
    assert R.max(x, 0).values.item() == 2.5
    assert R.max(x, 0).indices.item() == 0
    assert R.cumsum(x, 0).item() == 2.5


# ---- var / std -------------------------------------------------------------------------
@pytest.mark.parametrize("correction", [0, 1, 2])
def test_var_std_correction_keyword(correction, device, rng):
    x = _x(device, rng)
    a = _host(x)
    numpy.testing.assert_allclose(
        _host(R.var(x, 1, correction=correction)), numpy.var(a, axis=1, ddof=correction)
    )
    numpy.testing.assert_allclose(
        _host(x.std(dim=(0, 2), correction=correction)),
        numpy.std(a, axis=(0, 2), ddof=correction),
    )
    assert gradcheck(lambda t: R.std(t, 2, correction=correction), [x])


def test_var_unbiased_false_divides_by_n(device, rng):
    x = _x(device, rng)
    numpy.testing.assert_allclose(_host(R.var(x, unbiased=False)), numpy.var(_host(x)))
    assert gradcheck(lambda t: R.var(t, 0, False), [x])


def test_var_of_integer_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="var: expected a floating-point tensor, got int64"):
        R.var(gf.tensor([1, 2, 3]))


# ---- max / min -------------------------------------------------------------------------
@pytest.mark.parametrize("op, ref", [(R.max, numpy.max), (R.min, numpy.min)])
def test_max_min_full_reduction_is_0d(op, ref, device, rng):
    x = _x(device, rng)
    out = op(x)
    assert out.shape == ()
    assert out.item() == ref(_host(x))
    assert gradcheck(op, [x])


@pytest.mark.parametrize("op, argop", [(R.max, numpy.argmax), (R.min, numpy.argmin)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim_return_values_and_indices(op, argop, keepdim, device, rng):
    x = _x(device, rng)
    result = op(x, 1, keepdim)
    values, indices = result  # a tuple ...
    assert result.values is values and result.indices is indices  # ... with names
    expected_idx = argop(_host(x), axis=1)
    if keepdim:
        expected_idx = expected_idx[:, None]
    numpy.testing.assert_array_equal(indices.cpu().numpy(), expected_idx)
    assert indices.dtype == gf.int64 and not indices.requires_grad
    numpy.testing.assert_array_equal(
        _host(values),
        numpy.take_along_axis(_host(x), expected_idx.reshape(3, -1, 5), 1)
        if keepdim
        else numpy.take_along_axis(_host(x), expected_idx[:, None], 1)[:, 0],
    )
    assert gradcheck(lambda t: op(t, 1, keepdim).values, [x])
    assert gradcheck(lambda t: op(t.transpose(0, 2), -1, keepdim)[0], [x])


def test_max_ties_full_reduction_splits_gradient_evenly(device):
    x = _t([1.0, 3.0, 3.0, 2.0, 3.0], device)
    R.max(x).backward()
    numpy.testing.assert_allclose(_host(x.grad), [0, 1 / 3, 1 / 3, 0, 1 / 3])


def test_amax_ties_split_per_slice(device):
    x = _t([[1.0, 1.0], [0.0, 2.0]], device)
    R.amax(x, 1).sum().backward()
    numpy.testing.assert_allclose(_host(x.grad), [[0.5, 0.5], [0, 1]])


def test_max_dim_ties_send_gradient_to_first_index(device):
    x = _t([[2.0, 5.0, 5.0], [7.0, 7.0, 7.0]], device)
    values, indices = R.max(x, 1)
    assert indices.tolist() == [1, 0]
    values.sum().backward()
    numpy.testing.assert_allclose(_host(x.grad), [[0, 1, 0], [1, 0, 0]])


def test_max_with_a_tensor_is_elementwise_maximum(device, rng):
    x, y = _x(device, rng), _x(device, rng)
    numpy.testing.assert_allclose(_host(x.max(y)), numpy.maximum(_host(x), _host(y)))


def test_max_nan_propagates_and_takes_the_gradient():
    x = _t([1.0, numpy.nan, 3.0], "cpu")
    out = R.max(x)
    assert numpy.isnan(out.item())
    out.backward()
    numpy.testing.assert_array_equal(_host(x.grad), [0, 1, 0])


def test_max_errors():
    x = gf.tensor([[1.0, 2.0]])
    with pytest.raises(TypeError, match=r"max: dim must be an int, got \(0, 1\); use amax"):
        R.max(x, (0, 1))
    with pytest.raises(IndexError, match=r"min: dim 2 is out of range .* 2 dims"):
        R.min(x, 2)
    with pytest.raises(ValueError, match=r"max: the tensor of shape \(0,\) is empty"):
        R.max(gf.zeros(0))
    with pytest.raises(ValueError, match=r"argmin: the tensor of shape \(2, 0\) is empty"):
        R.argmin(gf.zeros((2, 0)))


# ---- logsumexp, prod, cumsum -----------------------------------------------------------
def test_logsumexp_is_stable_for_large_magnitudes(device):
    a = numpy.array([[1e4, 1e4 - 1, -1e4], [-1e4, -1e4 - 2, -1e4 - 3]])
    x = _t(a, device)
    out = R.logsumexp(x, 1)
    m = a.max(axis=1)
    expected = m + numpy.log(numpy.exp(a - m[:, None]).sum(axis=1))
    numpy.testing.assert_allclose(_host(out), expected, rtol=1e-14)
    out.sum().backward()
    softmax = numpy.exp(a - expected[:, None])
    numpy.testing.assert_allclose(_host(x.grad), softmax, rtol=1e-12)
    assert gradcheck(lambda t: R.logsumexp(t, 0), [x])


def test_logsumexp_of_all_minus_inf_rows_is_minus_inf_with_zero_grad(device):
    x = _t([[-numpy.inf, -numpy.inf], [0.0, -numpy.inf]], device)
    out = R.logsumexp(x, 1)
    numpy.testing.assert_array_equal(_host(out), [-numpy.inf, 0.0])
    out.sum().backward()
    numpy.testing.assert_array_equal(_host(x.grad), [[0, 0], [1, 0]])


@pytest.mark.parametrize(
    "a",
    [
        [[2.0, 0.0, 3.0, 4.0], [1.0, 2.0, 3.0, 0.5]],  # one zero in a row
        [[0.0, 0.0, 3.0, 4.0], [0.0, 2.0, 0.0, 0.0]],  # several zeros in a row
        [[0.0, 1.5, 3.0, 4.0], [0.0, 2.0, -1.0, 0.0]],  # one, and several
    ],
)
def test_prod_gradient_with_zeros(a, device):
    x = _t(a, device)
    assert gradcheck(lambda t: R.prod(t, 1), [x], full_jacobian=True)
    assert gradcheck(lambda t: R.prod(t, 0, keepdim=True), [x], full_jacobian=True)
    assert gradcheck(R.prod, [x], full_jacobian=True)
    numpy.testing.assert_allclose(_host(R.prod(x, 1)), numpy.prod(a, axis=1))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum(dim, device, rng):
    x = _x(device, rng)
    numpy.testing.assert_allclose(_host(R.cumsum(x, dim)), numpy.cumsum(_host(x), axis=dim))
    assert gradcheck(lambda t: R.cumsum(t, dim), [x], full_jacobian=False)
    assert gradcheck(lambda t: R.cumsum(t[:, ::2].T, dim), [_x(device, rng, (2, 4))])


def test_cumsum_bad_dim():
    with pytest.raises(IndexError, match="cumsum: dim 3 is out of range"):
        R.cumsum(gf.zeros((2, 2)), 3)


# ---- argmax/argmin, any/all ------------------------------------------------------------
@pytest.mark.parametrize("op, ref", [(R.argmax, numpy.argmax), (R.argmin, numpy.argmin)])
def test_argmax_argmin(op, ref, device, rng):
    x = _x(device, rng)
    a = _host(x)
    flat = op(x)
    assert flat.shape == () and flat.dtype == gf.int64 and flat.item() == ref(a)
    numpy.testing.assert_array_equal(op(x, 1).cpu().numpy(), ref(a, axis=1))
    assert op(x, -1, keepdim=True).shape == (3, 4, 1)
    assert not op(x, 0).requires_grad


def test_any_all(device):
    x = gf.tensor([[True, False], [True, True]], device=device)
    assert R.any(x).item() is True
    assert R.all(x).item() is False
    assert R.all(x, 1).tolist() == [False, True]
    assert R.any(x, (0, 1), keepdim=True).shape == (1, 1)
    assert R.any(gf.tensor([0.0, 2.0], device=device)).dtype == gf.bool


def test_reduction_errors():
    x = gf.zeros((2, 3))
    with pytest.raises(IndexError, match=r"sum: dim 2 is out of range"):
        R.sum(x, 2)
    with pytest.raises(ValueError, match=r"mean: dim \(1, -1\) names a dimension twice"):
        R.mean(x, (1, -1))
    with pytest.raises(TypeError, match=r"sum\(\) got unexpected keyword arguments \['dims'\]"):
        R.sum(x, dims=0)
    with pytest.raises(TypeError, match="logsumexp: expected a floating-point tensor"):
        R.logsumexp(gf.tensor([1, 2]))


def test_tensor_methods_route_to_reductions(rng):
    x = _x("cpu", rng)
    assert x.max(1, True).values.shape == (3, 1, 5)
    assert x.prod(dim=0).shape == (4, 5)
    assert x.logsumexp(-1).shape == (3, 4)
    assert x.argmax(2).shape == (3, 4)


# ---- PyTorch parity --------------------------------------------------------------------
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda t: R.var(t, 1, keepdim=True), lambda t: t.var(1, keepdim=True)),
        (lambda t: R.std(t, (0, 2), correction=0), lambda t: t.std((0, 2), correction=0)),
        (lambda t: R.max(t, 2).values, lambda t: t.max(2).values),
        (lambda t: R.min(t), lambda t: t.min()),
        (lambda t: R.logsumexp(t, (1, 2)), lambda t: t.logsumexp((1, 2))),
        (lambda t: R.prod(t, 1), lambda t: t.prod(1)),
        (lambda t: R.cumsum(t, 1), lambda t: t.cumsum(1)),
        (lambda t: R.amax(t, (0, 1)), lambda t: t.amax((0, 1))),
    ],
)
def test_torch_parity(ours, theirs, rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((3, 4, 5))
    a[0, 1, 2] = 0.0  # a zero for prod
    a[2, 3, 4] = a[2, 3, 0]  # a tie for amax/max
    x = _t(a, "cpu")
    tx = torch.tensor(a, requires_grad=True)
    out, tout = ours(x), theirs(tx)
    numpy.testing.assert_allclose(_host(out), tout.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(tout.shape)
    out.backward(gf.tensor(g))
    tout.backward(torch.tensor(g))
    numpy.testing.assert_allclose(_host(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
