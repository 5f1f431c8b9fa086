"""Starting N processes under ``mpiexec`` from Python: what `gradflow bench --suite
distributed`, benchmarks/bench_distributed.py and the distributed tests share.

``run(["-m", "mpi4py", "script.py"], processes=2, timeout=60)`` runs ``mpiexec -n 2 python -m
mpi4py script.py`` with this gradflow on PYTHONPATH and ``HYDRA_LAUNCHER=fork`` (unless set),
in a session of its own, so that a timeout ends mpiexec and every rank together: no run is
left hanging.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

SOURCE = str(Path(__file__).resolve().parents[2])  # the tree this gradflow runs from


def find_mpiexec() -> str | None:
    """The mpiexec beside this Python (the mpich wheel's), or on PATH; None without one."""
    return shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def run(arguments: list[str], processes: int = 2, timeout: float | None = None,
        capture: bool = True, env: dict | None = None,
        extra_path: tuple[str, ...] = ()) -> subprocess.CompletedProcess:  # fmt: skip
    """``mpiexec -n processes python *arguments``: its exit status and (with `capture`)
    stdout and stderr together. Past `timeout` seconds mpiexec and every rank are ended and a
    TimeoutError is raised, its ``output`` what they printed; FileNotFoundError without an
    mpiexec."""
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise FileNotFoundError("no mpiexec: pip install -e '.[mpi]' (the mpich wheel brings it)")
    command = [mpiexec, "-n", str(processes), sys.executable, *arguments]
    environment = {**os.environ, **(env or {})}
    environment.setdefault("HYDRA_LAUNCHER", "fork")
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (SOURCE, *extra_path, environment.get("PYTHONPATH")) if p
    )
    pipe = subprocess.PIPE if capture else None
    process = subprocess.Popen(command, stdout=pipe, stderr=subprocess.STDOUT if capture else None,
                               text=True, env=environment, start_new_session=True)  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        error = TimeoutError(f"mpiexec ran past {timeout:g} s; it and every rank were ended")
        error.output = output
        raise error from None
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)
        raise
    return subprocess.CompletedProcess(command, process.returncode, output, None)
