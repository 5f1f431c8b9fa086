"""kernels/elementwise.cu through its launchers on the CPU emulation, against NumPy float64."""

import numpy as np
import pytest
from kernel_reference import TOLERANCES, activation, activation_grad, binary_grads

from gradflow.kernels import ACTIVATIONS, SAVES_OUTPUT, activation_bwd, activation_fwd, binary_bwd

# 1 and 7 leave most of a block idle, 255 all but one thread; 3000 needs three rounds of the
# grid-stride loop under the fixture's 4-block cap.
SIZES = [1, 7, 255, 3000]
PARAMS = {"negative_slope": 0.2, "alpha": 1.3, "beta": 2.0, "threshold": 3.0}


def _inputs(dtype, n, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    x[: min(n, 2)] = 0  # relu'(0), leaky and elu at the kink
    g = rng.standard_normal(n).astype(dtype)
    return x, g


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_fwd_matches_reference(emu, dtype, name, n):
    x, _ = _inputs(dtype, n)
    y = activation_fwd(name, x, backend=emu, **PARAMS)
    assert y.dtype == dtype and y.shape == x.shape
    expected = activation(name, x.astype(np.float64), PARAMS)
    np.testing.assert_allclose(y, expected, **TOLERANCES[dtype])


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_bwd_matches_reference(emu, dtype, name, n):
    x, g = _inputs(dtype, n)
    x64 = x.astype(np.float64)
    saved = activation(name, x64, PARAMS).astype(dtype) if name in SAVES_OUTPUT else x
    gx = activation_bwd(name, saved, g, backend=emu, **PARAMS)
    assert gx.dtype == dtype and gx.shape == g.shape
    if name in SAVES_OUTPUT:  # the kernel sees the rounded output: compare on that footing
        y = saved.astype(np.float64)
        expected = g * (y * (1 - y) if name == "sigmoid" else 1 - y * y)
    else:
        expected = g * activation_grad(name, x64, PARAMS)
    np.testing.assert_allclose(gx, expected, **TOLERANCES[dtype])


def test_activation_defaults_are_pytorchs(emu):
    x = np.array([-2.0, -0.5, 0.5, 30.0])
    g = np.ones(4)
    leaky = activation_bwd("leaky_relu", x, g, backend=emu)
    np.testing.assert_allclose(leaky, [0.01, 0.01, 1, 1])
    softplus = activation_bwd("softplus", x, g, backend=emu)  # beta=1, threshold=20
    np.testing.assert_allclose(softplus, [*(1 / (1 + np.exp(-x[:3]))), 1.0])


def test_activation_bwd_on_multidimensional_and_strided_input(emu, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 10)).astype(dtype)[:, ::2]  # not contiguous: copied
    g = rng.standard_normal((6, 5)).astype(dtype)
    gx = activation_bwd("silu", x, g, backend=emu)
    assert gx.shape == (6, 5)
    np.testing.assert_allclose(
        gx, g * activation_grad("silu", x.astype(np.float64)), **TOLERANCES[dtype]
    )


def test_activation_on_empty_array(emu):
    out = activation_bwd("relu", np.empty((0, 3)), np.empty((0, 3)), backend=emu)
    assert out.shape == (0, 3)


def test_extreme_inputs_stay_finite(emu, dtype):
    x = np.array([-1e4, -100.0, 100.0, 1e4], dtype=dtype)
    g = np.ones(4, dtype=dtype)
    for name in ("gelu_erf", "gelu_tanh", "silu", "softplus", "elu"):
        gx = activation_bwd(name, x, g, backend=emu)
        assert np.all(np.isfinite(gx)), name
        np.testing.assert_allclose(gx[[0, 3]], [0.0, 1.0], atol=1e-6, err_msg=name)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("op", ["mul", "div", "pow"])
