"""The conv, pooling, padding, upsampling, fold, normalization and dropout layers added for
PyTorch parity: repr and state-dict keys equal to torch's, torch's state dict loaded gives
torch's outputs and gradients, gradcheck, and the layers' own errors."""

import numpy
import pytest
from layer_parity import as_numpy, assert_gradcheck, assert_matches_torch, load_into_torch

import gradflow as gf
from gradflow import nn

# (class name, constructor args, constructor kwargs, input shape)
LAYERS = [
    ("Conv3d", (2, 4, 3), dict(padding=1, stride=(1, 2, 1)), (2, 2, 4, 5, 4)),
    ("Conv3d", (4, 4, (2, 1, 2)), dict(groups=2, bias=False, dilation=2), (4, 5, 3, 5)),
    ("Conv3d", (2, 3, 2), dict(padding="same"), (1, 2, 3, 4, 3)),
    ("ConvTranspose1d", (3, 4, 3), dict(stride=2, padding=1, output_padding=1), (2, 3, 5)),
    ("ConvTranspose1d", (4, 2, 2), dict(groups=2, bias=False), (4, 6)),
    ("ConvTranspose3d", (2, 3, 2), dict(stride=2, padding=(0, 1, 0)), (1, 2, 2, 3, 2)),
    ("LPPool1d", (2, 3), dict(stride=2), (2, 3, 9)),
    ("LPPool2d", (1.5, (2, 3)), {}, (2, 3, 4, 6)),
    ("MaxPool1d", (3,), dict(stride=2, padding=1), (2, 3, 9)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, count_include_pad=False), (2, 3, 9)),
    ("MaxPool3d", (2,), {}, (2, 2, 4, 4, 5)),
    ("MaxPool3d", (3,), dict(stride=2, padding=1, ceil_mode=True), (2, 5, 5, 4)),
    ("AvgPool3d", (2,), dict(padding=1), (2, 2, 4, 4, 5)),
    ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 8)),
    ("AdaptiveAvgPool3d", ((2, None, 3),), {}, (2, 2, 5, 4, 7)),
    ("AdaptiveMaxPool1d", (3,), {}, (2, 3, 8)),
    ("AdaptiveMaxPool2d", ((3, None),), {}, (2, 3, 7, 4)),
    ("ZeroPad1d", ((1, 2),), {}, (2, 3, 4)),
    ("AdaptiveMaxPool3d", ((2, 1, None),), {}, (2, 3, 4, 3, 5)),
    ("ZeroPad2d", (1,), {}, (2, 3, 4, 4)),
    ("ZeroPad3d", ((1, 0, 2, 1, 0, 1),), {}, (1, 2, 3, 3, 3)),
    ("ConstantPad1d", (2, 3.5), {}, (2, 4)),
    ("ConstantPad2d", ((1, 0, 2, 1), -1.0), {}, (2, 3, 4, 4)),
    ("ConstantPad3d", (1, 0.5), {}, (1, 2, 3, 3, 3)),
    ("ReflectionPad1d", ((2, 1),), {}, (2, 3, 5)),
    ("ReflectionPad2d", (2,), {}, (2, 3, 4, 5)),
    ("ReflectionPad2d", ((1, 0, 2, 3),), {}, (3, 4, 5)),
    ("ReflectionPad3d", (1,), {}, (1, 2, 3, 3, 3)),
    ("ReplicationPad1d", ((3, 1),), {}, (2, 3, 4)),
    ("ReplicationPad2d", ((1, 2, 0, 3),), {}, (2, 3, 4, 4)),
    ("ReplicationPad3d", (1,), {}, (2, 2, 2, 3)),
    ("CircularPad1d", ((2, 1),), {}, (2, 3, 4)),
    ("CircularPad2d", (1,), {}, (2, 3, 4, 4)),
    ("CircularPad3d", ((1, 0, 1, 2, 0, 1),), {}, (1, 2, 3, 3, 3)),
    ("Upsample", (), dict(scale_factor=2), (2, 3, 4, 4)),
    ("Upsample", (), dict(size=(5, 7), mode="bilinear"), (2, 3, 4, 4)),
    ("Upsample", (), dict(scale_factor=(1.5, 2), mode="bicubic", align_corners=True), (1, 2, 4, 4)),
    ("Upsample", (), dict(size=7, mode="linear"), (2, 3, 4)),
    ("UpsamplingNearest2d", (), dict(scale_factor=3), (1, 2, 3, 3)),
    ("UpsamplingBilinear2d", (), dict(size=(5, 6)), (1, 2, 3, 3)),
    ("PixelShuffle", (2,), {}, (2, 8, 3, 3)),
    ("PixelUnshuffle", (2,), {}, (2, 2, 4, 6)),
    ("ChannelShuffle", (3,), {}, (2, 6, 2, 2)),
    ("Unfold", (2,), dict(padding=1, stride=2), (2, 3, 5, 5)),
    ("Fold", ((4, 5), 2), {}, (2, 8, 12)),
    ("InstanceNorm1d", (3,), {}, (2, 3, 6)),
    ("InstanceNorm1d", (3,), dict(affine=True), (3, 6)),
    ("InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True), (2, 3, 4, 4)),
    ("InstanceNorm3d", (2,), dict(affine=True), (2, 2, 3, 3, 3)),
    ("BatchNorm3d", (2,), {}, (3, 2, 2, 3, 2)),
    ("RMSNorm", (4,), {}, (2, 3, 4)),
    ("RMSNorm", ([3, 4],), dict(eps=1e-5, elementwise_affine=False), (2, 3, 4)),
    ("LocalResponseNorm", (3,), dict(alpha=0.1, beta=0.5, k=2.0), (2, 5, 3, 3)),
]
IDS = [
    f"{name}-{[case[0] for case in LAYERS[:i]].count(name)}"  # the name's n-th case
    for i, (name, *_rest) in enumerate(LAYERS)
]


