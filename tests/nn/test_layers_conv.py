"""Tests for the convolution and pooling layers (Conv1d, Conv2d, ConvTranspose2d, MaxPool2d,
AvgPool2d, AdaptiveAvgPool2d) and the `gradflow train` models built from them: gradcheck,
parity with torch.nn, default init, repr, error messages and state_dict round trips."""

import math

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
from gradflow import models, nn, optim
from gradflow.nn import functional as F

# ---- convolutions: (gradflow layer, torch layer name, keyword arguments, input shape) ---------

CONV_CASES = [
    ("Conv2d", (3, 4, 3), {}, (2, 3, 6, 5)),
    ("Conv2d", (3, 4, 3), {"stride": 2, "padding": 1}, (2, 3, 7, 6)),
    ("Conv2d", (3, 4, (3, 2)), {"stride": (2, 1), "padding": (1, 2)}, (2, 3, 7, 6)),
    ("Conv2d", (3, 4, 4), {"padding": "same", "dilation": 2}, (2, 3, 8, 7)),
    ("Conv2d", (3, 4, 3), {"padding": "valid"}, (2, 3, 6, 5)),
    ("Conv2d", (4, 6, 3), {"dilation": (2, 1), "groups": 2, "bias": False}, (2, 4, 7, 6)),
    ("Conv2d", (4, 4, 3), {"groups": 4, "padding": 1}, (4, 5, 5)),  # depthwise, unbatched
    ("Conv1d", (3, 4, 3), {}, (2, 3, 9)),
    ("Conv1d", (4, 6, 3), {"stride": 2, "padding": 2, "dilation": 2, "groups": 2}, (2, 4, 11)),
    ("Conv1d", (3, 4, 4), {"padding": "same", "bias": False}, (3, 9)),
    ("ConvTranspose2d", (3, 4, 3), {}, (2, 3, 4, 5)),
    (
        "ConvTranspose2d",
        (4, 6, 3),
        {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2},
        (2, 4, 4, 3),
    ),
    (
        "ConvTranspose2d",
        (3, 4, (2, 3)),
        {
            "stride": (2, 3),
            "padding": (0, 1),
            "output_padding": (1, 2),
            "dilation": (1, 2),
            "bias": False,
        },
        (2, 3, 3, 4),
    ),
    ("ConvTranspose2d", (4, 2, 3), {"dilation": 2, "groups": 2}, (4, 3, 3)),  # unbatched
]
CONV_IDS = [f"{name}-{args}-{kwargs}" for name, args, kwargs, _ in CONV_CASES]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize(("name", "args", "kwargs", "x_shape"), CONV_CASES, ids=CONV_IDS)
def test_conv_layer_matches_torch(rng, name, args, kwargs, x_shape):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, name)(*args, **kwargs)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    x = rng.standard_normal(x_shape).astype(numpy.float32)
    load_into_torch(ours, theirs)
    assert_matches_torch(ours, theirs, x, rng)


@pytest.mark.parametrize(("name", "args", "kwargs", "x_shape"), CONV_CASES, ids=CONV_IDS)
def test_conv_layer_gradcheck(device, rng, name, args, kwargs, x_shape):
    layer = getattr(nn, name)(*args, **kwargs).to(device).double()
    assert layer.weight.dtype == numpy.float64 and layer.weight.device.type == device
    x_shape = (1, *x_shape[1:]) if len(x_shape) == layer._dims + 2 else x_shape
    x = gf.tensor(rng.standard_normal(x_shape), device=device, requires_grad=True)
    assert_gradcheck(layer, x)


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("Conv2d", (3, 4, 3), {"padding": 1}),
        ("ConvTranspose2d", (3, 4, 3), {"stride": 2}),
        ("MaxPool2d", (2,), {}),
        ("AvgPool2d", (2,), {"padding": 1}),
        ("AdaptiveAvgPool2d", (3,), {}),
    ],
)
def test_conv_and_pool_layers_take_non_contiguous_inputs(rng, name, args, kwargs):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    load_into_torch(ours, theirs)
    x = rng.standard_normal((2, 3, 6, 5)).astype(numpy.float32)
    assert_matches_torch(ours, theirs, x, rng, view=lambda t: t.transpose(2, 3))