def test_binary_bwd_matches_reference(emu, dtype, op, n):
    rng = np.random.default_rng(2)
    a = rng.uniform(0.5, 2.0, n).astype(dtype)
    b = rng.uniform(-2.0, 2.0, n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    out = np.power(a, b) if op == "pow" else None
    ga, gb = binary_bwd(op, a, b, g, out=out, backend=emu)
    ea, eb = binary_grads(op, a.astype(np.float64), b.astype(np.float64), g.astype(np.float64))
    np.testing.assert_allclose(ga, ea, **TOLERANCES[dtype])
    np.testing.assert_allclose(gb, eb, **TOLERANCES[dtype])


def test_pow_bwd_follows_pytorch_at_zero_base_and_exponent(emu):
    a = np.array([0.0, 0.0, 0.0, 2.0, -1.0])
    b = np.array([2.0, 0.0, -1.0, 0.0, 2.0])
    g = np.ones(5)
    ga, gb = binary_bwd("pow", a, b, g, backend=emu)  # out recomputed in the kernel
    np.testing.assert_array_equal(ga[:2], [0.0, 0.0])  # b == 0 -> 0, b = 2: 2 * 0^1 = 0
    assert ga[3] == 0.0 and ga[4] == -2.0
    assert gb[0] == 0.0 and gb[1] == 0.0  # a == 0, b >= 0 -> 0
    assert np.isnan(gb[2]) or np.isinf(gb[2])  # a == 0, b < 0: inf * log(0), as in PyTorch
    assert np.isnan(gb[4])  # log of a negative base


def test_binary_bwd_computes_only_what_is_needed(emu, dtype):
    a, b, g = (np.full(9, v, dtype=dtype) for v in (2.0, 4.0, 1.0))
    ga, gb = binary_bwd("div", a, b, g, need_a=False, backend=emu)
    assert ga is None
    np.testing.assert_allclose(gb, -2.0 / 16)
    ga, gb = binary_bwd("mul", a, b, g, need_b=False, backend=emu)
    assert gb is None
    np.testing.assert_allclose(ga, 4.0)
    assert binary_bwd("mul", a, b, g, need_a=False, need_b=False, backend=emu) == (None, None)


def _check_error(exc, pattern, fn, *args, **kwargs):
    with pytest.raises(exc, match=pattern):
        fn(*args, **kwargs)


def test_activation_errors(emu):
    x = np.zeros(4, np.float32)
    _check_error(
        ValueError,
        r"activation_bwd: unknown activation 'gelu'; expected one of",
        activation_bwd,
        "gelu",
        x,
        x,
        backend=emu,
    )
    _check_error(
        ValueError,
        r"activation_fwd: softplus needs a nonzero beta",
        activation_fwd,
        "softplus",
        x,
        beta=0,
        backend=emu,
    )
    _check_error(
        TypeError,
        r"activation_fwd: argument 'x' is a list; expected a numpy.ndarray",
        activation_fwd,
        "relu",
        [1.0],
        backend=emu,
    )
    _check_error(
        TypeError,
        r"argument 'x' has shape \(4,\) and dtype int64; expected float32 or",
        activation_fwd,
        "relu",
        np.zeros(4, np.int64),
        backend=emu,
    )
    _check_error(
        TypeError,
        r"argument 'grad_out' has shape \(4,\) and dtype float64; expected "
        r"dtype float32 like 'saved'",
        activation_bwd,
        "relu",
        x,
        x.astype(np.float64),
        backend=emu,
    )
    _check_error(
        ValueError,
        r"argument 'grad_out' has shape \(5,\) and dtype float32; expected "
        r"shape \(4,\) \(the shape of 'saved'\)",
        activation_bwd,
        "relu",
        x,
        np.zeros(5, np.float32),
        backend=emu,
    )


def test_binary_bwd_errors(emu):
    x = np.zeros(4)
    _check_error(
        ValueError,
        r"binary_bwd: unknown op 'add'; expected one of \('mul', 'div', 'pow'\)",
        binary_bwd,
        "add",
        x,
        x,
        x,
        backend=emu,
    )
    _check_error(
        ValueError,
        r"binary_bwd: 'out' is used only by op 'pow', not 'mul'",
        binary_bwd,
        "mul",
        x,
        x,
        x,
        out=x,
        backend=emu,
    )
    _check_error(
        ValueError,
        r"argument 'b' has shape \(1,\) and dtype float64; expected shape "
        r"\(4,\) \(the shape of 'a'; broadcast the operands first\)",
        binary_bwd,
        "mul",
        x,
        np.zeros(1),
        x,
        backend=emu,
    )
    _check_error(
        TypeError,
        r"binary_bwd: argument 'out' is a float; expected a numpy.ndarray",
        binary_bwd,
        "pow",
        x,
        x,
        x,
        out=1.0,
        backend=emu,
    )


def test_device_mismatch_is_reported(emu):
    class OnOtherDevice(np.ndarray):
        pass

    class TwoDevices(type(emu)):
        def device_of(self, x):
            return "cpu:1" if isinstance(x, OnOtherDevice) else "cpu"

    x = np.zeros(4)
    other = x.view(OnOtherDevice)
    _check_error(
        ValueError,
        r"activation_bwd: argument 'grad_out' is on device cpu:1 but "
        r"'saved' is on device cpu; move them to one device",
        activation_bwd,
        "relu",
        x,
        other,
        backend=TwoDevices(),
    )
