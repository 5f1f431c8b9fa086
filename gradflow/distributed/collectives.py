"""Collectives on Tensors, in place, over MPI (PyTorch's ``torch.distributed`` functions).

Each operation copies nothing when the tensor is a C-contiguous NumPy array: MPI reads and
writes the tensor's own memory. Otherwise (a strided view, a cuda tensor with backend "mpi",
a float16 reduction, done in float32) it works on a contiguous host copy and writes the result
back when the operation completes; cuda tensors are therefore staged through host memory
(correct, slower) unless the backend is "nccl". Every operation is an MPI nonblocking call
polled by a ``Work`` with the group's deadline; ``async_op=True`` returns that ``Work``.

Before the data moves, the ranks check that they all make the same call (``_checks.agree``).
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy

from gradflow.distributed._buffers import (
    bytes_of,
    finish_reduction,
    host,
    output_buffer,
    reduction,
    store,
)
from gradflow.distributed._checks import (
    REDUCE_OPS,
    agree,
    check_list,
    check_sizes,
    on_nccl,
    rank_argument,
    tensor_argument,
)
from gradflow.distributed.process_group import ReduceOp, _current
from gradflow.distributed.work import Work, run
from gradflow.tensor import Tensor


# ---- collectives ----------------------------------------------------------------------------
def all_reduce(
    tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Any = None, async_op: bool = False
) -> Work | None:
    """Replaces `tensor` on every rank by the reduction (`op`) of all ranks' tensors."""
    world = _current(group)
    tensor_argument("all_reduce", "tensor", tensor)
    mpi_op, dtype, average = reduction(world, "all_reduce", op, tensor.array.dtype)
    agree(world, "all_reduce", tensor, REDUCE_OPS.index(op))
    if on_nccl(world, tensor) is not None:
        return run(world.nccl.all_reduce(tensor, op), async_op)
    buffer = host(tensor, dtype)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Iallreduce(world.mpi.IN_PLACE, buffer, mpi_op)]
        finish_reduction(buffer, average, world.size)
        store(tensor, buffer)

    return run(Work("all_reduce", steps(), world.timeout_s, [tensor]), async_op)


def broadcast(
    tensor: Tensor,
    src: int | None = None,
    group: Any = None,
    async_op: bool = False,
    group_src: int | None = None,
) -> Work | None:
    """Copies rank `src`'s tensor into `tensor` on every rank."""
    world = _current(group)
    tensor_argument("broadcast", "tensor", tensor)
    src = rank_argument(world, "broadcast", "src", src, group_src)
    agree(world, "broadcast", tensor, src)
    if on_nccl(world, tensor) is not None:
        return run(world.nccl.broadcast(tensor, src), async_op)
    buffer = host(tensor)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Ibcast(bytes_of(buffer), root=src)]
            if world.rank != src:
                store(tensor, buffer)

    return run(Work("broadcast", steps(), world.timeout_s, [tensor]), async_op)


def reduce(
    tensor: Tensor,
    dst: int | None = None,
    op: ReduceOp = ReduceOp.SUM,
    group: Any = None,
    async_op: bool = False,
    group_dst: int | None = None,
) -> Work | None:
    """Reduces every rank's tensor into `tensor` on rank `dst` (the others' are unchanged)."""
    world = _current(group)
    tensor_argument("reduce", "tensor", tensor)
    dst = rank_argument(world, "reduce", "dst", dst, group_dst)
    mpi_op, dtype, average = reduction(world, "reduce", op, tensor.array.dtype)
    agree(world, "reduce", tensor, dst * len(REDUCE_OPS) + REDUCE_OPS.index(op))
    if on_nccl(world, tensor) is not None:
        return run(world.nccl.reduce(tensor, dst, op), async_op)
    buffer = host(tensor, dtype)
    is_root = world.rank == dst

    def steps() -> Any:
        if world.size > 1:
            send = world.mpi.IN_PLACE if is_root else buffer
            yield [world.comm.Ireduce(send, buffer if is_root else None, mpi_op, root=dst)]
        if is_root:
            finish_reduction(buffer, average, world.size)
            store(tensor, buffer)

    return run(Work("reduce", steps(), world.timeout_s, [tensor]), async_op)


def all_gather(
    tensor_list: list[Tensor], tensor: Tensor, group: Any = None, async_op: bool = False
) -> Work | None:
    """Fills ``tensor_list[r]`` with rank r's `tensor`, on every rank."""
    world = _current(group)
    tensor_argument("all_gather", "tensor", tensor)
    check_list("all_gather", "tensor_list", tensor_list, tensor, world.size)
    agree(world, "all_gather", tensor)
    send = host(tensor)
    gathered = numpy.empty((world.size, *send.shape), dtype=send.dtype)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Iallgather(bytes_of(send), bytes_of(gathered))]
        else:
            gathered[0] = send
        for out, values in zip(tensor_list, gathered, strict=True):
            store(out, values)

    return run(Work("all_gather", steps(), world.timeout_s, list(tensor_list)), async_op)


