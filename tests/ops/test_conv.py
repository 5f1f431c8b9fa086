"""conv1d, conv2d and conv_transpose2d: gradcheck, PyTorch parity, the kernel route (CPU
emulation of kernels/conv.cu), non-contiguous inputs, the one-node/memory contract, errors."""

import re

import numpy
import pytest

import gradflow as gf
from gradflow.ops.conv import (
    Conv2dFunction,
    ConvTranspose2dFunction,
    conv1d,
    conv2d,
    conv_transpose2d,
)
from gradflow.ops.window import Window
from gradflow.testing import gradcheck
from gradflow.testing.emulation import route_kernels, unavailable_reason

needs_emulation = pytest.mark.skipif(
    unavailable_reason() is not None, reason=str(unavailable_reason())
)

# (input shape, weight shape, keyword arguments): stride, padding (ints, pairs, "same" with an
# even kernel and dilation, "valid"), dilation, groups (depthwise too), unbatched inputs.
CONV2D_CASES = [
    ((2, 3, 5, 4), (4, 3, 3, 2), {}),
    ((1, 2, 6, 5), (3, 2, 2, 3), dict(stride=2, padding=1)),
    ((2, 4, 6, 7), (4, 2, 3, 3), dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2)),
    ((3, 5, 4), (2, 3, 3, 3), dict(padding="same")),
    ((1, 2, 5, 6), (2, 2, 2, 4), dict(padding="same", dilation=(2, 1))),
    ((1, 2, 4, 4), (3, 2, 2, 2), dict(padding="valid", stride=(2, 1))),
    ((2, 4, 4, 3), (4, 1, 3, 3), dict(padding=1, groups=4)),
    ((1, 2, 3, 3), (2, 2, 2, 2), dict(padding=2)),
]
CONV1D_CASES = [
    ((2, 3, 7), (4, 3, 3), {}),
    ((3, 8), (2, 3, 2), dict(stride=2, padding=1, dilation=2)),
    ((2, 4, 6), (6, 2, 4), dict(padding="same", groups=2)),
]
# weight (C_in, C_out / groups, kh, kw)
TRANSPOSE_CASES = [
    ((2, 3, 3, 4), (3, 2, 3, 3), {}),
    ((1, 2, 3, 4), (2, 3, 2, 3), dict(stride=2, padding=1, output_padding=1)),
    (
        (2, 4, 3, 2),
        (4, 1, 3, 2),
        dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=(1, 2)),
    ),
    ((2, 3, 3), (2, 2, 2, 2), dict(stride=2, dilation=2, output_padding=1)),
    ((1, 2, 3, 3), (2, 3, 2, 3), dict(padding=(1, 0), dilation=(1, 2))),
    ((2, 3, 4, 5), (3, 2, 3, 2), dict(padding=1, dilation=2, output_padding=1)),  # op < dilation
]
OPS = {"conv2d": conv2d, "conv1d": conv1d, "conv_transpose2d": conv_transpose2d}
ALL_CASES = [
    pytest.param(name, *case, id=f"{name}-{i}")
    for name, cases in (
        ("conv2d", CONV2D_CASES),
        ("conv1d", CONV1D_CASES),
        ("conv_transpose2d", TRANSPOSE_CASES),
    )
    for i, case in enumerate(cases)
]


def _out_channels(name, w_shape, kwargs):
    return w_shape[1] * kwargs.get("groups", 1) if name == "conv_transpose2d" else w_shape[0]


def _arrays(name, x_shape, w_shape, kwargs, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(_out_channels(name, w_shape, kwargs))
    return x, w, b


def _tensors(arrays, device, dtype=numpy.float64):
    return [gf.tensor(a.astype(dtype), device=device, requires_grad=True) for a in arrays]


def host(t):
    return t.detach().cpu().numpy()


@pytest.mark.parametrize("name,x_shape,w_shape,kwargs", ALL_CASES)
def test_gradcheck(device, name, x_shape, w_shape, kwargs):
    x, w, b = _tensors(_arrays(name, x_shape, w_shape, kwargs), device)
    op = OPS[name]
    assert gradcheck(lambda x, w, b: op(x, w, b, **kwargs), [x, w, b])
    assert gradcheck(lambda x, w: op(x, w, **kwargs), [x, w], seed=1)  # no bias


def test_full_jacobian_of_a_strided_dilated_grouped_conv(device):
    x, w, b = _tensors(_arrays("conv2d", (1, 2, 5, 4), (2, 1, 2, 2), {}), device)
    fn = lambda x, w, b: conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)  # noqa: E731
    assert gradcheck(fn, [x, w, b], full_jacobian=True)
    x, w = _tensors(_arrays("conv_transpose2d", (1, 2, 2, 3), (2, 1, 2, 3), {})[:2], device)
    fn = lambda x, w: conv_transpose2d(x, w, stride=2, padding=(0, 1), output_padding=1)  # noqa: E731
    assert gradcheck(fn, [x, w], full_jacobian=True)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch pads a copy; we don't
