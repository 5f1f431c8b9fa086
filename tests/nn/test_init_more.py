"""nn.init beyond the basics: calculate_gain's whole table, orthogonal_, trunc_normal_,
sparse_, dirac_, eye_, the kaiming modes and xavier_normal_, on every device; reproducible
under manual_seed and compared with torch's formulas and results."""

import math

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.nn import init

NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d", "sigmoid", "tanh", "relu",
                  "leaky_relu", "selu"]  # fmt: skip


def _np(t):
    return t.detach().cpu().numpy()


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_calculate_gain_matches_torch_for_every_nonlinearity(nonlinearity):
    torch = pytest.importorskip("torch")
    assert init.calculate_gain(nonlinearity) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity)
    )


def test_calculate_gain_leaky_relu_slope():
    torch = pytest.importorskip("torch")
    for slope in (0, 0.2, 3):
        assert init.calculate_gain("leaky_relu", slope) == pytest.approx(
            torch.nn.init.calculate_gain("leaky_relu", slope)
        )
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="negative_slope 0.1 not a valid number"):
        init.calculate_gain("leaky_relu", "0.1")


@pytest.mark.parametrize("shape", [(3, 5), (6, 2, 2), (4, 4)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape, device):
    w = gf.empty(*shape, device=device, dtype=gf.float64)
    assert init.orthogonal_(w, gain=2.0) is w
    flat = _np(w).reshape(shape[0], -1)
    small = min(flat.shape)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(gram, 4 * np.eye(small), atol=1e-12)


def test_orthogonal_is_reproducible_and_needs_two_dims():
    gf.manual_seed(3)
    a = _np(init.orthogonal_(gf.empty(4, 3)))
    gf.manual_seed(3)
    b = _np(init.orthogonal_(gf.empty(4, 3)))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        init.orthogonal_(gf.empty(3))


def test_trunc_normal_stays_in_bounds_with_the_truncated_moments(device):
    t = gf.empty(100_000, device=device, dtype=gf.float64)
    mean, std, a, b = 1.0, 2.0, -1.0, 4.0
    assert init.trunc_normal_(t, mean, std, a, b) is t
    values = _np(t)
    assert values.min() >= a and values.max() <= b
    # The moments of the truncated normal, from the standard normal's pdf and cdf.
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    expected_mean = mean + std * (pdf(alpha) - pdf(beta)) / z
    expected_var = std**2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z
                             - ((pdf(alpha) - pdf(beta)) / z) ** 2)  # fmt: skip
    assert values.mean() == pytest.approx(expected_mean, abs=0.02)
    assert values.var() == pytest.approx(expected_var, rel=0.02)


def test_trunc_normal_far_bounds_warn_and_still_fill():
    t = gf.empty(1000)
    with pytest.warns(UserWarning, match="mean is more than 2 std from \\[a, b\\]"):
        init.trunc_normal_(t, mean=0.0, std=1.0, a=5.0, b=6.0)
    values = _np(t)
    assert np.isfinite(values).all() and values.min() >= 5.0 and values.max() <= 6.0


def test_sparse_zeroes_a_fraction_of_each_column(device):
    t = gf.empty(10, 40, device=device, dtype=gf.float64)
    assert init.sparse_(t, sparsity=0.25, std=0.5) is t
    values = _np(t)
    assert ((values == 0).sum(axis=0) == math.ceil(0.25 * 10)).all()
    assert values[values != 0].std() == pytest.approx(0.5, rel=0.15)
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.sparse_(gf.empty(2, 2, 2), 0.1)


@pytest.mark.parametrize("shape,groups", [((4, 2, 3), 1), ((4, 2, 3, 3), 2), ((6, 3, 1, 3, 3), 3),
                                          ((2, 5, 3), 1)])  # fmt: skip
def test_dirac_matches_torch(shape, groups, device):
    torch = pytest.importorskip("torch")
    t = gf.empty(*shape, device=device)
    assert init.dirac_(t, groups) is t
    expected = torch.nn.init.dirac_(torch.empty(*shape), groups).numpy()
    np.testing.assert_array_equal(_np(t), expected)


def test_dirac_convolution_keeps_the_input():
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
    init.dirac_(conv.weight)
    x = gf.randn(2, 3, 5, 5)
    np.testing.assert_allclose(_np(conv(x)), _np(x), rtol=1e-6)


def test_dirac_and_eye_errors():
    with pytest.raises(ValueError, match="Only tensors with 3, 4, or 5 dimensions are supported"):
        init.dirac_(gf.empty(3, 3))
    with pytest.raises(ValueError, match="dim 0 must be divisible by groups"):
        init.dirac_(gf.empty(3, 2, 3), groups=2)
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(gf.empty(2, 2, 2))


def test_eye_matches_torch(device):
    torch = pytest.importorskip("torch")
    t = gf.empty(3, 5, device=device)
    assert init.eye_(t) is t
    np.testing.assert_array_equal(_np(t), torch.nn.init.eye_(torch.empty(3, 5)).numpy())


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity", ["relu", "leaky_relu", "tanh", "linear"])
def test_kaiming_spread_follows_mode_and_nonlinearity(mode, nonlinearity):
    shape = (200, 400)
    fan = shape[1] if mode == "fan_in" else shape[0]
    gain = init.calculate_gain(nonlinearity, 0.2 if nonlinearity == "leaky_relu" else None)
    std = gain / math.sqrt(fan)
    normal = _np(init.kaiming_normal_(gf.empty(*shape), 0.2, mode, nonlinearity))
    assert normal.std() == pytest.approx(std, rel=0.03)
    uniform = _np(init.kaiming_uniform_(gf.empty(*shape), 0.2, mode, nonlinearity))
    assert np.abs(uniform).max() <= std * math.sqrt(3) + 1e-7
    assert uniform.std() == pytest.approx(std, rel=0.03)


def test_kaiming_of_an_empty_tensor_warns_and_returns_it():
    t = gf.empty(0, 3)
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert init.kaiming_uniform_(t) is t
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert init.kaiming_normal_(t) is t


def test_xavier_normal_spread():
    t = gf.empty(300, 100)
    assert init.xavier_normal_(t, gain=2.0) is t
    assert _np(t).std() == pytest.approx(2.0 * math.sqrt(2.0 / 400), rel=0.03)


def test_basic_fills_return_the_tensor_and_record_no_graph():
    p = nn.Parameter(gf.empty(2, 3))
    for fill in (init.uniform_, init.normal_, init.zeros_, init.ones_, init.eye_,
                 init.orthogonal_, init.xavier_normal_, init.trunc_normal_):  # fmt: skip
        assert fill(p) is p
        assert p.grad_fn is None and p.requires_grad and p.is_leaf
    assert init.constant_(p, 0.5) is p and (_np(p) == 0.5).all()


def test_new_initializers_draw_from_a_given_generator():
    for fill in (init.orthogonal_, init.trunc_normal_, lambda t, generator: init.sparse_(
            t, 0.5, generator=generator)):  # fmt: skip
        a = fill(gf.empty(4, 4), generator=gf.Generator().manual_seed(5))
        b = fill(gf.empty(4, 4), generator=gf.Generator().manual_seed(5))
        np.testing.assert_array_equal(_np(a), _np(b))


def test_private_fan_helpers_have_torchs_names():
    w = gf.empty(4, 3, 2)
    assert init._calculate_fan_in_and_fan_out(w) == (6, 8)
    assert init._calculate_correct_fan(w, "fan_out") == 8
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'avg'"):
        init._calculate_correct_fan(w, "avg")
