"""Tests for the normalization layers (BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm) and
Embedding: gradcheck, parity with torch.nn (running statistics over several training steps
included), default init, repr and error messages."""

import numpy
import pytest
from layer_parity import (
    as_numpy,
    assert_gradcheck,
    assert_matches_torch,
    assert_raises_exactly,
    load_into_torch,
)

import gradflow as gf
from gradflow import nn


def randomize_affine(layer, rng):
    """Weight and bias away from their 1 and 0 defaults, so a swapped or missing one shows."""
    with gf.no_grad():
        for p in (layer.weight, layer.bias):
            if p is not None:
                p.copy_(rng.uniform(0.5, 1.5, p.shape))  # copy_ moves host values to p's device


def assert_states_equal(ours, theirs):
    theirs_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(theirs_state)
    for key, value in ours.state_dict().items():
        assert value.dtype == as_numpy(theirs_state[key]).dtype, key
        numpy.testing.assert_allclose(
            as_numpy(value), as_numpy(theirs_state[key]), rtol=1e-6, atol=1e-7, err_msg=key
        )


# ---- batch norm -------------------------------------------------------------------------------

BATCH_NORM_CASES = [
    ("BatchNorm1d", {}, (6, 3)),
    ("BatchNorm1d", {}, (4, 3, 5)),
    ("BatchNorm2d", {}, (4, 3, 2, 3)),
    ("BatchNorm1d", {"momentum": None}, (4, 3, 5)),
    ("BatchNorm2d", {"momentum": None}, (3, 3, 2, 2)),
    ("BatchNorm2d", {"momentum": 0.5, "eps": 1e-3}, (2, 3, 3, 2)),
    ("BatchNorm1d", {"track_running_stats": False}, (6, 3)),
    ("BatchNorm2d", {"track_running_stats": False, "momentum": None}, (2, 3, 2, 2)),
    ("BatchNorm1d", {"affine": False}, (4, 3, 5)),
    ("BatchNorm2d", {"affine": False, "track_running_stats": False}, (2, 3, 3, 3)),
    ("BatchNorm2d", {"bias": False}, (2, 3, 3, 3)),
]
BATCH_NORM_IDS = [f"{name}-{kwargs}-{shape}" for name, kwargs, shape in BATCH_NORM_CASES]


@pytest.mark.parametrize(("name", "kwargs", "x_shape"), BATCH_NORM_CASES, ids=BATCH_NORM_IDS)
def test_batch_norm_matches_torch_over_training_steps_then_in_eval_mode(rng, name, kwargs, x_shape):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(3, **kwargs), getattr(torch.nn, name)(3, **kwargs)
    assert repr(ours) == repr(theirs)
    randomize_affine(ours, rng)
    load_into_torch(ours, theirs)  # once: from here on each keeps its own running statistics
    tracking = ours.track_running_stats
    for step in range(1, 4):
        x = (rng.standard_normal(x_shape) * 3 + 2).astype(numpy.float32)
        assert_matches_torch(ours, theirs, x, rng)
        assert_states_equal(ours, theirs)  # running_mean, running_var, num_batches_tracked
        if tracking:
            assert int(ours.num_batches_tracked.item()) == step
    if tracking:  # the statistics moved away from their 0 and 1 starts
        assert numpy.abs(as_numpy(ours.running_mean)).min() > 0.1
    else:
        assert ours.running_mean is None and ours.num_batches_tracked is None
    ours.eval()
    theirs.eval()
    before = {k: as_numpy(v).copy() for k, v in ours.state_dict().items()}
    for _ in range(2):
        x = (rng.standard_normal(x_shape) * 3 + 2).astype(numpy.float32)
        assert_matches_torch(ours, theirs, x, rng)
    for key, value in ours.state_dict().items():  # eval mode updates nothing
        numpy.testing.assert_array_equal(as_numpy(value), before[key], err_msg=key)
    assert_states_equal(ours, theirs)


