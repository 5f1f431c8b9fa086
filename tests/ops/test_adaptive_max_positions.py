"""adaptive_max_pool1d/2d/3d on NumPy, found one axis at a time (ops/adaptive_pooling.py's
_max_positions): the same maxima and indices as a per-bin argmax over the whole window (the
first maximum in row-major order, NaN counting as the maximum), for ties, NaN, -0.0, short
bins (running maximum) and long ones (argmax); and the gradient lands on those positions."""

import itertools
import math

import numpy
import pytest

import gradflow as gf

POOLS = {1: "adaptive_max_pool1d", 2: "adaptive_max_pool2d", 3: "adaptive_max_pool3d"}


def _reference(x, outs):
    """Per output bin: argmax over the flattened window (PyTorch's floor/ceil bounds)."""
    dims = len(outs)
    sizes = x.shape[-dims:]
    lead = x.shape[:-dims]
    y = numpy.empty(lead + tuple(outs), x.dtype)
    idx = numpy.empty(lead + tuple(outs), numpy.int64)
    for bin_ in itertools.product(*(range(o) for o in outs)):
        ranges = [
            range((p * s) // o, -((-(p + 1) * s) // o))
            for p, s, o in zip(bin_, sizes, outs, strict=True)
        ]
        window = x[(..., *numpy.ix_(*ranges))].reshape(*lead, -1)
        pick = window.argmax(-1)
        positions = numpy.array(list(itertools.product(*ranges)))[pick]  # [*lead, dims]
        flat = numpy.zeros(lead, numpy.int64)
        for axis in range(dims):
            flat = flat * sizes[axis] + positions[..., axis]
        y[(..., *bin_)] = numpy.take_along_axis(window, pick[..., None], -1)[..., 0]
        idx[(..., *bin_)] = flat
    return y, idx


CASES = [
    ((2, 3, 11), (4,)),
    ((2, 3, 40), (2,)),  # bins of 20: the argmax route
    ((2, 3, 7, 9), (3, 4)),
    ((2, 3, 8, 8), (4, 4)),  # equal bins
    ((1, 2, 5, 3), (7, 5)),  # more bins than positions
    ((2, 2, 5, 6, 7), (2, 3, 4)),
    ((3, 34, 5), (1, 2)),  # unbatched 2-D: a long bin then a short one
]


@pytest.mark.parametrize("shape, outs", CASES)
@pytest.mark.parametrize("values", ["ties", "nan", "signed zeros", "normal"])
def test_maxima_and_indices_match_a_per_bin_argmax(shape, outs, values):
    rng = numpy.random.default_rng(len(shape) * 7 + sum(outs))
    x = rng.integers(-3, 4, shape).astype(numpy.float32)
    if values == "nan":
        x[x == 2] = numpy.nan
    elif values == "signed zeros":
        x = numpy.where(x > 0, numpy.float32(-0.0), x).astype(numpy.float32)
        x[..., ::2] = numpy.float32(0.0)
    elif values == "normal":
        x = rng.standard_normal(shape).astype(numpy.float32)
    pool = getattr(gf.nn.functional, POOLS[len(outs)])
    y, idx = pool(gf.tensor(x), outs, return_indices=True)
    want_y, want_idx = _reference(x, outs)
    numpy.testing.assert_array_equal(idx.numpy(), want_idx)
    numpy.testing.assert_array_equal(y.numpy(), want_y)
    numpy.testing.assert_array_equal(numpy.signbit(y.numpy()), numpy.signbit(want_y))


@pytest.mark.parametrize("shape, outs", CASES)
def test_gradient_adds_up_at_the_maxima(shape, outs):
    rng = numpy.random.default_rng(5)
    x = rng.integers(-2, 3, shape).astype(numpy.float32)  # ties: overlapping bins share maxima
    g = rng.standard_normal(tuple(shape[: len(shape) - len(outs)]) + outs).astype(numpy.float32)
    t = gf.tensor(x, requires_grad=True)
    pool = getattr(gf.nn.functional, POOLS[len(outs)])
    pool(t, outs).backward(gf.tensor(g))
    _, idx = _reference(x, outs)
    plane = math.prod(shape[-len(outs) :])
    want = numpy.zeros((idx.size // math.prod(outs), plane))
    for r, (pos, val) in enumerate(
        zip(idx.reshape(len(want), -1), g.reshape(len(want), -1), strict=True)
    ):
        numpy.add.at(want[r], pos, val.astype(numpy.float64))
    numpy.testing.assert_allclose(t.grad.numpy().reshape(want.shape), want, rtol=1e-6, atol=1e-6)
    assert t.grad.dtype == gf.float32
