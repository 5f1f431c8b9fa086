"""The distributed benchmark: all_reduce bandwidth against message size, DDP training
throughput at N processes against one, and a paper model of scaling to N GPUs.

Run inside every rank (``gradflow bench --suite distributed`` launches it)::

    HYDRA_LAUNCHER=fork mpiexec -n 2 python -m mpi4py -m gradflow.bench.distributed \\
        [--sizes tiny|small|full] [--json PATH]

(a) ``all_reduce`` (SUM, in place, agreement check on as users get it) of float32 tensors from
4 KiB to 64 MiB (small: to 1 MiB): after warm-up calls, each timed call starts at a barrier;
the median wall and CPU time of the slowest rank; algorithm bandwidth bytes / time and bus
bandwidth 2(N-1)/N * bytes / time (what each rank's link carries in a ring allreduce).
(b) Training: a DistributedDataParallel-wrapped ``gradflow.models`` "cnn" step (forward,
cross_entropy, backward, Adam) on random 1x8x8 batches of 64 per process; samples/s over all
ranks beside the plain step in one process (rank 0 alone while the others sleep at a barrier),
and the scaling efficiency total_N / (N * one_process). One BLAS thread per process, so N
processes use N cores; on a 2-core machine two processes are the ceiling, and they share its
memory bandwidth and caches (a perfect 100% is not reachable there).
(c) `scaling_model`: the paper model of docs/DESIGN.md §6 from the measured figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

KIB = 1024
MIB = 1024 * KIB
SIZES = {
    "tiny": [4 * KIB, 64 * KIB],
    "small": [4 * KIB << (2 * i) for i in range(5)],  # 4 KiB .. 1 MiB
    "full": [4 * KIB << (2 * i) for i in range(8)],  # 4 KiB .. 64 MiB
}
BATCH = 64  # samples per process per step, as `gradflow train` uses
STEPS = {"tiny": 2, "small": 10, "full": 20}  # training steps in a timed round
ROUNDS = {"tiny": 1, "small": 3, "full": 9}  # timed rounds of each kind, alternating
WARMUP_STEPS = 3
MODEL = "cnn"
PREDICT_AT = (2, 4, 8, 16)


@dataclass(frozen=True)
class Prediction:
    """The paper model at `n` processes: per-step seconds and efficiency."""

    n: int
    compute_s: float
    allreduce_s: float
    step_s: float
    efficiency: float


def ring_allreduce_seconds(
    nbytes: float, n: int, bus_bandwidth: float, latency_s: float = 0.0
) -> float:
    """Seconds of a ring allreduce of `nbytes` over `n` ranks: 2(N-1) steps, each rank sending
    and receiving 2(N-1)/N * nbytes in all at `bus_bandwidth` bytes/s, plus `latency_s` a step.
    0 for one rank."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if bus_bandwidth <= 0:
        raise ValueError(f"bus_bandwidth must be positive (bytes/s), got {bus_bandwidth}")
    if n == 1:
        return 0.0
    return 2 * (n - 1) * latency_s + 2 * (n - 1) / n * nbytes / bus_bandwidth


def scaling_model(
    compute_s: float,
    grad_bytes: float,
    bus_bandwidth: float,
    n: int,
    latency_s: float = 0.0,
    fixed: str = "per_process",
) -> Prediction:
    """Predicted step time and efficiency at `n` processes (no overlap of the allreduce with
    backward: the cost's upper bound; DDP hides part of it).

    `compute_s` is one process's step at its batch. fixed="per_process" (weak scaling, as DDP
    training and the benchmark run: every process keeps its batch): T(N) = compute_s +
    allreduce(grad_bytes), efficiency compute_s / T(N). fixed="global" (strong scaling: one
    global batch split N ways): T(N) = compute_s / N + allreduce, efficiency compute_s / (N
    T(N)). The allreduce is `ring_allreduce_seconds`."""
    if fixed not in ("per_process", "global"):
        raise ValueError(f"fixed must be 'per_process' or 'global', got {fixed!r}")
    if compute_s <= 0:
        raise ValueError(f"compute_s must be positive, got {compute_s}")
    share = compute_s if fixed == "per_process" else compute_s / n
    allreduce = ring_allreduce_seconds(grad_bytes, n, bus_bandwidth, latency_s)
    step = share + allreduce
    return Prediction(n, share, allreduce, step, share / step)


