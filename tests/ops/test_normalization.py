"""Tests for gradflow/ops/normalization.py: gradients (float64 finite differences) in train and
eval mode, running statistics, parity with PyTorch, float32 stability, non-contiguous inputs,
the memory contract and error messages."""

import weakref

import numpy
import pytest

import gradflow
from gradflow.backend import compiled
from gradflow.ops.normalization import batch_norm, group_norm, layer_norm
from gradflow.testing.gradcheck import gradcheck

SHAPES = [(5, 3), (4, 3, 5), (3, 3, 2, 4)]  # (N, C), (N, C, L), (N, C, H, W)


def t(array, device, requires_grad=False):
    return gradflow.tensor(numpy.asarray(array), device=device, requires_grad=requires_grad)


def host(x):
    """A NumPy copy (buffers change in place later; a view would change with them)."""
    return numpy.array(x.detach().cpu().numpy())


def affine(rng, shape, device, requires_grad=True):
    weight = t(rng.standard_normal(shape), device, requires_grad)
    bias = t(rng.standard_normal(shape), device, requires_grad)
    return weight, bias


def buffers(rng, channels, device):
    return t(rng.standard_normal(channels), device), t(rng.random(channels) + 0.5, device)


def reference_batch_norm(x, mean, var, weight, bias, eps=1e-5):
    """NumPy float64: per-channel normalization with the given statistics (channel axis 1)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / numpy.sqrt(var.reshape(shape) + eps)
    return y * weight.reshape(shape) + bias.reshape(shape)


# ---- batch_norm: values and running statistics ------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_train_normalizes_with_batch_statistics(device, rng, shape):
    x = rng.standard_normal(shape) * 3 + 2
    weight, bias = affine(rng, shape[1], device)
    running_mean, running_var = buffers(rng, shape[1], device)
    old_mean, old_var = host(running_mean), host(running_var)
    y = batch_norm(
        t(x, device), running_mean, running_var, weight, bias, training=True, momentum=0.3
    )
    axes = (0, *range(2, x.ndim))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    expected = reference_batch_norm(x, mean, var, host(weight), host(bias))
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-12)
    count = x.size // shape[1]
    numpy.testing.assert_allclose(host(running_mean), 0.7 * old_mean + 0.3 * mean, rtol=1e-12)
    numpy.testing.assert_allclose(
        host(running_var), 0.7 * old_var + 0.3 * var * count / (count - 1), rtol=1e-12
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_eval_uses_running_statistics_and_leaves_them_alone(device, rng, shape):
    x = rng.standard_normal(shape)
    weight, bias = affine(rng, shape[1], device)
    running_mean, running_var = buffers(rng, shape[1], device)
    old_mean, old_var = host(running_mean), host(running_var)
    y = batch_norm(t(x, device), running_mean, running_var, weight, bias)
    expected = reference_batch_norm(x, old_mean, old_var, host(weight), host(bias))
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-12)
    numpy.testing.assert_array_equal(host(running_mean), old_mean)
    numpy.testing.assert_array_equal(host(running_var), old_var)


def test_batch_norm_train_without_buffers_or_affine(device, rng):
    x = rng.standard_normal((6, 2, 3))
    y = batch_norm(t(x, device), None, None, training=True, eps=1e-3)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    expected = reference_batch_norm(x, mean, var, numpy.ones(2), numpy.zeros(2), eps=1e-3)
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-12)


# ---- batch_norm: gradients -------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(device, rng, shape, training):
    x = t(rng.standard_normal(shape), device, True)
    weight, bias = affine(rng, shape[1], device)
    running_mean, running_var = buffers(rng, shape[1], device)

    def fn(x, weight, bias):
        return batch_norm(x, running_mean, running_var, weight, bias, training=training)

    assert gradcheck(fn, [x, weight, bias])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_without_affine_and_one_input_at_a_time(device, rng, training):
    shape = (4, 3, 3)
    x = t(rng.standard_normal(shape), device, True)
    running_mean, running_var = buffers(rng, 3, device)
    assert gradcheck(lambda x: batch_norm(x, running_mean, running_var, training=training), [x])
    # Each of input, weight and bias on its own: backward computes only what is asked for.
    weight, bias = affine(rng, 3, device, requires_grad=False)
    for wrt in range(3):
        args = [t(host(a), device, i == wrt) for i, a in enumerate((x, weight, bias))]
        assert gradcheck(
            lambda x, w, b: batch_norm(x, running_mean, running_var, w, b, training=training),
            args,
        )


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_on_non_contiguous_input(device, rng, training):
    base = t(rng.standard_normal((3, 4, 5)), device, True)  # viewed as (5, 4, 3): N=5, C=4
    assert not base.transpose(0, 2).array.flags.c_contiguous
    weight, bias = affine(rng, 4, device)
    running_mean, running_var = buffers(rng, 4, device)

    def fn(base, weight, bias):
        x = base.transpose(0, 2)
        return batch_norm(x, running_mean, running_var, weight, bias, training=training)

    assert gradcheck(fn, [base, weight, bias])


# ---- batch_norm: parity with PyTorch --------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 3), (6, 3, 7), (4, 3, 5, 6)])
@pytest.mark.parametrize("with_affine", [True, False])
def test_batch_norm_matches_torch_over_several_steps(device, rng, shape, with_affine):
    torch = pytest.importorskip("torch")
    channels = shape[1]
    w, b = rng.standard_normal(channels), rng.standard_normal(channels)
    ours = {"mean": t(numpy.zeros(channels), device), "var": t(numpy.ones(channels), device)}
    theirs = {
        "mean": torch.zeros(channels, dtype=torch.float64),
        "var": torch.ones(channels, dtype=torch.float64),
    }
    ow, ob = (t(w, device, True), t(b, device, True)) if with_affine else (None, None)
    tw, tb = (
        (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
        if with_affine
        else (None, None)
    )
    # Three training steps, then one in eval mode: outputs, gradients and buffers each time.
    for step, training in enumerate([True, True, True, False]):
        x = rng.standard_normal(shape) * (step + 1) + step
        g = rng.standard_normal(shape)
        ox, tx = t(x, device, True), torch.tensor(x, requires_grad=True)
        oy = batch_norm(ox, ours["mean"], ours["var"], ow, ob, training, momentum=0.2, eps=1e-4)
        ty = torch.nn.functional.batch_norm(
            tx, theirs["mean"], theirs["var"], tw, tb, training, momentum=0.2, eps=1e-4
        )
        oy.backward(t(g, device))
        ty.backward(torch.tensor(g))
        numpy.testing.assert_allclose(host(oy), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        numpy.testing.assert_allclose(host(ox.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
        for name in ("mean", "var"):
            numpy.testing.assert_allclose(
                host(ours[name]), theirs[name].numpy(), rtol=1e-12, atol=1e-12
            )
    if with_affine:  # accumulated over the four steps
        numpy.testing.assert_allclose(host(ow.grad), tw.grad.numpy(), rtol=1e-9, atol=1e-10)
        numpy.testing.assert_allclose(host(ob.grad), tb.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_batch_norm_float32_matches_torch(device, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((16, 8, 6, 6)).astype(numpy.float32) * 2 + 5
    g = rng.standard_normal(x.shape).astype(numpy.float32)
    w = rng.standard_normal(8).astype(numpy.float32)
    ox, ow = t(x, device, True), t(w, device, True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    rm, rv = t(numpy.zeros(8, numpy.float32), device), t(numpy.ones(8, numpy.float32), device)
    oy = batch_norm(ox, rm, rv, ow, None, training=True)
    trm, trv = torch.zeros(8), torch.ones(8)
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tw, None, training=True)
    oy.backward(t(g, device))
    ty.backward(torch.tensor(g))
    assert oy.dtype == numpy.float32 and ox.grad.dtype == numpy.float32
    numpy.testing.assert_allclose(host(oy), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    numpy.testing.assert_allclose(host(ox.grad), tx.grad.numpy(), rtol=1e-3, atol=1e-4)
    numpy.testing.assert_allclose(host(ow.grad), tw.grad.numpy(), rtol=1e-3, atol=1e-3)
    numpy.testing.assert_allclose(host(rv), trv.numpy(), rtol=1e-5)


# ---- batch_norm: buffers, graph and memory ------------------------------------------------


def test_batch_norm_buffers_are_updated_without_a_graph_and_backward_still_works(device, rng):
    x = t(rng.standard_normal((6, 3, 4)), device, True)
    running_mean, running_var = buffers(rng, 3, device)
    version = running_mean._version
    y1 = batch_norm(x, running_mean, running_var, training=True)
    y2 = batch_norm(x * 2.0, running_mean, running_var, training=True)  # buffers change again
    assert running_mean._version == version + 2
    for buffer in (running_mean, running_var):
        assert buffer.grad_fn is None and not buffer.requires_grad
    (y1.sum() + (y2 * y2).sum()).backward()  # the first node's backward is not disturbed
    assert x.grad is not None and numpy.isfinite(host(x.grad)).all()


def test_batch_norm_eval_graph_is_immune_to_later_buffer_updates(device, rng):
    x_np, g_np = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    running_mean, running_var = buffers(rng, 3, device)
    weight = t(rng.standard_normal(3), device, True)
    x = t(x_np, device, True)
    mean, var = host(running_mean), host(running_var)
    y = batch_norm(x, running_mean, running_var, weight)
    batch_norm(t(x_np * 5, device), running_mean, running_var, training=True)  # updates buffers
    y.backward(t(g_np, device))
    numpy.testing.assert_allclose(host(x.grad), g_np * host(weight) / numpy.sqrt(var + 1e-5))
    xhat = (x_np - mean) / numpy.sqrt(var + 1e-5)
    numpy.testing.assert_allclose(host(weight.grad), (g_np * xhat).sum(0), rtol=1e-12)


def test_batch_norm_updates_buffers_under_no_grad(device, rng):
    running_mean, running_var = buffers(rng, 2, device)
    before = host(running_mean)
    with gradflow.no_grad():
        x = t(rng.standard_normal((4, 2)), device, True)
        y = batch_norm(x, running_mean, running_var, training=True)
    assert y.grad_fn is None
    assert not numpy.array_equal(host(running_mean), before)


def test_batch_norm_memory_contract(rng):
    x = t(rng.standard_normal((4, 3, 5)), "cpu", True)
    weight, bias = affine(rng, 3, "cpu")
    running_mean, running_var = buffers(rng, 3, "cpu")
    # Training: the input by reference (no copy of x - mean) and two values per channel.
    y = batch_norm(x, running_mean, running_var, weight, bias, True)
    saved_x, mean, invstd, saved_weight = y.grad_fn.saved_arrays
    assert saved_x is x.array and saved_weight is weight.array
    assert mean.shape == invstd.shape == (3,)
    # Eval without a weight gradient: dx = g * scale needs no input.
    weight.requires_grad = False
    saved = batch_norm(x, running_mean, running_var, weight, bias).grad_fn.saved_arrays
    assert saved[0] is None and saved[1].shape == saved[2].shape == (3,)
    # Eval with a weight gradient: the input again, by reference.
    weight.requires_grad = True
    saved = batch_norm(x, running_mean, running_var, weight, bias).grad_fn.saved_arrays
    assert saved[0] is x.array


def test_batch_norm_backward_sees_in_place_changes_to_its_input(rng):
    x = t(rng.standard_normal((4, 3)), "cpu")
    weight = t(rng.standard_normal(3), "cpu", True)
    y = batch_norm(x, None, None, weight, training=True)
    x.add_(1.0)  # the node kept x by reference: backward must refuse, not use the new values
    with pytest.raises(
        RuntimeError,
        match=r"batch_norm: one of the arrays saved for backward .* modified by an inplace",
    ):
        y.sum().backward()


def test_normalization_graphs_are_freed_with_their_output(rng):
    x = t(rng.standard_normal((4, 3, 2)), "cpu", True)
    weight, bias = affine(rng, 3, "cpu")
    running_mean, running_var = buffers(rng, 3, "cpu")
    outputs = [
        batch_norm(x, running_mean, running_var, weight, bias, training=True),
        batch_norm(x, running_mean, running_var, weight, bias),
        layer_norm(x, 2),
        group_norm(x, 3, weight, bias),
    ]
    nodes = [weakref.ref(y.grad_fn) for y in outputs]
    del outputs
    assert all(node() is None for node in nodes)


def test_batch_norm_float32_variance_is_stable_with_a_large_mean(rng):
    # E[x^2] - E[x]^2 loses every digit here in float32 (x^2 ~ 1e8, variance ~ 1).
    x = (rng.standard_normal((256, 4)) + 1e4).astype(numpy.float32)
    running_var = t(numpy.zeros(4, numpy.float32), "cpu")
    y = batch_norm(t(x, "cpu"), None, running_var, training=True, momentum=1.0)
    x64 = x.astype(numpy.float64)
    numpy.testing.assert_allclose(host(running_var), x64.var(axis=0, ddof=1), rtol=1e-3)
    expected = (x64 - x64.mean(0)) / numpy.sqrt(x64.var(0) + 1e-5)
    numpy.testing.assert_allclose(host(y), expected, atol=1e-3)  # the mean is summed in float64


# ---- batch_norm: errors ------------------------------------------------------------------------


def cpu(array):
    return gradflow.tensor(numpy.asarray(array))


# (call on x (4, 3, 2) float64 and buffers of 3, error type, the message it must carry)
BATCH_NORM_ERRORS = {
    "running_mean length": (
        lambda x, m, v: batch_norm(x, cpu(numpy.zeros(4)), v),
        ValueError,
        r"batch_norm: argument 'running_mean' has shape \(4,\); expected \(3,\) \(one value "
        r"per channel, C = 3\) for input of shape \(4, 3, 2\)",
    ),
    "weight length": (
        lambda x, m, v: batch_norm(x, m, v, weight=cpu(numpy.ones(2))),
        ValueError,
        r"batch_norm: argument 'weight' has shape \(2,\); expected \(3,\)",
    ),
    "bias shape": (
        lambda x, m, v: batch_norm(x, m, v, bias=cpu(numpy.ones((3, 1)))),
        ValueError,
        r"batch_norm: argument 'bias' has shape \(3, 1\); expected \(3,\)",
    ),
    "eval without buffers": (
        lambda x, m, v: batch_norm(x, m, None),
        ValueError,
        r"batch_norm: training=False .* but running_var is None; pass both buffers, or "
        r"training=True",
    ),
    "one value per channel": (
        lambda x, m, v: batch_norm(cpu(numpy.ones((1, 3))), m, v, training=True),
        ValueError,
        r"batch_norm: expected more than 1 value per channel when training, got input of "
        r"shape \(1, 3\)",
    ),
    "1-d input": (
        lambda x, m, v: batch_norm(cpu(numpy.ones(3)), m, v),
        ValueError,
        r"batch_norm: argument 'input' has shape \(3,\); expected \(N, C\) or \(N, C, \.\.\.\)",
    ),
    "integer input": (
        lambda x, m, v: batch_norm(cpu(numpy.ones((2, 3), numpy.int64)), m, v),
        TypeError,
        r"batch_norm: argument 'input' has dtype int64 and shape \(2, 3\); expected a "
        r"floating-point tensor",
    ),
    "momentum None": (
        lambda x, m, v: batch_norm(x, m, v, training=True, momentum=None),
        TypeError,
        r"batch_norm: momentum must be a float, got None; for a cumulative average pass "
        r"momentum = 1 / num_batches_tracked",
    ),
    "buffer dtype": (
        lambda x, m, v: batch_norm(x, m, cpu(numpy.ones(3, numpy.float32))),
        TypeError,
        r"batch_norm: argument 'running_var' is float32 on cpu but input is float64 on cpu",
    ),
    "not a tensor": (
        lambda x, m, v: batch_norm(numpy.ones((2, 3)), m, v),
        TypeError,
        r"batch_norm: argument 'input' must be a Tensor, got ndarray",
    ),
}


@pytest.mark.parametrize("case", BATCH_NORM_ERRORS)
def test_batch_norm_errors(rng, case):
    call, error, message = BATCH_NORM_ERRORS[case]
    x = cpu(rng.standard_normal((4, 3, 2)))
    with pytest.raises(error, match=message):
        call(x, *buffers(rng, 3, "cpu"))


# ---- layer_norm --------------------------------------------------------------------------------


def reference_layer_norm(x, k, weight, bias, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    y = (x - x.mean(axis=axes, keepdims=True)) / numpy.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return y * (1 if weight is None else weight) + (0 if bias is None else bias)


@pytest.mark.parametrize("normalized_shape", [(5,), (4, 5)])
@pytest.mark.parametrize("params", ["both", "weight", "bias", "none"])
def test_layer_norm_values_and_gradcheck(device, rng, normalized_shape, params):
    shape = (3, 4, 5)[-1 - len(normalized_shape) :]  # one leading dim, then normalized_shape
    x = t(rng.standard_normal(shape) * 2 + 1, device, True)
    weight, bias = affine(rng, normalized_shape, device)
    weight = weight if params in ("both", "weight") else None
    bias = bias if params in ("both", "bias") else None
    y = layer_norm(x, normalized_shape, weight, bias)
    w_np = None if weight is None else host(weight)
    b_np = None if bias is None else host(bias)
    expected = reference_layer_norm(host(x), len(normalized_shape), w_np, b_np)
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-12)
    inputs = [a for a in (x, weight, bias) if a is not None]

    def fn(*args):
        it = iter(args[1:])
        w = next(it) if weight is not None else None
        b = next(it) if bias is not None else None
        return layer_norm(args[0], normalized_shape, w, b)

    assert gradcheck(fn, inputs)


def test_layer_norm_int_shape_and_non_contiguous_input(device, rng):
    base = t(rng.standard_normal((6, 4)), device, True)  # viewed as (4, 6)
    weight, bias = affine(rng, 6, device)
    assert gradcheck(lambda b, w, c: layer_norm(b.T, 6, w, c), [base, weight, bias])
    y = layer_norm(base.T, 6, weight, bias)
    expected = reference_layer_norm(host(base).T, 1, host(weight), host(bias))
    numpy.testing.assert_allclose(host(y), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("normalized_shape", [(7,), (3, 7)])
@pytest.mark.parametrize("with_affine", [True, False])
def test_layer_norm_matches_torch(device, rng, normalized_shape, with_affine):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 3, 7)) * 3 - 1
    g = rng.standard_normal(x.shape)
    w, b = rng.standard_normal(normalized_shape), rng.standard_normal(normalized_shape)
    ox, tx = t(x, device, True), torch.tensor(x, requires_grad=True)
    ow, ob = (t(w, device, True), t(b, device, True)) if with_affine else (None, None)
    tw, tb = (
        (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
        if with_affine
        else (None, None)
    )
    oy = layer_norm(ox, normalized_shape, ow, ob, eps=1e-3)
    ty = torch.nn.functional.layer_norm(tx, normalized_shape, tw, tb, eps=1e-3)
    oy.backward(t(g, device))
    ty.backward(torch.tensor(g))
    numpy.testing.assert_allclose(host(oy), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(host(ox.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    if with_affine:
        numpy.testing.assert_allclose(host(ow.grad), tw.grad.numpy(), rtol=1e-10, atol=1e-12)
        numpy.testing.assert_allclose(host(ob.grad), tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_layer_norm_float32_is_stable_with_a_large_mean(rng):
    x = (rng.standard_normal((8, 64)) + 1e4).astype(numpy.float32)
    y = layer_norm(t(x, "cpu"), 64)
    x64 = x.astype(numpy.float64)
    expected = reference_layer_norm(x64, 1, None, None)
    numpy.testing.assert_allclose(host(y), expected, atol=2e-3)


def test_layer_norm_memory_contract(rng):
    x = t(rng.standard_normal((3, 4)), "cpu", True)
    weight, bias = affine(rng, 4, "cpu")
    with compiled.disabled():  # NumPy's route keeps xhat (a new array)
        xhat, invstd, w = layer_norm(x, 4, weight, bias).grad_fn.saved_arrays
    assert xhat.shape == (3, 4) and invstd.shape == (3,) and w is weight.array
    assert layer_norm(t(host(x), "cpu"), 4, weight.detach(), None).grad_fn is None
    if compiled.loops(x.array) is not None:  # the compiled route keeps x itself, as PyTorch
        kept, mean, invstd, w = layer_norm(x, 4, weight, bias).grad_fn.saved_arrays
        assert kept is x.array and mean.shape == invstd.shape == (3,) and w is weight.array


# (call on x (2, 3, 4) float64, error type, the message it must carry)
LAYER_NORM_ERRORS = {
    "last dim": (
        lambda x: layer_norm(x, 5),
        ValueError,
        r"layer_norm: normalized_shape \(5,\) must match the trailing dims of input, got input "
        r"of shape \(2, 3, 4\) \(expected \(\*, 5\)\)",
    ),
    "last two dims": (
        lambda x: layer_norm(x, (4, 3)),
        ValueError,
        r"layer_norm: normalized_shape \(4, 3\) must match .* \(expected \(\*, 4, 3\)\)",
    ),
    "too many dims": (
        lambda x: layer_norm(x, (1, 2, 3, 4)),
        ValueError,
        r"layer_norm: argument 'input' has shape \(2, 3, 4\); expected at least 4 dims",
    ),
    "weight shape": (
        lambda x: layer_norm(x, 4, cpu(numpy.ones(3))),
        ValueError,
        r"layer_norm: argument 'weight' has shape \(3,\); expected \(4,\) \(the same as "
        r"normalized_shape\)",
    ),
    "bias shape": (
        lambda x: layer_norm(x, (3, 4), None, cpu(numpy.ones(4))),
        ValueError,
        r"layer_norm: argument 'bias' has shape \(4,\); expected \(3, 4\)",
    ),
    "empty shape": (
        lambda x: layer_norm(x, ()),
        ValueError,
        r"layer_norm: normalized_shape is empty; pass the sizes of the trailing dims",
    ),
    "shape type": (
        lambda x: layer_norm(x, 4.0),
        TypeError,
        r"layer_norm: normalized_shape must be an int or a sequence of ints, got 4.0",
    ),
}


@pytest.mark.parametrize("case", LAYER_NORM_ERRORS)
def test_layer_norm_errors(rng, case):
    call, error, message = LAYER_NORM_ERRORS[case]
    with pytest.raises(error, match=message):
        call(cpu(rng.standard_normal((2, 3, 4))))


# ---- group_norm --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 6), (2, 6, 5), (2, 4, 3, 2)])
def test_group_norm_gradcheck(device, rng, shape):
    x = t(rng.standard_normal(shape), device, True)
    weight, bias = affine(rng, shape[1], device)
    assert gradcheck(lambda x, w, b: group_norm(x, 2, w, b), [x, weight, bias])
    assert gradcheck(lambda x: group_norm(x, shape[1] // 2), [x])


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_matches_torch(device, rng, groups):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 6, 4, 2)) * 2 + 3
    g = rng.standard_normal(x.shape)
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    ox, ow, ob = t(x, device, True), t(w, device, True), t(b, device, True)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    oy = group_norm(ox.transpose(2, 3), groups, ow, ob)  # a non-contiguous input too
    ty = torch.nn.functional.group_norm(tx.transpose(2, 3), groups, tw, tb)
    oy.backward(t(g.transpose(0, 1, 3, 2), device))
    ty.backward(torch.tensor(g.transpose(0, 1, 3, 2)))
    numpy.testing.assert_allclose(host(oy), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in ((ox, tx), (ow, tw), (ob, tb)):
        numpy.testing.assert_allclose(host(ours.grad), theirs.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_group_norm_errors(rng):
    x = cpu(rng.standard_normal((2, 6, 3)))
    message = (
        r"group_norm: num_groups=4 must be positive and divide the 6 channels of input of "
        r"shape \(2, 6, 3\)"
    )
    with pytest.raises(ValueError, match=message):
        group_norm(x, 4)
    message = r"group_norm: argument 'weight' has shape \(3,\); expected \(6,\)"
    with pytest.raises(ValueError, match=message):
        group_norm(x, 3, cpu(numpy.ones(3)))
    with pytest.raises(TypeError, match=r"group_norm: num_groups must be an int, got 2.0"):
        group_norm(x, 2.0)


# ---- empty inputs ------------------------------------------------------------------------------
# Each leaked NumPy's "cannot reshape array of size 0" (a -1 in a reshape has nothing to be
# inferred from) or raised ZeroDivisionError (rows of no elements); PyTorch returns the empty
# output, and the parameters' gradients are sums over nothing: zeros.


def _empty_case(device, op, shape, *args):
    x = t(numpy.zeros(shape), device, True)
    params = [t(numpy.ones(s), device, True) for s in args[-2:]]
    y = op(x, *args[:-2], *params)
    y.sum().backward()
    assert y.shape == shape and x.grad.shape == shape
    for p in params:
        assert not host(p.grad).any()


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0), (0, 3, 2, 2), (2, 3, 0, 2)])
def test_batch_norm_eval_of_an_empty_input(device, rng, shape):
    mean, var = buffers(rng, 3, device)
    _empty_case(device, lambda x, w, b: batch_norm(x, mean, var, w, b), shape, (3,), (3,))


@pytest.mark.parametrize("shape", [(0, 4), (0, 4, 3), (2, 4, 0), (2, 4, 0, 3)])
def test_group_norm_of_an_empty_input(device, shape):
    _empty_case(device, group_norm, shape, 2, (4,), (4,))


@pytest.mark.parametrize("shape,normalized", [((2, 0), (0,)), ((2, 0, 3), (0, 3)), ((0, 3), (3,))])
def test_layer_norm_of_an_empty_input(device, shape, normalized):
    _empty_case(device, layer_norm, shape, normalized, normalized, normalized)


def test_layer_norm_gradient_of_the_bias_alone(device, rng):
    """With neither input nor weight needing a gradient, backward reshaped g like the xhat it
    had not kept (None)."""
    bias = t(rng.standard_normal(4), device, True)
    layer_norm(t(rng.standard_normal((3, 4)), device), (4,), None, bias).sum().backward()
    numpy.testing.assert_array_equal(host(bias.grad), numpy.full(4, 3.0))
