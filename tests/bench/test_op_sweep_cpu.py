"""Smoke test of benchmarks/op_sweep_cpu.py at a tiny scale (no timings asserted): with torch
every case runs on both frameworks, agrees with torch and lands in the markdown table; without
torch the sweep times gradflow's side alone."""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

from gradflow.bench.op_cases import CASES, SMOKE_SCALE

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "op_sweep_cpu.py"
# the pytest process keeps glibc's default heap: steady_heap is tested in a child process
SMOKE = ["--scale", str(SMOKE_SCALE), "--repeat", "1", "--default-heap"]


def _sweep():
    spec = importlib.util.spec_from_file_location("op_sweep_cpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_case_runs_on_both_frameworks_into_the_table(capsys, tmp_path):
    pytest.importorskip("torch")
    table = tmp_path / "sweep.md"
    mean = _sweep().main([*SMOKE, "--markdown", str(table)])
    printed = capsys.readouterr().out
    assert math.isfinite(mean) and mean > 0
    assert printed.count("ratio") == len(CASES) and "geometric mean" in printed
    text = table.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0][2:] for row in rows[1:]] == [case.name for case in CASES]
    assert all(row.split(" | ")[5].endswith("x") for row in rows[1:])
    assert all(" / " in row.split(" | ")[6] for row in rows[1:])  # faults, both sides
    fields = ("command: `python benchmarks/op_sweep_cpu.py --scale", "commit: ", "machine: ",
              "heap: glibc's default")  # fmt: skip
    for field in fields:
        assert field in text
    assert "Geometric mean of the ratios" in text


def test_check_mode_finds_every_case_equal_to_torch(capsys):
    pytest.importorskip("torch")
    worst = _sweep().main(["--scale", str(SMOKE_SCALE), "--check"])
    assert worst < 1e-4
    assert capsys.readouterr().out.count(" ok") == len(CASES)


def test_names_select_cases_and_families(capsys):
    pytest.importorskip("torch")
    _sweep().main([*SMOKE, "relu", "rnn"])
    printed = capsys.readouterr().out
    expected = {"relu"} | {case.name for case in CASES if case.family == "rnn"}
    assert {line.split()[1] for line in printed.splitlines() if "ratio" in line} == expected


def test_unknown_cases_are_named():
    with pytest.raises(SystemExit, match="unknown case"):
        _sweep().main(["no_such_op"])


def test_without_torch_gradflow_side_alone(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    table = tmp_path / "sweep.md"
    assert _sweep().main([*SMOKE, "relu", "lstm", "--markdown", str(table)]) is None
    printed = capsys.readouterr().out
    assert "torch is not installed" in printed and "ratio" not in printed
    assert [line.split()[:3] for line in printed.splitlines()[1:]] == [
        ["pointwise", "relu", "gradflow"],
        ["rnn", "lstm", "gradflow"],
    ]
    assert "| relu | pointwise | 2^20 |" in table.read_text()
    assert "| - | - | 0 |" in table.read_text()  # no torch time, ratio; gradflow's faults
    with pytest.raises(SystemExit, match="needs torch|compares against torch"):
        _sweep().main([*SMOKE, "--check", "relu"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_steady_heap_takes_in_a_glibc_process():
    code = "from gradflow.backend.heap import steady_heap; assert steady_heap()"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_memory_columns(tmp_path, capsys):
    pytest.importorskip("torch")
    table = tmp_path / "sweep.md"
    _sweep().main([*SMOKE, "relu", "lstm", "--memory", "--markdown", str(table)])
    assert capsys.readouterr().out.count("peak MiB") == 2
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ")]
    assert rows[0].endswith("| peak MiB | memory ratio |")
    assert all(row.split(" | ")[7].count(" / ") == 1 for row in rows[2:])


@pytest.mark.parametrize("args", [["--repeat", "0"], ["--scale", "0"], ["--scale", "-1"]])
def test_a_count_or_scale_below_one_is_refused(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _sweep().main(args)
    assert exit_info.value.code == 2 and "must be" in capsys.readouterr().err


def test_heap_text_follows_the_settings():
    from gradflow.backend.heap import STEADY_HEAP

    text = _sweep().STEADY_HEAP_TEXT
    assert all(f"{v >> 20} MiB" in text for v in STEADY_HEAP.values())
