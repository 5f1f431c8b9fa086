"""gradflow.distributed.launch: mpiexec from Python, every rank ended at the timeout."""

import time

import pytest
from distributed_launch import mpiexec

from gradflow.distributed import launch


def test_a_run_past_its_timeout_is_ended_with_every_rank():
    mpiexec()  # skips without mpi4py or mpiexec
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="ran past 1 s") as caught:
        launch.run(["-c", "import time; print('started', flush=True); time.sleep(30)"], 2, 1.0)
    assert time.monotonic() - start < 20
    assert caught.value.output is not None


def test_output_and_status_come_back():
    mpiexec()
    # one write per rank (print writes its pieces apart, and two ranks' pieces interleaved)
    program = (
        "import os, sys; sys.stdout.write('rank ' + os.environ.get('PMI_RANK', '?') + '\\n'); "
        "sys.stdout.flush()"
    )
    done = launch.run(["-c", program], 2, 60)
    assert done.returncode == 0
    assert sorted(line for line in done.stdout.splitlines() if line.startswith("rank")) == [
        "rank 0",
        "rank 1",
    ]
    failed = launch.run(["-c", "raise SystemExit(3)"], 2, 60)
    assert failed.returncode != 0