def _randomize(layer, rng):
    """Parameters away from their defaults, so a swapped or missing one shows."""
    with gf.no_grad():
        for p in layer.parameters():
            p.copy_(rng.uniform(0.5, 1.5, p.shape))


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), LAYERS, ids=IDS)
def test_layer_matches_torch(rng, name, args, kwargs, shape):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _randomize(ours, rng)
    load_into_torch(ours, theirs)
    for _ in range(2):  # the second step sees the running statistics the first one moved
        x = rng.standard_normal(shape).astype(numpy.float32)
        assert_matches_torch(ours, theirs, x, rng, rtol=1e-4, atol=1e-5)
    for key, value in theirs.state_dict().items():
        numpy.testing.assert_allclose(as_numpy(ours.state_dict()[key]), value.numpy(), rtol=1e-5,
                                      atol=1e-6, err_msg=key)  # fmt: skip
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(numpy.float32)
    assert_matches_torch(ours, theirs, x, rng, rtol=1e-4, atol=1e-5)


GRADCHECKED = ["Conv3d-0", "ConvTranspose1d-0", "ConvTranspose3d-0", "LPPool2d-0",
               "MaxPool3d-1", "AvgPool3d-0", "AdaptiveMaxPool2d-0", "AdaptiveMaxPool3d-0",
               "ReflectionPad2d-0", "ReplicationPad2d-0", "CircularPad3d-0", "Upsample-1",
               "Fold-0", "InstanceNorm2d-0", "RMSNorm-0", "LocalResponseNorm-0"]  # fmt: skip
assert set(GRADCHECKED) <= set(IDS)


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "shape"),
    [case for case, i in zip(LAYERS, IDS) if i in GRADCHECKED],
    ids=GRADCHECKED,
)
def test_layer_gradcheck(device, name, args, kwargs, shape):
    layer = getattr(nn, name)(*args, **kwargs).to(device).double()
    x = numpy.random.default_rng(0).permutation(int(numpy.prod(shape))).reshape(shape) * 0.1
    assert_gradcheck(layer, gf.tensor(x, device=device, requires_grad=True))


