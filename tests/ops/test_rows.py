"""ops/_rows.py: row, column and channel reductions on every layout they special-case (dense,
broadcast with stride 0, strided), against float64 sums; and the normalizations that use them
give the same gradients for a broadcast upstream gradient (sum().backward()'s) as for the
same values dense."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops._rows import channel_sums, column_sums, row_dots, row_sums

rng = numpy.random.default_rng(0)


def _layouts(shape):
    dense = rng.standard_normal(shape).astype(numpy.float32)
    return {
        "dense": dense,
        "broadcast": numpy.broadcast_to(numpy.float32(0.3), shape),
        "row broadcast": numpy.broadcast_to(dense[:1], shape),
        "column broadcast": numpy.broadcast_to(dense[:, :1], shape),
        "strided": rng.standard_normal((shape[0], 2 * shape[1])).astype(numpy.float32)[:, ::2],
        "empty rows": numpy.zeros((shape[0], 0), numpy.float32),
    }


@pytest.mark.parametrize("layout", list(_layouts((2, 2))))
def test_row_and_column_reductions_match_float64(layout):
    a = _layouts((37, 50))[layout]
    b = rng.standard_normal(a.shape).astype(numpy.float32)
    wide = a.astype(numpy.float64)
    for got, want in [
        (row_sums(a), wide.sum(1)),
        (column_sums(a), wide.sum(0)),
        (row_dots(a, b), (wide * b).sum(1)),
        (row_dots(b, a), (wide * b).sum(1)),
    ]:
        assert got.dtype == numpy.float32
        numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride0", [(0, 0, 0), (4, 0, 0), "dense"])
def test_channel_sums_match_float64(stride0):
    shape = (3, 5, 7)
    if stride0 == "dense":
        a = rng.standard_normal(shape).astype(numpy.float32)
    else:
        base = rng.standard_normal((1, 5, 1)).astype(numpy.float32)
        a = numpy.broadcast_to(base, shape)
    numpy.testing.assert_allclose(
        channel_sums(a), a.astype(numpy.float64).sum((0, 2)), rtol=1e-5, atol=1e-5
    )


def _grads(fn, x, params, g):
    x = gf.tensor(x, requires_grad=True)
    params = [gf.tensor(p, requires_grad=True) for p in params]
    fn(x, *params).backward(g)
    return [x.grad.numpy()] + [p.grad.numpy() for p in params]


@pytest.mark.parametrize(
    "fn, shape, nparams",
    [
        (lambda x: gf.nn.functional.layer_norm(x, (16,)), (6, 16), 0),
        (lambda x, w, b: gf.nn.functional.layer_norm(x, (16,), w, b), (6, 16), 2),
        (lambda x: gf.nn.functional.group_norm(x, 2), (3, 4, 5), 0),
        (lambda x, w, b: gf.nn.functional.group_norm(x, 2, w, b), (3, 4, 5), 2),
        (lambda x, w, b: gf.nn.functional.batch_norm(x, None, None, w, b, True), (3, 4, 5), 2),
    ],
)
def test_norm_gradients_same_for_a_broadcast_upstream_gradient(fn, shape, nparams):
    x = rng.standard_normal(shape).astype(numpy.float32)
    param_len = shape[-1] if len(shape) == 2 else shape[1]
    params = [rng.standard_normal(param_len).astype(numpy.float32) for _ in range(nparams)]
    value = gf.tensor(numpy.float32(0.7))
    want = _grads(fn, x, params, gf.tensor(numpy.full(shape, 0.7, numpy.float32)))
    # sum().backward() hands the op a broadcast gradient (stride 0): the same gradients
    got = _grads(lambda *t: fn(*t).sum() * value, x, params, None)
    for a, b in zip(got, want, strict=True):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("affine", [False, True])
def test_group_norm_gradients_for_a_gradient_constant_along_space(affine):
    """sum over the spatial dim, then weights per (sample, channel): the op sees a gradient
    that is one value per (sample, channel), broadcast along L (stride 0 there only)."""
    shape = (3, 4, 5)
    x = rng.standard_normal(shape).astype(numpy.float32)
    params = [rng.standard_normal(4).astype(numpy.float32) for _ in range(2 if affine else 0)]
    coeffs = rng.standard_normal(shape[:2] + (1,)).astype(numpy.float32)

    def fn(x, *p):
        return gf.nn.functional.group_norm(x, 2, *p)

    dense = gf.tensor(numpy.broadcast_to(coeffs, shape).copy())
    want = _grads(fn, x, params, dense)
    got = _grads(lambda *t: (fn(*t).sum(-1, keepdim=True) * gf.tensor(coeffs)).sum(), x, params,
                 None)  # fmt: skip
    for a, b in zip(got, want, strict=True):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_row_dots_of_a_broadcast_row_is_the_value_times_the_sum():
    """A row of one value (sum().backward()'s gradient) dotted with b: that value times b's
    row sum, as the dense product gives."""
    b = numpy.random.default_rng(5).standard_normal((4, 7))
    a = numpy.broadcast_to(numpy.array([[1.5], [-2.0], [0.0], [3.0]]), b.shape)
    assert a.strides[1] == 0
    numpy.testing.assert_allclose(row_dots(a, b), (numpy.ascontiguousarray(a) * b).sum(1),
                                  rtol=1e-12, atol=1e-12)  # fmt: skip
