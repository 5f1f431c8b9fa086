"""Collectives on Tensors, in place, over MPI (PyTorch's ``torch.distributed`` functions).

Each operation copies nothing when the tensor is a C-contiguous NumPy array: MPI reads and
writes the tensor's own memory. Otherwise (a strided view, a cuda tensor with backend "mpi",
a float16 reduction, done in float32) it works on a contiguous host copy and writes the result
back when the operation completes; cuda tensors are therefore staged through host memory
(correct, slower) unless the backend is "nccl". Every operation is an MPI nonblocking call
polled by a ``Work`` with the group's deadline; ``async_op=True`` returns that ``Work``.

Before the data moves, the ranks exchange a small description of the call (operation, root or
reduction, dtype, shape) and raise, on every rank, when they disagree: a mismatched call
names the operation and both shapes instead of corrupting memory or hanging. It costs one small
allgather per call; ``GRADFLOW_DISTRIBUTED_CHECKS=0`` (read at ``init_process_group``) skips it.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.autograd import versions as _versions
from gradflow.backend import move_array
from gradflow.distributed.process_group import ReduceOp, _current, _World
from gradflow.distributed.work import Work, run
from gradflow.tensor import Tensor

_OPS = (
    "all_reduce",
    "broadcast",
    "reduce",
    "all_gather",
    "all_gather_into_tensor",
    "reduce_scatter_tensor",
    "send",
)
_DTYPES = (
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)
_REDUCE_OPS = tuple(ReduceOp)
_DIMS = 8  # shape entries a description carries (longer shapes are compared by these and ndim)


# ---- buffers --------------------------------------------------------------------------------
def _tensor(what: str, name: str, value: Any) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{what}: {name} must be a Tensor, got {type(value).__name__}")
    return value


def _host(tensor: Tensor, dtype: Any = None) -> numpy.ndarray:
    """A C-contiguous NumPy array of the tensor's values in `dtype`: the tensor's own memory
    when it already is one, else a copy."""
    array = tensor.array
    if not isinstance(array, numpy.ndarray):
        array = move_array(array, _cpu())
    return numpy.ascontiguousarray(array, dtype=dtype or array.dtype)


def _cpu() -> Any:
    from gradflow.backend import CPU

    return CPU


def _store(tensor: Tensor, values: numpy.ndarray) -> None:
    """Writes `values` into the tensor (nothing to copy when they are its memory)."""
    array = tensor.array
    if values is not array:
        if isinstance(array, numpy.ndarray):
            array[...] = values.reshape(array.shape)
        else:
            moved = move_array(values.astype(array.dtype, copy=False), tensor.device)
            array[...] = moved.reshape(array.shape)
    _versions.bump(array)


def _bytes(buffer: numpy.ndarray) -> numpy.ndarray:
    """The buffer as raw bytes: ops that only move data need no MPI datatype (float16 too)."""
    return buffer.reshape(-1).view(numpy.uint8)


# ---- reductions -----------------------------------------------------------------------------
def _reduction(world: _World, what: str, op: Any, dtype: numpy.dtype) -> tuple[Any, Any, bool]:
    """(MPI op, dtype to reduce in, whether to divide by the world size afterwards)."""
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{what}: op must be a gradflow.distributed.ReduceOp, got {op!r}")
    mpi = world.mpi
    kind = dtype.kind
    if kind == "b":
        if op is ReduceOp.AVG:
            raise TypeError(f"{what}: ReduceOp.AVG needs a floating point tensor, got bool")
        logical = {
            ReduceOp.SUM: mpi.LOR,
            ReduceOp.MAX: mpi.LOR,
            ReduceOp.BOR: mpi.LOR,
            ReduceOp.PRODUCT: mpi.LAND,
            ReduceOp.MIN: mpi.LAND,
            ReduceOp.BAND: mpi.LAND,
            ReduceOp.BXOR: mpi.LXOR,
        }
        return logical[op], dtype, False
    if op is ReduceOp.AVG and kind not in "fc":
        raise TypeError(f"{what}: ReduceOp.AVG needs a floating point tensor, got {dtype}")
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and kind not in "iu":
        raise TypeError(f"{what}: {op} needs an integer or bool tensor, got {dtype}")
    if op in (ReduceOp.MIN, ReduceOp.MAX) and kind == "c":
        raise TypeError(f"{what}: {op} is not defined for complex tensors ({dtype})")
    table = {
        ReduceOp.SUM: mpi.SUM,
        ReduceOp.AVG: mpi.SUM,
        ReduceOp.PRODUCT: mpi.PROD,
        ReduceOp.MIN: mpi.MIN,
        ReduceOp.MAX: mpi.MAX,
        ReduceOp.BAND: mpi.BAND,
        ReduceOp.BOR: mpi.BOR,
        ReduceOp.BXOR: mpi.BXOR,
    }
    reduce_dtype = numpy.dtype(numpy.float32) if dtype == numpy.float16 else dtype
    return table[op], reduce_dtype, op is ReduceOp.AVG


def _finish_reduction(buffer: numpy.ndarray, average: bool, size: int) -> None:
    if average:
        buffer /= size


# ---- agreement check ------------------------------------------------------------------------
def _describe(op: str, argument: int, tensor: Tensor) -> numpy.ndarray:
    shape = tuple(tensor.shape)
    name = str(tensor.array.dtype)
    row = [_OPS.index(op), argument, _DTYPES.index(name) if name in _DTYPES else -1, len(shape)]
    row += list(shape[:_DIMS]) + [-1] * (_DIMS - min(len(shape), _DIMS))
    return numpy.array(row, dtype=numpy.int64)


def _shape_text(row: numpy.ndarray) -> str:
    ndim = int(row[3])
    shape: tuple = tuple(int(d) for d in row[4 : 4 + min(ndim, _DIMS)])
    if ndim > _DIMS:
        shape = (*shape, "...")
    dtype = _DTYPES[row[2]] if 0 <= row[2] < len(_DTYPES) else "another dtype"
    return f"shape {shape} and dtype {dtype}"


def _explain(row: numpy.ndarray) -> str:
    return f"called {_OPS[row[0]]} on {_shape_text(row)}"


def _agree(world: _World, op: str, tensor: Tensor, argument: int = 0) -> None:
    """Raises on every rank when the ranks' calls differ in op, root/reduction, dtype or shape."""
    if world.size == 1 or not world.checks:
        return
    mine = _describe(op, argument, tensor)
    everyone = numpy.empty((world.size, mine.size), dtype=numpy.int64)

    def steps() -> Any:
        yield [world.comm.Iallgather(mine, everyone)]

    Work(op, steps(), world.timeout_s).wait()
    for rank, row in enumerate(everyone):
        if not numpy.array_equal(row, mine):
            detail = ""
            if row[0] == mine[0] and row[1] != mine[1]:
                detail = f" (but a different src/dst/op: {int(mine[1])} and {int(row[1])})"
            raise RuntimeError(
                f"{op}: the ranks' calls do not match: rank {world.rank} {_explain(mine)}, "
                f"rank {rank} {_explain(row)}{detail}; every rank must make the same call "
                "with tensors of the same shape and dtype (and the same src/dst/op)"
            )


