"""The NCCL backend on a GPU, for benchmarks/gpu_session.sh's nccl step: a world of one process
(a lent machine has one GPU; NCCL gives each rank its own), ``init_process_group("nccl")``
(CuPy's NcclCommunicator, its unique id broadcast over MPI), then each collective of the
backend on cuda tensors, checked against the values a world of one gives, and an async
handle. Prints one line per check and ``nccl: OK`` or ``nccl: FAILED``; exit status 0 only
when every check passed. Without mpi4py or CuPy's NCCL it says so and exits 5: the NCCL path
then still awaits a GPU run.

    python benchmarks/nccl_check.py
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        print("nccl: SKIPPED: mpi4py is not installed (pip install -e '.[mpi]'); the NCCL path "
              "awaits a GPU run")  # fmt: skip
        return 5
    import numpy

    import gradflow as gf
    import gradflow.distributed as dist

    if not dist.is_nccl_available():
        print("nccl: SKIPPED: CuPy's NCCL binding is not available; the NCCL path awaits a run")
        return 5
    dist.init_process_group("nccl")
    checks = []
    try:
        t = gf.ones(1024, device="cuda") * 3
        dist.all_reduce(t)
        checks.append(("all_reduce SUM", numpy.all(t.cpu().numpy() == 3)))
        a = gf.arange(8, dtype=gf.float32, device="cuda")
        dist.all_reduce(a, op=dist.ReduceOp.AVG)
        checks.append(("all_reduce AVG", numpy.array_equal(a.cpu().numpy(), numpy.arange(8))))
        b = gf.full((4,), 7.0, device="cuda")
        dist.broadcast(b, 0)
        checks.append(("broadcast", numpy.all(b.cpu().numpy() == 7)))
        gathered = gf.zeros(8, device="cuda")
        dist.all_gather_into_tensor(gathered, gf.ones(8, device="cuda"))
        checks.append(("all_gather_into_tensor", numpy.all(gathered.cpu().numpy() == 1)))
        scattered = gf.zeros(8, device="cuda")
        dist.reduce_scatter_tensor(scattered, gf.full((8,), 2.0, device="cuda"))
        checks.append(("reduce_scatter_tensor", numpy.all(scattered.cpu().numpy() == 2)))
        c = gf.full((16,), 5.0, device="cuda")
        work = dist.all_reduce(c, async_op=True)
        work.wait()
        checks.append(("async all_reduce", numpy.all(c.cpu().numpy() == 5)))
    finally:
        dist.destroy_process_group()
    for name, ok in checks:
        print(f"nccl: {name}: {'ok' if ok else 'WRONG'}")
    passed = all(ok for _, ok in checks)
    print(f"nccl: {'OK' if passed else 'FAILED'}: {sum(ok for _, ok in checks)} of {len(checks)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
