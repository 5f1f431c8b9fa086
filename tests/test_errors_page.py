"""gradflow.errors, the errors page: it lists and re-exports every exception class gradflow
defines, and its example messages are still the ones the code raises."""

from __future__ import annotations

import importlib
import inspect
import io
import json
import pkgutil
import zipfile
from collections.abc import Callable

import numpy
import pytest

import gradflow as gf
from gradflow import errors, models, nn
from gradflow.autograd.anomaly import detect_anomaly
from gradflow.plotting import MISSING_MATPLOTLIB
from gradflow.testing.gradcheck import gradcheck
from gradflow.training import TrainConfig, train


def _defined_exceptions() -> dict[str, type]:
    """Every exception class defined in a gradflow module, by name (the module walked with
    pkgutil; a class counts where it is defined, not where it is re-exported), except the ones
    the CuPy stand-in imitates."""
    found: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(gf.__path__, "gradflow."):
        if module_info.name.rsplit(".", 1)[-1] == "__main__":
            continue  # importing it would run the command line
        if module_info.name.startswith("gradflow.testing.standin"):
            continue  # the CuPy stand-in's exceptions are CuPy's, not gradflow's
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[name] = value
    return found


def _page() -> str:
    """The page's text with line breaks and indents collapsed to single spaces."""
    return " ".join(errors.__doc__.split())


def test_the_walk_finds_the_known_exceptions():
    assert {"CheckpointError", "CudaUnavailableError", "TrainingError"} <= set(
        _defined_exceptions()
    )


@pytest.mark.parametrize("name", sorted(_defined_exceptions()))
def test_every_exception_is_re_exported_and_on_the_page(name):
    cls = _defined_exceptions()[name]
    assert getattr(errors, name, None) is cls, f"gradflow.errors does not re-export {name}"
    assert name in errors.__all__
    assert f"{name} ({cls.__bases__[0].__name__}), defined in " in _page(), (
        f"the errors page has no entry for {name} (from {cls.__module__})"
    )


def test_the_page_lists_nothing_that_is_gone():
    assert sorted(errors.__all__) == sorted(_defined_exceptions())


