"""Devices, the array-module switch, and the errors for missing CUDA."""

import numpy
import pytest

import gradflow as gf
from gradflow.backend import Device, _cupy, get_array_module, is_cuda_array


def test_device_parsing():
    assert str(Device("cpu")) == "cpu"
    assert str(Device("cuda")) == "cuda:0"
    assert str(Device("cuda:3")) == "cuda:3"
    assert Device("cuda:1") == "cuda:1"
    assert repr(Device("cpu")) == "device('cpu')"


@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "cpu:0", "", "cuda:-1"])
def test_unknown_device_string_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="unknown device .*expected 'cpu', 'cuda', 'cuda:N'"):
        Device(spec)


def test_auto_resolves_to_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(_cupy, "device_count", lambda: 0)
    assert Device("auto") == "cpu"


def test_cuda_without_cupy_names_the_extra_and_keeps_the_import_error(monkeypatch):
    error = ImportError("No module named 'cupy'")
    monkeypatch.setattr(_cupy, "_tried", True)
    monkeypatch.setattr(_cupy, "_cupy", None)
    monkeypatch.setattr(_cupy, "_import_error", error)
    with pytest.raises(
        gf.CudaUnavailableError, match=r"gradflow\[cuda12\].*No module named"
    ) as info:
        gf.zeros(2, device="cuda")
    assert info.value.__cause__ is error
    assert not gf.cuda.is_available()
    assert gf.cuda.device_count() == 0


def test_cuda_without_gpu_reports_the_driver_error(monkeypatch):
    class Runtime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    class FakeCupy:
        cuda = type("cuda", (), {"runtime": Runtime})

    monkeypatch.setattr(_cupy, "_tried", True)
    monkeypatch.setattr(_cupy, "_cupy", FakeCupy)
    with pytest.raises(gf.CudaUnavailableError, match="no usable GPU.*cudaErrorNoDevice"):
        gf.ones(2, device="cuda:0")


def test_get_array_module_over_tensors_and_arrays():
    assert get_array_module(gf.ones(2), numpy.ones(2), 3.0) is numpy


def test_get_array_module_finds_cupy_arrays_by_their_type(monkeypatch):
    # A CuPy array's .data is a MemoryPointer, not an array: the array itself must count.
    class FakeArray:
        data = object()  # stands in for cupy.cuda.MemoryPointer

    fake = type("FakeCupy", (), {"ndarray": FakeArray})
    monkeypatch.setattr(_cupy, "_cupy", fake)
    array = FakeArray()
    assert get_array_module(array) is fake
    assert get_array_module(3.0, array) is fake
    assert get_array_module(gf.Tensor._wrap(array)) is fake
    assert get_array_module(numpy.ones(2), gf.ones(2)) is numpy
    assert is_cuda_array(array) and not is_cuda_array(numpy.ones(2))


def test_cuda_synchronize_without_gpu_raises_clear_error(monkeypatch):
    monkeypatch.setattr(_cupy, "_tried", True)
    monkeypatch.setattr(_cupy, "_cupy", None)
    monkeypatch.setattr(_cupy, "_import_error", ImportError("no cupy"))
    with pytest.raises(gf.CudaUnavailableError, match="pip install"):
        gf.cuda.synchronize()


@pytest.mark.gpu
def test_to_cuda_and_back(device):
    if device != "cuda":
        pytest.skip("needs cuda")
    x = gf.arange(6).reshape(2, 3).float()
    y = x.to(device)
    assert y.device == "cuda:0" and y.is_cuda
    numpy.testing.assert_array_equal(y.cpu().numpy(), x.numpy())


def test_get_array_module_of_a_device():
    assert get_array_module(Device("cpu")) is numpy


def test_get_array_module_of_a_cuda_device_without_cupy_names_the_install(monkeypatch):
    monkeypatch.setattr(_cupy, "_tried", True)
    monkeypatch.setattr(_cupy, "_cupy", None)
    monkeypatch.setattr(_cupy, "_import_error", ImportError("no cupy"))
    with pytest.raises(gf.CudaUnavailableError, match="pip install"):
        get_array_module(Device("cuda"))
