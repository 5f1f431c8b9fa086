"""Tensor attributes, conversion, repr, DLPack, in-place ops and bad input."""

import numpy
import pytest

import gradflow as gf


def test_attributes():
    x = gf.zeros(2, 3)
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and len(x) == 2
    assert x.dtype == gf.float32 and x.device == "cpu" and x.is_leaf
    assert x.size() == (2, 3) and x.size(1) == 3
    assert x.T.shape == (3, 2)
    assert not x.requires_grad and x.grad is None and x.grad_fn is None


def test_default_dtypes_follow_pytorch():
    assert gf.tensor([1.0, 2.0]).dtype == gf.float32
    assert gf.tensor([1, 2]).dtype == gf.int64
    assert gf.tensor([True]).dtype == gf.bool
    assert gf.tensor(numpy.zeros(2)).dtype == gf.float64
    assert gf.tensor([1.0], dtype=gf.float64).dtype == gf.float64


def test_numpy_item_tolist():
    x = gf.tensor([[1.5, 2.5]])
    assert x.numpy().shape == (1, 2)
    assert x[0, 1].item() == 2.5
    assert x.tolist() == [[1.5, 2.5]]
    with pytest.raises(ValueError, match=r"one element, got shape \(1, 2\)"):
        x.item()


def test_numpy_on_tensor_requiring_grad_says_detach():
    x = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"detach\(\).numpy\(\)"):
        x.numpy()


def test_requires_grad_on_integer_tensor_is_an_error():
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        gf.tensor([1, 2], requires_grad=True)
    x = gf.arange(3)
    with pytest.raises(TypeError, match="int64"):
        x.requires_grad_()


def test_repr_is_readable():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert "grad_fn=<MulBackward>" in repr(x * 2)
    assert "dtype=gradflow.float64" in repr(gf.zeros(1, dtype=gf.float64))


def test_to_changes_dtype_differentiably():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == gf.float64
    (y * y).sum().backward()
    assert x.grad.dtype == gf.float32
    numpy.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert x.to("cpu") is x and x.float() is x


def test_dlpack_roundtrip_with_numpy_is_zero_copy():
    a = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    t = gf.from_dlpack(a)
    a[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    back = numpy.from_dlpack(t)
    back[1, 2] = -1.0
    assert t[1, 2].item() == -1.0
    assert t.__dlpack_device__()[0] == 1


def test_from_dlpack_copy_and_device_as_torch():
    a = numpy.zeros(3, dtype=numpy.float32)
    copied = gf.from_dlpack(a, copy=True)
    shared = gf.from_dlpack(ext_tensor=a, copy=False, device="cpu")
    a[0] = 5.0
    assert copied[0].item() == 0.0 and shared[0].item() == 5.0


def test_dlpack_with_torch_is_zero_copy():
    torch = pytest.importorskip("torch")
    tt = torch.arange(4, dtype=torch.float32)
    t = gf.from_dlpack(tt)
    tt[0] = 9.0
    assert t[0].item() == 9.0
    back = torch.from_dlpack(t)
    back[1] = 7.0
    assert t[1].item() == 7.0


def test_from_numpy_shares_memory():
    a = numpy.zeros(3, dtype=numpy.float32)
    t = gf.from_numpy(a)
    a[1] = 5.0
    assert t.tolist() == [0.0, 5.0, 0.0]
    with pytest.raises(TypeError, match="expects a numpy.ndarray"):
        gf.from_numpy([1, 2])


def test_setitem_and_inplace_ops_bump_version():
    x = gf.zeros(4)
    v = x._version
    x[1:3] = 2.0
    x += 1.0
    assert x.tolist() == [1.0, 3.0, 3.0, 1.0]
    assert x._version == v + 2


def test_bool_of_multi_element_tensor_is_ambiguous():
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(gf.ones(2))


def test_numpy_operands_on_either_side():
    x = gf.tensor([1.0, 2.0])
    y = numpy.array([1.0, 1.0], dtype=numpy.float32) + x
    assert isinstance(y, gf.Tensor) and y.tolist() == [2.0, 3.0]


def test_tensors_are_not_picklable():
    import pickle

    with pytest.raises(TypeError, match=r"gradflow.save"):
        pickle.dumps(gf.ones(2))


def test_ragged_data_is_a_clear_error():
    with pytest.raises((TypeError, ValueError), match="can't make a tensor"):
        gf.tensor([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize(
    "write",
    [
        lambda t: t.add_(1.0),
        lambda t: t.mul_(2.0),
        lambda t: t.zero_(),
        lambda t: t.fill_(3.0),
        lambda t: t.copy_(gf.ones(3, 4)),
        lambda t: t.clamp_(0.0, 1.0),
        lambda t: t.__setitem__((0, 0), 5.0),
    ],
    ids=["add_", "mul_", "zero_", "fill_", "copy_", "clamp_", "setitem"],
)
def test_in_place_write_into_an_expanded_view_raises(write, device):
    """Every element of a row of an expand()ed tensor is one memory location: NumPy refuses,
    CuPy would race, PyTorch raises; gradflow raises on every device, naming the remedy."""
    base = gf.tensor([[1.0, 2.0, 3.0, 4.0]], device=device)
    view = base.expand(3, 4)
    with pytest.raises(RuntimeError, match=r"single memory location.*clone\(\)"):
        write(view)
    assert base.tolist() == [[1.0, 2.0, 3.0, 4.0]]
    write(view.clone())  # a copy owns its elements


def test_in_place_write_into_a_size_one_stretch_is_allowed(device):
    """A zero stride over a dim of size 1 names one element once: not an overlap."""
    t = gf.zeros(1, 3, device=device).expand(1, 3)
    t.add_(1.0)
    assert t.tolist() == [[1.0, 1.0, 1.0]]


def test_clone_copies_memory_and_passes_the_gradient(device):
    x = gf.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = x.clone()
    assert y.grad_fn is not None and y.tolist() == [1.0, 2.0, 3.0]
    with gf.no_grad():
        y.mul_(10.0)  # its own memory: x is unchanged
    assert x.tolist() == [1.0, 2.0, 3.0]
    (gf.clone(x) * gf.tensor([1.0, 2.0, 3.0], device=device)).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0]
