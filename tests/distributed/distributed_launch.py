"""Runs a rank script under ``mpiexec -n N python -m mpi4py`` for the distributed tests.

Skips (naming what to install) when mpi4py or mpiexec is missing; kills the whole job after
`timeout` seconds so that a test never hangs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
INSTALL = "pip install -e '.[mpi]'"


def mpiexec() -> str:
    """The mpiexec beside this Python (the mpich wheel's), or on PATH; skips without one."""
    pytest.importorskip("mpi4py", reason=f"needs mpi4py: {INSTALL}")
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which(
        "mpiexec"
    )
    if found is None:
        pytest.skip(f"needs mpiexec: {INSTALL}")
    return found


def run_ranks(
    script: str, *args: str, n: int = 2, timeout: float = 60, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``mpiexec -n n python -m mpi4py tests/distributed/<script> args...``: its exit status
    and output (stdout and stderr together)."""
    command = [mpiexec(), "-n", str(n), sys.executable, "-m", "mpi4py", str(HERE / script)]
    environment = {**os.environ, "HYDRA_LAUNCHER": "fork", **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), str(HERE), environment.get("PYTHONPATH", "")]
    )
    process = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        start_new_session=True,  # so a timeout can end mpiexec and every rank together
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"mpiexec -n {n} {script} {' '.join(args)} ran past {timeout} s:\n{output}")
    return subprocess.CompletedProcess(command, process.returncode, output, None)


def passed(result: subprocess.CompletedProcess, n: int = 2) -> bool:
    """Whether every rank printed its "ok <rank>" line and the job exited 0."""
    said = set(re.findall(r"\bok (\d+)", result.stdout))
    return result.returncode == 0 and said == {str(rank) for rank in range(n)}