@pytest.mark.parametrize("name,x_shape,w_shape,kwargs", ALL_CASES)
def test_matches_torch(device, name, x_shape, w_shape, kwargs):
    torch = pytest.importorskip("torch")
    arrays = _arrays(name, x_shape, w_shape, kwargs)
    ours = _tensors(arrays, device)
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = OPS[name](*ours, **kwargs)
    ty = getattr(torch.nn.functional, name)(*theirs, **kwargs)
    assert y.shape == tuple(ty.shape)
    numpy.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = numpy.random.default_rng(3).standard_normal(y.shape)
    y.backward(gf.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    for a, ta in zip(ours, theirs):
        numpy.testing.assert_allclose(host(a.grad), ta.grad.numpy(), rtol=1e-10, atol=1e-12)


def _forward_backward(name, arrays, kwargs, dtype, routed):
    tensors = _tensors(arrays, "cpu", dtype)
    g = numpy.random.default_rng(4).standard_normal
    if routed:
        with route_kernels():
            y = OPS[name](*tensors, **kwargs)
            y.backward(gf.tensor(g(y.shape).astype(dtype)))
    else:
        y = OPS[name](*tensors, **kwargs)
        y.backward(gf.tensor(g(y.shape).astype(dtype)))
    return [host(y)] + [host(t.grad) for t in tensors]


@needs_emulation
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name,x_shape,w_shape,kwargs", ALL_CASES)
def test_kernel_route_matches_numpy(name, x_shape, w_shape, kwargs, dtype):
    arrays = _arrays(name, x_shape, w_shape, kwargs)
    reference = _forward_backward(name, arrays, kwargs, dtype, routed=False)
    routed = _forward_backward(name, arrays, kwargs, dtype, routed=True)
    tol = 1e-5 if dtype == numpy.float32 else 1e-12
    for ours, ref in zip(routed, reference):
        assert ours.dtype == dtype
        numpy.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("routed", [False, pytest.param(True, marks=needs_emulation)])
def test_non_contiguous_input_and_weight(routed):
    rng = numpy.random.default_rng(5)
    x_base = gf.tensor(rng.standard_normal((5, 2, 9, 3)), requires_grad=True)
    w_base = gf.tensor(rng.standard_normal((3, 3, 2, 4)), requires_grad=True)
    x = x_base.permute(1, 3, 0, 2)[:, :, :, ::2]  # (2, 3, 5, 5), no unit strides anywhere
    w = w_base.permute(3, 1, 2, 0)  # (4, 3, 2, 3)
    assert not x.array.flags.c_contiguous and not w.array.flags.c_contiguous
    expected = conv2d(
        gf.tensor(x.detach().numpy().copy()),
        gf.tensor(w.detach().numpy().copy()),
        stride=(1, 2),
        padding=1,
    )
    with route_kernels() if routed else _nothing():
        y = conv2d(x, w, stride=(1, 2), padding=1)
    numpy.testing.assert_allclose(host(y), host(expected), rtol=1e-12)
    assert gradcheck(
        lambda a, b: conv2d(
            a.permute(1, 3, 0, 2)[:, :, :, ::2], b.permute(3, 1, 2, 0), stride=(1, 2), padding=1
        ),
        [x_base, w_base],
    )


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize(
    "x_shape,w_shape,kwargs",
    [
        ((2, 3, 6, 5), (3, 3, 3, 3), dict(padding=1)),
        ((1, 4, 5, 6), (2, 2, 2, 3), dict(padding="same", dilation=(2, 1), groups=2)),
        ((2, 2, 4, 4), (2, 2, 3, 3), dict(padding=(0, 2))),
    ],
)
def test_flipped_weight_input_gradient_matches_col2im(monkeypatch, x_shape, w_shape, kwargs):
    """The CPU computes a stride-1 conv's dX as a conv of dY where that pays; same result."""
    import gradflow.ops.conv as conv_module

    arrays = _arrays("conv2d", x_shape, w_shape, kwargs)
    window = conv_module._flipped_conv_window
    flipped = _forward_backward("conv2d", arrays, kwargs, numpy.float64, routed=False)
    calls = []
    monkeypatch.setattr(conv_module, "_flipped_conv_window", lambda *a: calls.append(window(*a)))
    plain = _forward_backward("conv2d", arrays, kwargs, numpy.float64, routed=False)
    assert calls and all(c is not None for c in calls)  # the rewrite applied (and was bypassed)
    numpy.testing.assert_allclose(flipped[1], plain[1], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "x_shape,w_shape,window_args,groups",
    [
        ((3, 4, 4, 4), (8, 4, 3, 3), ((1, 1), (1, 1), (1, 1)), 1),  # the cnn's O > C, 4x4
        ((2, 3, 7, 6), (2, 3, 3, 2), ((2, 1), (0, 1), (1, 2)), 1),  # odd sizes, strided
        ((2, 4, 5, 5), (6, 2, 3, 3), ((1, 2), (2, 1), (2, 1)), 2),  # groups, dilation
        ((2, 4, 5, 5), (4, 1, 3, 3), ((1, 1), (1, 1), (1, 1)), 4),  # depthwise
    ],
)
def test_col2im_by_offset_is_the_adjoint_of_the_forward_conv(x_shape, w_shape, window_args, groups):
    """<conv(x), dY> == <x, dX>: the CPU input gradient (per-offset GEMMs into a channels-last
    frame) is exactly the transpose of the forward im2col GEMM."""
    from gradflow.ops import conv as conv_module
    from gradflow.ops import im2col

    stride, padding, dilation = window_args
    kernel = w_shape[2:]
    out = tuple(
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, k, s, p, d in zip(x_shape[2:], kernel, stride, padding, dilation)
    )
    window = Window(kernel, stride, padding, dilation, out)
    rng = numpy.random.default_rng(8)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    g = rng.standard_normal((x_shape[0], w_shape[0], *out))
    y = conv_module._conv_forward(x, w, None, window, groups)
    dx = im2col._col2im_by_offset(im2col._channel_major(g), w, window, groups, x_shape)
    assert dx.shape == x_shape and dx.flags.c_contiguous
    numpy.testing.assert_allclose(numpy.vdot(y, g), numpy.vdot(x, dx), rtol=1e-12)


@pytest.mark.parametrize(
    "name,x_shape,w_shape,kwargs",
    [
        ("conv2d", (3, 8, 4, 4), (6, 8, 3, 3), dict(padding=1)),  # the cnn's second conv
        ("conv2d", (2, 5, 7, 6), (3, 5, 3, 2), dict(stride=(2, 3), padding=(1, 0))),
        ("conv2d", (2, 16, 7, 7), (4, 16, 3, 3), dict(dilation=(2, 2), padding=2)),
        ("conv1d", (2, 9, 5), (4, 9, 3), dict(padding=1)),
        ("conv_transpose2d", (2, 8, 3, 3), (8, 4, 3, 3), dict(stride=2, padding=1)),
    ],
)
def test_channels_last_columns_match_channel_major(monkeypatch, name, x_shape, w_shape, kwargs):
    """Where the CPU builds cols^T from a channels-last copy of x, the output and every
    gradient equal those from the channel-major cols."""
    import gradflow.ops.im2col as im2col_module

    arrays = _arrays(name, x_shape, w_shape, kwargs)
    rule = im2col_module._channels_last
    calls = []
    monkeypatch.setattr(
        im2col_module, "_channels_last", lambda *a: calls.append(rule(*a)) or calls[-1]
    )
    last = _forward_backward(name, arrays, kwargs, numpy.float64, routed=False)
    assert any(calls)  # the channels-last route ran
    monkeypatch.setattr(im2col_module, "_channels_last", lambda *a: False)
    major = _forward_backward(name, arrays, kwargs, numpy.float64, routed=False)
    for ours, ref in zip(last, major):
        assert ours.shape == ref.shape
        numpy.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-13)