def model_table(
    compute_s: float,
    grad_bytes: float,
    bus_bandwidth: float,
    latency_s: float = 0.0,
    at: tuple[int, ...] = PREDICT_AT,
) -> str:
    """The paper model's table at `at` processes, both scalings."""
    lines = [
        f"paper model: compute {compute_s * 1e3:.2f} ms/step, gradient {grad_bytes / MIB:.3f} MiB, "
        f"bus bandwidth {bus_bandwidth / 1e9:.2f} GB/s, latency "
        f"{latency_s * 1e6:.1f} us/ring step; no overlap",
        f"{'N':>4}  {'allreduce ms':>12}  {'eff. batch/process':>18}  {'eff. global batch':>17}",
    ]
    for n in at:
        weak = scaling_model(compute_s, grad_bytes, bus_bandwidth, n, latency_s)
        strong = scaling_model(compute_s, grad_bytes, bus_bandwidth, n, latency_s, "global")
        lines.append(
            f"{n:>4}  {weak.allreduce_s * 1e3:>12.3f}  {weak.efficiency:>17.1%}  "
            f"{strong.efficiency:>16.1%}"
        )
    return "\n".join(lines)


# ---- measuring (inside each rank) -----------------------------------------------------------
def _repeat(nbytes: int, sizes: str) -> int:
    """Timed calls at `nbytes`: many for small messages, at least 5."""
    if sizes == "tiny":
        return 3
    return max(5, min(100, (256 * MIB) // nbytes))


def _slowest(dist: Any, values: list[float]) -> list[float]:
    """Each value's maximum over the ranks."""
    from gradflow import tensor

    t = tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [float(v) for v in t.numpy()]


def _summed(dist: Any, values: list[float]) -> list[float]:
    from gradflow import tensor

    t = tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.numpy()]


def allreduce_sweep(dist: Any, sizes: str) -> list[dict]:
    """(a): one record per message size (median wall and CPU seconds of the slowest rank)."""
    from gradflow import tensor

    n = dist.get_world_size()
    rows = []
    for nbytes in SIZES[sizes]:
        t = tensor(np.ones(nbytes // 4, dtype=np.float32))
        for _ in range(3):
            dist.all_reduce(t)
        walls, cpus = [], []
        for _ in range(_repeat(nbytes, sizes)):
            dist.barrier()
            w0, c0 = time.perf_counter(), time.process_time()
            dist.all_reduce(t)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        wall, cpu = _slowest(dist, [statistics.median(walls), statistics.median(cpus)])
        rows.append(
            {
                "bytes": nbytes,
                "repeat": len(walls),
                "median_s": wall,
                "cpu_median_s": cpu,
                # one rank moves nothing: no bandwidth
                "algbw_Bps": nbytes / wall if n > 1 else None,
                "busbw_Bps": 2 * (n - 1) / n * nbytes / wall if n > 1 else None,
            }
        )
    return rows


def _cnn_step(distributed: bool, seed: int) -> tuple[Callable[[], Any], int]:
    """A training step of the cnn on a random batch of BATCH (DDP-wrapped when `distributed`),
    and the model's gradient bytes."""
    import gradflow
    from gradflow import models, nn
    from gradflow.nn import functional as F

    gradflow.manual_seed(0)
    model = models.MODELS[MODEL]()
    grad_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    runs = nn.parallel.DistributedDataParallel(model) if distributed else model
    opt = gradflow.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    images = gradflow.tensor(rng.random((BATCH, 1, 8, 8), dtype=np.float32))
    labels = gradflow.tensor(rng.integers(0, 10, BATCH))

    def step() -> Any:
        loss = F.cross_entropy(runs(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step, grad_bytes


def _time_steps(step: Callable[[], Any], steps: int) -> tuple[float, float]:
    """Wall and CPU seconds of `steps` steps."""
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = step()
    float(loss.item())
    return time.perf_counter() - w0, time.process_time() - c0


def training(dist: Any, sizes: str) -> dict:
    """(b), in alternating rounds so that a slow spell of the machine falls on every kind: the
    plain step on rank 0 alone (the others sleep at a barrier, in Work.wait, off its core);
    the plain step on every rank at once, no communication ("apart": what sharing the machine
    costs); the DDP step on every rank. Each kind's median round (of the slowest rank)."""
    n, rank = dist.get_world_size(), dist.get_rank()
    steps, rounds = STEPS[sizes], ROUNDS[sizes]
    plain, _ = _cnn_step(False, seed=1 + rank)
    ddp_step, grad_bytes = _cnn_step(True, seed=1 + rank)
    for _ in range(WARMUP_STEPS):
        plain()
        ddp_step()
    one, apart, ddp = [], [], []
    for _ in range(rounds):
        dist.barrier()
        if rank == 0:
            one.append(_time_steps(plain, steps))
        dist.barrier()
        apart.append(_slowest(dist, [_time_steps(plain, steps)[0]])[0])
        dist.barrier()
        wall, cpu = _time_steps(ddp_step, steps)
        ddp.append((_slowest(dist, [wall])[0], _summed(dist, [cpu])[0]))
    if rank != 0:
        return {}
    wall1, cpu1 = sorted(one)[len(one) // 2]
    alone = statistics.median(apart)
    wall_n, cpu_n = sorted(ddp)[len(ddp) // 2]
    samples_1 = steps * BATCH / wall1
    samples_n = n * steps * BATCH / wall_n
    return {
        "model": MODEL,
        "batch_per_process": BATCH,
        "steps": steps,
        "rounds": rounds,
        "processes": n,
        "grad_bytes": grad_bytes,
        "one_process": {
            "wall_s": wall1,
            "cpu_s": cpu1,
            "samples_per_s": samples_1,
            "step_s": wall1 / steps,
            "cpu_per_wall": cpu1 / wall1,
        },
        "independent": {
            "wall_s": alone,
            "samples_per_s": n * steps * BATCH / alone,
            "step_s": alone / steps,
        },
        "ddp": {
            "wall_s": wall_n,
            "cpu_s": cpu_n,
            "samples_per_s": samples_n,
            "step_s": wall_n / steps,
            "cpu_per_wall": cpu_n / wall_n,
        },
        "speedup": samples_n / samples_1,
        "efficiency": samples_n / (n * samples_1),
    }


def _bandwidth_at(rows: list[dict], nbytes: int) -> dict:
    """The sweep's row nearest `nbytes` (by ratio)."""
    return min(rows, key=lambda r: abs(np.log(r["bytes"] / nbytes)))


def model_inputs(record: dict) -> dict:
    """The paper model's inputs from a run's record: the one-process step, the cnn's gradient
    bytes, the bus bandwidth at the message size nearest them and the per-ring-step latency
    from the smallest message (its time / (2(N-1)))."""
    rows, train = record["allreduce"], record["training"]
    n = record["processes"]
    near = _bandwidth_at(rows, train["grad_bytes"])
    return {
        "compute_s": train["one_process"]["step_s"],
        "grad_bytes": train["grad_bytes"],
        "bus_bandwidth": near["busbw_Bps"],
        "bandwidth_at_bytes": near["bytes"],
        "latency_s": rows[0]["median_s"] / (2 * (n - 1)),
    }


def report(record: dict) -> str:
    """The table rank 0 prints."""
    n = record["processes"]
    out = [
        f"gradflow distributed benchmark: {n} process{'es' if n > 1 else ''} (mpiexec), "
        f"{record['cores']} cores, one BLAS thread each; load average "
        f"{record['load_before'][0]:.2f} before, {record['load_after'][0]:.2f} after (1 min)",
        "all_reduce SUM float32, in place, agreement check on; median of the slowest rank; "
        "busbw = algbw * 2(N-1)/N",
        f"{'bytes':>10}  {'repeat':>6}  {'median ms':>10}  {'CPU ms':>8}  {'algbw GB/s':>10}  "
        f"{'busbw GB/s':>10}",
    ]
    for r in record["allreduce"]:
        alg, bus = (
            f"{r[k] / 1e9:>10.3f}" if r[k] is not None else f"{'-':>10}"
            for k in ("algbw_Bps", "busbw_Bps")
        )
        out.append(
            f"{_human(r['bytes']):>10}  {r['repeat']:>6}  {r['median_s'] * 1e3:>10.3f}  "
            f"{r['cpu_median_s'] * 1e3:>8.3f}  {alg}  {bus}"
        )
    t = record["training"]
    one, ddp = t["one_process"], t["ddp"]
    out += [
        "",
        f"training: {t['model']} step (forward, cross_entropy, backward, Adam), batch "
        f"{t['batch_per_process']} per process; median of {t['rounds']} rounds of {t['steps']} "
        "steps, the kinds alternating",
        f"{'':>14}  {'samples/s':>10}  {'ms/step':>8}  {'CPU s/wall s':>12}",
        f"{'1 process':>14}  {one['samples_per_s']:>10.0f}  {one['step_s'] * 1e3:>8.2f}  "
        f"{one['cpu_per_wall']:>12.2f}",
        f"{f'{n} apart':>14}  {t['independent']['samples_per_s']:>10.0f}  "
        f"{t['independent']['step_s'] * 1e3:>8.2f}  {'-':>12}   (no DDP: each its own model)",
        f"{f'{n} DDP':>14}  {ddp['samples_per_s']:>10.0f}  {ddp['step_s'] * 1e3:>8.2f}  "
        f"{ddp['cpu_per_wall']:>12.2f}",
        f"speedup {t['speedup']:.2f}x, scaling efficiency {t['efficiency']:.1%} "
        f"(total_{n} / ({n} x one process)); {n} apart: "
        f"{t['independent']['samples_per_s'] / (n * one['samples_per_s']):.1%} (the machine's "
        "own ceiling for this step)",
    ]
    if record["cores"] is not None and n >= record["cores"]:
        out.append(
            f"ceiling: {record['cores']} cores, so {record['cores']} processes are the most "
            f"that run at once ({record['cores']}x one process at best); they share the "
            "memory bandwidth and caches ('apart' measures that), and a rank waiting for "
            "the allreduce polls MPI on its core"
        )
    if n > 1:
        inputs = model_inputs(record)
        out += [
            "",
            model_table(
                inputs["compute_s"],
                inputs["grad_bytes"],
                inputs["bus_bandwidth"],
                inputs["latency_s"],
            ),
        ]
        predicted = scaling_model(**_args(inputs), n=n).efficiency
        out.append(
            f"measured at N={n}: {t['efficiency']:.1%} against the model's {predicted:.1%} "
            "(the model leaves out DDP's work beside the allreduce: gradient hooks, "
            "copies into and out of buckets, the agreement check; and the processes "
            "sharing the machine: the 'apart' row)"
        )
    return "\n".join(out)


def _human(nbytes: int) -> str:
    return f"{nbytes // MIB} MiB" if nbytes >= MIB else f"{nbytes // KIB} KiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mpi4py -m gradflow.bench.distributed",
        description="all_reduce bandwidth and DDP training throughput; run under mpiexec -n N",
    )
    parser.add_argument(
        "--sizes",
        choices=list(SIZES),
        default="full",
        help="message sizes: tiny (tests), small (to 1 MiB), full (to 64 MiB)",
    )
    parser.add_argument("--json", metavar="PATH", help="rank 0 writes every figure here")
    args = parser.parse_args(argv)

    import os

    from gradflow import distributed as dist
    from gradflow.backend.threads import blas_threads

    dist.init_process_group("mpi")
    load_before = os.getloadavg()
    try:
        with blas_threads(1):
            rows = allreduce_sweep(dist, args.sizes)
            train = training(dist, args.sizes)
        if dist.get_rank() == 0:
            from gradflow.bench.machine import machine_description

            record = {
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "command": sys.argv,
                "processes": dist.get_world_size(),
                "cores": os.cpu_count(),
                "load_before": load_before,
                "load_after": os.getloadavg(),
                "sizes": args.sizes,
                "allreduce": rows,
                "training": train,
                "machine": machine_description(),
            }
            if record["processes"] > 1:
                record["model"] = model_inputs(record)
                record["predicted"] = [
                    {
                        "n": n,
                        "per_process": scaling_model(**_args(record["model"]), n=n).efficiency,
                        "global": scaling_model(
                            **_args(record["model"]), n=n, fixed="global"
                        ).efficiency,
                    }
                    for n in PREDICT_AT
                ]
            print(report(record), flush=True)
            if args.json:
                with open(args.json, "w", encoding="utf-8") as f:
                    json.dump(record, f, indent=2)
                    f.write("\n")
                print(f"wrote {args.json}", flush=True)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


def _args(inputs: dict) -> dict:
    return {k: inputs[k] for k in ("compute_s", "grad_bytes", "bus_bandwidth", "latency_s")}


if __name__ == "__main__":
    sys.exit(main())
