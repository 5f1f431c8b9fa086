"""Arithmetic ops: values against NumPy, gradcheck with broadcasting, scalars, errors."""

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradflow as gf
from gradflow.testing import gradcheck


def _t(shape, device, rng, positive=False, requires_grad=True):
    a = rng.standard_normal(shape)
    if positive:
        a = numpy.abs(a) + 0.5
    return gf.tensor(a, dtype=gf.float64, device=device, requires_grad=requires_grad)


BINARY = {
    "add": (lambda a, b: a + b, numpy.add),
    "sub": (lambda a, b: a - b, numpy.subtract),
    "mul": (lambda a, b: a * b, numpy.multiply),
    "div": (lambda a, b: a / b, numpy.divide),
    "pow": (lambda a, b: a**b, numpy.power),
    "maximum": (gf.maximum, numpy.maximum),
    "minimum": (gf.minimum, numpy.minimum),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5))])
def test_binary_gradcheck_with_broadcasting(name, shapes, device, rng):
    op, ref = BINARY[name]
    positive = name in ("pow", "div")
    a = _t(shapes[0], device, rng, positive=positive)
    b = _t(shapes[1], device, rng, positive=positive)
    out = op(a, b)
    numpy.testing.assert_allclose(
        out.cpu().detach().numpy(), ref(a.cpu().detach().numpy(), b.cpu().detach().numpy())
    )
    assert gradcheck(op, [a, b])


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
def test_python_scalars_on_either_side(name, device, rng):
    op, ref = BINARY[name]
    a = _t((3,), device, rng, positive=True)
    assert gradcheck(lambda x: op(x, 2.5), [a])
    assert gradcheck(lambda x: op(1.5, x), [a])
    assert op(a.float(), 2.0).dtype == gf.float32  # a Python float keeps float32


def test_pow_tensor_exponent_at_zero_base_has_finite_grad():
    base = gf.tensor([0.0, 2.0], dtype=gf.float64, requires_grad=True)
    exp = gf.tensor([2.0, 3.0], dtype=gf.float64, requires_grad=True)
    (base**exp).sum().backward()
    assert numpy.isfinite(exp.grad.numpy()).all()
    numpy.testing.assert_allclose(exp.grad.numpy(), [0.0, 8.0 * numpy.log(2.0)])


def test_maximum_ties_split_gradient():
    a = gf.tensor([1.0, 2.0], requires_grad=True)
    b = gf.tensor([1.0, 3.0], requires_grad=True)
    gf.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0] and b.grad.tolist() == [0.5, 1.0]


def test_neg_where_clip(device, rng):
    a = _t((4, 3), device, rng)
    b = _t((4, 3), device, rng)
    assert gradcheck(lambda x: -x, [a])
    cond = a.detach() > 0
    assert gradcheck(lambda x, y: gf.where(cond, x, y), [a, b])
    assert gradcheck(lambda x: gf.where(cond, x, 0.0), [a])
    assert gradcheck(lambda x: x.clamp(-0.5, 0.5), [a])
    assert gradcheck(lambda x: gf.clip(x, min=0.1), [a])


def test_where_needs_bool_condition():
    with pytest.raises(TypeError, match="condition must be a bool tensor"):
        gf.where(gf.ones(2), gf.ones(2), gf.zeros(2))


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="at least one of min and max"):
        gf.ones(2).clamp()


def test_comparisons_and_logic_have_no_grad(device):
    a = gf.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    m = (a > 1.5) & (a <= 3.0)
    assert m.dtype == gf.bool and not m.requires_grad
    assert m.tolist() == [False, True, True]
    assert (~m).tolist() == [True, False, False]
    assert (a == 2.0).tolist() == [False, True, False]
    assert (a != 2.0).tolist() == [True, False, True]


def test_integer_and_float_promotion_follows_pytorch():
    i = gf.tensor([1, 2])
    assert (i * 0.5).dtype == gf.float32
    assert (i / 2).dtype == gf.float32
    assert (i + gf.ones(2, dtype=gf.float64)).dtype == gf.float64
    assert (i + 1).dtype == gf.int64


def test_broadcast_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\(2,3\).*\(4,\)|shapes"):
        gf.ones(2, 3) + gf.ones(4)


@settings(max_examples=25, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_broadcast_shapes_property(shapes):
    rng = numpy.random.default_rng(1)
    a = gf.tensor(rng.standard_normal(shapes.input_shapes[0]), requires_grad=True)
    b = gf.tensor(rng.standard_normal(shapes.input_shapes[1]), requires_grad=True)
    assert gradcheck(lambda x, y: x * y + x, [a, b], full_jacobian=False)
    out = a * b
    assert out.shape == shapes.result_shape
    out.sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


@pytest.mark.parametrize("name", ["add", "mul", "div"])
def test_non_contiguous_inputs(name, rng):
    op, ref = BINARY[name]
    base = gf.tensor(rng.standard_normal((6, 4)) + 3, requires_grad=True)
    a = base.T  # a transposed view
    b = gf.tensor(rng.standard_normal((4, 6))[:, ::-1].copy() + 3, requires_grad=True)
    assert gradcheck(lambda x, y: op(x.T, y), [base, b])
    assert op(a, b).shape == (4, 6)


@settings(max_examples=20, deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(0.5, 3.0))
def test_scalar_values_match_python(x, y):
    t = gf.tensor([x], dtype=gf.float64)
    assert (t * y).item() == pytest.approx(x * y)
    assert (t - y).item() == pytest.approx(x - y)


def test_torch_parity_binary():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(3)
    a_np, b_np = rng.standard_normal((3, 4)), rng.standard_normal((4,)) ** 2 + 0.5
    for name in ("add", "sub", "mul", "div", "maximum"):
        op, _ = BINARY[name]
        a, b = gf.tensor(a_np, requires_grad=True), gf.tensor(b_np, requires_grad=True)
        ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
        (op(a, b) ** 2).sum().backward()
        tout = {
            "add": ta + tb,
            "sub": ta - tb,
            "mul": ta * tb,
            "div": ta / tb,
            "maximum": torch.maximum(ta, tb),
        }[name]
        (tout**2).sum().backward()
        numpy.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-10)
        numpy.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-10)


def test_a_0d_tensor_with_a_python_number_differentiates_on_every_device(device):
    # On cuda, a 0-d array and a Python number once looked like a same-shape pair and went to
    # the two-array backward kernel with an int argument.
    x = gf.tensor(2.0, device=device, requires_grad=True)
    for y in (x * 3, 3 * x, x / 4, 4 / x):
        y.backward()
    assert abs(float(x.grad) - (3 + 3 + 0.25 - 1.0)) < 1e-6
    v = gf.ones(3, device=device, requires_grad=True)
    (100 * v[0]).backward()
    assert v.grad.tolist() == [100.0, 0.0, 0.0]
