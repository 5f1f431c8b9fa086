"""The figures of a comparison, under the same keys in every pytest suite's extra_info
(benchmarks/): the sides timed alternately (gradflow.bench.timing), each side's time (and CPU
time on the CPU), GB/s and GFLOP/s, the ratio of ours to each other side (ratio_to_torch), the
run's ceilings and the fraction of them reached, and the peak memory of one call.

    figures = compare(workload.sides("cpu"), repeat=50, unit="ms", flops=workload.flops)
"""

from __future__ import annotations

import statistics
from typing import Any

from gradflow.bench.ceilings import ceilings, copy_rate, fraction_of_ceiling, gemm_rate_of
from gradflow.bench.timing import Side, peak_memory, time_rounds

UNITS = {"us": 1e6, "ms": 1e3}


def compare(
    sides: dict[str, Side | None],
    repeat: int,
    *,
    unit: str = "us",
    per: float = 1,
    bytes_moved: float = 0,
    flops: float = 0,
    ceiling: bool = True,
    gemm: tuple[int, int, int] | None = None,
    gemm_key: str = "gemm_GFLOPs",
    copy_bytes: int = 0,
) -> dict[str, Any]:
    """Time the sides in alternating blocks (`repeat` calls each; the first side is ours, a
    None side is one torch can't run: recorded as ``<side>: "not installed"``) and return:

    - ``device``; ``bytes_moved`` and ``flops`` when the workload counts them;
    - per side: ``<side>_<unit>`` (median seconds per call, in "us" or "ms", divided by `per`,
      e.g. the ops of a chain), ``<side>_GBps`` / ``<side>_GFLOPs`` (per call); on the CPU also
      ``<side>_cpu_<unit>``, the median CPU time (time.process_time) of the same calls;
    - ``ratio_to_<side>``: our median over each other side's (below 1: ours is faster); on the
      CPU also ``ratio_to_<side>_cpu``, the same of CPU times (less distorted by other jobs);
    - unless ceiling=False: the run's ceilings (gradflow.bench.ceilings, measured once per run
      and device) ``ceiling_copy_GBps`` and ``ceiling_gemm_GFLOPs``, ``fraction_of_ceiling``
      (FLOP/s over the GEMM rate when FLOPs are counted, else GB/s over the copy bandwidth, as
      `gradflow bench` reports) and ``peak_memory_bytes`` of one more, untimed call of ours;
    - with `gemm` (rows, inner, cols): `gemm_key` (the rate of one GEMM of that shape: what a
      workload made of such GEMMs could reach) and ``fraction_of_gemm``;
    - with `copy_bytes`: ``copy_GBps`` (a device copy of that size) and ``fraction_of_copy_bw``.
    """
    timed = {name: side for name, side in sides.items() if side is not None}
    records = time_rounds(list(timed.values()), repeat, block=5)
    seconds = {name: statistics.median(walls) for name, (walls, _) in zip(timed, records)}
    cpu = {name: statistics.median(cpus) for name, (_, cpus) in zip(timed, records) if cpus}
    ours_name, ours = next(iter(timed.items()))
    mine = seconds[ours_name]
    info: dict[str, Any] = {"device": ours.device}
    if bytes_moved:
        info["bytes_moved"] = int(bytes_moved)
    if flops:
        info["flops"] = int(flops)
    for name in sides:
        if name not in seconds:
            info[name] = "not installed"
            continue
        info[f"{name}_{unit}"] = round(seconds[name] * UNITS[unit] / per, 3)
        if name in cpu:
            info[f"{name}_cpu_{unit}"] = round(cpu[name] * UNITS[unit] / per, 3)
        if bytes_moved:
            info[f"{name}_GBps"] = round(bytes_moved / seconds[name] / 1e9, 2)
        if flops:
            info[f"{name}_GFLOPs"] = round(flops / seconds[name] / 1e9, 2)
    for name in list(seconds)[1:]:
        info[f"ratio_to_{name}"] = round(mine / seconds[name], 3)
        if ours_name in cpu and cpu.get(name):
            info[f"ratio_to_{name}_cpu"] = round(cpu[ours_name] / cpu[name], 3)
    if ceiling:
        run = ceilings(ours.device)
        info["ceiling_copy_GBps"] = round(run["copy_GBps"], 2)
        info["ceiling_gemm_GFLOPs"] = round(run["gemm_TFLOPs"] * 1e3, 2)
        fraction = fraction_of_ceiling(mine, run, bytes_moved, flops)
        if fraction is not None:
            info["fraction_of_ceiling"] = round(fraction, 4)
        info["peak_memory_bytes"] = peak_memory(ours.fn, ours.device)
    if gemm is not None:
        rate = gemm_rate_of(*gemm, ours.device, repeat=max(3, repeat))
        info[gemm_key] = round(rate / 1e9, 2)
        info["fraction_of_gemm"] = round(flops / mine / rate, 3)
    if copy_bytes:
        rate = copy_rate(copy_bytes, ours.device, repeat=max(3, repeat))
        info["copy_GBps"] = round(rate / 1e9, 2)
        info["fraction_of_copy_bw"] = round(bytes_moved / mine / rate, 3)
    return info
