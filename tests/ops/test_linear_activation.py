"""ops.fused.linear_activation: f(x @ W^T + b) in one node, on cpu and on the kernel route."""

import contextlib

import numpy
import pytest

import gradflow as gf
from gradflow.kernels import dispatch
from gradflow.ops import unary
from gradflow.ops.fused import FUSED_ACTIVATIONS, LinearActivation, linear_activation
from gradflow.ops.linalg import linear
from gradflow.testing import gradcheck
from gradflow.testing.emulation import route_kernels, unavailable_reason

UNFUSED = {
    "relu": unary.relu,
    "sigmoid": unary.sigmoid,
    "tanh": unary.tanh,
    "gelu_erf": unary.gelu,
    "gelu_tanh": lambda z: unary.gelu(z, approximate="tanh"),
    "silu": unary.silu,
}
NEEDS = {  # which of x, W, b need a gradient
    "all": (True, True, True),
    "frozen_weight": (True, False, True),
    "frozen_weight_and_bias": (True, False, False),
    "weight_only": (False, True, False),
    "bias_only": (False, False, True),
}
needs_emulation = pytest.mark.skipif(
    unavailable_reason() is not None, reason=str(unavailable_reason())
)


def _inputs(rng, x_shape, n_out, dtype, needs=(True, True, True), bias=True, device="cpu"):
    n_in = x_shape[-1]
    arrays = [
        rng.standard_normal(x_shape) * 2,
        rng.standard_normal((n_out, n_in)) / numpy.sqrt(n_in),
        rng.standard_normal(n_out) if bias else None,
    ]
    return [
        None if a is None else gf.tensor(a.astype(dtype), device=device, requires_grad=need)
        for a, need in zip(arrays, needs)
    ]


def _run(fn, tensors, g):
    """fn's output and the gradients of the tensors that need one, as NumPy arrays."""
    for t in tensors:
        if t is not None:
            t.grad = None
    out = fn(*tensors)
    out.backward(gf.tensor(g, device=out.device))
    grads = [None if t is None or t.grad is None else t.grad.cpu().numpy() for t in tensors]
    return out.detach().cpu().numpy(), grads


def _unfused(act):
    return lambda x, w, b: UNFUSED[act](linear(x, w, b))


def _fused(act):
    return lambda x, w, b: linear_activation(x, w, b, act)