def _root(world: _World, what: str, name: str, root: int) -> int:
    if not isinstance(root, int | numpy.integer) or not 0 <= root < world.size:
        raise ValueError(f"{what}: {name}={root!r} is not a rank of a world of {world.size}")
    return int(root)


def _nccl(world: _World, tensor: Tensor) -> Any:
    """The NCCL group when this cuda tensor travels over NCCL, else None."""
    if world.nccl is not None and tensor.device.type == "cuda":
        return world.nccl
    return None


# ---- collectives ----------------------------------------------------------------------------
def all_reduce(
    tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Any = None, async_op: bool = False
) -> Work | None:
    """Replaces `tensor` on every rank by the reduction (`op`) of all ranks' tensors."""
    world = _current(group)
    _tensor("all_reduce", "tensor", tensor)
    mpi_op, dtype, average = _reduction(world, "all_reduce", op, tensor.array.dtype)
    _agree(world, "all_reduce", tensor, _REDUCE_OPS.index(op))
    if _nccl(world, tensor) is not None:
        return run(world.nccl.all_reduce(tensor, op), async_op)
    buffer = _host(tensor, dtype)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Iallreduce(world.mpi.IN_PLACE, buffer, mpi_op)]
        _finish_reduction(buffer, average, world.size)
        _store(tensor, buffer)

    return run(Work("all_reduce", steps(), world.timeout_s, [tensor]), async_op)


