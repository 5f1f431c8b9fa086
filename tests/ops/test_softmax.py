"""Tests for gradflow/ops/softmax.py: gradients (float64 finite differences), numerical stability
at |x| ~ 1e4 in float32, parity with PyTorch, the Tensor methods, names in messages, errors."""

import numpy
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow.ops import softmax as ops
from gradflow.testing.gradcheck import gradcheck


def t(array, device, requires_grad=False):
    return gradflow.tensor(numpy.asarray(array), device=device, requires_grad=requires_grad)


def host(x):
    return x.detach().cpu().numpy()


@pytest.mark.parametrize("op", [ops.softmax, ops.log_softmax])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_gradcheck(device, rng, op, dim):
    x = t(rng.standard_normal((3, 4, 2)), device, requires_grad=True)
    assert gradcheck(lambda x: op(x, dim), [x], full_jacobian=True)


def test_log_softmax_and_softmax_are_stable_for_large_logits(device):
    big = numpy.array([[1e4, -1e4, 0.0, 9999.0], [-1e4, -1e4 + 1.0, -1e4 + 2.0, -1e4 + 3.0]])
    x = t(big.astype(numpy.float32), device)
    ref = big - numpy.logaddexp.reduce(big, axis=1, keepdims=True)  # float64 log-softmax
    out = host(ops.log_softmax(x, 1))
    assert numpy.isfinite(out).all()
    numpy.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-5)
    numpy.testing.assert_allclose(host(ops.softmax(x, 1)), numpy.exp(ref), atol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_softmax_matches_torch(device, rng, name, dim):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 5)) * 5
    ours_x, theirs_x = t(x, device, True), torch.tensor(x, requires_grad=True)
    w = rng.standard_normal(x.shape)  # a non-uniform upstream gradient (sum would give 0)
    ours = getattr(ops, name)(ours_x, dim) * t(w, device)
    theirs = getattr(torch, name)(theirs_x, dim) * torch.tensor(w)
    numpy.testing.assert_allclose(host(ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    numpy.testing.assert_allclose(host(ours_x.grad), theirs_x.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_tensor_softmax_methods_use_these_ops(device, rng):
    x = t(rng.standard_normal((2, 3)), device)
    numpy.testing.assert_allclose(host(x.softmax(1)), host(ops.softmax(x, 1)))
    numpy.testing.assert_allclose(host(x.log_softmax(0)), host(ops.log_softmax(x, 0)))


def test_softmax_accepts_non_contiguous_inputs(device, rng):
    base = t(rng.standard_normal((5, 6)), device, True)
    assert not base.T.array.flags.c_contiguous
    assert gradcheck(lambda b: ops.log_softmax(b.T, 0), [base])
    assert gradcheck(lambda b: ops.softmax(b.T, 1), [base])


def test_softmax_saves_its_output_only(rng):
    x = t(rng.standard_normal((3, 4)), "cpu", True)
    for op in (ops.softmax, ops.log_softmax):
        out = op(x, 1)
        (saved,) = out.grad_fn.saved_arrays
        assert saved is out.array


# ---- names and errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn, name, node",
    [(F.softmax, "softmax", "<SoftmaxBackward>"), (F.log_softmax, "log_softmax",
      "<LogSoftmaxBackward>")],
)  # fmt: skip
def test_grad_fn_is_named_after_the_public_function(fn, name, node):
    x = gradflow.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    out = fn(x, 1)
    assert repr(out.grad_fn) == node and out.grad_fn.name == name
    (out * gradflow.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    with pytest.raises(RuntimeError, match=rf"^Trying to backward through {name} a second time"):
        out.grad_fn.backward(numpy.ones((1, 3)))


def test_softmax_rejects_integer_inputs_and_bad_dims():
    with pytest.raises(TypeError, match=r"softmax: argument 'input' has dtype int64.*floating"):
        ops.softmax(gradflow.tensor([1, 2]), 0)
    logits = gradflow.tensor(numpy.zeros((4, 3), dtype=numpy.float32))
    with pytest.raises(IndexError, match=r"log_softmax: dim 2 is out of range"):
        ops.log_softmax(logits, 2)


def test_softmax_family_reads_torch_arguments():
    x = gradflow.tensor([[1.0, 2.0], [3.0, 5.0]])
    # dtype casts the input first; dim=None picks PyTorch's implicit dim with its warning
    assert F.softmax(x, dim=1, dtype=gradflow.float64).dtype == gradflow.float64
    assert x.log_softmax(0, dtype=gradflow.float64).dtype == gradflow.float64
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        implicit = F.softmax(x)
    numpy.testing.assert_allclose(implicit.numpy(), gradflow.softmax(x, 1).numpy())
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax"):
        assert F.log_softmax(gradflow.ones(3)).shape == (3,)
    out = F.softmax(input=x, dim=-1)
    numpy.testing.assert_allclose(out.sum(-1).numpy(), [1.0, 1.0], rtol=1e-6)