def test_batch_norm_with_momentum_none_keeps_the_cumulative_average():
    layer = nn.BatchNorm1d(2, momentum=None)
    rng = numpy.random.default_rng(5)
    batches = [rng.standard_normal((4, 2)) * (i + 1) + i for i in range(3)]
    for batch in batches:
        layer(gf.tensor(batch.astype(numpy.float32)))
    expected_mean = numpy.mean([b.mean(axis=0) for b in batches], axis=0)
    expected_var = numpy.mean([b.var(axis=0, ddof=1) for b in batches], axis=0)
    numpy.testing.assert_allclose(as_numpy(layer.running_mean), expected_mean, rtol=1e-5)
    numpy.testing.assert_allclose(as_numpy(layer.running_var), expected_var, rtol=1e-5)
    assert int(layer.num_batches_tracked.item()) == 3


def test_batch_norm_eval_mode_normalizes_with_the_running_statistics():
    mean, var = numpy.array([1.0, -2.0]), numpy.array([4.0, 0.25])
    weight, bias = numpy.array([2.0, 1.0]), numpy.array([0.5, 0.0])
    layer = nn.BatchNorm2d(2).eval()
    for tensor, values in [(layer.running_mean, mean), (layer.running_var, var),
                           (layer.weight, weight), (layer.bias, bias)]:  # fmt: skip
        tensor.array[...] = values
    x = numpy.arange(16, dtype=numpy.float32).reshape(2, 2, 2, 2)
    mean, var, weight, bias = (a.reshape(1, 2, 1, 1) for a in (mean, var, weight, bias))
    expected = (x - mean) / numpy.sqrt(var + 1e-5) * weight + bias
    numpy.testing.assert_allclose(as_numpy(layer(gf.tensor(x))), expected, rtol=1e-5)
    assert int(layer.num_batches_tracked.item()) == 0


@pytest.mark.parametrize(
    ("name", "kwargs", "x_shape"),
    [
        ("BatchNorm1d", {}, (5, 3)),
        ("BatchNorm1d", {"momentum": None}, (3, 3, 4)),
        ("BatchNorm2d", {}, (2, 3, 2, 3)),
        ("BatchNorm2d", {"affine": False}, (2, 3, 2, 2)),
        ("BatchNorm1d", {"track_running_stats": False}, (4, 3)),
    ],
)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_gradcheck(device, rng, name, kwargs, x_shape, training):
    layer = getattr(nn, name)(3, **kwargs).to(device).double()
    randomize_affine(layer, rng)
    for _ in range(2):  # running statistics away from 0 and 1 for eval mode
        layer(gf.tensor(rng.standard_normal(x_shape) * 2 + 1, device=device))
    layer.train(training)
    x = gf.tensor(rng.standard_normal(x_shape) * 2 + 1, device=device, requires_grad=True)
    assert_gradcheck(layer, x)