def broadcast(tensor: Tensor, src: int, group: Any = None, async_op: bool = False) -> Work | None:
    """Copies rank `src`'s tensor into `tensor` on every rank."""
    world = _current(group)
    _tensor("broadcast", "tensor", tensor)
    src = _root(world, "broadcast", "src", src)
    _agree(world, "broadcast", tensor, src)
    if _nccl(world, tensor) is not None:
        return run(world.nccl.broadcast(tensor, src), async_op)
    buffer = _host(tensor)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Ibcast(_bytes(buffer), root=src)]
            if world.rank != src:
                _store(tensor, buffer)

    return run(Work("broadcast", steps(), world.timeout_s, [tensor]), async_op)


def reduce(
    tensor: Tensor,
    dst: int,
    op: ReduceOp = ReduceOp.SUM,
    group: Any = None,
    async_op: bool = False,
) -> Work | None:
    """Reduces every rank's tensor into `tensor` on rank `dst` (the others' are unchanged)."""
    world = _current(group)
    _tensor("reduce", "tensor", tensor)
    dst = _root(world, "reduce", "dst", dst)
    mpi_op, dtype, average = _reduction(world, "reduce", op, tensor.array.dtype)
    _agree(world, "reduce", tensor, dst * len(_REDUCE_OPS) + _REDUCE_OPS.index(op))
    if _nccl(world, tensor) is not None:
        return run(world.nccl.reduce(tensor, dst, op), async_op)
    buffer = _host(tensor, dtype)
    is_root = world.rank == dst

    def steps() -> Any:
        if world.size > 1:
            send = world.mpi.IN_PLACE if is_root else buffer
            yield [world.comm.Ireduce(send, buffer if is_root else None, mpi_op, root=dst)]
        if is_root:
            _finish_reduction(buffer, average, world.size)
            _store(tensor, buffer)

    return run(Work("reduce", steps(), world.timeout_s, [tensor]), async_op)


def all_gather(
    tensor_list: list[Tensor], tensor: Tensor, group: Any = None, async_op: bool = False
) -> Work | None:
    """Fills ``tensor_list[r]`` with rank r's `tensor`, on every rank."""
    world = _current(group)
    _tensor("all_gather", "tensor", tensor)
    if len(tensor_list) != world.size:
        raise ValueError(
            f"all_gather: tensor_list has {len(tensor_list)} tensors; it needs one per rank "
            f"({world.size})"
        )
    for index, out in enumerate(tensor_list):
        _tensor("all_gather", f"tensor_list[{index}]", out)
        if out.shape != tensor.shape or out.dtype != tensor.dtype:
            raise ValueError(
                f"all_gather: tensor_list[{index}] has shape {tuple(out.shape)} and dtype "
                f"{out.dtype}; it must match tensor's {tuple(tensor.shape)} and {tensor.dtype}"
            )
    _agree(world, "all_gather", tensor)
    send = _host(tensor)
    gathered = numpy.empty((world.size, *send.shape), dtype=send.dtype)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Iallgather(_bytes(send), _bytes(gathered))]
        else:
            gathered[0] = send
        for out, values in zip(tensor_list, gathered, strict=True):
            _store(out, values)

    return run(Work("all_gather", steps(), world.timeout_s, list(tensor_list)), async_op)


def all_gather_into_tensor(
    output_tensor: Tensor, input_tensor: Tensor, group: Any = None, async_op: bool = False
) -> Work | None:
    """Gathers every rank's `input_tensor` into `output_tensor`, rank by rank along the first
    dimension (shape ``(world_size * n, ...)``) or stacked (``(world_size, n, ...)``)."""
    world = _current(group)
    _tensor("all_gather_into_tensor", "output_tensor", output_tensor)
    _tensor("all_gather_into_tensor", "input_tensor", input_tensor)
    _check_sizes("all_gather_into_tensor", output_tensor, input_tensor, world.size)
    _agree(world, "all_gather_into_tensor", input_tensor)
    if _nccl(world, input_tensor) is not None:
        return run(world.nccl.all_gather_into_tensor(output_tensor, input_tensor), async_op)
    send = _host(input_tensor)
    gathered = _output_buffer(output_tensor)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Iallgather(_bytes(send), _bytes(gathered))]
        else:
            gathered.reshape(-1)[...] = send.reshape(-1)
        _store(output_tensor, gathered)

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
    _tensor("reduce_scatter_tensor", "output", output)
    _tensor("reduce_scatter_tensor", "input", input)
    _check_sizes("reduce_scatter_tensor", input, output, world.size)
    mpi_op, dtype, average = _reduction(world, "reduce_scatter_tensor", op, input.array.dtype)
    _agree(world, "reduce_scatter_tensor", input, _REDUCE_OPS.index(op))
    if _nccl(world, input) is not None:
        return run(world.nccl.reduce_scatter_tensor(output, input, op), async_op)
    send = _host(input, dtype)
    chunk = numpy.empty(output.shape, dtype=dtype)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Ireduce_scatter_block(send, chunk, mpi_op)]
        else:
            chunk.reshape(-1)[...] = send.reshape(-1)
        _finish_reduction(chunk, average, world.size)
        _store(output, chunk)

    return run(Work("reduce_scatter_tensor", steps(), world.timeout_s, [output]), async_op)


