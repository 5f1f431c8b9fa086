"""max_pool3d, avg_pool3d, adaptive_avg_pool1d/3d, adaptive_max_pool1d/2d/3d, lp_pool1d/2d
and max_unpool1d/2d/3d: PyTorch parity (values, indices, gradients), float64 gradcheck, errors."""

import numpy
import pytest
from torch_comparison import assert_functional_matches_torch

import gradflow as gf
from gradflow.ops import adaptive_pooling, lp_pooling, pooling, pooling3d, unpooling
from gradflow.testing import gradcheck


def host(t):
    return t.detach().cpu().numpy()


def _distinct(shape, seed=0):
    # Distinct values: finite differences never cross a tie between two maxima.
    return numpy.random.default_rng(seed).permutation(int(numpy.prod(shape))).reshape(shape) * 0.1


def _op(name):
    """The pooling op of that name, from the module of its family."""
    for module in (pooling, pooling3d, adaptive_pooling, unpooling, lp_pooling):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(name)


CASES = [
    ("max_pool3d", (2, 2, 4, 5, 6), dict(kernel_size=2)),
    ("max_pool3d", (2, 5, 6, 7), dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool3d", (1, 2, 5, 7, 6),
     dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), dilation=(1, 2, 1), ceil_mode=True)),
    ("avg_pool3d", (2, 2, 4, 5, 6), dict(kernel_size=2)),
    ("avg_pool3d", (2, 5, 6, 7), dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool3d", (1, 2, 5, 7, 6),
     dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_pool3d", (1, 2, 4, 4, 4), dict(kernel_size=2, divisor_override=3)),
    ("adaptive_avg_pool1d", (2, 3, 7), dict(output_size=3)),
    ("adaptive_avg_pool1d", (3, 8), dict(output_size=4)),
    ("adaptive_avg_pool3d", (2, 2, 5, 6, 7), dict(output_size=(2, 3, 4))),
    ("adaptive_avg_pool3d", (2, 5, 6, 7), dict(output_size=(None, 2, 1))),
    ("adaptive_max_pool1d", (2, 3, 7), dict(output_size=3)),
    ("adaptive_max_pool1d", (3, 8), dict(output_size=5)),
    ("adaptive_max_pool2d", (2, 3, 7, 5), dict(output_size=(3, 2))),
    ("adaptive_max_pool2d", (3, 6, 6), dict(output_size=2)),
    ("adaptive_max_pool2d", (1, 2, 5, 7), dict(output_size=(None, 3))),
    ("adaptive_max_pool3d", (2, 2, 5, 6, 7), dict(output_size=(2, 3, 4))),
    ("adaptive_max_pool3d", (2, 5, 4, 3), dict(output_size=(3, None, 2))),
    ("lp_pool2d", (2, 3, 5, 6), dict(norm_type=2, kernel_size=(2, 3), stride=1)),
    ("lp_pool2d", (2, 3, 4, 4), dict(norm_type=float("inf"), kernel_size=2)),
    ("lp_pool1d", (2, 3, 7), dict(norm_type=3, kernel_size=2, ceil_mode=True)),
]  # fmt: skip
PARAMS = [pytest.param(*case, id=f"{case[0]}-{i}") for i, case in enumerate(CASES)]


@pytest.mark.parametrize(("name", "shape", "kwargs"), PARAMS)
def test_matches_torch(device, name, shape, kwargs):
    pytest.importorskip("torch")
    x = numpy.random.default_rng(1).standard_normal(shape)
    if name.startswith("lp_pool"):  # odd powers of negative values: NaN roots, as in PyTorch
        x = numpy.abs(x) + 0.1
    assert_functional_matches_torch(_op(name), name, x, kwargs, device)


@pytest.mark.parametrize(("name", "shape", "kwargs"), PARAMS)
def test_gradcheck(device, name, shape, kwargs):
    x = gf.tensor(_distinct(shape), device=device, requires_grad=True)
    assert gradcheck(lambda x: _op(name)(x, **kwargs), [x], eps=1e-4)


@pytest.mark.parametrize(("name", "shape", "kwargs"), [p for p in PARAMS if "max_" in p.id])
def test_return_indices_match_torch(device, name, shape, kwargs):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(3).standard_normal(shape)
    x.reshape(-1)[::3] = 0.0  # ties: the first maximum's index wins, as in PyTorch
    y, indices = _op(name)(gf.tensor(x, device=device), return_indices=True,
                           **kwargs)  # fmt: skip
    ty, tindices = getattr(torch.nn.functional, name)(torch.tensor(x), return_indices=True,
                                                      **kwargs)  # fmt: skip
    numpy.testing.assert_array_equal(host(y), ty.numpy())
    assert indices.dtype == gf.int64 and not indices.requires_grad
    numpy.testing.assert_array_equal(host(indices), tindices.numpy())


def test_max_pool3d_nan_propagates(device):
    x = numpy.arange(8.0).reshape(1, 1, 2, 2, 2)
    x[0, 0, 1, 0, 1] = numpy.nan
    y = pooling3d.max_pool3d(gf.tensor(x, device=device), 2)
    assert numpy.isnan(host(y)).all()


