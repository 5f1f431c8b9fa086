"""grid_sample's compiled CPU loops (backend/compiled_loops.py grid_sample_forward / _backward):
against the NumPy route they replace (compiled.disabled()), a float64 reference, gradcheck and
PyTorch, on hostile grids (exactly on the border, far outside, inf, NaN, rint ties), views,
broadcast gradients and partial requires_grad; and that the routes are taken."""

from __future__ import annotations

import itertools

import numpy
import pytest

import gradflow as gf
from gradflow.backend import compiled
from gradflow.testing.gradcheck import gradcheck

numba = pytest.importorskip("numba")
loops = compiled.loops(numpy.zeros(1))
if loops is None:  # numba installed but switched off (GRADFLOW_NUMBA=0) or unusable
    pytest.skip(f"the compiled loops are {compiled.status()}", allow_module_level=True)

F = gf.nn.functional
MODES = list(itertools.product(["bilinear", "nearest"], ["zeros", "border", "reflection"],
                               [False, True]))  # fmt: skip
NAMES = ("grid_sample_forward", "grid_sample_backward")


@pytest.fixture
def calls(monkeypatch):
    seen = []
    for name in NAMES:
        real = getattr(loops, name)
        monkeypatch.setattr(loops, name, lambda *a, f=real, n=name: seen.append(n) or f(*a))
    return seen


def _run(x, grid, grad, fused=True, need=(True, True), **kw):
    """(output, dx, dgrid) on the compiled route or (fused=False) NumPy's."""
    xt = gf.tensor(x, requires_grad=need[0])
    gt = gf.tensor(grid, requires_grad=need[1])

    def go():
        out = F.grid_sample(xt, gt, **kw)
        out.backward(gf.tensor(grad))
        return out

    if fused:
        out = go()
    else:
        with compiled.disabled():
            out = go()
    grads = [t.grad.numpy() if t.grad is not None else None for t in (xt, gt)]
    return [out.detach().numpy(), *grads]


def _hostile_grid(rng, dtype, shape=(3, 6, 5, 2)):
    """Uniform in [-1.3, 1.3) with exact borders, far-outside and infinite points and, at the
    input size 5 x 7 with align_corners True, nearest's rint ties (x = 0.5 pixel = -5/6)."""
    grid = (rng.random(shape) * 2.6 - 1.3).astype(dtype)
    grid[0, 0, :4] = [[-1, -1], [1, 1], [-1, 1], [1, -1]]
    grid[0, 1, :3] = [[1e30, -1e30], [-1e30, 0.25], [0.0, 0.0]]
    grid[1, 0, :3] = [[numpy.inf, 0.2], [-numpy.inf, -0.1], [0.3, numpy.inf]]
    grid[1, 1, :3] = [[-5 / 6, -0.75], [-1 / 6, 0.25], [1 + 1e-7, -1 - 1e-7]]
    return grid


def _assert_same(fused, plain, exact_grid=False):
    out, dx, dgrid = fused
    numpy.testing.assert_array_equal(out, plain[0])  # the same roundings, same order
    if dx is not None:
        numpy.testing.assert_array_equal(dx, plain[1])
    if dgrid is not None:  # the channel sums may run in another order than einsum's
        tol = 1e-12 if dgrid.dtype == numpy.float64 else 2e-6
        numpy.testing.assert_allclose(dgrid, plain[2], rtol=tol, atol=tol)
        numpy.testing.assert_array_equal(numpy.isnan(dgrid), numpy.isnan(plain[2]))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("mode,padding_mode,align_corners", MODES)
