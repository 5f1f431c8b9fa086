"""The distributed benchmark (gradflow.bench.distributed) under ``mpiexec -n 2``: all_reduce
bandwidth against message size and DDP training throughput of the cnn at 2 processes against
one, with the scaling efficiency and the paper model's predictions.

The job runs once (pedantic, one round): its own table times every figure; pytest-benchmark's
time is the whole job's. extra_info: allreduce_busbw_GBps_<size> per message size,
samples_per_s_1 and samples_per_s_2, efficiency, and predicted_efficiency_<N> (the paper model,
a fixed batch per process). Small message sizes (to 1 MiB) in smoke mode, full (to 64 MiB)
otherwise. Skipped without mpi4py or mpiexec (pip install -e '.[mpi]').

    pytest benchmarks/bench_distributed.py                      # measure
    pytest benchmarks/bench_distributed.py --benchmark-disable  # smoke
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gradflow.bench import distributed as bench_distributed

REPO = Path(__file__).resolve().parent.parent
INSTALL = "pip install -e '.[mpi]'"
PROCESSES = 2


def _launch(sizes: str, path: Path, timeout: float) -> subprocess.CompletedProcess:
    """mpiexec -n PROCESSES python -m mpi4py -m gradflow.bench.distributed, ended on timeout."""
    from gradflow.distributed import launch

    pytest.importorskip("mpi4py", reason=f"needs mpi4py: {INSTALL}")
    if launch.find_mpiexec() is None:
        pytest.skip(f"needs mpiexec: {INSTALL}")
    arguments = ["-m", "mpi4py", "-m", "gradflow.bench.distributed", "--sizes", sizes, "--json",
                 str(path)]  # fmt: skip
    try:
        return launch.run(arguments, PROCESSES, timeout)
    except TimeoutError as exc:
        pytest.fail(f"the distributed benchmark ran past {timeout} s:\n{exc.output}")


def test_distributed(benchmark: Any, bench: Any, tmp_path: Path) -> None:
    """all_reduce sweep and DDP cnn training at 2 processes against one."""
    sizes = bench.size("full", "small")
    path = tmp_path / "distributed.json"
    result = benchmark.pedantic(
        _launch, args=(sizes, path, bench.size(600, 60)), rounds=1, iterations=1
    )
    assert result.returncode == 0, result.stdout
    print(result.stdout)
    assert "scaling efficiency" in result.stdout and "paper model" in result.stdout
    data = json.loads(path.read_text())
    assert [r["bytes"] for r in data["allreduce"]] == bench_distributed.SIZES[sizes]
    info = benchmark.extra_info
    info["processes"] = data["processes"]
    for row in data["allreduce"]:
        name = bench_distributed._human(row["bytes"]).replace(" ", "")
        info[f"allreduce_busbw_GBps_{name}"] = round(row["busbw_Bps"] / 1e9, 3)
    train = data["training"]
    info["samples_per_s_1"] = round(train["one_process"]["samples_per_s"])
    info[f"samples_per_s_{PROCESSES}"] = round(train["ddp"]["samples_per_s"])
    info["efficiency"] = round(train["efficiency"], 3)
    for p in data["predicted"]:
        info[f"predicted_efficiency_{p['n']}"] = round(p["per_process"], 3)
    assert train["efficiency"] > 0 and all(0 < p["per_process"] <= 1 for p in data["predicted"])
