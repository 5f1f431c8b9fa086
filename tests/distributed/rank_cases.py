"""Rank script for tests/distributed: ``mpiexec -n 2 python -m mpi4py rank_cases.py CASE``.

Each case asserts on its rank and prints "ok <rank>" when it passes; an assertion that fails
raises, and mpi4py's runner then ends the whole job with a non-zero exit.
"""

from __future__ import annotations

import datetime
import sys
import time

import numpy

import gradflow as gf
import gradflow.distributed as dist

CASES = {}


def case(function):
    CASES[function.__name__] = function
    return function


def close(tensor, expected) -> None:
    numpy.testing.assert_allclose(tensor.numpy(), numpy.asarray(expected), rtol=1e-6)


@case
def all_reduce_ops(rank: int, size: int) -> None:
    values = [float(r + 1) for r in range(size)]
    expected = {
        dist.ReduceOp.SUM: sum(values),
        dist.ReduceOp.AVG: sum(values) / size,
        dist.ReduceOp.MAX: max(values),
        dist.ReduceOp.MIN: min(values),
        dist.ReduceOp.PRODUCT: numpy.prod(values),
    }
    for dtype in (gf.float16, gf.float32, gf.float64):
        for op, want in expected.items():
            t = gf.full((2, 3), values[rank], dtype=dtype)
            assert dist.all_reduce(t, op=op) is None
            assert t.dtype == dtype
            close(t, numpy.full((2, 3), want))
    rows = numpy.array([[r + 1, -10 * (r + 1)] for r in range(size)])
    integer = {
        dist.ReduceOp.SUM: rows.sum(0),
        dist.ReduceOp.MAX: rows.max(0),
        dist.ReduceOp.MIN: rows.min(0),
        dist.ReduceOp.PRODUCT: rows.prod(0),
        dist.ReduceOp.BOR: numpy.bitwise_or.reduce(rows, 0),
        dist.ReduceOp.BAND: numpy.bitwise_and.reduce(rows, 0),
        dist.ReduceOp.BXOR: numpy.bitwise_xor.reduce(rows, 0),
    }
    for dtype in (gf.int32, gf.int64):
        for op, want in integer.items():
            t = gf.tensor(rows[rank], dtype=dtype)
            dist.all_reduce(t, op=op)
            assert t.dtype == dtype
            assert t.tolist() == want.tolist(), (op, t.tolist(), want)
    flags = gf.tensor([rank == 0, True, False])
    dist.all_reduce(flags)  # SUM on bool is a logical or, as in PyTorch
    assert flags.tolist() == [True, True, False]
    flags = gf.tensor([rank == 0, True])
    dist.all_reduce(flags, op=dist.ReduceOp.MIN)  # a logical and
    assert flags.tolist() == [size == 1, True]
    strided = gf.arange(12, dtype=gf.float32).reshape(3, 4)[:, 1]  # a view, not contiguous
    base = strided
    dist.all_reduce(strided)
    close(base, numpy.array([1.0, 5.0, 9.0]) * size)


@case
def data_movers(rank: int, size: int) -> None:
    t = gf.full((3,), float(rank))
    dist.broadcast(t, src=size - 1)
    close(t, [size - 1.0] * 3)
    half = gf.full((2,), float(rank), dtype=gf.float16)
    dist.broadcast(half, src=0)
    close(half, [0.0, 0.0])
    gathered = [gf.zeros(2, dtype=gf.int32) for _ in range(size)]
    dist.all_gather(gathered, gf.full((2,), rank, dtype=gf.int32))
    assert [g.tolist() for g in gathered] == [[r, r] for r in range(size)]
    flat = gf.zeros(2 * size)
    dist.all_gather_into_tensor(flat, gf.full((2,), float(rank)))
    close(flat, numpy.repeat(numpy.arange(size, dtype=numpy.float32), 2))
    stacked = gf.zeros(size, 2)
    dist.all_gather_into_tensor(stacked, gf.full((2,), float(rank)))
    close(stacked, numpy.repeat(numpy.arange(size, dtype=numpy.float32), 2).reshape(size, 2))
    in_place = gf.zeros(2 * size)  # the input is this rank's slot of the output
    in_place[2 * rank : 2 * rank + 2] = float(rank)
    dist.all_gather_into_tensor(in_place, in_place[2 * rank : 2 * rank + 2])
    close(in_place, numpy.repeat(numpy.arange(size, dtype=numpy.float32), 2))
    chunk = gf.zeros(2)
    dist.reduce_scatter_tensor(chunk, gf.arange(2 * size, dtype=gf.float32) * (rank + 1))
    total = sum(r + 1 for r in range(size))
    close(chunk, numpy.arange(2 * rank, 2 * rank + 2) * total)
    dist.reduce_scatter_tensor(chunk, gf.ones(2 * size), op=dist.ReduceOp.AVG)
    close(chunk, [1.0, 1.0])
    mine = gf.full((2,), float(rank + 1))
    dist.reduce(mine, dst=0)
    close(mine, [float(total)] * 2 if rank == 0 else [float(rank + 1)] * 2)
    into = [gf.zeros(2, 2, dtype=gf.float64) for _ in range(size)] if rank == size - 1 else None
    dist.gather(gf.full((2, 2), rank, dtype=gf.float64), into, dst=size - 1)
    if rank == size - 1:
        assert [t[0, 0].item() for t in into] == list(range(size))
    parts = [gf.full((3,), 10 * r, dtype=gf.int64) for r in range(size)] if rank == 0 else None
    part = gf.zeros(3, dtype=gf.int64)
    dist.scatter(part, parts, group_src=0)
    assert part.tolist() == [10 * rank] * 3
    dist.barrier(timeout=datetime.timedelta(seconds=30))


