"""max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool2d: gradcheck, PyTorch parity (indices too),
the kernel route (CPU emulation of kernels/pooling.cu), the memory contract, errors."""

import re

import numpy
import pytest
from torch_comparison import assert_functional_matches_torch

import gradflow as gf
from gradflow.ops.adaptive_pooling import AdaptiveAvgPool2dFunction, adaptive_avg_pool2d
from gradflow.ops.pooling import (
    AvgPool2dFunction,
    MaxPool2dFunction,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
from gradflow.testing import gradcheck
from gradflow.testing.emulation import route_kernels, unavailable_reason

needs_emulation = pytest.mark.skipif(
    unavailable_reason() is not None, reason=str(unavailable_reason())
)

OPS = {
    "max_pool2d": max_pool2d,
    "max_pool1d": max_pool1d,
    "avg_pool2d": avg_pool2d,
    "avg_pool1d": avg_pool1d,
    "adaptive_avg_pool2d": adaptive_avg_pool2d,
}
# (op, input shape, keyword arguments): default stride, padding, dilation, ceil mode (with a
# last window past the padded input), count_include_pad, divisor_override, unbatched inputs.
CASES = [
    ("max_pool2d", (2, 3, 6, 5), dict(kernel_size=2)),
    ("max_pool2d", (2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    (
        "max_pool2d",
        (1, 2, 9, 7),
        dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 3), ceil_mode=True),
    ),
    ("max_pool2d", (3, 6, 6), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("max_pool1d", (2, 3, 9), dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    ("max_pool1d", (3, 8), dict(kernel_size=2, ceil_mode=True, stride=3)),
    ("avg_pool2d", (2, 3, 6, 5), dict(kernel_size=2)),
    ("avg_pool2d", (2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    (
        "avg_pool2d",
        (2, 2, 7, 8),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    ),
    ("avg_pool2d", (3, 6, 6), dict(kernel_size=(3, 2), stride=2, ceil_mode=True)),
    ("avg_pool2d", (1, 2, 5, 5), dict(kernel_size=3, padding=1, divisor_override=4)),
    (
        "avg_pool1d",
        (2, 3, 10),
        dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False),
    ),
    ("adaptive_avg_pool2d", (2, 3, 6, 4), dict(output_size=(3, 2))),
    ("adaptive_avg_pool2d", (2, 3, 7, 5), dict(output_size=(3, 4))),
    ("adaptive_avg_pool2d", (3, 5, 5), dict(output_size=1)),
    ("adaptive_avg_pool2d", (1, 2, 5, 7), dict(output_size=(None, 3))),
]
PARAMS = [pytest.param(*case, id=f"{case[0]}-{i}") for i, case in enumerate(CASES)]
KERNEL_PARAMS = [p for p in PARAMS if not p.values[0].startswith("adaptive")]


def _input(shape, device, dtype=numpy.float64, seed=0):
    # Distinct values: finite differences never cross a tie between two maxima.
    x = numpy.random.default_rng(seed).permutation(int(numpy.prod(shape))).reshape(shape) * 0.1
    return gf.tensor(x.astype(dtype), device=device, requires_grad=True)


def host(t):
    return t.detach().cpu().numpy()


@pytest.mark.parametrize("name,shape,kwargs", PARAMS)
def test_gradcheck(device, name, shape, kwargs):
    x = _input(shape, device)
    assert gradcheck(lambda x: OPS[name](x, **kwargs), [x], eps=1e-4)


def test_full_jacobians(device):
    x = _input((1, 1, 5, 4), device)
    assert gradcheck(lambda x: max_pool2d(x, 3, 2, 1, ceil_mode=True), [x], full_jacobian=True)
    fn = lambda x: avg_pool2d(x, 2, 2, 1, ceil_mode=True, count_include_pad=False)  # noqa: E731
    assert gradcheck(fn, [x], full_jacobian=True)
    assert gradcheck(lambda x: adaptive_avg_pool2d(x, (3, 3)), [x], full_jacobian=True)


@pytest.mark.parametrize("name,shape,kwargs", PARAMS)
def test_matches_torch(device, name, shape, kwargs):
    pytest.importorskip("torch")
    x = numpy.random.default_rng(1).standard_normal(shape)
    assert_functional_matches_torch(OPS[name], name, x, kwargs, device)


@pytest.mark.parametrize("name,shape,kwargs", [p for p in PARAMS if "max" in p.values[0]])
def test_return_indices_match_torch(device, name, shape, kwargs):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(3).standard_normal(shape)
    x.reshape(-1)[::3] = 0.0  # ties: the first maximum's index wins, as in PyTorch
    y, indices = OPS[name](gf.tensor(x, device=device), return_indices=True, **kwargs)
    ty, tindices = getattr(torch.nn.functional, name)(
        torch.tensor(x), return_indices=True, **kwargs
    )
    numpy.testing.assert_array_equal(host(y), ty.numpy())
    assert indices.dtype == gf.int64 and not indices.requires_grad
    numpy.testing.assert_array_equal(host(indices), tindices.numpy())


@pytest.mark.parametrize("routed", [False, pytest.param(True, marks=needs_emulation)])
def test_max_pool_nan_wins_and_the_last_nan_gets_the_gradient(routed):
    """As PyTorch: NaN propagates; of several NaNs in a window, the last is the argmax."""
    nan = float("nan")
    x = gf.tensor([[[1.0, nan, 3.0, 2.0, nan, 0.0, nan, 5.0]]], requires_grad=True)
    with route_kernels() if routed else _nothing():
        y, indices = max_pool1d(x, 4, return_indices=True)
        y.sum().backward()
    assert numpy.isnan(y.detach().numpy()[0, 0]).tolist() == [True, True]
    assert indices.numpy().tolist() == [[[1, 6]]]
    numpy.testing.assert_array_equal(x.grad.numpy(), [[[0, 1, 0, 0, 0, 0, 1, 0]]])


def _forward_backward(name, kwargs, x_np, g_seed, routed):
    x = gf.tensor(x_np, requires_grad=True)
    with route_kernels() if routed else _nothing():
        y = OPS[name](x, **kwargs)
        y.backward(
            gf.tensor(numpy.random.default_rng(g_seed).standard_normal(y.shape).astype(x_np.dtype))
        )
    return host(y), host(x.grad)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


@needs_emulation
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name,shape,kwargs", KERNEL_PARAMS)
def test_kernel_route_matches_numpy(name, shape, kwargs, dtype):
    x = host(_input(shape, "cpu", dtype, seed=4))
    reference = _forward_backward(name, kwargs, x, 5, routed=False)
    routed = _forward_backward(name, kwargs, x, 5, routed=True)
    tol = 1e-6 if dtype == numpy.float32 else 1e-14
    for ours, ref in zip(routed, reference):
        assert ours.dtype == dtype
        numpy.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("routed", [False, pytest.param(True, marks=needs_emulation)])
def test_max_pool_saves_window_offsets_not_the_input(routed):
    x = _input((2, 3, 8, 8), "cpu")
    with route_kernels() if routed else _nothing():
        y = max_pool2d(x, 2)
    (offsets,) = y.grad_fn.saved_arrays
    assert offsets.shape == (2, 3, 4, 4)
    assert offsets.dtype == (numpy.int32 if routed else numpy.uint8)
    assert avg_pool2d(x, 2).grad_fn.saved_arrays == ()


TILED_CASES = [
    ((2, 3, 8, 8), dict(kernel_size=2)),
    ((3, 2, 7, 9), dict(kernel_size=2)),  # odd sizes: the last row and column are left out
    ((2, 2, 9, 8), dict(kernel_size=(3, 2))),
    ((1, 2, 5, 5), dict(kernel_size=1)),
    ((2, 4, 6), dict(kernel_size=3, stride=3)),  # unbatched
]


@pytest.mark.parametrize("shape,kwargs", TILED_CASES)
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_tiled_max_pool_matches_the_general_path(monkeypatch, shape, kwargs, dtype):
    """Non-overlapping windows take a reshaped fast path; ties (first maximum), NaN (the last
    NaN), indices and the gradient equal the strided-view path's exactly."""
    from gradflow.ops import pooling

    x = numpy.random.default_rng(6).integers(-2, 3, shape).astype(dtype)  # many ties
    x.reshape(-1)[::7] = numpy.nan
    x.reshape(-1)[::11] = -numpy.inf
    g = numpy.random.default_rng(7).standard_normal(shape).astype(dtype)

    def run():
        t = gf.tensor(x, requires_grad=True)
        y, indices = max_pool2d(t, return_indices=True, **kwargs)
        y.backward(gf.tensor(g[..., : y.shape[-2], : y.shape[-1]].copy()))
        return host(y), host(indices), host(t.grad)

    assert pooling._tiles(_window(gf.tensor(x), kwargs), shape[-2:])
    fast = run()
    monkeypatch.setattr(pooling, "_tiles", lambda window, hw: False)
    general = run()
    for ours, ref in zip(fast, general):
        assert ours.dtype == ref.dtype
        numpy.testing.assert_array_equal(ours, ref)


def _window(x, kwargs):
    from gradflow.ops import pooling

    names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
    defaults = dict(stride=None, padding=0, dilation=1, ceil_mode=False)
    args = [kwargs.get(name, defaults.get(name)) for name in names]
    return pooling._pool_args("max_pool2d", x, 2, *args)[1]


@pytest.mark.parametrize(
    "shape,kwargs",
    [
        ((1, 1, 8, 8), dict(kernel_size=2, stride=1)),
        ((1, 1, 8, 8), dict(kernel_size=2, padding=1)),
        ((1, 1, 8, 8), dict(kernel_size=2, dilation=2)),
        ((1, 1, 7, 8), dict(kernel_size=2, ceil_mode=True)),  # a last, partial window
    ],
)
def test_overlapping_or_padded_max_pool_takes_the_general_path(shape, kwargs):
    from gradflow.ops import pooling

    assert not pooling._tiles(_window(gf.tensor(numpy.zeros(shape)), kwargs), shape[-2:])


def test_non_contiguous_input():
    base = _input((5, 2, 9, 3), "cpu")
    x = base.permute(1, 3, 0, 2)[:, :, :, ::2]  # (2, 3, 5, 5)
    expected = max_pool2d(gf.tensor(host(x).copy()), 2, 1)
    numpy.testing.assert_array_equal(host(max_pool2d(x, 2, 1)), host(expected))
    tiled = max_pool2d(gf.tensor(host(x).copy()), 2)  # the reshaped fast path
    numpy.testing.assert_array_equal(host(max_pool2d(x, 2)), host(tiled))
    assert gradcheck(lambda b: max_pool2d(b.permute(1, 3, 0, 2)[:, :, :, ::2], 2), [base])
    fn = lambda b: avg_pool2d(b.permute(1, 3, 0, 2)[:, :, :, ::2], 3, 2, 1)  # noqa: E731
    assert gradcheck(fn, [base])


EMPTY_BATCH_CASES = [
    ("max_pool2d", (0, 3, 4, 4), dict(kernel_size=2), (0, 3, 2, 2)),  # the tiled path
    ("max_pool2d", (0, 1, 1, 1), dict(kernel_size=1), (0, 1, 1, 1)),
    ("max_pool2d", (0, 2, 5, 4), dict(kernel_size=3, stride=2, padding=1), (0, 2, 3, 2)),
    ("max_pool1d", (0, 2, 6), dict(kernel_size=2), (0, 2, 3)),
    ("avg_pool2d", (0, 3, 4, 4), dict(kernel_size=2, padding=1), (0, 3, 3, 3)),
]


@pytest.mark.parametrize("routed", [False, pytest.param(True, marks=needs_emulation)])
@pytest.mark.parametrize("name,shape,kwargs,expected", EMPTY_BATCH_CASES)
def test_an_empty_batch_gives_an_empty_output(routed, name, shape, kwargs, expected):
    """As PyTorch. The tiled max-pooling path reshaped with -1, which an empty batch leaves
    NumPy nothing to infer from ("cannot reshape array of size 0"; a regression of e4675b3)."""
    x = gf.zeros(*shape, requires_grad=True)
    with route_kernels() if routed else _nothing():
        y = OPS[name](x, **kwargs)
        y.sum().backward()
        if name.startswith("max"):
            _, indices = OPS[name](x, return_indices=True, **kwargs)
            assert indices.shape == expected
    assert y.shape == expected and x.grad.shape == shape
    torch = pytest.importorskip("torch")
    assert tuple(getattr(torch.nn.functional, name)(torch.zeros(shape), **kwargs).shape) == expected


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(
    "shape,kwargs",
    [
        ((2, 0, 2, 2), dict(kernel_size=1)),  # no channels
        ((0, 1, 1), dict(kernel_size=1)),  # unbatched: no channels
        ((1, 1, 0), dict(kernel_size=(1, 2), stride=1, padding=(0, 1))),  # max_pool2d gave -inf
        ((2, 1, 3, 0), dict(kernel_size=2, padding=1)),
    ],
)
def test_an_empty_channel_or_spatial_dim_is_refused_by_name(name, shape, kwargs):
    """As PyTorch, which allows only an empty batch; max_pool2d of an empty plane with enough
    padding for an output gave -inf, the max over padding alone."""
    message = rf"{name}: input of shape {re.escape(str(shape))} has an empty channel or spatial"
    with pytest.raises(ValueError, match=message):
        OPS[name](gf.zeros(*shape), **kwargs)
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        getattr(torch.nn.functional, name)(torch.zeros(shape), **kwargs)


def test_pooling_errors():
    x = gf.ones(1, 2, 4, 4)
    with pytest.raises(
        ValueError,
        match=r"max_pool2d: expected a 4-D input \(N, C, H, W\) or a 3-D unbatched input "
        r"\(C, H, W\), got input of shape \(4, 4\)",
    ):
        max_pool2d(gf.ones(4, 4), 2)
    with pytest.raises(ValueError, match=r"avg_pool1d: expected a 3-D input \(N, C, L\)"):
        avg_pool1d(x, 2)
    with pytest.raises(
        ValueError,
        match=r"max_pool2d: padding \(2, 2\) must be at most half of kernel_size \(3, 3\)",
    ):
        max_pool2d(x, 3, padding=2)
    with pytest.raises(
        ValueError,
        match=r"avg_pool2d: input of shape \(1, 2, 4, 4\) is too small for kernel_size \(5, 5\) "
        r"\(dilation \(1, 1\), padding \(0, 0\)\): the output would have spatial size \(0, 0\)",
    ):
        avg_pool2d(x, 5)
    with pytest.raises(
        ValueError, match=r"max_pool2d: argument 'stride' is 0; expected an int >= 1"
    ):
        max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match=r"max_pool2d: argument 'kernel_size' is \(2, 2, 2\)"):
        max_pool2d(x, (2, 2, 2))
    with pytest.raises(ValueError, match=r"avg_pool2d: divisor_override must be a nonzero int"):
        avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(
        ValueError, match=r"adaptive_avg_pool2d: argument 'output_size' is \(0, 2\); expected"
    ):
        adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(TypeError, match=r"max_pool2d: argument 'input' has dtype int64"):
        max_pool2d(gf.tensor(numpy.ones((1, 1, 2, 2), numpy.int64)), 2)


@pytest.mark.parametrize(
    "name,shape,arg,function,node",
    [
        ("max_pool1d", (1, 2, 6), 2, MaxPool2dFunction, "<MaxPool1dBackward>"),
        ("max_pool2d", (1, 2, 4, 4), 2, MaxPool2dFunction, "<MaxPool2dBackward>"),
        ("avg_pool1d", (1, 2, 6), 2, AvgPool2dFunction, "<AvgPool1dBackward>"),
        ("avg_pool2d", (1, 2, 4, 4), 2, AvgPool2dFunction, "<AvgPool2dBackward>"),
        (
            "adaptive_avg_pool2d", (1, 2, 5, 5), 2, AdaptiveAvgPool2dFunction,
            "<AdaptiveAvgPool2dBackward>",
        ),
    ],
)  # fmt: skip
def test_the_node_and_its_messages_name_the_function_called(name, shape, arg, function, node):
    """The 1-D ops share the 2-D Functions, yet their nodes print and name the function the
    user called (here in the message of a second backward through a freed graph)."""
    x = gf.ones(*shape, requires_grad=True)
    y = OPS[name](x, arg)
    assert type(y.grad_fn) is function and y.grad_fn.name == name
    assert repr(y.grad_fn) == node
    y.sum().backward()
    with pytest.raises(RuntimeError, match=rf"^Trying to backward through {name} a second time"):
        y.sum().backward()
