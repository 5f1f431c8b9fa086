"""init_process_group and the rank queries in one process (world size 1, no mpiexec)."""

import datetime
import os
import subprocess
import sys

import pytest

import gradflow as gf
import gradflow.distributed as dist


def test_importing_gradflow_does_not_import_mpi4py():
    code = "import sys, gradflow, gradflow.distributed; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_queries_before_init_raise_as_torch_does():
    assert not dist.is_initialized()
    for query in (dist.get_rank, dist.get_world_size, dist.get_local_rank, dist.barrier):
        with pytest.raises(ValueError, match="has not been initialized"):
            query()
    with pytest.raises(ValueError, match="has not been initialized"):
        dist.all_reduce(gf.ones(2))


def test_without_mpi4py_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(RuntimeError, match=r"needs mpi4py: pip install -e '.\[mpi\]'"):
        dist.init_process_group(backend="mpi")
    assert not dist.is_initialized()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="backend 'ucc' is not supported"):
        dist.init_process_group(backend="ucc")
    with pytest.raises(TypeError, match="timedelta"):
        dist.init_process_group(backend="mpi", timeout=5)


def test_gloo_is_taken_as_mpi():
    """PyTorch's CPU scripts name "gloo": MPI carries it here."""
    needs_mpi4py()
    dist.init_process_group(backend="gloo")
    try:
        assert dist.get_backend() == "mpi" and dist.get_world_size() == 1
    finally:
        dist.destroy_process_group()


def needs_mpi4py() -> None:
    pytest.importorskip("mpi4py", reason="needs mpi4py: pip install -e '.[mpi]'")


@pytest.fixture
def world():
    needs_mpi4py()
    dist.init_process_group(
        backend="mpi", init_method="env://", timeout=datetime.timedelta(seconds=30)
    )
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_init_sets_torch_environment_variables(world):
    assert dist.is_initialized() and dist.get_backend() == "mpi"
    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")):
        assert os.environ[name] == value
    assert dist.get_node_local_rank() == 0


def test_get_node_local_rank_reads_the_environment(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert dist.get_node_local_rank(fallback_rank=3) == 3
    with pytest.raises(RuntimeError, match="LOCAL_RANK is not in the environment"):
        dist.get_node_local_rank()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert dist.get_node_local_rank() == 1


def test_a_second_init_raises(world):
    with pytest.raises(ValueError, match="twice"):
        dist.init_process_group(backend="mpi")


def test_destroy_then_init_again(world):
    dist.destroy_process_group()
    assert not dist.is_initialized()
    dist.init_process_group()  # the default backend is "mpi"
    assert dist.get_backend() == "mpi"


def test_world_size_and_rank_must_agree_with_mpi():
    needs_mpi4py()
    with pytest.raises(ValueError, match="world_size=2 but MPI started this process"):
        dist.init_process_group(backend="mpi", world_size=2, rank=0)
    assert not dist.is_initialized()
    dist.init_process_group(backend="mpi", world_size=1, rank=0)
    dist.destroy_process_group()


def test_argument_errors(world):
    with pytest.raises(ValueError, match="src=3 is not a rank of a world of 1"):
        dist.broadcast(gf.ones(2), src=3)
    with pytest.raises(TypeError, match="AVG needs a floating point tensor"):
        dist.all_reduce(gf.ones(2, dtype=gf.int64), op=dist.ReduceOp.AVG)
    with pytest.raises(TypeError, match="op must be a gradflow.distributed.ReduceOp"):
        dist.all_reduce(gf.ones(2), op="sum")
    with pytest.raises(ValueError, match="needs one tensor per rank"):
        dist.all_gather([gf.ones(2), gf.ones(2)], gf.ones(2))
    with pytest.raises(ValueError, match="cannot hold 1 ranks' tensors"):
        dist.all_gather_into_tensor(gf.zeros(3), gf.ones(2))
    with pytest.raises(TypeError, match="tensor must be a Tensor"):
        dist.all_reduce([1.0, 2.0])
    with pytest.raises(ValueError, match="src=0 and group_src=1 differ"):
        dist.broadcast(gf.ones(2), src=0, group_src=1)
    with pytest.raises(ValueError, match="broadcast: pass src"):
        dist.broadcast(gf.ones(2))
    with pytest.raises(ValueError, match="scatter_list is None; it needs one tensor per rank"):
        dist.scatter(gf.ones(2), None, src=0)
    with pytest.raises(NotImplementedError, match="default group only"):
        dist.all_reduce(gf.ones(2), group=object())


def test_work_wait_and_result(world):
    t = gf.ones(3)
    work = dist.all_reduce(t, op=dist.ReduceOp.PRODUCT, async_op=True)
    assert work.wait(timeout=datetime.timedelta(seconds=5))
    assert work.is_completed() and work.result() == [t]


def test_nccl_without_cupy_says_what_to_install():
    needs_mpi4py()
    if dist.is_nccl_available():
        pytest.skip("CuPy's NCCL is installed: the GPU script runs backend 'nccl'")
    with pytest.raises(RuntimeError, match="backend='nccl'\\) needs CuPy with NCCL"):
        dist.init_process_group(backend="nccl")
    assert not dist.is_initialized()


def test_signatures_are_torchs():
    """Every function torch.distributed also has takes torch's parameters, in its order."""
    torch_distributed = pytest.importorskip("torch.distributed")
    import inspect

    compared = 0
    for name in dist.__all__:
        ours, theirs = getattr(dist, name), getattr(torch_distributed, name, None)
        if theirs is None or inspect.isclass(ours) or not callable(ours):
            continue
        torch_names = [p for p in inspect.signature(theirs).parameters if not p.startswith("_")]
        assert list(inspect.signature(ours).parameters) == torch_names, name
        compared += 1
    assert compared >= 20
