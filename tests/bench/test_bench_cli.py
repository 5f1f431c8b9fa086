"""`gradflow bench`: the table's columns, the JSON record, the --plot error without matplotlib,
argument errors. Tiny sizes and a fixed --repeat keep it fast; no timing is asserted."""

import importlib.util
import json
import sys

import pytest

from gradflow import cli
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
    assert first["torch"] is None and first["ratio_to_torch"] is None  # no --compare


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
