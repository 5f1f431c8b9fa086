"""The memory soak (gradflow.bench.soak, benchmarks/soak_memory.py), run short: training memory
stays flat after the warm-up and every step's graph is freed by reference counting alone."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

import gradflow as gf
from gradflow.backend import Device
from gradflow.bench import soak as soak_module
from gradflow.bench.soak import MemorySample, SoakResult, linear_slope, rss_bytes, soak

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "soak_memory.py"
GROWTH_BOUND = 512 * 1024  # bytes over the measured steps; a leak of 2 KiB a step exceeds it
# The runs go to a child process with one BLAS thread: on a busy 2-core machine OpenBLAS's
# second thread spin-waits, and a traced step took 30 ms instead of 2 (300 steps: 9 s, not 0.7).
SOAK_RUNS = """
import json, sys
from gradflow.bench.soak import soak
runs = {
    "mlp": soak("mlp", steps=300, sample_every=10, batch_size=32),
    "lstm": soak("lstm", steps=30, sample_every=10, batch_size=16, trace=False),
}
json.dump({model: result.as_dict() for model, result in runs.items()}, sys.stdout)
"""


@pytest.fixture(scope="module")
def runs() -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SOAK_RUNS], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_mlp_training_memory_stays_flat(runs):
    mlp = runs["mlp"]
    assert mlp["graphs_not_freed"] == 0
    assert mlp["cyclic_garbage"] == 0
    growth = mlp["growth_after_warmup"]["traced_bytes"]
    assert growth is not None and growth < GROWTH_BOUND, mlp["samples"]
    assert mlp["growth_per_1000_steps"]["traced_bytes"] < GROWTH_BOUND * 1000 / 270
    assert mlp["samples"][-1]["step"] == 300 and mlp["samples"][-1]["gpu_pool_bytes"] is None


def test_lstm_graph_is_freed_every_step(runs):
    lstm = runs["lstm"]
    assert lstm["graphs_not_freed"] == 0 and lstm["cyclic_garbage"] == 0
    assert [s["step"] for s in lstm["samples"]] == [0, 10, 20, 30]
    assert all(s["traced_bytes"] is None for s in lstm["samples"])


def test_the_graph_dies_with_the_loss():
    model, optimizer = soak_module.build("mlp", Device("cpu"))
    images, labels = gf.randn(8, 1, 8, 8), gf.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    loss = soak_module.train_step(model, optimizer, images, labels)
    graph = weakref.ref(loss.grad_fn)
    assert graph() is not None
    del loss
    assert graph() is None  # refcount alone frees it: no cycle through the graph


def test_growth_is_the_fitted_slope_after_the_warmup():
    samples = [MemorySample(step, 1000 + 3 * step, 500, None) for step in range(0, 1001, 100)]
    samples[0] = MemorySample(0, 0, 0, None)  # the warm-up's jump is left out
    result = SoakResult("mlp", "cpu", 1000, 64, 100, 100, 1.0, 0.1, 0, 0, "test", samples)
    assert result.growth_per_1000_steps("rss_bytes") == pytest.approx(3000)
    assert result.growth_after_warmup("rss_bytes") == 2700
    assert result.peak_growth("rss_bytes") == 1500  # max of steps 600-1000 minus of 100-500
    assert result.growth_per_1000_steps("traced_bytes") == 0
    assert result.growth_per_1000_steps("gpu_pool_bytes") is None
    assert result.as_dict()["growth_per_1000_steps"]["rss_bytes"] == pytest.approx(3000)
    assert linear_slope([1, 2, 3], [2, 4, 6]) == pytest.approx(2)
    assert linear_slope([5, 5], [1, 2]) == 0


def test_memory_swinging_in_a_band_has_no_peak_growth():
    band = [
        MemorySample(step, 5000 if step % 200 else 9000, None, None) for step in range(0, 1001, 50)
    ]
    result = SoakResult("lstm", "cpu", 1000, 64, 50, 100, 1.0, 0.1, 0, 0, "test", band)
    assert result.peak_growth("rss_bytes") == 0


def test_rss_is_read():
    size, source = rss_bytes()
    assert size > 1 << 20 and source


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        soak("vgg", steps=1)
    with pytest.raises(ValueError, match="must be positive"):
        soak("mlp", steps=0)
    with pytest.raises(ValueError, match="warmup_fraction"):
        soak("mlp", steps=1, warmup_fraction=1.0)


def _script():
    spec = importlib.util.spec_from_file_location("soak_memory", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_prints_a_table_and_writes_json(tmp_path, monkeypatch, capsys):
    script = _script()
    monkeypatch.setattr(script, "describe_machine_line", lambda: "machine=test")
    out = tmp_path / "soak.json"
    argv = ["--model", "mlp", "--steps", "20", "--batch-size", "16", "--json", str(out)]
    assert script.main([*argv, "--no-tracemalloc"]) == 0
    printed = capsys.readouterr().out
    assert "mlp on cpu: 20 steps of batch 16" in printed and "| RSS |" in printed
    assert "tracemalloc |" not in printed  # not traced, so no row
    record = json.loads(out.read_text())
    assert record["machine"] == "machine=test" and record["steps"] == 20
    assert len(record["samples"]) == 21 and record["sample_every"] == 1
    assert set(record["growth_per_1000_steps"]) == {"rss_bytes", "traced_bytes", "gpu_pool_bytes"}


def test_script_rejects_bad_arguments():
    script = _script()
    with pytest.raises(SystemExit):
        script.parse_args(["--steps", "0"])
    with pytest.raises(SystemExit):
        script.parse_args(["--model", "vgg"])
