"""instance_norm, rms_norm and local_response_norm: PyTorch parity (values, gradients,
running statistics), float64 gradcheck, errors."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops.normalization import instance_norm, local_response_norm, rms_norm
from gradflow.testing import gradcheck


def host(t):
    return t.detach().cpu().numpy()


def _tensors(device, arrays, torch):
    ours = [None if a is None else gf.tensor(a, device=device, requires_grad=True) for a in arrays]
    theirs = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def _compare(device, ya, yb, ours, theirs, seed=9):
    import torch

    assert tuple(ya.shape) == tuple(yb.shape)
    numpy.testing.assert_allclose(host(ya), yb.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = numpy.random.default_rng(seed).standard_normal(ya.shape)
    ya.backward(gf.tensor(g, device=device))
    yb.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        if a is not None:
            numpy.testing.assert_allclose(host(a.grad), b.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 3), (1, 3, 2, 2, 3)])
@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm_matches_torch_with_running_stats(device, shape, affine):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal(shape) * 2 + 1
    w, b = (rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)) if affine else (None, None)
    ours, theirs = _tensors(device, [x, w, b], torch)
    rm, rv = (
        gf.zeros(3, device=device, dtype=gf.float64),
        gf.ones(3, device=device, dtype=gf.float64),
    )
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    ya = instance_norm(ours[0], rm, rv, ours[1], ours[2], momentum=0.3)
    yb = torch.nn.functional.instance_norm(theirs[0], trm, trv, theirs[1], theirs[2], momentum=0.3)
    _compare(device, ya, yb, ours, theirs)
    numpy.testing.assert_allclose(host(rm), trm.numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(host(rv), trv.numpy(), rtol=1e-12)
    # use_input_stats=False normalizes with the running statistics.
    ours, theirs = _tensors(device, [x, w, b], torch)
    ya = instance_norm(ours[0], rm, rv, ours[1], ours[2], use_input_stats=False)
    yb = torch.nn.functional.instance_norm(theirs[0], trm, trv, theirs[1], theirs[2],
                                           use_input_stats=False)  # fmt: skip
    _compare(device, ya, yb, ours, theirs)


def test_instance_norm_gradcheck(device):
    rng = numpy.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((2, 3, 4)), device=device, requires_grad=True)
    w = gf.tensor(rng.uniform(0.5, 1.5, 3), device=device, requires_grad=True)
    b = gf.tensor(rng.standard_normal(3), device=device, requires_grad=True)
    assert gradcheck(lambda x, w, b: instance_norm(x, weight=w, bias=b), [x, w, b])


@pytest.mark.parametrize(
    ("shape", "normalized_shape", "eps", "weighted"),
    [((2, 3, 4), (4,), None, True), ((2, 3, 4), (3, 4), 1e-5, True), ((5, 4), 4, None, False)],
)
def test_rms_norm_matches_torch(device, shape, normalized_shape, eps, weighted):
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(0)
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    w = rng.uniform(0.5, 1.5, ns) if weighted else None
    ours, theirs = _tensors(device, [rng.standard_normal(shape), w], torch)
    ya = rms_norm(ours[0], normalized_shape, ours[1], eps)
    yb = torch.nn.functional.rms_norm(theirs[0], ns, theirs[1], eps)
    _compare(device, ya, yb, ours, theirs)


def test_rms_norm_gradcheck(device):
    rng = numpy.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((3, 4)), device=device, requires_grad=True)
    w = gf.tensor(rng.uniform(0.5, 1.5, 4), device=device, requires_grad=True)
    assert gradcheck(lambda x, w: rms_norm(x, (4,), w, 1e-6), [x, w])


@pytest.mark.parametrize(
    ("shape", "size"), [((2, 5, 4), 3), ((2, 6, 3, 3), 2), ((1, 4, 2, 2, 2), 5)]
)
def test_local_response_norm_matches_torch(device, shape, size):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(0).standard_normal(shape)
    ours, theirs = _tensors(device, [x], torch)
    ya = local_response_norm(ours[0], size, alpha=0.1, beta=0.6, k=2.0)
    yb = torch.nn.functional.local_response_norm(theirs[0], size, alpha=0.1, beta=0.6, k=2.0)
    _compare(device, ya, yb, ours, theirs)
    x64 = gf.tensor(x, device=device, requires_grad=True)
    assert gradcheck(lambda t: local_response_norm(t, size, alpha=0.1, beta=0.6, k=2.0), [x64])


@pytest.mark.parametrize(
    ("fn", "error", "message"),
    [
        (lambda: instance_norm(gf.zeros(2, 3, 1)), ValueError,
         "Expected more than 1 spatial element when training, got input size (2, 3, 1)"),
        (lambda: instance_norm(gf.zeros(2, 3, 4), use_input_stats=False), ValueError,
         "instance_norm: Expected running_mean and running_var to be defined when "
         "use_input_stats is false"),
        (lambda: instance_norm(gf.zeros(2, 3)), ValueError,
         "instance_norm: argument 'input' has shape (2, 3); expected (N, C, ...) with at least "
         "one spatial dim"),
        (lambda: instance_norm(gf.zeros(2, 3, 4), weight=gf.ones(4)), ValueError,
         "instance_norm: argument 'weight' has shape (4,); expected (3,) (one value per "
         "channel, C = 3) for input of shape (2, 3, 4)"),
        (lambda: rms_norm(gf.zeros(2, 3), (4,)), RuntimeError,
         "rms_norm: Given normalized_shape=[4], expected input with shape [*, 4], but got "
         "input of size (2, 3)"),
        (lambda: local_response_norm(gf.zeros(2, 3), 2), ValueError,
         "local_response_norm: Expected 3D or higher dimensionality input (got 2 dimensions)"),
        (lambda: local_response_norm(gf.zeros(2, 3, 4), 0), ValueError,
         "local_response_norm: size must be a positive int, got 0"),
    ],
)  # fmt: skip
def test_errors(fn, error, message):
    with pytest.raises(error) as info:
        fn()
    assert str(info.value) == message


def test_group_norm_on_numpy_keeps_the_input_by_reference_not_a_normalized_copy():
    """The NumPy route keeps x itself (the caller's array), the means and the inverse
    deviations, as torch does; nothing of x's size is allocated to be kept."""
    x = gf.randn(4, 6, 5, requires_grad=True)
    w, b = gf.randn(6, requires_grad=True), gf.randn(6, requires_grad=True)
    saved = gf.nn.functional.group_norm(x, 3, w, b).grad_fn.saved_arrays
    assert saved[0] is x.array
    assert all(a is x.array or a.size <= 12 for a in saved if a is not None)


@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_gradient_of_a_sum_equals_the_dense_ones_gradient(affine):
    """sum().backward() hands a broadcast of ones (the route sums it as value times sum of x);
    the same gradient given as a dense array of ones takes the general route."""
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((3, 8, 4, 5))
    w, b = rng.standard_normal(8), rng.standard_normal(8)
    grads = []
    for dense in (False, True):
        tensors = [gf.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = gf.nn.functional.group_norm(tensors[0], 4, *(tensors[1:] if affine else (None, None)))
        if dense:
            y.backward(gf.ones(*y.shape, dtype=y.dtype))
        else:
            y.sum().backward()  # a broadcast of ones
        grads.append([t.grad.numpy() for t in tensors if t.grad is not None])
    for a, c in zip(*grads, strict=True):
        numpy.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-10)
