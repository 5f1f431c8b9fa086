"""Smoke test of benchmarks/conv_profile_cpu.py at a tiny scale (no timings asserted), and the
GEMM shapes it reads off each conv case's graph."""

import importlib.util
from pathlib import Path

import pytest

import gradflow as gf
from gradflow.bench.op_cases import SMOKE_SCALE

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "conv_profile_cpu.py"


def _script():
    spec = importlib.util.spec_from_file_location("conv_profile_cpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "make, expected",
    [  # (rows, inner, cols, groups) of one group's forward GEMM
        (lambda x: gf.nn.functional.conv2d(x, gf.ones(6, 4, 3, 3), padding=1), (50, 36, 6, 1)),
        (lambda x: gf.nn.functional.conv2d(x, gf.ones(4, 1, 3, 3), groups=4), (18, 9, 1, 4)),
        (lambda x: gf.nn.functional.conv2d(x, gf.ones(6, 2, 1, 1), groups=2), (50, 2, 3, 2)),
        (lambda x: gf.nn.functional.conv_transpose2d(x, gf.ones(4, 3, 2, 2), stride=2),
         (50, 4, 12, 1)),
    ],
)  # fmt: skip
def test_gemm_shape_of_each_conv_kind(make, expected):
    x = gf.ones(2, 4, 5, 5, requires_grad=True)
    script = _script()
    node = script.conv_node(make(x).relu().sum())  # found behind other nodes
    assert script.gemm_shape(node) == expected


def test_a_graph_without_a_conv_is_refused():
    with pytest.raises(ValueError, match="no conv"):
        _script().conv_node((gf.ones(2, requires_grad=True) * 2).sum())


def test_every_conv_case_is_profiled(capsys):
    pytest.importorskip("torch")
    _script().main(["--scale", str(SMOKE_SCALE), "--repeat", "1", "--default-heap"])
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("| conv") or line.startswith("| cnn")]
    assert [row.split(" | ")[0][2:] for row in rows] == list(_script().CONV_CASES)
    assert "| - |" in next(row for row in rows if "depthwise" in row)  # no GEMM floor
