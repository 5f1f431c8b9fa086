"""gradflow.distributed: several processes training one model (PyTorch's torch.distributed).

One rank per process, started by MPI: ``mpiexec -n 2 python -m mpi4py train.py`` (mpi4py's
runner ends every rank when one raises). ``init_process_group(backend="mpi")`` joins that
world; the collectives then work on Tensors in place. Backend "nccl" carries cuda tensors over
NCCL (CuPy's binding); with "mpi", cuda tensors are staged through host memory. Install with
``pip install -e '.[mpi]'`` (mpi4py and the mpich wheel, which brings ``mpiexec``).
"""

from gradflow.distributed.collectives import (
    all_gather,
    all_gather_into_tensor,
    all_reduce,
    barrier,
    broadcast,
    gather,
    reduce,
    reduce_scatter_tensor,
    scatter,
)
from gradflow.distributed.point_to_point import irecv, isend, recv, send
from gradflow.distributed.process_group import (
    GroupMember,
    ReduceOp,
    destroy_process_group,
    get_backend,
    get_local_rank,
    get_node_local_rank,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
)
from gradflow.distributed.work import Work

__all__ = [
    "GroupMember",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_reduce",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "gather",
    "get_backend",
    "get_local_rank",
    "get_node_local_rank",
    "get_rank",
    "get_world_size",
    "group",
    "init_process_group",
    "irecv",
    "is_available",
    "is_initialized",
    "is_mpi_available",
    "is_nccl_available",
    "isend",
    "recv",
    "reduce",
    "reduce_scatter_tensor",
    "scatter",
    "send",
]