@case
def async_handles(rank: int, size: int) -> None:
    t = gf.full((1000,), float(rank + 1))
    work = dist.all_reduce(t, async_op=True)
    assert isinstance(work, dist.Work)
    assert work.wait() is True
    assert work.is_completed()
    close(t, numpy.full(1000, sum(range(1, size + 1)), dtype=numpy.float32))
    works = [dist.all_reduce(gf.ones(10) * i, async_op=True) for i in range(5)]
    works.append(dist.broadcast(gf.zeros(3), src=0, async_op=True))
    works.append(dist.barrier(async_op=True))
    for handle in works:
        handle.wait()
        assert handle.is_completed()
    assert works[2].result()[0].tolist() == [2.0 * size] * 10


@case
def process_group_view(rank: int, size: int) -> None:
    import os

    assert dist.get_local_rank() == rank  # every rank on this machine
    assert dist.get_node_local_rank() == rank
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"]) == (str(rank), str(size))
    assert os.environ["LOCAL_RANK"] == str(rank)
    try:
        dist.init_process_group(backend="mpi")
    except ValueError as error:
        assert "twice" in str(error)
    else:
        raise AssertionError("a second init_process_group did not raise")


@case
def point_to_point(rank: int, size: int) -> None:
    if rank == 0:
        dist.send(gf.tensor([1.0, 2.0, 3.0]), dst=1)
        dist.send(gf.tensor([7, 8], dtype=gf.int16), dst=1, tag=5)
        grid = gf.zeros(3, 4, dtype=gf.float16)
        column = grid[:, 2]  # received into a strided view
        work = dist.irecv(column, src=1, tag=3)
        assert work.wait() and work._source_rank() == 1
        assert grid.tolist() == [[0, 0, r, 0] for r in (4.0, 5.0, 6.0)]
    elif rank == 1:
        first = gf.zeros(3)
        assert dist.recv(first) == 0  # from any rank
        assert first.tolist() == [1.0, 2.0, 3.0]
        second = gf.zeros(2, dtype=gf.int16)
        assert dist.recv(second, src=0, tag=5) == 0
        assert second.tolist() == [7, 8]
        dist.isend(gf.tensor([4.0, 5.0, 6.0], dtype=gf.float16), dst=0, tag=3).wait()


@case
def cuda_staged(rank: int, size: int) -> None:
    """cuda tensors with backend "mpi" (run with the CuPy stand-in): staged through host."""
    t = gf.full((2, 3), float(rank + 1), device="cuda")
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    assert t.device.type == "cuda"
    close(t.cpu(), numpy.full((2, 3), (size + 1) / 2))
    half = gf.full((4,), float(rank), dtype=gf.float16, device="cuda")
    view = half[::2]
    dist.broadcast(view, src=size - 1)
    assert half.tolist() == [size - 1.0, rank, size - 1.0, rank]
    out = gf.zeros(2 * size, device="cuda")
    dist.all_gather_into_tensor(out, gf.full((2,), float(rank), device="cuda"))
    close(out.cpu(), numpy.repeat(numpy.arange(size, dtype=numpy.float32), 2))
    chunk = gf.zeros(2, device="cuda")
    dist.reduce_scatter_tensor(chunk, gf.ones(2 * size, device="cuda"))
    close(chunk.cpu(), [float(size)] * 2)