def test_batch_norm_default_init():
    layer = nn.BatchNorm2d(5)
    numpy.testing.assert_array_equal(as_numpy(layer.weight), numpy.ones(5, numpy.float32))
    numpy.testing.assert_array_equal(as_numpy(layer.bias), numpy.zeros(5, numpy.float32))
    assert layer.weight.requires_grad and layer.bias.requires_grad
    numpy.testing.assert_array_equal(as_numpy(layer.running_mean), numpy.zeros(5))
    numpy.testing.assert_array_equal(as_numpy(layer.running_var), numpy.ones(5))
    assert not layer.running_mean.requires_grad and layer.running_mean.dtype == numpy.float32
    assert layer.num_batches_tracked.shape == () and layer.num_batches_tracked.dtype == numpy.int64
    assert int(layer.num_batches_tracked.item()) == 0
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert list(nn.BatchNorm1d(2, affine=False).state_dict()) == [
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    assert list(nn.BatchNorm1d(2, track_running_stats=False).state_dict()) == ["weight", "bias"]
    assert list(nn.BatchNorm1d(2, bias=False).state_dict())[:2] == ["weight", "running_mean"]


def test_batch_norm_wrong_input_names_the_layer_and_shapes():
    cases = [
        (nn.BatchNorm1d(3), (2, 3, 4, 5), "BatchNorm1d: expected input of shape (N, C) or "
                                          "(N, C, L), got shape (2, 3, 4, 5)"),
        (nn.BatchNorm1d(3), (3,), "BatchNorm1d: expected input of shape (N, C) or (N, C, L), "
                                  "got shape (3,)"),
        (nn.BatchNorm1d(3), (4, 5), "BatchNorm1d(3): expected 3 channels in dim 1, got input "
                                    "of shape (4, 5)"),
        (nn.BatchNorm1d(3), (4, 2, 6), "BatchNorm1d(3): expected 3 channels in dim 1, got "
                                       "input of shape (4, 2, 6)"),
        (nn.BatchNorm2d(3), (3, 4, 4), "BatchNorm2d: expected input of shape (N, C, H, W), "
                                       "got shape (3, 4, 4)"),
        (nn.BatchNorm2d(3), (2, 4, 3, 3), "BatchNorm2d(3): expected 3 channels in dim 1, got "
                                          "input of shape (2, 4, 3, 3)"),
    ]  # fmt: skip
    for layer, shape, message in cases:
        assert_raises_exactly(ValueError, message, layer, gf.ones(*shape))
        assert int(layer.num_batches_tracked.item()) == 0


def test_batch_norm_single_value_per_channel_in_training_raises_and_counts_nothing():
    layer = nn.BatchNorm1d(3, momentum=None)
    message = (
        "batch_norm: expected more than 1 value per channel when training, got input of shape "
        "(1, 3); use a larger batch or training=False"
    )
    assert_raises_exactly(ValueError, message, layer, gf.ones(1, 3))
    assert int(layer.num_batches_tracked.item()) == 0
    numpy.testing.assert_array_equal(as_numpy(layer.running_var), numpy.ones(3))
    layer.eval()
    assert layer(gf.ones(1, 3)).shape == (1, 3)  # eval mode: the running statistics serve


def test_batch_norm_invalid_constructor_arguments():
    for bad in (0, -2, 2.0):
        message = f"BatchNorm2d: num_features must be a positive int, got {bad}"
        assert_raises_exactly(ValueError, message, nn.BatchNorm2d, bad)


# ---- layer norm and group norm ----------------------------------------------------------------

NORM_CASES = [
    ("LayerNorm", (5,), {}, (2, 3, 5)),
    ("LayerNorm", (5,), {}, (5,)),
    ("LayerNorm", ((3, 5),), {"eps": 1e-3}, (2, 3, 5)),
    ("LayerNorm", ((3, 5),), {"elementwise_affine": False}, (4, 3, 5)),
    ("LayerNorm", (5,), {"bias": False}, (4, 5)),
    ("GroupNorm", (2, 6), {}, (2, 6, 3, 2)),
    ("GroupNorm", (3, 6), {"eps": 1e-3}, (2, 6, 4)),
    ("GroupNorm", (1, 4), {"affine": False}, (3, 4)),
    ("GroupNorm", (6, 6), {}, (2, 6, 2, 2)),
    ("GroupNorm", (2, 4), {"bias": False}, (2, 4, 3)),
]
NORM_IDS = [f"{name}-{args}-{kwargs}-{shape}" for name, args, kwargs, shape in NORM_CASES]


@pytest.mark.parametrize(("name", "args", "kwargs", "x_shape"), NORM_CASES, ids=NORM_IDS)
def test_layer_and_group_norm_match_torch(rng, name, args, kwargs, x_shape):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    randomize_affine(ours, rng)
    load_into_torch(ours, theirs)
    x = (rng.standard_normal(x_shape) * 3 + 2).astype(numpy.float32)
    for _ in range(2):  # in train mode, then in eval mode: the same computation
        assert_matches_torch(ours, theirs, x, rng)
        ours.eval()
        theirs.eval()


@pytest.mark.parametrize(("name", "args", "kwargs", "x_shape"), NORM_CASES, ids=NORM_IDS)
def test_layer_and_group_norm_gradcheck(device, rng, name, args, kwargs, x_shape):
    layer = getattr(nn, name)(*args, **kwargs).to(device).double()
    randomize_affine(layer, rng)
    x = gf.tensor(rng.standard_normal(x_shape) * 2 + 1, device=device, requires_grad=True)
    assert_gradcheck(layer, x)


@pytest.mark.parametrize(
    ("name", "args"), [("BatchNorm2d", (3,)), ("GroupNorm", (3, 3)), ("LayerNorm", (6,))]
)
def test_norm_layers_take_non_contiguous_inputs(rng, name, args):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    randomize_affine(ours, rng)
    load_into_torch(ours, theirs)
    x = (rng.standard_normal((2, 3, 6, 5)) * 3 + 2).astype(numpy.float32)
    assert_matches_torch(ours, theirs, x, rng, view=lambda t: t.transpose(2, 3))
    assert_states_equal(ours, theirs)


def test_layer_and_group_norm_default_init():
    layer = nn.LayerNorm((2, 3))
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2, 3)
    numpy.testing.assert_array_equal(as_numpy(layer.weight), numpy.ones((2, 3)))
    numpy.testing.assert_array_equal(as_numpy(layer.bias), numpy.zeros((2, 3)))
    assert nn.LayerNorm(4, elementwise_affine=False).state_dict() == {}
    assert list(nn.LayerNorm(4, bias=False).state_dict()) == ["weight"]
    group = nn.GroupNorm(2, 6)
    numpy.testing.assert_array_equal(as_numpy(group.weight), numpy.ones(6))
    numpy.testing.assert_array_equal(as_numpy(group.bias), numpy.zeros(6))
    assert nn.GroupNorm(2, 6, affine=False).state_dict() == {}
    assert group.weight.dtype == numpy.float32 and group.weight.requires_grad


