"""conv3d, conv_transpose1d and conv_transpose3d: PyTorch parity (values and all three
gradients), float64 gradcheck, grad_fn names, and the error messages."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops.conv import conv_transpose1d
from gradflow.ops.conv3d import conv3d, conv_transpose3d
from gradflow.testing import gradcheck


def host(t):
    return t.detach().cpu().numpy()


def assert_conv_matches_torch(device, ours, theirs_name, x_shape, w_shape, bias, kwargs):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(0)
    groups = kwargs.get("groups", 1)
    out_c = w_shape[0] if theirs_name == "conv3d" else w_shape[1] * groups
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if bias:
        arrays.append(rng.standard_normal(out_c))
    a = [gf.tensor(v, device=device, requires_grad=True) for v in arrays]
    b = [torch.tensor(v, requires_grad=True) for v in arrays]
    ya, yb = ours(*a, **kwargs), getattr(torch.nn.functional, theirs_name)(*b, **kwargs)
    assert tuple(ya.shape) == tuple(yb.shape)
    numpy.testing.assert_allclose(host(ya), yb.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(ya.shape)
    ya.backward(gf.tensor(g, device=device))
    yb.backward(torch.tensor(g))
    for name, p, q in zip(("input", "weight", "bias"), a, b):
        numpy.testing.assert_allclose(host(p.grad), q.grad.numpy(), rtol=1e-10, atol=1e-12,
                                      err_msg=name)  # fmt: skip
    return ya


CONV3D_CASES = [
    ((2, 4, 5, 6, 4), (3, 4, 3, 2, 2), True, dict(stride=(2, 1, 1), padding=1)),
    ((4, 5, 5, 5), (6, 2, 2, 2, 2), True, dict(groups=2, dilation=2)),
    ((2, 2, 5, 6, 4), (3, 2, 3, 2, 2), True, dict(padding="same")),
    ((2, 2, 5, 6, 4), (3, 2, 3, 2, 2), False, dict(padding="valid", stride=2)),
    ((1, 3, 3, 3, 3), (3, 1, 1, 1, 1), False, dict(groups=3)),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kwargs"), CONV3D_CASES)
def test_conv3d_matches_torch(device, x_shape, w_shape, bias, kwargs):
    y = assert_conv_matches_torch(device, conv3d, "conv3d", x_shape, w_shape, bias, kwargs)
    assert repr(y.grad_fn) == ("<ReshapeBackward>" if len(x_shape) == 4 else "<Conv3dBackward>")


def test_conv3d_gradcheck(device):
    rng = numpy.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((2, 2, 3, 4, 3)), device=device, requires_grad=True)
    w = gf.tensor(rng.standard_normal((2, 1, 2, 2, 1)), device=device, requires_grad=True)
    b = gf.tensor(rng.standard_normal(2), device=device, requires_grad=True)
    assert gradcheck(lambda x, w, b: conv3d(x, w, b, stride=(1, 2, 1), padding=(1, 0, 1),
                                            groups=2), [x, w, b])  # fmt: skip


def test_conv3d_input_only_or_weight_only_gradients(device):
    rng = numpy.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((1, 2, 3, 3, 3)), device=device, requires_grad=True)
    w = gf.tensor(rng.standard_normal((2, 2, 2, 2, 2)), device=device)
    conv3d(x, w).sum().backward()
    assert x.grad is not None and w.grad is None
    x2 = gf.tensor(host(x), device=device)
    w2 = gf.tensor(host(w), device=device, requires_grad=True)
    conv3d(x2, w2).sum().backward()
    assert w2.grad is not None and x2.grad is None


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (((1, 3, 4, 4, 4), (2, 2, 2, 2, 2)), {}, ValueError,
         "conv3d: input of shape (1, 3, 4, 4, 4) has 3 channels, but weight of shape "
         "(2, 2, 2, 2, 2) with groups=1 expects 2 (weight.shape[1] * groups)"),
        (((1, 2, 4, 4), (2, 2, 2, 2, 2)), {}, ValueError, None),
        (((1, 2, 4, 4, 4, 4), (2, 2, 2, 2, 2)), {}, ValueError,
         "conv3d: expected a 5-D input (N, C, D, H, W) or a 4-D unbatched input (C, D, H, W), "
         "got input of shape (1, 2, 4, 4, 4, 4)"),
        (((1, 2, 4, 4, 4), (2, 2, 2, 2)), {}, ValueError,
         "conv3d: weight of shape (2, 2, 2, 2) should be 5-D (out_channels, in_channels/groups, "
         "kernel_size, kernel_size, kernel_size)"),
        (((1, 2, 2, 2, 2), (2, 2, 3, 3, 3)), {}, ValueError,
         "conv3d: input of shape (1, 2, 2, 2, 2) is too small for weight of shape "
         "(2, 2, 3, 3, 3) (dilation (1, 1, 1), padding (0, 0, 0)+(0, 0, 0)): the output would "
         "have spatial size (0, 0, 0); use a larger input or more padding"),
        (((1, 2, 4, 4, 4), (2, 2, 3, 3, 3)), {"padding": "same", "stride": 2}, ValueError,
         "conv3d: padding='same' needs stride 1 (as in PyTorch), got stride (2, 2, 2); pass an "
         "explicit padding for a strided convolution"),
    ],
)  # fmt: skip
def test_conv3d_errors(args, kwargs, error, message):
    x_shape, w_shape = args
    if message is None:  # (1, 2, 4, 4) is an unbatched (C=1, D, H, W) input: a channel mismatch
        with pytest.raises(error, match="has 1 channels"):
            conv3d(gf.zeros(*x_shape), gf.zeros(*w_shape))
        return
    with pytest.raises(error) as info:
        conv3d(gf.zeros(*x_shape), gf.zeros(*w_shape), **kwargs)
    assert str(info.value) == message


# ---- conv_transpose1d ---------------------------------------------------------------------------

CONV_T1D_CASES = [
    ((2, 4, 5), (4, 3, 3), True, dict(stride=2, padding=1, output_padding=1)),
    ((4, 5), (4, 3, 2), True, {}),
    ((2, 4, 5), (4, 1, 3), True, dict(groups=2, dilation=2)),
    ((2, 3, 6), (3, 2, 4), False, dict(stride=3, padding=(2,))),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kwargs"), CONV_T1D_CASES)
def test_conv_transpose1d_matches_torch(device, x_shape, w_shape, bias, kwargs):
    y = assert_conv_matches_torch(device, conv_transpose1d, "conv_transpose1d", x_shape,
                                  w_shape, bias, kwargs)  # fmt: skip
    assert repr(y.grad_fn) == "<ConvTranspose1dBackward>"


def test_conv_transpose1d_gradcheck(device):
    rng = numpy.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((2, 2, 4)), device=device, requires_grad=True)
    w = gf.tensor(rng.standard_normal((2, 3, 3)), device=device, requires_grad=True)
    b = gf.tensor(rng.standard_normal(3), device=device, requires_grad=True)
    assert gradcheck(lambda x, w, b: conv_transpose1d(x, w, b, stride=2, padding=1), [x, w, b])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(padding="same"),
         "conv_transpose1d: padding 'same' is not supported; pass an int or a tuple of 1"),
        (dict(stride=2, output_padding=2),
         "conv_transpose1d: output_padding (2,) must be smaller than either stride (2,) or "
         "dilation (1,)"),
    ],
)  # fmt: skip
def test_conv_transpose1d_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        conv_transpose1d(gf.zeros(1, 2, 4), gf.zeros(2, 3, 3), **kwargs)
    assert str(info.value) == message


# ---- conv_transpose3d ---------------------------------------------------------------------------

CONV_T3D_CASES = [
    ((2, 4, 3, 4, 3), (4, 3, 3, 2, 2), True, dict(stride=2, padding=1, output_padding=1)),
    ((4, 3, 3, 3), (4, 1, 2, 2, 2), True, dict(groups=2, dilation=(1, 2, 1))),
    ((1, 2, 2, 3, 2), (2, 2, 3, 3, 3), False,
     dict(stride=(1, 2, 3), padding=(0, 1, 1), output_padding=(0, 1, 2))),
]  # fmt: skip


@pytest.mark.parametrize(("x_shape", "w_shape", "bias", "kwargs"), CONV_T3D_CASES)
def test_conv_transpose3d_matches_torch(device, x_shape, w_shape, bias, kwargs):
    assert_conv_matches_torch(device, conv_transpose3d, "conv_transpose3d", x_shape, w_shape,
                              bias, kwargs)  # fmt: skip


def test_conv_transpose3d_gradcheck(device):
    rng = numpy.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((1, 2, 2, 3, 2)), device=device, requires_grad=True)
    w = gf.tensor(rng.standard_normal((2, 2, 2, 1, 2)), device=device, requires_grad=True)
    b = gf.tensor(rng.standard_normal(2), device=device, requires_grad=True)
    fn = lambda x, w, b: conv_transpose3d(x, w, b, stride=(2, 1, 1), padding=(0, 0, 1))  # noqa: E731
    assert gradcheck(fn, [x, w, b])


@pytest.mark.parametrize(
    ("x_shape", "kwargs", "message"),
    [
        ((1, 2, 3, 3, 3), dict(padding="same"),
         "conv_transpose3d: padding 'same' is not supported; pass an int or a triple"),
        ((1, 2, 3, 3, 3), dict(stride=2, output_padding=2),
         "conv_transpose3d: output_padding (2, 2, 2) must be smaller than either stride "
         "(2, 2, 2) or dilation (1, 1, 1)"),
        ((2, 3, 3), {},
         "conv_transpose3d: expected a 5-D input (N, C, D, H, W) or a 4-D unbatched input "
         "(C, D, H, W), got input of shape (2, 3, 3)"),
        ((1, 2, 0, 3, 3), {},
         "conv_transpose3d: input of shape (1, 2, 0, 3, 3) has an empty spatial dim; give each "
         "sample at least one pixel per spatial dim"),
    ],
)  # fmt: skip
def test_conv_transpose3d_errors(x_shape, kwargs, message):
    with pytest.raises(ValueError) as info:
        conv_transpose3d(gf.zeros(*x_shape), gf.zeros(2, 3, 2, 2, 2), **kwargs)
    assert str(info.value) == message
