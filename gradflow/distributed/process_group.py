"""The default process group: one rank per process, started by MPI (PyTorch's names).

``init_process_group`` joins the world that ``mpiexec`` started (mpi4py's COMM_WORLD,
duplicated so gradflow's traffic never meets the user's own MPI messages) and, for backend
"nccl", a NCCL communicator over the same ranks. mpi4py is imported here, on the first
``init_process_group``, never by ``import gradflow``.
"""

from __future__ import annotations

import datetime
import enum
import os
from typing import Any

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)  # PyTorch's default for its CPU backends
_LOCAL_RANK_VARIABLES = (  # MPICH, Open MPI, MVAPICH
    "MPI_LOCALRANKID",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "MV2_COMM_WORLD_LOCAL_RANK",
)
_NOT_INITIALIZED = (
    "Default process group has not been initialized, please make sure to call init_process_group."
)


class ReduceOp(enum.Enum):
    """How a reduction combines the ranks' values (``ReduceOp.SUM`` etc.; AVG is the sum divided
    by the world size, for floating tensors)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"


class _World:
    """What the default group holds: the MPI communicator, this rank's place, the timeout."""

    def __init__(self, mpi: Any, comm: Any, backend: str, timeout: datetime.timedelta):
        self.mpi = mpi  # the mpi4py.MPI module
        self.comm = comm
        self.backend = backend
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout_s = timeout.total_seconds()
        node = comm.Split_type(mpi.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = node.Get_rank()
        self.local_size = node.Get_size()
        node.Free()
        for name in _LOCAL_RANK_VARIABLES:  # the launcher's word, when it gives one
            if os.environ.get(name, "").isdigit():
                self.local_rank = int(os.environ[name])
                break
        self.nccl: Any = None  # a gradflow.distributed.nccl.NcclGroup for backend "nccl"
        self.broken: str | None = None  # why the group can't be used any more (a timeout)
        self.checks = os.environ.get("GRADFLOW_DISTRIBUTED_CHECKS", "1").strip() != "0"


_world: _World | None = None


class _Group:
    """PyTorch's ``group.WORLD``: gradflow has the default group only."""

    WORLD = "WORLD"


group = _Group()
GroupMember = _Group


def is_available() -> bool:
    """Whether mpi4py can be imported (what every backend here starts from)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def is_mpi_available() -> bool:
    return is_available()


def is_nccl_available() -> bool:
    """Whether CuPy's NCCL binding imports (it does not check for a GPU)."""
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:
        return False
    return True


def is_initialized() -> bool:
    return _world is not None


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout: datetime.timedelta | None = None,
    world_size: int = -1,
    rank: int = -1,
    store: Any = None,
    group_name: str = "",
    pg_options: Any = None,
    device_id: Any = None,
) -> None:
    """Joins the world ``mpiexec`` started: ``mpiexec -n 2 python -m mpi4py train.py``.

    `backend` is "mpi" (the default, also taken for PyTorch's CPU backend "gloo": every
    tensor travels over MPI; cuda tensors are staged
    through host memory, correct but slower, as the PyPI MPI wheels are not CUDA-aware) or
    "nccl" (cuda tensors over NCCL through CuPy, one GPU per process picked by the local rank;
    cpu tensors still over MPI). MPI decides the ranks: `world_size` and `rank`, when given,
    must agree with it; `init_method`, `store`, `group_name`, `pg_options` and `device_id` are
    accepted for PyTorch's signature and otherwise unused. `timeout` bounds every wait on the
    other ranks (default 30 minutes); a wait past it raises naming the operation. Sets RANK,
    WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE in ``os.environ``. Without ``mpiexec`` the
    world is this one process.
    """
    global _world
    if _world is not None:
        raise ValueError("trying to initialize the default process group twice!")
    backend = "mpi" if backend is None else str(backend).lower()
    if backend == "gloo":  # PyTorch's CPU backend, named by its CPU scripts: MPI carries it here
        backend = "mpi"
    if backend not in ("mpi", "nccl"):
        raise ValueError(
            f"init_process_group: backend {backend!r} is not supported; gradflow has 'mpi' "
            "(any tensor, over MPI) and 'nccl' (cuda tensors, over NCCL)"
        )
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    if not isinstance(timeout, datetime.timedelta):
        raise TypeError(
            "init_process_group: timeout must be a datetime.timedelta, got "
            f"{type(timeout).__name__}"
        )
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RuntimeError(
            f"init_process_group(backend={backend!r}) needs mpi4py: pip install -e '.[mpi]' "
            "(mpi4py and the mpich wheel, which brings mpiexec)"
        ) from exc
    comm = MPI.COMM_WORLD.Dup()
    world = _World(MPI, comm, backend, timeout)
    for name, given, actual in (("world_size", world_size, world.size), ("rank", rank, world.rank)):
        if given is not None and given != -1 and given != actual:
            comm.Free()
            raise ValueError(
                f"init_process_group: {name}={given} but MPI started this process as {name} "
                f"{actual}; leave {name} out (mpiexec -n N decides it)"
            )
    if backend == "nccl":
        from gradflow.distributed.nccl import NcclGroup

        try:
            world.nccl = NcclGroup(world)
        except BaseException:
            comm.Free()
            raise
    _world = world
    os.environ["RANK"] = str(world.rank)
    os.environ["WORLD_SIZE"] = str(world.size)
    os.environ["LOCAL_RANK"] = str(world.local_rank)
    os.environ["LOCAL_WORLD_SIZE"] = str(world.local_size)


def destroy_process_group(group: Any = None) -> None:
    """Leaves the default group (a later ``init_process_group`` may join again)."""
    global _world
    world = _current(group)
    _world = None
    if world.nccl is not None:
        world.nccl.comm.destroy()
    world.comm.Free()


def _current(group: Any = None) -> _World:
    """The default group; raises as PyTorch does when there is none."""
    if group is not None and group != _Group.WORLD:
        raise NotImplementedError(
            "gradflow.distributed has the default group only: pass group=None"
        )
    if _world is None:
        raise ValueError(_NOT_INITIALIZED)
    if _world.broken is not None:
        raise RuntimeError(
            f"the process group can't be used after an earlier failure ({_world.broken}); "
            "end the job, or destroy_process_group() and init_process_group() again"
        )
    return _world


def get_rank(group: Any = None) -> int:
    return _current(group).rank


def get_world_size(group: Any = None) -> int:
    return _current(group).size


def get_local_rank() -> int:
    """This process's rank among the processes on its machine (it picks the GPU)."""
    return _current().local_rank


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """PyTorch's: LOCAL_RANK from the environment (``init_process_group`` sets it from MPI's
    view), else `fallback_rank`, else a RuntimeError."""
    if "LOCAL_RANK" in os.environ:
        return int(os.environ["LOCAL_RANK"])
    if fallback_rank is not None:
        return int(fallback_rank)
    raise RuntimeError(
        "LOCAL_RANK is not in the environment: call init_process_group() first (it sets it "
        "from MPI), or pass fallback_rank"
    )


def get_backend(group: Any = None) -> str:
    return _current(group).backend