def test_conv_reprs_equal_torchs():
    torch = pytest.importorskip("torch")
    cases = [
        ("Conv2d", (1, 32, 3), {"padding": 1}),
        ("Conv2d", (4, 8, (3, 5)), {"stride": (2, 1), "dilation": 2, "groups": 4, "bias": False}),
        ("Conv2d", (2, 4, 3), {"padding": "same"}),
        ("Conv2d", (2, 4, 3), {"padding": "valid"}),
        ("Conv1d", (2, 4, 5), {}),
        ("Conv1d", (2, 4, 5), {"stride": 3, "padding": 2, "bias": False}),
        ("ConvTranspose2d", (4, 6, 3), {}),
        (
            "ConvTranspose2d",
            (4, 6, 3),
            {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": 2},
        ),
    ]
    for name, args, kwargs in cases:
        assert repr(getattr(nn, name)(*args, **kwargs)) == repr(
            getattr(torch.nn, name)(*args, **kwargs)
        )


# ---- default init -----------------------------------------------------------------------------


def assert_uniform_within(values, bound, reach, std_tolerance):
    """Samples of U(-bound, bound): inside the bound, reaching it, with the uniform's spread
    (std bound / sqrt(3)) and both signs. `reach` and `std_tolerance` fit the sample size."""
    assert numpy.abs(values).max() <= bound
    assert numpy.abs(values).max() > reach * bound
    assert abs(values.std() / (bound / math.sqrt(3)) - 1) < std_tolerance
    assert (values > 0).sum() > values.size // 4 and (values < 0).sum() > values.size // 4


@pytest.mark.parametrize(
    ("layer", "fan_in"),
    [
        (lambda: nn.Conv2d(24, 40, 3), 24 * 9),
        (lambda: nn.Conv2d(24, 48, (3, 5), groups=4), 6 * 15),  # in_channels / groups
        (lambda: nn.Conv1d(30, 70, 5), 30 * 5),
        (lambda: nn.ConvTranspose2d(72, 24, 3), 24 * 9),  # weight.shape[1] * k * k
        (lambda: nn.ConvTranspose2d(72, 48, 3, groups=3), 16 * 9),
    ],
    ids=["conv2d", "conv2d-groups", "conv1d", "conv-transpose2d", "conv-transpose2d-groups"],
)
def test_conv_default_init_is_kaiming_uniform_with_bound_one_over_sqrt_fan_in(layer, fan_in):
    layer = layer()
    bound = 1 / math.sqrt(fan_in)
    assert layer.weight.dtype == numpy.float32 and layer.weight.requires_grad
    assert_uniform_within(as_numpy(layer.weight), bound, reach=0.99, std_tolerance=0.03)
    assert_uniform_within(as_numpy(layer.bias), bound, reach=0.7, std_tolerance=0.35)


def test_conv_weight_shapes_follow_torch():
    assert nn.Conv2d(4, 6, (3, 2), groups=2).weight.shape == (6, 2, 3, 2)
    assert nn.Conv1d(4, 6, 3, groups=2).weight.shape == (6, 2, 3)
    transposed = nn.ConvTranspose2d(4, 6, (3, 2), groups=2)
    assert transposed.weight.shape == (4, 3, 3, 2) and transposed.bias.shape == (6,)
    no_bias = nn.Conv2d(2, 3, 1, bias=False)
    assert no_bias.bias is None and list(no_bias.state_dict()) == ["weight"]


# ---- errors -----------------------------------------------------------------------------------


def test_conv_wrong_input_rank_names_the_layer_and_shapes():
    cases = [
        (nn.Conv2d(3, 4, 3), (5, 5), "Conv2d: expected a 4-D input (N, C, H, W) or an unbatched "
                                     "3-D input (C, H, W), got shape (5, 5)"),
        (nn.Conv2d(3, 4, 3), (1, 1, 3, 5, 5), "Conv2d: expected a 4-D input (N, C, H, W) or an "
                                              "unbatched 3-D input (C, H, W), got shape "
                                              "(1, 1, 3, 5, 5)"),
        (nn.Conv1d(3, 4, 3), (1, 3, 5, 5), "Conv1d: expected a 3-D input (N, C, L) or an "
                                           "unbatched 2-D input (C, L), got shape (1, 3, 5, 5)"),
        (nn.ConvTranspose2d(3, 4, 3), (3, 5), "ConvTranspose2d: expected a 4-D input (N, C, H, W) "
                                              "or an unbatched 3-D input (C, H, W), got shape "
                                              "(3, 5)"),
    ]  # fmt: skip
    for layer, shape, message in cases:
        assert_raises_exactly(ValueError, message, layer, gf.ones(*shape))
    assert_raises_exactly(
        ValueError,
        "Conv2d: expected a 4-D input (N, C, H, W) or an unbatched 3-D input (C, H, W), got "
        "shape ndarray",
        nn.Conv2d(3, 4, 3),
        numpy.ones((1, 3, 5, 5), numpy.float32),
    )


def test_conv_wrong_channel_count_names_the_layer_and_shapes():
    cases = [
        (nn.Conv2d(3, 4, 3), (2, 5, 6, 6), "Conv2d: expected 3 input channels (dim 1), got input "
                                           "of shape (2, 5, 6, 6) with 5"),
        (nn.Conv2d(3, 4, 3), (2, 6, 6), "Conv2d: expected 3 input channels (dim 0), got input of "
                                        "shape (2, 6, 6) with 2"),
        (nn.Conv1d(3, 4, 3), (2, 4, 9), "Conv1d: expected 3 input channels (dim 1), got input of "
                                        "shape (2, 4, 9) with 4"),
        (nn.ConvTranspose2d(6, 4, 3, groups=2), (1, 4, 5, 5), "ConvTranspose2d: expected 6 input "
                                                              "channels (dim 1), got input of "
                                                              "shape (1, 4, 5, 5) with 4"),
    ]  # fmt: skip
    for layer, shape, message in cases:
        assert_raises_exactly(ValueError, message, layer, gf.ones(*shape))


def test_conv_invalid_constructor_arguments_raise_clear_errors():
    cases = [
        (ValueError, "Conv2d: in_channels (4) and out_channels (6) must both be divisible by "
                     "groups (4)", nn.Conv2d, (4, 6, 3), {"groups": 4}),
        (ValueError, "ConvTranspose2d: in_channels (3) and out_channels (4) must both be "
                     "divisible by groups (2)", nn.ConvTranspose2d, (3, 4, 3), {"groups": 2}),
        (ValueError, "Conv2d: groups must be a positive int, got 0", nn.Conv2d, (2, 2, 3),
         {"groups": 0}),
        (ValueError, 'Only "zeros" padding mode is supported for ConvTranspose2d',
         nn.ConvTranspose2d, (2, 2, 3), {"padding_mode": "reflect"}),
        (ValueError, "Conv2d: padding='same' needs stride 1 (as in PyTorch), got stride (2, 2); "
                     "pass an explicit padding for a strided convolution", nn.Conv2d, (2, 2, 3),
         {"stride": 2, "padding": "same"}),
        (ValueError, "Conv1d: padding='same' needs stride 1 (as in PyTorch), got stride (3,); "
                     "pass an explicit padding for a strided convolution", nn.Conv1d, (2, 2, 3),
         {"stride": (3,), "padding": "same"}),
        (ValueError, "Conv2d: padding must be 'same', 'valid', an int or a tuple, got 'full'",
         nn.Conv2d, (2, 2, 3), {"padding": "full"}),
        (ValueError, "ConvTranspose2d: padding must be an int or a pair, got 'same'",
         nn.ConvTranspose2d, (2, 2, 3), {"padding": "same"}),
        (ValueError, "Conv2d: kernel_size must be an int or a tuple of 2 ints, got (3, 3, 3)",
         nn.Conv2d, (2, 2, (3, 3, 3)), {}),
        (ValueError, "Conv1d: out_channels must be a positive int, got 0", nn.Conv1d, (2, 0, 3),
         {}),
    ]  # fmt: skip
    for error, message, layer, args, kwargs in cases:
        assert_raises_exactly(error, message, layer, *args, **kwargs)


def test_conv_load_state_dict_with_a_wrong_shaped_weight_names_the_key():
    layer = nn.Conv2d(3, 4, 3)
    before = as_numpy(layer.weight).copy()
    assert_raises_exactly(
        ValueError,
        # torch's header, then one error a line
        "Error(s) in loading state_dict for Conv2d:\n\tsize mismatch for 'weight': the "
        "checkpoint has shape (4, 3, 5, 5), the model has (4, 3, 3, 3)",
        layer.load_state_dict,
        {"weight": gf.zeros(4, 3, 5, 5), "bias": gf.zeros(4)},
    )
    numpy.testing.assert_array_equal(as_numpy(layer.weight), before)  # nothing copied
    with pytest.raises(ValueError, match=r"size mismatch for '0.bias'"):
        nn.Sequential(nn.Conv1d(2, 3, 3)).load_state_dict(
            {"0.weight": gf.zeros(3, 2, 3), "0.bias": gf.zeros(4)}
        )


# ---- pooling ----------------------------------------------------------------------------------

POOL_CASES = [
    ("MaxPool2d", {"kernel_size": 2}, (2, 3, 6, 5)),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (2, 3, 6, 6)),
    ("MaxPool2d", {"kernel_size": (2, 3), "stride": (1, 2), "dilation": (2, 1)}, (2, 3, 7, 7)),
    ("MaxPool2d", {"kernel_size": 2, "ceil_mode": True}, (3, 5, 7)),  # unbatched
    ("AvgPool2d", {"kernel_size": 2}, (2, 3, 6, 5)),
    ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, (2, 3, 7, 6)),
    (
        "AvgPool2d",
        {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        (2, 3, 7, 6),
    ),
    (
        "AvgPool2d",
        {
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
        (2, 3, 6, 6),
    ),
    ("AvgPool2d", {"kernel_size": (2, 3), "stride": 2, "ceil_mode": True}, (2, 3, 5, 6)),
    ("AvgPool2d", {"kernel_size": 2, "divisor_override": 3}, (3, 4, 4)),
    ("AdaptiveAvgPool2d", {"output_size": 1}, (2, 3, 5, 4)),
    ("AdaptiveAvgPool2d", {"output_size": (3, 2)}, (2, 3, 7, 5)),
    ("AdaptiveAvgPool2d", {"output_size": (None, 3)}, (3, 4, 7)),
]
POOL_IDS = [f"{name}-{kwargs}-{shape}" for name, kwargs, shape in POOL_CASES]


@pytest.mark.parametrize(("name", "kwargs", "x_shape"), POOL_CASES, ids=POOL_IDS)
def test_pool_layer_matches_torch(rng, name, kwargs, x_shape):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == [] and list(ours.parameters()) == []
    x = rng.standard_normal(x_shape).astype(numpy.float32)
    load_into_torch(ours, theirs)
    assert_matches_torch(ours, theirs, x, rng)


@pytest.mark.parametrize(("name", "kwargs", "x_shape"), POOL_CASES, ids=POOL_IDS)
def test_pool_layer_gradcheck(device, rng, name, kwargs, x_shape):
    layer = getattr(nn, name)(**kwargs)
    # distinct values: the maximum of each window is unique, so max pooling is differentiable
    values = rng.permutation(math.prod(x_shape)).reshape(x_shape) / math.prod(x_shape)
    x = gf.tensor(values, device=device, requires_grad=True)
    assert_gradcheck(layer, x)


def test_max_pool_return_indices_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 7, 6)).astype(numpy.float32)
    kwargs = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    out, indices = nn.MaxPool2d(return_indices=True, **kwargs)(gf.tensor(x))
    out_t, indices_t = torch.nn.MaxPool2d(return_indices=True, **kwargs)(torch.from_numpy(x))
    numpy.testing.assert_array_equal(as_numpy(out), out_t.numpy())
    numpy.testing.assert_array_equal(as_numpy(indices), indices_t.numpy())


