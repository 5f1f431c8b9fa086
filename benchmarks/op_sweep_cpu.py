"""Op-by-op CPU sweep against torch (issue 17): forward + backward (from a dense gradient, as in
training; ``--backward sum`` for the issue's ``.sum().backward()``) of every case in
``gradflow/bench/op_cases.py``, float32, one thread on each side, gradflow and torch interleaved
call by call, CPU-time medians (``time.process_time``, which other jobs on a shared machine
distort less than wall time). Prints each case's family, times and ratio (gradflow time / torch
time) and the geometric mean of the ratios.

    python benchmarks/op_sweep_cpu.py                  # every case, about a minute
    python benchmarks/op_sweep_cpu.py gelu conv        # the named cases and families
    python benchmarks/op_sweep_cpu.py --repeat 41      # more calls per case (steadier medians)
    python benchmarks/op_sweep_cpu.py --check          # forward and gradients against torch
    python benchmarks/op_sweep_cpu.py --extra          # the cases beyond issue 17's list
    python benchmarks/op_sweep_cpu.py --markdown benchmarks/results/DATE-cpu-op-sweep-all.md

``--markdown`` writes a dated table with the command, the machine and the commit. Without
torch the sweep times gradflow's side only (no ratios; ``--check`` needs torch). The smoke test
in tests/bench/test_op_sweep_cpu.py runs it at ``--scale`` 1/32.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path
from typing import Any

from gradflow.backend.heap import (
    M_MMAP_THRESHOLD,
    M_TOP_PAD,
    M_TRIM_THRESHOLD,
    STEADY_HEAP,
    steady_heap,
)
from gradflow.bench import op_cases
from gradflow.bench.machine import describe_machine_line, source_commit, torch_or_none
from gradflow.bench.op_cases import CASES, OpCase, check_case, measure_case
from gradflow.bench.report import geometric_mean

CHECK_TOLERANCE = 1e-4  # relative to the largest value of each tensor torch computes
_MALLOPT_NAMES = {M_MMAP_THRESHOLD: "mmap threshold", M_TRIM_THRESHOLD: "trim",
                  M_TOP_PAD: "top pad"}  # fmt: skip
STEADY_HEAP_TEXT = (
    "steady (backend.heap.steady_heap: "
    + ", ".join(f"{_MALLOPT_NAMES[k]} {v >> 20} MiB" for k, v in STEADY_HEAP.items())
    + ")"
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _scale(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {value}")
    return value


def _selected(names: list[str], pool: tuple[OpCase, ...] = CASES) -> list[OpCase]:
    """The cases of ``pool`` named, or of the families named (all without names)."""
    known = {case.name for case in pool} | {case.family for case in pool}
    unknown = sorted(set(names) - known)
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; choose from {', '.join(sorted(known))}")
    return [case for case in pool if not names or {case.name, case.family} & set(names)]


def _check(cases: list[OpCase], torch: Any, scale: float) -> float:
    """Prints each case's worst relative error; exits non-zero when one is above tolerance."""
    if torch is None:
        sys.exit("--check compares against torch: pip install torch")
    worst_overall, failed = 0.0, []
    for case in cases:
        errors = check_case(case, torch, scale)
        name, worst = max(errors.items(), key=lambda item: item[1])
        worst_overall = max(worst_overall, worst)
        verdict = "ok" if worst <= CHECK_TOLERANCE else "DIFFERS"
        print(f"{case.family:13s} {case.name:18s} worst {worst:.1e} ({name})  {verdict}",
              flush=True)  # fmt: skip
        if worst > CHECK_TOLERANCE:
            failed.append(case.name)
    if failed:
        sys.exit(f"gradflow and torch differ (relative error above {CHECK_TOLERANCE}): {failed}")
    print(f"all {len(cases)} cases agree within {CHECK_TOLERANCE} (worst {worst_overall:.1e})")
    return worst_overall


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**20:.1f}"


BACKWARD_TEXT = {
    "dense": "backward from a fixed dense random gradient of the output's shape (the same on "
    "both sides, as a training step hands each op; a loss from 1)",
    "sum": "`.sum().backward()` (the issue's method: a broadcast gradient, which both "
    "frameworks can take shortcuts on)",
}