def test_layer_and_group_norm_wrong_input_names_the_layer_and_shapes():
    cases = [
        (nn.LayerNorm((3, 4)), (2, 4, 3), "LayerNorm: expected input of shape (*, 3, 4), got "
                                          "shape (2, 4, 3)"),
        (nn.LayerNorm(5), (2, 4), "LayerNorm: expected input of shape (*, 5), got shape (2, 4)"),
        (nn.LayerNorm((3, 4)), (4,), "LayerNorm: expected input of shape (*, 3, 4), got shape "
                                     "(4,)"),
        (nn.GroupNorm(2, 4), (2, 6, 3), "GroupNorm: expected input of shape (N, 4, *), got "
                                        "shape (2, 6, 3)"),
        (nn.GroupNorm(2, 4), (4,), "GroupNorm: expected input of shape (N, 4, *), got shape "
                                   "(4,)"),
    ]  # fmt: skip
    for layer, shape, message in cases:
        assert_raises_exactly(ValueError, message, layer, gf.ones(*shape))


def test_group_norm_invalid_constructor_arguments():
    for groups, channels in [(4, 6), (0, 6), (-1, 3)]:
        message = f"GroupNorm: num_channels ({channels}) must be divisible by num_groups ({groups})"
        assert_raises_exactly(ValueError, message, nn.GroupNorm, groups, channels)


def test_norm_reprs_equal_torchs():
    torch = pytest.importorskip("torch")
    cases = [
        ("BatchNorm1d", (3,), {}),
        ("BatchNorm2d", (8,), {"eps": 1e-3, "momentum": None, "affine": False,
                               "track_running_stats": False}),
        ("BatchNorm2d", (4,), {"bias": False, "momentum": 0.01}),
        ("LayerNorm", (4,), {}),
        ("LayerNorm", ((2, 3),), {"eps": 1e-6, "elementwise_affine": False}),
        ("LayerNorm", ([5],), {"bias": False}),
        ("GroupNorm", (2, 4), {}),
        ("GroupNorm", (3, 6), {"eps": 1e-3, "affine": False}),
        ("Embedding", (10, 3), {}),
        ("Embedding", (10, 3), {"padding_idx": -2}),
        ("Embedding", (7, 2), {"padding_idx": 0}),
    ]  # fmt: skip
    for name, args, kwargs in cases:
        assert repr(getattr(nn, name)(*args, **kwargs)) == repr(
            getattr(torch.nn, name)(*args, **kwargs)
        )


