"""Backend "nccl": cuda tensors over NCCL through CuPy's binding (awaits a GPU run).

The communicator is built as ChainerMN does: rank 0 makes NCCL's unique id, MPI broadcasts
it, every rank joins with its rank; each process uses one GPU, picked by its local rank.
Operations run on the current CuPy stream; their ``Work`` is done when an event recorded after
them has passed. cpu tensors, and the operations without a NCCL path here (all_gather into a
list, send/recv), still go over MPI, cuda tensors staged through host memory.

This path has not run on a GPU in this project yet: no machine here has one.
"""

from __future__ import annotations

from typing import Any

from gradflow.autograd import versions as _versions
from gradflow.distributed.process_group import ReduceOp
from gradflow.distributed.work import Work
from gradflow.tensor import Tensor

INSTALL = (
    "init_process_group(backend='nccl') needs CuPy with NCCL and a CUDA GPU: "
    "pip install -e '.[cuda12]' (or cuda13) and NVIDIA's NCCL wheel (nvidia-nccl-cu12), "
    "or use backend='mpi', which stages cuda tensors through host memory"
)


class _EventDone:
    """A CUDA event as the request ``Work`` polls."""

    def __init__(self, event: Any) -> None:
        self.event = event

    def Test(self) -> bool:  # MPI's spelling, which Work calls
        return bool(self.event.done)


class NcclGroup:
    """The default group's NCCL communicator and the GPU this process uses."""

    def __init__(self, world: Any) -> None:
        try:
            import cupy
            from cupy.cuda import nccl
        except Exception as exc:
            raise RuntimeError(INSTALL) from exc
        count = cupy.cuda.runtime.getDeviceCount()
        if count == 0:
            raise RuntimeError(INSTALL)
        self.cupy, self.nccl, self.world = cupy, nccl, world
        self.device = world.local_rank % count
        cupy.cuda.Device(self.device).use()
        unique_id = nccl.get_unique_id() if world.rank == 0 else None
        unique_id = world.comm.bcast(unique_id, root=0)
        self.comm = nccl.NcclCommunicator(world.size, unique_id, world.rank)
        self.dtypes = {
            "bool": nccl.NCCL_UINT8,
            "int8": nccl.NCCL_INT8,
            "uint8": nccl.NCCL_UINT8,
            "int32": nccl.NCCL_INT32,
            "uint32": nccl.NCCL_UINT32,
            "int64": nccl.NCCL_INT64,
            "uint64": nccl.NCCL_UINT64,
            "float16": nccl.NCCL_FLOAT16,
            "float32": nccl.NCCL_FLOAT32,
            "float64": nccl.NCCL_FLOAT64,
        }
        self.ops = {
            ReduceOp.SUM: nccl.NCCL_SUM,
            ReduceOp.AVG: nccl.NCCL_SUM,  # then divided by the world size
            ReduceOp.PRODUCT: nccl.NCCL_PROD,
            ReduceOp.MAX: nccl.NCCL_MAX,
            ReduceOp.MIN: nccl.NCCL_MIN,
        }

    # ---- helpers ----------------------------------------------------------------------------
    def _buffer(self, tensor: Tensor) -> Any:
        """The tensor's contiguous device array (its own memory when it already is one)."""
        if tensor.device.index != self.device:
            raise RuntimeError(
                f"backend 'nccl': this process (local rank {self.world.local_rank}) uses "
                f"cuda:{self.device}, but the tensor is on {tensor.device}; move it there"
            )
        array = tensor.array
        return array if array.flags.c_contiguous else self.cupy.ascontiguousarray(array)

    def _dtype(self, what: str, array: Any) -> int:
        name = str(array.dtype)
        if name not in self.dtypes:
            raise TypeError(f"{what}: NCCL has no {name}; use one of {sorted(self.dtypes)}")
        return self.dtypes[name]

    def _op(self, what: str, op: ReduceOp, array: Any) -> int:
        if op not in self.ops:
            raise TypeError(f"{what}: backend 'nccl' has no {op}; use SUM, AVG, PRODUCT, MIN, MAX")
        if array.dtype.kind == "b" and op in (ReduceOp.SUM, ReduceOp.PRODUCT):
            # bool as uint8: a logical or is MAX, a logical and MIN (PyTorch's SUM, PRODUCT)
            return self.ops[ReduceOp.MAX if op is ReduceOp.SUM else ReduceOp.MIN]
        return self.ops[op]

    def _work(self, what: str, outputs: list[tuple[Tensor, Any]], average: bool) -> Work:
        stream = self.cupy.cuda.get_current_stream()
        event = stream.record()

        def steps() -> Any:
            yield [_EventDone(event)]
            for tensor, buffer in outputs:
                if average:
                    buffer /= self.world.size
                if buffer is not tensor.array:
                    tensor.array[...] = buffer.reshape(tensor.array.shape)
                _versions.bump(tensor.array)

        return Work(what, steps(), self.world.timeout_s, [tensor for tensor, _ in outputs])

    @staticmethod
    def _stream() -> int:
        import cupy

        return cupy.cuda.get_current_stream().ptr

    # ---- operations -------------------------------------------------------------------------
    def all_reduce(self, tensor: Tensor, op: ReduceOp) -> Work:
        buffer = self._buffer(tensor)
        dtype, nccl_op = self._dtype("all_reduce", buffer), self._op("all_reduce", op, buffer)
        ptr = buffer.data.ptr
        self.comm.allReduce(ptr, ptr, buffer.size, dtype, nccl_op, self._stream())
        return self._work("all_reduce", [(tensor, buffer)], op is ReduceOp.AVG)

    def broadcast(self, tensor: Tensor, src: int) -> Work:
        buffer = self._buffer(tensor)
        dtype = self._dtype("broadcast", buffer)
        ptr = buffer.data.ptr
        self.comm.broadcast(ptr, ptr, buffer.size, dtype, src, self._stream())
        return self._work("broadcast", [(tensor, buffer)], False)

    def reduce(self, tensor: Tensor, dst: int, op: ReduceOp) -> Work:
        buffer = self._buffer(tensor)
        dtype, nccl_op = self._dtype("reduce", buffer), self._op("reduce", op, buffer)
        ptr = buffer.data.ptr
        self.comm.reduce(ptr, ptr, buffer.size, dtype, nccl_op, dst, self._stream())
        outputs = [(tensor, buffer)] if self.world.rank == dst else []
        return self._work("reduce", outputs, op is ReduceOp.AVG)

    def all_gather_into_tensor(self, output: Tensor, input: Tensor) -> Work:
        send, receive = self._buffer(input), self._buffer(output)
        dtype = self._dtype("all_gather_into_tensor", send)
        self.comm.allGather(send.data.ptr, receive.data.ptr, send.size, dtype, self._stream())
        return self._work("all_gather_into_tensor", [(output, receive)], False)

    def reduce_scatter_tensor(self, output: Tensor, input: Tensor, op: ReduceOp) -> Work:
        send, receive = self._buffer(input), self._buffer(output)
        dtype = self._dtype("reduce_scatter_tensor", send)
        nccl_op = self._op("reduce_scatter_tensor", op, send)
        stream = self._stream()
        self.comm.reduceScatter(
            send.data.ptr, receive.data.ptr, receive.size, dtype, nccl_op, stream
        )
        return self._work("reduce_scatter_tensor", [(output, receive)], op is ReduceOp.AVG)