def test_one_node_with_bias_and_only_the_needed_arrays_saved():
    rng = numpy.random.default_rng(6)
    x = gf.tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    w = gf.tensor(rng.standard_normal((4, 3, 3, 3)))
    b = gf.tensor(rng.standard_normal(4), requires_grad=True)
    y = conv2d(x, w, b, padding=1)
    node = y.grad_fn
    assert type(node) is Conv2dFunction and len(node._edges) == 3
    saved_x, saved_w = node.saved_arrays
    assert saved_x is None  # the weight needs no gradient: the input is not kept
    assert saved_w is w.array  # a reference, not a copy
    y.sum().backward()
    numpy.testing.assert_allclose(b.grad.numpy(), numpy.full(4, 2 * 5 * 5))
    w.requires_grad_()
    x2 = gf.tensor(rng.standard_normal((2, 3, 5, 5)))
    node = conv_transpose2d(x2, w.permute(1, 0, 2, 3)).grad_fn
    assert node.saved_arrays[0] is x2.array and node.saved_arrays[1] is None


def test_unbatched_and_1d_match_the_batched_2d_op():
    rng = numpy.random.default_rng(7)
    x, w = rng.standard_normal((3, 6, 5)), rng.standard_normal((2, 3, 3, 2))
    batched = conv2d(gf.tensor(x[None]), gf.tensor(w), padding=(1, 0))
    numpy.testing.assert_array_equal(
        conv2d(gf.tensor(x), gf.tensor(w), padding=(1, 0)).numpy(), batched.numpy()[0]
    )
    as_2d = conv2d(gf.tensor(x[:, None, 0, :]), gf.tensor(w[:, :, None, 0, :]))
    numpy.testing.assert_array_equal(
        conv1d(gf.tensor(x[:, 0, :]), gf.tensor(w[:, :, 0, :])).numpy(), as_2d.numpy()[:, 0, :]
    )


