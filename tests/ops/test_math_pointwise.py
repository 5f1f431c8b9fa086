"""Pointwise math (gradflow/ops/unary.py, trigonometric.py, special.py, rounding.py,
arithmetic.py): values and gradients against torch, float64 gradcheck, erf/erfinv accuracy,
rounding, predicates and their errors."""

import math

import numpy
import pytest
from torch_comparison import assert_binary_matches_torch

import gradflow as gf
from gradflow.ops import unary
from gradflow.testing import gradcheck

torch = pytest.importorskip("torch")

# name: (gradflow op, torch op, input domain)
UNARY = {
    "tan": (gf.tan, torch.tan, (-1.2, 1.2)),
    "asin": (gf.asin, torch.asin, (-0.9, 0.9)),
    "acos": (gf.acos, torch.acos, (-0.9, 0.9)),
    "atan": (gf.atan, torch.atan, (-3, 3)),
    "sinh": (gf.sinh, torch.sinh, (-3, 3)),
    "cosh": (gf.cosh, torch.cosh, (-3, 3)),
    "asinh": (gf.asinh, torch.asinh, (-3, 3)),
    "acosh": (gf.acosh, torch.acosh, (1.1, 4)),
    "atanh": (gf.atanh, torch.atanh, (-0.9, 0.9)),
    "log2": (gf.log2, torch.log2, (0.1, 5)),
    "log10": (gf.log10, torch.log10, (0.1, 5)),
    "exp2": (gf.exp2, torch.exp2, (-3, 3)),
    "erf": (gf.erf, torch.erf, (-3, 3)),
    "erfc": (gf.erfc, torch.erfc, (-3, 5)),
    "erfinv": (gf.erfinv, torch.erfinv, (-0.95, 0.95)),
    "reciprocal": (gf.reciprocal, torch.reciprocal, (0.3, 3)),
    "square": (gf.square, torch.square, (-3, 3)),
    "frac": (gf.frac, torch.frac, (-3.3, 3.3)),
    "floor": (gf.floor, torch.floor, (-3.3, 3.3)),
    "ceil": (gf.ceil, torch.ceil, (-3.3, 3.3)),
    "trunc": (gf.trunc, torch.trunc, (-3.3, 3.3)),
    "round": (gf.round, torch.round, (-3.3, 3.3)),
}


