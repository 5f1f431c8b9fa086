"""Smoke test of benchmarks/op_sweep_cpu.py: every case runs under gradflow and torch at a tiny
size (no timings asserted)."""

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "op_sweep_cpu.py"


def _sweep():
    spec = importlib.util.spec_from_file_location("op_sweep_cpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_case_runs_on_both_frameworks(capsys):
    pytest.importorskip("torch")
    mean = _sweep().main(["--elements", "4096", "--repeat", "1"])
    printed = capsys.readouterr().out
    assert math.isfinite(mean) and mean > 0
    assert printed.count("ratio") == 20 and "geometric mean" in printed


def test_unknown_cases_are_named():
    pytest.importorskip("torch")
    with pytest.raises(SystemExit, match="unknown case"):
        _sweep().main(["no_such_op"])
