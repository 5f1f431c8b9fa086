"""In-place pointwise methods (Tensor._apply_ in gradflow/tensor.py): values, version bumps,
recorded gradients through the in-place op, dtype rules and the leaf check, against torch."""

import numpy
import pytest

import gradflow as gf
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")

# method: (args, input domain)
INPLACE = {
    "exp_": ((), (-1, 1)),
    "log_": ((), (0.5, 2)),
    "log1p_": ((), (0.5, 2)),
    "expm1_": ((), (-1, 1)),
    "sqrt_": ((), (0.5, 2)),
    "rsqrt_": ((), (0.5, 2)),
    "sigmoid_": ((), (-2, 2)),
    "tanh_": ((), (-2, 2)),
    "relu_": ((), (-2, 2)),
    "abs_": ((), (-2, 2)),
    "neg_": ((), (-2, 2)),
    "sin_": ((), (-2, 2)),
    "cos_": ((), (-2, 2)),
    "tan_": ((), (-1, 1)),
    "reciprocal_": ((), (0.5, 2)),
    "square_": ((), (-2, 2)),
    "erf_": ((), (-2, 2)),
    "erfinv_": ((), (-0.9, 0.9)),
    "floor_": ((), (-2, 2)),
    "ceil_": ((), (-2, 2)),
    "trunc_": ((), (-2, 2)),
    "round_": ((), (-2, 2)),
    "frac_": ((), (-2, 2)),
    "pow_": ((3,), (-2, 2)),
    "clamp_min_": ((0.1,), (-2, 2)),
    "clamp_max_": ((0.1,), (-2, 2)),
    "atan2_": ((0.7,), (-2, 2)),
    "fmod_": ((0.7,), (-2, 2)),
    "remainder_": ((0.7,), (-2, 2)),
    "lerp_": ((2.0, 0.25), (-2, 2)),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_matches_torch_and_bumps_version(name, device, rng):
    args, (low, high) = INPLACE[name]
    a = rng.uniform(low, high, (2, 3))
    x = gf.tensor(a, device=device)
    t = torch.tensor(a)
    targs = args
    if name in ("lerp_", "atan2_"):  # torch takes a tensor there
        targs = (torch.tensor(args[0], dtype=torch.float64), *args[1:])
    before = x._version
    out = getattr(x, name)(*args)
    getattr(t, name)(*targs)
    assert out is x and x._version > before
    numpy.testing.assert_allclose(x.cpu().numpy(), t.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", ["exp_", "sigmoid_", "pow_", "lerp_", "erfinv_", "floor_"])
def test_recorded_inplace_has_torch_gradients(name, device, rng):
    args, (low, high) = INPLACE[name]
    a = rng.uniform(low, high, (2, 3))
    x = gf.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y = x * 1.0
    getattr(y, name)(*args)
    ty = t * 1.0
    getattr(ty, name)(
        *(args if name != "lerp_" else (torch.tensor(2.0, dtype=torch.float64), 0.25))
    )
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-12)

    def fn(v):
        w = v * 1.0
        return getattr(w, name)(*args)

    assert gradcheck(fn, [x.detach().requires_grad_()])


def test_inplace_with_a_grad_operand_records(rng):
    a, b = rng.uniform(0.5, 2, 3), rng.uniform(0.5, 2, 3)
    end = gf.tensor(b, requires_grad=True)
    x = gf.tensor(a)
    x.lerp_(end, 0.25)
    assert x.requires_grad
    x.sum().backward()
    assert end.grad.tolist() == [0.25, 0.25, 0.25]
    x = gf.tensor(a)
    x.addcmul_(end, end, value=2)
    numpy.testing.assert_allclose(x.detach().numpy(), a + 2 * b * b)


def test_inplace_on_a_leaf_requiring_grad_raises():
    w = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="exp_: a leaf tensor that requires grad"):
        w.exp_()
    with gf.no_grad():
        w.exp_()
    assert w.requires_grad


def test_inplace_result_must_fit_the_dtype():
    x = gf.tensor([1, 4])
    with pytest.raises(
        RuntimeError, match="sqrt_: result type float32 can't be cast to the desired output"
    ):
        x.sqrt_()
    x.abs_()
    x.neg_()
    assert x.tolist() == [-1, -4] and x.dtype == gf.int64
    f = gf.tensor([1.5], dtype=gf.float32)
    f.pow_(gf.tensor([2.0], dtype=gf.float64))
    assert f.dtype == gf.float32 and f.tolist() == [2.25]


def test_inplace_breaks_a_saved_input():
    x = gf.ones(3, requires_grad=True)
    y = x * 1.0
    z = y.exp()  # saves its output
    w = y * y  # saves y
    y.sin_()
    z.sum().backward()  # z's saved output is another array: fine
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        w.sum().backward()


def test_inplace_method_names_and_docs():
    assert gf.Tensor.exp_.__name__ == "exp_"
    assert "x.exp(...)" in gf.Tensor.exp_.__doc__
    assert gf.Tensor.arcsin_ is gf.Tensor.asin_


@pytest.mark.parametrize(
    "shape,wrap",
    [((3, 3), False), ((7, 3), True), ((7, 3), False), ((3, 5), True), ((2, 2, 2), False)],
)
def test_fill_diagonal_matches_torch(shape, wrap, device):
    torch = pytest.importorskip("torch")
    x = gf.zeros(*shape, device=device)
    assert x.fill_diagonal_(1.5, wrap=wrap) is x
    expected = torch.zeros(*shape).fill_diagonal_(1.5, wrap=wrap)
    numpy.testing.assert_array_equal(numpy.asarray(x.cpu().tolist()), expected.numpy())


def test_fill_diagonal_records_its_gradient_and_checks_shapes(device):
    x = gf.ones(3, 3, device=device, requires_grad=True)
    y = x * 2
    y.fill_diagonal_(float("-inf"))
    y.masked_fill(y == float("-inf"), 0.0).sum().backward()
    assert x.grad.tolist() == [[0.0, 2.0, 2.0], [2.0, 0.0, 2.0], [2.0, 2.0, 0.0]]
    with pytest.raises(RuntimeError, match="equal length"):
        gf.zeros(2, 3, 3, device=device).fill_diagonal_(1)
    with pytest.raises(RuntimeError, match="larger than 1"):
        gf.zeros(3, device=device).fill_diagonal_(1)
