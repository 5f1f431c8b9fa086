"""`gradflow bench`: the table's columns, the JSON record, the --plot error without matplotlib,
argument errors. Tiny sizes and a fixed --repeat keep it fast; no timing is asserted."""

import importlib.util
import json
import sys

import pytest

from gradflow import cli
from gradflow.bench import cli as cli_bench
from gradflow.bench import report, suites

ENGINE = ["bench", "--suite", "engine", "--sizes", "small", "--device", "cpu", "--repeat", "2",
          "--no-progress"]  # fmt: skip


def test_engine_suite_prints_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main([*ENGINE, "--json", str(path)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("suite"))
    for column in report.COLUMNS:
        assert column in header
    assert "tiny-op chain" in out and "MLP step" in out
    data = json.loads(path.read_text())
    assert {"date", "command", "device", "machine", "ceilings", "results"} <= set(data)
    assert {"cpu", "cores", "python", "numpy", "blas", "gradflow"} <= set(data["machine"])
    assert data["ceilings"]["copy_GBps"] > 0 and data["ceilings"]["gemm_TFLOPs"] > 0
    assert [r["op"] for r in data["results"]] == [c.name for c in suites.engine("small")]
    first = data["results"][0]
    assert first["gradflow"]["repeat"] == 2 and len(first["gradflow"]["times"]) == 2
    assert len(first["gradflow"]["cpu_times"]) == 2 and first["gradflow"]["cpu_median_s"] >= 0
    assert first["torch"] is None and first["ratio_to_torch"] is None  # no --compare
    assert {"copy_GBps", "gemm_TFLOPs", "cache_resident"} <= set(first["ceilings"])


def test_torch_column_filled_when_compared(capsys):
    pytest.importorskip("torch")
    assert cli.main([*ENGINE, "--compare", "torch"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("engine")]
    assert rows and all(line.rstrip().endswith("x") for line in rows)


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "bench.png"
    args = ["bench", "--suite", "train", "--sizes", "small", "--device", "cpu", "--repeat", "1",
            "--no-progress", "--plot", str(path)]  # fmt: skip
    if importlib.util.find_spec("torch") is not None:
        args += ["--compare", "torch"]  # the ratio bars drawn too
    assert cli.main(args) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main([*ENGINE, "--plot", str(tmp_path / "p.png")]) == 2
    assert "pip install 'gradflow[plot]'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["bench", "--suite", "nope"], ["bench", "--sizes", "huge"], ["bench", "--repeat", "0"],
     ["bench", "--compare", "jax"]],
)  # fmt: skip
def test_bad_arguments_are_argparse_errors(args, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert "gradflow bench: error: argument" in capsys.readouterr().err


def test_every_suite_has_small_cases():
    for name, suite in suites.SUITES.items():
        cases = suite("small")
        assert cases and all(c.suite == name and c.size > 0 for c in cases)


def test_a_case_alternates_gradflow_and_torch_in_rounds():
    calls = []

    def setup(fw, device):
        return lambda: calls.append(fw)

    case = suites.Case("engine", "recorder", "-", setup, 1.0)
    ours, theirs = cli_bench._run_case(case, "cpu", compare=True, fixed=10)
    timed = calls[2:-1]  # after the warm-up round, before the peak-memory call
    assert calls[:2] == ["gradflow", "torch"] and calls[-1] == "gradflow"
    assert timed == (["gradflow"] * 2 + ["torch"] * 2) * 5  # rounds of 2 calls, not 10 + 10
    assert ours.repeat == theirs.repeat == 10 and len(theirs.cpu_times) == 10


def test_ratio_is_cpu_time_on_the_cpu_and_wall_time_without_it():
    from gradflow.bench.timing import BenchResult

    case = suites.Case("engine", "x", "-", None, 1.0)
    ours = BenchResult("x", "cpu", [4.0], cpu_times=[1.0])
    theirs = BenchResult("x", "cpu", [1.0], cpu_times=[2.0])
    row = report.Row(case, ours, theirs, {"copy_GBps": 1, "gemm_TFLOPs": 1})
    assert row.ratio_to_torch == 0.5 and row.ratio_to_torch_wall == 4.0
    gpu = report.Row(case, BenchResult("x", "cuda", [4.0]), BenchResult("x", "cuda", [1.0]), {})
    assert gpu.ratio_to_torch == 4.0 and gpu.cells()[4] == "-"  # no CPU time on a GPU
    assert report.geometric_mean_ratio([row, gpu]) == (pytest.approx(2**0.5), 2)


def test_cache_resident_cases_are_marked():
    from gradflow.bench.timing import BenchResult

    case = suites.Case("elementwise", "relu backward", "n=1", None, 1.0, bytes_moved=1e6)
    ours = BenchResult("x", "cpu", [1e-4], bytes_moved=1e6)
    cached = report.Row(case, ours, None, {"copy_GBps": 20, "gemm_TFLOPs": 1,
                                           "cache_resident": True})  # fmt: skip
    assert cached.cells()[6] == "50.0%" + report.CACHE_MARK
    assert report.CACHE_MARK + " working set in the last-level cache" in report.table([cached])
    cached.ceilings["cache_resident"] = False
    assert cached.cells()[6] == "50.0%" and "last-level" not in report.table([cached])


@pytest.mark.parametrize("compare", [False, True])
def test_ops_suite_runs_every_op_case(monkeypatch, capsys, compare):
    from gradflow.bench import op_cases

    if compare:
        pytest.importorskip("torch")
    monkeypatch.setitem(suites.OPS_SCALE, "small", op_cases.SMOKE_SCALE)
    args = ["bench", "--suite", "ops", "--device", "cpu", "--repeat", "1", "--no-progress"]
    assert cli.main(args + (["--compare", "torch"] if compare else [])) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("ops ")]
    assert [r[1] for r in rows] == [c.name for c in op_cases.CASES]
    assert all(r[-1].endswith("x") == compare for r in rows)
    assert ("geometric mean of vs torch over" in out) == compare
    assert suites.ops("medium") == [] and "ops" not in suites.ALL
    assert "GEMM" not in out and "copy" not in out.splitlines()[0]  # no ceilings measured
    assert "call by call" in out.splitlines()[0]
    with pytest.raises(ValueError, match="CPU only"):
        suites.ops("small")[0].setup("gradflow", "cuda")


def test_an_ops_case_is_timed_call_by_call_as_the_op_sweep_does(monkeypatch):
    calls = []

    def setup(fw, device):
        return lambda: calls.append(fw)

    case = suites.Case("ops", "recorder", "-", setup, 1.0)
    ours, theirs = cli_bench._run_case(case, "cpu", compare=True, fixed=4)
    assert calls[:-1] == ["gradflow", "torch"] * 5  # one warm-up each, then alternating
    assert ours.repeat == theirs.repeat == 4
    monkeypatch.setattr(cli_bench, "TARGET_SECONDS", 0.0)  # sized: at least OPS_MIN_REPEAT
    ours, _ = cli_bench._run_case(case, "cpu", compare=False, fixed=None)
    assert ours.repeat == cli_bench.OPS_MIN_REPEAT >= 11


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--suite", "ops", "--sizes", "medium"], "--suite ops has one size, small"),
        (["--suite", "ops", "--sizes", "small,large"], "does not apply"),
    ],
)
def test_options_that_do_not_apply_are_refused(extra, message, capsys):
    assert cli.main(["bench", "--device", "cpu", "--no-progress", *extra]) == 2
    assert message in capsys.readouterr().err