def test_layers_run_on_the_device(device):
    x = gf.randn(2, 4, 4, 4, 4, device=device)
    model = nn.Sequential(
        nn.Conv3d(4, 4, 3, padding=1), nn.MaxPool3d(2), nn.Dropout3d(0.2), nn.Flatten(1, 2),
        nn.InstanceNorm2d(8, affine=True), nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.ReflectionPad2d(1), nn.PixelUnshuffle(2), nn.Dropout2d(0.1),
    ).to(device)  # fmt: skip
    y = model(x)
    assert y.shape == (2, 32, 3, 3) and y.device == x.device
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "args", "shape"),
    [("Dropout1d", (0.5,), (4, 8, 5)), ("Dropout2d", (0.5,), (4, 8, 3, 3)),
     ("Dropout3d", (0.5,), (4, 8, 2, 2, 2)), ("AlphaDropout", (0.5,), (4, 8)),
     ("FeatureAlphaDropout", (0.5,), (4, 8, 3))],
)  # fmt: skip
def test_dropout_layers(name, args, shape):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    assert repr(getattr(nn, name)(0.3, inplace=True)) == repr(getattr(torch.nn, name)(0.3, True))
    x = gf.ones(*shape)
    y = as_numpy(ours(x))
    assert len(numpy.unique(y)) == 2  # training: dropped and kept values
    if name != "AlphaDropout":  # one draw per channel
        per_channel = y.reshape(*shape[:2], -1) if len(shape) > 2 else y
        assert (per_channel.min(axis=-1) == per_channel.max(axis=-1)).all()
    assert ours.eval()(x) is x
    with pytest.raises(ValueError, match=rf"^{name}: p must be in \[0, 1\], got 1.5$"):
        getattr(nn, name)(1.5)


@pytest.mark.parametrize(
    ("make", "shape", "error", "message"),
    [
        (lambda: nn.Conv3d(2, 3, 2), (2, 3, 3, 3, 3), ValueError,
         "Conv3d: expected 2 input channels (dim 1), got input of shape (2, 3, 3, 3, 3) with 3"),
        (lambda: nn.Conv3d(2, 3, 2), (2, 3), ValueError,
         "Conv3d: expected a 5-D input (N, C, D, H, W) or an unbatched 4-D input (C, D, H, W), "
         "got shape (2, 3)"),
        (lambda: nn.ConvTranspose1d(2, 3, 2, padding="same"), None, ValueError,
         "ConvTranspose1d: padding must be an int or a tuple of 1, got 'same'"),
        (lambda: nn.ReflectionPad2d(1), (5,), ValueError,
         "ReflectionPad2d: expected 3D or 4D input (got 1D input)"),
        (lambda: nn.ZeroPad2d((1, 2, 3)), None, TypeError,
         "ZeroPad2d: padding must be an int or a tuple of 4 ints, got (1, 2, 3)"),
        (lambda: nn.InstanceNorm1d(3, affine=True), (2, 4, 5), ValueError,
         "InstanceNorm1d: expected input's size at dim=1 to match num_features (3), but got: 4."),
        (lambda: nn.InstanceNorm2d(3), (2, 3), ValueError,
         "InstanceNorm2d: expected 3D or 4D input (got 2D input)"),
        (lambda: nn.BatchNorm3d(3), (2, 3, 4, 4), ValueError,
         "BatchNorm3d: expected input of shape (N, C, D, H, W), got shape (2, 3, 4, 4)"),
    ],
)  # fmt: skip
def test_layer_errors(make, shape, error, message):
    with pytest.raises(error) as info:
        layer = make()
        layer(gf.zeros(*shape))
    assert str(info.value) == message


def test_instance_norm_eval_uses_running_stats_when_tracked():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(0)
    ours = nn.InstanceNorm1d(3, track_running_stats=True)
    theirs = torch.nn.InstanceNorm1d(3, track_running_stats=True)
    for _ in range(3):
        x = (rng.standard_normal((4, 3, 5)) * 2 + 1).astype(numpy.float32)
        assert_matches_torch(ours, theirs, x, rng)
    assert int(ours.num_batches_tracked.item()) == 0  # PyTorch's InstanceNorm counts nothing
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((4, 3, 5)).astype(numpy.float32)
    assert_matches_torch(ours, theirs, x, rng)


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "shape"),
    [case for case in LAYERS if case[0] in ("Conv3d", "ConvTranspose1d", "InstanceNorm2d",
                                             "BatchNorm3d", "RMSNorm")],
)  # fmt: skip
def test_torchs_state_dict_loads_into_the_layer(rng, name, args, kwargs, shape):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(0.5, 1.5)
    ours = getattr(nn, name)(*args, **kwargs)
    ours.load_state_dict({k: gf.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = rng.standard_normal(shape).astype(numpy.float32)
    assert_matches_torch(ours, theirs, x, rng, rtol=1e-4, atol=1e-5)
