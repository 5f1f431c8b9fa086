"""Runs a rank script under ``mpiexec -n N python -m mpi4py`` for the distributed tests.

Skips (naming what to install) when mpi4py or mpiexec is missing; kills the whole job after
`timeout` seconds so that a test never hangs.
"""

from __future__ import annotations

import re
import shutil
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
    from gradflow.distributed import launch

    mpiexec()  # skips without mpi4py or mpiexec
    arguments = ["-m", "mpi4py", str(HERE / script), *args]
    try:
        return launch.run(arguments, n, timeout, env=env, extra_path=(str(HERE),))
    except TimeoutError as exc:
        pytest.fail(f"mpiexec -n {n} {script} {' '.join(args)} ran past {timeout} s:\n{exc.output}")


def passed(result: subprocess.CompletedProcess, n: int = 2) -> bool:
    """Whether every rank printed its "ok <rank>" line and the job exited 0."""
    said = set(re.findall(r"\bok (\d+)", result.stdout))
    return result.returncode == 0 and said == {str(rank) for rank in range(n)}
