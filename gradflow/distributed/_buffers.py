"""Host buffers for MPI: a tensor's own memory when it can be, else a contiguous copy
written back when the operation completes; which MPI reduction, in which dtype."""

from __future__ import annotations

from typing import Any

import numpy

from gradflow.autograd import versions as _versions
from gradflow.backend import CPU, move_array
from gradflow.distributed.process_group import ReduceOp, _World
from gradflow.tensor import Tensor


def host(tensor: Tensor, dtype: Any = None) -> numpy.ndarray:
    """A C-contiguous NumPy array of the tensor's values in `dtype`: the tensor's own memory
    when it already is one, else a copy."""
    array = tensor.array
    if not isinstance(array, numpy.ndarray):
        array = move_array(array, CPU)
    return numpy.ascontiguousarray(array, dtype=dtype or array.dtype)


def store(tensor: Tensor, values: numpy.ndarray) -> None:
    """Writes `values` into the tensor (nothing to copy when they are its memory)."""
    array = tensor.array
    if values is not array:
        if isinstance(array, numpy.ndarray):
            array[...] = values.reshape(array.shape)
        else:
            moved = move_array(values.astype(array.dtype, copy=False), tensor.device)
            array[...] = moved.reshape(array.shape)
    _versions.bump(array)


def bytes_of(buffer: numpy.ndarray) -> numpy.ndarray:
    """The buffer as raw bytes: ops that only move data need no MPI datatype (float16 too)."""
    return buffer.reshape(-1).view(numpy.uint8)


# ---- reductions -----------------------------------------------------------------------------
def reduction(world: _World, what: str, op: Any, dtype: numpy.dtype) -> tuple[Any, Any, bool]:
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


def finish_reduction(buffer: numpy.ndarray, average: bool, size: int) -> None:
    if average:
        buffer /= size


def output_buffer(tensor: Tensor) -> numpy.ndarray:
    """Where an operation that overwrites all of `tensor` writes: the tensor's own memory, or
    a fresh contiguous host array."""
    array = tensor.array
    if isinstance(array, numpy.ndarray) and array.flags.c_contiguous:
        return array
    return numpy.empty(array.shape, dtype=array.dtype)
