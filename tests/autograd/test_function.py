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

    scale: float

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
    with pytest.raises(
        RuntimeError,
        match=r"Bad.backward returned an invalid gradient for input 0: shape \(\), "
        r"but the input has shape \(2,\)",
    ):
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
        match=r"^matmul: expected floating tensors of one dtype.*"
        r"shape=\(2, 3\), dtype=float32.*shape=\(3,\), dtype=float64",
    ):
        gf.matmul(a, b)
    with pytest.raises(RuntimeError, match="^matmul: expected floating"):  # PyTorch's type
        gf.matmul(a, b)
    assert gf.add(a, b).dtype == gf.float64  # elementwise arithmetic promotes, as PyTorch


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
        match=r"^mul: expected all tensors on the same device.*"
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


class _Clamp(gf.Function):
    """A one-input op with a required and an optional declared parameter."""

    low: float
    high: float | None = None

    def forward(self, x):
        return x.clip(self.low, self.high)

    def backward(self, g):
        return g


def test_declared_parameters_are_set_and_defaults_apply():
    x = gf.tensor([-1.0, 0.5, 2.0])
    numpy.testing.assert_array_equal(_Clamp.apply(x, low=0.0).numpy(), [0.0, 0.5, 2.0])
    numpy.testing.assert_array_equal(_Clamp.apply(x, low=0.0, high=1.0).numpy(), [0.0, 0.5, 1.0])


def test_an_unknown_keyword_is_a_type_error_naming_op_and_keyword():
    x = gf.tensor([1.0])
    with pytest.raises(
        TypeError, match=r"_Clamp\.apply\(\) got unexpected keyword.*'lo'.*high, low"
    ):
        _Clamp.apply(x, lo=0.0, high=1.0)
    with pytest.raises(TypeError, match=r"_Clamp\.apply\(\) missing required keyword.*'low'"):
        _Clamp.apply(x, high=1.0)
    with pytest.raises(TypeError, match=r"_Clamp\.apply\(\) missing required keyword.*'low'"):
        _Clamp.apply(x)
    with pytest.raises(TypeError, match="unexpected keyword"):
        _Clamp.inner(False, low=0.0, lo=1.0)


def test_builtin_ops_reject_misspelled_parameters():
    from gradflow.ops.arithmetic import Clip
    from gradflow.ops.losses import CrossEntropy

    x = gf.randn(3, 4)
    with pytest.raises(TypeError, match="'lo'"):
        Clip.apply(x, lo=0.0, high=1.0)
    with pytest.raises(TypeError, match="'ignore_idx'"):
        CrossEntropy.apply(x, gf.tensor([0, 1, 2]), ignore_idx=-100)


def test_parameters_are_inherited_and_private_or_classvar_annotations_are_not_parameters():
    from typing import ClassVar

    class Base(gf.Function):
        scale: float
        _cache: dict
        table: ClassVar[dict] = {}

        def forward(self, x):
            return x * self.scale

    class Child(Base):
        shift: float = 0.0

        def forward(self, x):
            return x * self.scale + self.shift

    assert Child._params == {"scale", "shift", "op_name"}
    assert Child._required_params == {"scale"}
    assert Child.apply(gf.tensor([2.0]), scale=3.0, shift=1.0).item() == 7.0


def test_op_name_names_the_op_in_messages_and_in_the_grad_fn():
    a = gf.tensor([1.0], requires_grad=True)
    y = ScaledAdd.apply(a, a, scale=2.0, op_name="axpy_1d")
    assert repr(y.grad_fn) == "<Axpy1dBackward>" and y.grad_fn.name == "axpy_1d"
    assert repr(ScaledAdd.apply(a, a, scale=2.0).grad_fn) == "<ScaledAddBackward>"
    with pytest.raises(TypeError, match="^axpy_1d: expected floating tensors of one dtype"):
        ScaledAdd.apply(a, gf.tensor([1.0], dtype=gf.float64), scale=1.0, op_name="axpy_1d")
