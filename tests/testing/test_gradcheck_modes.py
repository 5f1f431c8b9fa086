"""When gradcheck builds the full Jacobian: on CPU inputs below the size limit, never on cuda
inputs unless asked, never under GRADFLOW_GRADCHECK=directional."""

import importlib

import pytest

import gradflow as gf
from gradflow.testing.gradcheck import gradcheck

# the module, not the function gradflow.testing re-exports under the same name
gradcheck_module = importlib.import_module("gradflow.testing.gradcheck")


@pytest.fixture
def jacobian_calls(monkeypatch):
    calls = []
    real = gradcheck_module._check_jacobian
    monkeypatch.setattr(gradcheck_module, "_check_jacobian",
                        lambda *a: calls.append(1) or real(*a))  # fmt: skip
    return calls


def _input(device):
    return gf.tensor([0.5, -1.0, 2.0], dtype=gf.float64, device=device, requires_grad=True)


def test_small_cpu_inputs_get_the_full_jacobian(jacobian_calls):
    assert gradcheck(lambda x: (x * x).sum(), [_input("cpu")])
    assert len(jacobian_calls) == 1


def test_cuda_inputs_get_the_directional_check_unless_asked(jacobian_calls, device):
    assert gradcheck(lambda x: x.exp(), [_input(device)])
    assert len(jacobian_calls) == (1 if device == "cpu" else 0)
    assert gradcheck(lambda x: x.exp(), [_input(device)], full_jacobian=True)
    assert len(jacobian_calls) == (2 if device == "cpu" else 1)


def test_the_directional_mode_skips_every_full_jacobian(jacobian_calls, monkeypatch):
    monkeypatch.setenv("GRADFLOW_GRADCHECK", "directional")
    assert gradcheck(lambda x: x.exp(), [_input("cpu")], full_jacobian=True)
    assert jacobian_calls == []


def test_the_directional_check_still_catches_a_wrong_gradient(monkeypatch):
    monkeypatch.setenv("GRADFLOW_GRADCHECK", "directional")

    class Wrong(gf.autograd.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g * 3

    with pytest.raises(gradcheck_module.GradcheckError):
        gradcheck(lambda x: Wrong.apply(x), [_input("cpu")])
