"""gradflow/bench/op_cases_extra.py: every case beyond issue 17's list runs at SMOKE_SCALE
through the code path benchmarks/op_sweep_cpu.py --extra takes (measure_case, check_case), and
agrees with torch where torch is installed."""

import importlib.util
import math
from pathlib import Path

import numpy
import pytest

import gradflow
from gradflow.bench.op_cases import CASES_BY_NAME, SMOKE_SCALE, check_case, measure_case, prepare
from gradflow.bench.op_cases_extra import EXTRA_CASES, EXTRA_CASES_BY_NAME, TIME_ONLY

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "op_sweep_cpu.py"
TOLERANCE = 1e-4  # the sweep's CHECK_TOLERANCE
IDS = [case.name for case in EXTRA_CASES]
CHECKED = [case for case in EXTRA_CASES if case.name not in TIME_ONLY]


def _torch():
    return pytest.importorskip("torch")


def _sweep():
    spec = importlib.util.spec_from_file_location("op_sweep_cpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_extra_cases_are_new_and_named_once():
    assert len(EXTRA_CASES) >= 50
    assert len(EXTRA_CASES_BY_NAME) == len(EXTRA_CASES)
    assert not set(EXTRA_CASES_BY_NAME) & set(CASES_BY_NAME)
    assert set(EXTRA_CASES_BY_NAME) >= TIME_ONLY


@pytest.mark.parametrize("case", EXTRA_CASES, ids=IDS)
def test_each_case_runs_without_torch(case):
    timing = measure_case(case, None, repeat=1, scale=SMOKE_SCALE)
    assert timing.seconds >= 0 and timing.torch_seconds is None


@pytest.mark.parametrize("case", CHECKED, ids=[case.name for case in CHECKED])
def test_each_case_agrees_with_torch(case):
    torch = _torch()
    torch.set_num_threads(1)
    errors = check_case(case, torch, SMOKE_SCALE)
    assert max(errors.values()) <= TOLERANCE, errors


def test_dropout_keeps_about_half_and_scales_the_rest():
    (side,) = prepare(EXTRA_CASES_BY_NAME["dropout"], None, scale=0.25)
    x = side.inputs[0]
    out = EXTRA_CASES_BY_NAME["dropout"].fn(gradflow, x).detach().numpy()
    kept = out != 0
    assert 0.45 < kept.mean() < 0.55
    numpy.testing.assert_allclose(out[kept], 2 * x.detach().numpy()[kept], rtol=1e-6)


def test_the_sweep_runs_the_extra_cases(capsys):
    torch = _torch()
    torch.set_num_threads(1)
    names = ["tanh", "dropout", "loss"]
    mean = _sweep().main(["--extra", "--scale", str(SMOKE_SCALE), "--repeat", "1",
                          "--default-heap", *names])  # fmt: skip
    printed = capsys.readouterr().out
    expected = {"tanh", "dropout"} | {c.name for c in EXTRA_CASES if c.family == "loss"}
    assert {line.split()[1] for line in printed.splitlines() if "ratio" in line} == expected
    assert math.isfinite(mean) and mean > 0


def test_the_sweep_checks_the_extra_cases_skipping_time_only_ones(capsys):
    _torch()
    worst = _sweep().main(["--extra", "--check", "--scale", str(SMOKE_SCALE), "tanh",
                           "dropout", "sort"])  # fmt: skip
    printed = capsys.readouterr().out
    assert worst < TOLERANCE
    assert "dropout" in printed and "skipped" in printed and printed.count(" ok") == 2