def test_compiled_route_matches_numpy_route(rng, calls, dtype, mode, padding_mode,
                                            align_corners):  # fmt: skip
    x = rng.standard_normal((3, 4, 5, 7)).astype(dtype)
    x[2, 1, 3, 4] = numpy.inf  # reaches the outputs (and grid gradients) that read it
    grid = _hostile_grid(rng, dtype)
    if padding_mode == "reflection":  # reflecting inf is NaN: that takes the NumPy route
        grid[1, 0, :3] = [[0.9, 0.2], [-0.7, -0.1], [0.3, 0.4]]
    grad = rng.standard_normal((3, 4, 6, 5)).astype(dtype)
    kw = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    fused = _run(x, grid, grad, **kw)
    assert calls == list(NAMES)
    _assert_same(fused, _run(x, grid, grad, fused=False, **kw))
    if mode == "nearest":
        assert not fused[2].any()


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_partial_requires_grad_views_and_broadcast_gradients(rng, calls, mode):
    x = rng.standard_normal((2, 5, 6, 3)).astype(numpy.float32).transpose(0, 3, 1, 2)  # view
    grid = (rng.random((2, 2, 4, 5)) * 2.4 - 1.2).astype(numpy.float32).transpose(0, 2, 3, 1)
    grad = numpy.broadcast_to(numpy.float32(0.5), (2, 3, 4, 5))
    kw = {"mode": mode, "padding_mode": "zeros", "align_corners": False}
    for need in [(True, True), (True, False), (False, True)]:
        fused = _run(x, grid, grad, need=need, **kw)
        plain = _run(x, grid, grad, fused=False, need=need, **kw)
        assert [a is None for a in fused] == [a is None for a in plain]
        _assert_same(fused, plain)
    assert set(calls) == set(NAMES)


def test_switch_turned_off_between_forward_and_backward(rng):
    x = gf.tensor(rng.standard_normal((2, 3, 4, 4)).astype(numpy.float32), requires_grad=True)
    grid = gf.tensor((rng.random((2, 3, 3, 2)) * 2 - 1).astype(numpy.float32), requires_grad=True)
    out = F.grid_sample(x, grid, align_corners=False)
    with compiled.disabled():
        out.sum().backward()
    expected = _run(x.detach().numpy(), grid.detach().numpy(), numpy.ones(out.shape, "f4"),
                    fused=False, align_corners=False)  # fmt: skip
    _assert_same([out.detach().numpy(), x.grad.numpy(), grid.grad.numpy()], expected)


@pytest.mark.parametrize("mode,padding_mode,align_corners", MODES)
def test_nan_and_inf_grid_points_add_nothing_to_the_input_gradient(
    rng, mode, padding_mode, align_corners
):
    """A NaN coordinate (and inf, reflected to NaN) reads nothing valid: its output is NaN
    for bilinear (its weight), and its corners add nothing to dx, on both routes (torch's
    behaviour; the NumPy route used to raise IndexError here)."""
    x = rng.standard_normal((2, 2, 4, 5)).astype(numpy.float32)
    grid = (rng.random((2, 3, 3, 2)) * 2 - 1).astype(numpy.float32)
    clean = grid.copy()
    grid[0, 0, 0, 0] = numpy.nan
    grid[1, 2, 1, 1] = numpy.inf
    grad = numpy.ones((2, 2, 3, 3), numpy.float32)
    kw = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    fused, plain = (_run(x, grid, grad, fused=f, **kw) for f in (True, False))
    for a, b in zip(fused, plain, strict=True):
        numpy.testing.assert_array_equal(numpy.isnan(a), numpy.isnan(b))
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert numpy.isfinite(plain[1]).all()  # dx
    # dx equals that of the grid without the two points' gradients
    grad_without = grad.copy()
    grad_without[0, :, 0, 0] = 0
    grad_without[1, :, 2, 1] = 0
    if padding_mode != "border":  # border clamps inf to the edge, a valid read
        expected = _run(x, clean, grad_without, fused=False, **kw)[1]
        numpy.testing.assert_allclose(plain[1], expected, rtol=1e-5, atol=1e-6)


