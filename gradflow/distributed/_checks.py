"""Checks before an operation: its arguments, and that every rank makes the same call.

Before the data moves, the ranks allgather a small description of the call (operation, root
or reduction, dtype, shape) and raise, on every rank, when they disagree: a mismatched call
names the operation and both shapes instead of corrupting memory or hanging. It costs one
small allgather per call; ``GRADFLOW_DISTRIBUTED_CHECKS=0`` (read at ``init_process_group``)
skips it.
"""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.distributed.process_group import ReduceOp, _World
from gradflow.distributed.work import Work
from gradflow.tensor import Tensor

OPS = (
    "all_reduce",
    "broadcast",
    "reduce",
    "all_gather",
    "all_gather_into_tensor",
    "reduce_scatter_tensor",
    "send",
    "gather",
    "scatter",
    "barrier",
)
DTYPES = (
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
REDUCE_OPS = tuple(ReduceOp)
DIMS = 8  # shape entries a description carries (longer shapes are compared by these and ndim)


def tensor_argument(what: str, name: str, value: Any) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{what}: {name} must be a Tensor, got {type(value).__name__}")
    return value


def describe(op: str, argument: int, tensor: Tensor | None) -> numpy.ndarray:
    """The call as integers: op, root or reduction, dtype, ndim and shape (no tensor: a
    barrier, shape () and no dtype)."""
    shape = () if tensor is None else tuple(tensor.shape)
    name = "" if tensor is None else str(tensor.array.dtype)
    row = [OPS.index(op), argument, DTYPES.index(name) if name in DTYPES else -1, len(shape)]
    row += list(shape[:DIMS]) + [-1] * (DIMS - min(len(shape), DIMS))
    return numpy.array(row, dtype=numpy.int64)


def shape_text(row: numpy.ndarray) -> str:
    ndim = int(row[3])
    if not 0 <= ndim <= 64:  # not a description: the rank's allgather met another call
        return "something else"
    shape: tuple = tuple(int(d) for d in row[4 : 4 + min(ndim, DIMS)])
    if ndim > DIMS:
        shape = (*shape, "...")
    dtype = DTYPES[row[2]] if 0 <= row[2] < len(DTYPES) else "another dtype"
    return f"shape {shape} and dtype {dtype}"


def explain(row: numpy.ndarray) -> str:
    if not 0 <= row[0] < len(OPS):
        return "called another operation"
    if OPS[row[0]] == "barrier":
        return "called barrier"
    return f"called {OPS[row[0]]} on {shape_text(row)}"


def agree(world: _World, op: str, tensor: Tensor | None, argument: int = 0) -> None:
    """Raises on every rank when the ranks' calls differ in op, root/reduction, dtype or shape."""
    if world.size == 1 or not world.checks:
        return
    mine = describe(op, argument, tensor)
    everyone = numpy.empty((world.size, mine.size), dtype=numpy.int64)

    def steps() -> Any:
        yield [world.comm.Iallgather(mine, everyone)]

    Work(op, steps(), world.timeout_s).wait()
    differ = (everyone != mine).any(axis=1)
    if not differ.any():
        return
    rank = int(differ.argmax())
    row = everyone[rank]
    detail = (
        " but with a different src/dst or op" if row[0] == mine[0] and row[1] != mine[1] else ""
    )
    raise RuntimeError(
        f"{op}: the ranks' calls do not match: rank {world.rank} {explain(mine)}, "
        f"rank {rank} {explain(row)}{detail}; every rank must make the same call "
        "with tensors of the same shape and dtype (and the same src/dst/op)"
    )


def rank_argument(
    world: _World, what: str, name: str, root: int | None, group_root: int | None = None
) -> int:
    """The rank named by `name` or by its ``group_`` twin (the same in the default group)."""
    if root is None:
        root = group_root
    elif group_root is not None and group_root != root:
        raise ValueError(
            f"{what}: {name}={root} and group_{name}={group_root} differ; in the default group "
            "they name the same rank: pass one"
        )
    if root is None:
        raise ValueError(f"{what}: pass {name}, the rank to use")
    if not isinstance(root, int | numpy.integer) or not 0 <= root < world.size:
        raise ValueError(f"{what}: {name}={root!r} is not a rank of a world of {world.size}")
    return int(root)


def on_nccl(world: _World, tensor: Tensor) -> Any:
    """The NCCL group when this cuda tensor travels over NCCL, else None."""
    if world.nccl is not None and tensor.device.type == "cuda":
        return world.nccl
    return None


def check_sizes(what: str, whole: Tensor, part: Tensor, size: int) -> None:
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


def check_list(what: str, name: str, tensors: Any, like: Tensor, size: int) -> None:
    """`tensors` must be a list of one tensor per rank, each of `like`'s shape and dtype."""
    if not isinstance(tensors, list | tuple) or len(tensors) != size:
        count = f"{len(tensors)} tensors" if isinstance(tensors, list | tuple) else repr(tensors)
        raise ValueError(f"{what}: {name} is {count}; it needs one tensor per rank ({size})")
    for index, out in enumerate(tensors):
        tensor_argument(what, f"{name}[{index}]", out)
        if out.shape != like.shape or out.dtype != like.dtype:
            raise ValueError(
                f"{what}: {name}[{index}] has shape {tuple(out.shape)} and dtype {out.dtype}; "
                f"it must match tensor's {tuple(like.shape)} and {like.dtype}"
            )
