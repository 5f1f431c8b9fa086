"""Tests for nn.utils: gradient clipping by norm and by value, parameters to one vector and back."""

import math

import numpy
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)


def as_numpy(t):
    return t.detach().cpu().numpy()


def with_grads(grads, device="cpu"):
    """Parameters whose .grad holds the given arrays (float64)."""
    params = []
    for g in grads:
        p = nn.Parameter(gf.zeros(*g.shape, dtype=gf.float64, device=device))
        p.grad = gf.tensor(g, device=device)
        params.append(p)
    return params


GRADS = [numpy.array([[3.0, -4.0], [1.0, 0.5]]), numpy.array([-2.0, 6.0, 0.25])]


def norm_of(grads, norm_type):
    flat = numpy.concatenate([g.ravel() for g in grads])
    return numpy.abs(flat).max() if norm_type == math.inf else numpy.linalg.norm(flat, norm_type)


# ---- clip_grad_norm_ --------------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", [2, 1, math.inf, 3.0])
def test_clip_grad_norm_scales_all_gradients_together(device, norm_type):
    params = with_grads(GRADS, device)
    total = norm_of(GRADS, norm_type)
    returned = clip_grad_norm_(params, max_norm=1.5, norm_type=norm_type)
    numpy.testing.assert_allclose(float(returned), total, rtol=1e-12)  # the norm before clipping
    scale = 1.5 / (total + 1e-6)
    for p, g in zip(params, GRADS):
        numpy.testing.assert_allclose(as_numpy(p.grad), g * scale, rtol=1e-12)
    after = norm_of([as_numpy(p.grad) for p in params], norm_type)
    assert after <= 1.5 and after == pytest.approx(1.5, rel=1e-5)


class _Unhashable:
    """Like cupy.cuda.Device: it defines __eq__, so it has no hash."""

    __hash__ = None

    def __eq__(self, other):
        return isinstance(other, _Unhashable)


class _DeviceArray(numpy.ndarray):
    """A NumPy array whose .device is unhashable, as a CuPy array's is."""

    @property
    def device(self):
        return _Unhashable()


def test_clip_grad_norm_with_unhashable_array_devices():
    params = with_grads(GRADS)
    for p in params:
        p.grad = gf.Tensor._wrap(p.grad.array.view(_DeviceArray))
    total = norm_of(GRADS, 2)
    numpy.testing.assert_allclose(float(clip_grad_norm_(params, max_norm=1.5)), total)


