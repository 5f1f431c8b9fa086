"""matmul (1-D, 2-D, batched with broadcast) and linear."""

import numpy
import pytest

import gradflow as gf
from gradflow.ops.linalg import linear
from gradflow.testing import gradcheck

SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((2, 1, 2, 3), (4, 3, 2)),
]


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_matmul_values_and_gradcheck(sa, sb, device, rng):
    a = gf.tensor(rng.standard_normal(sa), device=device, requires_grad=True)
    b = gf.tensor(rng.standard_normal(sb), device=device, requires_grad=True)
    out = a @ b
    expected = a.cpu().detach().numpy() @ b.cpu().detach().numpy()
    assert out.shape == expected.shape
    numpy.testing.assert_allclose(out.cpu().detach().numpy(), expected)
    assert gradcheck(gf.matmul, [a, b])


def test_matmul_backward_uses_transposed_views_not_copies(monkeypatch):
    """dA = dC @ B^T reads B through a transposed view: no transposed copy is made."""
    import gradflow.ops.linalg as linalg

    seen = []
    real = linalg.MatMul.backward

    def spy(self, g):
        a, b = self.saved_arrays
        seen.append((a, b))
        return real(self, g)

    monkeypatch.setattr(linalg.MatMul, "backward", spy)
    a = gf.randn(4, 3, requires_grad=True)
    b = gf.randn(3, 5, requires_grad=True)
    (a @ b).sum().backward()
    sa, sb = seen[0]
    assert numpy.shares_memory(sb.swapaxes(-1, -2), b.array)
    assert sb.swapaxes(-1, -2).flags.f_contiguous  # BLAS reads it with a transpose flag


def test_matmul_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) don't fit"):
        gf.ones(2, 3) @ gf.ones(4, 5)
    with pytest.raises(ValueError, match="batch dims .* don't broadcast"):
        gf.ones(2, 2, 3) @ gf.ones(3, 3, 4)
    with pytest.raises(ValueError, match="at least 1 dim"):
        gf.matmul(gf.tensor(2.0), gf.ones(2))


@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_gradcheck(x_shape, with_bias, device, rng):
    x = gf.tensor(rng.standard_normal(x_shape), device=device, requires_grad=True)
    w = gf.tensor(rng.standard_normal((5, 4)), device=device, requires_grad=True)
    b = gf.tensor(rng.standard_normal(5), device=device, requires_grad=True)
    args = [x, w, b] if with_bias else [x, w]
    out = linear(*args)
    expected = x.cpu().detach().numpy() @ w.cpu().detach().numpy().T
    if with_bias:
        expected = expected + b.cpu().detach().numpy()
    numpy.testing.assert_allclose(out.cpu().detach().numpy(), expected)
    assert gradcheck(linear, args)


def test_linear_bad_shapes():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\) doesn't fit weight"):
        linear(gf.ones(2, 3), gf.ones(5, 4))
    with pytest.raises(ValueError, match=r"bias has shape \(4,\), expected \(5,\)"):
        linear(gf.ones(2, 4), gf.ones(5, 4), gf.ones(4))
    with pytest.raises(ValueError, match=r"input of shape \(\) doesn't fit"):
        linear(gf.tensor(1.0), gf.ones(5, 4))


@pytest.mark.parametrize("where", ["input", "weight", "bias"])
@pytest.mark.parametrize("value", [numpy.ones((5, 4), numpy.float32), [[1.0] * 4] * 5])
def test_linear_refuses_non_tensors_as_torch_does(where, value):
    args = {"input": gf.ones(5, 4), "weight": gf.ones(5, 4), "bias": gf.ones(5)}
    args[where] = value if where != "bias" else numpy.ones(5, numpy.float32)
    with pytest.raises(TypeError, match=f"argument '{where}' must be a Tensor"):
        gf.nn.functional.linear(**args)


def test_torch_parity_matmul():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(2)
    a_np, b_np = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    a, b = gf.tensor(a_np, requires_grad=True), gf.tensor(b_np, requires_grad=True)
    ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    ((a @ b) ** 2).sum().backward()
    ((ta @ tb) ** 2).sum().backward()
    numpy.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-10)
    numpy.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-10)