def test_empty_batch():
    x, w = gf.zeros(0, 2, 4, 4, requires_grad=True), gf.ones(3, 2, 3, 3, requires_grad=True)
    y = conv2d(x, w, padding=1)
    assert y.shape == (0, 3, 4, 4)
    y.sum().backward()
    assert x.grad.shape == (0, 2, 4, 4) and not w.grad.numpy().any()


@pytest.mark.parametrize("routed", [False, pytest.param(True, marks=needs_emulation)])
def test_conv_transpose2d_of_an_empty_batch(routed):
    x, w = gf.zeros(0, 2, 3, 3, requires_grad=True), gf.ones(2, 3, 2, 2, requires_grad=True)
    with route_kernels() if routed else _nothing():
        y = conv_transpose2d(x, w, stride=2, output_padding=1)
        y.sum().backward()
    assert y.shape == (0, 3, 7, 7)
    assert x.grad.shape == (0, 2, 3, 3) and not w.grad.numpy().any()


@pytest.mark.parametrize("shape", [(1, 1, 0), (2, 1, 3, 0), (0, 1, 0, 2)])
def test_conv_transpose2d_refuses_an_empty_plane_by_name(shape):
    """It leaked NumPy's "non-broadcastable output operand" where the output isn't empty
    (stride 2, dilation 2 and output_padding give a (1, 2) output from a (1, 0) input).
    PyTorch refuses the empty plane too, unless the batch is empty."""
    w = gf.ones(1, 1, 1, 2)
    message = rf"conv_transpose2d: input of shape {re.escape(str(shape))} has an empty spatial dim"
    with pytest.raises(ValueError, match=message):
        conv_transpose2d(gf.zeros(*shape), w, stride=(1, 2), dilation=(1, 2), output_padding=(0, 1))