@case
def sampler_shards(rank: int, size: int) -> None:
    from gradflow.utils.data import DataLoader, DistributedSampler

    for n, drop_last in ((12, False), (11, False), (11, True)):
        sampler = DistributedSampler(range(n), seed=3, drop_last=drop_last)
        assert (sampler.num_replicas, sampler.rank) == (size, rank)
        for epoch in range(3):
            sampler.set_epoch(epoch)
            mine = gf.tensor(list(sampler), dtype=gf.int64)
            shards = [gf.zeros(len(sampler), dtype=gf.int64) for _ in range(size)]
            dist.all_gather(shards, mine)
            everyone = [i for shard in shards for i in shard.tolist()]
            if n % size == 0:  # disjoint shards covering the dataset
                assert sorted(everyone) == list(range(n))
            elif drop_last:  # the tail cut: disjoint, n - n % size of them
                assert len(set(everyone)) == len(everyone) == n - n % size
            else:  # padded with repeats: every index, each rank the same count
                assert set(everyone) == set(range(n)) and len(everyone) == size * len(sampler)
    loader = DataLoader(range(12), batch_size=2, sampler=DistributedSampler(range(12), seed=1))
    assert len(loader) == 12 // size // 2 + (12 // size) % 2


def expect_error(what: str, call, *phrases: str) -> None:
    try:
        call()
    except RuntimeError as error:
        for phrase in phrases:
            assert phrase in str(error), (phrase, str(error))
        return
    raise AssertionError(f"{what} did not raise")


@case
def mismatched_calls(rank: int, size: int) -> None:
    expect_error(
        "shapes",
        lambda: dist.all_reduce(gf.zeros(2 + rank, 3)),
        "all_reduce",
        "shape (2, 3)",
        "shape (3, 3)",
    )
    expect_error(
        "dtypes",
        lambda: dist.all_reduce(gf.zeros(2, dtype=gf.float32 if rank else gf.float64)),
        "dtype float32",
        "dtype float64",
    )
    if rank == 0:
        expect_error("ops", lambda: dist.all_reduce(gf.zeros(4)), "called all_reduce")
    else:
        expect_error("ops", lambda: dist.broadcast(gf.zeros(4), src=0), "called broadcast")
    expect_error(
        "roots", lambda: dist.broadcast(gf.zeros(4), src=rank), "but with a different src/dst or op"
    )
    if rank == 0:  # a barrier meeting another rank's collective is refused on both
        expect_error("barrier", lambda: dist.all_reduce(gf.zeros(2)), "rank 1 called barrier")
    elif rank == 1:
        expect_error("barrier", dist.barrier, "called barrier", "rank 0 called all_reduce")
    t = gf.ones(4)
    dist.all_reduce(t)  # the group still works after a refused call
    assert t.tolist() == [float(size)] * 4
    if rank == 0:
        dist.send(gf.zeros(3), dst=1)
    elif rank == 1:
        expect_error("recv", lambda: dist.recv(gf.zeros(4), src=0), "shape (3,)", "shape (4,)")


@case
def one_rank_fails(rank: int, size: int) -> None:
    if rank == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.all_reduce(gf.ones(3))  # rank 0 waits for rank 1, which never comes


@case
def one_rank_is_late(rank: int, size: int) -> None:
    dist.destroy_process_group()
    dist.init_process_group(backend="mpi", timeout=datetime.timedelta(seconds=1))
    if rank == 0:
        try:
            dist.all_reduce(gf.ones(3))
        except RuntimeError as error:
            assert "timed out after 1 s" in str(error)
            expect_error("after a timeout", dist.barrier, "can't be used after an earlier")
            raise
    else:
        time.sleep(20)


def main(cases: dict | None = None) -> None:
    """Run the case named by argv[1] from `cases` (default: this file's) on this rank."""
    name = sys.argv[1]
    dist.init_process_group(backend="mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    (CASES if cases is None else cases)[name](rank, size)
    dist.destroy_process_group()
    sys.stdout.write(f"ok {rank}\n")  # one write: the ranks' lines may interleave
    sys.stdout.flush()


if __name__ == "__main__":
    main()