# ---- embedding --------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(rng, padding_idx):
    torch = pytest.importorskip("torch")
    ours = nn.Embedding(10, 4, padding_idx=padding_idx)
    theirs = torch.nn.Embedding(10, 4, padding_idx=padding_idx)
    assert repr(ours) == repr(theirs) and ours.padding_idx == theirs.padding_idx
    load_into_torch(ours, theirs)
    indices = numpy.array([[2, 9, 0, 2], [5, 2, 9, 9], [1, 2, 3, 4]], numpy.int64)
    out = assert_matches_torch(ours, theirs, indices, rng)
    assert out.shape == (3, 4, 4)
    if padding_idx is not None:
        row = padding_idx % 10
        numpy.testing.assert_array_equal(as_numpy(ours.weight.grad)[row], numpy.zeros(4))
        numpy.testing.assert_array_equal(as_numpy(out)[indices == row], 0.0)
    rows_with_grad = numpy.isin(numpy.arange(10), indices)
    if padding_idx is not None:
        rows_with_grad[padding_idx % 10] = False
    numpy.testing.assert_array_equal(
        numpy.abs(as_numpy(ours.weight.grad)).sum(axis=1) > 0, rows_with_grad
    )


@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_gradcheck(device, padding_idx):
    layer = nn.Embedding(6, 3, padding_idx=padding_idx).to(device).double()
    # the padding row's gradient is zero by definition, not by calculus: no index picks it here
    indices = gf.tensor(numpy.array([[0, 3, 5], [5, 5, 2]]), device=device)
    assert_gradcheck(layer, indices)


def test_embedding_default_init_is_standard_normal_with_a_zero_padding_row():
    layer = nn.Embedding(1000, 64, padding_idx=3)
    weight = as_numpy(layer.weight)
    assert weight.dtype == numpy.float32 and layer.weight.requires_grad
    numpy.testing.assert_array_equal(weight[3], numpy.zeros(64))
    others = numpy.delete(weight, 3, axis=0)
    assert abs(others.mean()) < 0.02 and abs(others.std() - 1) < 0.02
    assert numpy.abs(others).max() > 3.5  # normal tails, not a bounded uniform
    assert (numpy.abs(others) > 1.96).mean() == pytest.approx(0.05, abs=0.005)
    assert not numpy.any(numpy.all(others == 0, axis=1))
    assert list(layer.state_dict()) == ["weight"]


def test_embedding_errors():
    layer = nn.Embedding(10, 3)
    cases = [
        (TypeError, "embedding: argument 'input' has dtype float32 and shape (2,); expected "
                    "integer indices (int64 or int32), convert with .long()", layer,
         (gf.tensor([1.0, 2.0]),)),
        (IndexError, "embedding: index 10 is out of range for weight with 10 rows; indices must "
                     "be in [0, 10)", layer, (gf.tensor([[1, 10]]),)),
        (IndexError, "embedding: index -1 is out of range for weight with 10 rows; indices must "
                     "be in [0, 10)", layer, (gf.tensor([-1, 3]),)),
        (ValueError, "Embedding: padding_idx must be within [-10, 10), got 10", nn.Embedding,
         (10, 3, 10)),
        (ValueError, "Embedding: padding_idx must be within [-10, 10), got -11", nn.Embedding,
         (10, 3, -11)),
        (ValueError, "Embedding: num_embeddings must be a positive int, got 0", nn.Embedding,
         (0, 3)),
        (RuntimeError, "Embedding: embedding_dim must be a positive int, got -1 (a layer can't "
         "have a negative size)", nn.Embedding, (4, -1)),
    ]  # fmt: skip
    for error, message, fn, args in cases:
        assert_raises_exactly(error, message, fn, *args)


@pytest.mark.parametrize("layer", [nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d])
def test_instance_norm_bias_false_registers_weight_only(layer):
    m = layer(3, affine=True, bias=False)
    assert list(m.state_dict()) == ["weight"] and m.bias is None
    x = gf.randn(2, 3, *([4] * (int(layer.__name__[-2]))))
    y = m(x)
    assert y.shape == x.shape
