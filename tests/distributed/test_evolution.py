"""gradflow.evolution across processes: the population split over mpiexec's ranks, only the
fitness values exchanged, the same gradient as one process with the same seed."""

import pytest
from distributed_launch import passed, run_ranks

pytest.importorskip("mpi4py", reason="needs mpi4py: pip install -e '.[mpi]'")


def test_population_split_over_two_ranks_gives_one_process_gradient():
    result = run_ranks("evolution_cases.py", "split_population")
    assert passed(result), result.stdout
