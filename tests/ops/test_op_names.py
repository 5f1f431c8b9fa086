"""Op nodes are named apart from layers, and messages and grad_fn name the op the user called."""

import importlib
import inspect
import pkgutil

import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn, ops
from gradflow.autograd.function import Function


def _op_classes():
    for info in pkgutil.iter_modules(ops.__path__):
        module = importlib.import_module(f"gradflow.ops.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Function) and obj.__module__ == module.__name__:
                yield obj


def test_no_op_class_shares_a_name_with_an_nn_module():
    modules = {name for name, obj in vars(nn).items() if inspect.isclass(obj)}
    clashes = sorted(cls.__name__ for cls in _op_classes() if cls.__name__ in modules)
    assert clashes == []


def test_every_function_suffixed_op_names_its_public_function():
    for cls in _op_classes():
        if cls.__name__.endswith("Function"):
            assert cls.op_name, f"{cls.__name__} has no op_name"
            assert hasattr(F, cls.op_name) or hasattr(gf, cls.op_name), cls.op_name


X = gf.randn(4, 3, dtype=gf.float64, requires_grad=True)


@pytest.mark.parametrize(
    "call, node",
    [
        (lambda: F.relu(X), "<ReluBackward>"),
        (lambda: F.leaky_relu(X), "<LeakyReluBackward>"),
        (lambda: F.elu(X), "<EluBackward>"),
        (lambda: F.gelu(X), "<GeluBackward>"),
        (lambda: F.silu(X), "<SiluBackward>"),
        (lambda: F.softplus(X), "<SoftplusBackward>"),
        (lambda: X.sigmoid(), "<SigmoidBackward>"),
        (lambda: X.tanh(), "<TanhBackward>"),
        (lambda: F.linear(X, gf.randn(2, 3, dtype=gf.float64)), "<LinearBackward>"),
        (lambda: F.layer_norm(X, (3,)), "<LayerNormBackward>"),
        (lambda: F.group_norm(X, 1), "<GroupNormBackward>"),
        (lambda: F.batch_norm(X, None, None, training=True), "<BatchNormBackward>"),
        (lambda: X * 2, "<MulBackward>"),
    ],
)
def test_grad_fn_prints_the_op_in_pytorch_spelling(call, node):
    assert repr(call().grad_fn) == node


def test_embedding_grad_fn():
    weight = gf.randn(5, 2, requires_grad=True)
    assert repr(F.embedding(gf.tensor([0, 3]), weight).grad_fn) == "<EmbeddingBackward>"


@pytest.mark.parametrize(
    "call, op",
    [
        (lambda x, w: F.linear(x, w), "linear"),
        (lambda x, w: F.layer_norm(x, (3,), gf.ones(3, dtype=w.dtype)), "layer_norm"),
        (lambda x, w: F.embedding(gf.tensor([0]), w) @ x[:3, :1], "matmul"),
    ],
)
def test_a_dtype_mismatch_names_the_public_op(call, op):
    x = gf.randn(4, 3)
    w = gf.randn(2, 3, dtype=gf.float64)
    with pytest.raises(TypeError, match=rf"^{op}: "):
        call(x, w)