def _reference(x, grid, grad, mode, padding_mode, align_corners):
    """float64, one point at a time: output, dx and dgrid (zeros / border padding)."""
    n, c, h, w = x.shape
    out = numpy.zeros((n, c) + grid.shape[1:3])
    dx, dgrid = numpy.zeros(x.shape), numpy.zeros(grid.shape)

    def unnormalize(v, size):
        if align_corners:
            return (v + 1) / 2 * (size - 1), (size - 1) / 2
        return ((v + 1) * size - 1) / 2, size / 2

    for i, a, b in itertools.product(range(n), range(grid.shape[1]), range(grid.shape[2])):
        (px, mx), (py, my) = unnormalize(grid[i, a, b, 0], w), unnormalize(grid[i, a, b, 1], h)
        if padding_mode == "border":
            mx, my = mx * (0 < px < w - 1), my * (0 < py < h - 1)
            px, py = min(max(px, 0), w - 1), min(max(py, 0), h - 1)
        if mode == "nearest":
            taps = [(round(px), round(py), 1.0, 0.0, 0.0)]  # round: half to even
        else:
            x0, y0 = numpy.floor(px), numpy.floor(py)
            tx, ty = px - x0, py - y0
            taps = [(x0, y0, (1 - tx) * (1 - ty), -(1 - ty), -(1 - tx)),
                    (x0 + 1, y0, tx * (1 - ty), 1 - ty, -tx),
                    (x0, y0 + 1, (1 - tx) * ty, -ty, 1 - tx),
                    (x0 + 1, y0 + 1, tx * ty, ty, tx)]  # fmt: skip
        for cx, cy, wt, dwx, dwy in taps:
            if 0 <= cx <= w - 1 and 0 <= cy <= h - 1:
                cx, cy = int(cx), int(cy)
                out[i, :, a, b] += wt * x[i, :, cy, cx]
                dx[i, :, cy, cx] += wt * grad[i, :, a, b]
                gv = grad[i, :, a, b] @ x[i, :, cy, cx]
                dgrid[i, a, b] += [gv * dwx * mx, gv * dwy * my]
    return out, dx, dgrid


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("mode,padding_mode,align_corners",
                         [m for m in MODES if m[1] != "reflection"])  # fmt: skip
def test_against_a_float64_reference(rng, calls, dtype, mode, padding_mode, align_corners):
    x = rng.standard_normal((2, 3, 4, 6))
    grid = rng.random((2, 3, 5, 2)) * 2.4 - 1.2
    grid[0, 0, :2] = [[-1, 1], [1, -1]]
    grad = rng.standard_normal((2, 3, 3, 5))
    kw = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    got = _run(x.astype(dtype), grid.astype(dtype), grad.astype(dtype), **kw)
    assert calls == list(NAMES)
    tol = 1e-12 if dtype == numpy.float64 else 2e-5
    for a, b in zip(got, _reference(x, grid.astype(dtype).astype(float), grad, **kw)):
        numpy.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_gradcheck_on_the_compiled_route(rng, calls, padding_mode):
    x = gf.tensor(rng.standard_normal((2, 2, 4, 5)), requires_grad=True)
    # away from pixel lines and the clip / reflection edges, where the gradient jumps
    grid = rng.integers(-3, 3, (2, 3, 2, 2)) / 2.5 + rng.random((2, 3, 2, 2)) * 0.2 + 0.05
    grid = gf.tensor(grid, requires_grad=True)
    kw = {"padding_mode": padding_mode, "align_corners": True}
    assert gradcheck(lambda x, g: F.grid_sample(x, g, **kw), (x, grid))
    assert set(calls) == set(NAMES)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("mode,padding_mode,align_corners", MODES)
def test_against_torch(rng, calls, dtype, mode, padding_mode, align_corners):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    grid = (rng.random((2, 4, 5, 2)) * 2.6 - 1.3).astype(dtype)
    grid[0, 0, :4] = [[-1, -1], [1, 1], [1e30, -1e30], [0.0, 0.0]]
    if padding_mode == "reflection":  # far outside, the NumPy route reflects as fmod does,
        grid[0, 0, 2] = [5.5, -7.25]  # not as torch (both routes alike: the test above)
    grad = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    kw = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    got = _run(x, grid, grad, **kw)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(grid, requires_grad=True)
    out = torch.nn.functional.grid_sample(xt, gt, **kw)
    out.backward(torch.tensor(grad))
    tol = 1e-10 if dtype == numpy.float64 else 1e-4
    for a, b in zip(got, (out.detach(), xt.grad, gt.grad)):
        numpy.testing.assert_allclose(a, b.numpy(), rtol=tol, atol=tol)
    assert calls == list(NAMES)


def test_empty_batch_and_empty_grid_keep_the_numpy_route(calls):
    for xs, gs in [((0, 2, 3, 3), (0, 2, 2, 2)), ((1, 2, 3, 3), (1, 0, 2, 2))]:
        x = gf.tensor(numpy.ones(xs, numpy.float32), requires_grad=True)
        grid = gf.tensor(numpy.zeros(gs, numpy.float32), requires_grad=True)
        out = F.grid_sample(x, grid, align_corners=False)
        out.sum().backward()
        assert out.shape == (xs[0], 2) + gs[1:3]
        assert x.grad.shape == xs and grid.grad.shape == gs
    assert calls == []
