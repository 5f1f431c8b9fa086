"""DistributedSampler (gradflow/data/sampler.py) with a process group: its defaults, its
shards under mpiexec -n 2, and PyTorch's padding and split for a shuffled order."""

import numpy
import pytest
from distributed_launch import passed, run_ranks

import gradflow.distributed as dist
from gradflow.random import Generator
from gradflow.utils.data import DistributedSampler


@pytest.mark.parametrize("n", [1, 2, 7, 10, 11, 12])
@pytest.mark.parametrize("replicas", [1, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_index_lists_are_torchs_for_the_same_permutation(
    n, replicas, drop_last, monkeypatch
):
    torch = pytest.importorskip("torch")
    from torch.utils.data import distributed

    seed, epoch = 7, 2
    order = Generator(seed=seed + epoch).rng.permutation(n)
    # torch's sampler draws torch.randperm; hand it gradflow's permutation to compare the rest
    monkeypatch.setattr(torch, "randperm", lambda *a, **k: torch.from_numpy(order.copy()))
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, seed=seed, drop_last=drop_last)
        theirs = distributed.DistributedSampler(
            range(n), replicas, rank, seed=seed, drop_last=drop_last
        )
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs) and ours.total_size == theirs.total_size


def test_shards_of_one_epoch_cover_the_dataset():
    shards = [list(DistributedSampler(range(10), 3, rank, seed=2)) for rank in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert set(numpy.concatenate(shards).tolist()) == set(range(10))


def test_defaults_come_from_the_process_group():
    pytest.importorskip("mpi4py", reason="needs mpi4py: pip install -e '.[mpi]'")
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
    dist.init_process_group(backend="mpi")
    try:
        sampler = DistributedSampler(range(5), shuffle=False)
        assert (sampler.num_replicas, sampler.rank, list(sampler)) == (1, 0, [0, 1, 2, 3, 4])
        assert DistributedSampler(range(6), num_replicas=2, rank=1, shuffle=False).rank == 1
    finally:
        dist.destroy_process_group()


def test_each_rank_a_disjoint_shard_under_mpiexec():
    result = run_ranks("rank_cases.py", "sampler_shards")
    assert passed(result), result.stdout
