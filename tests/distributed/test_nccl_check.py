"""benchmarks/nccl_check.py (the GPU session's nccl step) where NCCL can't run: it says it
skipped and why, and exits 5, never a pass that checked nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "nccl_check.py"


def test_without_nccl_the_check_says_skipped_and_fails():
    import gradflow.distributed as dist

    if dist.is_nccl_available():
        pytest.skip("NCCL is available here: the check would run for real")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 5, done.stdout + done.stderr
    assert "nccl: SKIPPED" in done.stdout and "awaits" in done.stdout
