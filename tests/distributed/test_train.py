"""`gradflow train` data-parallel under ``mpiexec -n 2``: one log and one checkpoint (rank 0's),
a run that resumes at another number of processes, and a rank that raises ending the job."""

import subprocess

import pytest
from distributed_launch import HERE, mpiexec

from gradflow import load, training


def _launch(case: str, folder, n: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    """mpiexec -n n python train_cases.py case folder, without mpi4py's runner (stdout and
    stderr together)."""
    from gradflow.distributed import launch

    mpiexec()  # skips without mpi4py or mpiexec
    try:
        return launch.run([str(HERE / "train_cases.py"), case, str(folder)], n, timeout)
    except TimeoutError as exc:
        pytest.fail(f"{case}: the job ran past {timeout} s (a rank left hanging?): {exc.output}")


def test_two_processes_train_with_one_log_and_one_checkpoint(tmp_path):
    done = _launch("cli", tmp_path)
    assert done.returncode == 0, done.stdout
    out = done.stdout
    assert out.count("final test accuracy") == 1  # rank 0 alone prints
    assert "data-parallel over 2 processes" in out
    state = load(tmp_path / "run.ckpt")
    assert len(state["history"]) == 2
    assert state["history"][-1]["test_accuracy"] > 0.5
    assert all(not key.startswith("module.") for key in state["model"])  # the plain module's


def test_a_two_process_run_resumes_in_one_process(tmp_path):
    assert _launch("cli", tmp_path).returncode == 0
    config = training.TrainConfig(model="mlp", epochs=3, resume=True, progress=False,
                                  checkpoint=str(tmp_path / "run.ckpt"))  # fmt: skip
    result = training.train(config, log=lambda line: None)
    assert [r.epoch for r in result.history] == [1, 2, 3]


def test_a_rank_that_raises_ends_the_job_with_its_traceback(tmp_path):
    done = _launch("raise", tmp_path, timeout=60)
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stdout


def test_one_process_is_not_distributed_unless_asked():
    assert training.mpi_world_size({}) == 1
    assert training.mpi_world_size({"PMI_SIZE": "2"}) == 2
    assert training.mpi_world_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
