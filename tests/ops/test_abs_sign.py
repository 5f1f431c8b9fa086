"""abs on NumPy saves its sign by unary._sign_cpu (scale, clip, plus 0) instead of the slow
numpy.sign: the same bits for every non-NaN float (zeros of both signs, subnormals, the
largest values, infinities), NaN for NaN, and abs's gradient g * sign(x)."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops.unary import _sign_cpu


@pytest.mark.parametrize("dtype", [numpy.float16, numpy.float32, numpy.float64])
def test_sign_matches_numpy_sign_bitwise(dtype):
    info = numpy.finfo(dtype)
    special = [0.0, -0.0, numpy.inf, -numpy.inf, info.max, -info.max, info.tiny, -info.tiny,
               info.smallest_subnormal, -info.smallest_subnormal, 1.0, -1.0, 0.5, -3.0]  # fmt: skip
    x = numpy.concatenate(
        [
            numpy.array(special, dtype),
            numpy.random.default_rng(0).standard_normal(999).astype(dtype),
        ]
    )
    got = _sign_cpu(x)
    assert got.dtype == dtype
    assert got.tobytes() == numpy.sign(x).tobytes()
    assert numpy.isnan(_sign_cpu(numpy.array([numpy.nan, -numpy.nan], dtype))).all()
    zero_d = _sign_cpu(numpy.array(-2.0, dtype))
    assert isinstance(zero_d, numpy.ndarray) and zero_d.shape == () and zero_d == -1


@pytest.mark.parametrize("dtype", [gf.float32, gf.float64])
def test_abs_gradient_is_g_times_sign(dtype):
    x = numpy.array([-2.0, -0.0, 0.0, 3.0, 1e-40, -1e-320, numpy.inf], numpy.float64)
    t = gf.tensor(x, dtype=dtype, requires_grad=True)
    g = numpy.array([1.5, 2.0, -2.0, 0.25, 4.0, 5.0, 1.0])
    gf.abs(t).backward(gf.tensor(g, dtype=dtype))
    xs = t.detach().numpy()
    want = g.astype(xs.dtype) * numpy.sign(xs)  # the bits of before (numpy.sign)
    assert t.grad.numpy().tobytes() == want.tobytes()
