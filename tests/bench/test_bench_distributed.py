"""The distributed benchmark (gradflow.bench.distributed, `gradflow bench --suite
distributed`): a tiny run under ``mpiexec -n 2`` (skipped without mpi4py or mpiexec), the
errors without them, and the paper model of scaling. No timing is asserted."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from gradflow import cli
from gradflow.bench import cli as cli_bench
from gradflow.bench import distributed as bench_distributed

REPO = Path(__file__).resolve().parents[2]
INSTALL = "pip install -e '.[mpi]'"
ROWS = ["4 KiB", "64 KiB"]  # --sizes tiny


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason=f"needs mpi4py: {INSTALL}")
    found = cli_bench._mpiexec()
    if found is None:
        pytest.skip(f"needs mpiexec: {INSTALL}")
    return found


def _run_module(*args: str, n: int = 2) -> subprocess.CompletedProcess:
    """`mpiexec -n n python -m mpi4py -m gradflow.bench.distributed args`, ended after 60 s."""
    from gradflow.distributed import launch

    _mpiexec()  # skips without mpi4py or mpiexec
    try:
        return launch.run(["-m", "mpi4py", "-m", "gradflow.bench.distributed", *args], n, 60)
    except TimeoutError as exc:
        pytest.fail(f"mpiexec -n {n} gradflow.bench.distributed ran past 60 s:\n{exc.output}")


def test_two_processes_print_the_table_and_write_json(tmp_path):
    path = tmp_path / "distributed.json"
    result = _run_module("--sizes", "tiny", "--json", str(path))
    assert result.returncode == 0, result.stdout
    out = result.stdout
    assert out.count("gradflow distributed benchmark: 2 processes") == 1  # rank 0 alone prints
    for size in ROWS:
        assert re.search(rf"^\s*{size}\s+3\s", out, re.M), out
    assert re.search(r"^\s*1 process\s+\d+", out, re.M) and re.search(r"^\s*2 DDP\s+\d+", out, re.M)
    assert "scaling efficiency" in out and "paper model" in out
    data = json.loads(path.read_text())
    assert data["processes"] == 2 and data["sizes"] == "tiny"
    assert [r["bytes"] for r in data["allreduce"]] == bench_distributed.SIZES["tiny"]
    for row in data["allreduce"]:
        assert row["median_s"] > 0 and row["cpu_median_s"] >= 0
        assert row["busbw_Bps"] == pytest.approx(row["algbw_Bps"])  # 2(N-1)/N = 1 at N = 2
    train = data["training"]
    assert train["grad_bytes"] == 4 * 53194  # the cnn's float32 parameters
    assert train["efficiency"] == pytest.approx(
        train["ddp"]["samples_per_s"] / (2 * train["one_process"]["samples_per_s"])
    )
    assert [p["n"] for p in data["predicted"]] == list(bench_distributed.PREDICT_AT)
    assert {"cpu", "cores", "python", "numpy"} <= set(data["machine"])


def test_one_process_has_no_bus_bandwidth_nor_model():
    result = _run_module("--sizes", "tiny", n=1)
    assert result.returncode == 0, result.stdout
    assert "benchmark: 1 process (mpiexec)" in result.stdout and "paper model" not in result.stdout


def test_cli_suite_distributed(tmp_path, capfd, monkeypatch):
    _mpiexec()
    monkeypatch.setattr(cli_bench, "LAUNCH_TIMEOUT_S", 60)
    path = tmp_path / "cli.json"
    assert cli.main(["bench", "--suite", "distributed", "--repeat", "1", "--json", str(path)]) == 0
    out = capfd.readouterr().out
    assert "gradflow distributed benchmark: 2 processes" in out and "64 KiB" in out
    assert json.loads(path.read_text())["processes"] == 2


@pytest.mark.parametrize("missing", ["mpi4py", "mpiexec"])
def test_cli_without_mpi_is_a_clear_error(missing, capsys, monkeypatch):
    if missing == "mpi4py":
        monkeypatch.setattr(cli_bench, "_has_mpi4py", lambda: False)
    else:
        monkeypatch.setattr(cli_bench, "_has_mpi4py", lambda: True)
        monkeypatch.setattr(cli_bench, "_mpiexec", lambda: None)
    assert cli.main(["bench", "--suite", "distributed"]) == 2
    err = capsys.readouterr().err
    assert f"--suite distributed needs {missing}" in err and INSTALL in err


@pytest.mark.parametrize(
    "argv, said",
    [
        (["--suite", "distributed", "--compare", "torch"], "--compare does not go with"),
        (["--suite", "distributed", "--device", "cuda"], "--device cuda does not go with"),
        (["--suite", "engine", "--processes", "2"], "--processes only goes with"),
    ],
)
def test_cli_options_that_do_not_go_together(argv, said, capsys):
    assert cli.main(["bench", *argv]) == 2
    assert said in capsys.readouterr().err


def test_all_does_not_run_distributed():
    from gradflow.bench import suites

    assert "distributed" not in suites.ALL


def test_ring_allreduce_moves_2_n_minus_1_over_n_of_the_bytes():
    ring = bench_distributed.ring_allreduce_seconds
    assert ring(1e6, 1, 1e9) == 0.0
    assert ring(1e6, 2, 1e9) == pytest.approx(1e-3)  # 2(2-1)/2 = 1
    assert ring(1e6, 4, 1e9) == pytest.approx(1.5e-3)
    assert ring(1e6, 1000, 1e9) == pytest.approx(2e-3, rel=1e-2)  # tends to twice the bytes
    assert ring(0, 4, 1e9, latency_s=1e-5) == pytest.approx(6e-5)  # 2(N-1) ring steps
    with pytest.raises(ValueError, match="n must be at least 1"):
        ring(1e6, 0, 1e9)
    with pytest.raises(ValueError, match="bus_bandwidth must be positive"):
        ring(1e6, 2, 0)


def test_scaling_model_fixed_batch_per_process_and_global():
    model = bench_distributed.scaling_model
    weak = model(compute_s=3e-3, grad_bytes=1e6, bus_bandwidth=1e9, n=4)
    assert weak.allreduce_s == pytest.approx(1.5e-3)
    assert weak.step_s == pytest.approx(4.5e-3) and weak.efficiency == pytest.approx(2 / 3)
    strong = model(compute_s=3e-3, grad_bytes=1e6, bus_bandwidth=1e9, n=4, fixed="global")
    assert strong.compute_s == pytest.approx(0.75e-3)
    assert strong.efficiency == pytest.approx(3e-3 / (4 * 2.25e-3))
    assert model(3e-3, 1e6, 1e9, n=1).efficiency == 1.0
    effs = [model(3e-3, 1e6, 1e9, n).efficiency for n in (2, 4, 8, 16)]
    assert effs == sorted(effs, reverse=True)  # more ranks, more of each step in the allreduce
    with pytest.raises(ValueError, match="fixed must be"):
        model(3e-3, 1e6, 1e9, 2, fixed="weak")


def test_model_inputs_and_table_from_a_record():
    record = {
        "processes": 2,
        "cores": 2,
        "load_before": (0.5, 0.5, 0.5),
        "load_after": (1.0, 1.0, 1.0),
        "allreduce": [
            {
                "bytes": 4096,
                "repeat": 5,
                "median_s": 4e-5,
                "cpu_median_s": 4e-5,
                "algbw_Bps": 4096 / 4e-5,
                "busbw_Bps": 4096 / 4e-5,
            },
            {
                "bytes": 262144,
                "repeat": 5,
                "median_s": 2.62144e-4,
                "cpu_median_s": 2e-4,
                "algbw_Bps": 1e9,
                "busbw_Bps": 1e9,
            },
        ],
        "training": {
            "model": "cnn",
            "batch_per_process": 64,
            "steps": 10,
            "rounds": 3,
            "processes": 2,
            "grad_bytes": 212776,
            "one_process": {
                "wall_s": 0.05,
                "cpu_s": 0.05,
                "samples_per_s": 12800,
                "step_s": 5e-3,
                "cpu_per_wall": 1.0,
            },
            "ddp": {
                "wall_s": 0.06,
                "cpu_s": 0.12,
                "samples_per_s": 21333,
                "step_s": 6e-3,
                "cpu_per_wall": 2.0,
            },
            "independent": {"wall_s": 0.055, "samples_per_s": 23272, "step_s": 5.5e-3},
            "speedup": 1.67,
            "efficiency": 0.833,
        },
    }
    inputs = bench_distributed.model_inputs(record)
    assert inputs["bandwidth_at_bytes"] == 262144 and inputs["bus_bandwidth"] == 1e9
    assert inputs["latency_s"] == pytest.approx(2e-5) and inputs["compute_s"] == 5e-3
    text = bench_distributed.report(record)
    assert "ceiling: 2 cores" in text and "83.3%" in text and "load average 0.50 before" in text
    assert re.search(r"^\s*16\s+\d", text, re.M)  # the model's row for 16 processes