def test_conv_errors():
    x, w = gf.ones(1, 3, 5, 5), gf.ones(4, 3, 3, 3)
    with pytest.raises(
        ValueError,
        match=r"conv2d: expected a 4-D input \(N, C, H, W\) or a 3-D unbatched input \(C, H, W\), "
        r"got input of shape \(2, 3\)",
    ):
        conv2d(gf.ones(2, 3), w)
    with pytest.raises(ValueError, match=r"conv1d: expected a 3-D input \(N, C, L\) or a 2-D"):
        conv1d(gf.ones(1, 2, 3, 4), gf.ones(1, 2, 3))
    with pytest.raises(
        ValueError,
        match=r"conv2d: input of shape \(1, 3, 5, 5\) has 3 channels, but weight of shape "
        r"\(4, 2, 3, 3\) with groups=1 expects 2 \(weight.shape\[1\] \* groups\)",
    ):
        conv2d(x, gf.ones(4, 2, 3, 3))
    with pytest.raises(
        ValueError,
        match=r"conv2d: groups=3 must divide the input channels \(4, input of shape "
        r"\(1, 4, 5, 5\)\) and the output channels \(6, weight of shape \(6, 2, 3, 3\)\)",
    ):
        conv2d(gf.ones(1, 4, 5, 5), gf.ones(6, 2, 3, 3), groups=3)
    with pytest.raises(
        ValueError,
        match=r"conv2d: padding='same' needs stride 1 \(as in PyTorch\), got stride \(2, 2\)",
    ):
        conv2d(x, w, stride=2, padding="same")
    with pytest.raises(
        ValueError,
        match=r"conv2d: input of shape \(1, 3, 2, 5\) is too small for weight of shape "
        r"\(4, 3, 3, 3\) \(dilation \(1, 1\), padding \(0, 0\)\+\(0, 0\)\): the output would "
        r"have spatial size \(0, 3\)",
    ):
        conv2d(gf.ones(1, 3, 2, 5), w)
    with pytest.raises(
        ValueError,
        match=r"conv_transpose2d: input of shape \(1, 3, 1, 1\) is too small for weight of shape "
        r"\(3, 2, 1, 1\) .*spatial size \(-1, -1\)",
    ):
        conv_transpose2d(gf.ones(1, 3, 1, 1), gf.ones(3, 2, 1, 1), padding=1)
    with pytest.raises(
        ValueError, match=r"conv2d: bias of shape \(3,\) doesn't fit weight of shape \(4, 3, 3, 3\)"
    ):
        conv2d(x, w, gf.ones(3))
    with pytest.raises(ValueError, match=r"conv2d: weight of shape \(4, 3, 3\) should be 4-D"):
        conv2d(x, gf.ones(4, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: argument 'stride' is 0; expected an int >= 1"):
        conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: argument 'padding' is \(1, 2, 3\); expected"):
        conv2d(x, w, padding=(1, 2, 3))
    with pytest.raises(ValueError, match=r"conv2d: padding 'full' is not 'same', 'valid'"):
        conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match=r"conv2d: argument 'groups' is 0; expected a positive"):
        conv2d(x, w, groups=0)
    with pytest.raises(
        ValueError,
        match=r"conv_transpose2d: output_padding \(2, 0\) must be smaller than either stride "
        r"\(2, 2\) or dilation \(1, 1\)",
    ):
        conv_transpose2d(x, gf.ones(3, 2, 3, 3), stride=2, output_padding=(2, 0))
    with pytest.raises(
        ValueError,
        match=r"conv_transpose2d: input of shape \(1, 3, 5, 5\) has 3 channels, but weight of "
        r"shape \(4, 2, 3, 3\) with groups=1 expects 4 \(weight.shape\[0\]\)",
    ):
        conv_transpose2d(x, gf.ones(4, 2, 3, 3))
    with pytest.raises(TypeError, match=r"conv2d: argument 'input' has dtype int64"):
        conv2d(gf.tensor(numpy.ones((1, 3, 5, 5), numpy.int64)), w)
    with pytest.raises(TypeError, match=r"^conv2d: expected floating tensors of one dtype"):
        conv2d(x.double(), w)


# (public function, input shape, weight shape, keyword arguments, its Function, grad_fn repr)
NAMED_CASES = [
    ("conv1d", (1, 2, 5), (3, 2, 3), {}, Conv2dFunction, "<Conv1dBackward>"),
    ("conv2d", (1, 2, 5, 5), (3, 2, 3, 3), {}, Conv2dFunction, "<Conv2dBackward>"),
    (
        "conv_transpose2d", (1, 2, 3, 3), (2, 3, 2, 2), dict(stride=2), ConvTranspose2dFunction,
        "<ConvTranspose2dBackward>",
    ),
]  # fmt: skip


@pytest.mark.parametrize("name,x_shape,w_shape,kwargs,function,node", NAMED_CASES)
def test_the_node_and_its_messages_name_the_function_called(
    name, x_shape, w_shape, kwargs, function, node
):
    """conv1d shares conv2d's Function: its grad_fn prints <Conv1dBackward>, and a float32
    input with a float64 weight is refused as "conv1d: ...", not as the class."""
    op = {"conv1d": conv1d, "conv2d": conv2d, "conv_transpose2d": conv_transpose2d}[name]
    x = gf.ones(*x_shape, dtype=gf.float32, requires_grad=True)
    w = gf.ones(*w_shape, dtype=gf.float32)
    y = op(x, w, **kwargs)
    assert type(y.grad_fn) is function and y.grad_fn.name == name
    assert repr(y.grad_fn) == node
    with pytest.raises(TypeError, match=rf"^{name}: expected floating tensors of one dtype"):
        op(x, w.double(), **kwargs)


def test_conv_transpose2d_backward_builds_dys_columns_once(monkeypatch):
    # Its input and weight gradients both read dY's columns (a strided conv of dY): the
    # backward builds them once, and the gradients equal those of a backward that builds
    # them twice.
    from gradflow.ops import im2col

    calls = []
    real = im2col._columns_last
    monkeypatch.setattr(im2col, "_columns_last", lambda x, w: calls.append(x.shape) or real(x, w))
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((2, 16, 6, 6)).astype(numpy.float32)
    w = rng.standard_normal((16, 8, 4, 4)).astype(numpy.float32)
    g = rng.standard_normal((2, 8, 12, 12)).astype(numpy.float32)

    def grads(shared):
        tx, tw = gf.tensor(x, requires_grad=True), gf.tensor(w, requires_grad=True)
        y = conv_transpose2d(tx, tw, stride=2, padding=1)
        calls.clear()
        if shared:
            y.backward(gf.tensor(g))
        else:  # the gradients one at a time: nothing to share
            (dx,) = gf.autograd.grad(y, tx, gf.tensor(g), retain_graph=True)
            (dw,) = gf.autograd.grad(y, tw, gf.tensor(g))
            tx.grad, tw.grad = dx, dw
        return len(calls), tx.grad.numpy(), tw.grad.numpy()

    builds, dx, dw = grads(True)
    assert builds == 1
    builds_apart, dx_apart, dw_apart = grads(False)
    assert builds_apart == 2
    numpy.testing.assert_allclose(dx, dx_apart, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(dw, dw_apart, rtol=1e-5, atol=1e-5)


def test_conv_transpose2d_backward_in_pieces_of_samples(monkeypatch):
    """conv_transpose2d's CPU backward builds dY's columns per piece of samples, each piece's
    serving both gradients, so the columns stay within dY's size: the same gradients as one
    piece."""
    from gradflow.ops import conv as conv_module

    rng = numpy.random.default_rng(7)
    x = rng.standard_normal((5, 8, 6, 6)).astype(numpy.float32)
    w = rng.standard_normal((8, 6, 4, 4)).astype(numpy.float32)
    g = rng.standard_normal((5, 6, 12, 12)).astype(numpy.float32)

    def grads():
        xt, wt = gf.tensor(x, requires_grad=True), gf.tensor(w, requires_grad=True)
        conv_transpose2d(xt, wt, stride=2, padding=1).backward(gf.tensor(g))
        return xt.grad.numpy(), wt.grad.numpy()

    pieces = []
    real = conv_module._transposed_grads_by_samples
    monkeypatch.setattr(conv_module, "SHARED_TILE_MIN_BYTES", 1)
    monkeypatch.setattr(conv_module, "_transposed_grads_by_samples",
                        lambda *a: pieces.append(a[-1]) or real(*a))  # fmt: skip
    split = grads()
    # columns per sample: 6 channels * 16 taps * 36 pixels, over dY's 864 values per sample
    assert pieces == [1]
    monkeypatch.setattr(conv_module, "SHARED_TILE_RATIO", 100)
    whole = grads()
    assert len(pieces) == 1  # the second run took one piece
    for a, b in zip(split, whole, strict=True):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
