"""interpolate, pixel_shuffle / pixel_unshuffle / channel_shuffle, unfold / fold and
affine_grid / grid_sample: PyTorch parity (values and gradients), float64 gradcheck, and the
error messages."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops.resample import (
    affine_grid,
    channel_shuffle,
    fold,
    grid_sample,
    interpolate,
    pixel_shuffle,
    pixel_unshuffle,
    unfold,
    upsample_bilinear,
    upsample_nearest,
)
from gradflow.testing import gradcheck


def host(t):
    return t.detach().cpu().numpy()


def assert_matches_torch(device, ours, theirs, shape, seed=0):
    """ours(x) and theirs(x) on one float64 input: equal outputs and input gradients."""
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(seed).standard_normal(shape)
    a = gf.tensor(x, device=device, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    ya, yb = ours(a), theirs(b)
    assert tuple(ya.shape) == tuple(yb.shape)
    numpy.testing.assert_allclose(host(ya), yb.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = numpy.random.default_rng(seed + 1).standard_normal(ya.shape)
    ya.backward(gf.tensor(g, device=device))
    yb.backward(torch.tensor(g))
    numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)


INTERPOLATE_CASES = [
    ((2, 3, 5), dict(size=8)),
    ((2, 3, 5), dict(scale_factor=2.3)),
    ((2, 3, 7), dict(size=3, mode="nearest")),
    ((2, 3, 7), dict(size=3, mode="nearest-exact")),
    ((2, 3, 5), dict(size=8, mode="linear")),
    ((2, 3, 5), dict(size=8, mode="linear", align_corners=True)),
    ((2, 3, 9), dict(size=4, mode="linear")),
    ((2, 3, 9), dict(size=4, mode="area")),
    ((1, 2, 5, 6), dict(size=(7, 9), mode="bilinear")),
    ((1, 2, 5, 6), dict(scale_factor=2, mode="bilinear", align_corners=True)),
    ((1, 2, 5, 6), dict(scale_factor=1.7, mode="bilinear")),
    ((1, 2, 5, 6), dict(scale_factor=1.5, mode="bilinear", recompute_scale_factor=True)),
    ((1, 2, 5, 6), dict(size=(9, 4), mode="bicubic")),
    ((1, 2, 5, 6), dict(size=(9, 4), mode="bicubic", align_corners=True)),
    ((1, 2, 5, 6), dict(scale_factor=0.6, mode="bicubic")),
    ((1, 2, 5, 6), dict(size=(3, 4), mode="area")),
    ((1, 2, 5, 6), dict(size=(9, 13), mode="nearest-exact")),
    ((2, 1, 4, 4), dict(scale_factor=(2, 3))),
    ((1, 2, 3, 5), dict(scale_factor=1.1)),  # 2-D nearest: PyTorch copies when sizes match
    ((1, 2, 3, 5), dict(scale_factor=2.1)),  # and halves the index when they double
    ((1, 2, 6, 7), dict(size=(19, 23), mode="nearest-exact")),
    ((2, 3, 7), dict(scale_factor=0.3, mode="nearest-exact")),
    ((1, 2, 5, 6), dict(size=(5, 6), mode="bilinear")),
    ((1, 2, 3, 4, 5), dict(size=(5, 6, 7), mode="trilinear")),
    ((1, 2, 3, 4, 5), dict(scale_factor=2)),
    ((1, 2, 3, 4, 5), dict(size=(2, 3, 2), mode="area")),
]
INTERPOLATE_IDS = [f"{shape}-{kwargs}" for shape, kwargs in INTERPOLATE_CASES]


@pytest.mark.parametrize(("shape", "kwargs"), INTERPOLATE_CASES, ids=INTERPOLATE_IDS)
def test_interpolate_matches_torch(device, shape, kwargs):
    torch = pytest.importorskip("torch")
    assert_matches_torch(
        device,
        lambda t: interpolate(t, **kwargs),
        lambda t: torch.nn.functional.interpolate(t, **kwargs),
        shape,
    )


@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [
        ((1, 2, 4), dict(size=7, mode="linear")),
        ((1, 1, 3, 4), dict(size=(5, 3), mode="bilinear", align_corners=True)),
        ((1, 1, 3, 4), dict(size=(5, 6), mode="bicubic")),
        ((1, 1, 5, 4), dict(size=(2, 3), mode="area")),
        ((1, 1, 3, 4), dict(scale_factor=2, mode="nearest")),
    ],
)
def test_interpolate_gradcheck(device, shape, kwargs):
    x = gf.tensor(numpy.random.default_rng(0).standard_normal(shape), device=device,
                  requires_grad=True)  # fmt: skip
    assert gradcheck(lambda x: interpolate(x, **kwargs), [x])


def test_interpolate_float32_and_aliases(device):
    x = gf.tensor(numpy.arange(12.0, dtype=numpy.float32).reshape(1, 1, 3, 4), device=device)
    y = interpolate(x, scale_factor=2, mode="bilinear")
    assert y.dtype == gf.float32 and y.shape == (1, 1, 6, 8)
    numpy.testing.assert_array_equal(host(upsample_nearest(x, scale_factor=2)),
                                     host(interpolate(x, scale_factor=2)))  # fmt: skip
    numpy.testing.assert_array_equal(
        host(upsample_bilinear(x, size=(5, 5))),
        host(interpolate(x, size=(5, 5), mode="bilinear", align_corners=True)),
    )


@pytest.mark.parametrize(
    ("kwargs", "shape", "error", "message"),
    [
        (dict(size=3, mode="linear"), (1, 2, 4, 4), NotImplementedError,
         "Got 4D input, but linear mode needs 3D input"),
        (dict(size=3, mode="bilinear"), (1, 2, 5), NotImplementedError,
         "Got 3D input, but bilinear mode needs 4D input"),
        (dict(size=3, mode="bicubic"), (1, 2, 5), NotImplementedError,
         "Got 3D input, but bicubic mode needs 4D input"),
        (dict(size=3, align_corners=True), (1, 2, 4, 4), ValueError,
         "align_corners option can only be set with the interpolating modes: linear | "
         "bilinear | bicubic | trilinear"),
        (dict(), (1, 2, 4, 4), ValueError, "either size or scale_factor should be defined"),
        (dict(size=3, scale_factor=2), (1, 2, 4, 4), ValueError,
         "only one of size or scale_factor should be defined"),
        (dict(size=(3, 3, 3)), (1, 2, 4, 4), ValueError,
         "Input and output size must have the same number of spatial dimensions, but got input "
         "with spatial dimensions of [4, 4] and output size of (3, 3, 3). Please provide input "
         "tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format."),
        (dict(scale_factor=(2, 2, 2)), (1, 2, 4, 4), ValueError,
         "Input and scale_factor must have the same number of spatial dimensions, but got "
         "input with spatial dimensions of [4, 4] and scale_factor of shape (2, 2, 2). Please "
         "provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, "
         "...,sK) format."),
        (dict(size=3, mode="foo"), (1, 2, 4, 4), NotImplementedError,
         "Input Error: Only 3D, 4D and 5D input Tensors supported (got 4D) for the modes: "
         "nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact "
         "(got foo)"),
        (dict(size=3), (2, 3), NotImplementedError,
         "Input Error: Only 3D, 4D and 5D input Tensors supported (got 2D) for the modes: "
         "nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact "
         "(got nearest)"),
        (dict(size=3, mode="bilinear", antialias=True), (1, 2, 4, 4), NotImplementedError,
         "interpolate: antialias=True is not supported by gradflow; pass antialias=False (or "
         "low-pass filter the input, e.g. with avg_pool2d, before downsampling)"),
        (dict(scale_factor=-1.0), (1, 2, 4, 4), ValueError,
         "interpolate: scale_factor must be positive and finite, got (-1.0, -1.0)"),
        (dict(scale_factor=0.1), (1, 2, 4, 4), ValueError,
         "interpolate: input of spatial size (4, 4) with scale_factor (0.1, 0.1) gives an "
         "empty output (0, 0); use a larger scale_factor"),
    ],
)  # fmt: skip
def test_interpolate_errors(kwargs, shape, error, message):
    with pytest.raises(error) as info:
        interpolate(gf.zeros(*shape), **kwargs)
    assert str(info.value) == message


# ---- pixel shuffle ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 8, 3, 4), (8, 2, 3), (2, 1, 12, 2, 2)])
def test_pixel_shuffle_matches_torch_and_round_trips(device, shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    assert_matches_torch(device, lambda t: pixel_shuffle(t, 2), lambda t: F.pixel_shuffle(t, 2),
                         shape)  # fmt: skip
    x = gf.tensor(numpy.random.default_rng(0).standard_normal(shape), device=device)
    numpy.testing.assert_array_equal(host(pixel_unshuffle(pixel_shuffle(x, 2), 2)), host(x))
    unshuffled = (*shape[:-3], shape[-3] // 4, shape[-2] * 2, shape[-1] * 2)
    assert_matches_torch(device, lambda t: pixel_unshuffle(t, 2),
                         lambda t: F.pixel_unshuffle(t, 2), unshuffled)  # fmt: skip


def test_pixel_shuffle_gradcheck(device):
    x = gf.tensor(numpy.random.default_rng(0).standard_normal((1, 4, 2, 3)), device=device,
                  requires_grad=True)  # fmt: skip
    assert gradcheck(lambda x: pixel_shuffle(x, 2), [x])
    assert gradcheck(
        lambda x: pixel_unshuffle(x, 2), [pixel_shuffle(x, 2).detach().requires_grad_()]
    )


@pytest.mark.parametrize(
    ("fn", "shape", "error", "message"),
    [
        (lambda x: pixel_shuffle(x, 2), (1, 5, 2, 2), RuntimeError,
         "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
         "of upscale_factor, but input.size(-3)=5 is not divisible by 4"),
        (lambda x: pixel_shuffle(x, 2), (4, 2), RuntimeError,
         "pixel_shuffle expects input to have at least 3 dimensions, but got input with 2 "
         "dimension(s)"),
        (lambda x: pixel_unshuffle(x, 2), (1, 1, 3, 4), RuntimeError,
         "pixel_unshuffle expects height to be divisible by downscale_factor, but "
         "input.size(-2)=3 is not divisible by 2"),
        (lambda x: pixel_unshuffle(x, 2), (1, 1, 4, 3), RuntimeError,
         "pixel_unshuffle expects width to be divisible by downscale_factor, but "
         "input.size(-1)=3 is not divisible by 2"),
        (lambda x: pixel_unshuffle(x, 2), (4, 2), RuntimeError,
         "pixel_unshuffle expects input to have at least 3 dimensions, but got input with 2 "
         "dimension(s)"),
        (lambda x: pixel_shuffle(x, 0), (1, 4, 2, 2), ValueError,
         "pixel_shuffle: upscale_factor must be a positive int, got 0"),
    ],
)  # fmt: skip
def test_pixel_shuffle_errors(fn, shape, error, message):
    with pytest.raises(error) as info:
        fn(gf.zeros(*shape))
    assert str(info.value) == message


def test_channel_shuffle_matches_torch(device):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape in [(2, 6, 3), (2, 6, 2, 3), (1, 4, 2, 2, 2)]:
        assert_matches_torch(device, lambda t: channel_shuffle(t, 2),
                             lambda t: F.channel_shuffle(t, 2), shape)  # fmt: skip


@pytest.mark.parametrize(
    ("shape", "groups", "message"),
    [
        ((1, 5, 2, 2), 2,
         "Number of channels must be divisible by groups. Got 5 channels and 2 groups."),
        ((5, 2), 2, "channel_shuffle expects input with > 2 dims, but got input with sizes [5, 2]"),
        ((1, 4, 2), 0,
         "Number of groups to divide channels in must be positive. Value of groups:0"),
    ],
)  # fmt: skip
def test_channel_shuffle_errors(shape, groups, message):
    with pytest.raises(RuntimeError) as info:
        channel_shuffle(gf.zeros(*shape), groups)
    assert str(info.value) == message


# ---- unfold / fold ------------------------------------------------------------------------------

FOLD_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(1, 2), stride=2),
]


@pytest.mark.parametrize("kwargs", FOLD_CASES, ids=[str(k) for k in FOLD_CASES])
@pytest.mark.parametrize("batched", [True, False])
def test_unfold_and_fold_match_torch(device, kwargs, batched):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape = (2, 3, 5, 6) if batched else (3, 5, 6)
    assert_matches_torch(device, lambda t: unfold(t, **kwargs), lambda t: F.unfold(t, **kwargs),
                         shape)  # fmt: skip
    cols_shape = tuple(F.unfold(torch.zeros(shape), **kwargs).shape)
    assert_matches_torch(device, lambda t: fold(t, (5, 6), **kwargs),
                         lambda t: F.fold(t, (5, 6), **kwargs), cols_shape)  # fmt: skip


def test_unfold_and_fold_gradcheck(device):
    rng = numpy.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((1, 2, 4, 3)), device=device, requires_grad=True)
    assert gradcheck(lambda x: unfold(x, 2, padding=1, stride=(1, 2)), [x])
    cols = gf.tensor(rng.standard_normal((1, 8, 10)), device=device, requires_grad=True)
    assert gradcheck(lambda c: fold(c, (4, 3), 2, padding=(1, 0), dilation=1), [cols])


@pytest.mark.parametrize(
    ("fn", "shape", "error", "message"),
    [
        (lambda x: unfold(x, 2), (2, 3, 4, 4, 4), ValueError,
         "unfold: expected a 3-D (unbatched) or 4-D (batched) input, got input of shape "
         "(2, 3, 4, 4, 4); only 4-D input tensors (batched image-like tensors) are supported, "
         "as in PyTorch"),
        (lambda x: unfold(x, 5), (1, 1, 3, 3), RuntimeError,
         "unfold: the spatial size (3, 3) with padding (0, 0), kernel_size (5, 5) and dilation "
         "(1, 1) gives no sliding block ((-1, -1)); use a smaller kernel or more padding"),
        (lambda x: fold(x, (4, 4), 2), (1, 7, 9), RuntimeError,
         "fold: expected size of input's dimension 1 to be divisible by the product of "
         "kernel_size, but got input.size(1)=7 and kernel_size=(2, 2)"),
        (lambda x: fold(x, (4, 4), 2), (1, 8, 8), RuntimeError,
         "fold: given output_size=(4, 4), kernel_size=(2, 2), dilation=(1, 1), padding=(0, 0), "
         "stride=(1, 1), expected size of input's dimension 2 to match the calculated number "
         "of sliding blocks 3 * 3 = 9, but got input.size(2)=8"),
        (lambda x: fold(x, (4, 4), 2), (8,), ValueError,
         "fold: expected a 2-D (unbatched) or 3-D (batched) input, got input of shape (8,)"),
    ],
)  # fmt: skip
def test_unfold_and_fold_errors(fn, shape, error, message):
    with pytest.raises(error) as info:
        fn(gf.zeros(*shape))
    assert str(info.value) == message


# ---- affine_grid / grid_sample ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "align_corners"),
    [((2, 3, 4, 5), False), ((2, 3, 4, 5), True), ((2, 1, 3, 4, 2), False), ((2, 1, 1, 3), None)],
)
def test_affine_grid_matches_torch(device, size, align_corners):
    torch = pytest.importorskip("torch")
    dims = len(size) - 2
    assert_matches_torch(
        device,
        lambda t: affine_grid(t, size, align_corners),
        lambda t: torch.nn.functional.affine_grid(t, size, bool(align_corners)),
        (size[0], dims, dims + 1),
    )


GRID_CASES = [
    (mode, padding_mode, align)
    for mode in ("bilinear", "nearest")
    for padding_mode in ("zeros", "border", "reflection")
    for align in (False, True)
]


@pytest.mark.parametrize(("mode", "padding_mode", "align_corners"), GRID_CASES)
def test_grid_sample_matches_torch(device, mode, padding_mode, align_corners):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(0)
    arrays = [rng.standard_normal((2, 3, 4, 5)), rng.uniform(-1.4, 1.4, (2, 3, 6, 2))]
    ours = [gf.tensor(v, device=device, requires_grad=True) for v in arrays]
    theirs = [torch.tensor(v, requires_grad=True) for v in arrays]
    kwargs = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    ya = grid_sample(*ours, **kwargs)
    yb = torch.nn.functional.grid_sample(*theirs, **kwargs)
    numpy.testing.assert_allclose(host(ya), yb.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(ya.shape)
    ya.backward(gf.tensor(g, device=device))
    yb.backward(torch.tensor(g))
    for name, a, b in zip(("input", "grid"), ours, theirs):
        numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12,
                                      err_msg=name)  # fmt: skip


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_gradcheck(device, padding_mode):
    rng = numpy.random.default_rng(1)
    x = gf.tensor(rng.standard_normal((1, 2, 3, 4)), device=device, requires_grad=True)
    # Away from pixel boundaries and the clip points, where the bilinear weights have kinks.
    grid = gf.tensor(rng.uniform(-0.9, 0.9, (1, 2, 3, 2)), device=device, requires_grad=True)
    fn = lambda x, grid: grid_sample(x, grid, padding_mode=padding_mode)  # noqa: E731
    assert gradcheck(fn, [x, grid], eps=1e-6)
    theta = gf.tensor(rng.standard_normal((1, 2, 3)) * 0.3, device=device, requires_grad=True)
    fn = lambda x, t: grid_sample(x, affine_grid(t, (1, 2, 3, 3)), padding_mode=padding_mode)  # noqa: E731
    assert gradcheck(fn, [x, theta])


@pytest.mark.parametrize(
    ("fn", "error", "message"),
    [
        (lambda x, g: grid_sample(x, g, mode="foo"), ValueError,
         "nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
         "but got: 'foo'"),
        (lambda x, g: grid_sample(x, g, padding_mode="foo"), ValueError,
         "nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
         "'reflection', but got: 'foo'"),
        (lambda x, g: grid_sample(x, g, mode="bicubic"), NotImplementedError,
         "grid_sample: mode 'bicubic' is not supported by gradflow; use 'bilinear' (or upsample "
         "with interpolate(mode='bicubic') first)"),
        (lambda x, g: grid_sample(x.unsqueeze(2), g), NotImplementedError,
         "grid_sample: 5-D (volumetric) inputs are not supported by gradflow; sample each depth "
         "slice of a 4-D view with a 2-D grid instead"),
        (lambda x, g: grid_sample(gf.zeros(2, 1, 3, 3), g), RuntimeError,
         "grid_sampler(): expected grid and input to have same batch size, but got input with "
         "sizes [2, 1, 3, 3] and grid with sizes [1, 2, 2, 2]"),
        (lambda x, g: grid_sample(x, gf.zeros(1, 2, 2, 3)), RuntimeError,
         "grid_sampler(): expected grid to have size 2 in last dimension, but got grid with "
         "sizes [1, 2, 2, 3]"),
        (lambda x, g: grid_sample(x, g[0]), RuntimeError,
         "grid_sampler(): expected 4D input and grid with same number of dimensions, but got "
         "input with sizes [1, 1, 3, 3] and grid with sizes [2, 2, 2]"),
        (lambda x, g: grid_sample(x, g.double()), TypeError,
         "grid_sample: grid is float64 but input is float32; convert one to match"),
        (lambda x, g: affine_grid(gf.zeros(1, 3, 3), (1, 1, 3, 3)), ValueError,
         "Expected a batch of 2D affine matrices of shape Nx2x3 for size (1, 1, 3, 3). Got "
         "(1, 3, 3)."),
        (lambda x, g: affine_grid(gf.zeros(1, 2, 3), (1, 1, 3)), NotImplementedError,
         "affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
         "respectively. Got size (1, 1, 3)."),
        (lambda x, g: affine_grid(gf.zeros(2, 2, 3), (1, 1, 3, 3)), ValueError,
         "affine_grid: theta has 2 matrices but size (1, 1, 3, 3) has a batch of 1; pass one "
         "matrix per sample"),
    ],
)  # fmt: skip
def test_grid_errors(fn, error, message):
    with pytest.raises(error) as info:
        fn(gf.zeros(1, 1, 3, 3), gf.zeros(1, 2, 2, 2))
    assert str(info.value) == message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's inf - inf = NaN notices
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_interpolate_keeps_a_nan_local_as_torch_does(device, mode):
    """A NaN or infinity reaches only the outputs whose taps read it (the CPU then gathers the
    taps instead of applying its dense maps), forward and backward."""
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(0).standard_normal((1, 2, 5, 6))
    x[0, 0, 2, 3] = numpy.nan
    x[0, 1, 0, 0] = numpy.inf
    a = gf.tensor(x, device=device, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    ya = interpolate(a, size=(8, 9), mode=mode)
    yb = torch.nn.functional.interpolate(b, size=(8, 9), mode=mode)
    numpy.testing.assert_allclose(host(ya), yb.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = numpy.random.default_rng(1).standard_normal(ya.shape)
    g[0, 0, 0, 0] = numpy.inf
    ya.backward(gf.tensor(g, device=device))
    yb.backward(torch.tensor(g))
    numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_interpolate_nearest_takes_integer_images(device):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(0).integers(0, 255, (1, 3, 4, 5)).astype(numpy.uint8)
    for mode in ("nearest", "nearest-exact"):
        ours = interpolate(gf.tensor(x, device=device), size=(7, 9), mode=mode)
        theirs = torch.nn.functional.interpolate(torch.tensor(x), size=(7, 9), mode=mode)
        assert ours.dtype == gf.uint8
        numpy.testing.assert_array_equal(host(ours), theirs.numpy())
    with pytest.raises(TypeError, match="interpolate: argument 'input' has dtype uint8"):
        interpolate(gf.tensor(x), size=(7, 9), mode="bilinear")


@pytest.mark.parametrize(
    ("fn", "error", "message"),
    [
        (lambda: interpolate(gf.zeros(1, 2, 0, 3), size=(2, 2)), ValueError,
         "interpolate: input of shape (1, 2, 0, 3) has an empty spatial dim"),
        (lambda: affine_grid(gf.zeros(1, 2, 3), (1, 1, 0, 3)), ValueError,
         "affine_grid: expected a non-empty spatial size, got size (1, 1, 0, 3)"),
        (lambda: grid_sample(gf.zeros(1, 1, 0, 3), gf.zeros(1, 2, 2, 2)), RuntimeError,
         "grid_sampler(): expected input to have non-empty spatial dimensions, but input has "
         "sizes [1, 1, 0, 3]"),
    ],
)  # fmt: skip
def test_empty_spatial_inputs_are_named(fn, error, message):
    with pytest.raises(error) as info:
        fn()
    assert str(info.value) == message


def test_1d_nearest_with_an_unchanged_size_uses_the_scale_factor(device):
    """PyTorch's 1-D (and 3-D) nearest kernels read the scale even when the size does not
    change; gradflow's forward does the same, and its gradient is that forward's adjoint
    (PyTorch's backward copies instead, which is not)."""
    torch = pytest.importorskip("torch")
    x = numpy.arange(5.0).reshape(1, 1, 5)
    ours = interpolate(gf.tensor(x, device=device), scale_factor=1.1)
    theirs = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=1.1)
    numpy.testing.assert_array_equal(host(ours), theirs.numpy())  # [0, 0, 1, 2, 3]
    t = gf.tensor(x, device=device, requires_grad=True)
    assert gradcheck(lambda t: interpolate(t, scale_factor=1.1), [t])
