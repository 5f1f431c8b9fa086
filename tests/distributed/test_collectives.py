"""gradflow.distributed's collectives: in one process (world size 1) and under mpiexec -n 2."""

import pytest
from distributed_launch import passed, run_ranks

import gradflow as gf
import gradflow.distributed as dist

pytest.importorskip("mpi4py", reason="needs mpi4py: pip install -e '.[mpi]'")

CASES = ["all_reduce_ops", "data_movers", "async_handles"]


@pytest.fixture
def world():
    dist.init_process_group(backend="mpi")
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("case", CASES)
def test_cases_on_one_rank(world, case):
    import rank_cases

    rank_cases.CASES[case](dist.get_rank(), dist.get_world_size())


@pytest.mark.parametrize("case", [*CASES, "point_to_point", "process_group_view"])
def test_cases_on_two_ranks(case):
    result = run_ranks("rank_cases.py", case)
    assert passed(result), result.stdout


def test_world_of_one(world):
    assert dist.is_initialized()
    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    assert dist.get_backend() == "mpi"
    t = gf.tensor([1.0, 2.0])
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    assert t.tolist() == [1.0, 2.0]


def test_cuda_tensors_are_staged_through_host_memory_with_backend_mpi():
    result = run_ranks("rank_cases.py", "cuda_staged", env={"GRADFLOW_CUDA_STANDIN": "1"})
    assert passed(result), result.stdout


def test_cases_without_the_agreement_check():
    result = run_ranks("rank_cases.py", "data_movers", env={"GRADFLOW_DISTRIBUTED_CHECKS": "0"})
    assert passed(result), result.stdout
