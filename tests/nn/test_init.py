"""Tests for nn.init: the gain table, fan computations, each initializer's distribution (seeded
samples), in-place filling and reproducibility under gradflow.manual_seed."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow.nn import init
from gradflow.random import Generator

NONLINEARITIES = [
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "selu",
    "leaky_relu",
]


def as_numpy(t):
    return t.detach().cpu().numpy()


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("selu") == 0.75
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", 1) == 1.0
    with pytest.raises(ValueError, match=r"unsupported nonlinearity 'swish'; expected one of"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_calculate_gain_matches_torch(nonlinearity):
    torch = pytest.importorskip("torch")
    ours = init.calculate_gain(nonlinearity)
    assert ours == pytest.approx(torch.nn.init.calculate_gain(nonlinearity), rel=1e-12)
    if nonlinearity == "leaky_relu":
        for slope in (0.0, 0.2, math.sqrt(5)):
            expected = torch.nn.init.calculate_gain(nonlinearity, slope)
            assert init.calculate_gain(nonlinearity, slope) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "shape, fans",
    [((5, 3), (3, 5)), ((8, 4, 3, 3), (36, 72)), ((6, 2, 5), (10, 30)), ((2, 7, 1, 1, 2), (14, 4))],
)
def test_fan_in_and_fan_out(shape, fans):
    assert init._calculate_fan_in_and_fan_out(gf.empty(*shape)) == fans
    torch = pytest.importorskip("torch")
    assert torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape)) == fans


def test_fans_need_two_dims_and_a_known_mode():
    with pytest.raises(ValueError, match=r"at least 2 dims, got shape \(4,\)"):
        init.xavier_uniform_(gf.empty(4))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_normal_(gf.empty(3, 3), mode="fan_avg")


# Each case: (name, call, kind, parameter), kind "uniform" with bounds (low, high) or "normal"
# with (mean, std). The weight is (out, in) = (200, 300): fan_in 300, fan_out 200.
CASES = [
    ("uniform_", lambda t: init.uniform_(t, -0.5, 2.0), "uniform", (-0.5, 2.0)),
    ("uniform_default", lambda t: init.uniform_(t), "uniform", (0.0, 1.0)),
    ("normal_", lambda t: init.normal_(t, 1.5, 0.3), "normal", (1.5, 0.3)),
    ("normal_default", lambda t: init.normal_(t), "normal", (0.0, 1.0)),
    (
        "xavier_uniform_",
        lambda t: init.xavier_uniform_(t, gain=2.0),
        "uniform",
        (-2 * math.sqrt(6 / 500), 2 * math.sqrt(6 / 500)),
    ),
    ("xavier_normal_", lambda t: init.xavier_normal_(t), "normal", (0.0, math.sqrt(2 / 500))),
    (
        "kaiming_uniform_",
        lambda t: init.kaiming_uniform_(t, nonlinearity="relu"),
        "uniform",
        (-math.sqrt(6 / 300), math.sqrt(6 / 300)),
    ),
    (
        "kaiming_uniform_fan_out",
        lambda t: init.kaiming_uniform_(t, a=0.2, mode="fan_out"),
        "uniform",
        (-math.sqrt(6 / 1.04 / 200), math.sqrt(6 / 1.04 / 200)),
    ),
    (
        "kaiming_normal_",
        lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
        "normal",
        (0.0, math.sqrt(2 / 200)),
    ),
    ("fan_in_uniform_", lambda t: init.fan_in_uniform_(t, 16), "uniform", (-0.25, 0.25)),
]


@pytest.mark.parametrize("name, fill, kind, params", CASES, ids=[c[0] for c in CASES])
def test_initializer_distribution(name, fill, kind, params):
    tensor = gf.empty(200, 300)
    assert fill(tensor) is tensor
    assert tensor.dtype == numpy.float32
    x = as_numpy(tensor).astype(numpy.float64)
    if kind == "uniform":
        low, high = params
        width = high - low
        assert x.min() >= low and x.max() <= high
        assert x.min() < low + 1e-3 * width and x.max() > high - 1e-3 * width
        assert x.mean() == pytest.approx((low + high) / 2, abs=0.01 * width)
        assert x.std() == pytest.approx(width / math.sqrt(12), rel=0.02)
    else:
        mean, std = params
        assert x.mean() == pytest.approx(mean, abs=0.02 * std)
        assert x.std() == pytest.approx(std, rel=0.02)
        assert numpy.abs(x - mean).max() > 3.5 * std  # tails: a normal, not a uniform


def test_initializer_matches_torch_spread():
    """The same formula as torch: the samples' std agrees with torch's for a conv-shaped weight."""
    torch = pytest.importorskip("torch")
    shape = (64, 32, 3, 3)
    pairs = [
        (init.kaiming_uniform_, torch.nn.init.kaiming_uniform_, {"a": math.sqrt(5)}),
        (init.kaiming_normal_, torch.nn.init.kaiming_normal_, {"mode": "fan_out"}),
        (init.xavier_uniform_, torch.nn.init.xavier_uniform_, {"gain": 0.5}),
        (init.xavier_normal_, torch.nn.init.xavier_normal_, {}),
    ]
    torch.manual_seed(0)
    for ours, theirs, kwargs in pairs:
        a = as_numpy(ours(gf.empty(*shape), **kwargs))
        b = theirs(torch.empty(shape), **kwargs).numpy()
        assert a.std() == pytest.approx(b.std(), rel=0.03)


def test_constant_zeros_ones_fill_in_place():
    tensor = gf.empty(3, 4, dtype=gf.float64)
    data = tensor.array
    assert init.constant_(tensor, 2.5) is tensor
    numpy.testing.assert_array_equal(as_numpy(tensor), 2.5)
    init.zeros_(tensor)
    numpy.testing.assert_array_equal(as_numpy(tensor), 0.0)
    init.ones_(tensor)
    numpy.testing.assert_array_equal(as_numpy(tensor), 1.0)
    assert tensor.array is data and tensor.dtype == numpy.float64


def test_init_of_a_parameter_keeps_it_a_leaf_that_requires_grad():
    weight = gf.nn.Parameter(gf.empty(4, 5))
    init.xavier_normal_(weight)
    assert weight.is_leaf and weight.requires_grad and weight.grad_fn is None


def test_initialization_is_reproducible_under_manual_seed():
    def draw():
        return [
            as_numpy(f(gf.empty(5, 6)))
            for f in (init.uniform_, init.normal_, init.xavier_uniform_, init.kaiming_normal_)
        ]

    gf.manual_seed(11)
    first = draw()
    gf.manual_seed(11)
    second = draw()
    for a, b in zip(first, second):
        numpy.testing.assert_array_equal(a, b)
    gf.manual_seed(12)
    assert not numpy.array_equal(draw()[0], first[0])


def test_initialization_draws_from_a_given_generator():
    a = init.normal_(gf.empty(10), generator=Generator("cpu", seed=5))
    gf.manual_seed(99)  # the default generator does not matter here
    b = init.normal_(gf.empty(10), generator=Generator("cpu", seed=5))
    numpy.testing.assert_array_equal(as_numpy(a), as_numpy(b))
    c = init.normal_(gf.empty(10))
    assert not numpy.array_equal(as_numpy(a), as_numpy(c))