def test_pool_reprs_equal_torchs():
    torch = pytest.importorskip("torch")
    cases = [
        ("MaxPool2d", (2,), {}),
        ("MaxPool2d", (3,), {"stride": 1, "padding": 1, "dilation": 2, "ceil_mode": True}),
        ("MaxPool2d", ((2, 3),), {"stride": (1, 2), "return_indices": True}),
        ("AvgPool2d", (2,), {}),
        ("AvgPool2d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}),
        ("AdaptiveAvgPool2d", (1,), {}),
        ("AdaptiveAvgPool2d", ((4, None),), {}),
    ]
    for name, args, kwargs in cases:
        assert repr(getattr(nn, name)(*args, **kwargs)) == repr(
            getattr(torch.nn, name)(*args, **kwargs)
        )


def test_pool_wrong_input_rank_names_the_layer_and_shapes():
    for layer in (nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(2)):
        for shape in [(4, 4), (1, 2, 3, 4, 4)]:
            message = (
                f"{type(layer).__name__}: expected a 4-D input (N, C, H, W) or a 3-D input "
                f"(C, H, W), got shape {shape}"
            )
            assert_raises_exactly(ValueError, message, layer, gf.ones(*shape))


# ---- the `gradflow train` models ---------------------------------------------------------------


def torch_twin(name):
    """The torch.nn.Sequential of models.mlp() / models.cnn() (8x8 images, 10 classes)."""
    import torch

    tnn = torch.nn
    if name == "mlp":
        return tnn.Sequential(
            tnn.Flatten(),
            tnn.Linear(64, 256),
            tnn.ReLU(),
            tnn.Linear(256, 128),
            tnn.ReLU(),
            tnn.Linear(128, 10),
        )
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1),
        tnn.BatchNorm2d(32),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1),
        tnn.BatchNorm2d(64),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Dropout(0.25),
        tnn.Linear(256, 128),
        tnn.ReLU(),
        tnn.Linear(128, 10),
    )


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_model_state_dict_keys_and_shapes_equal_torchs(name):
    pytest.importorskip("torch")
    ours, theirs = models.MODELS[name](), torch_twin(name)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (key, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert a.shape == tuple(b.shape), key
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_model_training_steps_match_torch(rng, name):
    torch = pytest.importorskip("torch")
    ours, theirs = models.MODELS[name](), torch_twin(name)
    load_into_torch(ours, theirs)
    for model in (ours, theirs):  # train mode, but dropout off: no randomness to compare
        for module in model.modules():
            if type(module).__name__ == "Dropout":
                module.eval()
    # A conv bias followed by batch norm has a zero gradient, so both frameworks hold rounding
    # noise there, which Adam turns into steps of about lr: those biases stay frozen.
    frozen = {"0.bias", "4.bias"} if name == "cnn" else set()
    trainable = []
    for model in (ours, theirs):
        params = dict(model.named_parameters())
        for key in frozen:
            params.pop(key).requires_grad_(False)
        trainable.append(list(params.values()))
    opt_ours = optim.Adam(trainable[0], lr=1e-3)
    opt_theirs = torch.optim.Adam(trainable[1], lr=1e-3)
    tol = {"rtol": 2e-4, "atol": 2e-5}
    for _ in range(2):
        images = rng.random((16, 1, 8, 8), dtype=numpy.float32)
        labels = rng.integers(0, 10, 16)
        loss_ours = F.cross_entropy(ours(gf.tensor(images)), gf.tensor(labels))
        loss_theirs = torch.nn.functional.cross_entropy(
            theirs(torch.from_numpy(images)), torch.from_numpy(labels)
        )
        numpy.testing.assert_allclose(float(loss_ours.item()), loss_theirs.item(), rtol=1e-5)
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        loss_ours.backward()
        loss_theirs.backward()
        theirs_params = dict(theirs.named_parameters())
        for key, p in ours.named_parameters():
            if key in frozen:
                assert p.grad is None and theirs_params[key].grad is None
                continue
            numpy.testing.assert_allclose(
                as_numpy(p.grad), as_numpy(theirs_params[key].grad), err_msg=key, **tol
            )
        opt_ours.step()
        opt_theirs.step()
    theirs_state = theirs.state_dict()
    for key, value in ours.state_dict().items():  # parameters after Adam, running statistics
        numpy.testing.assert_allclose(
            as_numpy(value), as_numpy(theirs_state[key]), err_msg=key, **tol
        )
    ours.eval()
    theirs.eval()
    images = rng.random((4, 1, 8, 8), dtype=numpy.float32)
    numpy.testing.assert_allclose(
        as_numpy(ours(gf.tensor(images))), as_numpy(theirs(torch.from_numpy(images))), **tol
    )


def test_cnn_state_dict_round_trips_through_save_and_load(rng, tmp_path):
    model = models.cnn()
    model(gf.tensor(rng.random((8, 1, 8, 8), dtype=numpy.float32)))  # running statistics move
    model.eval()
    path = tmp_path / "cnn.ckpt"
    gf.save(model.state_dict(), path)
    gf.manual_seed(1)
    fresh = models.cnn()
    images = gf.tensor(rng.random((5, 1, 8, 8), dtype=numpy.float32))
    fresh.eval()
    assert not numpy.allclose(as_numpy(fresh(images)), as_numpy(model(images)))
    loaded = gf.load(path)
    assert list(loaded) == list(model.state_dict())
    fresh.load_state_dict(loaded)
    numpy.testing.assert_array_equal(as_numpy(fresh(images)), as_numpy(model(images)))
    assert int(fresh[1].num_batches_tracked.item()) == 1
    assert fresh[1].num_batches_tracked.dtype == numpy.int64
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(as_numpy(fresh.state_dict()[key]), as_numpy(value))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "layer, shape, padding",
    [("Conv1d", (2, 3, 9), 2), ("Conv2d", (2, 3, 7, 6), (1, 2)), ("Conv2d", (1, 3, 6, 6), "same"),
     ("Conv3d", (1, 3, 5, 5, 4), 1)],
)  # fmt: skip
def test_padding_modes_match_torch(mode, layer, shape, padding, rng):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, layer)(3, 4, 3, padding=padding, padding_mode=mode).double()
    theirs = getattr(torch.nn, layer)(3, 4, 3, padding=padding, padding_mode=mode).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    x = rng.standard_normal(shape)
    gx = gf.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    out, tout = ours(gx), theirs(tx)
    numpy.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10)
    out.sum().backward()
    tout.sum().backward()
    numpy.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    numpy.testing.assert_allclose(
        ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-12
    )
    assert f"padding_mode={mode}" in repr(ours)