@pytest.mark.parametrize("norm_type", [2, 1, math.inf])
def test_clip_grad_norm_is_a_no_op_under_the_maximum(norm_type):
    params = with_grads(GRADS)
    total = norm_of(GRADS, norm_type)
    returned = clip_grad_norm_(params, max_norm=total * 1.01, norm_type=norm_type)
    assert float(returned) == pytest.approx(total, rel=1e-12)
    for p, g in zip(params, GRADS):
        numpy.testing.assert_array_equal(as_numpy(p.grad), g)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(rng, norm_type, max_norm):
    torch = pytest.importorskip("torch")
    grads = [rng.standard_normal(s).astype(numpy.float32) for s in [(4, 3), (3,), (2, 2, 2)]]
    ours = [nn.Parameter(gf.zeros(*g.shape)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = gf.tensor(g), torch.from_numpy(g.copy())
    total_ours = clip_grad_norm_(iter(ours), max_norm, norm_type=norm_type)
    total_theirs = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert total_ours.dtype == numpy.float32
    numpy.testing.assert_allclose(as_numpy(total_ours), total_theirs.numpy(), rtol=1e-6)
    for p, q in zip(ours, theirs):
        numpy.testing.assert_allclose(as_numpy(p.grad), q.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_norm_skips_parameters_without_grad_and_takes_one_tensor():
    params = with_grads(GRADS)
    no_grad = nn.Parameter(gf.ones(3))
    total = clip_grad_norm_([params[0], no_grad, params[1]], 1.0)
    assert float(total) == pytest.approx(norm_of(GRADS, 2))
    assert no_grad.grad is None
    single = with_grads([numpy.array([3.0, 4.0])])[0]
    assert float(clip_grad_norm_(single, 1.0)) == pytest.approx(5.0)
    numpy.testing.assert_allclose(as_numpy(single.grad), [0.6, 0.8], rtol=1e-5)
    assert float(clip_grad_norm_([no_grad], 1.0)) == 0.0


def test_clip_grad_norm_non_finite():
    params = with_grads([numpy.array([1.0, numpy.nan]), numpy.array([2.0])])
    with pytest.raises(RuntimeError, match=r"total norm of order 2.0 .* is non-finite \(nan\)"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    numpy.testing.assert_array_equal(as_numpy(params[1].grad), [2.0])  # untouched on error
    params = with_grads([numpy.array([1.0, numpy.inf])])
    with pytest.raises(RuntimeError, match=r"non-finite \(inf\).*error_if_nonfinite=False"):
        clip_grad_norm_(params, 1.0, norm_type=math.inf, error_if_nonfinite=True)
    with numpy.errstate(invalid="ignore"):  # inf * 0
        total = clip_grad_norm_(params, 1.0)  # the default clips anyway, as PyTorch does
    assert math.isinf(float(total))
    numpy.testing.assert_array_equal(as_numpy(params[0].grad), [0.0, numpy.nan])


# ---- clip_grad_value_ -------------------------------------------------------------------------


def test_clip_grad_value_clamps_in_place(device):
    params = with_grads(GRADS, device)
    grads_before = [p.grad for p in params]
    assert clip_grad_value_(params, 1.0) is None
    for p, before, g in zip(params, grads_before, GRADS):
        assert p.grad is before
        numpy.testing.assert_array_equal(as_numpy(p.grad), numpy.clip(g, -1.0, 1.0))
    clip_grad_value_(params[0], 0)
    assert not as_numpy(params[0].grad).any()
    with pytest.raises(ValueError, match="clip_value must be >= 0, got -1.0"):
        clip_grad_value_(params, -1)


def test_clip_grad_value_matches_torch(rng):
    torch = pytest.importorskip("torch")
    g = rng.standard_normal((5, 4)).astype(numpy.float32)
    ours, theirs = nn.Parameter(gf.zeros(5, 4)), torch.nn.Parameter(torch.zeros(5, 4))
    ours.grad, theirs.grad = gf.tensor(g), torch.from_numpy(g.copy())
    clip_grad_value_([ours], 0.3)
    torch.nn.utils.clip_grad_value_([theirs], 0.3)
    numpy.testing.assert_array_equal(as_numpy(ours.grad), theirs.grad.numpy())


# ---- parameters_to_vector and vector_to_parameters --------------------------------------------


def test_parameters_to_vector_and_back_round_trip():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    params = list(model.parameters())
    vec = parameters_to_vector(model.parameters())
    assert vec.shape == (sum(p.numel() for p in params),) == (3 * 4 + 4 + 4 * 2,)
    numpy.testing.assert_array_equal(
        as_numpy(vec), numpy.concatenate([as_numpy(p).ravel() for p in params])
    )
    new = gf.arange(vec.numel(), dtype=gf.float32)
    vector_to_parameters(new, model.parameters())
    assert all(a is b for a, b in zip(params, model.parameters()))  # filled in place
    numpy.testing.assert_array_equal(as_numpy(parameters_to_vector(params)), as_numpy(new))
    numpy.testing.assert_array_equal(as_numpy(model[0].bias), [12.0, 13.0, 14.0, 15.0])
    new.array[...] = -1.0  # copied, not aliased
    assert as_numpy(model[0].weight).min() == 0.0


def test_parameters_to_vector_is_differentiable():
    a = nn.Parameter(gf.ones(2, 2))
    b = nn.Parameter(gf.ones(3))
    (parameters_to_vector([a, b]) * gf.arange(7, dtype=gf.float32)).sum().backward()
    numpy.testing.assert_array_equal(as_numpy(a.grad), [[0.0, 1.0], [2.0, 3.0]])
    numpy.testing.assert_array_equal(as_numpy(b.grad), [4.0, 5.0, 6.0])


def test_vector_to_parameters_errors():
    params = [nn.Parameter(gf.ones(2, 3)), nn.Parameter(gf.ones(4))]
    with pytest.raises(ValueError, match="the vector has 9 elements, the parameters need 10"):
        vector_to_parameters(gf.zeros(9), params)
    with pytest.raises(ValueError, match="the vector has 11 elements, the parameters need 10"):
        vector_to_parameters(gf.zeros(11), params)
    with pytest.raises(ValueError, match=r"expected a 1-D tensor, got \(2, 5\)"):
        vector_to_parameters(gf.zeros(2, 5), params)
    with pytest.raises(ValueError, match="expected a 1-D tensor, got ndarray"):
        vector_to_parameters(numpy.zeros(10), params)
    assert all(as_numpy(p).min() == 1.0 for p in params)  # nothing written
    with pytest.raises(ValueError, match="parameters_to_vector: got no parameters"):
        parameters_to_vector([])


def test_clip_grad_takes_torch_foreach_argument():
    p = nn.Parameter(gf.ones(4))
    p.grad = gf.full((4,), 3.0)
    norm = clip_grad_norm_([p], max_norm=1.0, foreach=True)
    assert norm.item() == pytest.approx(6.0)
    numpy.testing.assert_allclose(numpy.linalg.norm(p.grad.numpy()), 1.0, rtol=1e-5)
    clip_grad_value_([p], 0.1, foreach=False)
    assert p.grad.abs().max().item() <= 0.1 + 1e-7
