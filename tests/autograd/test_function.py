"""The public Function API: a user-defined op with a hand-written backward."""

import numpy
import pytest

import gradflow as gf
from gradflow.testing import gradcheck


class Cube(gf.Function):
    def forward(self, x):
        self.save_for_backward(x)
        return x**3

    def backward(self, g):
        (x,) = self.saved_arrays
        return 3 * x * x * g


class ScaledAdd(gf.Function):
    """a + scale * b, with a keyword parameter and selective gradients."""

    def forward(self, a, b):
        return a + self.scale * b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (g if need_a else None, self.scale * g if need_b else None)


def test_custom_function_gradcheck(device):
    x = gf.randn(3, 2, dtype=gf.float64, device=device, requires_grad=True)
    assert gradcheck(Cube.apply, [x])


def test_keyword_parameters_and_needs_input_grad():
    a = gf.ones(2, requires_grad=True)
    b = gf.ones(2)
    y = ScaledAdd.apply(a, b, scale=3.0)
    numpy.testing.assert_allclose(y.detach().numpy(), [4.0, 4.0])
    assert y.grad_fn.needs_input_grad == (True, False)
    y.sum().backward()
    numpy.testing.assert_allclose(a.grad.numpy(), [1.0, 1.0])


def test_backward_returning_wrong_number_of_gradients_is_an_error():
    class Bad(gf.Function):
        def forward(self, a, b):
            return a + b

        def backward(self, g):
            return g

    a = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"returned 1 gradient\(s\) but forward had 2"):
        Bad.apply(a, gf.ones(2)).sum().backward()


def test_backward_returning_wrong_shape_is_an_error():
    class Bad(gf.Function):
        def forward(self, a):
            return a.sum()

        def backward(self, g):
            return g

    a = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient of shape \(\) .* tensor of shape \(2,\)"):
        Bad.apply(a).backward()


def test_function_without_backward_says_so():
    class NoBackward(gf.Function):
        def forward(self, a):
            return a * 2

    a = gf.ones(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match="must implement backward"):
        NoBackward.apply(a).sum().backward()


def test_mixed_float_dtypes_error_names_op_shapes_and_dtypes():
    a = gf.ones(2, 3)
    b = gf.ones(3, dtype=gf.float64)
    with pytest.raises(
        TypeError,
        match=r"Add: expected floating tensors of one dtype.*"
        r"shape=\(2, 3\), dtype=float32.*shape=\(3,\), dtype=float64",
    ):
        gf.add(a, b)


def test_mixed_devices_error_names_op_and_both_devices(monkeypatch):
    """A stand-in CuPy array type shows the check without a GPU."""
    import types

    from gradflow.backend import _cupy

    class FakeCudaArray:
        dtype = numpy.dtype("float32")
        shape = (2,)
        ndim = 1
        device = types.SimpleNamespace(id=1)

    monkeypatch.setattr(_cupy, "_cupy", types.SimpleNamespace(ndarray=FakeCudaArray))
    a = gf.ones(2)
    b = gf.Tensor._wrap(FakeCudaArray())
    with pytest.raises(
        RuntimeError,
        match=r"Mul: expected all tensors on the same device.*"
        r"device=cpu.*device=cuda:1",
    ):
        a * b


def test_no_grad_saves_nothing_in_custom_function():
    x = gf.ones(2, requires_grad=True)
    with gf.no_grad():
        y = Cube.apply(x)
    assert y.grad_fn is None


def test_two_gpus_in_one_op_is_an_error(monkeypatch):
    """Arrays of the same (stand-in CuPy) type on cuda:0 and cuda:1 are refused."""
    import types

    from gradflow.backend import _cupy

    class FakeCudaArray:
        dtype = numpy.dtype("float32")
        shape = (2,)
        ndim = 1

        def __init__(self, index):
            self.device = types.SimpleNamespace(id=index)

    monkeypatch.setattr(_cupy, "_cupy", types.SimpleNamespace(ndarray=FakeCudaArray))
    a = gf.Tensor._wrap(FakeCudaArray(0))
    b = gf.Tensor._wrap(FakeCudaArray(1))
    with pytest.raises(RuntimeError, match=r"same device.*cuda:0.*cuda:1"):
        a + b
