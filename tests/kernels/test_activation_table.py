"""The activation table (gradflow/kernels/activations.py) agrees with the CUDA sources and is
the one list the launchers, ops.fused and nn.fusion use."""

import re

import numpy
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.kernels import activations
from gradflow.kernels.loader import compile_options, kernel_source_dir, read_kernel_source
from gradflow.nn import fusion
from gradflow.ops import fused
from gradflow.testing import emulation


def test_act_codes_match_activation_cuh():
    text = (kernel_source_dir() / "activation.cuh").read_text()
    defined = {
        name.lower(): int(code) for name, code in re.findall(r"#define ACT_(\w+) (\d+)", text)
    }
    assert defined == activations.ACT_CODES


def test_every_elementwise_activation_has_its_kernels():
    reason = emulation.unavailable_reason()
    if reason:
        pytest.skip(reason)
    source = read_kernel_source("elementwise")
    kernels = emulation.kernel_signatures(source, compile_options(numpy.float32))
    for name in activations.ACTIVATIONS:
        assert {f"{name}_fwd", f"{name}_bwd"} <= set(kernels), f"{name} has no kernels"


def test_fused_op_table_is_derived_from_the_kernel_table():
    fused_rows = [a for a in activations.TABLE if a.code is not None and a.function]
    assert sorted(fused.FUSED_ACTIVATIONS) == sorted(a.name for a in fused_rows)
    for a in fused_rows:
        op, params = fused.FUSED_ACTIVATIONS[a.name]
        assert op.op_name == a.function and params == a.params


@pytest.mark.parametrize(
    "module, name",
    [
        (nn.ReLU(), "relu"),
        (nn.Sigmoid(), "sigmoid"),
        (nn.Tanh(), "tanh"),
        (nn.GELU(), "gelu_erf"),
        (nn.GELU(approximate="tanh"), "gelu_tanh"),
        (nn.SiLU(), "silu"),
        (nn.LeakyReLU(), None),  # the fused kernels have no leaky_relu
        (nn.Softplus(), None),
    ],
)
def test_fusion_names_each_module_by_the_table(module, name):
    assert fusion.fused_activation(nn.Linear(3, 2), module) == name


def test_kernel_activation_picks_the_variant_by_keyword():
    assert activations.kernel_activation("gelu", approximate="none") == "gelu_erf"
    assert activations.kernel_activation("gelu", approximate="tanh") == "gelu_tanh"
    assert activations.kernel_activation("gelu", approximate="other") is None
    assert activations.kernel_activation("relu", inplace=False) == "relu"  # extra keys ignored


def test_fused_and_unfused_gelu_tanh_agree():
    gf.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.GELU(approximate="tanh"))
    x = gf.randn(5, 4, dtype=gf.float64)
    fused_out = model.double()(x)
    with fusion.disabled():
        unfused_out = model(x)
    assert fused_out.grad_fn.name != unfused_out.grad_fn.name  # the two routes really ran
    assert (fused_out - unfused_out).abs().max().item() < 1e-12
