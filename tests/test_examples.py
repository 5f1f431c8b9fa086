"""The examples run as a user runs them: a subprocess, a few steps, the loss printed falling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gradflow

ROOT = Path(__file__).resolve().parents[1]
TRAIN_MLP = ROOT / "examples" / "train_mlp.py"


def run_example(*args: str) -> subprocess.CompletedProcess:
    """Run an example script with this interpreter, gradflow importable from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )


def printed_losses(stdout: str) -> list[float]:
    return [float(v) for v in re.findall(r"loss (\d+\.\d+)", stdout)]


def test_train_mlp_loss_falls():
    result = run_example(str(TRAIN_MLP), "--device", "cpu", "--steps", "60", "--log-every", "20")
    assert result.returncode == 0, result.stderr
    losses = printed_losses(result.stdout)
    assert len(losses) == 4  # steps 0, 20, 40 and the last one
    assert losses[-1] < 0.95 * losses[0]
    assert "accuracy" in result.stdout


def test_train_mlp_same_seed_same_run():
    args = (str(TRAIN_MLP), "--device", "cpu", "--steps", "20", "--seed", "3")
    first, second = run_example(*args), run_example(*args)
    assert printed_losses(first.stdout) == printed_losses(second.stdout)


@pytest.mark.skipif(gradflow.cuda.is_available(), reason="a GPU is present")
def test_train_mlp_cuda_without_gpu_fails_clearly():
    result = run_example(str(TRAIN_MLP), "--device", "cuda", "--steps", "2")
    assert result.returncode != 0
    assert "cupy" in result.stderr.lower()  # names the package to install
    assert "Traceback" not in result.stderr
