"""Point to point: send, recv, isend, irecv (PyTorch's names), over MPI.

Each message is two: a description of the tensor (tag ``2 * tag + 1``), which the receiver
checks against its own tensor, then the data (tag ``2 * tag``). cuda tensors are staged
through host memory, whatever the backend.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.distributed._buffers import bytes_of, host, output_buffer, store
from gradflow.distributed._checks import DIMS, describe, rank_argument, shape_text, tensor_argument
from gradflow.distributed.process_group import _current
from gradflow.distributed.work import Work
from gradflow.tensor import Tensor


def isend(
    tensor: Tensor,
    dst: int | None = None,
    group: Any = None,
    tag: int = 0,
    group_dst: int | None = None,
) -> Work:
    """Starts sending `tensor` to rank `dst` (matched by a ``recv`` with the same `tag`)."""
    world = _current(group)
    tensor_argument("isend", "tensor", tensor)
    dst = rank_argument(world, "isend", "dst", dst, group_dst)
    description = describe("send", world.rank, tensor)
    buffer = host(tensor)

    def steps() -> Any:
        yield [
            world.comm.Isend(description, dst, tag=2 * tag + 1),
            world.comm.Isend(bytes_of(buffer), dst, tag=2 * tag),
        ]

    return Work("send", steps(), world.timeout_s, [tensor])


def irecv(
    tensor: Tensor,
    src: int | None = None,
    group: Any = None,
    tag: int = 0,
    group_src: int | None = None,
) -> Work:
    """Starts receiving into `tensor` from rank `src` (any rank when None); the Work's
    ``_source_rank()`` is the sender once it completes."""
    world = _current(group)
    tensor_argument("irecv", "tensor", tensor)
    if src is None and group_src is None:
        source = world.mpi.ANY_SOURCE
    else:
        source = rank_argument(world, "irecv", "src", src, group_src)
    description = numpy.empty(4 + DIMS, dtype=numpy.int64)
    buffer = output_buffer(tensor)
    info: dict[str, Any] = {"source_rank": None}

    def steps() -> Any:
        yield [world.comm.Irecv(description, source, tag=2 * tag + 1)]
        sender = int(description[1])
        info["source_rank"] = sender
        mine = describe("send", sender, tensor)
        if not numpy.array_equal(mine, description):
            raise RuntimeError(
                f"recv: rank {sender} sent a tensor of {shape_text(description)} but rank "
                f"{world.rank} receives into one of {shape_text(mine)}; the tensors of send "
                "and recv must have the same shape and dtype"
            )
        yield [world.comm.Irecv(bytes_of(buffer), sender, tag=2 * tag)]
        store(tensor, buffer)

    return Work("recv", steps(), world.timeout_s, [tensor], info)


def send(
    tensor: Tensor,
    dst: int | None = None,
    group: Any = None,
    tag: int = 0,
    group_dst: int | None = None,
) -> None:
    """Sends `tensor` to rank `dst`; returns when the data has left (a ``recv`` matched it,
    or MPI buffered it)."""
    isend(tensor, dst, group, tag, group_dst).wait()


def recv(
    tensor: Tensor,
    src: int | None = None,
    group: Any = None,
    tag: int = 0,
    group_src: int | None = None,
) -> int:
    """Receives into `tensor` from rank `src` (any rank when None); returns the sender."""
    work = irecv(tensor, src, group, tag, group_src)
    work.wait()
    return work._source_rank()