def write_markdown(path: str, rows: list[tuple], mean: float | None, argv: list[str],
                   heap: str, backward: str = "dense") -> None:  # fmt: skip
    """The dated table: case, family, shape, both medians, the ratio, page faults per step
    (and peak memory when measured); then the geometric mean. ``rows``: (case, CaseTiming,
    (gradflow's, torch's peak bytes) or None)."""
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    command = shlex.join(["python", "benchmarks/op_sweep_cpu.py", *argv])
    memory = any(peaks is not None for _, _, peaks in rows)
    lines = [
        f"# CPU op sweep against torch, {today} (issue 17)",
        "",
        f"Forward + {BACKWARD_TEXT[backward]} of each case, float32, one thread on each side "
        "(`torch.set_num_threads(1)`, threadpoolctl for NumPy's BLAS), gradflow and torch "
        "interleaved call by call, CPU-time medians (`time.process_time`). Ratio: gradflow / "
        "torch, below 1 is faster. Faults: minor page faults per step (medians), gradflow / "
        "torch; they are CPU time too."
        + (" Peak MiB: allocated at the peak of one fresh step above what was live before it, "
           "gradflow (tracemalloc) / torch (its profiler)." if memory else ""),
        "",
        f"- command: `{command}`",
        f"- commit: {source_commit()}",
        f"- machine: {describe_machine_line()}",
        f"- heap: {heap}",
        "",
        "| case | family | shape | gradflow ms | torch ms | ratio | faults |"
        + (" peak MiB | memory ratio |" if memory else ""),
        "|---|---|---|---:|---:|---:|---:|" + ("---:|---:|" if memory else ""),
    ]  # fmt: skip
    for case, t, peaks in rows:
        torch_ms = f"{t.torch_seconds * 1e3:.3f}" if t.torch_seconds is not None else "-"
        ratio = f"{t.seconds / t.torch_seconds:.2f}x" if t.torch_seconds else "-"
        faults = f"{t.faults:.0f}"
        if t.torch_faults is not None:
            faults += f" / {t.torch_faults:.0f}"
        row = (f"| {case.name} | {case.family} | {case.shape} | {t.seconds * 1e3:.3f} | "
               f"{torch_ms} | {ratio} | {faults} |")  # fmt: skip
        if memory:
            ours, theirs = peaks
            share = f"{ours / theirs:.2f}x" if theirs else "-"
            row += f" {_mib(ours)} / {_mib(theirs)} | {share} |"
        lines.append(row)
    if mean is not None:
        above = [case.name for case, t, _ in rows if t.seconds / t.torch_seconds > 1.5]
        lines += ["", f"Geometric mean of the ratios: **{mean:.2f}x** over {len(rows)} cases; "
                  f"above 1.5x: {', '.join(above) or 'none'}."]  # fmt: skip
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> float | None:
    """Run the sweep; returns the geometric mean of the ratios (None without torch), or with
    ``--check`` the worst relative error."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="cases or families to run (default: all)")
    parser.add_argument("--repeat", type=_positive_int, default=21,
                        help="calls per case and side (at least 1)")  # fmt: skip
    parser.add_argument("--scale", type=_scale, default=1.0,
                        help="shrink every dimension (above 0, at most 1)")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="compare with torch, no timing")
    parser.add_argument(
        "--extra",
        action="store_true",
        help="run gradflow/bench/op_cases_extra.py's cases beyond issue 17's list instead "
        "(names then select among them; --check skips its time-only cases)",
    )
    parser.add_argument("--markdown", metavar="PATH", help="write a dated table to PATH")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also each side's peak memory of one step (slow, untimed)",
    )
    parser.add_argument(
        "--backward",
        choices=op_cases.BACKWARDS,
        default="dense",
        help="where each step's backward starts: a dense random gradient (default, as in "
        "training) or .sum() (the issue's original method)",
    )
    parser.add_argument(
        "--default-heap",
        action="store_true",
        help="leave glibc's adaptive heap (torch's steps may fault pages in)",
    )
    args = parser.parse_args(argv)  # fmt: skip
    time_only: frozenset[str] = frozenset()
    if args.extra:
        from gradflow.bench.op_cases_extra import EXTRA_CASES, TIME_ONLY

        cases, time_only = _selected(args.names, EXTRA_CASES), TIME_ONLY
    else:
        cases = _selected(args.names)
    torch = torch_or_none()
    if args.check:
        for case in cases:
            if case.name in time_only:
                print(f"{case.family:13s} {case.name:18s} skipped (random output, time only)")
        return _check([case for case in cases if case.name not in time_only], torch, args.scale)
    if torch is None:
        print("torch is not installed: timing gradflow's side only (pip install torch)")
    from threadpoolctl import threadpool_limits

    heap = "glibc's default (adaptive)"
    if not args.default_heap:
        heap = STEADY_HEAP_TEXT if steady_heap() else "default (no glibc mallopt)"
    rows = []
    with threadpool_limits(1):
        for case in cases:
            t = measure_case(case, torch, args.repeat, args.scale, args.backward)
            peaks = (op_cases.peak_memory_case(case, torch, args.scale, args.backward)
                     if args.memory else None)  # fmt: skip
            rows.append((case, t, peaks))
            line = f"{case.family:13s} {case.name:18s} gradflow {t.seconds * 1e3:8.3f} ms  "
            if t.torch_seconds is not None:
                line += f"torch {t.torch_seconds * 1e3:8.3f} ms  "
                line += f"ratio {t.seconds / t.torch_seconds:5.2f}"
            faults = [f for f in (t.faults, t.torch_faults) if f is not None]
            if any(faults):
                line += "  faults " + " / ".join(f"{f:.0f}" for f in faults)
            if peaks is not None:
                line += f"  peak MiB {_mib(peaks[0])} / {_mib(peaks[1])}"
            print(line, flush=True)
    mean = None
    if torch is not None:
        mean = geometric_mean([t.seconds / t.torch_seconds for _, t, _ in rows])
        print(f"geometric mean {mean:.2f} over {len(rows)} cases")
    if args.markdown:
        write_markdown(args.markdown, rows, mean, argv, heap, args.backward)
    return mean


if __name__ == "__main__":
    main()