def _check_sizes(what: str, whole: Tensor, part: Tensor, size: int) -> None:
    """`whole` must hold `size` parts' elements, in the parts' dtype."""
    if whole.dtype != part.dtype:
        raise TypeError(
            f"{what}: the tensors' dtypes differ ({whole.dtype} and {part.dtype}); use one dtype"
        )
    if whole.numel() != size * part.numel():
        raise ValueError(
            f"{what}: a tensor of shape {tuple(whole.shape)} cannot hold {size} ranks' tensors "
            f"of shape {tuple(part.shape)}; it needs world_size * {part.numel()} elements"
        )


def _output_buffer(tensor: Tensor) -> numpy.ndarray:
    """Where an operation that overwrites all of `tensor` writes: the tensor's own memory, or
    a fresh contiguous host array."""
    array = tensor.array
    if isinstance(array, numpy.ndarray) and array.flags.c_contiguous:
        return array
    return numpy.empty(array.shape, dtype=array.dtype)


def barrier(group: Any = None, async_op: bool = False, device_ids: Any = None) -> Work | None:
    """Returns when every rank has called it."""
    world = _current(group)

    def steps() -> Any:
        if world.size > 1:
            yield [world.comm.Ibarrier()]

    return run(Work("barrier", steps(), world.timeout_s), async_op)


# ---- point to point -------------------------------------------------------------------------
# Each message is two: a description of the tensor (tag 2 * tag + 1), which the receiver
# checks against its own tensor, then the data (tag 2 * tag).
def isend(tensor: Tensor, dst: int, group: Any = None, tag: int = 0) -> Work:
    """Starts sending `tensor` to rank `dst` (matched by a ``recv`` with the same `tag`)."""
    world = _current(group)
    _tensor("isend", "tensor", tensor)
    dst = _root(world, "isend", "dst", dst)
    description = _describe("send", world.rank, tensor)
    buffer = _host(tensor)

    def steps() -> Any:
        yield [
            world.comm.Isend(description, dst, tag=2 * tag + 1),
            world.comm.Isend(_bytes(buffer), dst, tag=2 * tag),
        ]

    return Work("send", steps(), world.timeout_s, [tensor])


def irecv(tensor: Tensor, src: int | None = None, group: Any = None, tag: int = 0) -> Work:
    """Starts receiving into `tensor` from rank `src` (any rank when None); the Work's
    ``source_rank`` is the sender once it completes."""
    world = _current(group)
    _tensor("irecv", "tensor", tensor)
    source = world.mpi.ANY_SOURCE if src is None else _root(world, "irecv", "src", src)
    description = numpy.empty(4 + _DIMS, dtype=numpy.int64)
    buffer = _output_buffer(tensor)
    info: dict[str, Any] = {"source_rank": None}

    def steps() -> Any:
        yield [world.comm.Irecv(description, source, tag=2 * tag + 1)]
        sender = int(description[1])
        info["source_rank"] = sender
        mine = _describe("send", sender, tensor)
        if not numpy.array_equal(mine, description):
            raise RuntimeError(
                f"recv: rank {sender} sent a tensor of {_shape_text(description)} but rank "
                f"{world.rank} receives into one of {_shape_text(mine)}; the tensors of send "
                "and recv must have the same shape and dtype"
            )
        yield [world.comm.Irecv(_bytes(buffer), sender, tag=2 * tag)]
        _store(tensor, buffer)

    return Work("recv", steps(), world.timeout_s, [tensor], info)


def send(tensor: Tensor, dst: int, group: Any = None, tag: int = 0) -> None:
    """Sends `tensor` to rank `dst`; returns when the data has left (a ``recv`` matched it,
    or MPI buffered it)."""
    isend(tensor, dst, group, tag).wait()


def recv(tensor: Tensor, src: int | None = None, group: Any = None, tag: int = 0) -> int:
    """Receives into `tensor` from rank `src` (any rank when None); returns the sender."""
    work = irecv(tensor, src, group, tag)
    work.wait()
    return work._source_rank()
