"""Benchmark configuration: collects bench_*.py, a smoke mode, the machine in the JSON record.

``pytest benchmarks`` measures. ``pytest benchmarks --benchmark-disable`` is the smoke run
(CI): every benchmark body runs once, with the tiny sizes of the `bench` fixture and a single
repeat of any comparison timing, so the whole suite checks that it works in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from gradflow.bench.machine import machine_description


def pytest_configure(config: pytest.Config) -> None:
    # The suites are named bench_*.py (pyproject's pytest section only names test_*.py).
    patterns = config.getini("python_files")
    if "bench_*.py" not in patterns:
        config.addinivalue_line("python_files", "bench_*.py")
    config.addinivalue_line("markers", "torch: the PyTorch side of a comparison (-m 'not torch')")


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add the CPU model, NumPy/BLAS and torch versions to pytest-benchmark's JSON record."""
    machine_info["gradflow"] = machine_description()


_figures_key = pytest.StashKey[list]()


@pytest.fixture(autouse=True)
def _collect_figures(request: pytest.FixtureRequest) -> Any:
    """After each benchmark, keep its extra_info for the summary printed at the end."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    fixture = request.getfixturevalue("benchmark")
    yield
    if fixture.extra_info:
        figures = request.config.stash.setdefault(_figures_key, [])
        figures.append((request.node.name, fixture.extra_info))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the derived figures (per-op µs, ratio to torch), which pytest-benchmark's own
    table leaves out, so smoke and full runs both show them."""
    figures = config.stash.get(_figures_key, [])
    if not figures:
        return
    title = "benchmark figures (extra_info)"
    if is_smoke_run(config):
        title += ": smoke run, one pass each, not measurements"
    terminalreporter.section(title)
    for name, info in figures:
        body = ", ".join(f"{k}={v}" for k, v in info.items())
        terminalreporter.write_line(f"{name}: {body}")


@dataclass(frozen=True)
class BenchConfig:
    """Sizes and repeat counts for one run: full when measuring, tiny in smoke mode."""

    smoke: bool

    def size(self, full: Any, tiny: Any) -> Any:
        """`full` when measuring, `tiny` in a smoke run."""
        return tiny if self.smoke else full

    @property
    def repeats(self) -> int:
        """How many timed calls a comparison (e.g. the torch side) takes the median of."""
        return 1 if self.smoke else 50


def is_smoke_run(config: pytest.Config) -> bool:
    """True under ``--benchmark-disable`` (or without pytest-benchmark's options at all)."""
    try:
        return bool(config.getoption("benchmark_disable"))
    except ValueError:
        return True


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest) -> BenchConfig:
    """The run's sizes and repeat counts (tiny in smoke mode)."""
    return BenchConfig(smoke=is_smoke_run(request.config))