@pytest.mark.parametrize("act", sorted(FUSED_ACTIVATIONS))
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("x_shape", [(7, 5), (2, 3, 5)], ids=["2d", "3d"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_cpu_fused_equals_unfused_bit_for_bit(act, dtype, x_shape, bias, rng):
    tensors = _inputs(rng, x_shape, 4, dtype, bias=bias)
    g = rng.standard_normal((*x_shape[:-1], 4)).astype(dtype)
    out_ref, grads_ref = _run(_unfused(act), tensors, g)
    out, grads = _run(_fused(act), tensors, g)
    numpy.testing.assert_array_equal(out, out_ref)
    for ours, ref in zip(grads, grads_ref):
        if ref is None:
            assert ours is None
        else:
            numpy.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("act", sorted(FUSED_ACTIVATIONS))
def test_gradcheck(act, device, rng):
    tensors = _inputs(rng, (4, 3), 5, numpy.float64, device=device)
    assert gradcheck(_fused(act), tensors)


def test_cpu_saves_what_the_unfused_pair_saves(rng):
    x, w, b = _inputs(rng, (6, 5), 4, numpy.float32)
    y = linear_activation(x, w, b, "relu")
    saved = y.grad_fn.saved_arrays
    assert saved[0] is x.array and saved[1] is w.array
    assert [a.dtype for a in saved[2:]] == [numpy.dtype(bool)]  # relu's mask, not a float z


def test_inner_saved_arrays_are_freed_with_the_node(rng):
    x, w, b = _inputs(rng, (6, 5), 4, numpy.float64)
    y = linear_activation(x, w, b, "silu")
    fn = y.grad_fn
    y.sum().backward()
    assert fn.act.saved_arrays == ()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.sum().backward()


def test_retain_graph_backs_up_twice(rng):
    x, w, b = _inputs(rng, (6, 5), 4, numpy.float64)
    y = linear_activation(x, w, b, "tanh").sum()
    y.backward(retain_graph=True)
    first = w.grad.numpy().copy()
    y.backward()
    numpy.testing.assert_allclose(w.grad.numpy(), 2 * first)


def test_no_grad_records_nothing(rng):
    x, w, b = _inputs(rng, (3, 5), 4, numpy.float32)
    with gf.no_grad():
        y = linear_activation(x, w, b, "gelu_erf")
    assert y.grad_fn is None and not y.requires_grad


def test_errors_name_the_op_and_what_fits(rng):
    x, w, b = _inputs(rng, (3, 5), 4, numpy.float32)
    with pytest.raises(ValueError, match="linear_activation: unknown activation 'softplus'"):
        linear_activation(x, w, b, "softplus")
    with pytest.raises(ValueError, match=r"linear_activation: input of shape \(3, 5\) doesn't"):
        linear_activation(x, w[:, :4], b, "relu")
    with pytest.raises(ValueError, match=r"linear_activation: bias has shape \(3,\)"):
        linear_activation(x, w, b[:3], "relu")


# ---- the kernel route, through the CPU emulation --------------------------------------------


@contextlib.contextmanager
def _launch_log(backend):
    """Record the names of the kernels the emulation backend launches."""
    names, launch = [], backend.launch

    def logged(family, dtype, kernel, *args):
        names.append(kernel)
        return launch(family, dtype, kernel, *args)

    backend.launch = logged
    yield names


@needs_emulation
@pytest.mark.parametrize("act", sorted(FUSED_ACTIVATIONS))
@pytest.mark.parametrize("needs", sorted(NEEDS))
@pytest.mark.parametrize("matmul", ["fused", "cublas"])
def test_kernel_route_matches_numpy(act, needs, matmul, rng):
    dtype = numpy.float64
    tensors = _inputs(rng, (2, 37, 19), 70, dtype, needs=NEEDS[needs])
    g = rng.standard_normal((2, 37, 70)).astype(dtype)
    out_ref, grads_ref = _run(_unfused(act), tensors, g)
    with (
        route_kernels(max_grid_blocks=3) as backend,
        dispatch.forced("act_matmul_bwd", matmul),
        _launch_log(backend) as launched,
    ):
        out, grads = _run(_fused(act), tensors, g)
    numpy.testing.assert_allclose(out, out_ref, rtol=1e-12, atol=1e-12)
    for ours, ref in zip(grads, grads_ref):
        assert (ours is None) == (ref is None)
        if ref is not None:
            numpy.testing.assert_allclose(ours, ref, rtol=1e-11, atol=1e-11)
    assert f"{act}_bwd" not in launched  # no separate activation-backward pass
    fused_matmul = NEEDS[needs][:2] == (True, False) and matmul == "fused"
    assert ("act_matmul_bwd" in launched) == fused_matmul
    # dZ and db come from bias_act_bwd, unless the fused matmul is all that is needed
    assert ("bias_act_bwd" in launched) == (not fused_matmul or NEEDS[needs][2])


@needs_emulation
@pytest.mark.parametrize("matmul", ["fused", "cublas"])
def test_kernel_route_float32(matmul, rng):
    tensors = _inputs(rng, (33, 20), 48, numpy.float32, needs=(True, False, True))
    g = rng.standard_normal((33, 48)).astype(numpy.float32)
    out_ref, grads_ref = _run(_unfused("gelu_tanh"), tensors, g)
    with route_kernels(), dispatch.forced("act_matmul_bwd", matmul):
        out, grads = _run(_fused("gelu_tanh"), tensors, g)
    numpy.testing.assert_allclose(out, out_ref, rtol=1e-5, atol=1e-6)
    for ours, ref in zip(grads, grads_ref):
        if ref is not None:
            numpy.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


@needs_emulation
def test_kernel_route_saves_z_for_the_kernels(rng):
    x, w, b = _inputs(rng, (6, 5), 4, numpy.float32)
    with route_kernels():
        y = linear_activation(x, w, b, "sigmoid")
    saved = y.grad_fn.saved_arrays
    assert len(saved) == 3 and saved[2].shape == (6, 4) and saved[2].dtype == numpy.float32


@needs_emulation
@pytest.mark.parametrize("choice", ["kernel", "cupy"])
def test_linear_bias_sum_goes_where_dispatch_says(choice, rng):
    tensors = _inputs(rng, (3, 41, 9), 35, numpy.float64)
    g = rng.standard_normal((3, 41, 35))
    out_ref, grads_ref = _run(linear, tensors, g)
    with (
        route_kernels(max_grid_blocks=2) as backend,
        dispatch.forced("bias_sum", choice),
        _launch_log(backend) as launched,
    ):
        _, grads = _run(linear, tensors, g)
    for ours, ref in zip(grads, grads_ref):
        numpy.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert ("bias_act_bwd" in launched) == (choice == "kernel")


def test_node_is_one_linear_activation(rng):
    x, w, b = _inputs(rng, (3, 5), 4, numpy.float32)
    y = linear_activation(x, w, b, "relu")
    assert type(y.grad_fn) is LinearActivation
    assert [type(e[0]) for e in y.grad_fn._edges] == [gf.Tensor] * 3  # leaves, no Linear node