def _uniform(rng, low, high, shape):
    return rng.uniform(low, high, shape)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_torch_values_and_gradients(name, device, rng):
    ours, theirs, (low, high) = UNARY[name]
    a = _uniform(rng, low, high, (3, 4))
    x = gf.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y, ty = ours(x), theirs(t)
    numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-12)
    y.backward(gf.ones_like(y))
    ty.backward(torch.ones_like(ty))
    numpy.testing.assert_allclose(x.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert gradcheck(ours, [x])


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_float32_keeps_dtype_and_matches_torch(name, rng):
    ours, theirs, (low, high) = UNARY[name]
    a = _uniform(rng, low, high, 8).astype(numpy.float32)
    y = ours(gf.tensor(a))
    assert y.dtype == gf.float32
    numpy.testing.assert_allclose(y.numpy(), theirs(torch.tensor(a)).numpy(), rtol=2e-6)


def test_erf_matches_math_erf_over_the_range():
    a = numpy.linspace(-7, 7, 20001)
    expected = numpy.array([math.erf(v) for v in a])
    got = gf.erf(gf.tensor(a)).numpy()
    numpy.testing.assert_allclose(got, expected, rtol=5e-16, atol=1e-300)
    got32 = gf.erf(gf.tensor(a, dtype=gf.float32)).numpy()
    numpy.testing.assert_allclose(got32, expected.astype(numpy.float32), rtol=1.2e-7)


def test_erfc_keeps_relative_accuracy_in_the_tail():
    a = numpy.linspace(0, 26, 2001)
    expected = numpy.array([math.erfc(v) for v in a])
    numpy.testing.assert_allclose(gf.erfc(gf.tensor(a)).numpy(), expected, rtol=2e-13)


def test_erf_special_values():
    got = gf.erf(gf.tensor([0.0, math.inf, -math.inf, math.nan])).tolist()
    assert got[:3] == [0.0, 1.0, -1.0] and math.isnan(got[3])


def test_erfinv_inverts_erf_to_the_tails():
    y = numpy.concatenate([numpy.linspace(-0.999, 0.999, 2001), 1 - numpy.logspace(-15, -1, 50)])
    expected = torch.erfinv(torch.tensor(y)).numpy()
    numpy.testing.assert_allclose(gf.erfinv(gf.tensor(y)).numpy(), expected, rtol=1e-13)


def test_erfinv_edges(device):
    got = gf.erfinv(gf.tensor([1.0, -1.0, 0.0, 1.5, -2.0], device=device)).tolist()
    assert got[:3] == [math.inf, -math.inf, 0.0]
    assert math.isnan(got[3]) and math.isnan(got[4])


def test_gelu_uses_the_new_erf():
    a = numpy.linspace(-5, 5, 101)
    expected = torch.nn.functional.gelu(torch.tensor(a)).numpy()
    numpy.testing.assert_allclose(
        unary.gelu(gf.tensor(a)).numpy(), expected, rtol=1e-14, atol=1e-15
    )


def test_rounding_has_zero_gradient_like_torch(device):
    x = gf.tensor([-1.5, 0.5, 2.5], device=device, requires_grad=True)
    for op in (gf.floor, gf.ceil, gf.trunc, gf.round):
        y = op(x)
        assert y.requires_grad
        (g,) = gf.grad(y.sum(), [x])
        assert g.tolist() == [0.0, 0.0, 0.0]
    assert repr(gf.floor(x).grad_fn) == "<FloorBackward>"


def test_round_halves_to_even_and_decimals():
    x = gf.tensor([0.5, 1.5, 2.5, -0.5, 0.125, 1.2345])
    assert gf.round(x).tolist() == [0.0, 2.0, 2.0, -0.0, 0.0, 1.0]
    expected = torch.round(torch.tensor(x.numpy()), decimals=2).numpy()
    numpy.testing.assert_allclose(gf.round(x, decimals=2).numpy(), expected)
    assert x.round(2).tolist() == gf.round(x, decimals=2).tolist()


def test_rounding_integer_tensor_is_a_copy():
    x = gf.tensor([1, -2])
    for op in (gf.floor, gf.ceil, gf.trunc, gf.round):
        y = op(x)
        assert y.dtype == gf.int64 and y.tolist() == [1, -2]
    with pytest.raises(RuntimeError, match="decimals=1 is not supported for integer tensors"):
        gf.round(x, decimals=1)


def test_integer_inputs_give_float_results():
    assert gf.reciprocal(gf.tensor([2])).tolist() == [0.5]
    assert gf.exp2(gf.tensor([3])).dtype == gf.float32
    assert gf.square(gf.tensor([3])).dtype == gf.int64
    assert gf.square(gf.tensor([True])).dtype == gf.int64


def test_frac_rejects_integers():
    with pytest.raises(NotImplementedError, match="frac: not implemented for int64"):
        gf.frac(gf.tensor([1, 2]))


def test_rounding_rejects_non_tensors():
    with pytest.raises(TypeError, match="floor: expected a Tensor, got list"):
        gf.floor([1.5])


# ---- binary and ternary ------------------------------------------------------------------
BINARY = {
    "atan2": (gf.atan2, torch.atan2),
    "logaddexp": (gf.logaddexp, torch.logaddexp),
    "remainder": (gf.remainder, torch.remainder),
    "fmod": (gf.fmod, torch.fmod),
    "float_power": (gf.float_power, torch.float_power),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_matches_torch_with_broadcasting(name, device, rng):
    ours, theirs = BINARY[name]
    a = rng.uniform(0.5, 4, (3, 4)) * rng.choice([-1, 1], (3, 4))
    b = rng.uniform(0.7, 2, (4,))
    if name == "float_power":
        a = numpy.abs(a)
    assert_binary_matches_torch(ours, theirs, a, b, device)


def test_binary_dtypes_follow_torch():
    i = gf.tensor([1, 2])
    assert gf.atan2(i, i).dtype == gf.float32
    assert gf.float_power(i, 2).dtype == gf.float64
    assert gf.remainder(gf.tensor([5, -5]), 3).tolist() == [2, 1]
    assert gf.fmod(gf.tensor([5, -5]), 3).tolist() == [2, -2]
    assert gf.arctan2 is gf.atan2
    assert gf.true_divide(i, 2).tolist() == [0.5, 1.0]
    assert gf.floor_divide(gf.tensor([7, -7]), 2).tolist() == [3, -4]


def test_integer_fmod_by_zero_raises():
    with pytest.raises(ZeroDivisionError, match="fmod: integer division by zero"):
        gf.fmod(gf.tensor([1, 2]), 0)


def test_lerp_addcmul_addcdiv_match_torch(device, rng):
    a, b, c = (rng.uniform(0.5, 2, (2, 3)) for _ in range(3))
    w = rng.uniform(0, 1, (3,))
    xs = [gf.tensor(v, device=device, requires_grad=True) for v in (a, b, c, w)]
    ts = [torch.tensor(v, requires_grad=True) for v in (a, b, c, w)]
    cases = [
        (lambda x, y, z, u: gf.lerp(x, y, u), lambda x, y, z, u: torch.lerp(x, y, u)),
        (lambda x, y, z, u: gf.lerp(x, y, 0.3), lambda x, y, z, u: torch.lerp(x, y, 0.3)),
        (
            lambda x, y, z, u: gf.addcmul(x, y, z, value=0.5),
            lambda x, y, z, u: torch.addcmul(x, y, z, value=0.5),
        ),
        (
            lambda x, y, z, u: gf.addcdiv(x, y, z, value=-2),
            lambda x, y, z, u: torch.addcdiv(x, y, z, value=-2),
        ),
    ]
    for ours, theirs in cases:
        y, ty = ours(*xs), theirs(*ts)
        numpy.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-12)
        assert gradcheck(ours, xs)


def test_lerp_and_addcdiv_errors():
    with pytest.raises(RuntimeError, match="lerp: expected floating-point tensors, got int64"):
        gf.lerp(gf.tensor([1]), gf.tensor([3]), 0.5)
    with pytest.raises(RuntimeError, match="addcdiv: integer division with addcdiv"):
        gf.addcdiv(gf.tensor([1]), gf.tensor([1]), gf.tensor([2]))


def test_clamp_min_max(device):
    x = gf.tensor([-2.0, 0.5, 3.0], device=device, requires_grad=True)
    assert gf.clamp_min(x, 0).tolist() == [0.0, 0.5, 3.0]
    assert x.clamp_max(1).tolist() == [-2.0, 0.5, 1.0]
    (g,) = gf.grad(gf.clamp_min(x, 0).sum(), [x])
    assert g.tolist() == [0.0, 1.0, 1.0]


def test_clamp_with_tensor_bounds_matches_torch(device, rng):
    a = numpy.array([0.0, 1.0, 2.0, -3.0])
    lo, hi = numpy.array([1.0, 1.0, 1.0, -4.0]), numpy.array(1.5)
    x, t = (gf.tensor(a, device=device, requires_grad=True), torch.tensor(a, requires_grad=True))
    low = gf.tensor(lo, device=device, requires_grad=True)
    tlow = torch.tensor(lo, requires_grad=True)
    y = gf.clamp(x, min=low, max=gf.tensor(hi, device=device))
    ty = torch.clamp(t, min=tlow, max=torch.tensor(hi))
    assert y.tolist() == ty.tolist()
    y.sum().backward()
    ty.sum().backward()
    assert x.grad.tolist() == t.grad.tolist() and low.grad.tolist() == tlow.grad.tolist()
    assert gf.clamp(gf.tensor([1, 5]), min=gf.tensor([2, 2])).tolist() == [2, 5]


def test_isclose_allclose_and_predicates(device):
    a = gf.tensor([1.0, math.nan, math.inf, -math.inf, 2.0], device=device)
    b = gf.tensor([1.0 + 1e-9, math.nan, math.inf, -math.inf, 2.1], device=device)
    assert gf.isclose(a, b).tolist() == [True, False, True, True, False]
    assert gf.isclose(a, b, equal_nan=True).tolist() == [True, True, True, True, False]
    assert a.isclose(b, atol=0.2, equal_nan=True).tolist() == [True] * 5
    ok = gf.allclose(a[:1], b[:1])
    assert ok is True and gf.allclose(a, b) is False
    assert gf.isinf(a).tolist() == [False, False, True, True, False]
    assert gf.isposinf(a).tolist() == [False, False, True, False, False]
    assert a.isneginf().tolist() == [False, False, False, True, False]
    assert a.isnan().tolist() == [False, True, False, False, False]
    assert a.isfinite().tolist() == [True, False, False, False, True]
    assert gf.isinf(gf.tensor([1, 2])).tolist() == [False, False]
    assert gf.isposinf(gf.tensor([1])).tolist() == [False]


def test_isclose_rejects_mixed_dtypes():
    with pytest.raises(RuntimeError, match="isclose: float32 did not match float64"):
        gf.isclose(gf.ones(2), gf.ones(2, dtype=gf.float64))


def test_methods_match_functions():
    x = gf.tensor([0.3, 0.6])
    for name in ("tan", "asin", "arcsin", "erf", "erfinv", "exp2", "log2", "frac", "square"):
        assert getattr(x, name)().tolist() == getattr(gf, name)(x).tolist(), name
    assert x.atan2(x).tolist() == gf.atan2(x, x).tolist()
    assert x.fmod(0.25).tolist() == gf.fmod(x, 0.25).tolist()
    assert x.lerp(gf.ones(2), 0.5).tolist() == gf.lerp(x, gf.ones(2), 0.5).tolist()


def test_nan_and_inf_answers_are_silent_as_in_torch():
    """log(0), 0/0 and softmax over -inf are answers (PyTorch never warns); the user's own
    NumPy code still warns. Run as a user runs it: a fresh interpreter, warnings shown."""
    import subprocess
    import sys

    program = (
        "import math, numpy, gradflow as gf\n"
        "assert gf.tril(gf.ones(3, 3)).log()[0, 1].item() == -math.inf\n"
        "assert math.isnan((gf.zeros(1) / gf.zeros(1)).item())\n"
        "assert math.isnan(gf.softmax(gf.full((2,), -math.inf), 0)[0].item())\n"
        "print('gradflow done', flush=True)\n"
        "numpy.log(numpy.zeros(1))\n"
    )
    result = subprocess.run([sys.executable, "-W", "default", "-c", program],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "gradflow done" in result.stdout
    warned = [line for line in result.stderr.splitlines() if "RuntimeWarning" in line]
    assert len(warned) == 1 and warned[0].startswith("<string>:6")  # the user's numpy.log