@pytest.mark.parametrize(
    ("dims", "shape", "kwargs"),
    [
        (2, (2, 3, 6, 4), dict(kernel_size=2)),
        (2, (3, 5, 7), dict(kernel_size=3, stride=2, padding=1)),
        (2, (1, 2, 5, 5), dict(kernel_size=2, output_size=(5, 5))),
        (1, (2, 3, 9), dict(kernel_size=3, stride=2)),
        (3, (1, 2, 4, 4, 6), dict(kernel_size=2)),
    ],
)
def test_max_unpool_matches_torch(device, dims, shape, kwargs):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    output_size = kwargs.pop("output_size", None)
    x = numpy.random.default_rng(4).standard_normal(shape)
    pool = _op(f"max_pool{dims}d")
    y, i = pool(gf.tensor(x, device=device), return_indices=True, **kwargs)
    ty, ti = getattr(F, f"max_pool{dims}d")(torch.tensor(x), return_indices=True, **kwargs)
    y = y.detach().requires_grad_()
    ty = ty.detach().requires_grad_()
    unpool = _op(f"max_unpool{dims}d")
    out = unpool(y, i, output_size=output_size, **kwargs)
    tout = getattr(F, f"max_unpool{dims}d")(ty, ti, output_size=output_size, **kwargs)
    numpy.testing.assert_array_equal(host(out), tout.detach().numpy())
    g = numpy.random.default_rng(5).standard_normal(out.shape)
    out.backward(gf.tensor(g, device=device))
    tout.backward(torch.tensor(g))
    numpy.testing.assert_array_equal(host(y.grad), ty.grad.numpy())
    if kwargs.get("stride") is None:  # windows without overlap: each index written once
        assert gradcheck(lambda v: unpool(v, i, output_size=output_size, **kwargs), [y])


@pytest.mark.parametrize(
    ("fn", "shape", "error", "message"),
    [
        (lambda x: pooling3d.max_pool3d(x, 2), (2, 3, 4), RuntimeError,
         "max_pool3d: non-empty 4D or 5D (batch mode) tensor expected for input, got shape "
         "(2, 3, 4)"),
        (lambda x: pooling3d.avg_pool3d(x, 2, padding=2), (1, 1, 4, 4, 4), ValueError,
         "avg_pool3d: padding (2, 2, 2) must be at most half of kernel_size (2, 2, 2) (as in "
         "PyTorch); use a larger kernel or less padding"),
        (lambda x: pooling3d.avg_pool3d(x, 2, divisor_override=0), (1, 1, 4, 4, 4), ValueError,
         "avg_pool3d: divisor_override must be a nonzero int or None, got 0"),
        (lambda x: pooling3d.max_pool3d(x, 3), (1, 1, 2, 4, 4), ValueError,
         "max_pool3d: input of shape (1, 1, 2, 4, 4) is too small for kernel_size (3, 3, 3) "
         "(dilation (1, 1, 1), padding (0, 0, 0)): the output would have spatial size (0, 1, "
         "1); use a larger input or more padding"),
        (lambda x: adaptive_pooling.adaptive_max_pool2d(x, 2), (2, 3), ValueError,
         "adaptive_max_pool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
         "(2, 3)"),
        (lambda x: adaptive_pooling.adaptive_max_pool1d(x, 2), (2, 3, 4, 5), RuntimeError,
         "adaptive_max_pool1d: Expected 2 to 3 dimensions, but got 4-dimensional tensor for "
         "argument #1 'self'"),
        (lambda x: adaptive_pooling.adaptive_avg_pool1d(x, 2), (2, 3, 4, 5), RuntimeError,
         "adaptive_avg_pool1d: Expected 2 to 3 dimensions, but got 4-dimensional tensor for "
         "argument #1 'self'"),
        (lambda x: adaptive_pooling.adaptive_avg_pool3d(x, 2), (2, 3, 4), ValueError,
         "adaptive_avg_pool3d: expected a 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input, got "
         "shape (2, 3, 4)"),
        (lambda x: adaptive_pooling.adaptive_max_pool2d(x, 2), (1, 2, 0, 3), ValueError,
         "adaptive_max_pool2d: input of shape (1, 2, 0, 3) has an empty spatial dim"),
        (lambda x: unpooling.max_unpool2d(x, gf.zeros(1, 1, 2, 2, dtype=gf.int64), 2,
                                        output_size=(7, 7)), (1, 1, 2, 2), ValueError,
         'invalid output_size "(7, 7)" (dim 0 must be between 2 and 6)'),
        (lambda x: unpooling.max_unpool2d(x, gf.zeros(2, 2, dtype=gf.int64), 2), (2, 2),
         ValueError, "max_unpool2d: expected a 3-D or 4-D input, got shape (2, 2)"),
        (lambda x: unpooling.max_unpool2d(x, gf.zeros(1, 1, 2, 2), 2), (1, 1, 2, 2), TypeError,
         "max_unpool2d: indices must be an integer Tensor (max_pool's return_indices)"),
        (lambda x: unpooling.max_unpool2d(x, gf.zeros(1, 1, 2, 3, dtype=gf.int64), 2),
         (1, 1, 2, 2), ValueError,
         "max_unpool2d: Expected shape of indices to be same as that of the input tensor "
         "((1, 1, 2, 2)) but got indices tensor with shape: (1, 1, 2, 3)"),
    ],
)  # fmt: skip
def test_errors(fn, shape, error, message):
    with pytest.raises(error) as info:
        fn(gf.zeros(*shape))
    assert str(info.value) == message
