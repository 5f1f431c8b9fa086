"""softshrink, hardshrink and threshold on hostile values: NaN stays NaN (PyTorch's forward),
its gradient is 0 for the shrinks and passes for threshold (PyTorch's `x <= threshold` rule),
+-inf, exact edges, signed zeros; the arithmetic forms against NumPy's select."""

import numpy
import pytest

import gradflow as gf

F = gf.nn.functional
HOSTILE = numpy.array(
    [numpy.nan, 0.3, -0.7, numpy.inf, -numpy.inf, 0.5, -0.5, -0.3, 0.1, 0.0, -0.0, 2.5, -1e30],
    dtype=numpy.float32,
)


def _run(fn, values):
    x = gf.tensor(values, requires_grad=True)
    y = fn(x)
    y.sum().backward()
    return y.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_shrinks_and_threshold_on_hostile_values(dtype):
    v = numpy.tile(HOSTILE, 3).astype(dtype)
    lam = 0.5
    y, g = _run(lambda x: F.softshrink(x, lam), v)
    with numpy.errstate(invalid="ignore"):
        expect = numpy.where(v > lam, v - lam, numpy.where(v < -lam, v + lam, 0.0))
    expect[numpy.isnan(v)] = numpy.nan
    numpy.testing.assert_array_equal(y, expect.astype(dtype))
    numpy.testing.assert_array_equal(g, (numpy.abs(v) > lam).astype(dtype))

    y, g = _run(lambda x: F.hardshrink(x, lam), v)
    expect = numpy.where(numpy.abs(v) > lam, v, 0.0)
    expect[numpy.isnan(v)] = numpy.nan
    numpy.testing.assert_array_equal(y, expect.astype(dtype))
    assert not numpy.signbit(y[numpy.abs(v) <= lam]).any()  # +0.0 inside, as torch's literal 0
    numpy.testing.assert_array_equal(g, (numpy.abs(v) > lam).astype(dtype))

    for t, value in [(0.1, 2.0), (0.1, -numpy.inf), (-numpy.inf, 1.0), (numpy.inf, 3.0)]:
        y, g = _run(lambda x, t=t, value=value: F.threshold(x, t, value), v)
        below = v <= t
        expect = numpy.where(below, value, v)  # NaN: not below, stays NaN
        numpy.testing.assert_array_equal(y, expect.astype(dtype))
        numpy.testing.assert_array_equal(g, (~below).astype(dtype))


def test_match_torch_bit_for_bit_on_a_million_values():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(0)
    v = rng.standard_normal(1 << 20).astype(numpy.float32)
    v[::1000] = numpy.nan
    v[1::1000] = numpy.inf
    v[2::1000] = -numpy.inf
    cases = [
        (lambda x: F.softshrink(x, 0.5), lambda x: torch.nn.functional.softshrink(x, 0.5)),
        (lambda x: F.hardshrink(x, 0.5), lambda x: torch.nn.functional.hardshrink(x, 0.5)),
        (lambda x: F.threshold(x, 0.1, 2.0), lambda x: torch.nn.functional.threshold(x, 0.1, 2.0)),
    ]
    for ours, theirs in cases:
        y, g = _run(ours, v)
        t = torch.tensor(v, requires_grad=True)
        ty = theirs(t)
        ty.sum().backward()
        numpy.testing.assert_array_equal(y, ty.detach().numpy())
        numpy.testing.assert_array_equal(g, t.grad.numpy())


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_compiled_loops_and_numpy_route_agree_bit_for_bit(dtype, monkeypatch):
    pytest.importorskip("numba")
    from gradflow.backend import compiled

    loops = compiled.loops(numpy.zeros(1, dtype))
    if loops is None:
        pytest.skip(compiled.status())
    taken = []
    for name in ("softshrink", "hardshrink", "shrink_backward", "threshold",
                 "threshold_backward"):  # fmt: skip
        real = getattr(loops, name)
        monkeypatch.setattr(loops, name, lambda *a, _r=real, _n=name: taken.append(_n) or _r(*a))
    rng = numpy.random.default_rng(1)
    v = numpy.concatenate([rng.standard_normal(5000), numpy.tile(HOSTILE, 10)]).astype(dtype)
    for fn in (
        lambda x: F.softshrink(x, 0.5),
        lambda x: F.hardshrink(x, 0.5),
        lambda x: F.threshold(x, 0.1, -2.0),
    ):
        fused = _run(fn, v)
        with compiled.disabled():
            plain = _run(fn, v)
        for a, b in zip(fused, plain, strict=True):
            numpy.testing.assert_array_equal(a, b)
            assert numpy.array_equal(numpy.signbit(a), numpy.signbit(b))
    assert set(taken) == {"softshrink", "hardshrink", "shrink_backward", "threshold",
                          "threshold_backward"}  # fmt: skip
