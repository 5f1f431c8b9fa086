"""benchmarks/determinism_check.py (run on the CPU, where every case must come out identical)
and the syntax of benchmarks/gpu_session.sh, the script a GPU session runs in one call."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "determinism_check.py"
SESSION = ROOT / "benchmarks" / "gpu_session.sh"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("determinism_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _rows(text: str) -> list[list[str]]:
    """The table rows of the report (header and separator left out), split into cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def test_every_case_is_identical_on_the_cpu(check, capsys, tmp_path):
    out = tmp_path / "determinism.md"
    assert check.main(["--device", "cpu", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = _rows(printed)
    assert [row[0] for row in rows] == [case.name for case in check.CASES]
    for name, expected, identical, verdict in rows:
        assert identical == "yes", name
        assert verdict == "as expected", name
        assert expected.startswith("deterministic (cpu"), name
    assert "Machine: " in printed and "--device cpu --quick" in printed
    assert _rows(out.read_text()) == rows


def _flaky(first: dict) -> object:
    """A case runner that returns `first` and then, on later calls, one changed element."""
    calls = []

    def run(device: str, quick: bool, seed: int) -> dict:
        calls.append(seed)
        if len(calls) == 1:
            return first
        changed = {name: array.copy() for name, array in first.items()}
        name = next(iter(changed))
        changed[name].flat[0] = numpy.nextafter(changed[name].flat[0], numpy.inf)
        return changed

    return run


def test_a_deterministic_case_that_differs_fails(check, capsys, monkeypatch):
    case = next(c for c in check.CASES if c.name.startswith("conv2d"))
    assert case.cuda_expectation == check.DETERMINISTIC
    monkeypatch.setattr(case, "run", _flaky({"x.grad": numpy.ones((2, 3), numpy.float32)}))
    assert check.main(["--device", "cpu", "--quick", "--only", "conv2d"]) == 1
    [(name, _, identical, verdict)] = _rows(capsys.readouterr().out)
    assert name == case.name and identical == "no"
    assert verdict.startswith("UNEXPECTED: differs (x.grad: 1 of 6 differ"), verdict


def test_a_nondeterministic_case_may_differ_on_cuda_only(check):
    case = next(c for c in check.CASES if c.name.startswith("embedding"))
    assert case.cuda_expectation == check.NONDETERMINISTIC

    def flaky() -> object:
        return check.Case(case.name, case.cuda_expectation, _flaky({"w": numpy.zeros(4)}))

    on_cuda = check.check(flaky(), "cuda", True, 0, 2)
    assert not on_cuda.identical and not on_cuda.failed
    assert on_cuda.verdict.startswith("as expected (w: 1 of 4 differ"), on_cuda.verdict
    on_cpu = check.check(flaky(), "cpu", True, 0, 2)  # NumPy adds in order: must be identical
    assert on_cpu.failed and on_cpu.verdict.startswith("UNEXPECTED")
    same = check.Case(case.name, case.cuda_expectation, lambda d, q, s: {"w": numpy.zeros(4)})
    outcome = check.check(same, "cuda", True, 0, 2)
    assert outcome.verdict == "as expected (identical this time)" and not outcome.failed


def test_a_case_that_raises_is_reported_and_fails(check, capsys, monkeypatch):
    case = next(c for c in check.CASES if c.name.startswith("layer_norm"))

    def broken(device: str, quick: bool, seed: int) -> dict:
        raise ValueError("broken | on purpose")

    monkeypatch.setattr(case, "run", broken)
    assert check.main(["--device", "cpu", "--quick", "--only", "layer_norm"]) == 1
    captured = capsys.readouterr()
    [(_, _, identical, verdict)] = _rows(captured.out)
    assert identical == "error"
    assert verdict == "UNEXPECTED: error: ValueError: broken / on purpose"
    assert "Traceback" in captured.err


def test_signed_zeros_and_nans_count_bitwise(check):
    zero = {"a": numpy.array([0.0, numpy.nan], numpy.float32)}
    assert check.differences(zero, {"a": zero["a"].copy()}) == []
    [found] = check.differences(zero, {"a": numpy.array([-0.0, numpy.nan], numpy.float32)})
    assert found.startswith("a: 1 of 2 differ")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_gpu_session_script_parses():
    done = subprocess.run(["bash", "-n", str(SESSION)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