def all_gather_into_tensor(
    output_tensor: Tensor, input_tensor: Tensor, group: Any = None, async_op: bool = False
) -> Work | None:
    """Gathers every rank's `input_tensor` into `output_tensor`, rank by rank along the first
    dimension (shape ``(world_size * n, ...)``) or stacked (``(world_size, n, ...)``)."""
    world = _current(group)
    tensor_argument("all_gather_into_tensor", "output_tensor", output_tensor)
    tensor_argument("all_gather_into_tensor", "input_tensor", input_tensor)
    check_sizes("all_gather_into_tensor", output_tensor, input_tensor, world.size)
    agree(world, "all_gather_into_tensor", input_tensor)
    if on_nccl(world, input_tensor) is not None:
        return run(world.nccl.all_gather_into_tensor(output_tensor, input_tensor), async_op)
    send = host(input_tensor)
    gathered = output_buffer(output_tensor)
    if numpy.shares_memory(send, gathered):  # the input is a slot of the output (in place)
        send = send.copy()

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Iallgather(bytes_of(send), bytes_of(gathered))]
        else:
            gathered.reshape(-1)[...] = send.reshape(-1)
        store(output_tensor, gathered)

    work = Work("all_gather_into_tensor", steps(), world.timeout_s, [output_tensor])
    return run(work, async_op)


def reduce_scatter_tensor(
    output: Tensor,
    input: Tensor,
    op: ReduceOp = ReduceOp.SUM,
    group: Any = None,
    async_op: bool = False,
) -> Work | None:
    """Reduces the ranks' `input` tensors and gives rank r the r-th of `world_size` equal
    chunks (along the first dimension) in `output`."""
    world = _current(group)
    tensor_argument("reduce_scatter_tensor", "output", output)
    tensor_argument("reduce_scatter_tensor", "input", input)
    check_sizes("reduce_scatter_tensor", input, output, world.size)
    mpi_op, dtype, average = reduction(world, "reduce_scatter_tensor", op, input.array.dtype)
    agree(world, "reduce_scatter_tensor", input, REDUCE_OPS.index(op))
    if on_nccl(world, input) is not None:
        return run(world.nccl.reduce_scatter_tensor(output, input, op), async_op)
    send = host(input, dtype)
    chunk = numpy.empty(output.shape, dtype=dtype)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Ireduce_scatter_block(send, chunk, mpi_op)]
        else:
            chunk.reshape(-1)[...] = send.reshape(-1)
        finish_reduction(chunk, average, world.size)
        store(output, chunk)

    return run(Work("reduce_scatter_tensor", steps(), world.timeout_s, [output]), async_op)


def gather(
    tensor: Tensor,
    gather_list: list[Tensor] | None = None,
    dst: int | None = None,
    group: Any = None,
    async_op: bool = False,
    group_dst: int | None = None,
) -> Work | None:
    """Collects every rank's `tensor` into ``gather_list`` (one per rank) on rank `dst`."""
    world = _current(group)
    tensor_argument("gather", "tensor", tensor)
    dst = rank_argument(world, "gather", "dst", dst, group_dst)
    is_root = world.rank == dst
    if is_root:
        check_list("gather", "gather_list", gather_list, tensor, world.size)
    agree(world, "gather", tensor, dst)
    send = host(tensor)
    gathered = numpy.empty((world.size, *send.shape), dtype=send.dtype) if is_root else None

    def steps() -> Any:
        if world.size > 1:
            receive = bytes_of(gathered) if is_root else None
            yield [world.comm.Igather(bytes_of(send), receive, root=dst)]
        elif is_root:
            gathered[0] = send
        if is_root:
            for out, values in zip(gather_list, gathered, strict=True):
                store(out, values)

    return run(Work("gather", steps(), world.timeout_s, list(gather_list or [])), async_op)


def scatter(
    tensor: Tensor,
    scatter_list: list[Tensor] | None = None,
    src: int | None = None,
    group: Any = None,
    async_op: bool = False,
    group_src: int | None = None,
) -> Work | None:
    """Gives rank r ``scatter_list[r]`` of rank `src`, written into its `tensor`."""
    world = _current(group)
    tensor_argument("scatter", "tensor", tensor)
    src = rank_argument(world, "scatter", "src", src, group_src)
    is_root = world.rank == src
    if is_root:
        check_list("scatter", "scatter_list", scatter_list, tensor, world.size)
    agree(world, "scatter", tensor, src)
    parts = numpy.stack([host(t) for t in scatter_list]) if is_root else None
    received = output_buffer(tensor)

    def steps() -> Any:
        if world.size > 1:
            send = bytes_of(parts) if is_root else None
            yield [world.comm.Iscatter(send, bytes_of(received), root=src)]
        else:
            received[...] = parts[0]
        store(tensor, received)

    return run(Work("scatter", steps(), world.timeout_s, [tensor]), async_op)


def barrier(
    group: Any = None,
    async_op: bool = False,
    device_ids: Any = None,
    timeout: datetime.timedelta | None = None,
) -> Work | None:
    """Returns when every rank has called it (raising after `timeout`, default the group's).
    With the agreement check on, a rank that meets another rank's different call raises."""
    world = _current(group)
    agree(world, "barrier", None)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Ibarrier()]

    limit = world.timeout_s if timeout is None else timeout.total_seconds()
    return run(Work("barrier", steps(), limit), async_op)
