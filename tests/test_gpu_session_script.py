"""benchmarks/gpu_session.sh, checked without a GPU: its syntax, its time caps, and that its
preflight refuses a machine where the cuda tests would all be skipped (no CuPy, no GPU) or
would run on the CPU stand-in of CuPy (GRADFLOW_CUDA_STANDIN), before any later step runs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_session.sh"
LATER_STEPS = ("cuda-tests", "nccl", "determinism", "tune", "bench")
MAX_CAPS_S = 290  # one device call runs at most ~300 s; the last step gets 10 s to die

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")


def _real_gpu() -> bool:
    """nvidia-smi lists a GPU: the preflight could pass, and the script would run for minutes."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def _caps() -> dict[str, int]:
    """CAP_* knob -> its default, from the script's `${CAP_X:-N}` expansions."""
    found = re.findall(r"\$\{(CAP_[A-Z_]+):-(\d+)\}", SCRIPT.read_text())
    return {name: int(value) for name, value in found}


def _run(tmp_path: Path, **env_changes: str | None) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    env.pop("ONLY", None)
    for key in [k for k in env if k.startswith("CAP_")]:
        del env[key]
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    start = time.monotonic()
    # Its own session, so that a hang is killed with everything it started.
    proc = subprocess.Popen(["bash", str(SCRIPT)], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout), time.monotonic() - start


def _assert_aborted_at_preflight(out: Path, result: subprocess.CompletedProcess, why: str) -> str:
    assert result.returncode != 0, result.stdout
    steps = (out / "steps.txt").read_text()
    rows = [line.split() for line in steps.splitlines() if not line.startswith("#")]
    assert [row[0] for row in rows] == ["preflight"], steps
    assert rows[0][1] not in ("0", "skipped"), steps
    aborted = [line for line in steps.splitlines() if line.startswith("# ABORTED")]
    assert len(aborted) == 1 and "PREFLIGHT FAILED" in aborted[0] and why in aborted[0], steps
    assert "ABORTED" in result.stdout and why in result.stdout, result.stdout
    for step in LATER_STEPS:
        assert not (out / f"{step}.txt").exists(), f"{step} ran after a failed preflight"
    assert not (out / "bench.json").exists() and not (out / "determinism.md").exists()
    return steps


@needs_bash
def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=10)


def test_caps_fit_one_device_call():
    caps = _caps()
    assert set(caps) == {"CAP_PREFLIGHT", "CAP_CUDA_TESTS", "CAP_NCCL", "CAP_DETERMINISM",
                         "CAP_TUNE", "CAP_BENCH"}, caps  # fmt: skip
    assert sum(caps.values()) <= MAX_CAPS_S, caps
    # The header's "name (cap)" lines say the same as the defaults.
    header = dict(re.findall(r"^#   ([a-z-]+) +\((\d+)\)", SCRIPT.read_text(), re.M))
    assert {f"CAP_{k.upper().replace('-', '_')}": int(v) for k, v in header.items()} == caps


def test_no_whole_suite_or_cpu_only_step():
    text = SCRIPT.read_text()
    assert "tests/kernels" not in re.sub(r"^#.*$", "", text, flags=re.M)
    cuda_tests = "tests/ops tests/nn tests/optim tests/autograd tests/data -m gpu"
    assert cuda_tests in text, "cuda-tests must run only the gpu-marked tests of those folders"


@needs_bash
@pytest.mark.skipif(_real_gpu(), reason="a GPU is visible: the preflight could pass")
def test_preflight_stops_the_run_without_a_gpu(tmp_path):
    result, seconds = _run(tmp_path, GRADFLOW_CUDA_STANDIN=None)
    steps = _assert_aborted_at_preflight(tmp_path / "out", result, "PREFLIGHT FAILED")
    assert seconds < 10, (seconds, steps)
    assert result.returncode == 3


@needs_bash
def test_preflight_refuses_the_cuda_standin(tmp_path):
    result, seconds = _run(tmp_path, GRADFLOW_CUDA_STANDIN="1")
    _assert_aborted_at_preflight(tmp_path / "out", result, "GRADFLOW_CUDA_STANDIN is set")
    assert seconds < 10
    assert result.returncode == 3


@needs_bash
def test_an_unknown_only_step_is_an_error(tmp_path):
    result, _ = _run(tmp_path, ONLY="benchh", GRADFLOW_CUDA_STANDIN="1")
    assert result.returncode == 2 and "unknown step 'benchh'" in result.stdout


FAKE_PYTEST = """#!/usr/bin/env bash
printf '%s\\n' "$FAKE_OUTPUT"
exit "$FAKE_RC"
"""


@needs_bash
@pytest.mark.parametrize(
    ("output", "rc", "status", "verdict"),
    [
        ("725 passed, 1869 deselected in 98.76s", 0, 0, "OK"),
        ("700 passed, 25 skipped, 1869 deselected in 98.76s", 0, 0, "OK"),
        ("725 skipped, 1869 deselected in 3.10s", 0, 3, "FAILED: no cuda test passed"),
        ("no tests ran in 0.50s", 5, 5, "FAILED (pytest exit 5)"),
        ("no tests ran in 0.50s", 0, 3, "FAILED: no cuda test passed"),
        ("collected nothing", 0, 3, "no pytest summary"),
        ("3 failed, 722 passed in 50.00s", 1, 1, "FAILED (pytest exit 1)"),
        ("!!! KeyboardInterrupt !!!\n40 passed in 140.00s", 2, 2, "FAILED (pytest exit 2)"),
        ("SKIPPED [25] tests/ops/test_x.py:3: no CUDA GPU visible to CuPy\n"
         "700 passed, 25 skipped in 98.76s", 0, 3, "skipped for want of a GPU"),
    ],
)  # fmt: skip
def test_cuda_tests_verdict(tmp_path, output, rc, status, verdict):
    """A run where no cuda test passed is a failure even when pytest exits 0."""
    text = SCRIPT.read_text()
    function = re.search(r"^cuda_tests\(\) \{$.*?^\}$", text, re.M | re.S).group(0)
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTEST)
    fake.chmod(0o755)
    log = tmp_path / "cuda-tests.txt"
    env = dict(os.environ, OUT=str(tmp_path), PY=str(fake), FAKE_OUTPUT=output, FAKE_RC=str(rc))
    result = subprocess.run(["bash", "-c", f'{function}\ncuda_tests >>"{log}" 2>&1'], env=env,
                            timeout=10)  # fmt: skip
    last = log.read_text().splitlines()[-1]
    assert result.returncode == status, last
    assert last.startswith("cuda-tests: ") and verdict in last, last


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="no shellcheck on PATH")
def test_shellcheck():
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stdout