# ---- the examples on the page are what the code says ----------------------------------------
def _checkpoint_disagreeing_with_its_manifest() -> None:
    buffer = io.BytesIO()
    gf.save({"model": {"weight": gf.ones(2, 3)}}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(entries["checkpoint.json"])
    manifest["root"]["values"][0]["values"][0]["shape"] = [3, 2]
    entries["checkpoint.json"] = json.dumps(manifest).encode()
    altered = io.BytesIO()
    with zipfile.ZipFile(altered, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
    gf.load(io.BytesIO(altered.getvalue()))


def _second_backward() -> None:
    x = gf.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


def _inf_gradient() -> None:
    with detect_anomaly(), numpy.errstate(divide="ignore"):
        gf.tensor([0.0], requires_grad=True).sqrt().sum().backward()


class _WrongGradient(gf.Function):
    def forward(self, x):
        return x * 2

    def backward(self, grad):
        return (grad * 3,)


def _state_without(key: str, **values: gf.Tensor) -> dict:
    state = dict(models.mlp().state_dict())
    del state[key]
    state.update(values)
    return state


class _NoSuperInit(nn.Module):
    def __init__(self):
        self.weight = nn.Parameter(gf.ones(1))


EXAMPLES: dict[str, tuple[Callable[[], object], type[BaseException], list[str]]] = {
    "CheckpointError": (
        _checkpoint_disagreeing_with_its_manifest,
        errors.CheckpointError,
        [
            "array arrays/0.npy has dtype float32 and shape [2, 3] but checkpoint.json says "
            "dtype float32 and shape [3, 2] (at 'model.weight')"
        ],
    ),
    "DatasetFileError": (
        lambda: gf.data.MNIST("no-such-directory"),
        errors.DatasetFileError,
        ["MNIST: train-images-idx3-ubyte[.gz] not found in", "or root= a directory that has them"],
    ),
    "TrainingError": (
        lambda: train(TrainConfig(model="mlp", epochs=0, progress=False), log=lambda _: None),
        errors.TrainingError,
        ["--epochs must be at least 1, got 0"],
    ),
    "AnomalyError": (
        _inf_gradient,
        errors.AnomalyError,
        [
            "Function 'SqrtBackward' returned inf values in its gradient for input 0 (shape "
            "(1,), dtype float32). Sqrt was created in forward at (most recent call last):"
        ],
    ),
    "GradcheckError": (
        lambda: gradcheck(_WrongGradient.apply, [gf.randn(3, dtype=gf.float64).requires_grad_()]),
        errors.GradcheckError,
        ["gradcheck: directional derivative mismatch: analytic", "atol=1e-05, rtol=0.001"],
    ),
    "ValueError shapes": (
        lambda: gf.ones(2, 3) + gf.ones(4),
        ValueError,
        ["add: operands could not be broadcast together with shapes (2,3) (4,)"],
    ),
    "ValueError state_dict": (
        lambda: models.mlp().load_state_dict(_state_without("5.bias", **{"5.bias": gf.ones(3)})),
        ValueError,
        ["size mismatch for '5.bias': the checkpoint has shape (3,), the model has (10,)"],
    ),
    "TypeError": (
        lambda: gf.ones(2) @ gf.ones(2, dtype=gf.float64),
        TypeError,
        [
            "matmul: expected floating tensors of one dtype, got Tensor(shape=(2,), "
            "dtype=float32, device=cpu), Tensor(shape=(2,), dtype=float64, device=cpu); convert "
            "one with .float() or .double() (as in PyTorch, only elementwise arithmetic "
            "promotes float32 and float64)"
        ],
    ),
    "RuntimeError": (
        _second_backward,
        RuntimeError,
        [
            "Trying to backward through Sum a second time, but its saved arrays were freed "
            "after the first backward. Pass retain_graph=True to the first backward() (or "
            "gradflow.grad()) if you need to backward through the graph again."
        ],
    ),
    "IndexError": (
        lambda: gf.ones(3).sum(dim=4),
        IndexError,
        ["sum: dim 4 is out of range for a tensor with 1 dims (expected in [-1, 0])"],
    ),
    "KeyError": (
        lambda: models.mlp().load_state_dict(_state_without("5.bias")),
        KeyError,
        [
            "error loading state_dict into Sequential: missing keys: 5.bias. Pass "
            "strict=False to load the keys that match"
        ],
    ),
    "NotImplementedError": (
        lambda: gf.grad(gf.ones(1, requires_grad=True).sum(), [], is_grads_batched=True),
        NotImplementedError,
        [
            "grad: is_grads_batched=True is not supported; loop over the batch of "
            "grad_outputs instead"
        ],
    ),
    "AttributeError": (
        _NoSuperInit,
        AttributeError,
        ["cannot assign parameters before Module.__init__() call"],
    ),
    "FileNotFoundError": (
        lambda: gf.save({}, "runs/x.ckpt"),
        FileNotFoundError,
        ["can't save to runs/x.ckpt: directory", "does not exist"],
    ),
}


@pytest.mark.parametrize("case", list(EXAMPLES))
def test_the_example_message_is_what_the_code_raises(case, tmp_path, monkeypatch):
    trigger, expected, fragments = EXAMPLES[case]
    monkeypatch.chdir(tmp_path)  # "runs/" and "no-such-directory" don't exist here
    with pytest.raises(expected) as caught:
        trigger()
    message = " ".join(str(caught.value.args[0]).split())
    for fragment in fragments:
        assert fragment in message, f"the code now says: {message}"
        assert fragment in _page(), f"the errors page's {case} example is out of date"


def test_cuda_unavailable_example():
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("CuPy is installed: the example is the message without it")
    with pytest.raises(errors.CudaUnavailableError) as caught:
        gf.zeros(2, device="cuda")
    message = " ".join(str(caught.value).split())
    assert message.startswith("CUDA was requested but CuPy could not be imported")
    assert message in _page()


def test_plot_unavailable_example():
    assert " ".join(MISSING_MATPLOTLIB.split()) in _page()
